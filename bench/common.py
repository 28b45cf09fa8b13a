"""Helpers shared by the benchmark scripts: test songs, peak memory, the BENCHMARKS.md writer."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"


def synthetic_song(seconds: float, sample_rate: int = 44100, seed: int = 0) -> np.ndarray:
    """A stereo test signal with music-like structure (tones, beat-synchronous noise): (2, n) float32.

    Speed and memory do not depend on what the audio contains; this only avoids degenerate input.
    Built a block at a time so making an hour-long song costs no more than the song itself.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.empty((2, n), np.float32)
    phases = rng.uniform(0, 6, size=5)
    block = 1 << 20
    for a in range(0, n, block):
        b = min(n, a + block)
        t = np.arange(a, b, dtype=np.float64) / sample_rate
        x = sum(0.05 * np.sin(2 * np.pi * f * t + ph) for f, ph in zip((55.0, 110.0, 220.0, 330.0, 440.0), phases))
        beat = (t % 0.5) < 0.05
        out[:, a:b] = (x + 0.1 * rng.standard_normal((2, b - a)) * beat).astype(np.float32)
    return out


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (VmHWM), in MB."""
    return _status_mb("VmHWM")


def rss_mb() -> float:
    """Current resident memory of this process (VmRSS), in MB."""
    return _status_mb("VmRSS")


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {sys.version.split()[0]}")


def write_section(name: str, body: str, doc: Path = BENCHMARKS) -> None:
    """Replace the text between <!-- name:begin --> and <!-- name:end --> in doc (docs/BENCHMARKS.md)."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text() if doc.exists() else "# StemLab benchmarks\n\nEvery figure comes from a script in `bench/`; the command that produced it is given with it.\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = doc.with_suffix(".md.part")
    tmp.write_text(text)
    os.replace(tmp, doc)
