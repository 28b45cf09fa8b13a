"""The part writers: drums, bass, guitar and piano comping, pads, arpeggios, stabs, leads and the sung
melody, each turning a song's chords and sections into a Track's notes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.songs.form import SECTION_ENERGY, Clock
from training.songs.model import (
    ARP_CHOICES,
    BASS_CHOICES,
    DEFAULT_VERSION,
    GUITAR_CLEAN,
    GUITAR_DIRTY,
    PIANO_CHOICES,
    STAB_CHOICES,
    Note,
    Section,
    Track,
    weighted_choice,
)
from training.songs.theory import CHORD_INTERVALS, MODES, Chord, Metre

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


def humanised_velocity(rng: np.random.Generator, base: float, energy: float, spread: float = 8.0) -> int:
    return int(np.clip(base * (0.7 + 0.3 * energy) + rng.normal(0, spread), 12, 127))


class PartWriter:
    """Shared state while writing one song's parts: clock, chords per position, sections, rng."""

    def __init__(self, rng: np.random.Generator, clock: Clock, metre: Metre, sections: list[Section],
                 chord_q: list[tuple[float, float, Chord]], key_root: int, mode: str, human_ms: float,
                 version: int = DEFAULT_VERSION) -> None:
        self.rng = rng
        self.version = version  # the generator version whose writing this follows (model.GENERATOR_VERSIONS)
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
                track.notes.append(pw.note(bar_q, 1.0, CRASH, humanised_velocity(rng, 105, sec.energy)))
            for step in range(p["steps"]):
                q = bar_q + step * sq
                if step >= fill_from:
                    if (step - fill_from) % int(rng.choice([1, 2])) == 0:
                        k = min(len(TOMS) - 1, (step - fill_from) * len(TOMS) // max(1, p["steps"] - fill_from))
                        drum = SNARE if rng.random() < 0.3 else TOMS[k]
                        track.notes.append(pw.note(q, sq, drum, humanised_velocity(rng, 95, sec.energy)))
                    if step % 4 == 0:
                        track.notes.append(pw.note(q, sq, KICK, humanised_velocity(rng, 95, sec.energy)))
                    continue
                on_beat = step in pw.metre.beat_steps
                if step in p["kick"] and not (half_time and step not in (0,)):
                    track.notes.append(pw.note(q, sq, KICK, humanised_velocity(rng, 100 if step == 0 else 88, sec.energy)))
                snare_steps = [p["steps"] // 2] if half_time else p["snare"]
                if not sparse and step in snare_steps:
                    drum = STICK if (p["cross"] and sec.name == "verse") else (CLAP if style == "electronic" and rng.random() < 0.5 else SNARE)
                    track.notes.append(pw.note(q, sq, drum, humanised_velocity(rng, 100, sec.energy)))
                elif not sparse and p["ghost"] > 0 and step % 2 == 1 and rng.random() < p["ghost"]:
                    track.notes.append(pw.note(q, sq, SNARE, int(rng.integers(18, 40))))
                if step % p["hat_rate"] == 0:
                    cym = RIDE if use_ride else HH
                    if p["open_last"] and step == p["steps"] - 2 and not use_ride:
                        cym = OPEN
                    base = 85 if on_beat else 62
                    track.notes.append(pw.note(q, sq, cym, humanised_velocity(rng, base, sec.energy, 10)))
                if p["extra_perc"] and not sparse and step % 2 == 0 and sec.name in ("chorus", "solo"):
                    track.notes.append(pw.note(q, sq, p["extra_perc"], humanised_velocity(rng, 55, sec.energy, 12)))
    return track


# ----------------------------------------------------------------------------------------------
# Bass


def write_bass(pw: PartWriter, style: str, present: list[bool], kick_steps: list[int] | None = None) -> Track:
    rng = pw.rng
    prog = weighted_choice(rng, BASS_CHOICES)
    track = Track("bass", "bass", prog)
    # Real songs' bass lines sit higher and move faster than roots on the beat (DATA.md, song_stats:
    # median pitch 42, 34-58 over songs; 4.9 onsets/s; notes of 0.2 s). The register is drawn from three:
    # the low octave, one up, and a high melodic register (up to E4) that real chiptune-like basses use.
    r = rng.random()
    low, high = (28, 52) if r < 0.4 else ((36, 62) if r < 0.75 else (43, 67))
    kinds = ["roots", "eighths", "root_fifth", "synco", "walk", "busy"]
    if pw.version >= 5:  # the slow kinds (roots, root-fifth) less often: real basses play more notes
        w = {"jazz": [0, 0, 1, 0, 6, 2], "shuffle": [0.5, 1.5, 1.5, 1, 2, 2], "funk": [0, 1, 0.5, 5, 0, 5],
             "ballad": [2, 1.5, 1.5, 1, 0, 1.5], "electronic": [0.3, 4, 0.5, 2, 0, 4],
             "rock": [0.3, 4, 1.5, 1, 0, 4]}.get(style, [0.5, 2.5, 1.5, 2, 0.3, 5])
    else:
        w = {"jazz": [0, 0, 1, 0, 6, 1.5], "shuffle": [1, 1, 2, 1, 2, 1.5], "funk": [0, 1, 1, 5, 0, 4], "ballad": [3, 1, 2, 1, 0, 1],
             "electronic": [0.5, 4, 1, 2, 0, 3], "rock": [0.5, 4, 2, 1, 0, 3]}.get(style, [1, 2.5, 2.5, 2, 0.3, 4])
    kind_by_section: dict[str, str] = {}
    # The articulation: how much of each step a note holds. Real bass notes are short (0.15-0.32 s).
    legato = float(rng.uniform(0.25, 0.9))
    # Now and then a part adds a fifth or octave above on strong beats (real bass polyphony 1.1, to 1.9).
    double_stops = float(rng.choice([0.0, 0.0, 0.0, 0.15, 0.35]))
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
                track.notes.append(pw.note(q, dur * legato, root, humanised_velocity(rng, 95, sec.energy)))
                q += dur
            elif kind == "eighths":
                track.notes.append(pw.note(q, 0.5 * legato, root if rng.random() > 0.08 else root + 12,
                                           humanised_velocity(rng, 90 if bar_pos % 1 == 0 else 78, sec.energy)))
                q += 0.5
            elif kind == "root_fifth":
                beat = round(bar_pos)
                pitch = root if beat % 2 == 0 else (fifth if rng.random() < 0.7 else root + 12)
                track.notes.append(pw.note(q, 1.0 * legato, pitch, humanised_velocity(rng, 92, sec.energy)))
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
                track.notes.append(pw.note(q, 0.95, pitch, humanised_velocity(rng, 88, sec.energy)))
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
                track.notes.append(pw.note(q, step * legato, pitch, humanised_velocity(rng, 90 if bar_pos % 1 == 0 else 76, sec.energy)))
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
                                               pitch, humanised_velocity(rng, 92, sec.energy)))
                q = bar_q0 + pw.metre.bar_q
            prev = root
    if double_stops > 0:
        extra = []
        for n in track.notes:
            if rng.random() < double_stops:
                p = n.pitch + (7 if rng.random() < 0.6 else 12)
                if p <= high + 5:
                    extra.append(Note(n.start_s, n.end_s, p, max(1, n.velocity - 10)))
        track.notes.extend(extra)
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
    # Version 3 draws lines and riffs more often, and everything a little lower (real median pitch 53.5).
    w = {"rock": [1.5, 1, 3, 0, 2.5, 3], "funk": [1, 0, 0, 3, 2.5, 2.5], "folk": [4, 3, 0, 0, 0.5, 2], "ballad": [1.5, 3, 0, 0, 1, 2.5],
         "waltz": [2, 3, 0, 0, 0.5, 2], "latin": [1.5, 2, 0, 1, 1.5, 3], "jazz": [2, 2, 0, 0, 1, 4]}.get(style, [2, 2, 1.5, 0.7, 2, 4])
    ww = np.array(w, dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=ww / ww.sum()))]
    if kind == "power":
        prog = weighted_choice(rng, GUITAR_DIRTY) if rng.random() < 0.85 else 27
    elif kind == "strum":
        prog = weighted_choice(rng, {24: 3.0, 25: 5.0, 26: 1.0, 27: 1.0, 29: 0.5})
    else:
        prog = weighted_choice(rng, GUITAR_CLEAN)
    track = Track("guitar", "guitar", prog, source="native:" + kind)
    # The part's articulation: real guitar notes are short (median 0.19 s).
    art = float(rng.uniform(0.3, 0.95))
    if kind == "line":
        lo = int(rng.integers(38, 52))
        mel = write_melody(pw, present, lo, lo + int(rng.integers(14, 30)), float(rng.uniform(0.9, 2.2)), 2)
        for o, d, p, sname in monophonic(mel):
            track.notes.append(pw.note(o, d * art, p, humanised_velocity(rng, 84, SECTION_ENERGY[sname])))
        return track
    v_low = int(rng.integers(36, 46))
    # Version 6: half the riffs and power chords sit on the low strings (roots from D2), as in real rock
    # songs, whose guitars carry much of the low band in a quarter of the songs (DATA.md, version 6).
    root_low = 38 if pw.version >= 6 and kind in ("power", "riff") and rng.random() < 0.5 else 40
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
                    v = _voicing(chord, v_low, v_low + 26, int(rng.choice([3, 4, 4, 5])), prev)
                    prev = v
                    down = (o % 1.0) == 0
                    order = v if down else v[::-1]
                    base = humanised_velocity(rng, 88 if down else 70, sec.energy)
                    for j, p in enumerate(order):
                        n = pw.note(bar_q + o, d * art, p, base - 2 * j)
                        n.start_s += j * strum_ms
                        n.end_s = max(n.end_s, n.start_s + 0.05)
                        track.notes.append(n)
            elif kind == "arpeggio":
                step = 0.5 if rng.random() < 0.8 or pw.metre.name == "6/8" else 0.25
                chord = pw.chord_at(bar_q)
                v = _voicing(chord, v_low + 2, v_low + 30, 4, prev)
                prev = v
                pattern = [0, 1, 2, 3, 2, 1] if rng.random() < 0.5 else [0, 2, 1, 3]
                q = 0.0
                i = 0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    if chord.pitch_classes()[0] != v[0] % 12 and q > 0 and (q % 2 == 0):
                        v = _voicing(chord, v_low + 2, v_low + 30, 4, prev)
                        prev = v
                    p = v[pattern[i % len(pattern)] % len(v)]
                    track.notes.append(pw.note(bar_q + q, step * (0.8 + 1.7 * art), p, humanised_velocity(rng, 78, sec.energy)))
                    q += step
                    i += 1
            elif kind == "power":
                sustained = sec.name in ("intro", "bridge") or rng.random() < 0.15
                q = 0.0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    r = _root_in(chord, root_low, root_low + 12 if root_low == 40 else 47)
                    dur = pw.metre.bar_q if sustained else 0.5
                    for p in (r, r + 7, r + 12):
                        track.notes.append(pw.note(bar_q + q, dur * (0.95 if sustained else 0.6), p,
                                                   humanised_velocity(rng, 95, sec.energy)))
                    q += dur
            elif kind == "skank":
                for beat in np.arange(0.5, pw.metre.bar_q, 1.0):
                    chord = pw.chord_at(bar_q + beat)
                    v = _voicing(chord, 55, 74, 3, prev)
                    prev = v
                    for p in v:
                        track.notes.append(pw.note(bar_q + float(beat), 0.2, p, humanised_velocity(rng, 85, sec.energy)))
            else:  # riff on chord root + scale offsets
                chord = pw.chord_at(bar_q)
                r = _root_in(chord, root_low, root_low + 12 if root_low == 40 else 47)
                for k, o in enumerate(riff_rhythm):
                    p = r + riff[k % len(riff)]
                    track.notes.append(pw.note(bar_q + o, 0.45, p, humanised_velocity(rng, 88, sec.energy)))
    return track


