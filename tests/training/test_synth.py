"""The code-written instruments: each voice sounds at the note's pitch, drums land in their bands,
parts pan and reproduce from their seed, and a song rendered with them keeps the data set's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.songs.model import Note, Track
from training.synthesis import synth

SR = 44100


def _f0(x: np.ndarray, lo: float = 40.0, hi: float = 2000.0) -> float:
    """The fundamental by autocorrelation of the first second (lags between 1/hi and 1/lo)."""
    seg = x[: SR // 2] - x[: SR // 2].mean()
    spec = np.fft.rfft(seg, 2 * len(seg))
    ac = np.fft.irfft(np.abs(spec) ** 2)[: len(seg)]
    lags = np.arange(int(SR / hi), int(SR / lo))
    k = int(lags[np.argmax(ac[lags])])
    # parabolic refinement around the peak
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return SR / (k + shift)


def _band_share(x: np.ndarray, lo: float, hi: float) -> float:
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def _patch(stem: str, program: int, seed: int) -> synth.Patch:
    return synth.draw_patch(np.random.default_rng(seed), Track("t", stem, program), SR)


@pytest.mark.parametrize("stem,program,pitch", [("guitar", 25, 52), ("bass", 33, 40), ("piano", 0, 60),
                                                ("other", 81, 64), ("other", 48, 57), ("other", 17, 60)])
def test_every_kind_of_part_sounds_at_its_pitch(stem: str, program: int, pitch: int) -> None:
    want = synth.midi_hz(pitch)
    engines = set()
    for seed in range(6):
        p = _patch(stem, program, seed)
        if p.engine == "modal" and p.params["ratios"] is not None:
            continue  # bells and bars have inharmonic modes: their pitch is the strike tone, not a period
        if p.engine == "fm" and p.params["carrier_ratio"] != 1.0:
            continue
        x = synth.VOICES[p.engine](p, want, 0.8, 1.0, np.random.default_rng(seed))
        assert x.shape == (SR,) and np.isfinite(x).all() and np.abs(x).max() > 1e-3
        got = _f0(x)
        # within 30 cents of the pitch, or of its octave below (FM with a half-ratio modulator)
        cents = min(abs(1200 * math.log2(got / want)), abs(1200 * math.log2(got / (want / 2))))
        assert cents < 30, (p.engine, got, want)
        engines.add(p.engine)
    assert engines, "no patch with a periodic tone was drawn"


def test_patches_vary_between_parts() -> None:
    engines = {(_patch(stem, prog, s).engine) for s in range(40) for stem, prog in
               (("guitar", 25), ("bass", 33), ("piano", 0), ("other", 81), ("other", 89))}
    assert engines == {"pluck", "modal", "fm", "subtractive", "wavetable"}
    # the same stem and seed draw the same timbre; another seed another one
    assert _patch("guitar", 25, 3).describe() == _patch("guitar", 25, 3).describe()
    assert _patch("guitar", 25, 3).describe() != _patch("guitar", 25, 4).describe()


def test_drum_families_land_in_their_bands() -> None:
    kit = synth.draw_kit(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    kick = synth.drum_hit(kit, 36, 0.9, SR, rng)
    hat = synth.drum_hit(kit, 42, 0.9, SR, rng)
    crash = synth.drum_hit(kit, 49, 0.9, SR, rng)
    snare = synth.drum_hit(kit, 38, 0.9, SR, rng)
    assert _band_share(kick, 0, 250) > 0.8
    assert _band_share(hat, 4000, SR / 2) > 0.7
    assert _band_share(crash, 2000, SR / 2) > 0.6
    assert _band_share(snare, 120, 8000) > 0.8
    assert len(hat) < len(crash)  # a closed hat is short, a crash rings
    for key in range(27, 88):  # every General MIDI drum key makes a finite, audible hit
        x = synth.drum_hit(kit, key, 0.7, SR, rng)
        assert np.isfinite(x).all() and np.abs(x).max() > 1e-3, key


def _part(stem: str, program: int, pan: float = 0.0, is_drum: bool = False) -> Track:
    notes = [Note(0.1 + 0.25 * i, 0.3 + 0.25 * i, (36 if is_drum else 55) + (i % 5) * (0 if is_drum else 2), 90)
             for i in range(12)]
    return Track("p", stem, program, is_drum=is_drum, notes=notes, pan=pan)


def test_parts_pan_and_reproduce_from_their_seed() -> None:
    n = int(4.0 * SR)
    code = synth.CodeSynth(SR)
    left = code.render([_part("guitar", 25, pan=-1.0)], n, np.random.default_rng(5))
    assert left.shape == (2, n) and left.dtype == np.float32
    assert np.abs(left[1]).max() < 1e-4 * np.abs(left[0]).max()
    again = code.render([_part("guitar", 25, pan=-1.0)], n, np.random.default_rng(5))
    np.testing.assert_array_equal(left, again)
    other = code.render([_part("guitar", 25, pan=-1.0)], n, np.random.default_rng(6))
    assert not np.allclose(left, other)
    drums = code.render([_part("drums", 0, is_drum=True)], n, np.random.default_rng(5))
    assert code.last_patches == [{"engine": "drums"}] and np.abs(drums).max() > 0.01


def test_notes_stop_at_their_end_with_a_release() -> None:
    code = synth.CodeSynth(SR)
    track = Track("p", "guitar", 25, notes=[Note(0.0, 0.5, 52, 100)])
    x = code.render([track], 3 * SR, np.random.default_rng(0))[0]
    before = np.sqrt((x[int(0.3 * SR):int(0.5 * SR)] ** 2).mean())
    after = np.sqrt((x[int(1.0 * SR):int(1.2 * SR)] ** 2).mean())
    assert after < before * 1e-3  # a lifted finger, not a four-second ring


def test_a_song_rendered_with_code_instruments_keeps_the_set_contract() -> None:
    pytest.importorskip("pretty_midi")
    from training.datasets import make_data
    from training.songs.compose import compose
    from training.synthesis import render

    try:
        renderer = render.FluidRenderer(render.resolve_fonts(["fluidr3"]))
    except Exception as exc:  # noqa: BLE001 - the choir needs a font; without fluidsynth this test cannot run
        pytest.skip(f"fluidsynth unavailable: {exc}")
    song = compose(make_data.song_seed(3, 0), max_duration_s=10.0)
    rendered = render.render_song(song, renderer, np.random.default_rng(0), synth_share=1.0)
    instrumental = [s for s in rendered.stems if s != "vocals"]
    assert instrumental and all(rendered.info["fonts"][s] == synth.SYNTH_NAME for s in instrumental)
    assert set(rendered.info["synth_patches"]) == set(instrumental)
    mix = rendered.mixture()
    assert np.abs(mix).max() <= render.MAX_PEAK + 1e-4
    for x in rendered.stems.values():
        assert np.isfinite(x).all()
    again = render.render_song(song, renderer, np.random.default_rng(0), synth_share=1.0)
    for s in rendered.stems:
        np.testing.assert_array_equal(rendered.stems[s], again.stems[s])
