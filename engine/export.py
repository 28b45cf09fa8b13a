"""Writing a separation to disk: one file per stem, activity.csv and separation.json, each atomically.

`export_separation` writes a SeparationResult held in memory (the app). `separate_to_folder` is the
command line's path: it streams the network's ungated stems to temporary files and gates them
block by block into the final files, so memory does not grow with the song's length.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import soundfile as sf

from .audio import Audio, describe_os_error, open_sound_writer, write_audio, write_text_atomic
from .errors import AudioWriteError
from .gating import GatingSettings, GatingSpec, gates
from .music import MusicInfo
from .progress import Progress, ProgressCallback, check_cancel
from .separator import SeparationResult, Separator, describe_gating
from .spectral import STFTConfig
from .stems import BLOCK, gate_song_blocks, resample_blocks

# The files beside the stems. A folder holding SEPARATION_JSON is a StemLab result, which a new run may replace.
SEPARATION_JSON = "separation.json"
ACTIVITY_CSV = "activity.csv"
BEATS_CSV = "beats.csv"
RESULT_MARKER = SEPARATION_JSON
_NAME_MAX = 120


def song_folder_names(paths: Sequence[Path]) -> list[str]:
    """One output folder name per song, unique within the batch: the file name without its extension,
    with control characters and a leading dot replaced ("." and ".." become "song"); a name met again
    gets " (2)", " (3)", ... in the order the songs were given ("a/intro.wav b/intro.wav" -> "intro",
    "intro (2)"). Names compare case-insensitively, so they stay apart on any file system."""
    taken: set[str] = set()
    names = []
    for path in paths:
        base = "".join("_" if ord(c) < 32 or ord(c) == 127 else c for c in Path(path).stem).strip()
        if base in ("", ".", ".."):
            base = "song"
        if base.startswith("."):
            base = "_" + base[1:]
        base = base[:_NAME_MAX]
        name, k = base, 2
        while name.casefold() in taken:
            name, k = f"{base} ({k})", k + 1
        taken.add(name.casefold())
        names.append(name)
    return names


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tidy_leftovers(final: Path) -> None:
    """Folders a killed run left beside `final`: unfinished results are removed; an earlier result that
    was moved aside for a swap that never finished is put back."""
    for kind in ("old", "partial"):
        for p in final.parent.glob(f".{glob.escape(final.name)}.{kind}-*"):
            pid = p.name.rsplit("-", 1)[1]
            if not pid.isdigit() or (int(pid) != os.getpid() and _pid_alive(int(pid))):
                continue  # not ours, or another run is writing this song right now
            if kind == "old" and not final.exists():
                os.replace(p, final)
            else:
                shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def replacing_folder(final: Path) -> Iterator[Path]:
    """A hidden staging folder beside `final` to write a whole result into. When the block finishes, the
    staging folder takes `final`'s place whole (an earlier StemLab result there is removed only then);
    when it fails or is interrupted, the staging folder goes and `final` stays as it was. A `final` that
    exists and is not a StemLab result is refused, never touched."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise AudioWriteError(f"{final} exists and is not a folder; it is left alone (choose another --out).")
    _make_dir(final.parent)
    _tidy_leftovers(final)
    if final.exists() and any(final.iterdir()) and not (final / RESULT_MARKER).is_file():
        raise AudioWriteError(f"{final} already holds files that are not a StemLab result; they are left alone "
                              "(choose another --out).")
    staging = final.with_name(f".{final.name}.partial-{os.getpid()}")
    try:
        staging.mkdir()
    except OSError as exc:
        reason = f"{describe_os_error(exc)} in {final.parent}"
        if final.exists():
            raise AudioWriteError(f"{final}: could not write the stems ({reason}); the earlier result there is "
                                  "left as it was.") from exc
        raise AudioWriteError(f"{final}: cannot create the output folder ({reason}).") from exc
    try:
        yield staging
        try:
            if final.exists():
                old = final.with_name(f".{final.name}.old-{os.getpid()}")
                os.replace(final, old)
                os.replace(staging, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, final)
        except OSError as exc:
            raise AudioWriteError(f"{final}: the finished result could not take its place "
                                  f"({describe_os_error(exc)}).") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def activity_csv_parts(sources: Sequence[str], activity: np.ndarray, frame_rate: float,
                       rows: int = 8192) -> Iterator[str]:
    """activity.csv a few thousand rows at a time (an hour is 300,000 rows: never one string)."""
    yield "time_s," + ",".join(sources) + "\n"
    n = activity.shape[-1]
    for a in range(0, n, rows):
        b = min(n, a + rows)
        buf = io.StringIO()
        times = np.arange(a, b) / frame_rate
        np.savetxt(buf, np.concatenate([times[:, None], activity[:, a:b].T], axis=1), fmt="%.4f", delimiter=",")
        yield buf.getvalue()


