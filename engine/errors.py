"""Domain exceptions: every failure a user can meet has one, with a message they can act on."""

from __future__ import annotations


class StemLabError(Exception):
    """Base of every error StemLab reports to a user."""


class AudioLoadError(StemLabError):
    """An input file cannot be used as a song (unreadable, empty, silent, non-finite...)."""


class AudioWriteError(StemLabError):
    """An output file could not be written; nothing was left under the final name."""


class ModelLoadError(StemLabError):
    """A model file or model card is missing, corrupt, or does not fit its card."""


class SeparationCancelled(StemLabError):
    """The user cancelled a running separation (or render); nothing was produced."""


class SeparationError(StemLabError):
    """The separation itself failed (e.g. out of memory on the device)."""


OUT_OF_MEMORY_TEXTS = ("out of memory", "can't allocate memory", "not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is a failure to get memory, in any of the forms it comes in: Python's MemoryError,
    torch's OutOfMemoryError (a GPU), or the RuntimeError torch raises when a CPU allocation fails."""
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch here
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in OUT_OF_MEMORY_TEXTS)
