"""Training on several processes (torchrun, gloo) against one process with the same cores: steps per
second per rank and audio trained per hour, for the smoke model and the bundled model's recipe.

    python bench/distributed.py [--steps 30] [--warmup 5] [--write]

Each variant is a real `stemlab train` run (through torchrun for two processes) on `data/train`, with
nothing else on the machine; the figures come from rank 0's log.jsonl (training time between the end of
the warm-up and the last step, batch reading included). The batch is the group's: two ranks each take
half of it, so a step of either variant trains the same audio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, write_section  # noqa: E402

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
MODELS = {  # name: (config, flags)
    "smoke model (depth 3, width 8-32), batch 4 x 0.74 s, fp32": ("training/configs/smoke.json",
                                                                   ["--fly-songs", "0", "--train-sets", "data/train"]),
    "bundled recipe (depth 5, width 16-256), batch 8 x 2.96 s, bf16": ("training/configs/iass_main.json",
                                                                        ["--val-set", "none", "--ema-decay", "0"]),
}
LAYOUTS = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}


def run(config: str, flags: list[str], nproc: int, threads: int, steps: int, warmup: int) -> dict:
    out = ROOT / "runs" / "bench-distributed"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    if os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    cmd = launch + ["-m", "app.cli", "train", "--config", config, *flags, "--out-dir", str(out), "--quiet",
                    "--max-steps", str(warmup + steps), "--log-every", "1", "--threads", str(threads),
                    "--epoch-steps", str(10 ** 6), "--weighting", "unit"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        why = [ln for ln in proc.stderr.splitlines() if "Error" in ln or "stemlab train:" in ln]
        return {"error": (why or ["failed"])[-1].strip()[:200]}
    rows = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if r["kind"] == "step"]
    cfg = json.loads((out / "config.json").read_text())
    t0 = next(r["time_s"] for r in rows if r["step"] == warmup)
    wall = rows[-1]["time_s"] - t0
    audio_s = cfg["batch_size"] * cfg["excerpt_frames"] * cfg["hop_length"] / cfg["sample_rate"]
    shutil.rmtree(out, ignore_errors=True)
    return {"steps_per_s": steps / wall, "step_s": wall / steps, "audio_h_per_h": audio_s * steps / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = ap.parse_args()
    if not (ROOT / "data" / "train").exists():
        print("bench/distributed.py: needs data/train (stemlab make-data --hours 2.5 --out data/train --seed 1)")
        return 2
    lines = ["| model | layout | steps per second (each rank) | s per step | audio trained per hour | "
             "against one process |", "| --- | --- | --- | --- | --- | --- |"]
    for model, (config, flags) in MODELS.items():
        base = None
        for layout, (nproc, threads) in LAYOUTS.items():
            r = run(config, flags, nproc, threads, args.steps, args.warmup)
            print(model, layout, json.dumps(r), flush=True)
            if "error" in r:
                lines.append(f"| {model} | {layout} | {r['error']} | | | |")
                continue
            base = base or r["audio_h_per_h"]
            lines.append(f"| {model} | {layout} | {r['steps_per_s']:.2f} | {r['step_s']:.2f} | "
                         f"{r['audio_h_per_h']:.1f} h | {r['audio_h_per_h'] / base:.2f}x |")
    text = (f"## Training on several processes (issue 15)\n\nMachine: {machine()}. Data: `data/train`; "
            f"{args.warmup} warm-up steps, then {args.steps} timed; the batch is the group's (two ranks take "
            f"half each); tcmalloc, passive OpenMP; nothing else running.\n\n" + "\n".join(lines) +
            f"\n\nCommand: `python bench/distributed.py --steps {args.steps} --warmup {args.warmup} --write`")
    print(text)
    if args.write:
        write_section("distributed", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
