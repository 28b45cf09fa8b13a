"""What distinguishes generated songs from real ones: note statistics of MIDI songs and the balance of
rendered mixes, measured the same way on both, for docs/DATA.md.

    python -m training.songs.stats [--songs 300] [--seed 7 8] [--generator 4] [--set data/benchmark --set data/val ...]

Note statistics read MIDI through pretty_midi: the real composers' songs (openttd-openmsx, kept out of
training) and generated songs written to MIDI by `write_midi`, so both go through one reader.
Mix balance reads rendered sets: each stem's integrated loudness against its mixture's, and its share of
the mixture's energy under 250 Hz (where the bass lives, and where a guitar or a low "other" part can
take over).
"""

from __future__ import annotations

import argparse
import bisect
import io
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.songs.model import DEFAULT_VERSION, GENERATOR_VERSIONS, SOURCES, stem_for_program

GRID_S = 0.05  # time grid for polyphony and overlap
PRESENT_S = 1.0  # a stem is "in" the arrangement up to this long after a note starts, however short the note
DOUBLE_S = 0.04  # a note of another part this close to a bass onset, on its pitch class, doubles it
LOW_BAND_HZ = (30.0, 250.0)
DRUM_FAMILIES = {"kick": (35, 36), "snare": (37, 38, 39, 40), "hat": (42, 44, 46),
                 "tom": (41, 43, 45, 47, 48, 50), "cymbal": (49, 51, 52, 53, 55, 57, 59)}


def _instrument_stem(inst: Any) -> str:
    name = (inst.name or "").split(":")[0]
    if name in SOURCES:  # generated songs name their tracks "<stem>:<part>"
        return name
    return stem_for_program(int(inst.program), bool(inst.is_drum))


def _mean_where_any(values: np.ndarray, where: np.ndarray | None = None) -> float:
    """The mean of values over the grid points where any stem plays (where values > 0 unless given); 0 if none."""
    keep = values > 0 if where is None else where
    return float(values[keep].mean()) if keep.any() else 0.0


def midi_song_stats(pm: Any) -> dict[str, Any]:
    """One song's statistics: per stem (parts, pitches, polyphony, density, durations), and per song
    (expression controllers, pitch bends, sustain, tempo and program changes, drums, register overlaps)."""
    end = max(float(pm.get_end_time()), GRID_S)
    n_grid = math.ceil(end / GRID_S) + 1
    per: dict[str, dict[str, Any]] = {s: {"parts": 0, "pitches": [], "durations": [], "onsets": 0,
                                          "count": np.zeros(n_grid, dtype=np.int32),
                                          "present": np.zeros(n_grid, dtype=bool)} for s in SOURCES}
    song: dict[str, Any] = {"cc7_moves": 0, "cc11": 0, "bends": 0, "sustain": 0, "drum_keys": set()}
    low_piano = np.zeros(n_grid, dtype=bool)
    onsets: dict[str, list[tuple[float, int]]] = {s: [] for s in SOURCES}  # pitched notes: (start, pitch)
    for inst in pm.instruments:
        if not inst.notes:
            continue
        stem = _instrument_stem(inst)
        d = per[stem]
        d["parts"] += 1
        for n in inst.notes:
            d["durations"].append(n.end - n.start)
            d["onsets"] += 1
            a, b = int(n.start / GRID_S), max(int(n.start / GRID_S) + 1, int(n.end / GRID_S))
            d["count"][a:b] += 1
            d["present"][a:max(b, a + round(PRESENT_S / GRID_S))] = True
            if inst.is_drum:
                song["drum_keys"].add(int(n.pitch))
            else:
                d["pitches"].append(n.pitch)
                onsets[stem].append((float(n.start), int(n.pitch)))
                if stem == "piano" and n.pitch < 55:
                    low_piano[a:b] = True
        cc7 = {c.value for c in inst.control_changes if c.number == 7}
        song["cc7_moves"] += int(len(cc7) > 1)
        song["cc11"] += int(any(c.number == 11 for c in inst.control_changes))
        song["sustain"] += int(any(c.number == 64 for c in inst.control_changes))
        song["bends"] += int(any(abs(b.pitch) > 0 for b in inst.pitch_bends))
    tempo_times, _ = pm.get_tempo_changes()
    song["tempo_changes"] = max(0, len(tempo_times) - 1)
    song["end_s"] = end
    song["n_drum_keys"] = len(song.pop("drum_keys"))
    bass_on = per["bass"]["count"] > 0
    song["bass_with_low_piano"] = float((bass_on & low_piano).sum() / max(bass_on.sum(), 1))
    song["bass_doubled"] = _doubled(onsets["bass"], [o for s in ("guitar", "piano", "other") for o in onsets[s]])
    gtr_on, keys_on = per["guitar"]["count"] > 0, (per["piano"]["count"] > 0) | (per["other"]["count"] > 0)
    song["guitar_with_keys"] = float((gtr_on & keys_on).sum() / max(gtr_on.sum(), 1))
    # how many stems are in the arrangement at once (a note within PRESENT_S, so that staccato and
    # drums count as playing), over the time any is: real arrangements are dense
    playing = np.sum([d["present"] for d in per.values()], axis=0)
    backing = np.sum([d["present"] for s, d in per.items() if s != "vocals"], axis=0)  # few real songs sing
    song["stems_at_once"] = _mean_where_any(playing)
    song["four_stems_or_more"] = _mean_where_any(playing >= 4, where=playing > 0)
    song["backing_at_once"] = _mean_where_any(backing)
    song["stems"] = {}
    for s, d in per.items():
        active = d["count"] > 0
        t_active = float(active.sum()) * GRID_S
        if d["parts"] == 0 or t_active <= 0:
            continue
        song["stems"][s] = {
            "parts": d["parts"],
            "pitch_p05": float(np.percentile(d["pitches"], 5)) if d["pitches"] else math.nan,
            "pitch_p50": float(np.median(d["pitches"])) if d["pitches"] else math.nan,
            "pitch_p95": float(np.percentile(d["pitches"], 95)) if d["pitches"] else math.nan,
            "polyphony": float(d["count"][active].mean()),
            "onsets_per_s": d["onsets"] / t_active,
            "duration_s": float(np.median(d["durations"])),
            "active": t_active / end,
            "present": float(d["present"].mean()),
        }
    return song


