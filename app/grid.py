"""The producer's grid without Qt: the song's tempo, beats, bars and key (engine.music) as the app shows,
snaps to and saves them; which beat and bar lines a zoom span draws; the tempo and key of each stem.

    lines = grid_lines(info.beats_s, info.downbeat, x0, x1, width_px)   # what to draw on screen
    a, b = snap_region(a, b, info.beats_s, info.downbeat, "bars")        # the loop, on the grid
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from engine.music import NOTE_NAMES, MusicInfo

SNAP_MODES = ("bars", "beats", "off")
# Closer than this on screen, lines would merge into a block: beats are dropped, bars thinned (every
# 2nd, 4th, 8th... bar, counted from the first, so the lines drawn stay put while scrolling).
MIN_BEAT_PX = 12.0
MIN_BAR_PX = 16.0
MAX_BEATS_PER_BAR = 16
MAX_TEMPO_BPM = 1000.0
# A stem this far below the mixture (RMS) has too little in it to have a tempo or a key.
QUIET_STEM_DB = -40.0
# Which stems a tempo or a key means something for: drums have no key; a voice or a chord
# instrument has a key, and its rhythm is the song's, so the drums and the bass carry the tempo.
TEMPO_STEMS = frozenset({"drums", "bass", "percussion"})
KEYLESS_STEMS = frozenset({"drums", "percussion"})
KEY_NAMES = frozenset(f"{n} {m}" for n in NOTE_NAMES for m in ("major", "minor")) | {"unknown"}


# ---- what the song's info says -----------------------------------------------------------------------


def music_text(info: MusicInfo) -> str:
    """One line for the song's info: "120.0 BPM · 4/4 · A minor"."""
    parts = [f"{info.tempo_bpm:.1f} BPM · {info.beats_per_bar}/4" if info.tempo_bpm > 0 else "no steady beat"]
    if info.key != "unknown":
        parts.append(info.key)
    return " · ".join(parts)


def music_tooltip(info: MusicInfo, seconds: Optional[float] = None) -> str:
    bars = int(np.count_nonzero(info.downbeat))
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    return (f"Tempo {info.tempo_bpm:.2f} BPM (median beat interval), {info.beats_per_bar} beats to the bar, "
            f"{len(info.beats_s)} beats in {bars} bars; key {info.key} (lead over the next key "
            f"{info.key_confidence:.2f}). Measured by engine.music (librosa){took}.")


# ---- grid lines for a zoom span ------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLines:
    """The lines a span of the timeline draws: bar lines (strong) and beat lines between them (faint)."""

    bars: np.ndarray  # seconds
    beats: np.ndarray  # seconds, none of them a bar line
    bar_step: int  # every bar_step-th bar is drawn (1: all)


def _thin_step(times: np.ndarray, px_per_s: float, min_px: float) -> int:
    """The smallest power of two n such that every n-th of `times` lies min_px apart on screen."""
    if len(times) < 2:
        return 1
    gap = float(np.median(np.diff(times))) * px_per_s
    step = 1
    while gap * step < min_px and step < 1 << 20:
        step *= 2
    return step


def grid_lines(beats_s: np.ndarray, downbeat: np.ndarray, x0: float, x1: float, width_px: float,
               min_beat_px: float = MIN_BEAT_PX, min_bar_px: float = MIN_BAR_PX) -> GridLines:
    """The bar and beat lines to draw for the span [x0, x1] s shown `width_px` pixels wide.

    Beats are drawn only where they lie at least min_beat_px apart; bars are thinned to every 2nd,
    4th, ... bar (by the bar's number, so panning keeps the same ones) until min_bar_px apart. Without
    downbeats (too few beats to tell the bars) the beats themselves are thinned as bars would be.
    """
    beats = np.asarray(beats_s, dtype=np.float64)
    down = np.asarray(downbeat, dtype=bool)
    empty = np.zeros(0)
    if beats.size == 0 or width_px <= 0 or not x1 > x0:
        return GridLines(empty, empty, 1)
    px_per_s = width_px / (x1 - x0)
    if down.shape != beats.shape or not down.any():
        step = _thin_step(beats, px_per_s, min_bar_px)
        keep = beats[::step]
        return GridLines(keep[(keep >= x0) & (keep <= x1)], empty, step)
    bars = beats[down]
    step = _thin_step(bars, px_per_s, min_bar_px)
    shown = bars[::step]
    shown = shown[(shown >= x0) & (shown <= x1)]
    others = beats[~down]
    if _thin_step(beats, px_per_s, min_beat_px) == 1:
        others = others[(others >= x0) & (others <= x1)]
    else:
        others = empty
    return GridLines(shown, others, step)


