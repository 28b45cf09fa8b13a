import pytest
import torch

from engine.spectral import STFTConfig, istft, stft


@pytest.mark.parametrize("n", [1000, 2048, 44100, 44100 * 3 + 17])
def test_stft_round_trip_is_exact(n: int) -> None:
    cfg = STFTConfig(2048, 512)
    x = torch.randn(2, n)
    spec = stft(x, cfg)
    assert spec.shape == (2, cfg.n_bins, cfg.n_frames(n))
    y = istft(spec, cfg, n)
    assert torch.allclose(x, y, atol=1e-5)


def test_stft_keeps_leading_dims() -> None:
    cfg = STFTConfig(1024, 256)
    x = torch.randn(3, 2, 8000)
    assert istft(stft(x, cfg), cfg, 8000).shape == (3, 2, 8000)


def test_frame_centres_follow_hop() -> None:
    cfg = STFTConfig(2048, 512)
    x = torch.zeros(1, 44100)
    x[0, 512 * 40] = 1.0  # an impulse at frame 40's centre
    energy = stft(x, cfg).abs().pow(2).sum(dim=1)[0]
    assert int(energy.argmax()) == 40
