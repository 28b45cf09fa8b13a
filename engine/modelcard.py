"""Model files: weights (safetensors, never pickle) plus a JSON model card that must match them."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .audio import write_text_atomic
from .errors import AudioWriteError, ModelLoadError
from .gating import GatingSettings, GatingSpec
from .jsonfile import read_json_object
from .model import IASSUNet
from .resources import bundled_card_file

CARD_FORMAT = "stemlab-model-card/1"
HEX = "0123456789abcdef"
MAX_CARD_BYTES = 1 << 20  # a card is a few kB; anything this large is not one (or is a device)
# Source names become file names and activity.csv columns: letters, digits, _ and - only.
SOURCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
PathLike = Union[str, os.PathLike]


@dataclass
class ModelCard:
    """What a model is, how it was made and how good it is. Stored as JSON beside the weights."""

    name: str
    sources: list[str]
    sample_rate: int
    n_fft: int
    hop_length: int
    max_bin: int
    architecture: dict[str, Any]
    weights: str
    sha256: str = ""
    version: str = "0"
    trained: bool = True
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    format: str = CARD_FORMAT
    # the gating this model separates best with, per source: {"per_source": {source: {"mode", "threshold",
    # "median_frames"}}, "tuned_on": ..., "how": ...}; sources it leaves out gate as GatingSettings()
    gating: dict[str, Any] = field(default_factory=dict)

    def default_gating(self) -> GatingSpec:
        """The card's tuned gating per source, or the plain default where it has none."""
        per = (self.gating or {}).get("per_source") or {}
        if not per:
            return GatingSettings()
        return {s: GatingSettings(**per[s]) if s in per else GatingSettings() for s in self.sources}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> "ModelCard":
        required = ("name", "sources", "sample_rate", "n_fft", "hop_length", "max_bin", "architecture", "weights")
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelLoadError(f"{where}: the model card lacks {', '.join(missing)}.")
        known = set(cls.__dataclass_fields__)
        try:
            card = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ModelLoadError(f"{where}: the model card is malformed ({exc}).") from exc
        if not isinstance(card.sources, list) or not all(isinstance(s, str) for s in card.sources):
            raise ModelLoadError(f"{where}: 'sources' must be a list of names.")
        # Stems are written as <source>.wav into the output folder: a name must not be a path.
        if not card.sources or len(set(card.sources)) != len(card.sources) or not all(
                s and len(s) <= 64 and set(s) <= SOURCE_CHARS for s in card.sources):
            raise ModelLoadError(f"{where}: 'sources' must be distinct plain names (letters, digits, _ and -).")
        for key in ("sample_rate", "n_fft", "hop_length", "max_bin"):
            value = getattr(card, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ModelLoadError(f"{where}: '{key}' must be a positive integer.")
        if not 8_000 <= card.sample_rate <= 192_000:
            raise ModelLoadError(f"{where}: sample_rate {card.sample_rate} Hz is not an audio rate (8-192 kHz).")
        if not 16 <= card.n_fft <= 65_536 or card.hop_length > card.n_fft:
            raise ModelLoadError(f"{where}: n_fft {card.n_fft} and hop_length {card.hop_length} do not make an STFT "
                                 "(n_fft 16-65536, hop_length at most n_fft).")
        if not isinstance(card.architecture, dict):
            raise ModelLoadError(f"{where}: 'architecture' must be an object.")
        if not isinstance(card.name, str) or not isinstance(card.trained, bool):
            raise ModelLoadError(f"{where}: 'name' must be text and 'trained' true or false.")
        if card.max_bin > card.n_fft // 2 + 1:
            raise ModelLoadError(f"{where}: max_bin {card.max_bin} exceeds the STFT's {card.n_fft // 2 + 1} bins.")
        if not isinstance(card.weights, str) or Path(card.weights).name != card.weights:
            raise ModelLoadError(f"{where}: 'weights' must be a file name beside the card, not a path.")
        if not isinstance(card.gating, dict) or not isinstance(card.gating.get("per_source", {}), dict):
            raise ModelLoadError(f"{where}: 'gating' must be an object with a 'per_source' object.")
        for source, settings in card.gating.get("per_source", {}).items():
            if source not in card.sources or not isinstance(settings, dict) or \
                    not set(settings) <= {"mode", "threshold", "median_frames"}:
                raise ModelLoadError(f"{where}: gating for {source!r} is not one of the model's sources with "
                                     "mode, threshold and median_frames.")
            try:
                GatingSettings(**settings)
            except (TypeError, ValueError) as exc:
                raise ModelLoadError(f"{where}: gating for {source!r}: {exc}.") from exc
        # Without the digest a damaged weights file could load and separate garbage: require it.
        if not isinstance(card.sha256, str) or len(card.sha256) != 64 or not set(card.sha256) <= set(HEX):
            raise ModelLoadError(f"{where}: the model card lacks the sha256 of its weights, so they cannot be "
                                 "checked; re-export the model with `stemlab export-model`.")
        return card


def sha256_file(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bundled_card_path() -> Path:
    """The default model's card. Raises ModelLoadError saying so when no trained model is bundled."""
    path = bundled_card_file()
    if not path.exists():
        raise ModelLoadError(
            "No trained model is bundled with this copy of StemLab "
            f"(expected {path}). Train one with `stemlab train` or pass --model PATH to a model card."
        )
    return path


def resolve_card_path(model: PathLike) -> Path:
    """"bundled", a card (.json), a weights file with a card beside it, or a folder holding one card."""
    if str(model) == "bundled":
        return bundled_card_path()
    p = Path(model)
    if p.is_dir():
        cards = sorted(p.glob("*.json"))
        if len(cards) != 1:
            raise ModelLoadError(f"{p}: expected exactly one model card (.json) in the folder, found {len(cards)}.")
        return cards[0]
    if p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    if not p.exists():
        raise ModelLoadError(f"{p}: no such model card.")
    return p


def load_model(model: PathLike = "bundled", allow_untrained: bool = False) -> tuple[IASSUNet, ModelCard]:
    """Read a card and its weights, check the hash and that the weights fit the card.

    Raises ModelLoadError for anything missing, corrupt or inconsistent. An untrained card
    (trained=false) is refused unless allow_untrained, so nobody separates with random weights unknowingly.
    """
    card_path = resolve_card_path(model)
    data = read_json_object(card_path, "model card", ModelLoadError, MAX_CARD_BYTES)
    card = ModelCard.from_json(data, card_path.name)
    if not card.trained and not allow_untrained:
        raise ModelLoadError(f"{card_path.name}: this model is untrained (random weights); it would not separate anything.")
    weights_path = card_path.parent / card.weights
    if not weights_path.is_file():
        raise ModelLoadError(f"{weights_path}: the model's weights file is missing.")
    try:
        digest = sha256_file(weights_path)
    except OSError as exc:
        raise ModelLoadError(f"{weights_path.name}: the weights file cannot be read ({exc.strerror}).") from exc
    if digest != card.sha256:
        raise ModelLoadError(
            f"{weights_path.name}: the weights do not match their model card (sha256 {digest[:12]}... "
            f"instead of {card.sha256[:12]}...). The file is corrupt or was replaced; reinstall or retrain it."
        )
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{weights_path.name}: the weights file is corrupt ({exc}).") from exc
    arch = dict(card.architecture)
    if list(arch.get("sources", card.sources)) != list(card.sources):
        raise ModelLoadError(f"{card_path.name}: the card's sources disagree with its architecture.")
    arch["sources"] = card.sources
    if arch.get("n_bins", card.max_bin) != card.max_bin:
        raise ModelLoadError(f"{card_path.name}: architecture n_bins differs from max_bin.")
    try:
        net = IASSUNet(**arch)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{card_path.name}: the architecture arguments are invalid ({exc}).") from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelLoadError(f"{card_path.name}: the weights do not fit the card's architecture ({first}).") from exc
    net.eval()
    return net, card


def save_model(net: IASSUNet, card_path: PathLike, *, name: str, sample_rate: int, n_fft: int, hop_length: int,
               trained: bool = True, training: Optional[dict[str, Any]] = None,
               metrics: Optional[dict[str, Any]] = None, notes: str = "", version: str = "1",
               half: bool = False, gating: Optional[dict[str, Any]] = None) -> ModelCard:
    """Write weights (safetensors) and card atomically; returns the card.

    half=True stores floating-point weights as float16 (half the size; they load into float32
    parameters, and inference runs in bfloat16 or float32 anyway).
    """
    dtype = torch.float16 if half else torch.float32
    card_path = Path(card_path)
    if card_path.suffix.lower() != ".json":
        # the weights go beside the card under its name: any other suffix would put the card over them
        raise AudioWriteError(f"{card_path}: a model card is a .json file (its weights are written beside it as "
                              f"{card_path.with_suffix('.safetensors').name}).")
    weights_name = card_path.with_suffix(".safetensors").name
    weights_path = card_path.parent / weights_name
    tmp = weights_path.with_name(f".{weights_name}.part")
    state = {k: v.detach().to(dtype).contiguous().cpu() for k, v in net.state_dict().items()
             if v.dtype.is_floating_point}
    state.update({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()
                  if not v.dtype.is_floating_point})
    card_tmp = card_path.with_name(f".{card_path.name}.part")
    try:
        # Both files are complete under temporary names before either takes its final one: a failure
        # leaves neither a card without weights nor orphan weights.
        save_file(state, str(tmp))
        os.chmod(tmp, 0o644)  # a model file is for everyone to read
        card = ModelCard(name=name, sources=list(net.sources), sample_rate=sample_rate, n_fft=n_fft,
                         hop_length=hop_length, max_bin=net.n_bins, architecture=net.architecture(),
                         weights=weights_name, sha256=sha256_file(tmp), version=version, trained=trained,
                         training=training or {}, metrics=metrics or {}, notes=notes, gating=gating or {})
        ModelCard.from_json(asdict(card), card_path.name)  # a card it writes must load: gating checked too
        write_text_atomic(card_tmp, json.dumps(asdict(card), indent=2) + "\n")
        os.replace(tmp, weights_path)
        os.replace(card_tmp, card_path)
    except OSError as exc:
        raise AudioWriteError(f"{card_path}: the model could not be written ({exc.strerror or exc}); "
                              "nothing was left under its name.") from exc
    finally:
        for leftover in (tmp, card_tmp):
            if leftover.exists():
                leftover.unlink()
    return card
