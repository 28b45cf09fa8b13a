"""The synthetic singer: exact pitch, exact note lengths, silence in rests, smooth legato, and
voice pools that keep benchmark voices out of training."""

from __future__ import annotations

import shutil
from collections import OrderedDict

import numpy as np
import pytest

from engine.errors import StemLabError
from training.synthesis import singer
from training.synthesis.singer import SingerError, SungNote, VoiceSettings, random_lyrics, random_voice, sing

SR = 22050  # the singer's own rate: no resampling, so the tests stay fast

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")

PLAIN = VoiceSettings(vibrato_depth_cents=0.0, drift_cents=0.0, scoop_cents=0.0,
                      breath_between_phrases=False)


def _median_cents(y: np.ndarray, sample_rate: int, t0: float, t1: float, midi: float) -> float:
    """Median pitch error in cents of y[t0:t1] against `midi`, estimated with WORLD's harvest."""
    pw = singer._world()
    seg = y[int(t0 * sample_rate):int(t1 * sample_rate)].astype(np.float64)
    f0, _ = pw.harvest(seg, sample_rate, frame_period=5.0, f0_floor=60.0, f0_ceil=1000.0)
    voiced = f0[f0 > 0]
    assert voiced.size > 0.8 * f0.size, "the middle of a sung vowel should be voiced"
    return float(1200.0 * np.log2(np.median(voiced) / (440.0 * 2.0 ** ((midi - 69.0) / 12.0))))


def _dbfs(x: np.ndarray) -> float:
    return float(20.0 * np.log10(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)) + 1e-12))


@needs_espeak
def test_a4_lands_on_440_hz() -> None:
    y = sing([SungNote(0.2, 1.2, 69.0, "la")], 44100, PLAIN, total_s=1.5)
    assert abs(_median_cents(y, 44100, 0.45, 0.95, 69.0)) < 10.0


@needs_espeak
@pytest.mark.parametrize(("voice", "midi"), [("en-us+m3", 45.0), ("en-us+f1", 76.5)])
def test_low_and_high_notes_land_on_pitch(voice: str, midi: float) -> None:
    settings = VoiceSettings(espeak_voice=voice, vibrato_depth_cents=0.0, drift_cents=0.0,
                             breath_between_phrases=False)  # scoop kept: it ends well before the middle
    y = sing([SungNote(0.1, 0.9, midi, "love")], SR, settings, total_s=1.0)
    assert abs(_median_cents(y, SR, 0.35, 0.65, midi)) < 10.0


@needs_espeak
def test_vibrato_is_centred_on_the_note() -> None:
    settings = VoiceSettings(vibrato_depth_cents=40.0, vibrato_onset_s=0.1, drift_cents=0.0,
                             breath_between_phrases=False)
    y = sing([SungNote(0.1, 1.6, 62.0, "oh")], SR, settings, total_s=1.7)
    assert abs(_median_cents(y, SR, 0.5, 1.4, 62.0)) < 10.0


@needs_espeak
def test_exact_lengths_and_silent_rests() -> None:
    notes = [SungNote(0.25, 0.75, 60.0, "la"), SungNote(1.1, 1.5, 64.0, "heart"),
             SungNote(1.9, 2.6, 67.0, "yeah")]
    y = sing(notes, 44100, PLAIN, total_s=3.0)
    assert y.dtype == np.float32 and y.shape == (round(3.0 * 44100),)
    for nt in notes:
        inside = y[int(nt.start_s * 44100):int(nt.end_s * 44100)]
        assert _dbfs(inside) > -35.0, f"no singing inside {nt}"
    for a, b in [(0.0, 0.25), (0.75, 1.1), (1.5, 1.9), (2.6, 3.0)]:
        rest = y[int(a * 44100) + 1:int(b * 44100) - 1]
        assert np.max(np.abs(rest)) < 10.0 ** (-60.0 / 20.0), f"rest {a}-{b} s is not silent"


