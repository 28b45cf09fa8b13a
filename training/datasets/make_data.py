"""`make-data`: write a generated multitrack data set (songs by code, rendered stem by stem) to a folder.

    stemlab make-data --hours 2 --out data/train --seed 1 [--workers 2] [--fonts ...] [--partial [K]]

Song i's seed is derived from (seed, i) alone, so the set does not depend on worker scheduling and an
interrupted run resumes where it stopped (finished songs are kept; each song is written to a
temporary folder, then renamed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import StemLabError
from training.errors import DataGenerationError
from training.songs.model import DEFAULT_VERSION as GENERATOR_VERSION
from training.songs.model import GENERATOR_VERSIONS

DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
# 2: songs and mixes widened towards real ones, code-written instruments (issue 11). 3: part registers,
# articulation and texture moved towards real songs, guitar and keys alternating.
# 4: dense arrangements. 5: a candidate, legato parts (`make-data --generator 5`; DATA.md). 6: version 5
# with parts that double the bass line and low guitar riffs (`--generator 6`). A set made
# by another version holds other songs for the same seed, so it is never extended in place. The
# versions are the song model's (GENERATOR_VERSIONS), and so is the default.
SYNTH_SHARE = 0.4


def song_seed(seed: int, index: int) -> int:
    """The seed of song `index` in a set made with `seed` (independent of everything else)."""
    return int(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),)).generate_state(1)[0])


def song_id(index: int) -> str:
    return f"song_{index:05d}"


@dataclass(frozen=True)
class Options:
    out: str
    fonts: tuple[str, ...] | None = None
    partial: int | None = None  # keep this many stems per song (plus the mixture)
    store_mixture: bool = False
    max_song_s: float | None = None
    mix: bool = True
    synth_share: float = 0.0
    generator_version: int = GENERATOR_VERSION


def plan_set(hours: float, seed: int, max_song_s: float | None = None) -> list[tuple[int, int, float]]:
    """(index, song seed, duration) for songs until their durations reach `hours`."""
    from training.songs.form import song_duration

    out = []
    total = 0.0
    i = 0
    while total < hours * 3600.0:
        s = song_seed(seed, i)
        d = song_duration(s, max_song_s)
        out.append((i, s, d))
        total += d
        i += 1
    return out


def render_labelled_song(seed: int, renderer: Any, max_duration_s: float | None = None, mix: bool = True,
                         voice_pool: str = "train", synth_share: float = 0.0,
                         code_voice_share: float = 0.0,
                         generator_version: int = GENERATOR_VERSION) -> tuple[Any, dict[str, np.ndarray]]:
    """Compose and render one song; returns (RenderedSong, labels dict as in labels.song_labels)."""
    from engine.spectral import STFTConfig
    from training.datasets import labels as labels_mod
    from training.songs.compose import compose
    from training.songs.model import SOURCES
    from training.synthesis import render

    song = compose(seed, max_duration_s=max_duration_s, voice_pool=voice_pool, version=generator_version)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3]))
    rendered = render.render_song(song, renderer, rng, mix=mix, synth_share=synth_share,
                                  code_voice_share=code_voice_share)
    intervals: dict[str, list[tuple[float, float]]] = {s: [] for s in SOURCES}
    for t in song.tracks:
        intervals[t.stem].extend((n.start_s, n.end_s) for n in t.notes)
    intervals["vocals"].extend((float(n.start_s), float(n.end_s)) for n in song.vocal_notes)
    lab = labels_mod.song_labels(intervals, rendered.stems, SOURCES, rendered.n_samples,
                                 rendered.sample_rate, STFTConfig())
    return rendered, lab


def song_meta(rendered: Any, index: int | None = None) -> dict[str, Any]:
    meta = rendered.song.describe()
    meta.update(rendered.info)
    meta["sample_rate"] = rendered.sample_rate
    meta["n_samples"] = rendered.n_samples
    if index is not None:
        meta["index"] = index
    return meta


# ----------------------------------------------------------------------------------------------
# Workers

_RENDERER: Any = None


def _init_worker(fonts: dict[str, str]) -> None:
    global _RENDERER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from training.synthesis.render import FluidRenderer

    _RENDERER = FluidRenderer(fonts)


def _make_one(job: tuple[int, int, Options]) -> dict[str, Any]:
    from training.datasets import dataset
    from training.songs.midi import write_midi
    from training.songs.model import SOURCES

    index, seed, opts = job
    t0 = time.perf_counter()
    rendered, lab = render_labelled_song(seed, _RENDERER, opts.max_song_s, opts.mix, synth_share=opts.synth_share,
                                         generator_version=opts.generator_version)
    t_render = time.perf_counter() - t0
    keep: list[str] | None = None
    if opts.partial:
        # Independent-database style: the mixture and only K stems of those that play.
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4]))
        playing = [s for s in SOURCES if s in rendered.stems]
        k = min(opts.partial, len(playing))
        keep = sorted(rng.choice(playing, size=k, replace=False).tolist(), key=SOURCES.index)
    meta = song_meta(rendered, index)
    meta["render_s"] = round(t_render, 3)
    entry = dataset.write_song_folder(
        Path(opts.out) / dataset.SONGS_DIR / song_id(index), rendered.stems, lab, SOURCES, rendered.sample_rate,
        meta, keep=keep, store_mixture=opts.store_mixture,
        midi_writer=lambda p: write_midi(rendered.song, p))
    return {"index": index, "duration_s": entry["duration_s"], "n_stems": len(rendered.stems),
            "wall_s": time.perf_counter() - t0, "render_s": t_render}


MAX_HOURS = 1000.0  # a plan is made song by song before rendering starts: keep it bounded


def check_options(hours: float, workers: int, partial: int | None, max_song_s: float | None,
                  synth_share: float, generator_version: int = GENERATOR_VERSION) -> None:
    """Refuse settings that cannot make a set, before any work (NaN fails every comparison here)."""
    if generator_version not in GENERATOR_VERSIONS:
        raise DataGenerationError(f"--generator is one of {', '.join(map(str, GENERATOR_VERSIONS))}, "
                                  f"not {generator_version}")
    if not 0.0 < hours <= MAX_HOURS:
        raise DataGenerationError(f"--hours must be more than 0 and at most {MAX_HOURS:g}, not {hours}")
    if workers < 1:
        raise DataGenerationError(f"--workers must be at least 1, not {workers}")
    if partial is not None and partial < 1:
        raise DataGenerationError(f"--partial keeps at least one stem per song, not {partial}")
    if max_song_s is not None and not 1.0 <= max_song_s <= 3600.0:
        raise DataGenerationError(f"--max-song-s must lie between 1 and 3600 seconds, not {max_song_s}")
    if not 0.0 <= synth_share <= 1.0:
        raise DataGenerationError(f"--synth-share is a share between 0 and 1, not {synth_share}")


def make_data(hours: float, out: str, seed: int, workers: int = DEFAULT_WORKERS,
              fonts: Sequence[str] | None = None, partial: int | None = None, store_mixture: bool = False,
              max_song_s: float | None = None, progress: bool = True,
              synth_share: float = SYNTH_SHARE, generator_version: int = GENERATOR_VERSION) -> dict[str, Any]:
    """Generate (or finish) a data set; returns the manifest."""
    from training.datasets import dataset
    from training.synthesis import render

    check_options(hours, workers, partial, max_song_s, synth_share, generator_version)
    if not 0 <= seed < 2 ** 63:
        raise DataGenerationError(f"--seed is a whole number from 0, not {seed}")

    font_paths = render.resolve_fonts(fonts)
    render.require_fluidsynth()
    out_dir = dataset.make_set_folder(out)
    settings_path = out_dir / "settings.json"
    settings = {"seed": seed, "partial": partial, "max_song_s": max_song_s, "store_mixture": store_mixture,
                "fonts": sorted(font_paths), "synth_share": synth_share, "generator_version": generator_version}
    same = ("seed", "partial", "max_song_s", "synth_share", "generator_version")
    if settings_path.is_file():
        old = json.loads(settings_path.read_text())
        if {k: old.get(k) for k in same} != {k: settings[k] for k in same}:
            raise DataGenerationError(
                f"{out_dir} holds a set made with other settings ({old}); use another --out folder.")
    from engine.audio import write_text_atomic

    write_text_atomic(settings_path, json.dumps(settings, indent=1))
    opts = Options(out=str(out_dir), fonts=tuple(font_paths), partial=partial, store_mixture=store_mixture,
                   max_song_s=max_song_s, synth_share=synth_share, generator_version=generator_version)
    plan = plan_set(hours, seed, max_song_s)
    todo = [(i, s, opts) for i, s, _ in plan if not (out_dir / dataset.SONGS_DIR / song_id(i) / "song.json").is_file()]
    planned_s = sum(d for _, _, d in plan)
    done_s = sum(d for i, s, d in plan if (i, s, opts) not in todo)
    # The bar counts planned durations: rendered songs run a little longer (reverb tails), and a
    # count past the total would break tqdm's formatting.
    planned = {i: d for i, _, d in plan}
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=planned_s / 60.0, initial=done_s / 60.0, unit="min", desc="songs",
                   dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} min of audio [{elapsed}<{remaining}]")
    try:
        if workers <= 1 or len(todo) <= 1:
            _init_worker(font_paths)
            for job in todo:
                r = _make_one(job)
                results.append(r)
                if bar is not None:
                    bar.update(planned[r["index"]] / 60.0)
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(font_paths,), maxtasksperchild=50) as pool:
                for r in pool.imap_unordered(_make_one, todo):
                    results.append(r)
                    if bar is not None:
                        bar.update(planned[r["index"]] / 60.0)
    finally:
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - t0
        audio_s = sum(r["duration_s"] for r in results)
        stem_s = sum(r["duration_s"] * r["n_stems"] for r in results)
        stats = {"songs_this_run": len(results), "wall_s": round(wall, 2), "workers": workers,
                 "audio_hours_this_run": round(audio_s / 3600, 4), "stem_hours_this_run": round(stem_s / 3600, 4),
                 "speed_audio_x": round(audio_s / wall, 2) if wall > 0 else None,
                 "speed_stem_hours_per_hour": round(stem_s / wall, 2) if wall > 0 else None}
        manifest = dataset.write_manifest(out_dir, {"generator": "training.datasets.make_data", "seed": seed,
                                                    "hours_requested": hours, "partial": partial,
                                                    "fonts": sorted(font_paths), "planned_songs": len(plan),
                                                    "synth_share": synth_share, "generator_version": generator_version,
                                                    "last_run": stats})
    return manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.arguments import path_text
    from training.synthesis.render import TRAIN_FONTS

    p.add_argument("--hours", type=float, required=True, help="hours of songs to generate")
    p.add_argument("--out", required=True, type=path_text, help="output folder (created; rerun to resume)")
    p.add_argument("--seed", type=int, default=0, help="set seed: same seed, same songs")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="processes (default: %(default)s)")
    p.add_argument("--fonts", nargs="+", choices=TRAIN_FONTS, default=None,
                   help="SoundFonts to draw from (default: every installed training font)")
    p.add_argument("--partial", nargs="?", type=int, const=1, default=None, metavar="K",
                   help="keep only the mixture and K stems per song (default K=1), as in independent databases")
    p.add_argument("--store-mixture", action="store_true", help="also store mixture.flac in full sets")
    p.add_argument("--max-song-s", type=float, default=None, help="cap each song's length (seconds)")
    p.add_argument("--synth-share", type=float, default=SYNTH_SHARE, metavar="P",
                   help="share of stems played by the code-written instruments instead of a SoundFont "
                        "(default: %(default)s)")
    p.add_argument("--generator", type=int, default=GENERATOR_VERSION, metavar="VERSION",
                   help=f"the generator version that writes the songs, one of {GENERATOR_VERSIONS} "
                        "(default: %(default)s; DATA.md)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        m = make_data(args.hours, args.out, args.seed, args.workers, args.fonts, args.partial, args.store_mixture,
                      args.max_song_s, progress=not args.no_progress, synth_share=args.synth_share,
                      generator_version=args.generator)
    except StemLabError as exc:
        print(f"stemlab make-data: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full or a folder that cannot be written, met while writing
        print(f"stemlab make-data: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    st = m.get("last_run", {})
    print(f"{m['n_songs']} songs, {m['hours']:.2f} h in {args.out}; this run: {st.get('songs_this_run')} songs, "
          f"{st.get('stem_hours_this_run')} h of stems in {st.get('wall_s')} s "
          f"({st.get('speed_stem_hours_per_hour')} h of stems per hour)")
    return 0
