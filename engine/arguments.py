"""Argument types the command lines share (`stemlab separate` and the training commands)."""

from __future__ import annotations

import argparse
from pathlib import Path


def path_text(text: str) -> str:
    """A path given on the command line: an empty one names no file or folder (and would mean the
    current folder by accident), so it is refused as argparse refuses any bad value."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names no file or folder")
    if "\x00" in text:
        raise argparse.ArgumentTypeError("a path cannot hold a NUL character")
    return text


def path_argument(text: str) -> Path:
    return Path(path_text(text))
