"""Reading songs into float arrays, resampling, and writing stems atomically."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioLoadError, AudioWriteError

PathLike = Union[str, os.PathLike]

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
# Below this peak a file is treated as digital silence (about -120 dBFS).
SILENCE_PEAK = 1e-6


@dataclass
class Audio:
    """A song in memory.

    samples: (channels, n_samples) float32, channels is 1 or 2 after loading.
    """

    samples: np.ndarray
    sample_rate: int
    source_channels: int = 2
    notes: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / float(self.sample_rate)


def to_stereo(samples: np.ndarray, notes: Optional[list[str]] = None) -> np.ndarray:
    """samples: (channels, n) -> (2, n). Mono is duplicated, more than two channels are downmixed."""
    channels = samples.shape[0]
    if channels == 2:
        return samples
    if channels == 1:
        if notes is not None:
            notes.append("mono input: the one channel was used for both left and right")
        return np.repeat(samples, 2, axis=0)
    if notes is not None:
        notes.append(f"{channels}-channel input was downmixed to stereo")
    # Odd channels go left, even ones right, the centre-ish rest to both: a plain equal-power fold.
    left = samples[0::2].mean(axis=0)
    right = samples[1::2].mean(axis=0)
    return np.stack([left, right]).astype(np.float32)


def load_audio(path: PathLike, allow_silent: bool = False) -> Audio:
    """Read a song file through soundfile into (channels, n) float32 at its own sample rate.

    Raises AudioLoadError with a message naming the problem for anything that is not a usable song.
    """
    p = Path(path)
    if not p.exists():
        raise AudioLoadError(f"{p}: no such file.")
    if p.is_dir():
        raise AudioLoadError(f"{p}: is a folder, not an audio file.")
    if p.stat().st_size == 0:
        raise AudioLoadError(f"{p.name}: the file is empty (0 bytes).")
    try:
        data, sample_rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        raise AudioLoadError(
            f"{p.name}: cannot be read as audio ({_short(exc)}). StemLab reads WAV, FLAC, OGG and MP3."
        ) from exc
    if data.shape[0] == 0:
        raise AudioLoadError(f"{p.name}: the file holds no audio samples.")
    if sample_rate <= 0:
        raise AudioLoadError(f"{p.name}: the file states an invalid sample rate ({sample_rate}).")
    samples = np.ascontiguousarray(data.T)
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int((~finite).sum())
        raise AudioLoadError(
            f"{p.name}: {bad} samples are NaN or infinite; the file is damaged. "
            "Re-export it from the program that made it."
        )
    if not allow_silent and float(np.abs(samples).max()) < SILENCE_PEAK:
        raise AudioLoadError(f"{p.name}: the file is digital silence; there is nothing to separate.")
    return Audio(samples=samples, sample_rate=int(sample_rate), source_channels=samples.shape[0])


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """samples: (channels, n) -> (channels, round(n * to_rate / from_rate)), band-limited (soxr HQ)."""
    if from_rate == to_rate:
        return samples
    out = soxr.resample(np.ascontiguousarray(samples.T), from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


SUBTYPES = {"PCM_16": "PCM_16", "PCM_24": "PCM_24", "FLOAT": "FLOAT", "16": "PCM_16", "24": "PCM_24",
            "float": "FLOAT"}


def _umask() -> int:
    # Read, not set-and-restore: os.umask(0) would briefly affect files other threads create.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _publish(tmp: str, final: Path) -> None:
    """Give the temporary file normal permissions (mkstemp makes it private) and rename it into place."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, final)


def write_audio(path: PathLike, samples: np.ndarray, sample_rate: int, subtype: Optional[str] = None) -> Path:
    """Write (channels, n) float audio to `path` atomically: a temporary file beside it, then rename.

    The format comes from the extension (.wav or .flac). FLAC cannot hold float, so it defaults to 24-bit.
    On any failure the temporary file is removed and AudioWriteError is raised; the final name is
    never left holding a partial file.
    """
    p = Path(path)
    ext = p.suffix.lower()
    formats = {".wav": "WAV", ".flac": "FLAC"}
    if ext not in formats:
        raise AudioWriteError(f"{p.name}: can only write .wav or .flac files.")
    fmt = formats[ext]
    if subtype is None:
        subtype = "FLOAT" if fmt == "WAV" else "PCM_24"
    subtype = SUBTYPES.get(subtype, subtype)
    if fmt == "FLAC" and subtype == "FLOAT":
        raise AudioWriteError("FLAC cannot store floating-point samples; choose 16 or 24 bit.")
    if not p.parent.is_dir():
        raise AudioWriteError(f"{p.parent}: the output folder does not exist.")
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    fd = -1
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f"{ext}.part", dir=str(p.parent))
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            sf.write(fh, data.T, int(sample_rate), format=fmt, subtype=subtype)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, p)
        tmp = ""
    except (OSError, sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioWriteError(f"{p}: could not be written ({_short(exc)}).") from exc
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return p


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write a small text file (JSON, CSV) atomically."""
    p = Path(path)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=str(p.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, p)
        tmp = ""
    except OSError as exc:
        raise AudioWriteError(f"{p}: could not be written ({_short(exc)}).") from exc
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return p
