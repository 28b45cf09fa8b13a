"""Is the Wiener filter sound? The engine's filter given estimates near the truth: the true stems' ratio
mask, and that mask with every bin scaled by a random factor in [0.3, 1.7] (renormalised), on every fifth
excerpt of the benchmark. Prints the mean SDR (excerpts' mean over the stems that play) with and without it.

    python bench/wiener_oracle.py
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.spectral import STFTConfig, istft, stft  # noqa: E402
from engine.metrics import is_active, sdr  # noqa: E402
from engine.wiener import wiener_refine  # noqa: E402
from training.datasets.dataset import MultitrackDataset  # noqa: E402

torch.set_num_threads(1)
ds = MultitrackDataset("data/benchmark"); cfg = STFTConfig()
rng = np.random.default_rng(0)
rows = {"ratio": [], "ratio+wiener": [], "noisy ratio": [], "noisy+wiener": []}
for i in range(0, 50, 5):
    ex = ds.load_song(i)
    stems = torch.from_numpy(np.stack([np.asarray(ex.stems[s], np.float32) for s in ds.sources])); mix = stems.sum(0)
    S = stft(stems, cfg); X = stft(mix, cfg)
    mag = S.abs()
    m = mag / (mag.sum(0, keepdim=True) + 1e-8)
    noisy = m * torch.from_numpy(rng.uniform(0.3, 1.7, m.shape).astype(np.float32))
    noisy = noisy / (noisy.sum(0, keepdim=True) + 1e-8)
    for name, mm in (("ratio", m), ("noisy ratio", noisy)):
        est = mm * X[None]
        w = wiener_refine(est, X)
        for label, e in ((name, est), (name.replace(" ratio","") + "+wiener" if "noisy" in name else "ratio+wiener", w)):
            y = istft(e, cfg, mix.shape[-1]).numpy()
            vals = [sdr(stems[j].numpy(), y[j]) for j in range(len(stems)) if is_active(stems[j].numpy())]
            rows[label].append(np.mean(vals))
for k, v in rows.items(): print(f"{k:14s} {np.mean(v):6.2f} dB over {len(v)} excerpts")
