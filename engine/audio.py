"""Reading songs into float arrays, resampling, and writing stems atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioLoadError, AudioWriteError

PathLike = Union[str, os.PathLike]

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
# Float files may go over full scale, but not by 60 dB: a sample beyond this is damage, and one such
# sample would overflow the network's spectra into NaN across seconds of every stem.
MAX_SAMPLE_VALUE = 1000.0
# Below this peak a file is treated as digital silence (about -120 dBFS).
SILENCE_PEAK = 1e-6
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000
READ_BLOCK = 1 << 18  # frames read at a time


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

    Read a block at a time straight into the channel-first array, so loading costs the song and
    one block, not two or three copies of an hour-long file. Raises AudioLoadError with a message
    naming the problem for anything that is not a usable song. A silent file is refused unless
    allow_silent (the separation path turns it into silent stems instead).
    """
    p = Path(path)
    head = _check_readable(p)
    try:
        fh = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        raise AudioLoadError(f"{p.name}: cannot be read as audio: {_why_unreadable(p, head, exc)}. "
                             "StemLab reads WAV, FLAC, OGG and MP3.") from exc
    with fh:
        sample_rate, channels, stated = int(fh.samplerate), int(fh.channels), max(0, int(fh.frames))
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise AudioLoadError(
                f"{p.name}: the file states a sample rate of {sample_rate} Hz; StemLab reads "
                f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz."
            )
        if channels < 1:
            raise AudioLoadError(f"{p.name}: the file states {channels} channels.")
        samples, n, bad, peak = _read_blocks(fh, p.name, sample_rate, channels, stated)
        stated = max(stated, _header_frames(fh, n))
    if n == 0:
        raise AudioLoadError(f"{p.name}: the file holds no audio samples.")
    if bad:
        raise AudioLoadError(
            f"{p.name}: {bad} samples are NaN or infinite; the file is damaged. "
            "Re-export it from the program that made it."
        )
    if not allow_silent and peak < SILENCE_PEAK:
        raise AudioLoadError(f"{p.name}: the file is digital silence; there is nothing to separate.")
    audio = Audio(samples=samples, sample_rate=sample_rate, source_channels=channels)
    if stated and n < stated:
        audio.notes.append(
            f"the file ends early: {n / sample_rate:.1f} s of the {stated / sample_rate:.1f} s its header "
            "states could be read (cut short?)"
        )
    return audio


def _check_readable(p: Path) -> bytes:
    """The file's first bytes, after making sure it is a regular, readable, non-empty file; else an
    AudioLoadError that says which of those it is not."""
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioLoadError(f"{p}: a loop of symbolic links that leads to no file.") from exc
        if exc.errno == errno.ENOENT and os.path.islink(p):
            raise AudioLoadError(f"{p}: a symbolic link to {os.readlink(p)}, which does not exist.") from exc
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise AudioLoadError(f"{p}: no such file.") from exc
        raise AudioLoadError(f"{p}: cannot be looked at ({describe_os_error(exc)}).") from exc
    if stat.S_ISDIR(st.st_mode):
        raise AudioLoadError(f"{p}: is a folder, not an audio file.")
    if not stat.S_ISREG(st.st_mode):
        raise AudioLoadError(f"{p}: is not a regular file (a pipe, socket or device); save the song to a file first.")
    if st.st_size == 0:
        raise AudioLoadError(f"{p.name}: the file is empty (0 bytes).")
    try:
        with open(p, "rb") as fh:
            return fh.read(64)
    except PermissionError as exc:
        raise AudioLoadError(f"{p.name}: permission denied: this user may not read the file.") from exc
    except OSError as exc:
        raise AudioLoadError(f"{p.name}: cannot be read ({describe_os_error(exc)}).") from exc


def _why_unreadable(p: Path, head: bytes, exc: BaseException) -> str:
    """libsndfile's refusal in words about the file: what kind of file it is and what is wrong with it."""
    said = _short(exc)
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        fmt = head.find(b"fmt ")
        if 0 <= fmt <= len(head) - 24:
            channels, rate = struct.unpack_from("<HI", head, fmt + 10)
            if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
                return f"its WAV header states a sample rate of {rate} Hz (damaged header)"
            if channels == 0:
                return "its WAV header states 0 channels (damaged header)"
        return f"a WAV file whose header is damaged (libsndfile: {said})"
    if head.startswith(b"ID3"):
        size = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F) \
            if len(head) >= 10 else 10
        if p.stat().st_size <= size + 4:
            return "an MP3 file holding only its ID3 tag: no audio follows the tag"
        return f"an MP3 file (an ID3 tag) whose audio cannot be decoded (libsndfile: {said})"
    if "does not exist or is not a regular file" in said or "unknown format" in said.lower() \
            or "Format not recognised" in said:
        return "not a sound file in any format libsndfile recognises"
    if "SF_INFO" in said:
        return f"its header is damaged (libsndfile: {said})"
    return f"libsndfile says {said!r}"


