"""Accompaniment from Debian's mma: over a thousand human-written grooves driven by a chord chart, read
back as Tracks."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.songs.model import (
    BASS_CHOICES,
    CHOIR_CHOICES,
    GUITAR_CLEAN,
    GUITAR_DIRTY,
    PIANO_CHOICES,
    Note,
    Section,
    Track,
    stem_for_program,
    weighted_choice,
)
from training.songs.theory import Chord, Metre

MMA_LIBRARY = Path("/usr/share/mma/lib/stdlib")

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


def redraw_program(rng: np.random.Generator, program: int, stem: str) -> int:
    """Another program of the same stem, so mma's fixed voices do not always sound the same."""
    if rng.random() < 0.5:
        return program
    tables: dict[str, Mapping[int, float]] = {
        "piano": PIANO_CHOICES, "bass": BASS_CHOICES, "vocals": CHOIR_CHOICES,
        "guitar": {**GUITAR_CLEAN, **{k: 0.5 for k in GUITAR_DIRTY}}}
    table = tables.get(stem)
    if table is None:  # other: stay in the same GM family of eight
        fam = program // 8
        return int(fam * 8 + rng.integers(8)) if fam not in (4, 5, 6) else program
    return weighted_choice(rng, table)