def _doubled(bass: list[tuple[float, int]], others: list[tuple[float, int]]) -> float | None:
    """Share of the bass's notes that another part doubles: a note on the same pitch class (any octave)
    starting within DOUBLE_S of it. None without a bass or other pitched parts."""
    if not bass or not others:
        return None
    others = sorted(others)
    times = [t for t, _ in others]
    hit = 0
    for t, p in bass:
        i = bisect.bisect_left(times, t - DOUBLE_S)
        while i < len(others) and others[i][0] <= t + DOUBLE_S:
            if (others[i][1] - p) % 12 == 0:
                hit += 1
                break
            i += 1
    return hit / len(bass)


def real_songs(limit: int | None = None) -> list[dict[str, Any]]:
    import pretty_midi

    from training.datasets.benchmark import find_midi_files

    out = []
    for path in find_midi_files()[:limit]:
        out.append(midi_song_stats(pretty_midi.PrettyMIDI(str(path))))
    return out


def generated_songs(n: int, seed: int = 7, version: int = DEFAULT_VERSION) -> list[dict[str, Any]]:
    import pretty_midi

    from training.datasets.make_data import song_seed
    from training.songs.compose import compose
    from training.songs.midi import write_midi

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            song = compose(song_seed(seed, i), version=version)
            path = Path(tmp) / "song.mid"
            write_midi(song, path)
            out.append(midi_song_stats(pretty_midi.PrettyMIDI(str(path))))
    return out


def _pct(values: Sequence[float]) -> str:
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    if not len(v):
        return "–"
    lo, mid, hi = np.percentile(v, [10, 50, 90])
    return f"{mid:.3g} ({lo:.3g}–{hi:.3g})"


