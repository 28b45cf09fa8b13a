"""`stemlab train`, `stemlab export-model` and `stemlab evaluate`: command-line front ends of the trainer.

Registering them imports no torch; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from engine.errors import StemLabError
from training.run.config import TrainConfig


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not f.default_factory else None  # type: ignore[misc]
        if f.type in ("bool", bool):
            p.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction)
        elif f.name in ("train_sets", "fly_fonts"):
            p.add_argument(flag, dest=f.name, nargs="*", default=None)  # empty: none (e.g. only on-the-fly songs)
        elif f.name == "sources":
            p.add_argument(flag, dest=f.name, nargs="+", default=None)
        else:
            kind: Any = {"int": int, "float": float}.get(str(f.type), str)
            p.add_argument(flag, dest=f.name, type=kind, default=None,
                           help=None if default is None else f"(default {default})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from engine.jsonfile import read_json_object
    from training.errors import TrainingError

    base: dict[str, Any] = {}
    source = Path(args.config) if args.config else None
    if source is None and args.resume and args.out_dir and (Path(args.out_dir) / "config.json").exists():
        source = Path(args.out_dir) / "config.json"
    if source is not None:
        base = read_json_object(source, "training config", TrainingError)
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            base[f.name] = value
    if "val_set" in base and base["val_set"] in ("", "none", "None"):
        base["val_set"] = None
    return TrainConfig.from_dict(base)


def cmd_train(args: argparse.Namespace) -> int:
    from training.run.trainer import Trainer

    try:
        cfg = config_from_args(args)
        trainer = Trainer(cfg, resume=args.resume, progress=not args.quiet)
        result = trainer.run()
    except StemLabError as exc:
        print(f"stemlab train: {exc}", file=sys.stderr)
        return 2
    if trainer.rank == 0:  # one summary for a torchrun group
        print(json.dumps(result))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.run.export_model import export_run

    try:
        card = export_run(Path(args.run), Path(args.out), name=args.name, checkpoint=args.checkpoint,
                          metrics_file=Path(args.metrics) if args.metrics else None,
                          gating_file=Path(args.gating) if args.gating else None)
    except StemLabError as exc:
        print(f"stemlab export-model: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({card.name}, sha256 {card.sha256[:12]}...)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluation.evaluate import cmd_evaluate as run_evaluate

    return run_evaluate(args)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from engine.arguments import path_text

    p = subparsers.add_parser("train", help="train the IASS model (or the Open-Unmix baseline)",
                              description="Train on generated multitrack sets. Flags override --config.")
    p.add_argument("--config", type=path_text, help="a JSON training config (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoint.pt")
    p.add_argument("--quiet", action="store_true")
    _add_config_flags(p)
    p.set_defaults(func=cmd_train)

    e = subparsers.add_parser("export-model", help="write a run's best weights as a model card + weights")
    e.add_argument("--run", type=path_text, required=True, help="the run folder")
    e.add_argument("--out", type=path_text, required=True, help="the model card to write, e.g. resources/models/iass.json")
    e.add_argument("--name", default="iass")
    e.add_argument("--checkpoint", default="best.pt", choices=["best.pt", "checkpoint.pt", "ema.pt"])
    e.add_argument("--metrics", type=path_text, help="a JSON file of evaluation metrics to put in the card")
    e.add_argument("--gating", type=path_text,
                   help="a JSON file of the gating per stem the model separates with by default "
                        "(bench/gating.py --tuned-out writes one)")
    e.set_defaults(func=cmd_export)

    v = subparsers.add_parser("evaluate", help="score a model on a multitrack set (SDR, museval, activity F1)")
    v.add_argument("--model", type=path_text, default="bundled", help="model card, 'bundled', or a training checkpoint (.pt)")
    v.add_argument("--set", type=path_text, required=True, help="a set folder (make-data / make-benchmark)")
    v.add_argument("--out", type=path_text, help="write OUT.md and OUT.json")
    v.add_argument("--threshold", type=float, default=None,
                   help="activity threshold for every stem (default: the model card's tuned gating, else the engine's)")
    v.add_argument("--median-frames", type=int, default=None, help="median filter length in frames (default: as --threshold)")
    v.add_argument("--museval", type=int, default=0, metavar="N", help="also run museval on the first N excerpts")
    v.add_argument("--limit", type=int, default=0, help="only the first N excerpts")
    v.add_argument("--wiener", action="store_true", help="refine the estimates with the multichannel Wiener filter")
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=cmd_evaluate)

