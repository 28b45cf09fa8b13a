"""Generated multitrack data: stems sum to the mixture, labels line up with notes, seeds reproduce songs,
missing synthesizer or SoundFont give clear errors. Every render here is a few seconds long."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pretty_midi")

from engine.spectral import STFTConfig
from training.datasets import dataset, labels, make_data
from training.errors import DataGenerationError
from training.songs.compose import compose
from training.songs.model import SOURCES, Note, Track
from training.synthesis import render

SR = 44100
HOP = STFTConfig().hop_length


def _have_fluidsynth() -> bool:
    try:
        render.require_fluidsynth()
        render.resolve_fonts(["fluidr3"])
        return True
    except DataGenerationError:
        return False


needs_synth = pytest.mark.skipif(not _have_fluidsynth(), reason="fluidsynth or FluidR3_GM not installed")


@pytest.fixture(scope="module")
def renderer() -> render.FluidRenderer:
    if not _have_fluidsynth():
        pytest.skip("fluidsynth or FluidR3_GM not installed")
    return render.FluidRenderer(render.resolve_fonts(["fluidr3"]))


@pytest.fixture(scope="module")
def short_song(renderer: render.FluidRenderer):
    """A ~6-second generated song with several stems (rendered once for the module)."""
    for i in range(40):
        seed = make_data.song_seed(7, i)
        song = compose(seed, max_duration_s=8.0)
        if len(song.stems_present) >= 4:
            return seed, make_data.render_labelled_song(seed, renderer, max_duration_s=8.0)
    pytest.skip("no short song with four stems found")


# ----------------------------------------------------------------------------------------------


@needs_synth
def test_stems_sum_to_mixture_in_memory_and_on_disk(short_song, tmp_path: Path) -> None:
    _, (rendered, lab) = short_song
    mix = rendered.mixture()
    total = np.zeros_like(mix)
    for x in rendered.stems.values():
        assert x.shape == mix.shape and x.dtype == np.float32
        total += x
    np.testing.assert_allclose(total, mix, atol=1e-6)
    assert float(np.abs(mix).max()) <= render.MAX_PEAK + 1e-4
    assert np.isfinite(mix).all()

    entry = dataset.write_song_folder(tmp_path / "songs" / "song_00000", rendered.stems, lab, SOURCES,
                                      SR, make_data.song_meta(rendered), store_mixture=True)
    dataset.write_manifest(tmp_path)
    ds = dataset.MultitrackDataset(tmp_path)
    assert len(ds) == 1 and ds.songs[0].stems == tuple(entry["stems"])
    ex = ds.load_song(0)
    summed = sum(ex.stems[s] for s in SOURCES)
    # 16-bit FLAC: each stored file is within half an LSB of the float signal.
    assert float(np.abs(summed - ex.mixture).max()) < (len(rendered.stems) + 1) * 2.0 ** -15
    for s in SOURCES:
        if s not in rendered.stems:
            assert not ex.stems[s].any()


@needs_synth
def test_note_onsets_active_and_long_rest_inactive(renderer: render.FluidRenderer) -> None:
    track = Track("piano", "piano", 0, notes=[Note(0.5, 1.0, 60, 100), Note(5.0, 5.5, 64, 100)])
    n = int(6.5 * SR)
    x = renderer.render([track], "fluidr3", n)
    lab = labels.song_labels({"piano": [(nt.start_s, nt.end_s) for nt in track.notes]}, {"piano": x},
                             ["piano"], n, SR)
    note_act, energy_act = lab["note_activity"][0], lab["energy_activity"][0]
    assert note_act.shape == (n // HOP + 1,)
    for nt in track.notes:
        onset = round(nt.start_s * SR / HOP)
        assert note_act[onset] == 1
        assert energy_act[onset + 1] == 1  # the hit is audible by the next frame
    rest = slice(int(3.0 * SR / HOP), int(4.8 * SR / HOP))  # long after the release, before the next note
    assert not note_act[rest].any()
    assert not energy_act[rest].any()


@needs_synth
def test_labels_line_up_with_generated_song(short_song) -> None:
    _seed, (rendered, lab) = short_song
    song = rendered.song
    for si, stem in enumerate(SOURCES):
        onsets = [nt.start_s for t in song.tracks if t.stem == stem for nt in t.notes]
        if stem == "vocals":
            onsets += [float(v.start_s) for v in song.vocal_notes]
        frames = [round(o * SR / HOP) for o in onsets if o * SR < rendered.n_samples - HOP]
        if not frames:
            assert not lab["note_activity"][si].any()
            continue
        assert lab["note_activity"][si][frames].all(), stem
        if stem in rendered.stems:
            # The rendered stem is audible within two frames of nearly every onset.
            e = lab["energy_activity"][si]
            near = [e[max(f - 1, 0):f + 3].any() for f in frames]
            assert np.mean(near) > 0.95, stem


def test_same_seed_same_song() -> None:
    for seed in (3, 11, 12345):
        a, b = compose(seed), compose(seed)
        assert json.dumps(a.describe(), default=str) == json.dumps(b.describe(), default=str)
        assert [(t.program, [(n.start_s, n.pitch, n.velocity) for n in t.notes]) for t in a.tracks] == \
               [(t.program, [(n.start_s, n.pitch, n.velocity) for n in t.notes]) for t in b.tracks]
        assert a.vocal_notes == b.vocal_notes
    assert compose(3).describe() != compose(4).describe()
    assert make_data.song_seed(1, 5) == make_data.song_seed(1, 5) != make_data.song_seed(2, 5)


@needs_synth
def test_same_seed_same_audio(short_song, renderer: render.FluidRenderer) -> None:
    seed, (rendered, _) = short_song
    again, _ = make_data.render_labelled_song(seed, renderer, max_duration_s=8.0)
    assert sorted(again.stems) == sorted(rendered.stems)
    for s in rendered.stems:
        np.testing.assert_array_equal(again.stems[s], rendered.stems[s])


def test_missing_soundfont_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = render.FONTS["fluidr3"]
    monkeypatch.setitem(render.FONTS, "fluidr3", render.FontSpec(spec.name, ("/nonexistent/FluidR3_GM.sf2",),
                                                                 spec.package, spec.licence))
    with pytest.raises(DataGenerationError, match="fluid-soundfont-gm"):
        render.resolve_fonts()
    with pytest.raises(DataGenerationError, match="fluid-soundfont-gm"):
        render.resolve_fonts(["fluidr3"])
    with pytest.raises(DataGenerationError, match="benchmark"):
        render.resolve_fonts(["timgm6mb"])


def test_missing_fluidsynth_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # makes `import fluidsynth` fail
    with pytest.raises(DataGenerationError, match="libfluidsynth3"):
        render.require_fluidsynth()


@needs_synth
def test_progress_bar_survives_songs_longer_than_planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rendered songs run longer than planned (reverb tails); a bar counting rendered minutes past its
    # total broke tqdm's formatting at the end of a 10-hour render. Plan tiny durations to force that.
    real_plan = make_data.plan_set
    monkeypatch.setattr(make_data, "plan_set",
                        lambda hours, seed, max_song_s=None: [(i, s, d * 0.01) for i, s, d in real_plan(hours, seed, max_song_s)])
    m = make_data.make_data(0.01, str(tmp_path / "set"), seed=5, workers=1, fonts=["fluidr3"], max_song_s=4.0,
                            progress=True)
    rendered_min = sum(s["duration_s"] for s in m["songs"]) / 60
    assert rendered_min > 0.01 * rendered_min + 0.5  # the old bar would have run 0.5 min past its total


@needs_synth
def test_make_data_resumes_and_writes_partial_sets(tmp_path: Path) -> None:
    out = tmp_path / "set"
    m = make_data.make_data(0.002, str(out), seed=5, workers=1, fonts=["fluidr3"], max_song_s=4.0, progress=False)
    assert m["n_songs"] >= 1 and m["last_run"]["songs_this_run"] == m["n_songs"]
    ids = [s["id"] for s in m["songs"]]
    assert ids == [make_data.song_id(i) for i in range(len(ids))]
    m2 = make_data.make_data(0.002, str(out), seed=5, workers=1, fonts=["fluidr3"], max_song_s=4.0, progress=False)
    assert m2["last_run"]["songs_this_run"] == 0 and m2["n_songs"] == m["n_songs"]
    with pytest.raises(DataGenerationError, match="other settings"):
        make_data.make_data(0.002, str(out), seed=6, workers=1, fonts=["fluidr3"], max_song_s=4.0, progress=False)

    part = tmp_path / "partial"
    mp = make_data.make_data(0.002, str(part), seed=5, workers=1, fonts=["fluidr3"], max_song_s=4.0,
                             partial=1, progress=False)
    ds = dataset.MultitrackDataset(part)
    for e in ds.songs:
        assert len(e.known) == 1 and e.has_mixture_file
        ex = ds.load_excerpt(e, 0.3, 1.0)
        assert set(ex.stems) == set(e.known)
        lab = ds.labels(e)
        unknown = [i for i, s in enumerate(ds.sources) if s not in e.known]
        assert not lab["note_activity"][unknown].any() and lab["known"].sum() == 1
    assert mp["partial"] == 1


@needs_synth
def test_excerpt_frames_are_song_frames(short_song, tmp_path: Path) -> None:
    _, (rendered, lab) = short_song
    dataset.write_song_folder(tmp_path / "songs" / "a", rendered.stems, lab, SOURCES, SR,
                              make_data.song_meta(rendered))
    ds = dataset.MultitrackDataset(tmp_path)
    ex = ds.load_excerpt("a", 1.01, 2.0)
    assert ex.start_sample % HOP == 0 and ex.n_samples == 2 * SR
    f0 = ex.start_sample // HOP
    for i, s in enumerate(SOURCES):
        assert ex.note_activity[s].shape == (2 * SR // HOP + 1,)
        np.testing.assert_array_equal(ex.note_activity[s], lab["note_activity"][i][f0:f0 + 2 * SR // HOP + 1])
    # Past the end of the song: zero-padded audio and labels.
    tail = ds.load_excerpt("a", rendered.n_samples / SR - 0.5, 2.0)
    assert tail.n_samples == 2 * SR and not tail.mixture[:, SR:].any()


@pytest.mark.parametrize("flags", [["--hours", "inf"], ["--hours", "nan"], ["--hours", "-1"], ["--hours", "0"],
                                   ["--hours", "1", "--workers", "0"], ["--hours", "1", "--synth-share", "1.5"],
                                   ["--hours", "1", "--max-song-s", "0.5"], ["--hours", "1", "--partial", "0"],
                                   ["--hours", "1", "--generator", "3"]])
def test_make_data_refuses_settings_that_cannot_make_a_set(flags: list[str], tmp_path: Path, capsys) -> None:
    from training import commands

    out = tmp_path / "set"
    assert commands.main(["make-data", "--out", str(out), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stemlab make-data: ") and len(err.splitlines()) == 1
    assert not out.exists()  # refused before anything was written


def test_legato_holds_notes_to_the_next_onset_but_keeps_rests_and_hands_apart() -> None:
    from training.songs.compose import LEGATO_MAX_REST_S, _legato

    class _Full:  # an rng whose draws sit at the top of their range: no gap, the whole silence held
        def uniform(self, lo: float, hi: float) -> float:
            return lo if hi < 0.5 else hi

    t = Track("piano", "piano", 0)
    t.notes = [Note(0.0, 0.1, 60, 80), Note(0.5, 0.6, 62, 80),  # a short gap: held across it
               Note(0.6 + LEGATO_MAX_REST_S + 0.2, 2.0, 64, 80),  # after a rest: the rest stays
               Note(0.0, 0.2, 40, 80), Note(0.7, 0.8, 43, 80)]   # the left hand, held to its own onset
    _legato(_Full(), t, split=55)
    ends = {n.pitch: round(n.end_s, 3) for n in t.notes}
    assert ends[60] == pytest.approx(0.5 - 0.005, abs=1e-3)
    assert ends[62] == 0.6
    assert ends[64] == 2.0
    assert ends[40] == pytest.approx(0.7 - 0.005, abs=1e-3)  # not cut at the right hand's 0.5
    assert ends[43] == 0.8


def test_generator_version_5_holds_notes_longer_and_version_4_is_the_default() -> None:
    from training.songs.model import DEFAULT_VERSION

    def sounding(song) -> float:
        return sum(n.end_s - n.start_s for t in song.tracks if not t.is_drum and t.stem != "vocals" for n in t.notes)

    assert DEFAULT_VERSION == make_data.GENERATOR_VERSION == 4
    seeds = [make_data.song_seed(1, i) for i in range(4)]
    v4 = [compose(s, max_duration_s=30.0) for s in seeds]
    v5 = [compose(s, max_duration_s=30.0, version=5) for s in seeds]
    assert [sounding(a) for a in v4] == [sounding(compose(s, max_duration_s=30.0, version=4)) for s in seeds]
    assert sum(map(sounding, v5)) > 1.1 * sum(map(sounding, v4))
    with pytest.raises(ValueError, match="generator version 3"):
        compose(seeds[0], version=3)


def test_generator_version_6_doubles_the_bass_line_and_keeps_version_5s_other_parts() -> None:
    """Version 6 adds parts that play the bass line (a guitar or a low "other" instrument) on the bass's
    onsets, at its pitch classes and in their instruments' ranges; the other parts are version 5's."""
    from training.songs.compose import BASS_DOUBLE_SHARE

    seeds = [make_data.song_seed(1, i) for i in range(40)]
    doubled = 0
    for s in seeds:
        v6 = compose(s, max_duration_s=30.0, version=6)
        doubles = [t for t in v6.tracks if t.source == "native:double"]
        if not doubles:
            continue
        bass = max((t for t in v6.tracks if t.stem == "bass"), key=lambda t: len(t.notes))
        onsets: dict[float, set[int]] = {}
        for n in bass.notes:
            onsets.setdefault(round(n.start_s, 6), set()).add(n.pitch)
        for t in doubles:
            doubled += 1
            assert t.stem in ("guitar", "other") and t.name == f"{t.stem}-double"
            assert min(n.pitch for n in t.notes) >= (38 if t.stem == "guitar" else 33)
            for n in t.notes:
                under = onsets[round(n.start_s, 6)]  # on a bass onset, over one of its notes by octaves
                assert any((n.pitch - p) % 12 == 0 and n.pitch >= p for p in under)
    # a share of the songs that have the stems (11 doubles in these 40 songs): far from none, far from all
    assert 0.1 * len(seeds) <= doubled <= sum(BASS_DOUBLE_SHARE.values()) * len(seeds)
    v5 = compose(seeds[0], max_duration_s=30.0, version=5)
    v6 = compose(seeds[0], max_duration_s=30.0, version=6)
    assert [t.name for t in v6.tracks if t.source != "native:double"] == [t.name for t in v5.tracks]
