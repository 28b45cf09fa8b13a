"""A tiny random IASS model (card trained=false) for benchmarks and screenshots when no trained
model is bundled. Its stems mean nothing; it exercises the app end to end."""

from __future__ import annotations

from pathlib import Path


def make_tiny_model(path: Path) -> Path:
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import save_model

    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = IASSUNet(
        n_bins=128, depth=3, base_width=4, max_width=16, activity_hidden=8, mask_activation="softmax"
    )
    save_model(
        net,
        path,
        name="tiny-random",
        sample_rate=44100,
        n_fft=2048,
        hop_length=512,
        trained=False,
        notes="Random weights for testing the app; its stems are noise.",
    )
    return path


def bundled_or_tiny(tmp_dir: Path) -> tuple[str, bool]:
    """(model spec, allow_untrained): the bundled model when there is one, else a tiny random one."""
    from engine.resources import bundled_card_file

    if bundled_card_file().exists():
        return "bundled", False
    return str(make_tiny_model(Path(tmp_dir) / "tiny.json")), True
