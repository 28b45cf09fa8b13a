"""`compose(seed)`: a whole song from one seed, from the plan and harmony to every part and the sung line.

About half the songs take their accompaniment from mma's grooves (grooves.py); the rest, and every vocal
line, lead and extra part, come from the part writers (parts.py). The same seed always gives the same song."""

from __future__ import annotations

import subprocess
from typing import Any

import numpy as np

from training.songs.form import SECTION_ENERGY, Clock, arrangement, plan_song
from training.songs.grooves import mma_accompaniment, redraw_program
from training.songs.model import (
    CHOIR_CHOICES,
    COUNTER_CHOICES,
    DEFAULT_VERSION,
    GENERATOR_VERSIONS,
    BASS_DOUBLE_OTHER,
    GUITAR_CLEAN,
    GUITAR_DIRTY,
    LEAD_CHOICES,
    PAD_CHOICES,
    TAIL_S,
    Note,
    Section,
    Song,
    Track,
    weighted_choice,
)
from training.songs.parts import (
    PartWriter,
    humanised_velocity,
    monophonic,
    split_hands,
    write_arp,
    write_bass,
    write_drums,
    write_guitar,
    write_melody,
    write_pad,
    write_piano,
    write_stabs,
)
from training.songs.theory import MODE_WEIGHTS, Chord, diatonic_chord, progression

# ----------------------------------------------------------------------------------------------
# The song


def _pan(rng: np.random.Generator, stem: str) -> float:
    if stem in ("bass", "vocals") or (stem == "drums"):
        return float(rng.normal(0, 0.08))
    return float(np.clip(rng.normal(0, 0.45), -0.9, 0.9))


