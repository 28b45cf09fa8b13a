"""`make-benchmark`: the public benchmark set, built from real composers' MIDI songs (Debian's
openttd-openmsx, GPL-2) rendered with TimGM6mb (never used in training) into the six stems, cut into
reproducible 30-second excerpts where at least three instrument stems play, with a synthetic sung
vocal line (the song's own lead melody, sung by a voice from the singer's benchmark pool).

    stemlab make-benchmark --out data/benchmark

The result uses the same folder format as `make-data` (read it with `MultitrackDataset`); every
excerpt's song.json says `"synthetic_vocals": true` and names its MIDI file and start time.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import StemLabError
from engine.metrics import energy_activity
from training.errors import DataGenerationError

OPENMSX_DIRS = ("/usr/share/games/openttd/baseset/openmsx", "/usr/share/openttd/baseset/openmsx")
EXCERPT_S = 30.0
STEP_S = 5.0
MIN_STEMS = 3
MAX_EXCERPTS_PER_SONG = 2
PLAYS_FRACTION = 0.25  # a stem "plays" in an excerpt when it is audible in this share of its frames
TARGET_LUFS = -14.0
BENCHMARK_FONT = "timgm6mb"


def find_midi_files() -> list[Path]:
    for d in OPENMSX_DIRS:
        files = sorted(Path(d).glob("*.mid"))
        if files:
            return files
    raise DataGenerationError(
        "the openttd-openmsx MIDI songs were not found; install the Debian package 'openttd-openmsx'."
    )


def _stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def midi_tracks(path: Path) -> tuple[list[Any], float]:
    """A MIDI file as Tracks (training.songs.model) (program, stem, notes, pan, volume) and its length in seconds."""
    import pretty_midi

    from training.songs.model import Note, Track, stem_for_program

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise DataGenerationError(f"{path.name}: cannot be read as MIDI ({exc}).") from exc
    tracks = []
    for k, inst in enumerate(pm.instruments):
        if not inst.notes:
            continue
        stem = stem_for_program(inst.program, inst.is_drum)
        cc7 = [c.value for c in inst.control_changes if c.number == 7]
        cc10 = [c.value for c in inst.control_changes if c.number == 10]
        t = Track(f"{k}:{inst.name.strip() or inst.program}", stem, int(inst.program), bool(inst.is_drum),
                  [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in inst.notes],
                  pan=((cc10[0] - 64) / 63.0) if cc10 else 0.0, volume=cc7[0] if cc7 else 100,
                  drum_kit=int(inst.program) if inst.is_drum else 0, source="openmsx")
        tracks.append(t)
    return tracks, float(pm.get_end_time())


def lead_melody(tracks: Sequence[Any]) -> Any | None:
    """The track most likely to carry the tune: many notes, high, mostly one note at a time."""
    best, best_score = None, 0.0
    for t in tracks:
        if t.is_drum or t.stem == "bass" or len(t.notes) < 16:
            continue
        starts = np.array([n.start_s for n in t.notes])
        ends = np.array([n.end_s for n in t.notes])
        order = np.argsort(starts)
        overl = float(np.mean(starts[order][1:] < ends[order][:-1] - 0.02)) if len(order) > 1 else 0.0
        mono = 1.0 - overl
        pitch = float(np.mean([n.pitch for n in t.notes]))
        score = math.log(len(t.notes)) * mono ** 2 * max(pitch - 48.0, 1.0)
        if score > best_score:
            best, best_score = t, score
    return best


def skyline(notes: Sequence[Any]) -> list[Any]:
    """A monophonic line: the highest note at each onset; a note ends where the next begins."""
    from training.songs.model import Note

    by_start: dict[float, Any] = {}
    for n in notes:
        key = round(n.start_s, 3)
        if key not in by_start or n.pitch > by_start[key].pitch:
            by_start[key] = n
    line = [Note(n.start_s, n.end_s, n.pitch, n.velocity) for _, n in sorted(by_start.items())]
    for a, b in itertools.pairwise(line):
        a.end_s = min(a.end_s, b.start_s - 0.01)
    return [n for n in line if n.end_s - n.start_s >= 0.06]


def _vocal_notes(line: Sequence[Any], t0: float, t1: float, rng: np.random.Generator, centre: int) -> list[Any]:
    """The part of the line inside [t0, t1), moved to excerpt time and octave-shifted into the voice's range."""
    from training.synthesis import singer

    inside = [n for n in line if n.start_s >= t0 and n.start_s < t1 - 0.1]
    if not inside:
        return []
    mean = float(np.mean([n.pitch for n in inside]))
    shift = 12 * round((centre - mean) / 12.0)
    lyrics = singer.random_lyrics(rng, len(inside))
    out = []
    for n, syl in zip(inside, lyrics):
        out.append(singer.SungNote(n.start_s - t0, min(n.end_s, t1) - t0, int(n.pitch + shift), syl))
    return out


