"""Background jobs for the GUI: each runs a plain function on a private QThreadPool and reports
through signals (progress, finished, failed or cancelled, then done) that arrive in the GUI
thread's slots (superqt's worker pattern). The functions themselves (open a song, separate,
re-gate, export, sessions) are plain Python on the engine's facade and never touch Qt.

PySide6 6.12.0 under Python 3.11 corrupts reference counts whenever the GUI thread calls Qt while
another Python thread runs (a fatal "deallocating None" within milliseconds; Python 3.12+ hides it
because None is immortal there). pyproject.toml pins PySide6 below 6.12 on Python 3.11, and
app.main warns if the bad pair is found.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from . import timeline_pictures
from .errors import SessionError

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    progress = Signal(object)  # engine.Progress
    finished = Signal(object)  # the function's return value
    failed = Signal(str)  # a message a user can act on
    cancelled = Signal()
    done = Signal()  # after any of the three above: the job is over


class Worker(QRunnable):
    """Runs fn(*args, progress=..., cancel=..., **kwargs) off the GUI thread."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "job", **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner keeps it until `done`
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name
        self.cancel_event = threading.Event()
        self.signals = WorkerSignals()  # lives in the GUI thread: emits from run() are queued to it
        self.finished_flag = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _progress(self, p: Any) -> None:
        self.signals.progress.emit(p)

    def run(self) -> None:
        from engine import SeparationCancelled, StemLabError

        try:
            result = self.fn(*self.args, progress=self._progress, cancel=self.cancel_event, **self.kwargs)
        except SeparationCancelled:
            self.signals.cancelled.emit()
        except (StemLabError, SessionError) as exc:
            self.signals.failed.emit(str(exc))
        except MemoryError:
            self.signals.failed.emit(
                "Not enough memory for this song. Close other programs or try a shorter song."
            )
        except Exception as exc:  # a bug must become one dialog, not a dead worker thread
            log.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.signals.failed.emit(f"Unexpected error in {self.name}: {type(exc).__name__}: {exc}")
        else:
            if self.cancel_event.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.finished.emit(result)
        finally:
            self.args, self.kwargs = (), {}  # let go of songs and results while the worker is retired
            self.finished_flag.set()
            self.signals.done.emit()


