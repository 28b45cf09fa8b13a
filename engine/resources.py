"""Where StemLab's shipped files live (STEMLAB_RESOURCES overrides it): the bundled model and the demo
song with its true stems. Imports nothing heavy, so the app's first page and the command line can ask."""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("STEMLAB_RESOURCES")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "resources"


def bundled_card_file() -> Path:
    """The bundled model's card (it may not exist: a checkout without a trained model)."""
    return resources_dir() / "models" / "iass.json"


def demo_song_path() -> Path:
    """The demo song; its true stems lie in demo_stems_dir()."""
    return resources_dir() / "demo" / "demo.ogg"


def demo_stems_dir() -> Path:
    return resources_dir() / "demo" / "stems"


def user_cache_dir() -> Path:
    """StemLab's folder in the user's cache ($XDG_CACHE_HOME, else ~/.cache): re-gating files of long
    songs, crash reports. Not made here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stemlab"
