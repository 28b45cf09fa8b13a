"""Average the weights of several checkpoints of one run (a "model soup" of points along it).

    python -m training.run.average runs/soup.pt resources/models/iass.json runs/iass-main/ema-20000.pt
    python -m training.run.average runs/soup.pt A.pt=0.25 B.pt=0.75

Each input is a checkpoint (`checkpoint.pt`, `ema.pt`, `ema-STEP.pt`) or a model card; `=W` gives its
weight (default: equal weights, normalised to sum to 1). Points of one run whose training continued from
each other lie in one basin, so their average is a model too, and often one that holds up better away
from the training data than either end (Wortsman et al., 2022). Batch-norm statistics are averaged with
the weights, as the run's own moving average does. The result is a weights-only checkpoint in the form
`ema.pt` has, with the training config of the first checkpoint among the inputs, which `stemlab evaluate`
and `stemlab export-model` read as they are. Inputs of different shapes are refused, naming the tensor.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import torch

from training.errors import TrainingError
from training.run.checkpoints import atomic_torch_save, load_checkpoint_file


def _weights_of(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict in float32, the checkpoint's other entries; for a model card, its name and steps)."""
    if path.suffix == ".json":
        from engine.errors import ModelLoadError
        from engine.modelcard import load_model

        try:
            net, card = load_model(path)
        except ModelLoadError as exc:
            raise TrainingError(str(exc)) from exc
        return ({k: v.detach().float() if v.dtype.is_floating_point else v for k, v in net.state_dict().items()},
                {"card": {"name": card.name, "steps": card.training.get("steps")}})
    state = load_checkpoint_file(path)
    if "model" not in state:
        raise TrainingError(f"{path}: not a checkpoint with model weights")
    return {k: v.float() if v.dtype.is_floating_point else v for k, v in state["model"].items()}, \
        {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler", "ema")}


def average(inputs: Sequence[tuple[Path, float]]) -> dict[str, Any]:
    """The weighted average of the inputs' weights, as a weights-only checkpoint."""
    if not inputs:
        raise TrainingError("nothing to average")
    total = sum(w for _, w in inputs)
    if total <= 0 or any(w < 0 for _, w in inputs):
        raise TrainingError("weights must be non-negative and not all zero")
    out: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = {}
    parts = []
    for path, w in inputs:
        sd, other = _weights_of(path)
        if not meta and "config" in other:
            meta = {k: v for k, v in other.items() if k != "card"}
        # what each part was: a card's name and steps (its file is replaced when a new model is bundled)
        parts.append({"path": str(path), "weight": w / total, "step": other.get("step"), **other.get("card", {})})
        if out is None:
            out = {k: (v * (w / total) if v.dtype.is_floating_point else v.clone()) for k, v in sd.items()}
            first = path
            continue
        if set(sd) != set(out):
            raise TrainingError(f"{path}: its tensors are not those of {first}; only one model's checkpoints average")
        for k, v in sd.items():
            if v.shape != out[k].shape:
                raise TrainingError(f"{path}: {k} has shape {tuple(v.shape)}, {first} {tuple(out[k].shape)}")
            if v.dtype.is_floating_point:
                out[k] += v * (w / total)
    if "config" not in meta:
        raise TrainingError("at least one input must be a checkpoint (.pt), whose training config the average keeps")
    meta["averaged"] = parts
    return {"model": out, **meta}


def _parse(item: str) -> tuple[Path, float]:
    path, sep, weight = item.rpartition("=")
    if not sep:
        return Path(item), 1.0
    try:
        return Path(path), float(weight)
    except ValueError as exc:
        raise TrainingError(f"{item}: the weight after '=' is not a number") from exc


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the averaged checkpoint to write (.pt)")
    ap.add_argument("inputs", nargs="+", help="checkpoints or model cards, each PATH or PATH=WEIGHT")
    args = ap.parse_args(argv)
    try:
        if args.out.suffix != ".pt":
            raise TrainingError(f"{args.out}: the average is written as a checkpoint (.pt)")
        if args.out.exists():
            raise TrainingError(f"{args.out} exists; name a new file (an average never replaces one)")
        state = average([_parse(s) for s in args.inputs])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(state, args.out)
    except TrainingError as exc:
        print(f"average: {exc}")
        return 2
    print(f"average: {args.out} = " + " + ".join(f"{a['weight']:.3g} x {a['path']}" for a in state["averaged"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
