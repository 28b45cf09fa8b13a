"""The app layer's own domain errors (the engine's are in engine.errors)."""

from __future__ import annotations

from engine.errors import StemLabError


class SessionError(Exception):
    """A session file cannot be used: unreadable, malformed, or its data file is missing or wrong."""


class TruthError(StemLabError):
    """A folder of true stems cannot be used for the open song: no matching names, unreadable files,
    or stems of another length."""


class MusicAnalysisError(StemLabError):
    """The tempo and key analysis could not run (its process failed or stopped)."""
