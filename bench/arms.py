"""Comparisons at equal steps (issue 11, item 4): arms that differ in one training choice, each trained from
the same starting checkpoint for the same number of steps, with two seeds or more, then scored on the
benchmark by bench/campaign.py.

    python bench/arms.py --base runs/iass-main --steps 600 --prefix ab-gen3 --seeds 1 2 \\
        --arm "v2=--train-sets data/train" --arm "v3=--train-sets data/train-v3" [--parallel 2]

Each arm and seed trains in runs/PREFIX-ARM-sSEED from a copy of BASE's checkpoint.pt, with BASE's config
and the arm's flags (any `stemlab train` flag), one torch thread, at nice 10, through scripts/train.sh
(tcmalloc, passive OpenMP), PARALLEL at a time. A folder that already holds a checkpoint resumes, so an
interrupted comparison goes on where it stopped. Steps, not wall time, are equal: the machine is shared.
At the end it prints the campaign command that scores every arm's weight average.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step_of(checkpoint: Path) -> int:
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["step"])


def prepare(base: Path, out: Path) -> None:
    """A copy of the base run's checkpoint and config in a fresh arm folder (kept if it already trains)."""
    if (out / "checkpoint.pt").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoint.pt", "checkpoint.pt.sha256", "config.json"):
        if (base / name).exists():
            shutil.copy(base / name, out / name)


def command(base: Path, out: Path, seed: int, target: int, flags: list[str]) -> list[str]:
    return ["nice", "-n", "10", "bash", str(ROOT / "scripts" / "train.sh"), str(base / "config.json"),
            "--out-dir", str(out), "--seed", str(seed), "--threads", "1", "--max-steps", str(target),
            "--quiet", *flags]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="run folder holding checkpoint.pt and config.json")
    ap.add_argument("--steps", type=int, required=True, help="steps every arm trains past the base's step")
    ap.add_argument("--prefix", required=True, help="arm folders are runs/PREFIX-ARM-sSEED")
    ap.add_argument("--arm", action="append", required=True, metavar="NAME=FLAGS",
                    help="an arm: its name and the `stemlab train` flags that make it (repeatable)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.base / "checkpoint.pt").exists() or not (args.base / "config.json").exists():
        print(f"arms: {args.base} holds no checkpoint.pt and config.json", file=sys.stderr)
        return 2
    arms: list[tuple[str, list[str]]] = []
    for spec in args.arm:
        name, sep, flags = spec.partition("=")
        if not sep or not name.strip():
            print(f"arms: --arm {spec!r} is not NAME=FLAGS", file=sys.stderr)
            return 2
        arms.append((name.strip(), shlex.split(flags)))
    start = step_of(args.base / "checkpoint.pt")
    target = start + args.steps
    jobs = []
    for name, flags in arms:
        for seed in args.seeds:
            out = ROOT / "runs" / f"{args.prefix}-{name}-s{seed}"
            prepare(args.base, out)
            jobs.append((f"{name}-s{seed}", out, command(args.base, out, seed, target, flags)))
    print(f"arms: {len(jobs)} runs from step {start} to {target}, {args.parallel} at a time")
    running: list[tuple[str, Path, subprocess.Popen, float, int]] = []
    failed = []
    pending = list(jobs)
    while pending or running:
        while pending and len(running) < args.parallel:
            label, out, cmd = pending.pop(0)
            print(f"arms: {label}: {shlex.join(cmd)}", flush=True)
            with open(out / "arm.log", "a") as log:  # the child keeps its own copy of the file
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            running.append((label, out, proc, time.time(), step_of(out / "checkpoint.pt")))
        time.sleep(5)
        for item in list(running):
            label, out, proc, t0, s0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            s1 = step_of(out / "checkpoint.pt")
            rate = (time.time() - t0) / max(s1 - s0, 1)
            ok = proc.returncode == 0 and s1 >= target
            print(f"arms: {label}: {'done' if ok else 'FAILED'} at step {s1} ({rate:.2f} s a step, shared)", flush=True)
            if not ok:
                failed.append(label)
    summary = {"base": str(args.base), "start_step": start, "target_step": target,
               "arms": {name: flags for name, flags in arms}, "seeds": args.seeds, "failed": failed}
    (ROOT / "runs" / f"{args.prefix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    models = " ".join(f"--model {args.prefix}-{label}-ema-{target}=runs/{args.prefix}-{label}/ema.pt"
                      for label, _, _ in jobs)
    print(f"arms: score them with\n  python bench/campaign.py {models} --sets data/benchmark --section {args.prefix} --write")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
