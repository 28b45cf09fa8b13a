"""A long song's gated stems held in float16 for playback and pictures (app.workers.COMPACT_SONG_S): the
mixer plays them within float16's rounding of float32, and export and the remix re-derive them in float32
from the ungated copy, so exported files equal what `stemlab separate` writes for the same gating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.mixer import Mixer, StripSettings
from engine import GatingSettings, Separator
from engine.audio import Audio
from engine.export import export_separation, separate_to_folder
from tests.conftest import tone_mix


def error_db(reference: np.ndarray, got: np.ndarray) -> float:
    err = np.sum((got.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(err / np.sum(reference.astype(np.float64) ** 2) + 1e-300))


@pytest.fixture()
def compact_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every song counts as long: the re-gating copy on disk and the gated stems in float16."""
    from app import workers

    monkeypatch.setattr(workers, "LONG_SONG_S", 1.0)
    monkeypatch.setattr(workers, "COMPACT_SONG_S", 1.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.parametrize("rate", [44100, 48000])
def test_compact_stems_export_what_the_command_line_writes(tiny_model: Path, tmp_path: Path, compact_app: None,
                                                          rate: int) -> None:
    from app import workers

    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(3.0, sample_rate=rate, seed=3)
    gating = {s: GatingSettings(threshold=0.45, median_frames=5) for s in sep.sources}
    result = workers.separate_song(sep, x, rate, gating, False).result
    assert result.stems.dtype == np.float16 and result.compact
    assert isinstance(result.ungated, np.memmap)
    assert list((tmp_path / "cache" / "stemlab").iterdir()) == []
    reference = sep.separate(x, rate, gating=gating)  # float32, in memory
    # what playback holds: float32 rounded once to float16
    np.testing.assert_array_equal(result.stems, reference.stems.astype(np.float16))
    for s in sep.sources:
        np.testing.assert_array_equal(result.full_stem(s), reference.stem(s))

    def exported(folder: Path) -> dict[str, np.ndarray]:
        return {s: sf.read(folder / f"{s}.wav", dtype="float32", always_2d=True)[0].T for s in sep.sources}

    cli = tmp_path / "cli"
    separate_to_folder(sep, Audio(x, rate), cli, fmt="wav", subtype="FLOAT", gating=gating)
    app_out = tmp_path / "app"
    export_separation(result, app_out, fmt="wav", subtype="FLOAT")
    want, got = exported(cli), exported(app_out)
    for s in sep.sources:
        np.testing.assert_allclose(got[s], want[s], rtol=0, atol=1e-6)
    # re-gated, the compact stems follow, and export still matches the command line at the new gating
    other = GatingSettings(threshold=0.6, median_frames=9)
    result.regate(other, sources=["drums"])
    assert result.stems.dtype == np.float16
    moved = {**gating, "drums": other}
    cli2 = tmp_path / "cli2"
    separate_to_folder(sep, Audio(x, rate), cli2, fmt="wav", subtype="FLOAT", gating=moved)
    app2 = tmp_path / "app2"
    export_separation(result, app2, fmt="wav", subtype="FLOAT")
    want, got = exported(cli2), exported(app2)
    for s in sep.sources:
        np.testing.assert_allclose(got[s], want[s], rtol=0, atol=1e-6)


def test_a_short_song_keeps_float32_stems(tiny_model: Path) -> None:
    from app import workers

    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(2.0)
    result = workers.separate_song(sep, x, 44100, GatingSettings(), False).result
    assert result.stems.dtype == np.float32 and not result.compact and result.block_reader() is None


def test_float16_playback_mixes_within_tolerance_of_float32() -> None:
    rng = np.random.default_rng(1)
    n = 40000
    stems = (0.25 * rng.standard_normal((4, 2, n))).astype(np.float32)
    original = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
    mixers = []
    for held in (stems, stems.astype(np.float16)):
        m = Mixer()
        m.set_tracks(original, held, 44100)
        m.strips[0] = StripSettings(gain_db=-6.0, pan=0.4)
        m.strips[2] = StripSettings(gain_db=3.0, pan=-0.7)
        m.strips[3] = StripSettings(mute=True)
        m.update_gains()
        mixers.append(m)
    assert mixers[1].stems.dtype == np.float16  # played as held, not widened to a float32 copy
    outs = []
    for m in mixers:
        blocks = []
        for frames in (512, 1024, 333, 4096, 16384):
            out = np.zeros((frames, 2), np.float32)
            m.process(out)
            blocks.append(out)
        m.strips[1].gain_db = -12.0  # a fader move mid-play: the ramp runs over float16 samples too
        m.update_gains()
        out = np.zeros((2048, 2), np.float32)
        m.process(out)
        blocks.append(out)
        outs.append(np.concatenate(blocks))
    assert outs[1].dtype == np.float32
    assert error_db(outs[0], outs[1]) < -60.0
    assert np.abs(outs[1] - outs[0]).max() < 2e-3
    # an offline remix given float32 blocks (SeparationResult.block_reader) is float32's exactly
    render = mixers[1].render(stem_reader=lambda i, a, b: stems[i, :, a:b])
    np.testing.assert_allclose(render, mixers[0].render(), rtol=0, atol=1e-6)


def test_the_remix_of_compact_stems_is_full_precision(tiny_model: Path, compact_app: None) -> None:
    from app import workers

    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(2.0, seed=4)
    gating = GatingSettings(threshold=0.4, median_frames=5)
    result = workers.separate_song(sep, x, 44100, gating, False).result
    reference = sep.separate(x, 44100, gating=gating)
    remixes = []
    for stems, reader in ((result.stems, result.block_reader()), (reference.stems, None)):
        m = Mixer()
        m.set_tracks(x, stems, 44100)
        m.strips[1] = StripSettings(gain_db=-4.0, pan=0.3)
        m.update_gains()
        remixes.append(m.render(block=30000, stem_reader=reader))
    np.testing.assert_allclose(remixes[0], remixes[1], rtol=0, atol=1e-6)
