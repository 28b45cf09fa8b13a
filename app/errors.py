"""The app layer's own domain error (the engine's are in engine.errors)."""

from __future__ import annotations


class SessionError(Exception):
    """A session file cannot be used: unreadable, malformed, or its data file is missing or wrong."""