class JobRunner(QObject):
    """Starts workers on a private thread pool and keeps each alive until its thread let go of it.

    `done` is emitted from inside run(), so the pool thread may still be returning through
    PySide's wrapper when it arrives: finished workers are kept a little longer (retired) and
    released only once no pool thread is busy, or two seconds later.
    """

    RETIRE_S = 2.0

    def __init__(self, parent: Optional[QObject] = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.active: set[Worker] = set()
        self._retired: list[tuple[float, Worker]] = []

    def start(self, worker: Worker) -> Worker:
        self._purge()
        self.active.add(worker)
        worker.signals.done.connect(self._forget)
        # Started as a callable: the pool holds worker.run only until it returned. Given the QRunnable
        # itself (autoDelete off), PySide keeps a reference from the pool to every worker ever
        # started, so a long session leaked one worker per job (and per slider step of re-gating).
        self.pool.start(worker.run)
        return worker

    @Slot()
    def _forget(self) -> None:
        sender = self.sender()
        for w in list(self.active):
            if w.signals is sender:
                self.active.discard(w)
                self._retired.append((time.monotonic(), w))
        self._purge()

    def _purge(self) -> None:
        if self.pool.activeThreadCount() == 0:
            self._retired.clear()
        else:
            now = time.monotonic()
            self._retired = [(t, w) for t, w in self._retired if now - t < self.RETIRE_S]

    def cancel_all(self) -> None:
        for w in list(self.active):
            w.cancel()

    def running_threads(self) -> int:
        return int(self.pool.activeThreadCount())

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Wait for every job to end, then deliver the signals they queued."""
        from PySide6.QtCore import QCoreApplication

        ok = bool(self.pool.waitForDone(timeout_ms))
        QCoreApplication.processEvents()
        self._purge()
        return ok


# ---- the jobs ------------------------------------------------------------------------------------


@dataclass
class SongData:
    """A loaded song plus what the timeline draws of it."""

    path: Path
    samples: np.ndarray  # (channels, n_samples) float32
    sample_rate: int
    overview: timeline_pictures.Overview
    spectrogram: timeline_pictures.Spectrogram
    notes: list[str] = field(default_factory=list)
    load_s: float = 0.0
    mono: Optional[np.ndarray] = None  # (n_samples,) for redrawing the waveform when zoomed in

    @property
    def duration_s(self) -> float:
        return self.samples.shape[-1] / self.sample_rate

    @property
    def stereo(self) -> np.ndarray:
        return self.samples if self.samples.shape[0] == 2 else np.repeat(self.samples[:1], 2, axis=0)


def open_song(path: str, *, progress: Any = None, cancel: Optional[threading.Event] = None) -> SongData:
    from engine import Progress, load_audio
    from engine.audio import to_stereo
    from engine.separator import is_silent

    t0 = time.perf_counter()
    audio = load_audio(path, allow_silent=True)  # a silent song opens and separates into silent stems
    notes = list(audio.notes)
    if is_silent(audio.samples):
        notes.append("the song is digital silence")
    samples = to_stereo(audio.samples, notes)
    mono = timeline_pictures.mono(samples)  # once: the overview, the spectrogram and zoomed redraws share it
    if progress:
        progress(Progress("analyse", 1, 3, time.perf_counter() - t0))
    ov = timeline_pictures.overview(mono, audio.sample_rate)
    if progress:
        progress(Progress("analyse", 2, 3, time.perf_counter() - t0))
    spec = timeline_pictures.log_spectrogram(mono, audio.sample_rate, cancel=cancel)
    return SongData(
        Path(path),
        np.ascontiguousarray(samples, dtype=np.float32),
        audio.sample_rate,
        ov,
        spec,
        notes,
        time.perf_counter() - t0,
        mono,
    )


def load_separator(
    model: str,
    *,
    allow_untrained: bool = False,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> Any:
    from engine import Separator

    return Separator.load(model, allow_untrained=allow_untrained)


@dataclass
class SeparationOutcome:
    result: Any  # engine.SeparationResult
    spectrograms: list[timeline_pictures.Spectrogram]
    gates: np.ndarray  # (n_sources, n_frames)
    seconds: float
    frames: dict[str, timeline_pictures.BandFrames] = field(default_factory=dict)  # ungated stems, for re-gating


def stem_pictures(
    result: Any,
    gates: np.ndarray,
    sources: list[str],
    frames: dict[str, timeline_pictures.BandFrames],
    cancel: Optional[threading.Event] = None,
) -> dict[str, timeline_pictures.Spectrogram]:
    """Spectrogram images of the gated stems of `sources`.

    Without Wiener a gated stem is its ungated stem times a gate envelope, so its picture is the
    ungated stem's band power (computed once per separation, in `frames`) times the gate squared:
    milliseconds instead of an FFT of the whole stem. With Wiener, or without cached frames, the
    stem itself is analysed.
    """
    from engine.progress import check_cancel

    out = {}
    times = result.frame_times()
    for s in sources:
        check_cancel(cancel)
        i = result.sources.index(s)
        if not result.wiener and s in frames:
            out[s] = frames[s].render_gated(gates[i], times)
        else:
            out[s] = timeline_pictures.log_spectrogram(result.stems[i], result.sample_rate, cancel=cancel)
    return out


def ungated_frames(
    result: Any, progress: Any = None, cancel: Optional[threading.Event] = None, t0: float = 0.0
) -> dict[str, timeline_pictures.BandFrames]:
    from engine import Progress
    from engine.separator import release_pages

    frames: dict[str, timeline_pictures.BandFrames] = {}
    if result.ungated is None or result.wiener:
        return frames
    for k, s in enumerate(result.sources):
        frames[s] = timeline_pictures.band_frames(result.ungated[k], result.sample_rate, cancel=cancel)
        release_pages(result.ungated)  # a long song's copy on disk: read, but not kept resident
        if progress:
            progress(Progress("analyse", k + 1, len(result.sources), time.perf_counter() - t0))
    return frames


LONG_SONG_S = 300.0  # longer songs keep their re-gating copy in a file (the engine's cache_dir), not in memory
# Songs longer than this hold their gated stems (what playback and pictures read) in float16: half the memory
# of float32, and float16's 11 significant bits put its rounding about 74 dB under each stem (well under
# hearing, as playback and pictures need); export and the remix re-derive them in float32
# from the ungated copy (SeparationResult.full_stem, block_reader), so files are as a float32 separation's.
COMPACT_SONG_S = 300.0
COMPACT_STEMS = np.float16


def regate_cache_dir() -> Optional[Path]:
    """Where a long song's ungated stems are kept for re-gating: the user's cache folder
    (XDG_CACHE_HOME, else ~/.cache) under stemlab/; None (keep them in memory) if it cannot be made.
    The engine unlinks its file at once, so nothing is left there."""
    from engine.resources import user_cache_dir

    folder = user_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def separate_song(
    separator: Any,
    samples: np.ndarray,
    sample_rate: int,
    gating: Any,
    wiener: bool,
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> SeparationOutcome:
    from engine.progress import check_cancel

    t0 = time.perf_counter()
    long_song = samples.shape[-1] > LONG_SONG_S * sample_rate
    compact = samples.shape[-1] > COMPACT_SONG_S * sample_rate
    result = separator.separate(
        samples,
        sample_rate,
        gating=gating,
        wiener=wiener,
        keep_for_regate=True,
        cache_dir=regate_cache_dir() if long_song else None,
        stems_dtype=COMPACT_STEMS if compact else np.float32,
        progress=progress,
        cancel=cancel,
    )
    check_cancel(cancel)
    frames = ungated_frames(result, progress, cancel, t0)
    gates = result.gates()
    pics = stem_pictures(result, gates, list(result.sources), frames, cancel)
    return SeparationOutcome(
        result, [pics[s] for s in result.sources], gates, time.perf_counter() - t0, frames
    )


@dataclass
class SpectrogramTiles:
    """Spectrogram images of one span of the song (what is on screen, zoomed in), mix and gated stems."""

    serial: int
    start_s: float
    stop_s: float
    mix: timeline_pictures.Spectrogram
    stems: dict[str, timeline_pictures.Spectrogram]
    truth: dict[str, timeline_pictures.Spectrogram] = field(default_factory=dict)  # the true stems', with a truth


def spectrogram_tiles(
    mono: np.ndarray,
    sample_rate: int,
    start: int,
    stop: int,
    serial: int,
    result: Any,
    frames: dict[str, timeline_pictures.BandFrames],
    lock: threading.Lock,
    truth_frames: Optional[dict[str, timeline_pictures.BandFrames]] = None,
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> SpectrogramTiles:
    """The mix's spectrogram of samples [start, stop) (an FFT of that span only) and, once separated,
    the gated stems' from their cached band frames (no FFT), and the true stems' from theirs."""
    from engine.progress import check_cancel

    mix = timeline_pictures.spectrogram_tile(mono, sample_rate, start, stop, cancel=cancel)
    t0, t1 = start / sample_rate, stop / sample_rate
    stems: dict[str, timeline_pictures.Spectrogram] = {}
    if result is not None and frames and not result.wiener:
        with lock:
            gates = result.gates()
        times = result.frame_times()
        for i, s in enumerate(result.sources):
            check_cancel(cancel)
            if s in frames:
                stems[s] = frames[s].render_span(t0, t1, gates[i], times)
    truth = {}
    for s, f in (truth_frames or {}).items():
        check_cancel(cancel)
        truth[s] = f.render_span(t0, t1)
    return SpectrogramTiles(serial, t0, t1, mix, stems, truth)


@dataclass
class RegateOutcome:
    sources: list[str]
    spectrograms: dict[str, timeline_pictures.Spectrogram]
    gates: np.ndarray  # (n_sources, n_frames), all sources
    seconds: float  # the re-render of the audio itself
    serial: int


def regate_stems(
    result: Any,
    gating: Any,
    sources: list[str],
    lock: threading.Lock,
    serial: int,
    frames: dict[str, timeline_pictures.BandFrames],
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> RegateOutcome:
    """Re-render `sources` with `gating` (in place in result.stems), then their pictures.

    A newer request cancels this one after the render: the stems are already right, only the
    pictures of a stale setting are skipped.
    """
    with lock:
        t0 = time.perf_counter()
        result.regate(gating, sources=sources)
        seconds = time.perf_counter() - t0
        gates = result.gates()
    pics = stem_pictures(result, gates, sources, frames, cancel)
    return RegateOutcome(list(sources), pics, gates, seconds, serial)


class RegateQueue(QObject):
    """Coalesces gating changes: one re-render runs at a time, the newest setting wins.

    A request while one runs cancels the running job's (stale) spectrograms and is queued; queued
    requests merge their sources, so a slider dragged through twenty values costs at most two renders.
    """

    regated = Signal(object)  # RegateOutcome
    failed = Signal(str)
    idle = Signal()

    def __init__(self, runner: JobRunner, lock: threading.Lock, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.lock = lock
        self.result: Any = None
        self.frames: dict[str, timeline_pictures.BandFrames] = {}
        self._pending: Optional[tuple[Any, set[str]]] = None
        self._running: Optional[Worker] = None
        self.serial = 0
        self.renders = 0

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending is not None

    def request(self, gating: Any, sources: list[str]) -> None:
        if self.result is None:
            return
        merged = set(sources) | (self._pending[1] if self._pending else set())
        self._pending = (gating, merged)
        if self._running is not None:
            self._running.cancel()
        else:
            self._start_next()

    def clear(self) -> None:
        self._pending = None
        if self._running is not None:
            self._running.cancel()

    def _start_next(self) -> None:
        if self._pending is None or self.result is None:
            self._running = None
            self.idle.emit()
            return
        gating, sources = self._pending
        self._pending = None
        self.serial += 1
        ordered = [s for s in self.result.sources if s in sources]
        w = Worker(
            regate_stems, self.result, gating, ordered, self.lock, self.serial, self.frames, name="re-gating"
        )
        w.signals.finished.connect(self._on_finished)
        w.signals.failed.connect(self.failed)
        w.signals.done.connect(self._on_done)
        self._running = w
        self.renders += 1
        self.runner.start(w)

    def _on_finished(self, outcome: RegateOutcome) -> None:
        self.regated.emit(outcome)

    def _on_done(self) -> None:
        self._running = None
        self._start_next()


def export_job(
    result: Any,
    mixer: Any,
    lock: threading.Lock,
    out_dir: Path,
    stems: list[str],
    fmt: str,
    subtype: str,
    remix: bool,
    song_name: str,
    info: dict[str, Any],
    *,
    music: Any = None,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> list[Path]:
    """Write the chosen stems (and the remix) into out_dir; each file atomic. With the song's music
    (engine.music.MusicInfo), its tempo and key go into separation.json and its beats into beats.csv,
    as `stemlab separate` writes them."""
    from engine import Progress
    from engine.audio import write_audio
    from engine.errors import AudioWriteError
    from engine.export import export_separation
    from engine.progress import check_cancel

    t0 = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioWriteError(f"{out_dir}: cannot create the output folder ({exc.strerror}).") from exc
    total = len(stems) + (3 if remix else 0) + 2
    written: list[Path] = []

    def stem_progress(p: Any) -> None:
        if progress:
            progress(Progress("export", min(p.done, len(stems)), total, time.perf_counter() - t0))

    with lock:
        if stems:
            written += export_separation(
                result,
                out_dir,
                fmt=fmt,
                subtype=subtype,
                sources=stems,
                info=info,
                progress=stem_progress,
                cancel=cancel,
                music=music,
            )
        if remix:
            check_cancel(cancel)

            def mix_progress(done: int, n: int) -> None:
                if progress:
                    progress(
                        Progress(
                            "export",
                            len(stems) + 2 + int(2 * done / max(n, 1)),
                            total,
                            time.perf_counter() - t0,
                        )
                    )

            # compact stems: the remix reads them in float32 from the ungated copy, as the stems exported
            mix = mixer.render(progress=mix_progress, cancel=cancel, stem_reader=result.block_reader())
            check_cancel(cancel)
            written.append(
                write_audio(out_dir / f"{song_name} (remix).{fmt}", mix, result.sample_rate, subtype)
            )
    if progress:
        progress(Progress("export", total, total, time.perf_counter() - t0))
    return written
