"""Is the Wiener filter sound? The engine's filter given estimates near the truth: the true stems' ratio
mask, and that mask with every bin scaled by a random factor in [0.3, 1.7] (renormalised), on every fifth
excerpt of the benchmark. Prints the mean SDR (excerpts' mean over the stems that play) with and without it.

    python bench/wiener_oracle.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.metrics import is_active, sdr  # noqa: E402
from engine.spectral import STFTConfig, istft, stft  # noqa: E402
from engine.wiener import wiener_refine  # noqa: E402
from training.datasets.dataset import MultitrackDataset  # noqa: E402


def mean_sdr(stems: torch.Tensor, estimate: torch.Tensor, config: STFTConfig) -> float:
    """Mean SDR over the stems that play; estimate: complex spectrograms (S, 2, bins, frames)."""
    audio = istft(estimate, config, stems.shape[-1]).numpy()
    truth = stems.numpy()
    return float(np.mean([sdr(truth[j], audio[j]) for j in range(len(truth)) if is_active(truth[j])]))


def main() -> None:
    torch.set_num_threads(1)
    ds, config = MultitrackDataset("data/benchmark"), STFTConfig()
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {}
    for i in range(0, len(ds.songs), 5):
        excerpt = ds.load_song(i)
        stems = torch.from_numpy(np.stack([np.asarray(excerpt.stems[s], np.float32) for s in ds.sources]))
        spec, mix = stft(stems, config), stft(stems.sum(0), config)
        ratio = spec.abs() / (spec.abs().sum(0, keepdim=True) + 1e-8)
        noisy = ratio * torch.from_numpy(rng.uniform(0.3, 1.7, ratio.shape).astype(np.float32))
        noisy = noisy / (noisy.sum(0, keepdim=True) + 1e-8)
        for name, mask in (("ratio mask", ratio), ("noisy ratio mask", noisy)):
            masked = mask * mix[None]
            rows.setdefault(name, []).append(mean_sdr(stems, masked, config))
            rows.setdefault(f"{name} + Wiener", []).append(mean_sdr(stems, wiener_refine(masked, mix), config))
    for name, values in rows.items():
        print(f"{name:24s} {np.mean(values):6.2f} dB over {len(values)} excerpts")


if __name__ == "__main__":
    main()