# ---- snapping -----------------------------------------------------------------------------------------


def snap_targets(beats_s: np.ndarray, downbeat: np.ndarray, mode: str) -> np.ndarray:
    """The times the loop's edges snap to: bar starts, beats, or none ("off"). Without downbeats, bars
    fall back to beats."""
    if mode not in SNAP_MODES:
        raise ValueError(f"snap mode must be one of {SNAP_MODES}, not {mode!r}")
    beats = np.asarray(beats_s, dtype=np.float64)
    if mode == "off" or beats.size == 0:
        return np.zeros(0)
    down = np.asarray(downbeat, dtype=bool)
    if mode == "bars" and down.shape == beats.shape and down.any():
        return beats[down]
    return beats


def snap_time(t: float, targets: np.ndarray) -> float:
    """The target nearest to t (t itself without targets)."""
    if targets.size == 0:
        return float(t)
    i = int(np.searchsorted(targets, t))
    near = [targets[j] for j in (i - 1, i) if 0 <= j < targets.size]
    return float(min(near, key=lambda v: abs(v - t)))


def snap_region(a: float, b: float, beats_s: np.ndarray, downbeat: np.ndarray, mode: str,
                free: bool = False) -> tuple[float, float]:
    """The loop [a, b] with each edge on the nearest bar or beat; free (the modifier held) or mode "off"
    leaves it as it is. Both edges never fall on one line: the end goes to the next one after the start."""
    targets = snap_targets(beats_s, downbeat, mode)
    if free or targets.size == 0:
        return float(a), float(b)
    lo, hi = min(a, b), max(a, b)
    sa, sb = snap_time(lo, targets), snap_time(hi, targets)
    if sb <= sa:
        later = targets[targets > sa]
        if later.size:
            sb = float(later[0])
        else:
            earlier = targets[targets < sa]
            sa, sb = (float(earlier[-1]), sa) if earlier.size else (float(lo), float(hi))
    return sa, sb


# ---- sessions -----------------------------------------------------------------------------------------


def music_to_json(info: MusicInfo) -> dict[str, Any]:
    return {
        "tempo_bpm": float(info.tempo_bpm),
        "beats_s": [round(float(t), 5) for t in info.beats_s],
        "downbeat": [int(bool(d)) for d in info.downbeat],
        "beats_per_bar": int(info.beats_per_bar),
        "key": info.key,
        "key_confidence": float(info.key_confidence),
    }


