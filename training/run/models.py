"""The networks a run can train: the IASS U-Net (engine.model) and the Open-Unmix baseline.

Both map mixture magnitudes (batch, 2, max_bin, n_frames) to per-source masks
(batch, n_sources, 2, max_bin, n_frames); only IASS also gives activity logits.
"""

from __future__ import annotations

import sys
import types
from typing import Optional

import torch
from torch import nn

from engine.model import IASSUNet
from training.errors import TrainingError
from training.run.config import TrainConfig


def _import_openunmix() -> type:
    # openunmix.model imports torchaudio only for its transforms module; PyPI's torchaudio is a
    # CUDA build that fails here (NOTES.md), and the model class needs none of it.
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    try:
        from openunmix.model import OpenUnmix
    except ImportError as exc:
        raise TrainingError("the Open-Unmix baseline needs `pip install --no-deps openunmix==1.3.0`") from exc
    return OpenUnmix


class UMXBaseline(nn.Module):
    """One Open-Unmix model (the openunmix package's own class) per source.

    Each predicts its source's magnitude, trained on that directly (Open-Unmix's own objective);
    at inference the estimates become ratio masks v_j / sum_k v_k (Open-Unmix's softmask mode).
    """

    def __init__(self, sources: list[str], n_bins: int, hidden_size: int = 512) -> None:
        super().__init__()
        open_unmix = _import_openunmix()
        self.sources = tuple(sources)
        self.n_sources = len(sources)
        self.n_bins = n_bins
        self.targets = nn.ModuleList([open_unmix(nb_bins=n_bins, nb_channels=2, hidden_size=hidden_size)
                                      for _ in sources])

    def magnitudes(self, mag: torch.Tensor) -> torch.Tensor:
        """mag: (batch, 2, n_bins, n_frames) -> estimates (batch, n_sources, 2, n_bins, n_frames)."""
        # Open-Unmix takes (batch, channels, bins, frames), as we do
        return torch.stack([t(mag.contiguous()) for t in self.targets], dim=1)

    def forward(self, mag: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        v = self.magnitudes(mag).float()
        return v / (v.sum(dim=1, keepdim=True) + 1e-8), None


def build_model(cfg: TrainConfig) -> nn.Module:
    if cfg.model == "umx":
        return UMXBaseline(cfg.sources, cfg.max_bin, cfg.umx_hidden)
    return IASSUNet(sources=cfg.sources, n_channels=2, n_bins=cfg.max_bin, depth=cfg.depth,
                    base_width=cfg.base_width, max_width=cfg.max_width, activity_hidden=cfg.activity_hidden,
                    mask_activation=cfg.mask_activation)
