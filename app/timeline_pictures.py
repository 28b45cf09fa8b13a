"""What the timeline draws, computed off the GUI thread: a min/max waveform overview and
log-frequency spectrogram images decimated to a screenful of columns, so a long song costs the
same to draw as a short one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from engine.progress import check_cancel

SPEC_N_FFT = 2048
SPEC_BANDS = 160
SPEC_FMIN = 30.0
SPEC_MAX_COLUMNS = 2400
OVERVIEW_BUCKETS = 6000
DB_FLOOR = -100.0  # what silence reads in an image (power is floored here before the log)
DISPLAY_RANGE_DB = 75.0  # the colour map spans this much below the loudest band
DISPLAY_TOP_MIN_DB = -60.0  # a quiet song's top is not pulled up to its own faint peak


@dataclass
class Overview:
    """Waveform envelope: per bucket the min and max of the mono mix. times: (n,) seconds."""

    times: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class Spectrogram:
    """A log-frequency magnitude image.

    image: (n_columns, n_bands) float32 in dB (relative to a full-scale sine), column k covering
    start_s + [k, k+1) * column_s seconds; band j centred at `band_hz[j]`, bands equally spaced in
    log10(Hz) between log_fmin and log_fmax. start_s is 0 for a whole song, the tile's start for a
    tile of the span on screen.
    """

    image: np.ndarray
    column_s: float
    log_fmin: float
    log_fmax: float
    start_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.image.shape[0] * self.column_s


def display_levels(image: np.ndarray) -> tuple[float, float]:
    """(low, high) dB for drawing a spectrogram image: the colour map's bottom to its top.

    The top sits at the loudest band (rounded up to 5 dB, at least DISPLAY_TOP_MIN_DB), the bottom
    DISPLAY_RANGE_DB below it but never below DB_FLOOR, so silence (DB_FLOOR) is always the lowest
    colour: a silent or very quiet song must not draw its floor in the middle of the scale.
    Non-finite values are ignored; an empty image gets the range of silence.
    """
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else DB_FLOOR
    high = float(np.ceil(max(top, DISPLAY_TOP_MIN_DB) / 5.0) * 5.0)
    low = max(high - DISPLAY_RANGE_DB, DB_FLOOR)
    return low, high


def mono(samples: np.ndarray) -> np.ndarray:
    """(channels, n) -> (n,) float32 mean of the channels."""
    x = np.asarray(samples, dtype=np.float32)
    return x if x.ndim == 1 else x.mean(axis=0, dtype=np.float32)


def overview(
    samples: np.ndarray,
    sample_rate: int,
    n_buckets: int = OVERVIEW_BUCKETS,
    start: int = 0,
    stop: Optional[int] = None,
) -> Overview:
    """Min/max envelope of samples[start:stop] (mono or (channels, n)) in at most n_buckets buckets."""
    x = mono(samples)
    stop = x.shape[0] if stop is None else min(stop, x.shape[0])
    start = max(0, min(start, stop))
    seg = x[start:stop]
    n = seg.shape[0]
    if n == 0:
        z = np.zeros(1, np.float32)
        return Overview(np.array([start / sample_rate]), z, z)
    per = max(1, int(np.ceil(n / n_buckets)))
    m = n // per
    body = seg[: m * per].reshape(m, per)
    lo, hi = body.min(axis=1), body.max(axis=1)
    if m * per < n:
        lo = np.append(lo, seg[m * per :].min())
        hi = np.append(hi, seg[m * per :].max())
    times = (start + (np.arange(lo.shape[0]) + 0.5) * per) / sample_rate
    return Overview(times.astype(np.float64), lo.astype(np.float32), hi.astype(np.float32))


def log_band_matrix(
    n_fft: int, sample_rate: int, n_bands: int = SPEC_BANDS, fmin: float = SPEC_FMIN
) -> tuple[np.ndarray, float, float]:
    """(n_bands, n_fft // 2 + 1) weights averaging linear bins into log-spaced bands.

    Each band averages the bins its edges overlap (weighted by the overlap), so narrow low bands
    interpolate between neighbouring bins and wide high bands average many. Returns the matrix and
    log10 of the lowest and highest edge.
    """
    n_bins = n_fft // 2 + 1
    fmax = sample_rate / 2.0
    fmin = min(fmin, fmax / 4)
    edges = np.logspace(np.log10(fmin), np.log10(fmax), n_bands + 1)
    df = sample_rate / n_fft
    lo_bin = (np.arange(n_bins) - 0.5) * df
    hi_bin = (np.arange(n_bins) + 0.5) * df
    m = np.zeros((n_bands, n_bins), np.float32)
    for j in range(n_bands):
        a, b = edges[j], edges[j + 1]
        overlap = np.clip(np.minimum(hi_bin, b) - np.maximum(lo_bin, a), 0.0, None)
        total = overlap.sum()
        if total <= 0:
            overlap[int(np.clip(round((a + b) / 2 / df), 0, n_bins - 1))] = 1.0
            total = 1.0
        m[j] = overlap / total
    return m, float(np.log10(fmin)), float(np.log10(fmax))


_BAND_CACHE: dict[tuple[int, int, int, float], tuple[np.ndarray, float, float]] = {}


@dataclass
class BandFrames:
    """Band power per analysis frame of one signal, kept so a gated version redraws without an FFT.

    power: (n_frames, n_bands) float32 linear power, frames every hop_s seconds (frame k centred at
    k * hop_s), n_frames a multiple of per_col (the frames averaged into one image column).
    """

    power: np.ndarray
    per_col: int
    hop_s: float
    log_fmin: float
    log_fmax: float

    def frame_times(self) -> np.ndarray:
        return np.arange(self.power.shape[0]) * self.hop_s

    def render(self, gain: Optional[np.ndarray] = None) -> Spectrogram:
        """The image, optionally with a power gain per frame (the square of a gate envelope)."""
        p = self.power if gain is None else self.power * gain[:, None].astype(np.float32)
        n_cols = p.shape[0] // self.per_col
        img = p.reshape(n_cols, self.per_col, -1).mean(axis=1)
        np.maximum(img, 10.0 ** (DB_FLOOR / 10.0), out=img)
        np.log10(img, out=img)
        img *= 10.0
        return Spectrogram(
            img.astype(np.float32, copy=False), self.per_col * self.hop_s, self.log_fmin, self.log_fmax
        )

    def render_gated(self, gate: np.ndarray, gate_times: np.ndarray) -> Spectrogram:
        """The image of this signal multiplied by a gate curve given at gate_times (seconds)."""
        g = np.interp(self.frame_times(), gate_times, np.asarray(gate, dtype=np.float64))
        return self.render((g * g).astype(np.float32))

    def render_span(
        self,
        start_s: float,
        stop_s: float,
        gate: Optional[np.ndarray] = None,
        gate_times: Optional[np.ndarray] = None,
        max_columns: int = SPEC_MAX_COLUMNS,
    ) -> Spectrogram:
        """A tile: the image of [start_s, stop_s) only, at up to max_columns columns (every frame when the
        span is short), optionally gated. Costs the frames on screen, not the song: no FFT is redone."""
        n = self.power.shape[0]
        f0 = int(np.clip(np.floor(start_s / self.hop_s), 0, max(0, n - 1)))
        f1 = int(np.clip(np.ceil(stop_s / self.hop_s), f0 + 1, n))
        per = max(1, int(np.ceil((f1 - f0) / max_columns)))
        f1 = min(n, f0 + per * max(1, (f1 - f0) // per))
        p = self.power[f0:f1]
        if gate is not None and gate_times is not None:
            g = np.interp(np.arange(f0, f1) * self.hop_s, gate_times, np.asarray(gate, dtype=np.float64))
            p = p * (g * g).astype(np.float32)[:, None]
        tile = BandFrames(p, per, self.hop_s, self.log_fmin, self.log_fmax).render()
        tile.start_s = f0 * self.hop_s
        return tile


def band_frames(
    samples: np.ndarray,
    sample_rate: int,
    *,
    max_columns: int = SPEC_MAX_COLUMNS,
    n_fft: int = SPEC_N_FFT,
    n_bands: int = SPEC_BANDS,
    fmin: float = SPEC_FMIN,
    cancel: Optional[threading.Event] = None,
) -> BandFrames:
    """Log-frequency band power of a mono mix of `samples`, every n_fft/2 samples.

    Every sample is analysed and BandFrames.render averages consecutive frames into at most
    max_columns columns, so a short drum hit still shows in a decimated 4-minute image.
    """
    x = mono(samples)
    key = (n_fft, sample_rate, n_bands, fmin)
    if key not in _BAND_CACHE:
        _BAND_CACHE[key] = log_band_matrix(n_fft, sample_rate, n_bands, fmin)
    bands, log_fmin, log_fmax = _BAND_CACHE[key]
    hop = n_fft // 2
    n = x.shape[0]
    n_frames = max(1, int(np.ceil(n / hop)))
    per_col = max(1, int(np.ceil(n_frames / max_columns)))
    n_cols = int(np.ceil(n_frames / per_col))
    total = n_cols * per_col
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    scale = (2.0 / window.sum()) ** 2  # a full-scale sine reads 0 dB
    out = np.empty((total, n_bands), np.float32)
    block = 2048
    for f0 in range(0, total, block):
        check_cancel(cancel)
        f1 = min(total, f0 + block)
        # Frame k covers x[k * hop - n_fft / 2 : ... + n_fft] (centred on sample k * hop), zeros past the
        # ends: padded a block at a time, so an hour-long song is not copied whole.
        a, b = f0 * hop - n_fft // 2, (f1 - 1) * hop - n_fft // 2 + n_fft
        seg = np.zeros(b - a, np.float32)
        lo, hi = max(a, 0), min(b, n)
        if hi > lo:
            seg[lo - a : hi - a] = x[lo:hi]
        frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop]
        spec = np.fft.rfft(frames * window, axis=1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        out[f0:f1] = (power @ bands.T) * scale
    return BandFrames(out, per_col, hop / sample_rate, log_fmin, log_fmax)


def spectrogram_tile(
    samples: np.ndarray,
    sample_rate: int,
    start: int,
    stop: int,
    *,
    max_columns: int = SPEC_MAX_COLUMNS,
    cancel: Optional[threading.Event] = None,
) -> Spectrogram:
    """The log-frequency spectrogram of samples[..., start:stop] only, placed at its time in the song:
    what is on screen when zoomed in on a long song, in full detail, for the cost of that span."""
    tile = log_spectrogram(samples[..., start:stop], sample_rate, max_columns=max_columns, cancel=cancel)
    tile.start_s = start / sample_rate
    return tile


def log_spectrogram(
    samples: np.ndarray,
    sample_rate: int,
    *,
    max_columns: int = SPEC_MAX_COLUMNS,
    n_fft: int = SPEC_N_FFT,
    n_bands: int = SPEC_BANDS,
    fmin: float = SPEC_FMIN,
    cancel: Optional[threading.Event] = None,
) -> Spectrogram:
    """The decimated log-frequency spectrogram image of samples (see band_frames)."""
    return band_frames(
        samples, sample_rate, max_columns=max_columns, n_fft=n_fft, n_bands=n_bands, fmin=fmin, cancel=cancel
    ).render()
