"""Argument types the command lines share (`stemlab separate` and the training commands)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME_MAX = 255  # bytes in one file or folder name: ext4, XFS, Btrfs, APFS, NTFS (UTF-16 units) alike
PATH_MAX = 4096  # bytes in a whole path, its terminating NUL included (Linux)


def path_text(text: str) -> str:
    """A path given on the command line: an empty one names no file or folder (and would mean the
    current folder by accident), so it is refused as argparse refuses any bad value."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names no file or folder")
    if "\x00" in text:
        raise argparse.ArgumentTypeError("a path cannot hold a NUL character")
    raw = os.fsencode(text)
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        raise argparse.ArgumentTypeError(
            f"a name in this path is {len(longest)} bytes long; file systems allow at most {NAME_MAX}")
    if len(raw) >= PATH_MAX:
        raise argparse.ArgumentTypeError(f"the path is {len(raw)} bytes long; the system allows {PATH_MAX - 1}")
    return text


def path_argument(text: str) -> Path:
    return Path(path_text(text))