def note_table(groups: dict[str, list[dict[str, Any]]]) -> str:
    """Per stem and measure: median (10th–90th percentile over songs) for each group of songs."""
    names = list(groups)
    lines = ["| stem | measure | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    measures = [("songs with it", None), ("parts", "parts"), ("median pitch", "pitch_p50"),
                ("pitch range (p95 − p5)", "range"), ("polyphony when playing", "polyphony"),
                ("onsets per second playing", "onsets_per_s"), ("median note length (s)", "duration_s"),
                ("share of song playing", "active"), ("share of song in the arrangement", "present")]
    for s in SOURCES:
        for label, key in measures:
            cells = []
            for g in names:
                songs = groups[g]
                have = [x["stems"][s] for x in songs if s in x["stems"]]
                if key is None:
                    cells.append(f"{len(have) / max(len(songs), 1):.0%}")
                elif key == "range":
                    cells.append(_pct([h["pitch_p95"] - h["pitch_p05"] for h in have]))
                else:
                    cells.append(_pct([h[key] for h in have]))
            if s == "drums" and key in ("pitch_p50", "range"):
                continue
            lines.append(f"| {s} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def song_table(groups: dict[str, list[dict[str, Any]]]) -> str:
    names = list(groups)
    lines = ["| per song | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows = [("tracks with moving volume (CC7)", lambda x: x["cc7_moves"] > 0, "share"),
            ("expression controller (CC11)", lambda x: x["cc11"] > 0, "share"),
            ("pitch bends", lambda x: x["bends"] > 0, "share"),
            ("sustain pedal", lambda x: x["sustain"] > 0, "share"),
            ("tempo changes", lambda x: x["tempo_changes"] > 0, "share"),
            ("distinct drum keys", lambda x: x["n_drum_keys"], "dist"),
            # over the songs that have the stems in question (a song without them would count as 0 and,
            # where half the songs lack them, set the median: the misreading generator version 3 followed)
            ("bass time with piano below G3, songs with both", lambda x: x["bass_with_low_piano"]
             if {"bass", "piano"} <= set(x["stems"]) else None, "dist"),
            ("bass notes doubled by another part (same pitch class, within 40 ms)", lambda x: x["bass_doubled"],
             "dist"),
            ("songs where another part doubles a fifth of the bass notes or more",
             lambda x: None if x["bass_doubled"] is None else x["bass_doubled"] >= 0.2, "share"),
            ("guitar time with keys or other, songs with both", lambda x: x["guitar_with_keys"]
             if "guitar" in x["stems"] and {"piano", "other"} & set(x["stems"]) else None, "dist"),
            ("songs with guitar that have piano", lambda x: "piano" in x["stems"] if "guitar" in x["stems"] else None,
             "share"),
            ("parts in all", lambda x: sum(v["parts"] for v in x["stems"].values()), "dist"),
            ("stems sounding at once", lambda x: x["stems_at_once"], "dist"),
            ("time with four stems or more", lambda x: x["four_stems_or_more"], "dist"),
            ("stems other than vocals at once", lambda x: x["backing_at_once"], "dist")]
    for label, fn, kind in rows:
        cells = []
        for g in names:
            vals = [v for v in (fn(x) for x in groups[g]) if v is not None]
            cells.append((f"{np.mean(vals):.0%} of songs" if vals else "–") if kind == "share"
                         else _pct([float(v) for v in vals]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def low_band_energy(x: np.ndarray, sample_rate: int) -> float:
    """Energy of (channels, n) audio between LOW_BAND_HZ, summed over channels."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64), axis=-1)) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate)
    return float(spectrum[..., (f >= LOW_BAND_HZ[0]) & (f < LOW_BAND_HZ[1])].sum())


def mix_balance(root: str, limit: int | None = None) -> dict[str, dict[str, list[float]]]:
    """Per stem, over the songs where it sounds: "loudness", its integrated loudness minus its mixture's
    (LU), and "low band", its energy under 250 Hz against the mixture's (dB)."""
    from training.datasets.dataset import MultitrackDataset
    from training.synthesis.render import integrated_loudness

    ds = MultitrackDataset(root)
    out: dict[str, dict[str, list[float]]] = {"loudness": {s: [] for s in ds.sources},
                                              "low band": {s: [] for s in ds.sources}}
    for e in ds.songs[:limit]:
        ex = ds.load_excerpt(e, 0.0, e.duration_s)
        lm = integrated_loudness(ex.mixture, ds.sample_rate)
        low_mix = low_band_energy(ex.mixture, ds.sample_rate)
        for s, x in ex.stems.items():
            ls = integrated_loudness(x, ds.sample_rate)
            if math.isfinite(ls) and math.isfinite(lm) and ls > lm - 60:
                out["loudness"][s].append(ls - lm)
                if low_mix > 0:
                    out["low band"][s].append(10 * math.log10(max(low_band_energy(x, ds.sample_rate), 1e-20) / low_mix))
    return out


def balance_table(sets: dict[str, dict[str, list[float]]]) -> str:
    names = list(sets)
    lines = ["| stem | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for s in SOURCES:
        lines.append(f"| {s} | " + " | ".join(_pct(sets[n].get(s, [])) for n in names) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="song-stats", description=__doc__.splitlines()[0])
    # 60 songs' medians moved by up to a third between two seeds (guitar polyphony 2.35 against 1.59):
    # 300 songs from each of two seeds, a column each, so the sampling spread is in the table.
    p.add_argument("--songs", type=int, default=300, help="generated songs to compose per seed (default: %(default)s)")
    p.add_argument("--seed", type=int, nargs="+", default=[7, 8], help="one column per seed (default: 7 8)")
    p.add_argument("--generator", type=int, default=DEFAULT_VERSION, choices=GENERATOR_VERSIONS,
                   help="the generator version to compose with (default: %(default)s, the one sets are made with)")
    p.add_argument("--set", action="append", default=[], help="rendered set for the mix balance (repeatable)")
    p.add_argument("--set-songs", type=int, default=80, help="at most this many songs per set")
    args = p.parse_args(argv)
    buf = io.StringIO()
    groups = {"real (openmsx)": real_songs()}
    for seed in args.seed:
        groups[f"generated (v{args.generator}, {args.songs}, seed {seed})"] = generated_songs(args.songs, seed, args.generator)
    print("Note statistics, median (10th–90th percentile over songs):\n", file=buf)
    print(note_table(groups), file=buf)
    print("\n" + song_table(groups), file=buf)
    if args.set:
        balance = {r: mix_balance(r, args.set_songs) for r in args.set}
        print("\nStem loudness against the mixture (LU), median (10th–90th percentile):\n", file=buf)
        print(balance_table({r: b["loudness"] for r, b in balance.items()}), file=buf)
        print("\nStem energy under 250 Hz against the mixture's (dB), median (10th–90th percentile):\n", file=buf)
        print(balance_table({r: b["low band"] for r, b in balance.items()}), file=buf)
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
