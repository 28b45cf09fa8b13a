"""A song's notes as a MIDI file."""

from __future__ import annotations

from pathlib import Path

from training.songs.model import Song


def write_midi(song: Song, path: Path) -> None:
    """The song's notes as a MIDI file (one instrument per track, the sung line as a voice-oohs track)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=song.tempo_bpm)
    for t in song.tracks:
        inst = pretty_midi.Instrument(program=t.program if not t.is_drum else t.drum_kit, is_drum=t.is_drum,
                                      name=f"{t.stem}:{t.name}")
        inst.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start_s, end=n.end_s) for n in t.notes]
        pm.instruments.append(inst)
    if song.vocal_notes:
        inst = pretty_midi.Instrument(program=53, name="vocals:sung")
        inst.notes = [pretty_midi.Note(velocity=100, pitch=int(n.midi_pitch), start=float(n.start_s), end=float(n.end_s))
                      for n in song.vocal_notes]
        pm.instruments.append(inst)
    pm.write(str(path))
