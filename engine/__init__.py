"""StemLab's separation engine: instrument-activation-aware source separation (IASS), no GUI."""

from .audio import Audio, load_audio, write_audio
from .errors import (AudioLoadError, AudioWriteError, ModelLoadError, SeparationCancelled, SeparationError,
                     StemLabError)
from .gating import GatingSettings
from .progress import Progress
from .separator import SeparationResult, Separator

__all__ = [
    "Audio", "load_audio", "write_audio", "AudioLoadError", "AudioWriteError", "ModelLoadError",
    "SeparationCancelled", "SeparationError", "StemLabError", "GatingSettings", "Progress",
    "SeparationResult", "Separator",
]
