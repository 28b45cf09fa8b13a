"""Activity gating as in IASS: sigmoid, binarize at a threshold, median-filter along time, multiply into the mask."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch

GATING_MODES = ("binary", "soft", "none")


MAX_MEDIAN_FRAMES = 10_001  # about two minutes at 44.1 kHz / hop 512


@dataclass(frozen=True)
class GatingSettings:
    """How a source's predicted activity gates its mask.

    mode: "binary" (threshold then median filter, the IASS method), "soft" (multiply by the
    probability itself) or "none". median_frames is the filter length in frames; an even length is
    rounded up to the next odd one so the filter stays centred.
    """

    mode: str = "binary"
    threshold: float = 0.5
    median_frames: int = 9

    def __post_init__(self) -> None:
        if self.mode not in GATING_MODES:
            raise ValueError(f"gating mode must be one of {GATING_MODES}, not {self.mode!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], not {self.threshold}")
        if not 1 <= self.median_frames <= MAX_MEDIAN_FRAMES:
            # the filter pads the curve by half its length: a longer one would only cost memory
            raise ValueError(f"median_frames must lie between 1 and {MAX_MEDIAN_FRAMES}, not {self.median_frames}")

    def with_changes(self, **changes: object) -> "GatingSettings":
        return replace(self, **changes)  # type: ignore[arg-type]


GatingSpec = Union[GatingSettings, Mapping[str, GatingSettings]]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))).astype(np.float32)


def median_filter_binary(active: np.ndarray, n_frames: int) -> np.ndarray:
    """Median filter of a 0/1 curve along its last axis: a frame stays active when most of the
    n_frames centred on it are active. Edges are padded by repeating the end values.

    active: (..., n) bool or 0/1 -> (..., n) bool.
    """
    n = int(n_frames) | 1  # odd
    x = np.asarray(active, dtype=bool)
    if n == 1 or x.shape[-1] == 0:
        return x.copy()
    half = n // 2
    padded = np.concatenate(
        [np.repeat(x[..., :1], half, axis=-1), x, np.repeat(x[..., -1:], half, axis=-1)], axis=-1
    ).astype(np.int32)
    csum = np.concatenate([np.zeros(x.shape[:-1] + (1,), np.int32), np.cumsum(padded, axis=-1)], axis=-1)
    counts = csum[..., n:] - csum[..., :-n]
    return counts > half


def gate_curve(probability: np.ndarray, settings: GatingSettings) -> np.ndarray:
    """probability: (n_frames,) in [0, 1] -> gate (n_frames,) float32 in [0, 1]."""
    p = np.asarray(probability, dtype=np.float32)
    if settings.mode == "none":
        return np.ones_like(p)
    if settings.mode == "soft":
        return p.copy()
    return median_filter_binary(p >= settings.threshold, settings.median_frames).astype(np.float32)


def settings_for(spec: GatingSpec, source: str) -> GatingSettings:
    if isinstance(spec, GatingSettings):
        return spec
    return spec.get(source, GatingSettings())


def gates(probability: np.ndarray, sources: Sequence[str], spec: GatingSpec) -> np.ndarray:
    """probability: (n_sources, n_frames) -> gates (n_sources, n_frames), one setting per source."""
    return np.stack([gate_curve(probability[i], settings_for(spec, s)) for i, s in enumerate(sources)])


def ms_to_frames(ms: float, sample_rate: int, hop_length: int) -> int:
    """Median-filter length in milliseconds -> odd number of frames (at least 1)."""
    return max(1, int(round(ms / 1000.0 * sample_rate / hop_length))) | 1


def frames_to_ms(n_frames: int, sample_rate: int, hop_length: int) -> float:
    return 1000.0 * n_frames * hop_length / sample_rate



def gate_envelope(gate: np.ndarray, hop_length: int, n_fft: int, n_samples: int, start: int = 0,
                  stop: Optional[int] = None) -> np.ndarray:
    """Frame gates -> per-sample gain: the overlap-add of the squared Hann window weighted by the gates.

    gate: (..., n_frames) -> (..., stop - start), the samples [start, stop) of an n_samples signal
    (default all). For a consistent spectrogram (the mixture's STFT) iSTFT(gate * Z) equals
    envelope * iSTFT(Z) exactly; for masked spectrograms they agree wherever the gate is constant
    across one window and differ only within n_fft/2 of a transition, where both are the same
    window-shaped cross-fade. This lets gating be re-applied in milliseconds.
    """
    g = np.asarray(gate, dtype=np.float32)
    if n_fft % hop_length:
        raise ValueError("n_fft must be a multiple of hop_length")
    stop = n_samples if stop is None else stop
    ratio = n_fft // hop_length
    lead, n_frames = g.shape[:-1], g.shape[-1]
    half = n_fft // 2
    weights = (torch.hann_window(n_fft, periodic=True, dtype=torch.float32) ** 2).reshape(ratio, hop_length)
    # Padded sample q*hop + r (padded = original + n_fft/2) receives sum_k g[q - k] * w2[k*hop + r]:
    # a (rows x ratio) @ (ratio x hop) product over the rows q that cover [start, stop).
    q_lo = (start + half) // hop_length
    q_hi = (stop + half - 1) // hop_length + 1
    with torch.inference_mode():
        idx = torch.arange(q_lo, q_hi)[:, None] - torch.arange(ratio)[None, :]
        valid = ((idx >= 0) & (idx < n_frames)).float()
        flat = torch.from_numpy(g.reshape(-1, n_frames))
        shifted = flat[:, idx.clamp(0, n_frames - 1)] * valid
        num = (shifted @ weights).reshape(flat.shape[0], -1)
        den = (valid @ weights).reshape(-1)
        off = start + half - q_lo * hop_length
        out = (num[:, off:off + stop - start] / den[off:off + stop - start].clamp_min(1e-8)).numpy()
    return out.reshape(lead + (stop - start,))