def activity_csv(sources: Sequence[str], activity: np.ndarray, frame_rate: float) -> str:
    """Per frame: time in seconds and each source's activity probability."""
    return "".join(activity_csv_parts(sources, activity, frame_rate))


def _check_format(fmt: str) -> None:
    if fmt not in ("wav", "flac"):
        raise AudioWriteError(f"Unknown output format {fmt!r}: use wav or flac.")


def _make_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioWriteError(f"{out_dir}: cannot create the output folder ({exc.strerror}).") from exc


def _write_meta(out_dir: Path, meta: dict[str, Any], sources: Sequence[str], activity: np.ndarray,
                frame_rate: float, music: Optional[MusicInfo] = None) -> list[Path]:
    written = [write_text_atomic(out_dir / ACTIVITY_CSV, activity_csv_parts(sources, activity, frame_rate))]
    if music is not None:  # the song's tempo and key in the summary, its beats beside it
        meta.update(music.summary())
        meta["files"] = list(meta.get("files", [])) + [BEATS_CSV]
        written.append(write_text_atomic(out_dir / BEATS_CSV, music.beats_csv()))
    written.append(write_text_atomic(out_dir / SEPARATION_JSON, json.dumps(meta, indent=2) + "\n"))
    return written


def export_separation(result: SeparationResult, out_dir: Path, *, fmt: str = "wav", subtype: Optional[str] = None,
                      sources: Optional[Sequence[str]] = None, info: Optional[dict[str, Any]] = None,
                      progress: Optional[ProgressCallback] = None,
                      cancel: Optional[threading.Event] = None, music: Optional[MusicInfo] = None) -> list[Path]:
    """Write `<source>.<fmt>` for each source, activity.csv and separation.json into out_dir.

    Returns the paths written. Each file is atomic; a failure raises AudioWriteError.
    """
    _check_format(fmt)
    _make_dir(out_dir)
    names = list(result.sources) if sources is None else list(sources)
    written: list[Path] = []
    for k, name in enumerate(names):
        check_cancel(cancel)
        written.append(write_audio(out_dir / f"{name}.{fmt}", result.full_stem(name), result.sample_rate, subtype))
        if progress is not None:
            progress(Progress("export", k + 1, len(names)))
    meta = _meta(result.model_name, result.sources, result.sample_rate, result.model_sample_rate,
                 result.n_samples, result, result.gating, result.wiener, result.device, result.timings,
                 result.notes, [p.name for p in written] + [ACTIVITY_CSV, SEPARATION_JSON])
    meta.update(info or {})
    return written + _write_meta(out_dir, meta, result.sources, result.activity, result.frame_rate, music)


def _meta(model: str, sources: Sequence[str], sample_rate: int, model_rate: int, n_samples: int,
          sep: Any, gating: GatingSpec, wiener: bool, device: str, timings: dict[str, float],
          notes: list[str], files: list[str]) -> dict[str, Any]:
    cfg = sep.stft_config
    return {
        "model": model, "sources": list(sources), "sample_rate": sample_rate, "model_sample_rate": model_rate,
        "duration_s": round(n_samples / sample_rate, 3), "n_fft": cfg.n_fft, "hop_length": cfg.hop_length,
        "frame_rate": model_rate / cfg.hop_length, "gating": describe_gating(gating, sources), "wiener": wiener,
        "device": device, "timings_s": {k: round(v, 3) for k, v in timings.items()}, "notes": notes,
        "files": files,
    }


