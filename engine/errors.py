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
