import numpy as np
import pytest
import torch

from engine.gating import (GatingSettings, frames_to_ms, gate_curve, gate_envelope, gates, median_filter_binary,
                           ms_to_frames, sigmoid)
from engine.spectral import STFTConfig, istft, stft


def test_threshold_binarizes() -> None:
    p = np.array([0.1, 0.6, 0.4, 0.9, 0.5], np.float32)
    g = gate_curve(p, GatingSettings(threshold=0.5, median_frames=1))
    assert g.tolist() == [0, 1, 0, 1, 1]


def test_median_filter_removes_blips_and_fills_gaps() -> None:
    curve = np.zeros(30, bool)
    curve[5] = True              # a one-frame blip: removed by a 5-frame median
    curve[10:20] = True
    curve[14] = False            # a one-frame hole: filled
    out = median_filter_binary(curve, 5)
    assert not out[5]
    assert out[10:20].all() and not out[:9].any() and not out[21:].any()


def test_median_filter_even_length_rounds_up() -> None:
    curve = np.array([0, 1, 1, 0, 1, 1, 0, 0, 0, 0], bool)
    np.testing.assert_array_equal(median_filter_binary(curve, 4), median_filter_binary(curve, 5))


def test_median_filter_matches_scipy_on_random_curves() -> None:
    from scipy.ndimage import median_filter

    rng = np.random.default_rng(0)
    for n in (1, 3, 7, 21):
        x = rng.random(200) > 0.5
        np.testing.assert_array_equal(median_filter_binary(x, n), median_filter(x.astype(np.uint8), n, mode="nearest") > 0)


def test_soft_and_none_modes() -> None:
    p = np.array([0.2, 0.8], np.float32)
    np.testing.assert_allclose(gate_curve(p, GatingSettings(mode="soft")), p)
    np.testing.assert_allclose(gate_curve(p, GatingSettings(mode="none")), [1, 1])


def test_per_source_settings() -> None:
    p = np.array([[0.3, 0.3, 0.3], [0.3, 0.3, 0.3]], np.float32)
    g = gates(p, ["a", "b"], {"a": GatingSettings(threshold=0.2, median_frames=1),
                              "b": GatingSettings(threshold=0.4, median_frames=1)})
    assert g[0].tolist() == [1, 1, 1] and g[1].tolist() == [0, 0, 0]


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        GatingSettings(threshold=1.5)
    with pytest.raises(ValueError):
        GatingSettings(mode="maybe")
    with pytest.raises(ValueError):
        GatingSettings(median_frames=0)


def test_sigmoid_is_safe_for_large_logits() -> None:
    s = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0], atol=1e-6)


def test_ms_frames_conversion() -> None:
    n = ms_to_frames(100, 44100, 512)
    assert n % 2 == 1 and abs(frames_to_ms(n, 44100, 512) - 100) < 12


def test_envelope_equals_frame_gating_of_a_consistent_spectrogram() -> None:
    """Gating frames of the mixture's own STFT equals multiplying the signal by the envelope."""
    cfg = STFTConfig(2048, 512)
    x = torch.randn(1, 44100 * 3)
    spec = stft(x, cfg)
    g = np.zeros(spec.shape[-1], np.float32)
    g[40:120] = 1.0
    g[150] = 1.0
    direct = istft(spec * torch.from_numpy(g), cfg, x.shape[-1]).numpy()
    via_env = x.numpy() * gate_envelope(g, 512, 2048, x.shape[-1])
    np.testing.assert_allclose(direct, via_env, atol=1e-4)


def test_envelope_close_to_frame_gating_of_masked_spectrogram() -> None:
    cfg = STFTConfig(2048, 512)
    torch.manual_seed(1)
    x = torch.randn(1, 44100 * 3)
    spec = stft(x, cfg) * torch.rand(1, 1025, 1)  # a masked (filtered) spectrogram
    g = np.zeros(spec.shape[-1], np.float32)
    g[40:200] = 1.0
    direct = istft(spec * torch.from_numpy(g), cfg, x.shape[-1]).numpy()
    via_env = istft(spec, cfg, x.shape[-1]).numpy() * gate_envelope(g, 512, 2048, x.shape[-1])
    err_db = 10 * np.log10(((direct - via_env) ** 2).sum() / (direct ** 2).sum())
    assert err_db < -30


def test_envelope_constant_gates() -> None:
    np.testing.assert_allclose(gate_envelope(np.ones((3, 50), np.float32), 512, 2048, 512 * 49), 1.0, atol=1e-5)
    np.testing.assert_allclose(gate_envelope(np.zeros(50, np.float32), 512, 2048, 512 * 49), 0.0, atol=1e-7)


def test_envelope_in_blocks_equals_whole() -> None:
    from engine.spectral import STFTConfig
    from engine.stems import apply_song_gates

    rng = np.random.default_rng(3)
    g = (rng.random((2, 300)) > 0.5).astype(np.float32)
    n = 299 * 512 + 100
    whole = gate_envelope(g, 512, 2048, n)
    for a, b in ((0, 1000), (777, 5000), (n - 3000, n)):
        np.testing.assert_allclose(gate_envelope(g, 512, 2048, n, a, b), whole[:, a:b], atol=1e-6)
    stems = rng.standard_normal((2, 2, n)).astype(np.float32)
    expected = stems * whole[:, None, :]
    apply_song_gates(stems, g, STFTConfig(2048, 512), 44100, 44100)
    np.testing.assert_allclose(stems, expected, atol=1e-6)


def test_median_length_is_bounded() -> None:
    from engine.gating import MAX_MEDIAN_FRAMES

    GatingSettings(median_frames=MAX_MEDIAN_FRAMES)
    for bad in (0, MAX_MEDIAN_FRAMES + 1, 10**12):
        with pytest.raises(ValueError, match="median_frames must lie between"):
            GatingSettings(median_frames=bad)
