"""A training run's settings: one dataclass, saved beside every checkpoint, loadable from JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from engine.sources import DEFAULT_SOURCES
from training.errors import TrainingError

WEIGHTINGS = ("unit", "dwa", "ebw1", "ebw2", "energy_norm")
# (setting, lowest, highest) for every number a config holds
_RANGES = (("depth", 1, 8), ("base_width", 1, 1024), ("max_width", 1, 4096), ("activity_hidden", 1, 4096),
           ("umx_hidden", 1, 4096), ("sample_rate", 8000, 192000), ("n_fft", 16, 65536), ("hop_length", 1, 65536),
           ("max_bin", 1, 32769), ("excerpt_frames", 1, 1 << 16), ("activity_weight", 0.0, 1e6),
           ("dwa_temperature", 1e-6, 1e6), ("batch_size", 1, 4096), ("lr", 0.0, 10.0), ("weight_decay", 0.0, 10.0),
           ("grad_clip", 0.0, 1e9), ("ema_decay", 0.0, 0.999999), ("max_steps", 0, 1 << 40),
           ("max_minutes", 0.0, 1e9), ("max_cpu_hours", 0.0, 1e6), ("epoch_steps", 1, 1 << 40), ("lr_patience", 0, 1 << 20), ("seed", 0, 2 ** 63 - 1),
           ("fly_songs", 0, 100000), ("fly_seed", 0, 2 ** 63 - 1), ("fly_steps_per_song", 1, 1 << 40),
           ("fly_max_song_s", 1.0, 3600.0), ("remix_prob", 0.0, 1.0), ("gain_db", 0.0, 60.0), ("quiet_db", 0.0, 60.0), ("swap_prob", 0.0, 1.0),
           ("low_shelf_prob", 0.0, 1.0), ("low_shelf_db", 0.0, 24.0),
           ("num_workers", 0, 64), ("threads", 0, 1024), ("checkpoint_minutes", 1e-4, 1e6), ("val_excerpts", 1, 100000),
           ("val_seconds", 0.5, 3600.0), ("log_every", 1, 1 << 30))
PROCEDURES = ("simultaneous", "interleaved", "interleaved_accum")


_KIND_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false",
               "list[str]": "a list of names", "Optional[str]": "text or null"}


def _of_kind(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, float)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "Optional[str]":
        return value is None or isinstance(value, str)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True


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
    max_cpu_hours: float = 0.0               # stop after the training process used this much CPU time over all
                                             # resumes (0: no limit): runs of different cost compared fairly
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
    # Real songs hold some stems lower against the mix than the generator does (DATA.md: drums and bass):
    # these stems' gains reach quiet_db further down, uniform in [-gain_db - quiet_db, +gain_db].
    quiet_sources: list[str] = field(default_factory=list)
    quiet_db: float = 0.0
    swap_prob: float = 0.5                   # swap left/right
    # Real mixes EQ each instrument's low end their own way (a guitar or keys part often holds as much
    # energy under 250 Hz as the bass: BENCHMARKS "Reading the low band"); simultaneous items give each
    # stem, with low_shelf_prob, a low shelf at a corner log-uniform in batches.LOW_SHELF_HZ with a gain
    # uniform in +-low_shelf_db.
    low_shelf_prob: float = 0.0
    low_shelf_db: float = 0.0
    # speed
    device: str = "auto"                     # "auto" (CUDA when present), "cpu" or "cuda"
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
        if not str(self.out_dir).strip():
            raise TrainingError("out_dir is empty: name the folder the run writes into")
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
        for name, low, high in _RANGES:
            value = getattr(self, name)
            if isinstance(value, float) and value == 0.0:
                value = 0.0  # -0.0 would pass the range and then make uniform(-g, g) refuse its bounds
                setattr(self, name, value)
            # written as "not (low <= value <= high)" so that NaN fails too
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
                raise TrainingError(f"{name} must lie between {low:g} and {high:g}, not {value!r}")
        unknown = sorted(set(self.quiet_sources) - set(self.sources))
        if unknown:
            raise TrainingError(f"quiet_sources names no source of this run: {', '.join(unknown)}")
        if self.lr <= 0:
            raise TrainingError(f"lr must be above 0, not {self.lr}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise TrainingError(f"device must be auto, cpu or cuda, not {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise TrainingError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        if self.mask_activation not in ("sigmoid", "softmax"):
            raise TrainingError(f"mask_activation must be sigmoid or softmax, not {self.mask_activation!r}")
        if self.hop_length > self.n_fft or self.max_bin > self.n_fft // 2 + 1 or self.max_bin % (2 ** self.depth):
            raise TrainingError(f"the STFT does not fit: hop_length {self.hop_length} at most n_fft {self.n_fft}, "
                                f"max_bin {self.max_bin} at most {self.n_fft // 2 + 1} and a multiple of {2 ** self.depth}")
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
        kinds = {f.name: str(f.type) for f in fields(cls)}
        for name, value in data.items():
            kind = kinds[name]
            if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                data = {**data, name: float(value)}
            elif not _of_kind(value, kind):
                raise TrainingError(f"the training setting {name} must be {_KIND_WORDS.get(kind, kind)}, not {value!r}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        from engine.jsonfile import read_json_object

        return cls.from_dict(read_json_object(path, "training config", TrainingError))
