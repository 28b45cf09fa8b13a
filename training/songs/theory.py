"""Harmony and metre: chords, modes, progressions and the metres songs are written in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
MODE_WEIGHTS = {"major": 5, "minor": 4, "dorian": 1.2, "mixolydian": 1.2, "harmonic_minor": 0.6,
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


# ----------------------------------------------------------------------------------------------
# Harmony


def diatonic_chord(rng: np.random.Generator, key_root: int, mode: str, degree: int, sevenths: float) -> Chord:
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


def progression(rng: np.random.Generator, key_root: int, mode: str, n_bars: int, metre: Metre,
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
            chords_by_degree[d] = diatonic_chord(rng, key_root, mode, d, sevenths)
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
        dom = diatonic_chord(rng, key_root, mode, 4, 0.5)
        out[-1] = (out[-1][0], dom)
    return out
