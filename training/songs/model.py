"""What a song is, as the generator writes it: notes, instrument parts (General MIDI programs and the stem
each belongs to), sections, and the whole song with its metadata. No audio here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.sources import DEFAULT_SOURCES
from training.songs.theory import NOTE_NAMES, Chord

SOURCES: tuple[str, ...] = tuple(DEFAULT_SOURCES)
TAIL_S = 2.0  # release time rendered after the last bar
# The generator versions this code writes (DATA.md): the one the sets are made with, and candidates
# (5: legato parts; 6: version 5 with parts that double the bass line and low guitar riffs). Earlier
# versions live only in git history; a set records the version that made it.
GENERATOR_VERSIONS = (4, 5, 6)
DEFAULT_VERSION = 4

# ----------------------------------------------------------------------------------------------
# General MIDI programs (0-based) and the stem each belongs to.
# piano: the GM piano family 0-7. Harpsichord (6) and clavinet (7) are keyboards a listener would
# call "piano" more often than anything else, so they stay in the piano stem, but are drawn rarely.
# vocals: choir aahs, voice oohs, synth voice (52-54) join the sung line.
PIANO_PROGRAMS = tuple(range(8))
GUITAR_PROGRAMS = tuple(range(24, 32))
BASS_PROGRAMS = tuple(range(32, 40))
VOCAL_PROGRAMS = (52, 53, 54)


def stem_for_program(program: int, is_drum: bool) -> str:
    """The stem a General MIDI program (0-based) or the drum channel belongs to."""
    if is_drum:
        return "drums"
    if program in PIANO_PROGRAMS:
        return "piano"
    if program in GUITAR_PROGRAMS:
        return "guitar"
    if program in BASS_PROGRAMS:
        return "bass"
    if program in VOCAL_PROGRAMS:
        return "vocals"
    return "other"


# Programs drawn for each role, with weights: common sounds often, odd ones now and then.
PIANO_CHOICES: dict[int, float] = {0: 5, 1: 3, 2: 1.5, 3: 1, 4: 2.5, 5: 2, 6: 0.4, 7: 0.4}
GUITAR_CLEAN: dict[int, float] = {24: 3, 25: 4, 26: 2, 27: 3, 28: 1.5}
GUITAR_DIRTY: dict[int, float] = {29: 2, 30: 3}
BASS_CHOICES: dict[int, float] = {32: 2, 33: 4, 34: 3, 35: 1.5, 36: 0.7, 37: 0.7, 38: 1.5, 39: 1.5}
PAD_CHOICES: dict[int, float] = {48: 4, 49: 3, 50: 2, 51: 1, 16: 1.5, 17: 1, 18: 0.7, 19: 1, 88: 1.5, 89: 1.5, 90: 1,
                91: 1, 92: 0.7, 94: 1, 95: 0.8, 61: 1, 60: 0.5, 44: 0.8}
LEAD_CHOICES: dict[int, float] = {80: 1.5, 81: 1.5, 82: 0.7, 84: 0.6, 87: 0.6, 56: 1, 57: 0.5, 64: 0.8, 65: 1, 66: 1,
                 68: 1, 71: 1, 73: 1.5, 72: 0.5, 75: 0.5, 40: 1, 41: 0.4, 22: 0.6, 78: 0.4, 105: 0.3,
                 109: 0.2}
ARP_CHOICES: dict[int, float] = {8: 1, 9: 1, 10: 0.7, 11: 1.5, 12: 1.5, 13: 1, 14: 0.3, 46: 1.5, 45: 0.8, 98: 0.6,
                81: 0.8, 62: 0.6, 63: 0.6, 38: 0.0}
STAB_CHOICES: dict[int, float] = {61: 2, 62: 1, 56: 1, 57: 1, 16: 1, 48: 0.5, 63: 1}
CHOIR_CHOICES: dict[int, float] = {52: 3, 53: 3, 54: 1}
# Low-middle lines in the "other" stem (cello, contrabass, strings, brass, bassoon, clarinet, horn, synth
# leads and brass): real songs' "other" parts often share the bass and piano's register.
COUNTER_CHOICES: dict[int, float] = {42: 3, 43: 0.8, 48: 1.5, 49: 0.8, 57: 2, 58: 1, 60: 1.5, 61: 1, 70: 2, 71: 1.5,
                    68: 0.6, 62: 1, 81: 1, 87: 1, 19: 0.6, 16: 0.6}
# Version 6: "other" instruments that double a bass line at pitch or an octave up (cello, contrabass,
# pizzicato, trombone, tuba, baritone sax, bassoon, synth leads), as real arrangements often do.
BASS_DOUBLE_OTHER: dict[int, float] = {42: 2, 43: 1.5, 45: 1, 57: 1.5, 58: 1.5, 67: 1, 70: 1.5, 87: 1, 81: 0.7}


def weighted_choice(rng: np.random.Generator, table: Mapping[int, float]) -> int:
    keys = [k for k, w in table.items() if w > 0]
    weights = np.array([table[k] for k in keys], dtype=float)
    return int(keys[int(rng.choice(len(keys), p=weights / weights.sum()))])



# ----------------------------------------------------------------------------------------------
# Data model


@dataclass
class Note:
    """One note of an instrument part, times in seconds."""

    start_s: float
    end_s: float
    pitch: int
    velocity: int


@dataclass
class Track:
    """One instrument part: a General MIDI program on one channel, in one stem."""

    name: str
    stem: str
    program: int
    is_drum: bool = False
    notes: list[Note] = field(default_factory=list)
    pan: float = 0.0  # -1 left .. 1 right
    volume: int = 100  # MIDI CC7
    drum_kit: int = 0  # bank-128 preset for drum tracks
    source: str = "native"  # "native" or "mma:<Groove>"


@dataclass
class Section:
    name: str  # intro, verse, chorus, bridge, solo, outro
    start_bar: int
    n_bars: int
    start_s: float
    end_s: float
    energy: float


@dataclass
class Song:
    """A whole song as note lists. Times are seconds from the start; duration_s includes a tail."""

    seed: int
    tempo_bpm: float
    metre: str
    key_root: int
    mode: str
    swing: float
    sections: list[Section]
    chords: list[tuple[float, float, Chord]]  # (start_s, end_s, chord)
    tracks: list[Track]
    vocal_notes: list[Any]  # list[singer.SungNote]
    voice: Any  # singer.VoiceSettings or None
    duration_s: float
    generator: str  # "native" or "mma"
    groove: str | None = None
    style: str = ""

    @property
    def stems_present(self) -> list[str]:
        present = {t.stem for t in self.tracks if t.notes}
        if self.vocal_notes:
            present.add("vocals")
        return [s for s in SOURCES if s in present]

    def describe(self) -> dict[str, Any]:
        """JSON-ready metadata (no notes)."""
        return {
            "seed": self.seed,
            "tempo_bpm": round(self.tempo_bpm, 2),
            "metre": self.metre,
            "key": NOTE_NAMES[self.key_root] + " " + self.mode,
            "swing": round(self.swing, 3),
            "generator": self.generator,
            "groove": self.groove,
            "style": self.style,
            "duration_s": round(self.duration_s, 3),
            "sections": [
                {"name": s.name, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "bars": s.n_bars}
                for s in self.sections
            ],
            "tracks": [
                {"name": t.name, "stem": t.stem, "program": t.program, "is_drum": t.is_drum,
                 "n_notes": len(t.notes), "source": t.source, "drum_kit": t.drum_kit}
                for t in self.tracks if t.notes
            ],
            "vocal_notes": len(self.vocal_notes),
            "voice": _voice_dict(self.voice),
            "stems_present": self.stems_present,
        }


def _voice_dict(voice: Any) -> dict[str, Any] | None:
    if voice is None:
        return None
    try:
        return {k: (v if isinstance(v, (int, float, str, bool)) or v is None else repr(v))
                for k, v in asdict(voice).items()}
    except TypeError:
        return {"repr": repr(voice)}
