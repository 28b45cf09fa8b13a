"""The one matched STFT / inverse-STFT pair every part of StemLab uses (engine, training, evaluation)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class STFTConfig:
    """STFT settings. With center=True frame t is centred on sample t * hop_length."""

    n_fft: int = 2048
    hop_length: int = 512

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.hop_length + 1

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def _window(n_fft: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (n_fft, str(device), dtype)
    win = _WINDOWS.get(key)
    if win is None:
        win = torch.hann_window(n_fft, periodic=True, device=device, dtype=dtype)
        _WINDOWS[key] = win
    return win


def stft(audio: torch.Tensor, config: STFTConfig) -> torch.Tensor:
    """audio: (..., n_samples) real -> (..., n_bins, n_frames) complex."""
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    spec = torch.stft(
        flat,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window=_window(config.n_fft, audio.device, audio.dtype),
        center=True,
        pad_mode="reflect" if shape[-1] > config.n_fft // 2 else "constant",
        return_complex=True,
    )
    return spec.reshape(*shape[:-1], spec.shape[-2], spec.shape[-1])


def istft(spec: torch.Tensor, config: STFTConfig, length: int) -> torch.Tensor:
    """spec: (..., n_bins, n_frames) complex -> (..., length) real; the exact inverse of `stft`."""
    shape = spec.shape
    flat = spec.reshape(-1, shape[-2], shape[-1])
    audio = torch.istft(
        flat,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window=_window(config.n_fft, spec.device, spec.real.dtype),
        center=True,
        length=length,
    )
    return audio.reshape(*shape[:-2], length)