def write_piano(pw: PartWriter, style: str, present: list[bool]) -> Track:
    rng = pw.rng
    # "hands": a moving left hand (broken octaves, alberti-like figures) under a right-hand line, the
    # busy, thin texture real piano parts mostly have (song_stats: polyphony 2.2, 8.6 onsets/s, 0.21 s notes).
    kinds = ["block", "arpeggio", "ballad", "oompah", "synco", "hands"]
    w = {"ballad": [1, 3, 2.5, 0, 0.5, 3], "waltz": [1, 2, 1, 4, 0, 3], "jazz": [3, 1, 1, 0, 3, 2], "pop": [2, 2, 1.5, 0, 3, 4],
         "shuffle": [2, 0, 0, 3, 2, 3]}.get(style, [2, 2, 1, 1, 2, 5])
    ww = np.array(w, dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=ww / ww.sum()))]
    prog = weighted_choice(rng, PIANO_CHOICES)
    track = Track("piano", "piano", prog, source="native:" + kind)
    # Real piano parts sit lower than a right hand alone (median pitch 59 against 66): the voicings'
    # floor is drawn per part, and so is the articulation (how much of its step a chord holds).
    v_low = int(rng.integers(43, 54))
    art = float(rng.uniform(0.3, 0.9))
    n_voice = [2, 3, 3] if rng.random() < 0.6 else [3, 4]
    figure = str(rng.choice(["octaves", "alberti", "broken"]))
    right: dict[int, list[tuple[float, float, int, str]]] = {}
    if kind == "hands":
        for o, d, p, sname in monophonic(write_melody(pw, present, v_low + 5, v_low + 26, float(rng.uniform(1.0, 2.2)), 2)):
            right.setdefault(int(o // pw.metre.bar_q), []).append((o, d, p, sname))
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
                    v = _voicing(chord, v_low, v_low + 24, int(rng.choice(n_voice)), prev)
                    prev = v
                    for p in v:
                        track.notes.append(pw.note(bar_q + float(o), half * (0.3 + 0.68 * art), p, humanised_velocity(rng, 70, sec.energy)))
                    track.notes.append(pw.note(bar_q + float(o), half * (0.3 + 0.68 * art), _root_in(chord, 36, 50), humanised_velocity(rng, 72, sec.energy)))
            elif kind == "hands":
                q = 0.0
                i = 0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    r = _root_in(chord, 36, 50)
                    third = r + CHORD_INTERVALS[chord.quality][1]
                    if figure == "octaves":
                        seq = [r, r + 12]
                    elif figure == "alberti":
                        seq = [r, r + 7, third + 12, r + 7]
                    else:
                        seq = [r, r + 7, r + 12, third + 12]
                    track.notes.append(pw.note(bar_q + q, 0.5 * art, seq[i % len(seq)], humanised_velocity(rng, 66, sec.energy)))
                    q += 0.5
                    i += 1
                for o, d, p, sname in right.get(sec.start_bar + b, []):
                    track.notes.append(pw.note(o, d * (0.4 + 0.5 * art), p, humanised_velocity(rng, 78, SECTION_ENERGY[sname])))
            elif kind == "arpeggio":
                q = 0.0
                i = 0
                while q < pw.metre.bar_q - 1e-6:
                    chord = pw.chord_at(bar_q + q)
                    v = _voicing(chord, v_low + 2, v_low + 30, 4, prev)
                    prev = v
                    seq = [_root_in(chord, 36, 50)] + v + v[-2:0:-1]
                    track.notes.append(pw.note(bar_q + q, arp_step * (0.5 + 2 * art), seq[i % len(seq)], humanised_velocity(rng, 70, sec.energy)))
                    q += arp_step
                    i += 1
            elif kind == "oompah":
                for beat in range(int(pw.metre.bar_q)):
                    chord = pw.chord_at(bar_q + beat)
                    if beat == 0 or (pw.metre.bar_q == 4 and beat == 2):
                        track.notes.append(pw.note(bar_q + beat, 0.9, _root_in(chord, 36, 50), humanised_velocity(rng, 85, sec.energy)))
                    else:
                        v = _voicing(chord, v_low + 5, v_low + 26, int(rng.choice(n_voice)), prev)
                        prev = v
                        for p in v:
                            track.notes.append(pw.note(bar_q + beat, 0.6 * art, p, humanised_velocity(rng, 70, sec.energy)))
            else:  # block / syncopated chords
                rh = rhythm if kind == "block" else _rhythm(rng, pw.metre, 0.6)
                left_q = pw.metre.bar_q * 0.9 if art > 0.8 else 1.0 * art
                track.notes.append(pw.note(bar_q, left_q, left, humanised_velocity(rng, 75, sec.energy)))
                for o, d in rh:
                    chord = pw.chord_at(bar_q + o)
                    v = _voicing(chord, v_low, v_low + 24, int(rng.choice(n_voice)), prev)
                    prev = v
                    for p in v:
                        track.notes.append(pw.note(bar_q + o, min(d, 1.0) * art, p, humanised_velocity(rng, 76, sec.energy)))
    if rng.random() < (0.25 if kind in ("ballad", "arpeggio") else 0.1):
        sustain_pedal(track, [pw.clock.t(s) for s, _, _ in pw.chord_q])
    return track


def split_hands(track: Track, split: int = 55) -> Track:
    """Moves a piano part's notes below `split` to a left-hand part of the same program, as real songs
    often write the two hands (a median of two piano parts); returns the left hand, maybe empty."""
    left = Track(track.name + "_left", track.stem, track.program, source=track.source)
    left.notes = [n for n in track.notes if n.pitch < split]
    track.notes = [n for n in track.notes if n.pitch >= split]
    return left


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
              low: int = 52, high: int = 79, pulse_q: float | None = None, n_notes: Sequence[int] = (3, 4)) -> Track:
    """Held chords between low and high; with pulse_q, the chords are struck again every pulse_q quarters
    and held for part of it (string and brass sections often play so)."""
    rng = pw.rng
    track = Track(name, stem, weighted_choice(rng, choices))
    prev: list[int] | None = None
    art = float(rng.uniform(0.35, 0.9))
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        sec_q0 = sec.start_bar * pw.metre.bar_q
        sec_q1 = sec_q0 + sec.n_bars * pw.metre.bar_q
        for s, e, chord in pw.chord_q:
            s2, e2 = max(s, sec_q0), min(e, sec_q1)
            if e2 - s2 <= 1e-6:
                continue
            v = _voicing(chord, low, high, int(rng.choice(list(n_notes))), prev)
            prev = v
            if pulse_q is None:
                for p in v:
                    track.notes.append(pw.note(s2, (e2 - s2) * 0.98, p, humanised_velocity(rng, 70, sec.energy), human=False))
                continue
            q = s2
            while q < e2 - 1e-6:
                d = min(pulse_q, e2 - q)
                for p in v:
                    track.notes.append(pw.note(q, d * art, p, humanised_velocity(rng, 74, sec.energy)))
                q += pulse_q
    return track


def write_arp(pw: PartWriter, present: list[bool]) -> Track:
    rng = pw.rng
    track = Track("arp", "other", weighted_choice(rng, ARP_CHOICES))
    step = float(rng.choice([0.25, 0.25, 0.5]))
    up = rng.random() < 0.5
    # The register is drawn per part, from the low middle (real "other" parts: median pitch 62, 51-72).
    low = int(rng.integers(45, 66))
    art = float(rng.uniform(0.4, 0.9))
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        q = sec.start_bar * pw.metre.bar_q
        end = q + sec.n_bars * pw.metre.bar_q
        i = 0
        while q < end - 1e-6:
            v = _voicing(pw.chord_at(q), low, low + 26, 4)
            seq = v if up else v[::-1]
            track.notes.append(pw.note(q, step * art, seq[i % len(seq)], humanised_velocity(rng, 72, sec.energy)))
            q += step
            i += 1
    return track


def write_stabs(pw: PartWriter, present: list[bool]) -> Track:
    rng = pw.rng
    track = Track("stabs", "other", weighted_choice(rng, STAB_CHOICES))
    rhythm = [o for o, _ in _rhythm(rng, pw.metre, 0.35)]
    low = int(rng.integers(48, 60))
    n = int(rng.choice([2, 3, 3]))
    for si, sec in enumerate(pw.sections):
        if not present[si]:
            continue
        for b in range(sec.n_bars):
            bar_q = (sec.start_bar + b) * pw.metre.bar_q
            for o in rhythm:
                for p in _voicing(pw.chord_at(bar_q + o), low, low + 22, n):
                    track.notes.append(pw.note(bar_q + o, 0.25, p, humanised_velocity(rng, 90, sec.energy)))
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


def monophonic(notes: list[tuple[float, float, int, str]]) -> list[tuple[float, float, int, str]]:
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
