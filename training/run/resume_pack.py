"""Pack a run's last checkpoint small enough to commit (and to bring home from a machine that returns
files of at most 16 MiB), and unpack it to resume on a fresh machine.

    python -m training.run.resume_pack pack runs/iass-main resources/training/iass-main.resume.pt
    python -m training.run.resume_pack unpack resources/training/iass-main.resume.pt runs/iass-main

A pack is up to three files, each about half the size of the float32 weights:
  PACKED      the top 16 bits of every float32 weight (a bfloat16, usable as it is); Adam's second moments
              factored as Adafactor keeps them (a mean per row and per column of each matrix, vectors
              exact); the rest of the checkpoint (step, schedule, history, energies, config, fingerprints)
  PACKED.lo   the bottom 16 bits of every float32 weight: with it the weights come back bit for bit;
              without it, cut to bfloat16.
  PACKED.ema  the weights' moving average (ema_decay) as its difference from the weights, in bfloat16:
              the difference is small, so the average comes back within 1/256 of that difference
              (some 1e-6 of a weight); without this file the resumed run starts the average again from
              the weights, as packs before it did.
Adam's first moments are not kept (momentum, beta1 = 0.9, rebuilds within some twenty steps). Each file
stays under 16 MiB for the 6.4 M-weight model, what a device machine returns. Packs of the first format
(one file: float32 weights, bfloat16 moments) still unpack.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from training.run.checkpoints import digest_path
from training.run.trainer import CHECKPOINT, atomic_torch_save, load_checkpoint_file

FORMAT = 2


def lo_path(packed: Path) -> Path:
    return packed.with_name(packed.name + ".lo")


def ema_path(packed: Path) -> Path:
    return packed.with_name(packed.name + ".ema")


def _split(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A float32 tensor's top and bottom 16 bits: (bfloat16 high part, int16 low part), exact together;
    any other tensor as it is, with no low part."""
    if w.dtype != torch.float32:
        return w, None
    bits = w.contiguous().view(torch.int32)
    hi = (bits >> 16).to(torch.int16).view(torch.bfloat16)
    lo = bits & 0xFFFF
    return hi, torch.where(lo >= 32768, lo - 65536, lo).to(torch.int16)


def _join(hi: torch.Tensor, lo: torch.Tensor | None) -> torch.Tensor:
    if hi.dtype != torch.bfloat16:
        return hi
    if lo is None:  # the high part alone: the weight truncated to bfloat16
        return hi.float()
    return ((hi.view(torch.int16).to(torch.int32) << 16) | (lo.to(torch.int32) & 0xFFFF)).view(torch.float32)


def factor(v: torch.Tensor) -> dict[str, Any]:
    """Adafactor's rank-one summary of a non-negative second moment: exact for vectors and scalars."""
    if v.dim() < 2:
        return {"exact": v.float().clone()}
    m = v.float().reshape(v.shape[0], -1)
    return {"shape": list(v.shape), "row": m.mean(dim=1), "col": m.mean(dim=0), "mean": m.mean()}


def unfactor(f: dict[str, Any]) -> torch.Tensor:
    if "exact" in f:
        return f["exact"].clone()
    mean = f["mean"].clamp_min(1e-30)
    return (torch.outer(f["row"], f["col"]) / mean).reshape(f["shape"])


def pack(run: Path, out: Path) -> Path:
    state = load_checkpoint_file(run / CHECKPOINT, map_location="cpu")
    high: dict[str, torch.Tensor] = {}
    low: dict[str, torch.Tensor] = {}
    for k, w in state["model"].items():
        h, lo = _split(w)
        high[k] = h
        if lo is not None:
            low[k] = lo
    opt = state["optimizer"]
    state["optimizer"] = {
        "param_groups": opt["param_groups"],
        "state": {i: {"step": s["step"], "exp_avg_sq": factor(s["exp_avg_sq"])} for i, s in opt["state"].items()},
    }
    ema = state.get("ema")
    state["model"] = high
    state["ema"] = None
    state["format"] = FORMAT
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(low, lo_path(out))
    if ema is not None:
        atomic_torch_save(ema_delta(ema, {k: _join(high[k], low.get(k)) for k in high}), ema_path(out))
    else:
        for stale in (ema_path(out), digest_path(ema_path(out))):  # another state's average must not come back
            stale.unlink(missing_ok=True)
    atomic_torch_save(state, out)
    return out


def ema_delta(ema: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The moving average as bfloat16 differences from the weights (float entries), other entries as they are."""
    return {k: (e.float() - weights[k].float()).to(torch.bfloat16) if e.dtype.is_floating_point and k in weights
            else e.clone() for k, e in ema.items()}


def ema_from_delta(delta: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: weights[k].float() + d.float() if d.dtype == torch.bfloat16 and k in weights else d
            for k, d in delta.items()}


def unpack(packed: Path, run: Path) -> Path:
    state = load_checkpoint_file(packed, map_location="cpu")
    if state.get("format", 1) >= 2:
        lo = lo_path(packed)
        low = load_checkpoint_file(lo, map_location="cpu") if lo.exists() else {}
        if not lo.exists():
            print(f"slim: {lo} is missing; the weights resume cut to bfloat16")
        state["model"] = {k: _join(w, low.get(k)) for k, w in state["model"].items()}
        ema = ema_path(packed)
        if ema.exists():
            state["ema"] = ema_from_delta(load_checkpoint_file(ema, map_location="cpu"), state["model"])
        opt = state["optimizer"]
        moments = {i: unfactor(s["exp_avg_sq"]) for i, s in opt["state"].items()}
        state["optimizer"] = {"param_groups": opt["param_groups"], "state": {
            i: {"step": s["step"], "exp_avg": torch.zeros_like(moments[i]), "exp_avg_sq": moments[i]}
            for i, s in opt["state"].items()}}
        del state["format"]
    else:  # format 1: float32 weights, bfloat16 moments
        state["optimizer"] = {"param_groups": state["optimizer"]["param_groups"], "state": {
            k: {n: (v.float() if torch.is_tensor(v) and v.dtype.is_floating_point and v.dim() > 0 else v)
                for n, v in s.items()} for k, s in state["optimizer"]["state"].items()}}
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
