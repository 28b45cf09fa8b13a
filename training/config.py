"""A training run's settings: one dataclass, saved beside every checkpoint, loadable from JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from engine.sources import DEFAULT_SOURCES
from training.errors import TrainingError

WEIGHTINGS = ("unit", "dwa", "ebw1", "ebw2", "energy_norm")
PROCEDURES = ("simultaneous", "interleaved", "interleaved_accum")


@dataclass
class TrainConfig:
    """Everything that defines a run. Paths are relative to the working directory."""

    name: str = "iass"
    out_dir: str = "runs/iass"
    train_sets: list[str] = field(default_factory=lambda: ["data/train"])
    val_set: Optional[str] = "data/val"
    model: str = "iass"                      # "iass" or "umx" (the Open-Unmix baseline)
    sources: list[str] = field(default_factory=lambda: list(DEFAULT_SOURCES))
    # network (IASS)
    depth: int = 5
    base_width: int = 16
    max_width: int = 256
    activity_hidden: int = 128
    mask_activation: str = "sigmoid"
    umx_hidden: int = 512                    # Open-Unmix hidden size
    # audio / STFT
    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512
    max_bin: int = 512
    excerpt_frames: int = 256
    # losses
    loss: str = "mse"                        # "mse" (IASS) or "l1"
    separation_mode: str = "indirect"        # mask x mixture vs target, or "direct" on ideal ratio masks
    activity_weight: float = 1.0
    activity_labels: str = "energy"          # "energy", "note" or "either"
    exclude_silent: bool = False             # drop a source's separation loss on excerpts where it is silent
    weighting: str = "unit"
    ebw_scope: str = "dataset"               # "dataset" or "batch"
    dwa_temperature: float = 2.0
    # procedure
    procedure: str = "simultaneous"
    # optimisation
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    ema_decay: float = 0.0                   # > 0: keep a moving average of the weights (ema.pt); 0: off
    max_steps: int = 100000
    max_minutes: float = 0.0                 # stop after this much training time over all resumes (0: no limit)
    epoch_steps: int = 250
    lr_patience: int = 4                     # epochs without validation improvement before halving the LR
    seed: int = 0
    # augmentation
    fly_songs: int = 0                       # songs rendered while training, in a sliding window (0: off)
    fly_seed: int = 100                      # their set seed (data/train is seed 1, data/val seed 2)
    fly_steps_per_song: int = 25             # the window moves on by one song every this many steps
    fly_max_song_s: float = 90.0             # cap on an on-the-fly song's length (render cost)
    fly_fonts: list[str] = field(default_factory=list)  # training SoundFonts to draw from (default: all installed)
    remix_prob: float = 0.5                  # per stem: take it from another song
    gain_db: float = 6.0                     # per stem: uniform random gain in +-gain_db
    swap_prob: float = 0.5                   # swap left/right
    # speed
    precision: str = "auto"                  # "auto", "fp32" or "bf16"
    channels_last: bool = True
    compile: bool = False
    num_workers: int = 1
    threads: int = 0                         # torch threads (0: torch's default)
    # bookkeeping
    checkpoint_minutes: float = 5.0
    val_excerpts: int = 16
    val_seconds: float = 6.0
    log_every: int = 10

    def validate(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise TrainingError(f"weighting must be one of {WEIGHTINGS}, not {self.weighting!r}")
        if self.procedure not in PROCEDURES:
            raise TrainingError(f"procedure must be one of {PROCEDURES}, not {self.procedure!r}")
        if self.loss not in ("mse", "l1"):
            raise TrainingError("loss must be mse or l1")
        if self.separation_mode not in ("indirect", "direct"):
            raise TrainingError("separation_mode must be indirect or direct")
        if self.activity_labels not in ("energy", "note", "either"):
            raise TrainingError("activity_labels must be energy, note or either")
        if self.model not in ("iass", "umx"):
            raise TrainingError("model must be iass or umx")
        if self.ebw_scope not in ("dataset", "batch"):
            raise TrainingError("ebw_scope must be dataset or batch")
        if not 0.0 <= self.ema_decay < 1.0:
            raise TrainingError(f"ema_decay must lie in [0, 1), not {self.ema_decay}")
        if self.excerpt_frames % (2 ** self.depth):
            raise TrainingError(f"excerpt_frames must be a multiple of {2 ** self.depth}")

    @property
    def excerpt_samples(self) -> int:
        # frames = samples // hop + 1 with center=True; one hop less gives exactly excerpt_frames frames
        return (self.excerpt_frames - 1) * self.hop_length

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training settings: {', '.join(unknown)}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingError(f"{path}: cannot read the training config ({exc})") from exc
        if not isinstance(data, dict):
            raise TrainingError(f"{path}: a training config is a JSON object")
        return cls.from_dict(data)
