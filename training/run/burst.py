"""A burst of training on a machine lent for minutes (one GPU beside many cores; or this CPU, as a dry
run): songs written and rendered there by code alone, training resumed from the committed state, then
an evaluation on a small set the checkout carries, a timing of the engine on a 4-minute song, and the
files to bring home.

    bash scripts/gpu_burst.sh OUT --minutes 8                  # on the GPU machine
    bash scripts/gpu_burst.sh OUT --minutes 1 --device cpu     # the dry run (tests/training/test_burst.py)
    python -m training.run.burst eval-set --from data/benchmark --out resources/eval/burst   # the carried set

The songs: training.songs' compositions (its native writers: mma is a Debian package the GPU machine lacks),
every part played by training/synthesis/synth.py's instruments and sung by training/synthesis/formant_singer.py, so nothing
but numpy, scipy and torch is needed (plus soundfile and soxr, carried as wheels). Worker processes
render songs without pause into a pool, kept as float16 tensors on the training device where the
batches are cut, remixed and summed (so the cores only render; and, unlike `stemlab train`, a burst's
batches depend on timing: the trainer draws from whatever songs are done). Training time counts
from the first step; the budget covers training only.

What OUT receives, each file under 16 MiB: resume.pt and resume.pt.lo (the packed state, see
training/run/resume_pack.py), iass-burst.json and iass-burst.safetensors (a candidate model card of the weight
average), report.json and report.md, log.jsonl. Bringing it home: docs/TRAINING.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from training.errors import TrainingError
from training.run.batches import Batch, ExcerptSource, LiveSong, activity_labels
from training.run.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / "resources" / "training" / "iass-main.resume.pt"
CONFIG = ROOT / "training" / "configs" / "iass_main.json"
EVAL_SET = ROOT / "resources" / "eval" / "burst"
SEED = 900            # the burst's songs: a seed no other set uses (train 1, val 2, on-the-fly 100)
TIMING_S = 240.0      # the song the engine is timed on


# --- songs rendered by worker processes into a pool --------------------------------------------

def _render(index: int, seed: int, max_song_s: float) -> tuple[str, int, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One song, all in code: (id, n_samples, stems as float16, labels)."""
    from training.datasets.make_data import render_labelled_song, song_id, song_seed
    from training.synthesis import render

    rendered, lab = render_labelled_song(song_seed(seed, index), render.CodeRenderer(), max_song_s,
                                         synth_share=1.0, code_voice_share=1.0)
    stems = {s: x.astype(np.float16) for s, x in rendered.stems.items()}
    return song_id(index), int(rendered.n_samples), stems, lab