def _header_frames(fh: sf.SoundFile, frames: int) -> int:
    """The length a WAV or AIFF header states, when libsndfile found less data (it reads what is there
    and says so only in its log: "data : 176400 (should be 88178)")."""
    m = re.search(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", fh.extra_info, re.M)
    if m is None:
        return frames
    declared, present = int(m.group(1)), int(m.group(2))
    if present <= 0 or declared <= present or declared >= 0xFFFFFF00:  # unknown-length streams say 2^32 - 1
        return frames
    return int(frames * declared / present)


def _read_blocks(fh: sf.SoundFile, name: str, sample_rate: int, channels: int, stated: int
                 ) -> tuple[np.ndarray, int, int, float]:
    """(samples (channels, n) float32 C-contiguous, n, count of non-finite samples, peak |sample|)."""
    try:
        out = np.empty((channels, max(stated, READ_BLOCK)), np.float32)
    except MemoryError as exc:
        raise AudioLoadError(
            f"{name}: the file states {stated / sample_rate / 3600:.1f} hours of audio, more than this "
            "computer's memory holds."
        ) from exc
    n, bad, extreme, peak = 0, 0, 0, 0.0
    while True:
        try:
            block = fh.read(READ_BLOCK, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
            where = f"{n / sample_rate:.1f} s" + (f" of the {stated / sample_rate:.1f} s" if stated else "")
            raise AudioLoadError(
                f"{name}: the audio data is damaged or cut short (decoding failed after {where}: "
                f"{_short(exc)}). Repair or re-export the file."
            ) from exc
        m = block.shape[0]
        if m == 0:
            break
        if n + m > out.shape[1]:  # longer than the header said (a stream without a length): grow
            grown = np.empty((channels, max(2 * out.shape[1], n + m)), np.float32)
            grown[:, :n] = out[:, :n]
            out = grown
        finite = np.isfinite(block)
        if not finite.all():
            bad += int((~finite).sum())
            block = np.where(finite, block, 0.0).astype(np.float32)
        block_peak = max(float(block.max()), -float(block.min()))
        if block_peak > MAX_SAMPLE_VALUE:
            extreme += int((np.abs(block) > MAX_SAMPLE_VALUE).sum())
        peak = max(peak, block_peak)
        out[:, n:n + m] = block.T
        n += m
    if extreme:
        raise AudioLoadError(
            f"{name}: {extreme} samples lie beyond ±{MAX_SAMPLE_VALUE:g} (+{20 * np.log10(MAX_SAMPLE_VALUE):.0f} dBFS), "
            "which no recording holds; the file is damaged. Re-export it from the program that made it.")
    if n < out.shape[1]:
        out = out[:, :n].copy()  # a view would keep the whole buffer alive
    return out, n, bad, peak


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


class _GuardedFile:
    """A binary file for soundfile to write through that keeps the OSError of a failed write.

    Given a path, libsndfile reports a full disk as "System error."; given a plain Python file,
    soundfile loses the exception inside its C callback and then fails an assertion. Keeping the
    OSError lets the message name the cause (no space left, file too large, ...).
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.error: Optional[OSError] = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        view, done = memoryview(data), 0
        try:
            while done < len(view):  # a short write (the disk filled up) is retried to learn why
                n = self.raw.write(view[done:])
                if not n:
                    break
                done += n
        except OSError as exc:
            self.error = exc
        return done

    def read(self, size: int = -1) -> bytes:
        return self.raw.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


@contextlib.contextmanager
def open_sound_writer(path: PathLike, sample_rate: int, channels: int, fmt: str, subtype: str,
                      sync: bool = True) -> Iterator[sf.SoundFile]:
    """A soundfile.SoundFile writing `path` (created or truncated) whose failures raise the real
    OSError (ENOSPC, EFBIG, ...) when there is one. With sync, the data reaches the disk (fsync)
    before the block ends, so a rename after it publishes a complete file even across a power cut.
    """
    if not sf.check_format(fmt, subtype):
        raise AudioWriteError(f"{Path(path).name}: {fmt} cannot hold {subtype} samples "
                              "(FLAC holds 16- or 24-bit integers; 32-bit float needs WAV).")
    with open(path, "wb", buffering=0) as raw:
        guard = _GuardedFile(raw)
        try:
            with sf.SoundFile(guard, "w", samplerate=int(sample_rate), channels=channels, format=fmt,
                              subtype=subtype) as snd:
                yield snd
        except (sf.LibsndfileError, RuntimeError, AssertionError) as exc:
            # soundfile asserts when its write callback wrote less than asked: the guard knows why
            if guard.error is not None:
                raise guard.error from exc
            raise
        if guard.error is not None:
            raise guard.error
        if sync:
            os.fsync(raw.fileno())


def describe_os_error(exc: BaseException) -> str:
    """A short reason for a failed write: the OS's words ("No space left on device") when known."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _short(exc)


def write_audio(path: PathLike, samples: np.ndarray, sample_rate: int, subtype: Optional[str] = None) -> Path:
    """Write (channels, n) float audio to `path` atomically: a temporary file beside it, then rename.

    The format comes from the extension (.wav or .flac). FLAC cannot hold float, so it defaults to 24-bit.
    On any failure (a full disk included) the temporary file is removed and AudioWriteError is raised;
    the final name is never left holding a partial file.
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
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f"{ext}.part", dir=str(p.parent))
        os.close(fd)
        with open_sound_writer(tmp, sample_rate, data.shape[0], fmt, subtype) as snd:
            snd.write(data.T)
        _publish(tmp, p)
        tmp = ""
    except (OSError, sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioWriteError(f"{p}: could not be written ({describe_os_error(exc)}).") from exc
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return p


def write_file_atomic(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file atomically: `write(fh)` fills a temporary file beside `path`, which is fsynced
    and renamed into place; on any failure it is removed and AudioWriteError names the OS's reason."""
    p = Path(path)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=str(p.parent))
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, p)
        tmp = ""
    except OSError as exc:
        raise AudioWriteError(f"{p}: could not be written ({describe_os_error(exc)}).") from exc
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return p


def write_text_atomic(path: PathLike, text: Union[str, Iterable[str]]) -> Path:
    """Write a text file (JSON, CSV) atomically; `text` may come in parts (a long CSV)."""

    def write(fh: BinaryIO) -> None:
        for part in [text] if isinstance(text, str) else text:
            fh.write(part.encode("utf-8"))

    return write_file_atomic(path, write)
