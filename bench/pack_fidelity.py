"""What packing a run costs it: resume from the full checkpoint, from the pack (float16 weights + their
float16 remainder, factored second moments, no first moments) and from the pack without its .lo file,
train the same N steps on the same batches, and compare the losses and where the weights end up.

    python bench/pack_fidelity.py [--run runs/iass-main] [--steps 40] [--write]

Needs the run's checkpoint.pt and its training set; writes nothing into the run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, write_section  # noqa: E402


def train_from(run: Path, steps: int) -> tuple[list[float], dict[str, torch.Tensor], int, dict[str, torch.Tensor]]:
    from training.run.batches import make_source
    from training.run.config import TrainConfig
    from training.run.trainer import Trainer

    cfg = TrainConfig.load(run / "config.json")
    cfg.out_dir, cfg.val_set, cfg.ema_decay = str(run), None, 0.0
    trainer = Trainer(cfg, resume=True, progress=False)
    if trainer.energies is None:
        trainer.energies = [1.0] * len(cfg.sources)
    start = trainer.step
    w0 = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    it = trainer.batches(make_source(cfg))
    losses = []
    for _ in range(steps):
        sep, act, cnt, w = trainer.train_step(next(it))
        losses.append(float((w * (sep + cfg.activity_weight * act)).sum()))
    shutdown = getattr(it, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()
    return losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, start, w0


def main() -> int:
    from training.run.resume_pack import lo_path, pack, unpack

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/iass-main")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    run = ROOT / args.run
    tmp = Path(tempfile.mkdtemp(prefix="pack-fidelity-"))
    try:
        full = tmp / "full"
        full.mkdir()
        for name in ("checkpoint.pt", "checkpoint.pt.sha256", "config.json"):
            shutil.copy(run / name, full / name)
        packed = pack(full, tmp / "packed.pt")
        sizes = (packed.stat().st_size, lo_path(packed).stat().st_size, (run / "checkpoint.pt").stat().st_size)
        unpack(packed, tmp / "pack")
        lo_path(packed).rename(tmp / "hidden.lo")
        unpack(packed, tmp / "no-lo")
        results = {name: train_from(tmp / name, args.steps) for name in ("full", "pack", "no-lo")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref_losses, ref_w, start, ref_w0 = results["full"]

    def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        keys = [k for k in a if a[k].dtype.is_floating_point]
        num = sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in keys)
        return (num / sum(float(b[k].float().pow(2).sum()) for k in keys)) ** 0.5

    moved = distance(ref_w, ref_w0)
    rows = ["| resumed from | mean loss, steps 1-5 | mean loss, all steps | against the full checkpoint | "
            "weights after: distance to the full run's (relative) |", "| --- | --- | --- | --- | --- |"]
    for name, (losses, w, _, _) in results.items():
        rel = np.mean(losses) / np.mean(ref_losses) - 1
        rows.append(f"| {name} | {np.mean(losses[:5]):.4f} | {np.mean(losses):.4f} | {100 * rel:+.2f} % | "
                    f"{distance(w, ref_w):.2e} |")
        print(name, json.dumps({"losses": [round(x, 4) for x in losses]}), flush=True)
    text = (f"## What packing the long run costs (issue 15)\n\nMachine: {machine()}. The run `{args.run}` at step "
            f"{start}, resumed three ways and trained {args.steps} steps on the same batches. Pack sizes: "
            f"{sizes[0] / 1e6:.1f} MB + {sizes[1] / 1e6:.1f} MB (.lo) against {sizes[2] / 1e6:.1f} MB for the "
            f"full checkpoint. In those steps the full run's weights moved {moved:.2e} (relative).\n\n" +
            "\n".join(rows) +
            f"\n\nCommand: `python bench/pack_fidelity.py --run {args.run} --steps {args.steps} --write`")
    print(text)
    if args.write:
        write_section("pack-fidelity", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
