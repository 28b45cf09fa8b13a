"""Songs written by code: a form, chords, grooves and parts for six stems, as note lists (no audio here).

`compose(seed)` returns a `Song`: tempo, metre, key, sections, one `Track` per instrument part
(General MIDI program, stem, notes in seconds) and the sung vocal line (`SungNote`s with lyrics).
About half the songs take their accompaniment from Debian's `mma` (over a thousand human-written
grooves driven by a chord chart); the rest, and every vocal line, lead and extra part, come from
the generators below. The same seed always gives the same song.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.sources import DEFAULT_SOURCES

SOURCES: tuple[str, ...] = tuple(DEFAULT_SOURCES)
MMA_LIBRARY = Path("/usr/share/mma/lib/stdlib")
TAIL_S = 2.0  # release time rendered after the last bar

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
_PIANO_CHOICES: dict[int, float] = {0: 5, 1: 3, 2: 1.5, 3: 1, 4: 2.5, 5: 2, 6: 0.4, 7: 0.4}
_GUITAR_CLEAN: dict[int, float] = {24: 3, 25: 4, 26: 2, 27: 3, 28: 1.5}
_GUITAR_DIRTY: dict[int, float] = {29: 2, 30: 3}
_BASS_CHOICES: dict[int, float] = {32: 2, 33: 4, 34: 3, 35: 1.5, 36: 0.7, 37: 0.7, 38: 1.5, 39: 1.5}
_PAD_CHOICES: dict[int, float] = {48: 4, 49: 3, 50: 2, 51: 1, 16: 1.5, 17: 1, 18: 0.7, 19: 1, 88: 1.5, 89: 1.5, 90: 1,
                91: 1, 92: 0.7, 94: 1, 95: 0.8, 61: 1, 60: 0.5, 44: 0.8}
_LEAD_CHOICES: dict[int, float] = {80: 1.5, 81: 1.5, 82: 0.7, 84: 0.6, 87: 0.6, 56: 1, 57: 0.5, 64: 0.8, 65: 1, 66: 1,
                 68: 1, 71: 1, 73: 1.5, 72: 0.5, 75: 0.5, 40: 1, 41: 0.4, 22: 0.6, 78: 0.4, 105: 0.3,
                 109: 0.2}
_ARP_CHOICES: dict[int, float] = {8: 1, 9: 1, 10: 0.7, 11: 1.5, 12: 1.5, 13: 1, 14: 0.3, 46: 1.5, 45: 0.8, 98: 0.6,
                81: 0.8, 62: 0.6, 63: 0.6, 38: 0.0}
_STAB_CHOICES: dict[int, float] = {61: 2, 62: 1, 56: 1, 57: 1, 16: 1, 48: 0.5, 63: 1}
_CHOIR_CHOICES: dict[int, float] = {52: 3, 53: 3, 54: 1}


def _weighted(rng: np.random.Generator, table: Mapping[int, float]) -> int:
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


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class 0-11
    quality: str  # key of CHORD_INTERVALS

    def pitch_classes(self) -> list[int]:
        return [(self.root + i) % 12 for i in CHORD_INTERVALS[self.quality]]

    def mma_name(self) -> str:
        return NOTE_NAMES[self.root] + MMA_QUALITY[self.quality]


CHORD_INTERVALS = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11), "m7": (0, 3, 7, 10), "m7b5": (0, 3, 6, 10), "sus2": (0, 2, 7),
    "sus4": (0, 5, 7), "add9": (0, 4, 7, 14), "6": (0, 4, 7, 9), "m6": (0, 3, 7, 9),
}
MMA_QUALITY = {"maj": "", "min": "m", "dim": "dim", "aug": "aug", "7": "7", "maj7": "M7", "m7": "m7",
               "m7b5": "m7b5", "sus2": "sus2", "sus4": "sus4", "add9": "add9", "6": "6", "m6": "m6"}
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}
_MODE_WEIGHTS = {"major": 5, "minor": 4, "dorian": 1.2, "mixolydian": 1.2, "harmonic_minor": 0.6,
                 "phrygian": 0.3, "lydian": 0.3}

# Progressions as scale degrees (0-based); played in whatever mode the song is in.
_PROGRESSIONS = [
    (0, 4, 5, 3), (0, 3, 4, 3), (5, 3, 0, 4), (0, 5, 3, 4), (1, 4, 0, 0), (0, 2, 3, 4), (0, 3, 0, 4),
    (0, 6, 3, 0), (5, 4, 3, 4), (0, 3, 5, 4), (3, 0, 4, 5), (0, 0, 3, 4), (0, 4, 3, 3), (5, 5, 3, 4),
    (0, 1, 3, 4), (3, 4, 0, 5), (0, 3, 1, 4), (0, 5, 1, 4), (0, 4, 5, 2, 3, 0, 3, 4), (0, 0, 3, 3, 4, 4, 0, 0),
    (0, 6, 5, 4), (5, 3, 4, 0), (0, 2, 5, 4), (1, 4, 0, 5),
]
_TWELVE_BAR = (0, 0, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4)


@dataclass(frozen=True)
class Metre:
    name: str  # "4/4", "3/4", "6/8", "5/4"
    bar_q: float  # bar length in quarter notes
    steps: int  # sixteenth steps per bar
    beat_steps: tuple[int, ...]  # steps where a felt beat falls


METRES = {
    "4/4": Metre("4/4", 4.0, 16, (0, 4, 8, 12)),
    "3/4": Metre("3/4", 3.0, 12, (0, 4, 8)),
    "6/8": Metre("6/8", 3.0, 12, (0, 6)),
    "5/4": Metre("5/4", 5.0, 20, (0, 4, 8, 12, 16)),
}


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


# ----------------------------------------------------------------------------------------------
# Time


class Clock:
    """Maps positions in quarter notes to seconds, with swing on off-beat eighths and human timing."""

    def __init__(self, tempo_bpm: float, swing: float, metre: Metre) -> None:
        # For 6/8 the tempo counts dotted quarters.
        self.q_s = 60.0 / (tempo_bpm * (1.5 if metre.name == "6/8" else 1.0))
        self.swing = swing  # 0.5 = straight, 0.67 = triplet swing
        self.metre = metre

    def t(self, q: float) -> float:
        if self.swing > 0.5 and self.metre.name != "6/8":
            beat = math.floor(q + 1e-9)
            frac = q - beat
            if frac <= 0.5:
                frac = frac / 0.5 * self.swing
            else:
                frac = self.swing + (frac - 0.5) / 0.5 * (1.0 - self.swing)
            q = beat + frac
        return q * self.q_s

    def bar_s(self) -> float:
        return self.metre.bar_q * self.q_s


# ----------------------------------------------------------------------------------------------
# Form


_FORMS = [
    ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"],
    ["intro", "verse", "verse", "chorus", "verse", "chorus", "outro"],
    ["verse", "chorus", "verse", "chorus", "solo", "chorus"],
    ["intro", "verse", "chorus", "solo", "verse", "chorus", "chorus", "outro"],
    ["intro", "chorus", "verse", "chorus", "bridge", "chorus", "outro"],
    ["intro", "verse", "bridge", "chorus", "verse", "bridge", "chorus", "outro"],
    ["verse", "verse", "bridge", "verse", "outro"],
    ["intro", "verse", "chorus", "bridge", "solo", "chorus", "outro"],
]
_ENERGY = {"intro": 0.6, "verse": 0.75, "chorus": 1.0, "bridge": 0.7, "solo": 0.9, "outro": 0.6}


@dataclass
class Plan:
    """The part of a song decided first (and cheaply): it fixes the duration."""

    tempo_bpm: float
    metre: Metre
    swing: float
    sections: list[tuple[str, int]]  # (name, bars)
    duration_s: float
    use_mma: bool
    style: str


_STYLES = ("rock", "pop", "ballad", "funk", "shuffle", "waltz", "folk", "electronic", "latin", "jazz")


def plan_song(seed: int, max_duration_s: float | None = None, min_duration_s: float = 35.0) -> Plan:
    """Decide tempo, metre and form for a seed. Cheap; `make-data` uses it to count hours up front."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    metre_name = str(rng.choice(["4/4", "3/4", "6/8", "5/4"], p=[0.68, 0.13, 0.13, 0.06]))
    metre = METRES[metre_name]
    style_weights = {"4/4": [3, 3, 1.5, 1.5, 1, 0, 1, 2, 1, 1], "3/4": [0.5, 1, 1.5, 0, 0, 4, 2, 0, 0.5, 1],
                     "6/8": [1, 1, 2, 0, 0, 0, 2, 0, 0.5, 0.5], "5/4": [1.5, 0.5, 0, 1, 0, 0, 0.5, 0.5, 0, 1.5]}
    w = np.array(style_weights[metre_name], dtype=float)
    style = str(rng.choice(_STYLES, p=w / w.sum()))
    lo, hi = {"ballad": (60, 95), "waltz": (84, 170), "funk": (88, 120), "electronic": (110, 140),
              "shuffle": (80, 150), "jazz": (90, 180)}.get(style, (70, 180))
    if metre_name == "6/8":
        lo, hi = 40, 85  # dotted-quarter beats
    tempo = float(rng.uniform(lo, hi))
    swing = float(rng.uniform(0.58, 0.68)) if style in ("shuffle", "jazz") or rng.random() < 0.06 else 0.5
    form = list(_FORMS[int(rng.integers(len(_FORMS)))])
    sections: list[tuple[str, int]] = []
    for name in form:
        if name in ("intro", "outro"):
            bars = int(rng.choice([2, 4, 4, 8]))
        elif name == "bridge":
            bars = int(rng.choice([4, 4, 8]))
        else:
            bars = int(rng.choice([4, 8, 8, 8, 16])) if metre.bar_q < 4 else int(rng.choice([4, 8, 8]))
        sections.append((name, bars))
    clock = Clock(tempo, swing, metre)
    target = float(rng.uniform(45.0, 130.0))
    if max_duration_s is not None:
        target = min(target, max_duration_s)

    def length(secs: list[tuple[str, int]]) -> float:
        return sum(b for _, b in secs) * clock.bar_s() + TAIL_S

    # Too long: drop middle sections, then halve the longest; too short: repeat a chorus.
    while length(sections) > target and len(sections) > 2:
        middle = [i for i, (n, _) in enumerate(sections) if n not in ("intro", "outro")]
        drop = middle[len(middle) // 2] if len(middle) > 2 else (0 if sections[0][0] == "intro" else len(sections) - 1)
        sections.pop(drop)
    while length(sections) > target and max(b for _, b in sections) > 2:
        i = int(np.argmax([b for _, b in sections]))
        sections[i] = (sections[i][0], sections[i][1] // 2)
    guard = 0
    while length(sections) < min_duration_s and guard < 8 and (max_duration_s is None or length(sections) < max_duration_s):
        sections.insert(max(1, len(sections) - 1), ("chorus", 8))
        guard += 1
    if max_duration_s is not None:
        while length(sections) > max_duration_s and len(sections) > 1:
            sections.pop(-1)
        while length(sections) > max_duration_s and sections[0][1] > 1:
            sections[0] = (sections[0][0], sections[0][1] // 2)
    use_mma = bool(rng.random() < 0.5) and metre_name in ("4/4", "3/4") and mma_available()
    return Plan(tempo, metre, swing, sections, length(sections), use_mma, style)


def song_duration(seed: int, max_duration_s: float | None = None) -> float:
    return plan_song(seed, max_duration_s).duration_s


# ----------------------------------------------------------------------------------------------
# Harmony


def _diatonic_chord(rng: np.random.Generator, key_root: int, mode: str, degree: int, sevenths: float) -> Chord:
    scale = MODES[mode]
    pcs = [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4, 6)]
    third, fifth, seventh = pcs[1] - pcs[0], pcs[2] - pcs[0], pcs[3] - pcs[0]
    root = (key_root + pcs[0]) % 12
    if third == 4 and fifth == 7:
        quality = "maj"
        if rng.random() < sevenths:
            quality = "maj7" if seventh == 11 else "7"
        elif rng.random() < 0.08:
            quality = str(rng.choice(["sus2", "sus4", "add9", "6"]))
    elif third == 3 and fifth == 7:
        quality = "min"
        if rng.random() < sevenths:
            quality = "m7"
    elif third == 3 and fifth == 6:
        quality = "m7b5" if rng.random() < sevenths else "dim"
    else:
        quality = "aug" if third == 4 else "min"
    return Chord(root, quality)


def _progression(rng: np.random.Generator, key_root: int, mode: str, n_bars: int, metre: Metre,
                 sevenths: float, blues: bool) -> list[tuple[float, Chord]]:
    """Chords for a section as (position in quarters from the section start, chord)."""
    if blues and n_bars >= 12:
        degrees: Sequence[int] = _TWELVE_BAR
    else:
        degrees = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    rate = float(rng.choice([0.5, 1.0, 1.0, 1.0, 2.0])) if metre.bar_q == 4 else float(rng.choice([1.0, 1.0, 2.0]))
    chord_q = metre.bar_q * rate if rate >= 1 else metre.bar_q / 2
    chords_by_degree: dict[int, Chord] = {}
    out: list[tuple[float, Chord]] = []
    q = 0.0
    i = 0
    total = n_bars * metre.bar_q
    while q < total - 1e-6:
        d = degrees[i % len(degrees)]
        if d not in chords_by_degree:
            chords_by_degree[d] = _diatonic_chord(rng, key_root, mode, d, sevenths)
        chord = chords_by_degree[d]
        if blues:
            chord = Chord(chord.root, "7")
        # In minor keys the V chord is often major (harmonic minor borrowing).
        if mode in ("minor", "dorian") and d == 4 and rng.random() < 0.4:
            chord = Chord(chord.root, "7" if rng.random() < 0.5 else "maj")
        out.append((q, chord))
        q += chord_q
        i += 1
    # Turnaround: a last-bar dominant now and then.
    if len(out) >= 2 and rng.random() < 0.25:
        dom = _diatonic_chord(rng, key_root, mode, 4, 0.5)
        out[-1] = (out[-1][0], dom)
    return out


# ----------------------------------------------------------------------------------------------
# Helpers for parts


def _voicing(chord: Chord, low: int, high: int, n: int, prev: list[int] | None = None) -> list[int]:
    """A close voicing of n notes between low and high, led smoothly from the previous voicing."""
    pcs = chord.pitch_classes()
    candidates: list[list[int]] = []
    for inv in range(len(pcs)):
        order = pcs[inv:] + pcs[:inv]
        for base_oct in range(low // 12, high // 12 + 1):
            notes: list[int] = []
            p = base_oct * 12 + order[0]
            for k in range(n):
                pc = order[k % len(order)]
                while p % 12 != pc or (notes and p <= notes[-1]):
                    p += 1
                notes.append(p)
            if notes[0] >= low and notes[-1] <= high:
                candidates.append(notes)
    if not candidates:
        root = low + (pcs[0] - low) % 12
        return [root + CHORD_INTERVALS[chord.quality][k % 3] for k in range(min(n, 3))]
    if prev:
        centre = float(np.mean(prev))
        return min(candidates, key=lambda c: abs(float(np.mean(c)) - centre) + 0.1 * abs(c[0] - prev[0]))
    mid = (low + high) / 2
    return min(candidates, key=lambda c: abs(float(np.mean(c)) - mid))


def _root_in(chord: Chord, low: int, high: int) -> int:
    p = low + (chord.root - low) % 12
    return p if p <= high else p - 12


def _vel(rng: np.random.Generator, base: float, energy: float, spread: float = 8.0) -> int:
    return int(np.clip(base * (0.7 + 0.3 * energy) + rng.normal(0, spread), 12, 127))


class PartWriter:
    """Shared state while writing one song's parts: clock, chords per position, sections, rng."""

    def __init__(self, rng: np.random.Generator, clock: Clock, metre: Metre, sections: list[Section],
                 chord_q: list[tuple[float, float, Chord]], key_root: int, mode: str, human_ms: float) -> None:
        self.rng = rng
        self.clock = clock
        self.metre = metre
        self.sections = sections
        self.chord_q = chord_q  # (start_q, end_q, chord)
        self.key_root = key_root
        self.mode = mode
        self.human_s = human_ms / 1000.0

    def chord_at(self, q: float) -> Chord:
        for s, e, c in self.chord_q:
            if s - 1e-6 <= q < e - 1e-6:
                return c
        return self.chord_q[-1][2]

    def note(self, q0: float, dur_q: float, pitch: int, vel: int, human: bool = True) -> Note:
        jitter = float(self.rng.normal(0, self.human_s)) if human and self.human_s > 0 else 0.0
        t0 = max(0.0, self.clock.t(q0) + jitter)
        t1 = max(t0 + 0.03, self.clock.t(q0 + dur_q) + (jitter * 0.5 if human else 0.0))
        return Note(t0, t1, int(np.clip(pitch, 0, 127)), int(np.clip(vel, 1, 127)))

    def scale_pitches(self, low: int, high: int) -> list[int]:
        pcs = {(self.key_root + i) % 12 for i in MODES[self.mode]}
        return [p for p in range(low, high + 1) if p % 12 in pcs]


# ----------------------------------------------------------------------------------------------
# Drums

KICK, SNARE, STICK, CLAP, HH, PEDAL, OPEN, CRASH, RIDE, BELL = 36, 38, 37, 39, 42, 44, 46, 49, 51, 53
TOMS = (50, 48, 47, 45, 43, 41)
_KICK_44 = [(0, 8), (0, 6, 8), (0, 8, 10), (0, 3, 8, 11), (0, 4, 8, 12), (0, 7, 8), (0, 10), (0, 6, 10),
            (0, 8, 9, 14)]


def _drum_pattern(rng: np.random.Generator, metre: Metre, style: str) -> dict[str, Any]:
    steps = metre.steps
    if metre.name == "4/4":
        if style == "electronic" or rng.random() < 0.12:
            kick = [0, 4, 8, 12]
        else:
            kick = list(_KICK_44[int(rng.integers(len(_KICK_44)))])
        snare = [8] if (style == "ballad" and rng.random() < 0.5) or rng.random() < 0.12 else [4, 12]
    elif metre.name == "3/4":
        kick = [0] if rng.random() < 0.6 else [0, 6]
        snare = [4, 8] if style == "waltz" or rng.random() < 0.5 else [8]
    elif metre.name == "6/8":
        kick = [0] if rng.random() < 0.5 else [0, 10]
        snare = [6]
    else:  # 5/4 as 3+2
        kick = [0, 12] if rng.random() < 0.6 else [0, 6, 12]
        snare = [8, 16]
    hat_rate = int(rng.choice([2, 2, 2, 1, 4])) if metre.name != "6/8" else 2
    if style == "funk":
        hat_rate = 1
    return {
        "kick": kick, "snare": snare, "hat_rate": hat_rate, "steps": steps,
        "ghost": float(rng.uniform(0, 0.25)) if style in ("funk", "rock", "pop", "shuffle") else 0.03,
        "open_last": bool(rng.random() < 0.35),
        "extra_perc": int(rng.choice([0, 0, 0, 54, 70, 56, 39, 75])),
        "cross": bool(rng.random() < 0.15),
    }


def write_drums(pw: PartWriter, style: str, present: list[bool]) -> Track:
    rng = pw.rng
    pat = _drum_pattern(rng, pw.metre, style)
    alt = _drum_pattern(rng, pw.metre, style)  # the chorus variation
    track = Track("drums", "drums", 0, is_drum=True)
    sq = 0.25  # a sixteenth in quarters
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        p = alt if sec.name in ("chorus", "solo") and rng.random() < 0.7 else pat
        use_ride = sec.name in ("chorus", "bridge", "solo") and rng.random() < 0.35
        half_time = sec.name == "bridge" and rng.random() < 0.4
        sparse = sec.name in ("intro", "outro") and rng.random() < 0.4
        for b in range(sec.n_bars):
            bar_q = (sec.start_bar + b) * pw.metre.bar_q
            last_bar = b == sec.n_bars - 1
            fill_from = p["steps"] if not last_bar or rng.random() < 0.3 else p["steps"] - int(rng.choice([4, 4, 8]))
            if b == 0 and (si > 0 or rng.random() < 0.5):
                track.notes.append(pw.note(bar_q, 1.0, CRASH, _vel(rng, 105, sec.energy)))
            for step in range(p["steps"]):
                q = bar_q + step * sq
                if step >= fill_from:
                    if (step - fill_from) % int(rng.choice([1, 2])) == 0:
                        k = min(len(TOMS) - 1, (step - fill_from) * len(TOMS) // max(1, p["steps"] - fill_from))
                        drum = SNARE if rng.random() < 0.3 else TOMS[k]
                        track.notes.append(pw.note(q, sq, drum, _vel(rng, 95, sec.energy)))
                    if step % 4 == 0:
                        track.notes.append(pw.note(q, sq, KICK, _vel(rng, 95, sec.energy)))
                    continue
                on_beat = step in pw.metre.beat_steps
                if step in p["kick"] and not (half_time and step not in (0,)):
                    track.notes.append(pw.note(q, sq, KICK, _vel(rng, 100 if step == 0 else 88, sec.energy)))
                snare_steps = [p["steps"] // 2] if half_time else p["snare"]
                if not sparse and step in snare_steps:
                    drum = STICK if (p["cross"] and sec.name == "verse") else (CLAP if style == "electronic" and rng.random() < 0.5 else SNARE)
                    track.notes.append(pw.note(q, sq, drum, _vel(rng, 100, sec.energy)))
                elif not sparse and p["ghost"] > 0 and step % 2 == 1 and rng.random() < p["ghost"]:
                    track.notes.append(pw.note(q, sq, SNARE, int(rng.integers(18, 40))))
                if step % p["hat_rate"] == 0:
                    cym = RIDE if use_ride else HH
                    if p["open_last"] and step == p["steps"] - 2 and not use_ride:
                        cym = OPEN
                    base = 85 if on_beat else 62
                    track.notes.append(pw.note(q, sq, cym, _vel(rng, base, sec.energy, 10)))
                if p["extra_perc"] and not sparse and step % 2 == 0 and sec.name in ("chorus", "solo"):
                    track.notes.append(pw.note(q, sq, p["extra_perc"], _vel(rng, 55, sec.energy, 12)))
    return track


# ----------------------------------------------------------------------------------------------
# Bass


def write_bass(pw: PartWriter, style: str, present: list[bool], kick_steps: list[int] | None = None) -> Track:
    rng = pw.rng
    prog = _weighted(rng, _BASS_CHOICES)
    track = Track("bass", "bass", prog)
    # Real songs' bass lines sit higher and move faster than roots on the beat (DATA.md, song_stats):
    # a third of the parts play an octave up, and "busy" lines run in eighths and sixteenths.
    low, high = (28, 52) if rng.random() < 0.65 else (36, 62)
    kinds = ["roots", "eighths", "root_fifth", "synco", "walk", "busy"]
    w = {"jazz": [0, 0, 1, 0, 6, 1], "shuffle": [1, 1, 2, 1, 2, 1], "funk": [0, 1, 1, 5, 0, 3], "ballad": [4, 0, 2, 1, 0, 0.5],
         "electronic": [1, 4, 1, 2, 0, 2], "rock": [1, 4, 2, 1, 0, 2]}.get(style, [2, 2, 3, 2, 0.3, 2.5])
    kind_by_section: dict[str, str] = {}
    legato = float(rng.uniform(0.35, 0.95))
    scale = pw.scale_pitches(low, high)
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        if sec.name not in kind_by_section:
            ww = np.array(w, dtype=float)
            kind_by_section[sec.name] = kinds[int(rng.choice(len(kinds), p=ww / ww.sum()))]
        kind = kind_by_section[sec.name]
        sec_q0 = sec.start_bar * pw.metre.bar_q
        sec_q1 = sec_q0 + sec.n_bars * pw.metre.bar_q
        q = sec_q0
        prev = None
        while q < sec_q1 - 1e-6:
            chord = pw.chord_at(q)
            root = _root_in(chord, low, high)
            if prev is not None and root - 12 >= low and abs(root - 12 - prev) < abs(root - prev):
                root -= 12  # stay near the previous note
            fifth = root + 7 if root + 7 <= high else root - 5
            bar_pos = (q - sec_q0) % pw.metre.bar_q
            if kind == "roots":
                dur = 2.0 if pw.metre.bar_q % 2 == 0 else (pw.metre.bar_q if pw.metre.bar_q == 3 else 1.0)
                track.notes.append(pw.note(q, dur * legato, root, _vel(rng, 95, sec.energy)))
                q += dur
            elif kind == "eighths":
                track.notes.append(pw.note(q, 0.5 * legato, root if rng.random() > 0.08 else root + 12,
                                           _vel(rng, 90 if bar_pos % 1 == 0 else 78, sec.energy)))
                q += 0.5
            elif kind == "root_fifth":
                beat = round(bar_pos)
                pitch = root if beat % 2 == 0 else (fifth if rng.random() < 0.7 else root + 12)
                track.notes.append(pw.note(q, 1.0 * legato, pitch, _vel(rng, 92, sec.energy)))
                q += 1.0
            elif kind == "walk":
                beat = round(bar_pos)
                pcs = chord.pitch_classes()
                if beat == 0:
                    pitch = root
                else:
                    nxt = pw.chord_at(q + 1.0)
                    target = _root_in(nxt, low, high)
                    if bar_pos + 1 >= pw.metre.bar_q - 1e-6 or rng.random() < 0.3:
                        pitch = target + int(rng.choice([-1, 1, -2, 2]))  # approach note
                    else:
                        pc = pcs[int(rng.integers(len(pcs)))]
                        pitch = low + (pc - low) % 12
                        if prev is not None and abs(pitch + 12 - prev) < abs(pitch - prev) and pitch + 12 <= high:
                            pitch += 12
                track.notes.append(pw.note(q, 0.95, pitch, _vel(rng, 88, sec.energy)))
                q += 1.0
            elif kind == "busy":  # a melodic line: chord tones and scale steps in eighths / sixteenths
                step = 0.25 if rng.random() < 0.4 else 0.5
                if bar_pos == 0 or prev is None:
                    pitch = root
                elif bar_pos % 1 == 0:  # on the beat: the chord tone nearest the line
                    last = prev
                    pitch = min((root, fifth, root + 12 if root + 12 <= high else root), key=lambda x: abs(x - last))
                else:
                    i = int(np.argmin([abs(x - prev) for x in scale]))
                    pitch = scale[int(np.clip(i + int(rng.choice([-2, -1, 1, 2])), 0, len(scale) - 1))]
                track.notes.append(pw.note(q, step * legato, pitch, _vel(rng, 90 if bar_pos % 1 == 0 else 76, sec.energy)))
                q += step
                prev = pitch
                continue
            else:  # syncopated sixteenths following a kick-like pattern
                steps = kick_steps or [0, 3, 6, 8, 10, 14]
                bar_q0 = q - bar_pos
                for st in steps:
                    if st * 0.25 >= pw.metre.bar_q:
                        continue
                    pitch = root if rng.random() < 0.7 else int(rng.choice([fifth, root + 12, root + 10 if root + 10 <= high else root]))
                    track.notes.append(pw.note(bar_q0 + st * 0.25, float(rng.choice([0.25, 0.5, 0.75])) * legato,
                                               pitch, _vel(rng, 92, sec.energy)))
                q = bar_q0 + pw.metre.bar_q
            prev = root
    return track


# ----------------------------------------------------------------------------------------------
# Guitar and piano comping


def _rhythm(rng: np.random.Generator, metre: Metre, density: float) -> list[tuple[float, float]]:
    """A one-bar comping rhythm: (onset, duration) in quarters."""
    grid = 0.5
    n = int(metre.bar_q / grid)
    onsets = [i * grid for i in range(n) if i == 0 or rng.random() < density]
    out = []
    for k, o in enumerate(onsets):
        nxt = onsets[k + 1] if k + 1 < len(onsets) else metre.bar_q
        out.append((o, nxt - o))
    return out


def write_guitar(pw: PartWriter, style: str, present: list[bool]) -> Track:
    rng = pw.rng
    # Real songs' guitars mostly play one or two notes at a time (song_stats: polyphony 1.5 against the
    # strummed chords' 3.8), hence "line": a single-note melodic part in the guitar's middle register.
    kinds = ["strum", "arpeggio", "power", "skank", "riff", "line"]
    w = {"rock": [2, 1, 4, 0, 1.5, 2], "funk": [1, 0, 0, 3, 2, 1.5], "folk": [5, 3, 0, 0, 0, 1], "ballad": [2, 4, 0, 0, 0.5, 1.5],
         "waltz": [2, 3, 0, 0, 0, 1], "latin": [2, 2, 0, 1, 1, 2], "jazz": [3, 2, 0, 0, 0.5, 3]}.get(style, [3, 2, 1.5, 0.7, 1, 3])
    ww = np.array(w, dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=ww / ww.sum()))]
    if kind == "power":
        prog = _weighted(rng, _GUITAR_DIRTY) if rng.random() < 0.85 else 27
    elif kind == "strum":
        prog = _weighted(rng, {24: 3.0, 25: 5.0, 26: 1.0, 27: 1.0, 29: 0.5})
    else:
        prog = _weighted(rng, _GUITAR_CLEAN)
    track = Track("guitar", "guitar", prog, source="native:" + kind)
    if kind == "line":
        lo = int(rng.integers(45, 57))
        mel = write_melody(pw, present, lo, lo + int(rng.integers(12, 20)), float(rng.uniform(0.8, 1.8)), 2)
        for o, d, p, sname in _monophonic(mel):
            track.notes.append(pw.note(o, d * float(rng.uniform(0.5, 0.95)), p, _vel(rng, 84, _ENERGY[sname])))
        return track
    rhythm = _rhythm(rng, pw.metre, float(rng.uniform(0.3, 0.85)))
    strum_ms = float(rng.uniform(6, 22)) / 1000.0
    prev: list[int] | None = None
    riff = [int(x) for x in rng.choice([0, 2, 4, 7, 5, 9, 12], size=8)]
    riff_rhythm = sorted({float(x) for x in rng.choice(np.arange(0, pw.metre.bar_q, 0.5), size=5)})
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        for b in range(sec.n_bars):
            bar_q = (sec.start_bar + b) * pw.metre.bar_q
            if kind == "strum":
                for k, (o, d) in enumerate(rhythm):
                    chord = pw.chord_at(bar_q + o)
                    v = _voicing(chord, 40, 71, int(rng.choice([4, 5, 6])), prev)
                    prev = v
                    down = (o % 1.0) == 0
                    order = v if down else v[::-1]
                    base = _vel(rng, 88 if down else 70, sec.energy)
                    for j, p in enumerate(order):
                        n = pw.note(bar_q + o, d * 0.95, p, base - 2 * j)
                        n.start_s += j * strum_ms
                        n.end_s = max(n.end_s, n.start_s + 0.05)
                        track.notes.append(n)
            elif kind == "arpeggio":
                step = 0.5 if rng.random() < 0.8 or pw.metre.name == "6/8" else 0.25
                chord = pw.chord_at(bar_q)
                v = _voicing(chord, 45, 76, 4, prev)
                prev = v
                pattern = [0, 1, 2, 3, 2, 1] if rng.random() < 0.5 else [0, 2, 1, 3]
                q = 0.0
                i = 0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    if chord.pitch_classes()[0] != v[0] % 12 and q > 0 and (q % 2 == 0):
                        v = _voicing(chord, 45, 76, 4, prev)
                        prev = v
                    p = v[pattern[i % len(pattern)] % len(v)]
                    track.notes.append(pw.note(bar_q + q, step * 2.5, p, _vel(rng, 78, sec.energy)))
                    q += step
                    i += 1
            elif kind == "power":
                sustained = sec.name in ("intro", "bridge") or rng.random() < 0.15
                q = 0.0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    r = _root_in(chord, 40, 52)
                    dur = pw.metre.bar_q if sustained else 0.5
                    for p in (r, r + 7, r + 12):
                        track.notes.append(pw.note(bar_q + q, dur * (0.95 if sustained else 0.6), p,
                                                   _vel(rng, 95, sec.energy)))
                    q += dur
            elif kind == "skank":
                for beat in np.arange(0.5, pw.metre.bar_q, 1.0):
                    chord = pw.chord_at(bar_q + beat)
                    v = _voicing(chord, 55, 74, 3, prev)
                    prev = v
                    for p in v:
                        track.notes.append(pw.note(bar_q + float(beat), 0.2, p, _vel(rng, 85, sec.energy)))
            else:  # riff on chord root + scale offsets
                chord = pw.chord_at(bar_q)
                r = _root_in(chord, 45, 57)
                for k, o in enumerate(riff_rhythm):
                    p = r + riff[k % len(riff)]
                    track.notes.append(pw.note(bar_q + o, 0.45, p, _vel(rng, 88, sec.energy)))
    return track


def write_piano(pw: PartWriter, style: str, present: list[bool]) -> Track:
    rng = pw.rng
    kinds = ["block", "arpeggio", "ballad", "oompah", "synco"]
    w = {"ballad": [1, 3, 5, 0, 0.5], "waltz": [1, 2, 1, 5, 0], "jazz": [3, 1, 1, 0, 3], "pop": [3, 2, 2, 0, 3],
         "shuffle": [2, 0, 0, 3, 2]}.get(style, [3, 2, 2, 1, 2])
    ww = np.array(w, dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=ww / ww.sum()))]
    prog = _weighted(rng, _PIANO_CHOICES)
    track = Track("piano", "piano", prog, source="native:" + kind)
    # Real piano parts sit lower than a right hand alone (median pitch 59 against 66): the voicings'
    # floor is drawn per part.
    v_low = int(rng.integers(46, 56))
    rhythm = _rhythm(rng, pw.metre, float(rng.uniform(0.2, 0.7)))
    prev: list[int] | None = None
    arp_step = float(rng.choice([0.5, 0.25, 1.0 / 3.0])) if pw.metre.name != "6/8" else 0.5
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        for b in range(sec.n_bars):
            bar_q = (sec.start_bar + b) * pw.metre.bar_q
            chord = pw.chord_at(bar_q)
            left = _root_in(chord, 36, 50)
            if kind == "ballad":
                half = pw.metre.bar_q / (2 if pw.metre.bar_q == 4 else 1)
                for o in np.arange(0, pw.metre.bar_q, half):
                    chord = pw.chord_at(bar_q + float(o))
                    v = _voicing(chord, v_low, v_low + 24, int(rng.choice([3, 4])), prev)
                    prev = v
                    for p in v:
                        track.notes.append(pw.note(bar_q + float(o), half * 0.98, p, _vel(rng, 70, sec.energy)))
                    track.notes.append(pw.note(bar_q + float(o), half * 0.98, _root_in(chord, 36, 50), _vel(rng, 72, sec.energy)))
            elif kind == "arpeggio":
                q = 0.0
                i = 0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    v = _voicing(chord, 52, 84, 4, prev)
                    prev = v
                    seq = [_root_in(chord, 36, 50)] + v + v[-2:0:-1]
                    track.notes.append(pw.note(bar_q + q, arp_step * 3, seq[i % len(seq)], _vel(rng, 70, sec.energy)))
                    q += arp_step
                    i += 1
            elif kind == "oompah":
                for beat in range(int(pw.metre.bar_q)):
                    chord = pw.chord_at(bar_q + beat)
                    if beat == 0 or (pw.metre.bar_q == 4 and beat == 2):
                        track.notes.append(pw.note(bar_q + beat, 0.9, _root_in(chord, 36, 50), _vel(rng, 85, sec.energy)))
                    else:
                        v = _voicing(chord, 55, 76, 3, prev)
                        prev = v
                        for p in v:
                            track.notes.append(pw.note(bar_q + beat, 0.45, p, _vel(rng, 70, sec.energy)))
            else:  # block / syncopated chords
                rh = rhythm if kind == "block" else _rhythm(rng, pw.metre, 0.6)
                track.notes.append(pw.note(bar_q, pw.metre.bar_q * 0.9, left, _vel(rng, 75, sec.energy)))
                for o, d in rh:
                    chord = pw.chord_at(bar_q + o)
                    v = _voicing(chord, v_low, v_low + 24, int(rng.choice([3, 4])), prev)
                    prev = v
                    for p in v:
                        track.notes.append(pw.note(bar_q + o, d * float(rng.uniform(0.5, 0.95)), p, _vel(rng, 76, sec.energy)))
    if rng.random() < 0.35:
        sustain_pedal(track, [pw.clock.t(s) for s, _, _ in pw.chord_q])
    return track


def sustain_pedal(track: Track, changes_s: Sequence[float]) -> None:
    """A sustain pedal held from one chord change to the next: every note rings on to the next change
    (a third of real songs' parts use the pedal; the renderers play notes, so the pedal becomes lengths)."""
    edges = np.asarray(sorted(changes_s), dtype=float)
    for n in track.notes:
        k = int(np.searchsorted(edges, n.start_s + 1e-3))
        if k < len(edges):
            n.end_s = max(n.end_s, float(edges[k]) - 0.02)


# ----------------------------------------------------------------------------------------------
# Other: pads, arpeggios, stabs, leads; vocals: melody and choir


def write_pad(pw: PartWriter, present: list[bool], choices: Mapping[int, float], stem: str, name: str,
              low: int = 52, high: int = 79) -> Track:
    rng = pw.rng
    track = Track(name, stem, _weighted(rng, choices))
    prev: list[int] | None = None
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        sec_q0 = sec.start_bar * pw.metre.bar_q
        sec_q1 = sec_q0 + sec.n_bars * pw.metre.bar_q
        for s, e, chord in pw.chord_q:
            s2, e2 = max(s, sec_q0), min(e, sec_q1)
            if e2 - s2 <= 1e-6:
                continue
            v = _voicing(chord, low, high, int(rng.choice([3, 4])), prev)
            prev = v
            for p in v:
                track.notes.append(pw.note(s2, (e2 - s2) * 0.98, p, _vel(rng, 70, sec.energy), human=False))
    return track


def write_arp(pw: PartWriter, present: list[bool]) -> Track:
    rng = pw.rng
    track = Track("arp", "other", _weighted(rng, _ARP_CHOICES))
    step = float(rng.choice([0.25, 0.5]))
    up = rng.random() < 0.5
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        q = sec.start_bar * pw.metre.bar_q
        end = q + sec.n_bars * pw.metre.bar_q
        i = 0
        while q < end - 1e-6:
            v = _voicing(pw.chord_at(q), 60, 88, 4)
            seq = v if up else v[::-1]
            track.notes.append(pw.note(q, step * 0.9, seq[i % len(seq)], _vel(rng, 72, sec.energy)))
            q += step
            i += 1
    return track


def write_stabs(pw: PartWriter, present: list[bool]) -> Track:
    rng = pw.rng
    track = Track("stabs", "other", _weighted(rng, _STAB_CHOICES))
    rhythm = [o for o, _ in _rhythm(rng, pw.metre, 0.35)]
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        for b in range(sec.n_bars):
            bar_q = (sec.start_bar + b) * pw.metre.bar_q
            for o in rhythm:
                for p in _voicing(pw.chord_at(bar_q + o), 58, 80, 3):
                    track.notes.append(pw.note(bar_q + o, 0.3, p, _vel(rng, 90, sec.energy)))
    return track


def _melody_phrase(pw: PartWriter, q0: float, n_bars: int, low: int, high: int, density: float,
                   start_pitch: int | None) -> list[tuple[float, float, int]]:
    """A melodic phrase: (onset_q, dur_q, pitch); chord tones on strong beats, steps between, a rest at the end."""
    rng = pw.rng
    scale = pw.scale_pitches(low, high)
    total = n_bars * pw.metre.bar_q
    rest_at_end = float(rng.choice([1.0, 1.5, 2.0])) if total > 3 else 0.5
    durs_choice = np.array([0.5, 1.0, 1.5, 2.0, 0.25])
    p_d = np.array([4, 4, 1.2, 1.0, 0.4]) * np.array([density, 1, 1, 1.0 / max(density, 0.3), density])
    out: list[tuple[float, float, int]] = []
    q = float(rng.choice([0.0, 0.0, 0.5, 1.0]))
    idx = int(np.argmin([abs(p - (start_pitch if start_pitch else (low + high) // 2)) for p in scale]))
    direction = 1 if rng.random() < 0.5 else -1
    while q < total - rest_at_end - 1e-6:
        d = float(rng.choice(durs_choice, p=p_d / p_d.sum()))
        d = min(d, total - rest_at_end - q)
        if d < 0.25:
            break
        strong = abs(q % 1.0) < 1e-6
        chord = pw.chord_at(q0 + q)
        if strong:
            pcs = chord.pitch_classes()
            near = [i for i, p in enumerate(scale) if p % 12 in pcs]
            if near:
                idx = min(near, key=lambda i: abs(i - idx) + (0 if (i - idx) * direction >= 0 else 0.5))
        else:
            r = rng.random()
            move = 1 if r < 0.6 else (2 if r < 0.85 else int(rng.choice([3, 4])))
            idx += direction * move
        if idx <= 1 or idx >= len(scale) - 2 or rng.random() < 0.15:
            direction = -direction
        idx = int(np.clip(idx, 0, len(scale) - 1))
        out.append((q0 + q, d, scale[idx]))
        q += d
        if rng.random() < 0.08 and q < total - rest_at_end - 1.0:
            q += 0.5  # a breath inside the phrase
    return out


def write_melody(pw: PartWriter, present: list[bool], low: int, high: int, density: float,
                 phrase_bars: int) -> list[tuple[float, float, int, str]]:
    """A lead melody over sections; repeated sections reuse their melody (musical repetition)."""
    rng = pw.rng
    memory: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    out: list[tuple[float, float, int, str]] = []
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        offset = 2 if sec.name == "chorus" else 0
        sec_q0 = sec.start_bar * pw.metre.bar_q
        n_phr = max(1, sec.n_bars // phrase_bars)
        pb = min(phrase_bars, sec.n_bars)
        phrases: list[list[tuple[float, float, int]]] = []
        for k in range(n_phr):
            key = (sec.name, k)
            phr_q0 = sec_q0 + k * pb * pw.metre.bar_q
            if key in memory and rng.random() < 0.85:
                ph = [(phr_q0 + o, d, p) for o, d, p in memory[key]]
            elif k >= 2 and k % 2 == 0 and rng.random() < 0.6:
                src_q0 = sec_q0 + (k - 2) * pb * pw.metre.bar_q
                ph = [(phr_q0 + o - src_q0, d, p) for o, d, p in phrases[k - 2]]
            else:
                sp = phrases[-1][-1][2] if phrases and phrases[-1] else None
                ph = _melody_phrase(pw, phr_q0, pb, low + offset, min(127, high + offset), density, sp)
            memory.setdefault(key, [(o - phr_q0, d, p) for o, d, p in ph])
            phrases.append(ph)
            for o, d, p in ph:
                out.append((o, d, p, sec.name))
    return out


def _monophonic(notes: list[tuple[float, float, int, str]]) -> list[tuple[float, float, int, str]]:
    notes = sorted(notes)
    clean: list[tuple[float, float, int, str]] = []
    for o, d, p, s in notes:
        if clean and o < clean[-1][0] + clean[-1][1] - 1e-6:
            po, _pd, pp, ps = clean[-1]
            clean[-1] = (po, max(0.25, o - po), pp, ps)
            if clean[-1][1] <= 0:
                continue
        clean.append((o, d, p, s))
    return clean


# ----------------------------------------------------------------------------------------------
# mma accompaniment


@functools.lru_cache(maxsize=1)
def mma_available() -> bool:
    return shutil.which("mma") is not None and MMA_LIBRARY.is_dir()


@functools.lru_cache(maxsize=1)
def mma_catalog() -> dict[int, list[dict[str, Any]]]:
    """Groove families from mma's standard library by beats per bar: {4: [{file, main, intro, end}], 3: [...]}."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not MMA_LIBRARY.is_dir():
        return out
    for path in sorted(MMA_LIBRARY.glob("*.mma")):
        text = path.read_text(errors="replace")
        m = re.search(r"^\s*Time\s+(\d+)", text, flags=re.MULTILINE)
        if not m:
            continue
        beats = int(m.group(1))
        names = re.findall(r"^\s*DefGroove\s+(\S+)", text, flags=re.MULTILINE)
        if not names or "metronome" in path.name:
            continue
        main = [n for n in names if not re.search(r"intro|end|fill|metronome|break", n, flags=re.IGNORECASE)]
        intro = [n for n in names if re.search(r"intro", n, flags=re.IGNORECASE)]
        end = [n for n in names if re.search(r"end", n, flags=re.IGNORECASE)]
        if main:
            out.setdefault(beats, []).append({"file": path.stem, "main": main, "intro": intro, "end": end})
    return out


_SLOW_WORDS = ("ballad", "slow", "lullaby", "hymn", "spiritual")
_FAST_WORDS = ("fast", "quick", "bebop", "bluegrass", "jive", "polka", "ska", "charleston", "dixie")


def mma_accompaniment(rng: np.random.Generator, song_seed: int, tempo: float, metre: Metre,
                      sections: list[Section], chord_q: list[tuple[float, float, Chord]]) -> tuple[list[Track], str]:
    """Run mma on a chord chart with grooves per section; returns its parts as Tracks and the groove family."""
    import pretty_midi

    beats = int(metre.bar_q)
    families = mma_catalog().get(beats, [])
    if not families:
        raise RuntimeError("no mma groove for this metre")
    # Prefer grooves whose name suits the tempo.
    scores = []
    for fam in families:
        s = 1.0
        if any(w in fam["file"] for w in _SLOW_WORDS):
            s = 3.0 if tempo < 95 else 0.1
        if any(w in fam["file"] for w in _FAST_WORDS):
            s = 3.0 if tempo > 130 else 0.1
        scores.append(s)
    sc = np.array(scores)
    fam = families[int(rng.choice(len(families), p=sc / sc.sum()))]
    verse_g = str(rng.choice(fam["main"]))
    chorus_g = str(rng.choice(fam["main"]))
    bridge_g = str(rng.choice(fam["main"]))
    lines = [f"Tempo {tempo:.2f}", f"RndSeed {int(song_seed) % 1000003}"]
    bar_no = 1
    for sec in sections:
        if sec.name == "intro" and fam["intro"] and rng.random() < 0.7:
            g = str(rng.choice(fam["intro"]))
        elif sec.name in ("chorus", "solo"):
            g = chorus_g
        elif sec.name == "bridge":
            g = bridge_g
        else:
            g = verse_g
        lines.append(f"Groove {g}")
        for b in range(sec.n_bars):
            bar_q = (sec.start_bar + b) * metre.bar_q
            slots = ["/"] * beats
            for beat in range(beats):
                q = bar_q + beat
                for s, _e, c in chord_q:
                    if abs(s - q) < 1e-6 or (beat == 0 and s <= q < _e):
                        slots[beat] = c.mma_name()
            if slots[0] == "/":
                slots[0] = next(c for s, e, c in chord_q if s <= bar_q < e).mma_name() if any(
                    s <= bar_q < e for s, e, c in chord_q) else chord_q[-1][2].mma_name()
            lines.append(f"{bar_no} " + " ".join(slots))
            bar_no += 1
    with tempfile.TemporaryDirectory(prefix="stemlab-mma-") as tmp:
        chart = Path(tmp) / "song.mma"
        out = Path(tmp) / "song.mid"
        chart.write_text("\n".join(lines) + "\n")
        proc = subprocess.run(["mma", "-f", str(out), str(chart)], capture_output=True, text=True, timeout=60, check=False,
                              cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"mma failed: {proc.stdout[-300:]} {proc.stderr[-300:]}")
        pm = pretty_midi.PrettyMIDI(str(out))
    tracks: list[Track] = []
    for k, inst in enumerate(pm.instruments):
        if not inst.notes:
            continue
        stem = stem_for_program(inst.program, inst.is_drum)
        notes = [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in inst.notes]
        tracks.append(Track(f"mma-{k}-{inst.name or inst.program}", stem, int(inst.program), inst.is_drum, notes,
                            source=f"mma:{fam['file']}"))
    return tracks, fam["file"]


def _redraw_program(rng: np.random.Generator, program: int, stem: str) -> int:
    """Another program of the same stem, so mma's fixed voices do not always sound the same."""
    if rng.random() < 0.5:
        return program
    tables: dict[str, Mapping[int, float]] = {
        "piano": _PIANO_CHOICES, "bass": _BASS_CHOICES, "vocals": _CHOIR_CHOICES,
        "guitar": {**_GUITAR_CLEAN, **{k: 0.5 for k in _GUITAR_DIRTY}}}
    table = tables.get(stem)
    if table is None:  # other: stay in the same GM family of eight
        fam = program // 8
        return int(fam * 8 + rng.integers(8)) if fam not in (4, 5, 6) else program
    return _weighted(rng, table)


# ----------------------------------------------------------------------------------------------
# The arrangement: who plays in which section

_PRESENCE = {  # probability a stem plays in a section, given the stem is in the song
    "drums": {"intro": 0.45, "verse": 0.9, "chorus": 1.0, "bridge": 0.6, "solo": 0.95, "outro": 0.5},
    "bass": {"intro": 0.45, "verse": 0.9, "chorus": 1.0, "bridge": 0.7, "solo": 0.95, "outro": 0.6},
    "guitar": {"intro": 0.5, "verse": 0.7, "chorus": 0.9, "bridge": 0.6, "solo": 0.8, "outro": 0.5},
    "piano": {"intro": 0.6, "verse": 0.7, "chorus": 0.8, "bridge": 0.7, "solo": 0.6, "outro": 0.6},
    "other": {"intro": 0.5, "verse": 0.45, "chorus": 0.8, "bridge": 0.6, "solo": 0.9, "outro": 0.5},
    "vocals": {"intro": 0.05, "verse": 0.95, "chorus": 1.0, "bridge": 0.5, "solo": 0.0, "outro": 0.2},
}
_IN_SONG = {"vocals": 0.85, "drums": 0.88, "bass": 0.88, "guitar": 0.72, "piano": 0.7, "other": 0.75}


def _arrangement(rng: np.random.Generator, sections: list[Section]) -> dict[str, list[bool]]:
    while True:
        in_song = {s: bool(rng.random() < _IN_SONG[s]) for s in SOURCES}
        if sum(in_song.values()) >= 3:
            break
    out: dict[str, list[bool]] = {}
    for stem in SOURCES:
        if not in_song[stem]:
            out[stem] = [False] * len(sections)
            continue
        decided: dict[str, bool] = {}
        flags = []
        for sec in sections:
            # Repeated section types mostly keep their line-up.
            if sec.name in decided and rng.random() < 0.8:
                flags.append(decided[sec.name])
            else:
                f = bool(rng.random() < _PRESENCE[stem][sec.name])
                decided[sec.name] = f
                flags.append(f)
        if not any(flags):
            flags[int(np.argmax([_ENERGY[s.name] for s in sections]))] = True
        out[stem] = flags
    return out


# ----------------------------------------------------------------------------------------------
# The song


def _pan(rng: np.random.Generator, stem: str) -> float:
    if stem in ("bass", "vocals") or (stem == "drums"):
        return float(rng.normal(0, 0.08))
    return float(np.clip(rng.normal(0, 0.45), -0.9, 0.9))


def compose(seed: int, max_duration_s: float | None = None, voice_pool: str = "train") -> Song:
    """Write a whole song for a seed: same seed, same song (mma's randomness is seeded too)."""
    from training import singer as singer_mod

    plan = plan_song(seed, max_duration_s)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    metre = plan.metre
    clock = Clock(plan.tempo_bpm, plan.swing, metre)
    mode_names = list(_MODE_WEIGHTS)
    mw = np.array([_MODE_WEIGHTS[m] for m in mode_names])
    mode = str(rng.choice(mode_names, p=mw / mw.sum()))
    key_root = int(rng.integers(12))
    sevenths = {"jazz": 0.8, "funk": 0.5, "ballad": 0.3}.get(plan.style, 0.1)
    blues = plan.style == "shuffle" and metre.name == "4/4" and rng.random() < 0.5

    sections: list[Section] = []
    bar = 0
    for name, n_bars in plan.sections:
        if blues and name in ("verse", "solo") and n_bars >= 8:
            n_bars = 12
        sections.append(Section(name, bar, n_bars, bar * clock.bar_s(), (bar + n_bars) * clock.bar_s(), _ENERGY[name]))
        bar += n_bars
    duration_s = bar * clock.bar_s() + TAIL_S

    progs: dict[str, list[tuple[float, Chord]]] = {}
    chord_q: list[tuple[float, float, Chord]] = []
    for sec in sections:
        kind = "verse" if sec.name in ("intro", "outro", "solo") and rng.random() < 0.7 else sec.name
        if kind not in progs or sec.n_bars * metre.bar_q > (progs[kind][-1][0] + metre.bar_q if progs[kind] else 0):
            progs[kind] = _progression(rng, key_root, mode, max(sec.n_bars, 4), metre, sevenths, blues)
        q0 = sec.start_bar * metre.bar_q
        q_end = q0 + sec.n_bars * metre.bar_q
        for i, (q, c) in enumerate(progs[kind]):
            s = q0 + q
            if s >= q_end - 1e-6:
                break
            nxt = progs[kind][i + 1][0] + q0 if i + 1 < len(progs[kind]) else q_end
            chord_q.append((s, min(nxt, q_end), c))
    # The song ends on the tonic.
    last_s, last_e, _ = chord_q[-1]
    chord_q[-1] = (last_s, last_e, _diatonic_chord(rng, key_root, mode, 0, 0.0))

    human_ms = float(rng.uniform(3, 14))
    pw = PartWriter(rng, clock, metre, sections, chord_q, key_root, mode, human_ms)
    arr = _arrangement(rng, sections)
    tracks: list[Track] = []
    generator = "native"
    groove = None

    if plan.use_mma:
        try:
            mma_tracks, groove = mma_accompaniment(rng, seed, plan.tempo_bpm, metre, sections, chord_q)
            generator = "mma"
        except (RuntimeError, OSError, subprocess.SubprocessError, StopIteration):
            mma_tracks = []
        for t in mma_tracks:
            if t.stem == "vocals":
                t.stem = "other" if rng.random() < 0.5 else "vocals"
            flags = arr[t.stem]
            if not any(flags):
                continue
            keep = []
            for n in t.notes:
                si = _section_index(sections, n.start_s)
                if flags[si]:
                    keep.append(n)
            t.notes = keep
            if not t.is_drum:
                t.program = _redraw_program(rng, t.program, t.stem)
            tracks.append(t)
    have = {t.stem for t in tracks if t.notes}
    roles_native = generator == "native"

    if arr["drums"] and any(arr["drums"]) and "drums" not in have:
        tracks.append(write_drums(pw, plan.style, arr["drums"]))
    if any(arr["bass"]) and "bass" not in have:
        tracks.append(write_bass(pw, plan.style, arr["bass"]))
    if any(arr["guitar"]) and ("guitar" not in have or rng.random() < 0.25):
        tracks.append(write_guitar(pw, plan.style, arr["guitar"]))
        if roles_native and rng.random() < 0.3:  # a second guitar, other side
            t2 = write_guitar(pw, plan.style, [f and rng.random() < 0.7 for f in arr["guitar"]])
            t2.name = "guitar2"
            tracks.append(t2)
    if any(arr["piano"]) and ("piano" not in have or rng.random() < 0.2):
        tracks.append(write_piano(pw, plan.style, arr["piano"]))
    if any(arr["other"]) and ("other" not in have or rng.random() < 0.5):
        n_other = int(rng.choice([1, 1, 2, 2, 3]))
        kinds = list(rng.choice(["pad", "lead", "arp", "stabs"], size=n_other, replace=False,
                                p=[0.4, 0.3, 0.2, 0.1]))
        for kind in kinds:
            flags = [f and rng.random() < 0.8 for f in arr["other"]]
            if not any(flags):
                flags = list(arr["other"])
            if kind == "pad":
                tracks.append(write_pad(pw, flags, _PAD_CHOICES, "other", "pad"))
            elif kind == "arp":
                tracks.append(write_arp(pw, flags))
            elif kind == "stabs":
                tracks.append(write_stabs(pw, flags))
            else:
                # Leads play where the singer rests, and in solos.
                lead_flags = [f and (not arr["vocals"][i] or sections[i].name == "solo") for i, f in enumerate(flags)]
                if not any(lead_flags):
                    lead_flags = flags
                prog = _weighted(rng, _LEAD_CHOICES)
                lo = 60 if prog not in (71, 57, 58) else 50
                mel = write_melody(pw, lead_flags, lo, lo + 19, float(rng.uniform(0.6, 1.6)), 2)
                t = Track("lead", "other", prog)
                for o, d, p, sname in _monophonic(mel):
                    t.notes.append(pw.note(o, d * 0.95, p, _vel(rng, 92, _ENERGY[sname])))
                tracks.append(t)

    # The sung line, and sometimes a choir behind it.
    vocal_notes: list[Any] = []
    voice = None
    if any(arr["vocals"]):
        voice = singer_mod.random_voice(rng, pool=voice_pool)
        centre = _voice_centre(voice, rng)
        mel = _monophonic(write_melody(pw, arr["vocals"], centre - 7, centre + 6, float(rng.uniform(0.7, 1.4)),
                                               int(rng.choice([2, 4]))))
        lyrics = singer_mod.random_lyrics(rng, len(mel))
        legato = float(rng.uniform(0.8, 0.97))
        for (o, d, p, _s), syl in zip(mel, lyrics):
            t0 = clock.t(o)
            t1 = clock.t(o + d * legato)
            if t1 - t0 < 0.08:
                t1 = t0 + 0.08
            vocal_notes.append(singer_mod.SungNote(float(t0), float(t1), int(p), syl))
        if rng.random() < 0.3:
            choir_flags = [f and sections[i].name in ("chorus", "bridge", "outro") for i, f in enumerate(arr["vocals"])]
            if any(choir_flags):
                tracks.append(write_pad(pw, choir_flags, _CHOIR_CHOICES, "vocals", "choir", 55, 76))

    for t in tracks:
        t.notes = [n for n in t.notes if n.start_s < duration_s - TAIL_S + 0.5]
        t.notes.sort(key=lambda n: (n.start_s, n.pitch))
        t.pan = _pan(rng, t.stem)
        t.volume = int(rng.integers(85, 118))
        if t.is_drum:
            t.drum_kit = int(rng.choice([0, 0, 0, 8, 16, 24, 25, 32, 40]))
    tracks = [t for t in tracks if t.notes]
    return Song(seed=int(seed), tempo_bpm=plan.tempo_bpm, metre=metre.name, key_root=key_root, mode=mode,
                swing=plan.swing, sections=sections,
                chords=[(clock.t(s), clock.t(e), c) for s, e, c in chord_q], tracks=tracks,
                vocal_notes=vocal_notes, voice=voice, duration_s=duration_s, generator=generator, groove=groove,
                style=plan.style)


def _section_index(sections: list[Section], t: float) -> int:
    for i, s in enumerate(sections):
        if s.start_s - 0.05 <= t < s.end_s - 0.05:
            return i
    return len(sections) - 1


_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "linda", "aunty", "steph", "annie", "belinda", "andrea",
                    "steph2", "anika")


def _voice_centre(voice: Any, rng: np.random.Generator) -> int:
    """The middle of a comfortable melody range for the voice (higher for female-sounding variants)."""
    variant = str(getattr(voice, "espeak_voice", "")).split("+")[-1].lower()
    if variant in _FEMALE_VARIANTS:
        return int(rng.integers(64, 70))  # E4..A4
    return int(rng.integers(54, 60))  # F#3..B3


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
