"""Turn a training run into a model file + model card the engine loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from engine.errors import ModelLoadError
from engine.jsonfile import read_json_object
from engine.model import IASSUNet
from engine.modelcard import ModelCard, save_model
from training.errors import TrainingError
from training.run.checkpoints import load_checkpoint_file
from training.run.config import TrainConfig
from training.run.models import build_model


def export_run(run: Path, out: Path, name: str = "iass", checkpoint: str = "best.pt",
               metrics_file: Optional[Path] = None, half: bool = True,
               gating_file: Optional[Path] = None) -> ModelCard:
    path = run / checkpoint
    if not path.exists():
        raise TrainingError(f"{path}: no such checkpoint")
    state = load_checkpoint_file(path)
    cfg = TrainConfig.from_dict(state["config"])
    if cfg.model != "iass":
        raise TrainingError("only IASS runs export to engine model cards")
    net = build_model(cfg)
    assert isinstance(net, IASSUNet)
    net.load_state_dict(state["model"])
    metrics: dict[str, Any] = {"validation": state.get("metrics", {})}
    if metrics_file is not None:
        metrics.update(read_json_object(metrics_file, "metrics file", TrainingError))
    ckpt = load_checkpoint_file(run / "checkpoint.pt") if (run / "checkpoint.pt").exists() else {}
    training = {
        "recipe": {k: v for k, v in state["config"].items() if k not in ("out_dir",)},
        "steps": int(state.get("step", 0)),
        "epochs": int(state.get("epoch", 0)),
        # the exported checkpoint's own training time where it records one (ema.pt does), else the run's
        "train_hours_wall": round(float(state.get("elapsed_s", ckpt.get("elapsed_s", 0.0))) / 3600, 2)
        if ("elapsed_s" in state or ckpt) else None,
        "data": "songs written by StemLab's generator (training/songs/), rendered stem by stem with "
                "training SoundFonts; never TimGM6mb or real composers' songs",
    }
    if "averaged" in state:  # a weight average (training.run.average): which checkpoints, at what weights
        training["averaged"] = state["averaged"]
    gating = read_json_object(gating_file, "gating file", TrainingError) if gating_file is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        return save_model(net, out, name=name, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft,
                          hop_length=cfg.hop_length, trained=True, training=training, metrics=metrics, half=half,
                          gating=gating)
    except ModelLoadError as exc:  # the gating file does not fit the model
        raise TrainingError(f"{gating_file}: {exc}") from exc