class SongPool(ExcerptSource):
    """Excerpts from songs that worker processes keep rendering. The songs are kept as float16 tensors on
    the training device (a GPU holds tens of hours) and batches are cut, remixed, gained and summed
    there, so the cores only render; the oldest songs leave when the pool holds more than max_bytes."""

    def __init__(self, cfg: TrainConfig, workers: int, device: Any = "cpu", seed: int = SEED,
                 max_song_s: float = 60.0, max_bytes: float = 8e9) -> None:
        import torch

        if cfg.low_shelf_prob > 0:
            raise TrainingError("the GPU burst does not apply low_shelf_prob yet; train with it on the CPU path "
                                "(stemlab train) or set it to 0")
        super().__init__([], cfg, allow_empty=True)
        self.device = torch.device(device)
        self.seed, self.max_song_s, self.max_bytes = seed, max_song_s, max_bytes
        self.audio: list[Any] = []                 # per song: (S, 2, n) float16 tensor on self.device
        self.song_labels: list[np.ndarray] = []    # per song: (S, T) float32 activity labels
        # spawned, not forked: the parent may hold CUDA and OpenMP state a fork must not copy
        self._pool = mp.get_context("spawn").Pool(max(1, workers), initializer=_quiet_worker)
        self._pending: list[Any] = []
        self._next = 0
        self._bytes = 0
        self.rendered = 0
        self.rendered_s = 0.0
        self.failed = 0
        for _ in range(2 * max(1, workers)):
            self._submit()

    def _submit(self) -> None:
        self._pending.append(self._pool.apply_async(_render, (self._next, self.seed, self.max_song_s)))
        self._next += 1

    def refresh(self) -> int:
        """Take in the songs finished since the last call; returns how many came."""
        import torch

        done = [r for r in self._pending if r.ready()]
        if not done:
            return 0
        self._pending = [r for r in self._pending if not r.ready()]
        for r in done:
            self._submit()
            try:
                song_id, n, stems, lab = r.get()
            except Exception as exc:  # noqa: BLE001 - a song that fails to render costs only itself
                self.failed += 1
                print(f"burst: a song failed to render ({type(exc).__name__}: {exc})", file=sys.stderr)
                continue
            self.rendered += 1
            self.rendered_s += n / self.cfg.sample_rate
            if n <= self.cfg.excerpt_samples:
                continue
            audio = torch.zeros((len(self.sources), 2, n), dtype=torch.float16)
            for j, s in enumerate(self.sources):
                if s in stems:
                    audio[j] = torch.from_numpy(stems[s])
            self.audio.append(audio.to(self.device))
            self.song_labels.append(np.asarray(activity_labels(lab, self.cfg.activity_labels), dtype=np.float32))
            self.songs.append((None, LiveSong(song_id, n, tuple(s for s in self.sources if s in stems),
                                              tuple(self.sources), {}, {})))
            self._bytes += audio.numel() * 2
        while self._bytes > self.max_bytes and len(self.songs) > 1:
            self._bytes -= self.audio.pop(0).numel() * 2
            self.song_labels.pop(0)
            self.songs.pop(0)
        self._index()
        return len(done)

    def wait_for(self, n_songs: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.songs) < n_songs:
            if time.monotonic() > deadline:
                raise TrainingError(f"only {len(self.songs)} songs were rendered in {timeout_s:.0f} s")
            time.sleep(0.2)
            self.refresh()

    def _plan(self, rng: np.random.Generator, source: Optional[int]) -> tuple[list[tuple[int, int]], np.ndarray,
                                                                                np.ndarray, np.ndarray]:
        """One item's recipe, as ExcerptSource.item draws it: (song, start) per source, gains, swaps, known."""
        cfg, n_src = self.cfg, len(self.sources)
        pool = self.full if source is None else self.by_source[source]
        if not pool:
            raise TrainingError("the song pool is empty")
        song = pool[int(rng.integers(len(pool)))]
        start = self.random_start(self.songs[song][1], rng)
        parts = []
        for _ in range(n_src):
            if source is None and rng.random() < cfg.remix_prob:
                other = self.full[int(rng.integers(len(self.full)))]
                parts.append((other, self.random_start(self.songs[other][1], rng)))
            else:
                parts.append((song, start))
        if source is None:
            gains = 10.0 ** (rng.uniform(self.gain_low_db, cfg.gain_db) / 20.0)  # quiet_sources reach lower
            swaps = rng.random(n_src) < cfg.swap_prob
            known = np.ones(n_src, dtype=bool)
        else:
            gains = np.full(n_src, 10.0 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20.0))
            swaps = np.full(n_src, rng.random() < cfg.swap_prob)
            known = np.arange(n_src) == source
        return parts, gains, swaps, known

    def _assemble(self, plans: list[tuple[list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]]) -> tuple:
        import torch

        cfg, n_src = self.cfg, len(self.sources)
        n, hop = cfg.excerpt_samples, cfg.hop_length
        n_frames = n // hop + 1
        b = len(plans)
        stems = torch.zeros((b, n_src, 2, n), dtype=torch.float32, device=self.device)
        labels = np.zeros((b, n_src, n_frames), dtype=np.float32)
        for i, (parts, _, _, _) in enumerate(plans):
            for j, (song, start) in enumerate(parts):
                seg = self.audio[song][j, :, start:start + n]
                stems[i, j, :, :seg.shape[1]] = seg
                lab = self.song_labels[song][j, start // hop:start // hop + n_frames]
                labels[i, j, :lab.shape[0]] = lab
        gains = torch.as_tensor(np.stack([p[1] for p in plans]), dtype=torch.float32, device=self.device)
        swaps = torch.as_tensor(np.stack([p[2] for p in plans]), device=self.device)
        known = np.stack([p[3] for p in plans])
        stems *= gains[:, :, None, None]
        stems = torch.where(swaps[:, :, None, None], stems.flip(2), stems)
        mixture = stems.sum(dim=1)  # an interleaved item's mixture holds every stem; only its own is known
        stems *= torch.as_tensor(known, device=self.device)[:, :, None, None]
        peak = mixture.abs().amax(dim=(1, 2)).clamp_min(1.0)  # under full scale, as a real file would be
        mixture /= peak[:, None, None]
        stems /= peak[:, None, None, None]
        return mixture, stems, torch.from_numpy(labels), torch.from_numpy(known)

    def item(self, rng: np.random.Generator, source: Optional[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mixture, stems, labels, known = self._assemble([self._plan(rng, source)])
        return mixture[0].cpu().numpy(), stems[0].cpu().numpy(), labels[0].numpy(), known[0].numpy()

    def batch(self, step: int, source: Optional[int], shard: Optional[range] = None) -> Batch:
        self.refresh()
        shard = range(self.cfg.batch_size) if shard is None else shard
        plans = [self._plan(np.random.default_rng([self.cfg.seed, step, k]), source) for k in shard]
        mixture, stems, labels, known = self._assemble(plans)
        return Batch(mixture=mixture, stems=stems, activity=labels, known=known, step=step, source=source)

    def mixtures(self, seconds: float) -> np.ndarray:
        """(2, n) the pool's songs, mixed and joined end to end, `seconds` long (repeated if need be)."""
        parts, total = [], 0
        want = int(seconds * self.cfg.sample_rate)
        while total < want and self.audio:
            for audio in self.audio:
                mix = audio.float().sum(dim=0).cpu().numpy()
                parts.append(mix)
                total += mix.shape[1]
                if total >= want:
                    break
        return np.concatenate(parts, axis=1)[:, :want]

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


def _quiet_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer stops the burst; workers just end
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# --- the carried evaluation set ----------------------------------------------------------------

def make_eval_set(source: Path, out: Path, n_songs: int = 5, seconds: float = 6.0) -> Path:
    """The middle `seconds` of n_songs songs spread evenly over a set, written as a set of its own."""
    from training.datasets.dataset import MultitrackDataset, write_manifest, write_song_folder

    ds = MultitrackDataset(source)
    origin = source.resolve().relative_to(ROOT).as_posix() if source.resolve().is_relative_to(ROOT) else source.name
    if out.exists():
        raise TrainingError(f"{out} exists; remove it to make the set again")
    stride = max(1, len(ds.songs) // max(1, n_songs))
    for e in ds.songs[::stride][:n_songs]:
        start = max(0.0, (e.n_samples / ds.sample_rate - seconds) / 2)
        ex = ds.load_excerpt(e, start, seconds)
        f0 = int(round(start * ds.sample_rate / ds.config.hop_length))
        lab = {k: (v[..., f0:f0 + ex.n_samples // ds.config.hop_length + 1] if v.ndim == 2 else v)
               for k, v in ds.labels(e).items()}
        write_song_folder(out / "songs" / e.song_id, ex.stems, lab, ds.sources, ds.sample_rate,
                          {"from": origin, "song": e.song_id, "start_s": round(start, 3)})
    write_manifest(out, {"from": origin, "excerpt_s": seconds})
    return out


# --- the burst ---------------------------------------------------------------------------------

def _say(text: str) -> None:
    print(f"burst: {text}", flush=True)


def run_burst(out: Path, minutes: float, device: str = "auto", workers: int = 0, batch_size: int = 0,
              state: Optional[Path] = STATE, eval_set: Path = EVAL_SET, timing_s: float = TIMING_S,
              max_song_s: float = 60.0, pool_gb: float = 0.0) -> dict[str, Any]:
    import torch

    from engine.device import pick_device
    from training.evaluation.evaluate import evaluate
    from training.run import resume_pack as slim
    from training.run.export_model import export_run
    from training.run.trainer import CHECKPOINT, EMA, Trainer

    t_start = time.perf_counter()
    dev = pick_device(device)
    cores = os.cpu_count() or 1
    workers = workers or max(1, cores - 2 if dev.type == "cuda" else cores - 1)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stemlab-burst-"))
    run_dir = work / "run"
    report: dict[str, Any] = {"device": str(dev), "cores": cores, "workers": workers, "minutes": minutes}
    if dev.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(dev)
        torch.backends.cudnn.benchmark = True  # one input shape throughout: let cuDNN pick its kernels
    pool = None
    try:
        if state is not None and state.exists():
            slim.unpack(state, run_dir)
            cfg = TrainConfig.load(run_dir / "config.json")
            report["resumed_from"] = str(state)
        else:
            cfg = TrainConfig.load(CONFIG)
            report["resumed_from"] = None
        before = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True) if report["resumed_from"] \
            else None
        cfg.out_dir, cfg.train_sets, cfg.val_set, cfg.fly_songs = str(run_dir), [], None, 0
        cfg.device, cfg.num_workers = dev.type, 0
        cfg.batch_size = batch_size or (32 if dev.type == "cuda" else cfg.batch_size)
        cfg.epoch_steps = 2000
        cfg.name = "iass-burst"
        elapsed0 = float(before["elapsed_s"]) if before else 0.0
        cfg.max_minutes = elapsed0 / 60.0 + minutes
        if before is not None:
            torch.save({"model": before["model"], "config": before["config"], "step": before["step"]},
                       work / "start.pt")
        pool = SongPool(cfg, workers, dev, max_song_s=max_song_s,
                        max_bytes=(pool_gb or (60.0 if dev.type == "cuda" else 1.0)) * 1e9)
        t0 = time.perf_counter()
        pool.wait_for(max(4, 2 * workers), timeout_s=600)  # a few dozen songs on a GPU machine: ~15 s
        report["first_songs_s"] = round(time.perf_counter() - t0, 1)
        _say(f"{len(pool.songs)} songs ready after {report['first_songs_s']} s; training {minutes:g} min on {dev}")
        trainer = Trainer(cfg, resume=report["resumed_from"] is not None, progress=False)
        step0 = trainer.step
        t_train = time.perf_counter()
        result = trainer.run(source=pool)
        train_wall = time.perf_counter() - t_train
        steps = result["step"] - step0
        report.update({"start_step": step0, "end_step": result["step"], "steps": steps,
                       "train_wall_s": round(train_wall, 1), "steps_per_s": round(steps / max(train_wall, 1e-9), 3),
                       "batch_size": cfg.batch_size, "precision": trainer.precision,
                       "audio_h_trained": round(steps * cfg.batch_size * cfg.excerpt_samples / cfg.sample_rate / 3600, 2),
                       "songs_rendered": pool.rendered, "songs_h_rendered": round(pool.rendered_s / 3600, 2),
                       "songs_failed": pool.failed})
        _say(f"trained steps {step0}-{result['step']} ({report['steps_per_s']} steps/s); "
             f"{pool.rendered} songs rendered")
        timing_mix = pool.mixtures(timing_s)
        pool.close()
        pool = None

        # evaluation: the starting weights and the weight average, on the carried set
        evals: dict[str, Any] = {}
        if eval_set.exists():
            candidates = {"start": work / "start.pt"} if before is not None else {}
            candidates["ema"] = run_dir / EMA if (run_dir / EMA).exists() else run_dir / CHECKPOINT
            for name, path in candidates.items():
                r = evaluate(str(path), str(eval_set), progress=False)
                evals[name] = {m: r["sdr"][m] for m in ("gated", "ungated", "mixture", "oracle_irm")}
                evals[name]["activity"] = r["activity"]
                _say(f"{name}: gated mean SDR {r['sdr']['gated']['mean']:.2f} dB on {eval_set.name}")
        report["eval"] = evals
        metrics = work / "metrics.json"
        metrics.write_text(json.dumps({"burst_eval": evals.get("ema", {})}, default=float))
        card = export_run(run_dir, out / "iass-burst.json", name="iass-burst",
                          checkpoint="ema.pt" if (run_dir / EMA).exists() else "checkpoint.pt",
                          metrics_file=metrics)
        report["card_sha256"] = card.sha256

        # the engine on a 4-minute song, as users run it
        report["timing"] = time_engine(out / "iass-burst.json", timing_mix, dev.type)
        _say(f"engine: {report['timing']['seconds']} s for {timing_s:g} s of music on {dev} "
             f"({report['timing']['realtime_factor']}x real time)")

        packed = slim.pack(run_dir, work / "resume.pt")
        for p in (packed, slim.lo_path(packed), slim.ema_path(packed)):
            if p.exists():
                shutil.copy(p, out / p.name)
        shutil.copy(run_dir / "log.jsonl", out / "log.jsonl")
    finally:
        if pool is not None:
            pool.close()
        shutil.rmtree(work, ignore_errors=True)
    report["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "report.md").write_text(report_markdown(report))
    return report


def time_engine(card: Path, mixture: np.ndarray, device: str) -> dict[str, Any]:
    """Seconds the engine takes to separate `mixture` (2, n) on the device: a first call, then a second."""
    from engine.separator import Separator

    sep = Separator.load(card, device=device)
    times = []
    for _ in range(2):
        t = time.perf_counter()
        sep.separate(np.ascontiguousarray(mixture, dtype=np.float32), sep.sample_rate, keep_for_regate=False)
        if device == "cuda":
            import torch

            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    seconds = mixture.shape[1] / sep.sample_rate
    return {"song_s": round(seconds, 1), "first_s": round(times[0], 2), "seconds": round(times[1], 2),
            "realtime_factor": round(seconds / times[1], 1)}


def report_markdown(r: dict[str, Any]) -> str:
    lines = [f"# Training burst on {r.get('gpu', r['device'])}", "",
             f"- {r['cores']} cores, {r['workers']} rendering songs; resumed from {r['resumed_from']}",
             f"- steps {r.get('start_step')}-{r.get('end_step')} ({r.get('steps')} steps, batch {r.get('batch_size')}, "
             f"{r.get('precision')}) in {r.get('train_wall_s')} s: {r.get('steps_per_s')} steps/s, "
             f"{r.get('audio_h_trained')} h of audio trained",
             f"- songs: {r.get('songs_rendered')} rendered ({r.get('songs_h_rendered')} h), first ones after "
             f"{r.get('first_songs_s')} s, {r.get('songs_failed')} failed"]
    t = r.get("timing")
    if t:
        lines.append(f"- engine: a {t['song_s']} s song separated in {t['seconds']} s ({t['realtime_factor']}x "
                     f"real time; first call {t['first_s']} s)")
    evals = r.get("eval", {})
    if evals:
        sources = list(next(iter(evals.values()))["gated"]["per_source"])
        lines += ["", "| weights | " + " | ".join(sources) + " | mean |", "|---" * (len(sources) + 2) + "|"]
        for k, (name, e) in enumerate(evals.items()):
            for m in ("gated", "ungated") + (("mixture", "oracle_irm") if k == len(evals) - 1 else ()):
                per = e[m]["per_source"]
                cells = " | ".join("" if per[s] is None else f"{per[s]:.2f}" for s in sources)
                mean = e[m]["mean"]
                label = f"{name} {m}" if m in ("gated", "ungated") else m.replace("_", " ")
                lines.append(f"| {label} | {cells} | {'' if mean is None else f'{mean:.2f}'} |")
    lines.append(f"\nTotal wall time {r['total_wall_s']} s.")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    from engine.errors import StemLabError

    ap = argparse.ArgumentParser(prog="python -m training.run.burst", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("run", help="train for a budget, evaluate, time, and write the files to bring home")
    b.add_argument("out", type=Path)
    b.add_argument("--minutes", type=float, required=True, help="training time (wall clock)")
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    b.add_argument("--workers", type=int, default=0,
                   help="song-rendering processes (default: the cores less 2 with a GPU, less 1 without)")
    b.add_argument("--batch-size", type=int, default=0, help="default 32 on a GPU, the run's own on a CPU")
    b.add_argument("--fresh", action="store_true", help="start from scratch, not from the committed state")
    b.add_argument("--timing-s", type=float, default=TIMING_S)
    b.add_argument("--max-song-s", type=float, default=60.0)
    e = sub.add_parser("eval-set", help="cut the small evaluation set the burst carries")
    e.add_argument("--from", dest="source", type=Path, default=ROOT / "data" / "benchmark")
    e.add_argument("--out", type=Path, default=EVAL_SET)
    e.add_argument("--songs", type=int, default=5)
    e.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "eval-set":
            print(make_eval_set(args.source, args.out, args.songs, args.seconds))
            return 0
        if not (math.isfinite(args.minutes) and 0 < args.minutes <= 24 * 60):
            raise TrainingError(f"--minutes must be above 0 and at most a day, not {args.minutes}")
        r = run_burst(args.out, args.minutes, args.device, args.workers, args.batch_size,
                      None if args.fresh else STATE, timing_s=args.timing_s, max_song_s=args.max_song_s)
    except (StemLabError, OSError) as exc:
        print(f"burst: {exc}", file=sys.stderr)
        return 2
    print(report_markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