def build_benchmark(out: str, excerpt_s: float = EXCERPT_S, max_songs: int | None = None,
                    progress: bool = True, font: str = BENCHMARK_FONT) -> dict[str, Any]:
    """Render the benchmark's excerpts into `out`. `font` other than TimGM6mb (a training font) gives the
    diagnostic set that tells the song gap from the sound gap: the same songs in a sound the model knows."""
    from engine.spectral import STFTConfig
    from training.datasets import dataset, labels
    from training.songs.compose import voice_centre
    from training.songs.model import SOURCES
    from training.synthesis import render, singer

    if not (isinstance(excerpt_s, (int, float)) and math.isfinite(excerpt_s) and 1.0 <= excerpt_s <= 600.0):
        raise DataGenerationError(f"--excerpt-s is a length between 1 and 600 seconds, not {excerpt_s}")
    if max_songs is not None and not 1 <= max_songs <= 100000:
        raise DataGenerationError(f"--max-songs is a number of songs from 1, not {max_songs}")

    fonts = render.resolve_fonts([font], allow_benchmark=True)
    if render.FONTS[font].kind != "gm":
        raise DataGenerationError(f"{font} holds drum kits only; the benchmark needs a full General MIDI font.")
    renderer = render.FluidRenderer(fonts)
    sr = renderer.sample_rate
    cfg = STFTConfig()
    files = find_midi_files()[: max_songs]
    out_dir = dataset.make_set_folder(out)
    iterator: Any = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="benchmark songs", unit="song")
    t_start = time.perf_counter()
    for path in iterator:
        rng = np.random.default_rng(_stable_seed(path.name))
        tracks, end_s = midi_tracks(path)
        n = math.ceil((end_s + 1.0) * sr)
        full: dict[str, np.ndarray] = {}
        for stem in SOURCES:
            st = [t for t in tracks if t.stem == stem]
            if st:
                full[stem] = renderer.render(st, font, n)
        # Where do three or more instrument stems play? Slide a window over the energy labels.
        act = {s: energy_activity(x, cfg) for s, x in full.items()}
        fps = sr / cfg.hop_length
        win = int(excerpt_s * fps)
        candidates = []
        for start_s in np.arange(0.0, max(end_s - excerpt_s, 0.0) + 1e-6, STEP_S):
            f0 = int(start_s * fps)
            playing = [s for s, a in act.items() if a[f0:f0 + win].mean() >= PLAYS_FRACTION]
            if len(playing) >= MIN_STEMS:
                candidates.append((len(playing), float(start_s)))
        chosen: list[float] = []
        for _, start_s in sorted(candidates, key=lambda c: (-c[0], c[1])):
            if all(abs(start_s - c) >= excerpt_s for c in chosen):
                chosen.append(start_s)
            if len(chosen) >= MAX_EXCERPTS_PER_SONG:
                break
        lead = lead_melody(tracks)
        line = skyline(lead.notes) if lead is not None else []
        for k, start_s in enumerate(sorted(chosen)):
            ex_id = f"{path.stem}_{k}"
            final = out_dir / dataset.SONGS_DIR / ex_id
            if (final / "song.json").is_file():
                continue
            s0 = round(start_s * sr / cfg.hop_length) * cfg.hop_length
            n_ex = int(excerpt_s * sr)
            start_s = s0 / sr
            stems = {s: np.ascontiguousarray(x[:, s0:s0 + n_ex]) for s, x in full.items()}
            stems = {s: x for s, x in stems.items() if float(np.abs(x).max()) > 1e-5}
            voice = singer.random_voice(rng, pool="benchmark")
            vnotes = _vocal_notes(line, start_s, start_s + excerpt_s, rng, voice_centre(voice, rng))
            accomp = np.zeros((2, n_ex), dtype=np.float64)
            for x in stems.values():
                accomp += x
            if vnotes:
                v = singer.sing(vnotes, sample_rate=sr, voice=voice, total_s=excerpt_s)
                v2 = np.stack([v, v]).astype(np.float32)
                la, lv = render.integrated_loudness(accomp, sr), render.integrated_loudness(v2, sr)
                if math.isfinite(la) and math.isfinite(lv):
                    v2 *= 10 ** ((la + float(rng.uniform(-3.0, 1.0)) - lv) / 20)
                    stems["vocals"] = v2
            mix = np.zeros((2, n_ex), dtype=np.float64)
            for x in stems.values():
                mix += x
            loud = render.integrated_loudness(mix, sr)
            gain = 10 ** ((TARGET_LUFS - loud) / 20) if math.isfinite(loud) else 1.0
            peak = max(float(np.abs(mix).max()), max(float(np.abs(x).max()) for x in stems.values())) * gain
            if peak > render.MAX_PEAK:
                gain *= render.MAX_PEAK / peak
            stems = {s: (x * gain).astype(np.float32) for s, x in stems.items()}
            intervals: dict[str, list[tuple[float, float]]] = {s: [] for s in SOURCES}
            for t in tracks:
                for nt in t.notes:
                    if nt.end_s > start_s and nt.start_s < start_s + excerpt_s:
                        intervals[t.stem].append((max(nt.start_s - start_s, 0.0), min(nt.end_s - start_s, excerpt_s)))
            intervals["vocals"].extend((float(v.start_s), float(v.end_s)) for v in vnotes)
            lab = labels.song_labels(intervals, stems, SOURCES, n_ex, sr, cfg)
            meta = {
                "benchmark": True, "midi": path.name, "midi_package": "openttd-openmsx", "font": font,
                "start_s": round(start_s, 4), "duration_s": excerpt_s, "sample_rate": sr, "n_samples": n_ex,
                "synthetic_vocals": bool(vnotes), "vocal_source_track": lead.name if lead is not None else None,
                "voice": {k: getattr(voice, k) for k in voice.__dataclass_fields__},
                "tracks": [{"name": t.name, "stem": t.stem, "program": t.program, "is_drum": t.is_drum}
                           for t in tracks],
                "mixture_lufs": round(loud + 20 * math.log10(gain), 2) if math.isfinite(loud) else None,
                "stems_playing": [s for s in SOURCES if s in stems],
            }
            dataset.write_song_folder(final, stems, lab, SOURCES, sr, meta)
    return dataset.write_manifest(out_dir, {
        "generator": "training.datasets.benchmark", "font": font, "excerpt_s": excerpt_s,
        "min_stems": MIN_STEMS, "synthetic_vocals": True, "midi_source": "openttd-openmsx (GPL-2)",
        "build_wall_s": round(time.perf_counter() - t_start, 1)})


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.arguments import path_text

    p.add_argument("--out", default="data/benchmark", type=path_text, help="output folder (default: %(default)s)")
    p.add_argument("--excerpt-s", type=float, default=EXCERPT_S)
    p.add_argument("--max-songs", type=int, default=None, help="only the first N MIDI files (for testing)")
    p.add_argument("--font", default=BENCHMARK_FONT,
                   help="SoundFont to render with (default: %(default)s, the benchmark's; a training font such as "
                        "fluidr3 makes the diagnostic set that separates the song gap from the sound gap)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        m = build_benchmark(args.out, args.excerpt_s, args.max_songs, progress=not args.no_progress, font=args.font)
    except StemLabError as exc:
        print(f"stemlab make-benchmark: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full or a folder that cannot be written, met while writing
        print(f"stemlab make-benchmark: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{m['n_songs']} excerpts ({m['hours'] * 60:.1f} min) in {args.out}")
    return 0
