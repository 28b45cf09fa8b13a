"""Separation and activity-detection metrics shared by validation, `stemlab evaluate` and the tests."""

from __future__ import annotations

import numpy as np

SILENCE_ENERGY = 1e-8  # mean square below which a reference stem counts as silent


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
