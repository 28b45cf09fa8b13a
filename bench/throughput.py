"""Training throughput: seconds of audio trained per hour, for the bundled model's recipe and the speed
options (tcmalloc, bfloat16, channels-last, torch.compile, where the batches are read). Each variant runs
in its own process on the same data, with nothing else on the machine.

    python bench/throughput.py [--steps 40] [--warmup 8] [--only NAME ...] [--write]

"Audio trained" counts the excerpts' seconds (batch x excerpt length) per optimiser step. Wall-clock
figures are for this 2-core machine with both cores given to training; CPU figures add the process's
and its batch loader's CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, write_section  # noqa: E402

TCMALLOC = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4")
BASE = "training/configs/iass_main.json"
# name: (config changes, use tcmalloc)
VARIANTS: dict[str, tuple[dict, bool]] = {
    "fp32, default allocator": ({"precision": "fp32", "channels_last": False}, False),
    "fp32 + tcmalloc": ({"precision": "fp32", "channels_last": False}, True),
    "bundled recipe as trained (bf16, channels-last, tcmalloc)": ({}, True),
    "+ torch.compile": ({"compile": True}, True),
    "+ batches read in the training process": ({"num_workers": 0}, True),
    "+ torch.compile, batch 16": ({"compile": True, "batch_size": 16}, True),
}


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def one(changes: dict, steps: int, warmup: int, out_dir: str) -> dict:
    """Runs in the child process: warm up, then time `steps` optimiser steps including batch reading."""
    from training.run.batches import make_source
    from training.run.config import TrainConfig
    from training.run.trainer import Trainer

    cfg = TrainConfig.load(ROOT / BASE)
    for k, v in changes.items():
        setattr(cfg, k, v)
    cfg.out_dir, cfg.val_set, cfg.weighting = out_dir, None, "unit"  # no energies to estimate, no validation
    trainer = Trainer(cfg, progress=False)
    it = trainer.batches(make_source(cfg))
    for _ in range(warmup):
        trainer.train_step(next(it))
    t0, c0 = time.perf_counter(), _cpu_s()
    for _ in range(steps):
        trainer.train_step(next(it))
    wall = time.perf_counter() - t0
    shutdown = getattr(it, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()  # the loader's CPU time is counted once its process is reaped
    cpu = _cpu_s() - c0
    audio_s = cfg.batch_size * cfg.excerpt_samples / cfg.sample_rate
    return {"step_s": wall / steps, "audio_s_per_step": audio_s, "audio_h_per_wall_h": audio_s * steps / wall,
            "audio_h_per_cpu_h": audio_s * steps / cpu, "cpu_per_wall": cpu / wall, "precision": trainer.precision}


def run_variant(name: str, steps: int, warmup: int) -> dict:
    changes, tcmalloc = VARIANTS[name]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.pop("LD_PRELOAD", None)
    if tcmalloc:
        lib = next((p for p in TCMALLOC if os.path.exists(p)), None)
        if lib is None:
            return {"error": "tcmalloc not installed (Debian libtcmalloc-minimal4)"}
        env["LD_PRELOAD"] = lib
    out_dir = str(ROOT / "runs" / "throughput")
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.throughput import one; "
            f"print('RESULT', json.dumps(one({changes!r}, {steps}, {warmup}, {out_dir!r})))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}


def table(results: dict[str, dict], baseline: str) -> str:
    base = results.get(baseline, {}).get("audio_h_per_wall_h")
    lines = ["| variant | precision | s per step | audio per step | audio trained per hour (wall, 2 cores) | "
             "per CPU-hour | against the bundled recipe |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | | | | {r['error']} | | |")
            continue
        rel = f"{r['audio_h_per_wall_h'] / base:.2f}x" if base else ""
        lines.append(f"| {name} | {r['precision']} | {r['step_s']:.2f} | {r['audio_s_per_step']:.1f} s | "
                     f"{r['audio_h_per_wall_h']:.0f} h | {r['audio_h_per_cpu_h']:.0f} h | {rel} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS), default=None)
    ap.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = ap.parse_args()
    results = {}
    for name in args.only or VARIANTS:
        results[name] = run_variant(name, args.steps, args.warmup)
        print(name, json.dumps(results[name]), flush=True)
    baseline = "bundled recipe as trained (bf16, channels-last, tcmalloc)"
    text = (f"## Training throughput (issue 11)\n\nMachine: {machine()}. Data: `data/train` (FLAC stems read "
            f"per excerpt). Each variant in a fresh process, {args.warmup} warm-up steps (torch.compile compiles "
            f"there), then {args.steps} timed steps; batch {8} x {255 * 512 / 44100:.2f} s unless stated.\n\n"
            f"{table(results, baseline)}\n\nCommand: `python bench/throughput.py --steps {args.steps} "
            f"--warmup {args.warmup} --write`")
    print(text)
    if args.write:
        write_section("throughput", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
