"""Checkpoint files that survive a kill at any moment and are checked against their sha256 when read.

`checkpoint.pt` is written to a temporary file, fsynced, and renamed into place, so the name always
holds a whole checkpoint: the previous one or the new one. Beside it `checkpoint.pt.sha256` (JSON)
records the digest of the new file and of the one it replaces, written before the rename, so a
kill between the two renames still leaves a file that verifies. Reading refuses a file whose digest
matches neither: a damaged checkpoint is reported, never half-loaded. Files come back through
`torch.load(weights_only=True)`: tensors and plain containers, never code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

import torch

from engine.audio import write_text_atomic
from engine.modelcard import sha256_file
from training.errors import TrainingError

PathLike = Union[str, os.PathLike]


def digest_path(path: PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sha256")


def _recorded_digests(path: Path) -> list[str]:
    """The digests a checkpoint may have ([] when no record exists: a checkpoint from before records)."""
    record = digest_path(path)
    if not record.exists():
        return []
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingError(f"{record}: the checkpoint's digest record cannot be read ({exc}); delete it and "
                            "the checkpoint is loaded unchecked") from exc
    if not isinstance(data, dict):
        raise TrainingError(f"{record}: the checkpoint's digest record is malformed")
    return [d for d in (data.get("sha256"), data.get("previous")) if isinstance(d, str)]


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """torch.save `obj` to `path` so that a kill or power cut at any moment leaves a whole file."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.part")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        previous = sha256_file(p) if p.exists() else None
        record = {"sha256": sha256_file(tmp), "previous": previous}
        write_text_atomic(digest_path(p), json.dumps(record) + "\n")
        os.replace(tmp, p)
        _fsync_dir(p.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    # The rename itself reaches the disk only with the folder's entry (POSIX); best effort elsewhere.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint_file(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by atomic_torch_save after checking its sha256.

    Raises TrainingError naming the file for a missing, damaged or mismatched checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise TrainingError(f"{p}: no such checkpoint")
    digests = _recorded_digests(p)
    if digests:
        actual = sha256_file(p)
        if actual not in digests:
            raise TrainingError(f"{p}: the checkpoint is corrupt (its sha256 {actual[:12]}... is not the one "
                                f"recorded in {digest_path(p).name}); delete it to start over, or restore best.pt")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise TrainingError(f"{p}: the checkpoint is corrupt ({type(exc).__name__}); "
                            f"delete it to start over, or restore best.pt") from exc
    if not isinstance(state, dict):
        raise TrainingError(f"{p}: not a StemLab checkpoint")
    return state
