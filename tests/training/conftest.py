"""A tiny multitrack set written straight to the on-disk format (tones, no synthesizer): fast and exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.model import DEFAULT_SOURCES
from training.datasets.dataset import write_manifest, write_song_folder

SR = 44100
HOP = 512


def make_song(rng: np.random.Generator, seconds: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    n_frames = n // HOP + 1
    stems: dict[str, np.ndarray] = {}
    act = np.zeros((len(DEFAULT_SOURCES), n_frames), np.uint8)
    for j, s in enumerate(DEFAULT_SOURCES):
        f = 80.0 * (j + 1) * rng.uniform(0.9, 1.1)
        on = np.zeros(n, bool)
        start = int(rng.uniform(0, 0.4) * n)
        on[start:start + int(rng.uniform(0.3, 0.6) * n)] = True
        sig = 0.1 * np.sin(2 * np.pi * f * t) + (0.03 * rng.standard_normal(n) if s == "drums" else 0)
        x = (sig * on).astype(np.float32)
        stems[s] = np.stack([x, 0.8 * x])
        frames_on = on[np.minimum(np.arange(n_frames) * HOP, n - 1)]
        act[j] = frames_on
    labels = {"note_activity": act, "energy_activity": act.copy(),
              "energy_db": np.where(act, -20.0, -120.0).astype(np.float16),
              "present": np.ones(len(DEFAULT_SOURCES), np.uint8)}
    return stems, labels


def write_set(root: Path, n_songs: int, seconds: float, seed: int, partial: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n_songs):
        stems, labels = make_song(rng, seconds)
        keep = [DEFAULT_SOURCES[i % len(DEFAULT_SOURCES)]] if partial else None
        write_song_folder(root / "songs" / f"song_{i:05d}", stems, labels, DEFAULT_SOURCES, SR,
                          {"sample_rate": SR, "seed": seed}, keep=keep)
    write_manifest(root)
    return root


@pytest.fixture(scope="session")
def tiny_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sets")
    return {
        "train": write_set(base / "train", 4, 4.0, seed=1),
        "partial": write_set(base / "partial", 6, 4.0, seed=2, partial=True),
        "val": write_set(base / "val", 2, 3.0, seed=3),
    }
