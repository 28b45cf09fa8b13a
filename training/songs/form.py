"""A song's shape before its notes: time (swing, human timing), the form and tempo plan that fixes the
duration, and the arrangement (which stems play in which section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from training.songs.grooves import mma_available
from training.songs.model import SOURCES, TAIL_S, Section
from training.songs.theory import METRES, Metre

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
SECTION_ENERGY = {"intro": 0.6, "verse": 0.75, "chorus": 1.0, "bridge": 0.7, "solo": 0.9, "outro": 0.6}


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
# The arrangement: who plays in which section

_PRESENCE = {  # probability a stem plays in a section, given the stem is in the song
    "drums": {"intro": 0.45, "verse": 0.9, "chorus": 1.0, "bridge": 0.6, "solo": 0.95, "outro": 0.5},
    "bass": {"intro": 0.45, "verse": 0.9, "chorus": 1.0, "bridge": 0.7, "solo": 0.95, "outro": 0.6},
    "guitar": {"intro": 0.5, "verse": 0.7, "chorus": 0.9, "bridge": 0.6, "solo": 0.8, "outro": 0.5},
    "piano": {"intro": 0.6, "verse": 0.7, "chorus": 0.8, "bridge": 0.7, "solo": 0.6, "outro": 0.6},
    "other": {"intro": 0.5, "verse": 0.45, "chorus": 0.8, "bridge": 0.6, "solo": 0.9, "outro": 0.5},
    "vocals": {"intro": 0.05, "verse": 0.95, "chorus": 1.0, "bridge": 0.5, "solo": 0.0, "outro": 0.2},
}
_IN_SONG = {"vocals": 0.85, "drums": 0.88, "bass": 0.88, "guitar": 0.55, "piano": 0.7, "other": 0.88}


def arrangement(rng: np.random.Generator, sections: list[Section], fill: float = 0.0) -> dict[str, list[bool]]:
    """Which stems play in which section. `fill` (0-1) is the song's density: each section's chance
    that a stem of the song plays moves that far from _PRESENCE towards 1 (real songs keep most parts
    going most of the time: song_stats, "share of song in the arrangement")."""
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
                p = _PRESENCE[stem][sec.name]
                f = bool(rng.random() < p + (1.0 - p) * fill)
                decided[sec.name] = f
                flags.append(f)
        if not any(flags):
            flags[int(np.argmax([SECTION_ENERGY[s.name] for s in sections]))] = True
        out[stem] = flags
    return out
