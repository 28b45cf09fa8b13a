"""Shared fixtures: generated audio files and a tiny random model on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SR = 44100


def tone_mix(seconds: float = 3.0, sample_rate: int = SR, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A small stereo test signal: two tones and a noise burst. (channels, n) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sig = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t + 1.0)
    sig = sig + 0.05 * rng.standard_normal(t.shape) * (t % 1.0 < 0.2)
    out = np.stack([sig * (0.8 + 0.2 * c) for c in range(channels)]).astype(np.float32)
    return out


def make_tiny_model(folder: Path) -> Path:
    """A small random IASS model with its card (trained=False) in folder: folder/tiny.json."""
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import save_model

    torch.manual_seed(0)
    net = IASSUNet(n_bins=128, depth=3, base_width=4, max_width=16, activity_hidden=8, mask_activation="softmax")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.json"
    save_model(net, path, name="tiny-random", sample_rate=SR, n_fft=2048, hop_length=512, trained=False)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random IASS model with its card (trained=False)."""
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def song_file(tmp_path: Path) -> Path:
    import soundfile as sf

    path = tmp_path / "song.wav"
    sf.write(path, tone_mix().T, SR)
    return path
