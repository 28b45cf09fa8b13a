"""Pack a run's last checkpoint small enough to commit, and unpack it to resume on a fresh machine.

The weights stay float32; Adam's moment estimates are stored as bfloat16 (same range, fewer digits),
which halves the file and resumes training without the loss of a fresh optimizer. A moving average of
the weights (ema_decay) is not packed: the resumed run starts it again from the weights.

    python -m training.slim pack runs/iass-main resources/training/iass-main.resume.pt
    python -m training.slim unpack resources/training/iass-main.resume.pt runs/iass-main
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from training.trainer import CHECKPOINT, atomic_torch_save


def _convert_optimizer(opt: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    state = {k: {name: (v.to(dtype) if torch.is_tensor(v) and v.dtype.is_floating_point and v.dim() > 0 else v)
                 for name, v in s.items()} for k, s in opt["state"].items()}
    return {"state": state, "param_groups": opt["param_groups"]}


def pack(run: Path, out: Path) -> Path:
    state = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=True)
    state["optimizer"] = _convert_optimizer(state["optimizer"], torch.bfloat16)
    # The weights' moving average would add half again to the file; a resumed run starts it afresh from
    # the weights, and with decay 0.998 the fresh start is forgotten within a thousand steps.
    state["ema"] = None
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state, out)
    return out


def unpack(packed: Path, run: Path) -> Path:
    state = torch.load(packed, map_location="cpu", weights_only=True)
    state["optimizer"] = _convert_optimizer(state["optimizer"], torch.float32)
    run.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state, run / CHECKPOINT)
    (run / "config.json").write_text(json.dumps(state["config"], indent=2) + "\n")
    return run / CHECKPOINT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("run", type=Path)
    p.add_argument("out", type=Path)
    u = sub.add_parser("unpack")
    u.add_argument("packed", type=Path)
    u.add_argument("run", type=Path)
    args = ap.parse_args()
    print(pack(args.run, args.out) if args.cmd == "pack" else unpack(args.packed, args.run))


if __name__ == "__main__":
    main()
