"""Multi-task loss weighting across sources: unit, Dynamic Weight Average, Energy Based Weighting.

Each function returns one weight per source; the trainer multiplies them into the per-source losses.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def unit_weights(n_sources: int) -> np.ndarray:
    return np.ones(n_sources, dtype=np.float64)


def dwa_weights(epoch_losses: Sequence[Sequence[float]], temperature: float = 2.0) -> np.ndarray:
    """Dynamic Weight Average (Liu et al. 2019).

    epoch_losses: per finished epoch, the mean loss of each source (oldest first). With fewer than
    two finished epochs every weight is one. Otherwise r_j = L_j(t-1) / L_j(t-2) and
    w_j = K * exp(r_j / T) / sum_k exp(r_k / T), so the weights sum to K (the number of sources) and
    a source whose loss falls slowly gets more weight.
    """
    history = [np.asarray(e, dtype=np.float64) for e in epoch_losses]
    if len(history) < 2:
        n = len(history[0]) if history else 0
        return np.ones(n, dtype=np.float64)
    prev, prev2 = history[-1], history[-2]
    ratio = prev / np.maximum(prev2, 1e-12)
    z = np.exp((ratio - ratio.max()) / temperature)
    return len(ratio) * z / z.sum()


def ebw_weights(energies: Sequence[float], power: int = 1) -> np.ndarray:
    """Energy Based Weighting: w_j = (energy of the loudest source / energy of source j) ** power.

    Quiet sources get large weights so loud ones (drums) do not dominate the loss.
    A source with no energy at all gets weight one (nothing to learn from it).
    """
    e = np.asarray(energies, dtype=np.float64)
    w = np.ones_like(e)
    ok = e > 0
    if ok.any():
        w[ok] = (e[ok].max() / e[ok]) ** power
    return w


def energy_normalised_weights(energies: Sequence[float]) -> np.ndarray:
    """Weights proportional to 1 / energy, normalised to sum to one."""
    e = np.asarray(energies, dtype=np.float64)
    inv = np.where(e > 0, 1.0 / np.maximum(e, 1e-30), 0.0)
    if inv.sum() == 0:
        return np.full_like(e, 1.0 / max(len(e), 1))
    return inv / inv.sum()
