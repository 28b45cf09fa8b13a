"""How good a separation is and where a stem sounds: the figures validation, `stemlab evaluate`, the
benchmarks and the app's teaching view all compute the same way.

Activity here is what can be heard: a frame (centred on sample t * hop_length, the model's frame rate)
counts as sounding where the stem's RMS over an n_fft window exceeds ENERGY_THRESHOLD_DB.
"""

from __future__ import annotations

import numpy as np

from engine.spectral import STFTConfig

SILENCE_ENERGY = 1e-8  # mean square below which a reference stem counts as silent
ENERGY_THRESHOLD_DB = -60.0  # frame RMS (dBFS) above which a stem counts as sounding
SILENCE_DB = -120.0
DEFAULT_CONFIG = STFTConfig()


def sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-10) -> float:
    """Whole-excerpt SDR in dB, as the Music Demixing Challenge: 10 log10(sum s^2 / sum (s - s_hat)^2).

    reference, estimate: same shape (any), summed over everything (both channels).
    """
    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(estimate, dtype=np.float64)
    return float(10.0 * np.log10((np.sum(ref ** 2) + eps) / (np.sum(err ** 2) + eps)))


def is_active(reference: np.ndarray) -> bool:
    return float(np.mean(np.asarray(reference, dtype=np.float64) ** 2)) > SILENCE_ENERGY


def precision_recall_f1(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Frame-level precision, recall and F1 of 0/1 activity; 1.0 where nothing was to be found or claimed."""
    p = np.asarray(predicted, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    tp = float(np.sum(p & t))
    fp = float(np.sum(p & ~t))
    fn = float(np.sum(~p & t))
    precision = tp / (tp + fp) if tp + fp > 0 else 1.0
    recall = tp / (tp + fn) if tp + fn > 0 else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def frame_energy_db(x: np.ndarray, config: STFTConfig = DEFAULT_CONFIG) -> np.ndarray:
    """x: (channels, n_samples) -> (n_frames,) float32 RMS in dBFS over a Hann-free n_fft window
    centred on each frame (zero outside the signal), averaged over channels."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    n = x.shape[-1]
    n_frames = config.n_frames(n)
    power = (x ** 2).mean(axis=0)
    half = config.n_fft // 2
    cs = np.concatenate([[0.0], np.cumsum(power)])
    centres = np.arange(n_frames) * config.hop_length
    lo = np.clip(centres - half, 0, n)
    hi = np.clip(centres + half, 0, n)
    ms = (cs[hi] - cs[lo]) / config.n_fft
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(np.maximum(ms, 1e-12))
    return np.maximum(db, SILENCE_DB).astype(np.float32)


def energy_activity(x: np.ndarray, config: STFTConfig = DEFAULT_CONFIG,
                    threshold_db: float = ENERGY_THRESHOLD_DB) -> np.ndarray:
    """x: (channels, n_samples) -> (n_frames,) uint8, 1 where the frame RMS exceeds threshold_db."""
    return (frame_energy_db(x, config) > threshold_db).astype(np.uint8)
