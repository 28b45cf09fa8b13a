"""The measurements that compare generated songs with real ones, and the generator's widened mix:
statistics of hand-made MIDI, fader automation, the sustain pedal, and set versions kept apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pretty_midi = pytest.importorskip("pretty_midi")

from training.datasets import make_data
from training.errors import DataGenerationError
from training.songs import stats as song_stats
from training.songs.compose import compose
from training.songs.model import Note, Section, Song, Track
from training.songs.parts import sustain_pedal
from training.synthesis import render


def _pm() -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    bass = pretty_midi.Instrument(program=33)
    bass.notes = [pretty_midi.Note(100, 40 + i, i * 0.5, i * 0.5 + 0.4) for i in range(8)]  # 2 onsets/s, mono
    piano = pretty_midi.Instrument(program=0)
    for t in (0.0, 1.0, 2.0, 3.0):  # two-note chords with the left hand under G3
        piano.notes += [pretty_midi.Note(80, 48, t, t + 1.0), pretty_midi.Note(80, 64, t, t + 1.0)]
    piano.control_changes = [pretty_midi.ControlChange(64, 127, 0.0), pretty_midi.ControlChange(7, 100, 0.0),
                             pretty_midi.ControlChange(7, 60, 2.0)]
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, k, i * 0.25, i * 0.25 + 0.1) for i, k in enumerate([36, 42, 38, 42] * 4)]
    drums.pitch_bends = []
    lead = pretty_midi.Instrument(program=81)
    lead.notes = [pretty_midi.Note(90, 72, 0.0, 2.0)]
    lead.pitch_bends = [pretty_midi.PitchBend(2000, 0.5)]
    pm.instruments += [bass, piano, drums, lead]
    return pm


def test_song_statistics_of_a_known_song() -> None:
    st = song_stats.midi_song_stats(_pm())
    bass, piano = st["stems"]["bass"], st["stems"]["piano"]
    assert bass["parts"] == 1 and bass["polyphony"] == pytest.approx(1.0)
    assert bass["onsets_per_s"] == pytest.approx(8 / 3.2, rel=0.1)  # 8 notes over 3.2 s of playing
    assert bass["pitch_p50"] == pytest.approx(43.5)
    assert piano["polyphony"] == pytest.approx(2.0)
    assert st["sustain"] == 1 and st["cc7_moves"] == 1 and st["bends"] == 1
    assert st["n_drum_keys"] == 3 and st["tempo_changes"] == 0
    assert st["bass_with_low_piano"] == pytest.approx(1.0)  # the left hand plays under every bass note
    # the first bass note (E2) starts with the piano's E4: doubled; the other seven have no partner
    assert st["bass_doubled"] == pytest.approx(1 / 8)
    assert "guitar" not in st["stems"]


def test_low_band_energy_counts_what_sounds_under_250_hz() -> None:
    sr = 8000
    t = np.arange(sr) / sr
    low, high = np.sin(2 * np.pi * 100 * t)[None], np.sin(2 * np.pi * 1000 * t)[None]
    both = np.concatenate([low, high])  # two channels, summed
    assert song_stats.low_band_energy(low, sr) == pytest.approx(np.sum(np.abs(np.fft.rfft(low)) ** 2), rel=1e-6)
    assert song_stats.low_band_energy(high, sr) < 1e-12 * song_stats.low_band_energy(low, sr)
    assert song_stats.low_band_energy(both, sr) == pytest.approx(song_stats.low_band_energy(low, sr), rel=1e-6)


def test_generated_songs_read_back_into_their_stems() -> None:
    (st,) = song_stats.generated_songs(1, seed=3)
    song = compose(make_data.song_seed(3, 0))
    assert set(st["stems"]) == set(song.stems_present)
    for stem, d in st["stems"].items():
        want = sum(1 for t in song.tracks if t.stem == stem and t.notes) + (stem == "vocals" and bool(song.vocal_notes))
        assert d["parts"] == want, stem


def test_section_automation_holds_each_sections_gain_with_ramps() -> None:
    sr = 1000
    secs = [Section("verse", 0, 4, 0.0, 4.0, 0.7), Section("chorus", 4, 4, 4.0, 8.0, 1.0),
            Section("outro", 8, 2, 8.0, 10.0, 0.6)]
    g = render.section_automation(secs, [0.0, -6.0, 3.0], 10 * sr, sr, ramp_s=0.5)
    db = 20 * np.log10(g)
    assert db[2 * sr] == pytest.approx(0.0, abs=1e-4)
    assert db[6 * sr] == pytest.approx(-6.0, abs=1e-4)
    assert db[9 * sr] == pytest.approx(3.0, abs=1e-4)
    assert np.abs(np.diff(g)).max() < 0.01  # ramps, no steps


def test_sustain_pedal_lets_notes_ring_to_the_next_chord_change() -> None:
    t = Track("piano", "piano", 0, notes=[Note(0.0, 0.2, 60, 80), Note(1.0, 1.1, 64, 80), Note(2.5, 2.6, 67, 80)])
    sustain_pedal(t, [0.0, 2.0, 4.0])
    assert [round(n.end_s, 2) for n in t.notes] == [1.98, 1.98, 3.98]


def test_a_set_from_the_earlier_generator_is_not_extended(tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    # settings as the first generator wrote them: no synth share, no version
    (out / "settings.json").write_text(json.dumps({"seed": 1, "partial": None, "max_song_s": None,
                                                   "store_mixture": False, "fonts": ["fluidr3"]}))
    try:
        render.resolve_fonts(None)
        render.require_fluidsynth()
    except DataGenerationError:
        pytest.skip("fluidsynth or FluidR3_GM not installed")
    with pytest.raises(DataGenerationError, match="other settings"):
        make_data.make_data(0.01, str(out), seed=1, workers=1, progress=False)



@pytest.fixture(scope="module")
def thirty_songs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Song, dict[str, Any]]]:
    """Thirty generated songs (notes only, no audio) with their statistics as read back from MIDI."""
    from training.songs.midi import write_midi

    path = tmp_path_factory.mktemp("songs") / "song.mid"
    out = []
    for i in range(30):
        song = compose(make_data.song_seed(11, i))
        write_midi(song, path)
        out.append((song, song_stats.midi_song_stats(pretty_midi.PrettyMIDI(str(path)))))
    return out


def test_generated_parts_reach_the_registers_of_real_songs(thirty_songs: list[tuple[Song, dict[str, Any]]]) -> None:
    # Real songs (openmsx): bass median pitch 42 (34-58), "other" 62 (51-72), much of it below middle C.
    tracks = [t for song, _ in thirty_songs for t in song.tracks if t.notes and not t.is_drum]
    bass = [float(np.median([n.pitch for n in t.notes])) for t in tracks if t.stem == "bass"]
    other = [float(np.median([n.pitch for n in t.notes])) for t in tracks if t.stem == "other"]
    assert np.median(bass) > 40
    assert np.mean(np.array(bass) >= 45) >= 0.15  # some bass lines play in the high register
    assert np.mean(np.array(other) < 60) >= 0.2  # "other" parts in the low middle
    assert min(other) < 55 and max(other) > 66  # ... and still high ones


def test_generated_parts_are_short_busy_and_thin_like_real_ones(thirty_songs: list[tuple[Song, dict[str, Any]]]) -> None:
    stats = [st for _, st in thirty_songs]
    bass_notes = [n.end_s - n.start_s for song, _ in thirty_songs for t in song.tracks if t.stem == "bass" for n in t.notes]
    assert np.median(bass_notes) < 0.3  # real median 0.2 s
    piano = [st["stems"]["piano"] for st in stats if "piano" in st["stems"]]
    assert np.median([p["polyphony"] for p in piano]) < 3  # real 2.2
    assert max(p["parts"] for p in piano) >= 2  # the hands are written apart now and then



def test_generated_arrangements_are_as_dense_as_real_ones(thirty_songs: list[tuple[Song, dict[str, Any]]]) -> None:
    stats = [st for _, st in thirty_songs]
    # Real songs with guitar and keys play them together most of the time (median 0.99 of the guitar's
    # time; generator version 3 had them take turns, median 0.17)
    both = [st["guitar_with_keys"] for st in stats if "guitar" in st["stems"] and {"piano", "other"} & set(st["stems"])]
    assert len(both) >= 5 and np.median(both) > 0.6
    # Real parts stay in the arrangement nearly throughout: 3.5 stems at once besides the vocals
    # (version 3: 2.7, its 90th percentile 3.4 under the real median)
    assert np.median([st["backing_at_once"] for st in stats]) > 3.0
    assert min(st["backing_at_once"] for st in stats) < 2.8  # ... and still some sparse songs


def test_part_programs_stay_in_their_stems(thirty_songs: list[tuple[Song, dict[str, Any]]]) -> None:
    from training.songs.model import COUNTER_CHOICES, stem_for_program

    assert all(stem_for_program(p, False) == "other" for p in COUNTER_CHOICES)
    for song, _ in thirty_songs:
        for t in song.tracks:
            if not t.is_drum and t.stem != "vocals":
                assert stem_for_program(t.program, False) == t.stem, (t.name, t.program)


def test_the_table_has_a_column_per_seed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Medians over few songs move with the seed: the command puts one column per seed beside the real songs."""
    monkeypatch.setattr(song_stats, "real_songs", lambda limit=None: [song_stats.midi_song_stats(_pm())])
    assert song_stats.main(["--songs", "2", "--seed", "3", "4"]) == 0
    header = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| stem |"))
    assert header.count("generated (v4, 2, seed 3)") == 1 and header.count("generated (v4, 2, seed 4)") == 1
    assert "real (openmsx)" in header
