"""`make-demo`: the demo song shipped in resources/demo/: 45-60 s written by the generator with all six
stems, rendered with a training font, stored as small OGG Vorbis files with its true stems beside it.

    stemlab make-demo --out resources/demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.errors import StemLabError
from engine.resources import demo_song_path
from training.errors import DataGenerationError

DEFAULT_OUT = demo_song_path().parent
DEMO_SEED = 2024
MIX_QUALITY = 0.4  # Vorbis quality 0..1 (libsndfile's compression level is 1 - quality)
STEM_QUALITY = 0.2


def write_ogg(path: Path, samples: np.ndarray, sample_rate: int, quality: float) -> None:
    """(2, n) float -> OGG Vorbis, written atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ogg.part", dir=str(path.parent))
    os.close(fd)
    try:
        data = np.ascontiguousarray(np.clip(samples.T, -1, 1), dtype=np.float32)
        with sf.SoundFile(tmp, "w", sample_rate, data.shape[1], format="OGG", subtype="VORBIS",
                          compression_level=float(np.clip(1.0 - quality, 0.0, 1.0))) as f:
            # Small blocks: libsndfile's Vorbis encoder has crashed on one large write.
            for i in range(0, data.shape[0], 16384):
                f.write(data[i:i + 16384])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except (OSError, sf.LibsndfileError, RuntimeError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise DataGenerationError(f"{path}: could not be written ({exc}).") from exc


def _coverage(song: Any, stem: str) -> float:
    """Share of the song's bars in which `stem` has a note."""
    if stem == "vocals":
        starts = [float(n.start_s) for n in song.vocal_notes]
    else:
        starts = []
    starts += [n.start_s for t in song.tracks if t.stem == stem for n in t.notes]
    bar_s = song.sections[0].end_s / max(song.sections[0].n_bars, 1)
    n_bars = sum(s.n_bars for s in song.sections)
    return len({int(t // bar_s) for t in starts if t < n_bars * bar_s}) / max(n_bars, 1)


def find_demo_seed(start: int = DEMO_SEED, tries: int = 400) -> int:
    """The first seed from `start` whose song has all six stems and lasts 45-60 s."""
    from training.songs.compose import compose
    from training.songs.form import plan_song
    from training.songs.model import SOURCES

    for seed in range(start, start + tries):
        plan = plan_song(seed, max_duration_s=60.0)
        if not 45.0 <= plan.duration_s <= 60.0:
            continue
        song = compose(seed, max_duration_s=60.0)
        if len(song.stems_present) == len(SOURCES) and len(song.sections) >= 4 and song.sections[0].name == "intro":
            # Every stem should be heard for a good while, so a listener can judge each one.
            if min(_coverage(song, s) for s in SOURCES) >= 0.3:
                return seed
    raise DataGenerationError("no demo seed with all six stems found")


def make_demo(out: Path = DEFAULT_OUT, seed: int | None = None, font: str = "fluidr3") -> dict[str, Any]:
    from training.datasets.make_data import render_labelled_song, song_meta
    from training.songs.model import SOURCES
    from training.synthesis import render

    if seed is not None and not 0 <= seed < 2 ** 63:
        raise DataGenerationError(f"--seed is a whole number from 0, not {seed}")
    seed = find_demo_seed() if seed is None else seed
    renderer = render.FluidRenderer(render.resolve_fonts([font]))
    rendered, lab = render_labelled_song(seed, renderer, max_duration_s=60.0)
    missing = [s for s in SOURCES if s not in rendered.stems]
    if missing:
        raise DataGenerationError(f"demo seed {seed} lacks stems {missing}; choose another seed.")
    out = Path(out)
    (out / "stems").mkdir(parents=True, exist_ok=True)
    sr = rendered.sample_rate
    write_ogg(out / "demo.ogg", rendered.mixture(), sr, MIX_QUALITY)
    for s in SOURCES:
        write_ogg(out / "stems" / f"{s}.ogg", rendered.stems[s], sr, STEM_QUALITY)
    arrays: dict[str, Any] = {"sources": np.array(list(SOURCES)), "known": np.ones(len(SOURCES), dtype=np.uint8),
                              **lab}
    np.savez_compressed(out / "labels.npz", **arrays)
    os.chmod(out / "labels.npz", 0o644)
    meta = song_meta(rendered)
    meta.update({"title": "StemLab demo song", "seed": seed, "font": font,
                 "files": {"mixture": "demo.ogg", "stems": {s: f"stems/{s}.ogg" for s in SOURCES},
                           "labels": "labels.npz"},
                 "note": "Written by training.songs and rendered by training.synthesis.render; the stems sum to the "
                         "mixture before Vorbis encoding. Rebuild with: stemlab make-demo"})
    from engine.audio import write_text_atomic

    write_text_atomic(out / "demo.json", json.dumps(meta, indent=1, default=str))
    os.chmod(out / "demo.json", 0o644)
    return meta


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.arguments import path_argument

    p.add_argument("--out", type=path_argument, default=DEFAULT_OUT, help="folder (default: resources/demo)")
    p.add_argument("--seed", type=int, default=None, help="song seed (default: the first suitable from 2024)")
    p.add_argument("--font", default="fluidr3", help="training SoundFont to render with")


def run(args: argparse.Namespace) -> int:
    try:
        meta = make_demo(args.out, args.seed, args.font)
    except StemLabError as exc:
        print(f"stemlab make-demo: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full or a folder that cannot be written, met while writing
        print(f"stemlab make-demo: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"demo song seed {meta['seed']}, {meta['duration_s']:.1f} s, {size / 1e6:.2f} MB in {args.out}")
    return 0
