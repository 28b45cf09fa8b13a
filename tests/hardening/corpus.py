"""The bad-input corpus, generated on the spot: files people have on their disks that are not a tidy
stereo 44.1 kHz song, each with what StemLab must do with it (separate it, saying what it changed,
or refuse it with a message naming the problem)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf

from tests.conftest import SR, tone_mix


@dataclass(frozen=True)
class Case:
    """One input. ok: stems are expected; message: a piece of the error (not ok) or of a note (ok)."""

    name: str
    path: Path
    ok: bool
    message: str = ""
    sample_rate: int = SR  # of the stems, when ok
    n_samples: Optional[int] = None  # of the stems, when known exactly
    max_samples: Optional[int] = None
    silent: bool = False


def _corrupt(data: bytes, at: float, n: int, seed: int = 0) -> bytes:
    b = bytearray(data)
    i = int(len(b) * at)
    b[i:i + n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    return bytes(b)


def build_corpus(root: Path) -> list[Case]:
    """Write every input under root (in folders named as the cases need) and describe it."""
    root.mkdir(parents=True, exist_ok=True)
    x = tone_mix(1.0)  # (2, 44100)
    cases: list[Case] = []

    def add(name: str, ok: bool, message: str = "", filename: Optional[str] = None, **kw: object) -> Path:
        path = root / (filename or f"{name}.wav")
        cases.append(Case(name, path, ok, message, **kw))  # type: ignore[arg-type]
        return path

    add("zero-length", False, "empty").write_bytes(b"")
    add("text-named-wav", False, "cannot be read as audio").write_text("Not audio: a shopping list.\n" * 40)
    full = root / "_full16.wav"
    sf.write(full, x.T, SR, subtype="PCM_16")
    data = full.read_bytes()
    full.unlink()
    add("truncated-wav", True, "ends early", max_samples=SR // 2 + 100).write_bytes(data[: len(data) // 2])
    add("truncated-header", False, "cannot be read as audio").write_bytes(data[:30])
    x3 = tone_mix(3.0, seed=1)
    mp3 = root / "_full.mp3"
    sf.write(mp3, x3.T, SR, format="MP3")
    add("truncated-mp3", True, "ends early", filename="truncated-mp3.mp3",
        max_samples=2 * SR).write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    mp3.unlink()
    flac = root / "_full.flac"
    sf.write(flac, x3.T, SR, format="FLAC")
    flac_bytes = flac.read_bytes()
    flac.unlink()
    add("truncated-flac", False, "damaged or cut short",
        filename="truncated-flac.flac").write_bytes(flac_bytes[: len(flac_bytes) // 2])
    add("broken-frame-flac", False, "damaged or cut short",
        filename="broken-frame-flac.flac").write_bytes(_corrupt(flac_bytes, 0.5, 2000))
    for name, value in (("nan-samples", np.nan), ("inf-samples", np.inf)):
        y = x.T.copy()
        y[1000:1010, 0] = value
        sf.write(add(name, False, "NaN or infinite"), y, SR, subtype="FLOAT")
    square = np.sign(np.sin(2 * np.pi * 110 * np.arange(SR) / SR)).astype(np.float32)
    sf.write(add("full-scale-clipping", True, n_samples=SR), np.stack([square, square], 1), SR, subtype="PCM_16")
    sf.write(add("beyond-full-scale-float", True, n_samples=SR), 4.0 * x.T, SR, subtype="FLOAT")
    sf.write(add("digital-silence", True, "digital silence", n_samples=SR, silent=True), np.zeros((SR, 2)), SR)
    sf.write(add("one-channel", True, "mono input", n_samples=SR), x[0], SR)
    six = np.concatenate([x, 0.5 * x, 0.25 * x]).T
    sf.write(add("six-channels", True, "6-channel input was downmixed", n_samples=SR), six, SR)
    sf.write(add("rate-8k", True, "resampled from 8000 Hz", sample_rate=8000, n_samples=8000),
             tone_mix(1.0, sample_rate=8000).T, 8000)
    sf.write(add("rate-192k", True, "resampled from 192000 Hz", sample_rate=192000, n_samples=192000),
             tone_mix(1.0, sample_rate=192000).T, 192000, subtype="PCM_24")
    sf.write(add("tenth-of-a-second", True, n_samples=SR // 10), tone_mix(0.1).T, SR)
    odd = root / "my songs" / "à la folie"
    odd.mkdir(parents=True)
    odd_name = "my songs/à la folie/Mötley Crüe – Ballade №1 ♫.flac"
    sf.write(add("spaces-and-non-ascii", True, n_samples=SR, filename=odd_name), x.T, SR)
    add("missing-folder", False, "no such file", filename="no such folder/song.wav")
    add("a-folder", False, "is a folder", filename="folder.wav").mkdir()
    return cases
