"""Multichannel Wiener refinement of masked estimates (one EM step, closed-form 2x2 inverses).

torch 2.13's batched linalg.solve hangs on this CPU with several threads (see NOTES.md), and the
covariances are only 2x2, so the inverse is written out.
"""

from __future__ import annotations

import torch


def wiener_refine(estimates: torch.Tensor, mix: torch.Tensor, iterations: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """estimates: (n_sources, 2, n_bins, n_frames) complex; mix: (2, n_bins, n_frames) complex.

    Returns refined (n_sources, 2, n_bins, n_frames) complex estimates that sum to the mixture.
    """
    if estimates.shape[1] != 2:
        raise ValueError("Wiener refinement expects stereo estimates")
    y = estimates
    for _ in range(iterations):
        v = (y.real ** 2 + y.imag ** 2).mean(dim=1)  # (S, F, T) power spectral densities
        # Spatial covariance per source and bin: R = sum_t y y^H / sum_t v.
        r00 = (y[:, 0].abs() ** 2).sum(-1)
        r11 = (y[:, 1].abs() ** 2).sum(-1)
        r01 = (y[:, 0] * y[:, 1].conj()).sum(-1)
        norm = v.sum(-1) + eps
        r00, r11, r01 = r00 / norm, r11 / norm, r01 / norm  # (S, F)
        # Mixture covariance C = sum_j v_j R_j + eps I, per (F, T).
        c00 = (v * r00[..., None]).sum(0) + eps
        c11 = (v * r11[..., None]).sum(0) + eps
        c01 = (v * r01[..., None]).sum(0)
        det = (c00 * c11 - (c01.abs() ** 2)).clamp_min(eps * eps)
        i00, i11, i01 = c11 / det, c00 / det, -c01 / det  # inverse of [[c00, c01], [conj c01, c11]]
        i10 = i01.conj()
        # x' = C^-1 x, then y_j = v_j R_j x'.
        x0 = i00 * mix[0] + i01 * mix[1]
        x1 = i10 * mix[0] + i11 * mix[1]
        a0 = r00[..., None] * x0 + r01[..., None] * x1
        a1 = r01.conj()[..., None] * x0 + r11[..., None] * x1
        y = torch.stack([v * a0, v * a1], dim=1)
    return y
