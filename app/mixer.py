"""The stem mixer's arithmetic: gains, pan, solo, mute, master and the A/B original switch.

Pure numpy, no Qt and no sound library, so tests read the mixed samples directly. `process()` is
what the audio callback runs: it only reads preloaded arrays, writes into preallocated scratch
buffers and advances a position; settings arrive as one immutable gain matrix swapped in by
reference (atomic under the GIL), so the callback never takes a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from engine.progress import check_cancel

MIN_GAIN_DB = -60.0  # a fader at or below this is silent
MAX_GAIN_DB = 12.0
MAX_BLOCK = 16384  # the largest block a callback may ask for
RAMP_SAMPLES = 64  # gain changes are cross-faded over this many samples to avoid clicks
LISTEN_MODES = ("estimate", "truth", "error")  # what a stem's strip plays, given the song's true stems
# stems the mixer plays as they are: float32, or float16 (a long song's stems held compactly by the app),
# which the callback widens to float32 a block at a time as it scales them into its scratch buffers
PLAYBACK_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))


def db_to_gain(db: float) -> float:
    """Fader position in dB -> linear gain; at or below MIN_GAIN_DB the fader is closed."""
    return 0.0 if db <= MIN_GAIN_DB else float(10.0 ** (db / 20.0))


def gain_to_db(gain: float) -> float:
    return MIN_GAIN_DB if gain <= 10.0 ** (MIN_GAIN_DB / 20.0) else float(20.0 * np.log10(gain))


def pan_gains(pan: float) -> tuple[float, float]:
    """Stereo balance for pan in [-1, 1]: centre leaves both channels alone, full left silences right.

    Stems are stereo already, so this is a balance control (the far side is turned down linearly),
    not a mono panner: at centre the stem plays exactly as separated.
    """
    p = float(np.clip(pan, -1.0, 1.0))
    return min(1.0, 1.0 - p), min(1.0, 1.0 + p)


@dataclass
class StripSettings:
    """One channel strip: what the user set, in user units."""

    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    solo: bool = False
    listen: str = "estimate"  # "truth": the true stem instead; "error": truth minus estimate

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"gain_db": self.gain_db, "pan": self.pan, "mute": self.mute, "solo": self.solo}
        if self.listen != "estimate":
            out["listen"] = self.listen
        return out


class Mixer:
    """Mixes stems (or the original mix) into stereo blocks.

    stems: (n_sources, 2, n_samples) float32 or float16; original: (2, n_samples) float32, both at
    `sample_rate`. Row n_sources of the gain matrix belongs to the original mix (the A/B switch);
    rows n_sources + 1 + i to stem i's true stem, when the song has one (set_truth): a strip that
    plays the truth weights that row, and one that plays the error (truth minus estimate) weights it
    and its estimate's row negated, so the error follows every re-gating without being stored.
    `levels` holds the last block's post-fader peak per strip (estimate and truth rows together),
    then the original, then the master: (n_sources + 2, 2).
    """

    def __init__(self, max_block: int = MAX_BLOCK) -> None:
        self.max_block = int(max_block)
        self.sample_rate = 44100
        self.strips: list[StripSettings] = []
        self.master_gain_db = 0.0
        self.master_mute = False
        self.play_original = False  # the A/B switch: True plays the untouched mix
        self._stems = np.zeros((0, 2, 0), np.float32)
        self._original = np.zeros((2, 0), np.float32)
        self._truth: tuple[Optional[np.ndarray], ...] = ()  # per stem (2, n_samples) or None
        self._scratch = np.zeros((2, self.max_block), np.float32)
        self._tmp = np.zeros(self.max_block, np.float32)
        self._tmp2 = np.zeros(self.max_block, np.float32)
        self._ramp_tmp = np.zeros(RAMP_SAMPLES, np.float32)
        self._ramp = np.arange(1, RAMP_SAMPLES + 1, dtype=np.float32) / RAMP_SAMPLES
        self._target = np.zeros((1, 2), np.float32)
        self._current = np.zeros((1, 2), np.float32)
        self.levels = np.zeros((2, 2), np.float32)
        self.position = 0  # next sample to play; written only by process() while playing
        self.ended = False
        self._seek: tuple[int, int] = (0, 0)  # (serial, sample): a request process() applies
        self._seek_seen = 0
        self._loop: Optional[tuple[int, int]] = None
        self._lock = threading.Lock()  # guards set_tracks against a concurrent offline render only
        self.blocks_processed = 0
        self.on_end: Optional[Callable[[], None]] = None

    # ---- set-up, GUI thread -------------------------------------------------------------------
    def set_tracks(self, original: np.ndarray, stems: Optional[np.ndarray], sample_rate: int) -> None:
        """Load new arrays. Call only while no stream is running (the player stops first)."""
        original = np.ascontiguousarray(original, dtype=np.float32)
        if original.ndim != 2 or original.shape[0] not in (1, 2):
            raise ValueError("original must be (channels, n_samples)")
        if original.shape[0] == 1:
            original = np.repeat(original, 2, axis=0)
        if stems is None:
            stems = np.zeros((0, 2, original.shape[1]), np.float32)
        if stems.ndim != 3 or stems.shape[1] != 2 or stems.shape[2] != original.shape[1]:
            raise ValueError("stems must be (n_sources, 2, n_samples) matching the original")
        if stems.dtype not in PLAYBACK_DTYPES or not stems.flags.c_contiguous:
            stems = np.ascontiguousarray(stems, dtype=np.float32)
        with self._lock:
            n = stems.shape[0]
            if len(self.strips) != n:
                self.strips = [StripSettings() for _ in range(n)]
            self._stems = stems
            self._original = original
            self._truth = ()  # the truth belongs to these stems' song: set_truth again
            self.sample_rate = int(sample_rate)
            self.levels = np.zeros((n + 2, 2), np.float32)
            self._current = np.zeros((2 * n + 1, 2), np.float32)
            self.position = min(self.position, self.n_samples)
            self._loop = None
            self.ended = False
            self.update_gains()
            self._current = self._target.copy()

    def replace_stems(self, stems: np.ndarray) -> None:
        """Swap in new stem arrays of the same shape (e.g. a reloaded session)."""
        if stems.shape != self._stems.shape:
            raise ValueError("replace_stems needs the same shape; use set_tracks")
        self._stems = stems if stems.dtype in PLAYBACK_DTYPES and stems.flags.c_contiguous else (
            np.ascontiguousarray(stems, dtype=np.float32))

    def set_truth(self, truth: Optional[Sequence[Optional[np.ndarray]]]) -> None:
        """The true stems, one per stem in stem order ((2, n_samples) float32, or None where there is
        none), or None to forget them. Strips set to hear "truth" or "error" play them."""
        if truth is None:
            self._truth = ()
            self.update_gains()
            return
        if len(truth) != self.n_sources:
            raise ValueError("set_truth needs one entry (or None) per stem")
        arrays = []
        for t in truth:
            if t is not None:
                if t.shape != (2, self.n_samples):
                    raise ValueError("a true stem must be (2, n_samples) like the stems")
                t = np.ascontiguousarray(t, dtype=np.float32)
            arrays.append(t)
        self._truth = tuple(arrays)
        self.update_gains()

    def has_truth(self, i: int) -> bool:
        return i < len(self._truth) and self._truth[i] is not None

    @property
    def n_sources(self) -> int:
        return int(self._stems.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self._original.shape[1])

    @property
    def stems(self) -> np.ndarray:
        return self._stems

    def gain_matrix(self) -> np.ndarray:
        """(2 n_sources + 1, 2) linear gains per row and output channel from the current settings:
        the stems, the original, then the true stems.

        Without stems (a song not separated yet) the original mix is all there is to hear, so it
        plays as if the A/B switch were on B. A strip set to hear a truth it does not have plays
        its estimate.
        """
        n = len(self.strips)
        g = np.zeros((2 * n + 1, 2), np.float32)
        any_solo = any(s.solo for s in self.strips)
        master = 0.0 if self.master_mute else db_to_gain(self.master_gain_db)
        if self.play_original or self.n_sources == 0:
            g[n, :] = master
            return g
        for i, s in enumerate(self.strips):
            audible = not s.mute and (s.solo or not any_solo)
            if audible:
                left, right = pan_gains(s.pan)
                lin = db_to_gain(s.gain_db) * master
                listen = s.listen if self.has_truth(i) else "estimate"
                if listen != "truth":
                    sign = -1.0 if listen == "error" else 1.0
                    g[i] = (sign * lin * left, sign * lin * right)
                if listen != "estimate":
                    g[n + 1 + i] = (lin * left, lin * right)
        return g

    def update_gains(self) -> None:
        """Publish the settings to the callback: one reference swap, heard within one block."""
        self._target = self.gain_matrix()

    def seek(self, sample: int) -> None:
        sample = int(np.clip(sample, 0, max(0, self.n_samples)))
        serial = self._seek[0] + 1
        self._seek = (serial, sample)
        self.ended = False

    def set_loop(self, start: Optional[int], end: Optional[int] = None) -> None:
        """Loop [start, end) in samples, or None to play through."""
        if start is None or end is None:
            self._loop = None
            return
        a, b = sorted((int(start), int(end)))
        a, b = max(0, a), min(self.n_samples, b)
        self._loop = (a, b) if b - a >= 64 else None

    @property
    def loop(self) -> Optional[tuple[int, int]]:
        return self._loop

    # ---- the audio callback's work ------------------------------------------------------------
    def process(self, out: np.ndarray) -> int:
        """Fill out: (frames, 2) float32 with the next block and advance the position.

        Returns the number of frames of song played (less than frames at the end, the rest is
        silence). Allocates no arrays: mixing happens in preallocated scratch buffers.
        """
        frames = out.shape[0]
        if frames > self.max_block:
            out.fill(0.0)
            return 0
        serial, target_pos = self._seek
        if serial != self._seek_seen:
            self._seek_seen = serial
            self.position = target_pos
        target = self._target
        current = self._current
        stems, original, truth = self._stems, self._original, self._truth
        loop = self._loop
        n_src = stems.shape[0]
        n_rows = target.shape[0]
        scratch = self._scratch
        scratch[:, :frames] = 0.0
        levels = self.levels
        levels.fill(0.0)
        pos = self.position
        written = 0
        ramp_pending = current.shape == target.shape and not np.array_equal(current, target)
        while written < frames:
            # Inside or before the loop, play to its end and wrap; after it (a seek), play on.
            in_loop = loop is not None and pos <= loop[1]
            end = loop[1] if in_loop else self.n_samples  # type: ignore[index]
            if pos >= end:
                if in_loop:
                    pos = loop[0]  # type: ignore[index]
                    continue
                break
            take = min(frames - written, end - pos)
            for k in range(min(n_src + 1, n_rows)):
                # strip k: its stem (or the original) and, for a stem, its true stem's row
                src = stems[k] if k < n_src else original
                ga1 = target[k]
                ga0 = current[k] if ramp_pending else ga1
                a_on = not (ga0[0] == 0.0 and ga0[1] == 0.0 and ga1[0] == 0.0 and ga1[1] == 0.0)
                t_row = n_src + 1 + k
                t_src = truth[k] if k < n_src and k < len(truth) and t_row < n_rows else None
                b_on = False
                if t_src is not None:
                    gb1 = target[t_row]
                    gb0 = current[t_row] if ramp_pending else gb1
                    b_on = not (gb0[0] == 0.0 and gb0[1] == 0.0 and gb1[0] == 0.0 and gb1[1] == 0.0)
                if not a_on and not b_on:
                    continue
                for c in range(2):
                    dst = scratch[c, written : written + take]
                    tmp = self._tmp[:take]
                    if a_on:
                        self._scaled(src[c, pos : pos + take], ga0[c], ga1[c], ramp_pending, tmp)
                    if b_on and t_src is not None:
                        tmp2 = self._tmp2[:take] if a_on else tmp
                        self._scaled(t_src[c, pos : pos + take], gb0[c], gb1[c], ramp_pending, tmp2)
                        if a_on:
                            np.add(tmp, tmp2, out=tmp)
                    np.add(dst, tmp, out=dst)
                    np.abs(tmp, out=tmp)
                    peak = tmp.max() if take else 0.0
                    if peak > levels[k, c]:
                        levels[k, c] = peak
            ramp_pending = False
            pos += take
            written += take
        if current.shape == target.shape:
            current[...] = target
        else:
            self._current = target.copy()  # tracks changed under us: a rare, tolerated allocation
        for c in range(2):
            np.abs(scratch[c, :frames], out=self._tmp[:frames])
            levels[-1, c] = self._tmp[:frames].max() if frames else 0.0
        out[...] = scratch[:, :frames].T
        self.position = pos
        self.blocks_processed += 1
        if written < frames:
            self.ended = True
        return written

    def _scaled(self, seg: np.ndarray, g0: float, g1: float, ramp: bool, out: np.ndarray) -> None:
        """out = seg * gain, the gain going from g0 to g1 across the first RAMP_SAMPLES when ramping."""
        np.multiply(seg, g1, out=out)
        if ramp and g0 != g1:
            r = min(RAMP_SAMPLES, seg.shape[0])
            rr = self._ramp_tmp[:r]
            np.multiply(self._ramp[:r] if r == RAMP_SAMPLES else self._ramp[RAMP_SAMPLES - r :], g1 - g0, out=rr)
            rr += g0
            np.multiply(seg[:r], rr, out=out[:r])

    # ---- offline rendering (export), worker thread --------------------------------------------
    def render(
        self,
        start: int = 0,
        stop: Optional[int] = None,
        block: int = 65536,
        progress: Optional[Callable[[int, int], None]] = None,
        cancel: Optional[threading.Event] = None,
        stem_reader: Optional[Callable[[int, int, int], np.ndarray]] = None,
    ) -> np.ndarray:
        """The remix as the mixer is set now, (2, n) float32, with the same arithmetic as process().

        Ignores loop and position; `progress(done, total)` is called per block. stem_reader(i, start, stop),
        when given, supplies stem i's samples [start, stop) as (2, m) float32 instead of the stems the
        mixer plays (SeparationResult.block_reader: compact stems read back in full precision).
        """
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        with self._lock:
            g = self.gain_matrix()
            stems, original, truth = self._stems, self._original, self._truth
        n = max(0, stop - start)
        out = np.zeros((2, n), np.float32)
        n_src = stems.shape[0]
        for a in range(0, n, block):
            check_cancel(cancel)  # the engine's cancel exception, raised in the export worker
            b = min(n, a + block)
            for row in range(g.shape[0]):
                if g[row, 0] == 0.0 and g[row, 1] == 0.0:
                    continue
                if row < n_src and stem_reader is not None:
                    part = stem_reader(row, start + a, start + b)
                    for c in range(2):
                        out[c, a:b] += part[c] * g[row, c]
                    continue
                if row <= n_src:
                    src = stems[row] if row < n_src else original
                else:
                    k = row - n_src - 1
                    t = truth[k] if k < len(truth) else None
                    if t is None:
                        continue
                    src = t
                for c in range(2):
                    out[c, a:b] += src[c, start + a : start + b] * g[row, c]
            if progress is not None:
                progress(b, n)
        return out
