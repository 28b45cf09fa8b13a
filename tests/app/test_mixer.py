"""The mixing arithmetic the audio callback runs, read straight from the mixer (no sound card)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from app.mixer import RAMP_SAMPLES, Mixer, StripSettings, db_to_gain, pan_gains

SR = 44100
N = 8000


def stems_and_original(n_src: int = 3, n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    stems = (0.2 * rng.standard_normal((n_src, 2, n))).astype(np.float32)
    original = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
    return stems, original


def mixer_with(n_src: int = 3) -> tuple[Mixer, np.ndarray, np.ndarray]:
    stems, original = stems_and_original(n_src)
    m = Mixer()
    m.set_tracks(original, stems, SR)
    return m, stems, original


def block(m: Mixer, frames: int = 512) -> np.ndarray:
    out = np.empty((frames, 2), np.float32)
    m.process(out)
    return out.T.copy()  # (2, frames)


def settle(m: Mixer, frames: int = 512) -> int:
    """Run one block so a gain change has ramped in; returns the position after it."""
    block(m, frames)
    return m.position


def test_unity_mix_is_the_sum_of_the_stems() -> None:
    m, stems, _ = mixer_with()
    out = block(m, 1000)
    np.testing.assert_allclose(out, stems[:, :, :1000].sum(0), atol=1e-6)
    assert m.position == 1000


def test_gain_in_db_scales_one_stem() -> None:
    m, stems, _ = mixer_with()
    m.strips[1].gain_db = -6.0
    m.update_gains()
    pos = settle(m)
    out = block(m, 256)
    g = 10 ** (-6 / 20)
    expected = stems[0] + g * stems[1] + stems[2]
    np.testing.assert_allclose(out, expected[:, pos : pos + 256], atol=1e-6)


def test_mute_removes_a_stem_and_solo_keeps_only_soloed() -> None:
    m, stems, _ = mixer_with()
    m.strips[0].mute = True
    m.update_gains()
    pos = settle(m)
    np.testing.assert_allclose(block(m, 256), (stems[1] + stems[2])[:, pos : pos + 256], atol=1e-6)
    m.strips[0].mute = False
    m.strips[2].solo = True
    m.update_gains()
    pos = settle(m)
    np.testing.assert_array_equal(block(m, 256), stems[2][:, pos : pos + 256])
    m.strips[1].solo = True  # two soloed stems
    m.strips[2].mute = True  # mute wins over solo
    m.update_gains()
    pos = settle(m)
    np.testing.assert_array_equal(block(m, 256), stems[1][:, pos : pos + 256])


def test_pan_is_a_balance_control() -> None:
    assert pan_gains(0.0) == (1.0, 1.0)
    assert pan_gains(-1.0) == (1.0, 0.0)
    assert pan_gains(1.0) == (0.0, 1.0)
    assert pan_gains(0.5) == (0.5, 1.0)
    m, stems, _ = mixer_with(1)
    m.strips[0].pan = 0.5
    m.update_gains()
    pos = settle(m)
    out = block(m, 256)
    np.testing.assert_allclose(out[0], 0.5 * stems[0, 0, pos : pos + 256], atol=1e-7)
    np.testing.assert_array_equal(out[1], stems[0, 1, pos : pos + 256])


def test_master_gain_mute_and_fader_floor() -> None:
    m, stems, _ = mixer_with()
    m.master_gain_db = 6.0
    m.update_gains()
    pos = settle(m)
    np.testing.assert_allclose(
        block(m, 128), db_to_gain(6.0) * stems.sum(0)[:, pos : pos + 128], rtol=1e-5, atol=1e-6
    )
    m.master_mute = True
    m.update_gains()
    settle(m)
    assert not block(m, 128).any()
    assert db_to_gain(-60.0) == 0.0 and db_to_gain(-80.0) == 0.0


def test_ab_switch_plays_the_original_untouched() -> None:
    m, stems, original = mixer_with()
    m.strips[0].gain_db = -20.0
    m.play_original = True
    m.update_gains()
    pos = settle(m)
    np.testing.assert_array_equal(block(m, 300), original[:, pos : pos + 300])


def test_a_change_is_complete_within_one_block_and_ramped() -> None:
    m, stems, _ = mixer_with(1)
    block(m, 256)
    m.strips[0].mute = True
    m.update_gains()
    pos = m.position
    out = block(m, 256)
    # a short fade (no click) that is done after RAMP_SAMPLES, then silence
    assert np.abs(out[:, : RAMP_SAMPLES - 1]).sum() > 0
    assert not out[:, RAMP_SAMPLES:].any()
    ramp = np.arange(1, RAMP_SAMPLES + 1) / RAMP_SAMPLES
    np.testing.assert_allclose(
        out[:, :RAMP_SAMPLES], stems[0][:, pos : pos + RAMP_SAMPLES] * (1 - ramp), atol=1e-6
    )


def test_loop_wraps_and_end_stops() -> None:
    m, stems, _ = mixer_with(1)
    m.set_loop(1000, 1500)
    m.seek(1400)
    out = block(m, 300)
    expected = np.concatenate([stems[0][:, 1400:1500], stems[0][:, 1000:1200]], axis=1)
    np.testing.assert_array_equal(out, expected)
    assert m.position == 1200
    m.set_loop(None)
    m.seek(N - 100)
    out = np.empty((300, 2), np.float32)
    played = m.process(out)
    assert played == 100 and m.ended
    assert not out[100:].any()


def test_seek_request_is_applied_by_the_next_block() -> None:
    m, stems, _ = mixer_with(1)
    block(m, 100)
    m.seek(5000)
    np.testing.assert_array_equal(block(m, 64), stems[0][:, 5000:5064])


def test_levels_are_post_fader_peaks() -> None:
    m, stems, _ = mixer_with(2)
    m.strips[1].gain_db = -6.0
    m.update_gains()
    pos = settle(m)
    out = block(m, 512)
    seg = stems[:, :, pos : pos + 512]
    np.testing.assert_allclose(m.levels[0], np.abs(seg[0]).max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(m.levels[1], db_to_gain(-6.0) * np.abs(seg[1]).max(axis=1), rtol=1e-5)
    np.testing.assert_allclose(m.levels[-1], np.abs(out).max(axis=1), rtol=1e-6)


def test_offline_render_equals_the_callback() -> None:
    m, stems, _ = mixer_with()
    m.strips = [
        StripSettings(-3.0, -0.4, False, False),
        StripSettings(2.0, 0.7, False, False),
        StripSettings(0.0, 0.0, True, False),
    ]
    m.update_gains()
    m.position = 0
    block(m, 64)  # let the ramp finish
    m.seek(0)
    live = np.concatenate([block(m, 1000) for _ in range(N // 1000)], axis=1)
    np.testing.assert_array_equal(m.render(block=777), live)


def test_process_allocates_no_arrays() -> None:
    m, _, _ = mixer_with(6)
    out = np.empty((1024, 2), np.float32)
    m.process(out)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for k in range(5):
            m.strips[k % 6].gain_db = -k
            m.update_gains()  # the GUI's side: allowed to allocate
            m.process(out)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "mixer.py" in str(s.traceback))
    assert grown < 4096, f"process() allocated {grown} bytes"


def test_rejects_mismatched_tracks() -> None:
    m = Mixer()
    with pytest.raises(ValueError):
        m.set_tracks(np.zeros((2, 100), np.float32), np.zeros((2, 2, 99), np.float32), SR)


def test_without_stems_the_original_plays() -> None:
    """A song not separated yet has only its original mix: play must sound it, not silence."""
    _, original = stems_and_original()
    m = Mixer()
    m.set_tracks(original, None, SR)
    assert m.n_sources == 0
    np.testing.assert_array_equal(block(m, 300), original[:, :300])
    m.master_gain_db = -6.0
    m.update_gains()
    settle(m)
    np.testing.assert_allclose(block(m, 200), original[:, 812:1012] * db_to_gain(-6.0), atol=1e-7)
    np.testing.assert_allclose(m.render(0, 100), original[:, :100] * db_to_gain(-6.0), atol=1e-7)
    assert m.levels.shape == (2, 2) and m.levels[-1].max() > 0  # the master meter moves