def compose(seed: int, max_duration_s: float | None = None, voice_pool: str = "train",
            version: int = DEFAULT_VERSION) -> Song:
    """Write a whole song for a seed: same seed and version, same song (mma's randomness is seeded too)."""
    from training.synthesis import singer as singer_mod

    if version not in GENERATOR_VERSIONS:
        raise ValueError(f"generator version {version} is not one this code writes ({GENERATOR_VERSIONS})")

    plan = plan_song(seed, max_duration_s)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    metre = plan.metre
    clock = Clock(plan.tempo_bpm, plan.swing, metre)
    mode_names = list(MODE_WEIGHTS)
    mw = np.array([MODE_WEIGHTS[m] for m in mode_names])
    mode = str(rng.choice(mode_names, p=mw / mw.sum()))
    key_root = int(rng.integers(12))
    sevenths = {"jazz": 0.8, "funk": 0.5, "ballad": 0.3}.get(plan.style, 0.1)
    blues = plan.style == "shuffle" and metre.name == "4/4" and rng.random() < 0.5

    sections: list[Section] = []
    bar = 0
    for name, n_bars in plan.sections:
        if blues and name in ("verse", "solo") and n_bars >= 8:
            n_bars = 12
        sections.append(Section(name, bar, n_bars, bar * clock.bar_s(), (bar + n_bars) * clock.bar_s(), SECTION_ENERGY[name]))
        bar += n_bars
    duration_s = bar * clock.bar_s() + TAIL_S

    progs: dict[str, list[tuple[float, Chord]]] = {}
    chord_q: list[tuple[float, float, Chord]] = []
    for sec in sections:
        kind = "verse" if sec.name in ("intro", "outro", "solo") and rng.random() < 0.7 else sec.name
        if kind not in progs or sec.n_bars * metre.bar_q > (progs[kind][-1][0] + metre.bar_q if progs[kind] else 0):
            progs[kind] = progression(rng, key_root, mode, max(sec.n_bars, 4), metre, sevenths, blues)
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
    chord_q[-1] = (last_s, last_e, diatonic_chord(rng, key_root, mode, 0, 0.0))

    human_ms = float(rng.uniform(3, 14))
    pw = PartWriter(rng, clock, metre, sections, chord_q, key_root, mode, human_ms, version)
    # Version 4: a density per song, from sparse arrangements (version 3's) to every part playing
    # nearly throughout, as most real songs do (DATA.md, generator version 4)
    fill = float(rng.uniform(0.0, 1.0))
    arr = arrangement(rng, sections, fill)
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
            if t.stem == "vocals" and rng.random() < 0.5:
                # mma's harmony voices as an "other" part: a pad's program, not a choir's (which the
                # benchmark, as General MIDI, counts as vocals)
                t.stem, t.program = "other", weighted_choice(rng, PAD_CHOICES)
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
                t.program = redraw_program(rng, t.program, t.stem)
                _rearticulate(rng, t)
            tracks.append(t)
            if t.stem == "piano" and rng.random() < 0.4:
                tracks.append(split_hands(t))
    have = {t.stem for t in tracks if t.notes}
    roles_native = generator == "native"

    if arr["drums"] and any(arr["drums"]) and "drums" not in have:
        tracks.append(write_drums(pw, plan.style, arr["drums"]))
    if any(arr["bass"]) and "bass" not in have:
        tracks.append(write_bass(pw, plan.style, arr["bass"]))
    if any(arr["guitar"]) and ("guitar" not in have or rng.random() < 0.25):
        tracks.append(write_guitar(pw, plan.style, arr["guitar"]))
        if roles_native and rng.random() < 0.3:  # a second guitar, other side
            t2 = write_guitar(pw, plan.style, [f and rng.random() < 0.7 + 0.3 * fill for f in arr["guitar"]])
            t2.name = "guitar2"
            tracks.append(t2)
    if any(arr["piano"]) and ("piano" not in have or rng.random() < 0.2):
        tracks.append(write_piano(pw, plan.style, arr["piano"]))
        if rng.random() < 0.5:
            tracks.append(split_hands(tracks[-1]))
    if any(arr["other"]) and ("other" not in have or rng.random() < 0.5):
        n_other = int(rng.choice([1, 1, 2, 2, 3]))
        # Version 3: fewer held pads, more lines, and "counter", a line in the low middle (36-72).
        kinds = list(rng.choice(["pad", "lead", "arp", "stabs", "counter"], size=n_other, replace=False,
                                p=[0.22, 0.28, 0.17, 0.1, 0.23]))
        for kind in kinds:
            flags = [f and rng.random() < 0.8 + 0.2 * fill for f in arr["other"]]
            if not any(flags):
                flags = list(arr["other"])
            if kind == "pad":
                low = int(rng.integers(42, 66))
                pulse = None if rng.random() < 0.45 else float(rng.choice([0.5, 1.0, 1.0, 2.0]))
                tracks.append(write_pad(pw, flags, PAD_CHOICES, "other", "pad", low, low + int(rng.integers(14, 27)),
                                        pulse, (2, 3) if rng.random() < 0.5 else (3, 4)))
            elif kind == "counter":
                prog = weighted_choice(rng, COUNTER_CHOICES)
                lo = int(rng.integers(38, 54))
                mel = write_melody(pw, flags, lo, lo + int(rng.integers(14, 30)), float(rng.uniform(1.0, 2.4)), 2)
                tracks.append(_line_track(pw, "counter", prog, mel, float(rng.uniform(0.4, 0.95)), 86))
            elif kind == "arp":
                tracks.append(write_arp(pw, flags))
            elif kind == "stabs":
                tracks.append(write_stabs(pw, flags))
            else:
                # Leads play where the singer rests, and in solos.
                lead_flags = [f and (not arr["vocals"][i] or sections[i].name == "solo") for i, f in enumerate(flags)]
                if not any(lead_flags):
                    lead_flags = flags
                prog = weighted_choice(rng, LEAD_CHOICES)
                lo = int(rng.integers(52, 70)) if prog not in (71, 57, 58) else int(rng.integers(42, 52))
                mel = write_melody(pw, lead_flags, lo, lo + int(rng.integers(16, 30)), float(rng.uniform(0.8, 2.4)), 2)
                tracks.append(_line_track(pw, "lead", prog, mel, float(rng.uniform(0.45, 0.95)), 92))

    # The sung line, and sometimes a choir behind it.
    vocal_notes: list[Any] = []
    voice = None
    if any(arr["vocals"]):
        voice = singer_mod.random_voice(rng, pool=voice_pool)
        centre = voice_centre(voice, rng)
        mel = monophonic(write_melody(pw, arr["vocals"], centre - 7, centre + 6, float(rng.uniform(0.7, 1.4)),
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
                tracks.append(write_pad(pw, choir_flags, CHOIR_CHOICES, "vocals", "choir", 55, 76))

    for t in tracks:
        if not t.is_drum and t.stem != "vocals" and rng.random() < REGISTER_MOVE_SHARE:
            _register_moves(rng, sections, t)
    if version >= 5:
        for t in tracks:
            if not t.is_drum and t.stem != "vocals" and rng.random() < LEGATO_SHARE:
                _legato(rng, t, split=55 if t.stem == "piano" else None)
    if version >= 6:
        tracks += _bass_doubles(rng, sections, tracks, arr, plan.style)
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


REGISTER_MOVE_SHARE = 0.4  # version 4: parts that move an octave in some sections
# per stem: the lowest and highest MIDI pitch a part may reach by such a move
_MOVE_LIMITS = {"bass": (28, 67), "guitar": (40, 84), "piano": (21, 100), "other": (33, 88)}


def _register_moves(rng: np.random.Generator, sections: list[Section], t: Track) -> None:
    """Real parts wander over their song (song_stats: pitch ranges of 20-36 semitones against the
    generator's 15-24): each section type of the part moves an octave up or down now and then (a chorus
    an octave up, a verse's bass down), wherever the move keeps its notes inside the stem's limits."""
    if not t.notes:
        return
    lo, hi = _MOVE_LIMITS[t.stem]
    by_section: dict[int, list[Any]] = {}
    for n in t.notes:
        by_section.setdefault(_section_index(sections, n.start_s), []).append(n)
    shift_of: dict[str, int] = {}
    for i, notes in sorted(by_section.items()):
        name = sections[i].name
        if name not in shift_of:
            shift_of[name] = int(rng.choice([-12, 0, 0, 12]))
        shift = shift_of[name]
        if shift and lo <= min(n.pitch for n in notes) + shift and max(n.pitch for n in notes) + shift <= hi:
            for n in notes:
                n.pitch += shift


LEGATO_SHARE = 0.5  # version 5: parts whose notes are held to the next one
LEGATO_MAX_REST_S = 0.6  # a longer silence between two notes is a rest, and stays one


def _legato(rng: np.random.Generator, t: Track, split: int | None = None) -> None:
    """Real parts are often written legato: their notes sound 0.69-0.84 of the song against the
    generator's 0.53-0.62, with the same note lengths (DATA.md, version 5). Each note is held up to the
    part's next onset (a share `hold` of the silence, less a gap, both drawn per part), wherever the
    silence before it is shorter than a rest.
    With `split`, notes below and above it are two voices (a piano's hands) and each is held to its own
    next onset, so a left hand sounds under the right hand's figures."""
    if not t.notes:
        return
    gap = float(rng.uniform(0.005, 0.04))
    hold = float(rng.uniform(0.4, 1.0))  # how much of the silence before the next onset a note fills
    voices = ([n for n in t.notes if n.pitch < split], [n for n in t.notes if n.pitch >= split]) if split \
        else (list(t.notes),)
    for notes in voices:
        onsets = sorted({round(n.start_s, 3) for n in notes})
        k = 0
        for n in sorted(notes, key=lambda n: n.start_s):
            while k < len(onsets) and onsets[k] <= n.start_s + 0.03:
                k += 1
            if k == len(onsets):
                continue
            nxt = onsets[k]
            if nxt - n.end_s < LEGATO_MAX_REST_S:
                n.end_s = max(n.end_s, n.end_s + hold * (nxt - gap - n.end_s))


BASS_DOUBLE_SHARE = {"guitar": 0.3, "other": 0.2}  # version 6: songs where such a part doubles the bass
BASS_DOUBLE_ROCK = 0.45  # a guitar's share in rock songs


def _bass_doubles(rng: np.random.Generator, sections: list[Section], tracks: list[Track],
                  arr: dict[str, list[bool]], style: str) -> list[Track]:
    """Version 6: parts that play the bass line with the bass. In real songs a guitar or a low "other"
    instrument often doubles it, at pitch or an octave up, and a quarter of the songs with guitar give
    the guitar 37 % or more of the mix's energy under 250 Hz, where generated songs left it to the bass
    (BENCHMARKS "Bass"; DATA.md, version 6): the bass is then not simply the lowest line. The double
    plays in the sections where its stem plays, keeps the bass's rhythm with its own articulation, and
    its notes stay in the instrument's range (guitar from 38, "other" from 33)."""
    bass = [t for t in tracks if t.stem == "bass" and t.notes]
    if not bass:
        return []
    line = max(bass, key=lambda t: len(t.notes))
    out = []
    for stem, low in (("guitar", 38), ("other", 33)):
        share = BASS_DOUBLE_ROCK if stem == "guitar" and style == "rock" else BASS_DOUBLE_SHARE[stem]
        if not any(arr[stem]) or rng.random() >= share:
            continue
        if stem == "guitar":
            prog = weighted_choice(rng, GUITAR_DIRTY) if rng.random() < 0.5 else weighted_choice(rng, GUITAR_CLEAN)
        else:
            prog = weighted_choice(rng, BASS_DOUBLE_OTHER)
        octave = 12 if rng.random() < 0.65 else 0
        art = float(rng.uniform(0.5, 1.0))
        vel_shift = int(rng.integers(-15, 10))
        t = Track(f"{stem}-double", stem, prog, source="native:double")
        for n in line.notes:
            if not arr[stem][_section_index(sections, n.start_s)]:
                continue
            p = n.pitch + octave
            while p < low:
                p += 12
            end = n.start_s + max(0.05, (n.end_s - n.start_s) * art)
            t.notes.append(Note(n.start_s, end, int(p), int(np.clip(n.velocity + vel_shift, 1, 127))))
        if t.notes:
            out.append(t)
    return out


def _rearticulate(rng: np.random.Generator, t: Track) -> None:
    """mma's parts hold their notes long, play full chords and sit high: most get a shorter articulation,
    many keep only two or three notes of each chord, and some high keyboard, guitar or "other" parts move
    an octave down, some low bass parts an octave up."""
    if not t.notes:
        return
    if t.stem in ("piano", "guitar", "other") and rng.random() < 0.6:
        keep_n = int(rng.choice([1, 2, 2, 3]))
        t.notes.sort(key=lambda n: (n.start_s, n.pitch))
        thinned: list[Any] = []
        group: list[Any] = []
        for n in t.notes + [None]:
            if n is not None and group and n.start_s - group[0].start_s < 0.03:
                group.append(n)
                continue
            if group:  # the top notes of the chord, and its bass note where more than one is kept
                thinned.extend(group[-keep_n:] if keep_n == 1 or len(group) <= keep_n
                               else [group[0]] + group[len(group) - keep_n + 1:])
            group = [n] if n is not None else []
        t.notes = thinned
    if t.stem in ("piano", "guitar", "other") and rng.random() < 0.7:
        f = float(rng.uniform(0.3, 0.85))
        for n in t.notes:
            n.end_s = n.start_s + max(0.06, (n.end_s - n.start_s) * f)
    med = float(np.median([n.pitch for n in t.notes]))
    lowest = min(n.pitch for n in t.notes)
    if t.stem in ("piano", "guitar", "other") and med > (64 if t.stem == "other" else 58) and lowest >= 40 \
            and rng.random() < 0.5:
        shift = -12
    elif t.stem == "bass" and med < 45 and rng.random() < 0.4:
        shift = 12
    else:
        return
    for n in t.notes:
        n.pitch += shift


def _line_track(pw: PartWriter, name: str, program: int, melody: list[Any], articulation: float,
                velocity: float) -> Track:
    """A one-voice line in "other" (a counter-line or a lead): the melody's notes held for `articulation`
    of their length, velocities humanised around `velocity` by section energy."""
    track = Track(name, "other", program)
    for o, d, p, sname in monophonic(melody):
        track.notes.append(pw.note(o, d * articulation, p, humanised_velocity(pw.rng, velocity, SECTION_ENERGY[sname])))
    return track


def _section_index(sections: list[Section], t: float) -> int:
    for i, s in enumerate(sections):
        if s.start_s - 0.05 <= t < s.end_s - 0.05:
            return i
    return len(sections) - 1


_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "linda", "aunty", "steph", "annie", "belinda", "andrea",
                    "steph2", "anika")


def voice_centre(voice: Any, rng: np.random.Generator) -> int:
    """The middle of a comfortable melody range for the voice (higher for female-sounding variants)."""
    variant = str(getattr(voice, "espeak_voice", "")).split("+")[-1].lower()
    if variant in _FEMALE_VARIANTS:
        return int(rng.integers(64, 70))  # E4..A4
    return int(rng.integers(54, 60))  # F#3..B3