def separate_to_folder(separator: Separator, audio: Audio, out_dir: Path, *, fmt: str = "wav",
                       subtype: Optional[str] = None, gating: GatingSpec = GatingSettings(), wiener: bool = False,
                       info: Optional[dict[str, Any]] = None, progress: Optional[ProgressCallback] = None,
                       cancel: Optional[threading.Event] = None, music: Optional[MusicInfo] = None) -> dict[str, Any]:
    """Separate a song straight into out_dir with memory bounded by the chunk size (plus the song).

    The network's ungated stems stream into hidden temporary float files beside the outputs; each is
    then gated block by block (and resampled back to the song's rate) into its final file, written
    under a temporary name and renamed. Wiener refinement needs every source's masks at once, so it
    takes the in-memory path. Returns the separation.json contents.
    """
    _check_format(fmt)
    _make_dir(out_dir)
    if wiener:
        result = separator.separate(audio, gating=gating, wiener=True, keep_for_regate=False,
                                    progress=progress, cancel=cancel)
        export_separation(result, out_dir, fmt=fmt, subtype=subtype, info=info, cancel=cancel, music=music)
        return json.loads((out_dir / SEPARATION_JSON).read_text())
    sources = separator.sources
    cfg = separator.stft_config
    t0 = time.perf_counter()
    mixture, rate, n_song, notes = separator.prepare(audio)
    n_model = mixture.shape[-1]
    temps: list[str] = []
    finals: list[str] = []
    files: list[str] = []
    try:
        for s in sources:
            fd, path = tempfile.mkstemp(prefix=f".{s}.", suffix=".ungated.part", dir=str(out_dir))
            os.close(fd)
            temps.append(path)
        t1 = time.perf_counter()
        with contextlib.ExitStack() as stack:
            handles = [stack.enter_context(open_sound_writer(path, separator.sample_rate, 2, "WAV", "FLOAT",
                                                             sync=False)) for path in temps]

            def sink(values: np.ndarray, first: int) -> None:
                m = max(0, min(values.shape[-1], n_model - first))
                for j, h in enumerate(handles):
                    h.write(np.ascontiguousarray(values[j, :, :m].T))

            _, activity, _ = separator.network_pass(mixture, stem_sink=sink, progress=progress, cancel=cancel)
        del mixture
        t2 = time.perf_counter()
        gate = gates(activity, sources, gating)
        subtype_final = subtype or ("FLOAT" if fmt == "wav" else "PCM_24")
        for j, s in enumerate(sources):
            check_cancel(cancel)
            final = out_dir / f"{s}.{fmt}"
            fd, tmp_final = tempfile.mkstemp(prefix=f".{s}.", suffix=f".{fmt}.part", dir=str(out_dir))
            os.close(fd)
            finals.append(tmp_final)
            _gate_file(temps[j], tmp_final, gate[j], cfg, n_model, separator.sample_rate, rate, n_song, fmt,
                       subtype_final)
            os.chmod(tmp_final, 0o644)
            os.replace(tmp_final, final)
            finals.remove(tmp_final)
            os.unlink(temps[j])
            files.append(final.name)
            if progress is not None:
                progress(Progress("export", j + 1, len(sources), time.perf_counter() - t2))
        t3 = time.perf_counter()
        timings = {"prepare_s": t1 - t0, "network_s": t2 - t1, "gating_s": t3 - t2, "total_s": t3 - t0}
        meta = _meta(separator.card.name, sources, rate, separator.sample_rate, n_song, separator, gating, False,
                     separator.device_description, timings, notes, files + [ACTIVITY_CSV, SEPARATION_JSON])
        meta.update(info or {})
        _write_meta(out_dir, meta, sources, activity, separator.sample_rate / cfg.hop_length, music)
        return meta
    except (OSError, sf.LibsndfileError) as exc:
        done = f" ({', '.join(files)} were written completely)" if files else ""
        raise AudioWriteError(f"{out_dir}: could not write the stems ({describe_os_error(exc)}){done}; "
                              "no partial file was left.") from exc
    finally:
        for path in temps + finals:
            if os.path.exists(path):
                os.unlink(path)


def _gate_file(src: str, dst: str, gate: np.ndarray, config: STFTConfig, n_model: int, model_rate: int,
               song_rate: int, n_song: int, fmt: str, subtype: str) -> None:
    """Read an ungated stem block by block, resample it to the song's rate and gate it there (the steps
    and blocks of the in-memory path, engine.stems), and write the final file."""
    with sf.SoundFile(src) as fin, open_sound_writer(dst, song_rate, 2, fmt.upper(), subtype) as fout:
        model_blocks = (fin.read(min(BLOCK, n_model - a), dtype="float32", always_2d=True).T
                        for a in range(0, n_model, BLOCK))
        song_blocks = resample_blocks(model_blocks, n_model, model_rate, song_rate, n_song)
        for block in gate_song_blocks(song_blocks, gate, config, model_rate, song_rate, n_song):
            out = np.ascontiguousarray(block.T)
            if subtype != "FLOAT":
                np.clip(out, -1.0, 1.0, out=out)
            fout.write(out)