@needs_espeak
def test_default_length_and_other_sample_rates() -> None:
    notes = [SungNote(0.1, 0.5, 60.0, "na")]
    assert sing(notes, 48000, PLAIN).shape == (round(1.0 * 48000),)
    assert sing(notes, 16000, PLAIN, total_s=0.73).shape == (round(0.73 * 16000),)
    assert sing([], SR, PLAIN, total_s=0.2).shape == (round(0.2 * SR),)
    assert not np.any(sing([], SR, PLAIN, total_s=0.2))


@needs_espeak
def test_level_is_consistent_while_singing() -> None:
    for voice in ("en-us+m3", "en-us+f1"):
        settings = VoiceSettings(espeak_voice=voice, breath_between_phrases=False)
        notes = [SungNote(0.1 + 0.3 * i, 0.4 + 0.3 * i, 60.0 + i, s)
                 for i, s in enumerate(["ba", "bee", "love", "me"])]
        y = sing(notes, SR, settings, total_s=1.4)
        assert abs(_dbfs(y[int(0.1 * SR):int(1.3 * SR)]) + 20.0) < 1.0


@needs_espeak
def test_same_seed_same_audio_other_seed_other_audio() -> None:
    notes = [SungNote(0.1, 0.6, 62.0, "sun"), SungNote(0.6, 1.3, 65.0, "shine")]
    a = sing(notes, SR, VoiceSettings(seed=3), total_s=1.5)
    singer._cache.clear()  # a cold cache must not change the result
    b = sing(notes, SR, VoiceSettings(seed=3), total_s=1.5)
    c = sing(notes, SR, VoiceSettings(seed=4), total_s=1.5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@needs_espeak
def test_short_and_long_notes() -> None:
    notes = [SungNote(0.1, 0.16, 67.0, "la"), SungNote(0.4, 4.4, 60.0, "love")]
    y = sing(notes, SR, PLAIN, total_s=4.6)
    assert _dbfs(y[int(0.1 * SR):int(0.16 * SR)]) > -35.0
    assert np.max(np.abs(y[int(0.17 * SR):int(0.39 * SR)])) < 1e-3
    # the stretched vowel keeps sounding, on pitch, through the whole long note
    for t in np.arange(0.5, 4.3, 0.5):
        assert _dbfs(y[int(t * SR):int((t + 0.1) * SR)]) > -30.0, f"the long note fades at {t} s"
    assert abs(_median_cents(y, SR, 2.0, 3.0, 60.0)) < 10.0


@needs_espeak
def test_legato_joins_do_not_click() -> None:
    pitches = [60.0, 67.0, 64.0, 72.0, 62.0, 69.0]
    sylls = ["la", "oh", "ah", "la", "yeah", "ooh"]
    notes = [SungNote(0.2 + 0.4 * i, 0.6 + 0.4 * i, p, s) for i, (p, s) in enumerate(zip(pitches, sylls))]
    y = sing(notes, 44100, VoiceSettings(breath_between_phrases=False), total_s=3.0).astype(np.float64)
    jumps = np.abs(np.diff(y))
    typical = float(np.percentile(jumps[jumps > 0], 99.9))
    for nt in notes[1:]:
        b = int(nt.start_s * 44100)
        assert jumps[b - 441:b + 441].max() <= 1.2 * typical, f"click at the join into {nt}"
    # the phrase also starts and stops from (near) zero
    assert np.max(np.abs(y[int(0.2 * 44100) - 2:int(0.2 * 44100) + 3])) < 1e-3
    assert np.max(np.abs(y[int(2.6 * 44100) - 2:int(2.6 * 44100) + 3])) < 1e-3


@needs_espeak
def test_melisma_holds_the_vowel_across_pitches() -> None:
    notes = [SungNote(0.1, 0.6, 60.0, "love"), SungNote(0.6, 1.1, 64.0, "-"),
             SungNote(1.1, 1.6, 67.0, ""), SungNote(2.0, 2.5, 62.0, "-")]  # a hold after a rest
    y = sing(notes, SR, PLAIN, total_s=2.7)
    for nt in notes:
        assert abs(_median_cents(y, SR, nt.start_s + 0.15, nt.end_s - 0.15, nt.midi_pitch)) < 10.0


@needs_espeak
def test_breath_sits_quietly_just_before_a_phrase() -> None:
    notes = [SungNote(0.1, 0.6, 60.0, "la"), SungNote(1.6, 2.1, 62.0, "la")]
    with_breath = sing(notes, SR, VoiceSettings(breath_between_phrases=True), total_s=2.3)
    rest = with_breath[int(0.6 * SR) + 1:int(1.6 * SR) - 1]
    assert np.max(np.abs(rest[:int(0.4 * SR)])) < 1e-3       # early in the rest: silence
    breath = rest[int(0.5 * SR):]
    assert -60.0 < _dbfs(breath) < -35.0                       # an audible but quiet inhale
    assert np.max(np.abs(rest[-int(0.02 * SR):])) < 1e-3       # it ends before the phrase


def test_bad_notes_raise_domain_errors() -> None:
    with pytest.raises(SingerError):
        sing([SungNote(0.5, 0.5, 60.0, "la")], SR, PLAIN)
    with pytest.raises(SingerError):
        sing([SungNote(0.0, 0.5, 140.0, "la")], SR, PLAIN)
    with pytest.raises(SingerError):
        sing([SungNote(0.0, float("nan"), 60.0, "la")], SR, PLAIN)
    with pytest.raises(SingerError):
        sing([SungNote(0.0, 0.5, 60.0, "la"), SungNote(0.0, 0.4, 62.0, "la")], SR, PLAIN)
    with pytest.raises(SingerError):
        sing([SungNote(0.0, 0.5, 60.0, "la")], 0, PLAIN)
    assert issubclass(SingerError, StemLabError)


@needs_espeak
def test_unknown_espeak_voice_is_a_domain_error() -> None:
    with pytest.raises(SingerError, match="xx-nosuch"):
        sing([SungNote(0.0, 0.3, 60.0, "la")], SR, VoiceSettings(espeak_voice="xx-nosuch"))


def test_missing_espeak_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(singer.shutil, "which", lambda name: None)
    monkeypatch.setattr(singer, "_cache", OrderedDict())
    with pytest.raises(SingerError, match="apt-get install espeak-ng"):
        sing([SungNote(0.0, 0.3, 60.0, "la")], SR, PLAIN)


def test_voice_pools_are_disjoint_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    train = [random_voice(rng, "train") for _ in range(300)]
    bench = [random_voice(rng, "benchmark") for _ in range(300)]
    variants = lambda vs: {v.espeak_voice.split("+")[1] for v in vs}
    bases = lambda vs: {v.espeak_voice.split("+")[0] for v in vs}
    assert not variants(train) & variants(bench)
    assert not bases(train) & bases(bench)
    train_f = [v.formant_shift for v in train]
    bench_f = [v.formant_shift for v in bench]
    assert 0.92 <= min(train_f) and max(train_f) < 1.10
    assert all(f < 0.92 or f > 1.10 for f in bench_f)
    assert min(bench_f) < 0.92 and max(bench_f) > 1.10   # both sides of training's range used
    again = np.random.default_rng(0)
    assert random_voice(again, "train") == train[0]
    with pytest.raises(SingerError):
        random_voice(rng, "test")


@needs_espeak
def test_every_pool_variant_is_a_real_espeak_variant() -> None:
    # espeak-ng silently falls back to the plain voice for an unknown variant name
    for base, variants in [(singer._TRAIN_BASES[0], singer._TRAIN_VARIANTS),
                           (singer._BENCH_BASES[0], singer._BENCH_VARIANTS)]:
        names = [base] + [f"{base}+{v}" for v in variants]
        waves = [singer._speak_many(name, ["la"])[0] for name in names]
        plain = waves[0]
        for name, wave in zip(names[1:], waves[1:]):
            assert wave.shape != plain.shape or not np.array_equal(wave, plain), f"{name} is not a variant"


def test_random_lyrics() -> None:
    words = random_lyrics(np.random.default_rng(5), 200)
    assert len(words) == 200 and all(w and w.replace("'", "").isalpha() for w in words)
    assert len(set(words)) > 30
    assert words == random_lyrics(np.random.default_rng(5), 200)
    assert random_lyrics(np.random.default_rng(5), 0) == []
