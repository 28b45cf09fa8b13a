"""Tempo, beats, bars and key (engine/music.py) on music written here, where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from engine.music import analyse, choose_bars, estimate_key, pitch_class

SR = 44100


def song(bpm: float, seconds: float, chord_pcs: list[list[int]], per_bar: int = 4, seed: int = 0) -> np.ndarray:
    """A kick on every beat (a louder, lower one on each downbeat) and one chord per bar with its root
    in the bass: (2, n) float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = np.zeros(n)
    beat = 60.0 / bpm
    for k, start in enumerate(np.arange(0.5, seconds - 0.5, beat)):
        i = int(start * SR)
        m = min(n - i, int(0.15 * SR))
        tt = np.arange(m) / SR
        down = k % per_bar == 0
        f = 60.0 if down else 110.0
        x[i:i + m] += (0.9 if down else 0.5) * np.sin(2 * np.pi * f * tt * (1 + 2 * np.exp(-tt * 40))) * np.exp(-tt * 25)
        x[i:i + m] += 0.05 * rng.standard_normal(m) * np.exp(-tt * 60)
        if down:  # a new chord each bar
            pcs = chord_pcs[(k // per_bar) % len(chord_pcs)]
            bar = min(n - i, int(per_bar * beat * SR))
            tb = np.arange(bar) / SR
            env = np.minimum(1.0, tb / 0.02) * np.exp(-tb * 0.8)
            for j, pc in enumerate(pcs):
                fr = 261.63 * 2 ** (pc / 12)
                x[i:i + bar] += 0.08 * env * np.sin(2 * np.pi * fr * tb)
            x[i:i + bar] += 0.12 * env * np.sin(2 * np.pi * 65.41 * 2 ** (pcs[0] / 12) * tb)  # the root, low
    x /= np.abs(x).max() * 1.2
    return np.stack([x, x]).astype(np.float32)


C, F, G, AM = [0, 4, 7], [5, 9, 0], [7, 11, 2], [9, 0, 4]


@pytest.mark.parametrize("bpm", [96.0, 128.0])
def test_tempo_beats_bars_and_key_of_a_song_in_c_major(bpm: float) -> None:
    info = analyse(song(bpm, 24.0, [C, F, G, C]), SR)
    assert abs(info.tempo_bpm / bpm - 1) < 0.04, info.tempo_bpm
    gaps = np.diff(info.beats_s)
    assert np.median(np.abs(gaps - 60 / bpm)) < 0.02
    assert info.key == "C major", info.key
    assert info.beats_per_bar == 4
    # the downbeats land on the accented beats: 0.5 s + whole bars
    bars = info.bar_times()
    assert len(bars) >= 4
    offsets = ((bars - 0.5) / (4 * 60 / bpm)) % 1.0
    assert np.mean(np.minimum(offsets, 1 - offsets) < 0.08) > 0.7, offsets
    csv = info.beats_csv().splitlines()
    assert csv[0] == "time_s,downbeat" and len(csv) == len(info.beats_s) + 1


def test_a_minor_song_and_the_name_of_keys() -> None:
    info = analyse(song(110.0, 24.0, [AM, [2, 5, 9], [4, 8, 11], AM], seed=1), SR)  # Am Dm E Am
    assert info.key == "A minor", info.key
    assert pitch_class("Bb") == pitch_class("A#") == 10 and pitch_class("c") == 0


def test_silence_and_short_input_have_no_beats() -> None:
    info = analyse(np.zeros((2, SR * 3), np.float32), SR)
    assert info.tempo_bpm == 0.0 and len(info.beats_s) == 0 and info.key == "unknown"
    assert estimate_key(np.zeros((12, 10)))[0] == "unknown"


def test_bars_of_three_need_a_clear_lead() -> None:
    accent = np.tile([1.0, 0.0, 0.0], 8)
    assert choose_bars(accent) == (3, 0)
    assert choose_bars(np.tile([0.0, 1.0, 0.0, 0.0], 6)) == (4, 1)
    assert choose_bars(np.zeros(24))[0] == 4  # nothing to go on: four