def _number(value: Any, lo: float, hi: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi


def music_from_json(doc: Any) -> MusicInfo:
    """A song's analysis as a session keeps it; ValueError saying what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("the music analysis must be an object")
    beats, down = doc.get("beats_s"), doc.get("downbeat")
    if not isinstance(beats, list) or not all(_number(t, 0.0, 1e7) for t in beats):
        raise ValueError("its beat times must be a list of seconds")
    if not isinstance(down, list) or len(down) != len(beats) or not all(d in (0, 1) for d in down):
        raise ValueError("its downbeats must be one 0 or 1 per beat")
    times = np.asarray(beats, dtype=np.float64)
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("its beat times must increase")
    if not _number(doc.get("tempo_bpm"), 0.0, MAX_TEMPO_BPM):
        raise ValueError("its tempo is out of range")
    per_bar = doc.get("beats_per_bar")
    if not (isinstance(per_bar, int) and not isinstance(per_bar, bool) and 1 <= per_bar <= MAX_BEATS_PER_BAR):
        raise ValueError("its beats per bar are out of range")
    if doc.get("key") not in KEY_NAMES:
        raise ValueError("its key is not a key name")
    if not _number(doc.get("key_confidence", 0.0), -2.0, 2.0):
        raise ValueError("its key confidence is out of range")
    return MusicInfo(float(doc["tempo_bpm"]), times, np.asarray(down, dtype=bool), per_bar, str(doc["key"]),
                     float(doc.get("key_confidence", 0.0)))


# ---- the stems ----------------------------------------------------------------------------------------


def stem_measures(name: str) -> tuple[bool, bool]:
    """(tempo makes sense, key makes sense) for a stem of this name."""
    n = name.lower()
    return n in TEMPO_STEMS, n not in KEYLESS_STEMS


@dataclass(frozen=True)
class StemMusic:
    """What a stem says of the music: its tempo and key where they make sense (None elsewhere)."""

    tempo_bpm: Optional[float] = None
    key: Optional[str] = None
    quiet: bool = False  # too little in the stem to tell

    def text(self) -> str:
        if self.quiet:
            return "too quiet for tempo or key"
        parts = []
        if self.tempo_bpm is not None:
            parts.append(f"{self.tempo_bpm:.1f} BPM" if self.tempo_bpm > 0 else "no steady beat")
        if self.key is not None:
            parts.append(self.key if self.key != "unknown" else "no clear key")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"tempo_bpm": self.tempo_bpm, "key": self.key, "quiet": self.quiet}

    @staticmethod
    def from_json(doc: Any) -> "StemMusic":
        if not isinstance(doc, dict):
            raise ValueError("a stem's music must be an object")
        tempo, key, quiet = doc.get("tempo_bpm"), doc.get("key"), doc.get("quiet", False)
        if tempo is not None and not _number(tempo, 0.0, MAX_TEMPO_BPM):
            raise ValueError("a stem's tempo is out of range")
        if key is not None and key not in KEY_NAMES:
            raise ValueError("a stem's key is not a key name")
        if not isinstance(quiet, bool):
            raise ValueError("a stem's quiet flag must be true or false")
        return StemMusic(None if tempo is None else float(tempo), key, quiet)


def _rms(x: np.ndarray, chunk: int = 1 << 20) -> float:
    """RMS of (channels, n) in chunks (a 10-minute stem squared at once would be another 200 MB)."""
    if x.size == 0:
        return 0.0
    total = sum(float(np.einsum("ij,ij->", part, part, dtype=np.float64))
                for part in (x[:, i:i + chunk] for i in range(0, x.shape[-1], chunk)))
    return math.sqrt(total / x.size)


Analyse = Callable[[np.ndarray, int], MusicInfo]  # (mono (n,) float32, sample_rate) -> MusicInfo


def stem_music(stem: np.ndarray, sample_rate: int, name: str, mixture_rms: float, analyse: Analyse) -> StemMusic:
    """The tempo and key of one stem (channels, n) where they make sense for its name; `analyse` is
    engine.music.analyse or its stand-in in another process (app.music_process)."""
    want_tempo, want_key = stem_measures(name)
    rms = _rms(stem)
    if rms <= 0.0 or 20.0 * math.log10(rms / max(mixture_rms, 1e-12)) < QUIET_STEM_DB:
        return StemMusic(quiet=True)
    info = analyse(stem.mean(axis=0, dtype=np.float32) if stem.ndim == 2 else stem, sample_rate)
    return StemMusic(info.tempo_bpm if want_tempo else None, info.key if want_key else None)


# ---- the jobs (run in app.workers.Worker) ----------------------------------------------------------------


@dataclass(frozen=True)
class SongMusic:
    info: MusicInfo
    seconds: float  # the analysis itself


def analyse_song(process: Any, mono: np.ndarray, sample_rate: int, *, progress: Any = None,
                 cancel: Optional[threading.Event] = None) -> SongMusic:
    """Tempo, beats, bars and key of a song, mono (n,) float32: engine.music.analyse in the analysis
    process (app.music_process.MusicProcess), timed from the request to the answer."""
    from engine.progress import check_cancel

    check_cancel(cancel)
    t0 = time.perf_counter()
    info = process.analyse(mono, sample_rate, cancel)
    check_cancel(cancel)
    return SongMusic(info, time.perf_counter() - t0)


def analyse_stems(process: Any, result: Any, mixture: np.ndarray, lock: threading.Lock, *, progress: Any = None,
                  cancel: Optional[threading.Event] = None) -> dict[str, StemMusic]:
    """The tempo and key of each stem of a separation (the ungated stems: the gate's setting must not
    change them), one after the other, cancellable between stems; mixture (channels, n) is the song."""
    from engine import Progress
    from engine.progress import check_cancel
    from engine.separator import release_pages

    t0 = time.perf_counter()
    with lock:
        stems = result.ungated if result.ungated is not None else result.stems.copy()
    mixture_rms = _rms(mixture)
    out: dict[str, StemMusic] = {}
    for k, name in enumerate(result.sources):
        check_cancel(cancel)
        out[name] = stem_music(stems[k], result.sample_rate, name, mixture_rms,
                               lambda x, sr: process.analyse(x, sr, cancel))
        release_pages(stems)  # an on-disk copy read for the analysis need not stay resident
        if progress:
            progress(Progress("music", k + 1, len(result.sources), time.perf_counter() - t0))
    return out
