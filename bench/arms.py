"""Comparisons of training choices (issue 11, item 4): arms that differ in one choice, two seeds or more
each, then scored on the benchmark by bench/campaign.py. Two kinds:

    # from a shared start, at equal steps
    python bench/arms.py --base runs/iass-main --steps 600 --prefix ab-gen3 --seeds 1 2 \\
        --arm "v2=--train-sets data/train" --arm "v3=--train-sets data/train-v3" [--parallel 2]
    # from scratch, at equal CPU time (arms whose steps cost differently, or choices a resumed run dilutes)
    python bench/arms.py --config training/configs/iass_main.json --cpu-hours 2 --prefix gen4 --seeds 1 \\
        --arm "v3=--train-sets data/train" --arm "v4=--train-sets data/train-v4"

With --base each arm and seed trains in runs/PREFIX-ARM-sSEED from a copy of BASE's checkpoint.pt, with
BASE's config and the arm's flags (any `stemlab train` flag); with --config it starts fresh from that
config and stops when the training process has used CPU_HOURS of CPU time (`max_cpu_hours`, counted
over resumes). Either way: one torch thread, nice 10, through scripts/train.sh (tcmalloc, passive
OpenMP), PARALLEL at a time. A folder that already holds a checkpoint resumes, so an interrupted
comparison goes on where it stopped. Steps or CPU seconds, not wall time, are equal: the machine is
shared. At the end it prints the campaign command that scores every arm's weight average.
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


def _state(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True)


def step_of(checkpoint: Path) -> int:
    return int(_state(checkpoint)["step"]) if checkpoint.exists() else 0


def cpu_hours_of(checkpoint: Path) -> float:
    return float(_state(checkpoint).get("cpu_s", 0.0)) / 3600 if checkpoint.exists() else 0.0


def prepare(base: Path, out: Path) -> None:
    """A copy of the base run's checkpoint and config in a fresh arm folder (kept if it already trains)."""
    if (out / "checkpoint.pt").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoint.pt", "checkpoint.pt.sha256", "config.json"):
        if (base / name).exists():
            shutil.copy(base / name, out / name)


def command(config: Path, out: Path, seed: int, budget: list[str], flags: list[str]) -> list[str]:
    return ["nice", "-n", "10", "bash", str(ROOT / "scripts" / "train.sh"), str(config),
            "--out-dir", str(out), "--name", out.name, "--seed", str(seed), "--threads", "1", *budget,
            "--quiet", *flags]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    start_from = ap.add_mutually_exclusive_group(required=True)
    start_from.add_argument("--base", type=Path, help="run folder holding checkpoint.pt and config.json")
    start_from.add_argument("--config", type=Path, help="a training config: every arm starts from scratch")
    ap.add_argument("--steps", type=int, help="with --base: steps every arm trains past the base's step")
    ap.add_argument("--cpu-hours", type=float, help="with --config: CPU time every arm trains for")
    ap.add_argument("--prefix", required=True, help="arm folders are runs/PREFIX-ARM-sSEED")
    ap.add_argument("--arm", action="append", required=True, metavar="NAME=FLAGS",
                    help="an arm: its name and the `stemlab train` flags that make it (repeatable)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args(argv)
    if args.base is not None and (args.steps is None or args.cpu_hours is not None):
        print("arms: --base takes --steps (equal steps from its checkpoint), not --cpu-hours", file=sys.stderr)
        return 2
    if args.config is not None and (args.cpu_hours is None or args.cpu_hours <= 0 or args.steps is not None):
        print("arms: --config takes --cpu-hours H > 0 (equal CPU time from scratch), not --steps", file=sys.stderr)
        return 2
    if args.base is not None and (not (args.base / "checkpoint.pt").exists() or not (args.base / "config.json").exists()):
        print(f"arms: {args.base} holds no checkpoint.pt and config.json", file=sys.stderr)
        return 2
    if args.config is not None and not args.config.is_file():
        print(f"arms: no config file {args.config}", file=sys.stderr)
        return 2
    arms: list[tuple[str, list[str]]] = []
    for spec in args.arm:
        name, sep, flags = spec.partition("=")
        if not sep or not name.strip():
            print(f"arms: --arm {spec!r} is not NAME=FLAGS", file=sys.stderr)
            return 2
        arms.append((name.strip(), shlex.split(flags)))
    if args.base is not None:
        start = step_of(args.base / "checkpoint.pt")
        target = start + args.steps
        config, budget = args.base / "config.json", ["--max-steps", str(target)]
        print(f"arms: {len(arms) * len(args.seeds)} runs from step {start} to {target}, {args.parallel} at a time")
    else:
        config, budget = args.config, ["--max-cpu-hours", str(args.cpu_hours)]
        print(f"arms: {len(arms) * len(args.seeds)} runs from scratch for {args.cpu_hours:g} CPU-hours each, "
              f"{args.parallel} at a time")

    def finished(out: Path) -> bool:  # the budget reached (a stop inside it is a failure)
        if args.base is not None:
            return step_of(out / "checkpoint.pt") >= target
        return cpu_hours_of(out / "checkpoint.pt") >= args.cpu_hours

    jobs = []
    for name, flags in arms:
        for seed in args.seeds:
            out = ROOT / "runs" / f"{args.prefix}-{name}-s{seed}"
            if args.base is not None:
                prepare(args.base, out)
            else:
                out.mkdir(parents=True, exist_ok=True)
            jobs.append((f"{name}-s{seed}", out, command(config, out, seed, budget, flags)))
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
            ok = proc.returncode == 0 and finished(out)
            print(f"arms: {label}: {'done' if ok else 'FAILED'} at step {s1} ({rate:.2f} s a step, shared)", flush=True)
            if not ok:
                failed.append(label)
    steps = {label: step_of(out / "checkpoint.pt") for label, out, _ in jobs}  # one read of each checkpoint
    summary = {"base": str(args.base) if args.base else None, "config": str(args.config) if args.config else None,
               "budget": budget, "arms": {name: flags for name, flags in arms}, "seeds": args.seeds,
               "steps": steps, "failed": failed}
    (ROOT / "runs" / f"{args.prefix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    models = " ".join(f"--model {args.prefix}-{label}-ema-{step}=runs/{args.prefix}-{label}/ema.pt"
                      for label, step in steps.items())
    print(f"arms: score them with\n  python bench/campaign.py {models} --sets data/benchmark --section {args.prefix} --write")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
