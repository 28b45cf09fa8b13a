"""StemLab's separation engine: instrument-activation-aware source separation (IASS), no GUI.

The public names are imported on first use (PEP 562), so `import engine.errors` or a command-line
`--help` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audio import Audio, load_audio, write_audio
    from .errors import (AudioLoadError, AudioWriteError, ModelLoadError, SeparationCancelled, SeparationError,
                         StemLabError)
    from .gating import GatingSettings
    from .progress import Progress
    from .separator import SeparationResult, Separator

_WHERE = {
    "Audio": "audio", "load_audio": "audio", "write_audio": "audio",
    "AudioLoadError": "errors", "AudioWriteError": "errors", "ModelLoadError": "errors",
    "SeparationCancelled": "errors", "SeparationError": "errors", "StemLabError": "errors",
    "GatingSettings": "gating", "Progress": "progress",
    "SeparationResult": "separator", "Separator": "separator",
}
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
