"""The IASS network: a residual U-Net predicting one soft mask per source, with an activity head on its bottleneck."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.sources import DEFAULT_SOURCES

__all__ = ["DEFAULT_SOURCES", "IASSUNet", "ResBlock"]


class ResBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (1x1 conv when the width changes)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = (
            nn.Identity() if in_ch == out_ch else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                                                nn.BatchNorm2d(out_ch))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class IASSUNet(nn.Module):
    """Instrument-activation-aware separation network.

    forward(mag) with mag: (batch, channels, n_bins, n_frames) mixture magnitudes returns
    masks: (batch, n_sources, channels, n_bins, n_frames) in [0, 1] and
    activity_logits: (batch, n_sources, n_frames), one logit per source per frame.
    n_bins must be divisible by 2**depth; n_frames may be anything (padded inside).
    """

    def __init__(
        self,
        sources: Sequence[str] = DEFAULT_SOURCES,
        n_channels: int = 2,
        n_bins: int = 512,
        depth: int = 5,
        base_width: int = 16,
        max_width: int = 256,
        activity_hidden: int = 128,
        mask_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        if n_bins % (2**depth) != 0:
            raise ValueError(f"n_bins ({n_bins}) must be divisible by 2**depth ({2**depth})")
        if mask_activation not in ("sigmoid", "softmax"):
            raise ValueError("mask_activation must be 'sigmoid' or 'softmax'")
        self.sources = tuple(sources)
        self.n_sources = len(self.sources)
        self.n_channels = n_channels
        self.n_bins = n_bins
        self.depth = depth
        self.mask_activation = mask_activation
        widths = [min(base_width * 2**i, max_width) for i in range(depth + 1)]

        # Per-frequency affine on log-magnitudes: the spectrum's tilt is learnt, not assumed.
        self.input_scale = nn.Parameter(torch.ones(n_bins))
        self.input_bias = nn.Parameter(torch.zeros(n_bins))
        self.stem = nn.Conv2d(n_channels, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList([ResBlock(widths[i], widths[i]) for i in range(depth)])
        self.downs = nn.ModuleList(
            [nn.Conv2d(widths[i], widths[i + 1], 2, stride=2) for i in range(depth)]
        )
        self.bottleneck = ResBlock(widths[depth], widths[depth])
        self.ups = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)]
        )
        self.decoders = nn.ModuleList([ResBlock(2 * widths[i], widths[i]) for i in range(depth)])
        self.mask_head = nn.Conv2d(widths[0], self.n_sources * n_channels, 1)
        # Activity classifier on the bottleneck latent, pooled over frequency.
        self.activity_head = nn.Sequential(
            nn.Conv1d(2 * widths[depth], activity_hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(activity_hidden, activity_hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(activity_hidden, self.n_sources, 1),
        )

    def architecture(self) -> dict:
        """The constructor arguments, as stored in the model card."""
        widths0 = self.stem.out_channels
        return {
            "sources": list(self.sources),
            "n_channels": self.n_channels,
            "n_bins": self.n_bins,
            "depth": self.depth,
            "base_width": widths0,
            "max_width": self.bottleneck.conv1.out_channels,
            "activity_hidden": self.activity_head[0].out_channels,
            "mask_activation": self.mask_activation,
        }

    def forward(self, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, n_bins, n_frames = mag.shape
        unit = 2**self.depth
        pad = (-n_frames) % unit
        x = torch.log1p(mag)
        x = x * self.input_scale[:, None] + self.input_bias[:, None]
        if pad:
            x = F.pad(x, (0, pad))
        x = self.stem(x)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        z = self.bottleneck(x)
        pooled = torch.cat([z.mean(dim=2), z.amax(dim=2)], dim=1)  # (batch, 2*width, frames/unit)
        logits = self.activity_head(pooled.float() if pooled.dtype != torch.float32 else pooled)
        logits = F.interpolate(logits, scale_factor=float(unit), mode="linear", align_corners=False)
        x = z
        for i in reversed(range(self.depth)):
            x = self.ups[i](x)
            x = self.decoders[i](torch.cat([x, skips[i]], dim=1))
        out = self.mask_head(x).float()
        out = out.reshape(batch, self.n_sources, channels, n_bins, n_frames + pad)
        masks = torch.softmax(out, dim=1) if self.mask_activation == "softmax" else torch.sigmoid(out)
        return masks[..., :n_frames], logits[..., :n_frames]
