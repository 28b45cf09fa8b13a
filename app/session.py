"""Sessions: a separated song saved as `NAME.stemlab.json` (settings, plain data) plus
`NAME.stemlab.npz` (the song, the ungated stems and the activity curves), so it reopens without
running the network. Data only: numpy arrays loaded with allow_pickle=False, every field
type-checked, and the arrays file must sit beside the JSON the user chose.

Format 2 (`stemlab-session/2`) keeps the song and each ungated stem as 16-bit FLAC inside the npz (one
uint8 array of FLAC bytes each, scaled by its own peak where that exceeds full scale, the scale kept
beside it) and the activity curves as float32. Measured on the 50-s demo song with the bundled model
(format 1, float32: 125 MB): float16 npz, zip-deflated, 57 MB (0.46x, error -74 dB); FLAC 24-bit 53 MB
(0.42x, -123 dB); FLAC 16-bit 24 MB (0.19x, -74.5 dB below the stems' energy, peak error -96 dBFS).
16 bits is what a CD holds: its error lies under hearing and under the dither of any 16-bit export,
and 24 bits buys nothing audible for twice the size. A tenth would take lossy coding, whose error is
the codec's, tens of dB rather than -74 (and Vorbis through this libsndfile crashed when tried).
Activity stays float32: the gates threshold it, and a float16 curve could flip a gate decision.

Format 3 (`stemlab-session/3`, what is saved now) keeps the song as format 2 does (16-bit FLAC, so the
original is never put through a lossy codec) and codes each ungated stem as VBR MP3 at LAME's quality
V1.5 (on the demo song V0 made a session 0.111 of format 1's size, V1 0.101, V2 0.092; the song's FLAC
alone is 0.04 of it), with FLAC for any stem the MP3 encoder cannot take (a sample rate MP3 has no
mode for, or an encoder error) and for every stem when the caller asks for lossless stems
(stem_codec="flac"). The decoder in this
libsndfile (mpg123) reads LAME's delay and padding header and returns exactly the samples encoded; a
stream whose decoded length differs is aligned at save time by cross-correlation, and its lead (the
samples to drop) is stored, so a reopened stem lines up with the original to the sample and has the
session's length. Sizes and errors of each format are in docs/BENCHMARKS.md (bench/memory.py --session).
Formats 1 (float32 arrays) and 2 still open; a session is always saved in format 3.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import SessionError

SESSION_FORMAT = "stemlab-session/3"
FLAC_FORMAT = "stemlab-session/2"  # every track 16-bit FLAC; still read
OLD_FORMATS = ("stemlab-session/1", FLAC_FORMAT)  # format 1: float32 arrays; still read
STEM_CODECS = ("mp3", "flac")  # how format 3 codes the ungated stems: compact (the default) or lossless
# MP3's sample rates (MPEG-1, 2 and 2.5); a stem at any other rate is kept as FLAC
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
MP3_LEVEL = 0.15  # libsndfile's compression level, LAME's VBR quality / 10: V1.5, between V0 (highest) and V2
MAX_LEAD = 8192  # the most a decoder that ignores LAME's header could lead by: delay, one frame, decoder lag
ALIGN_PROBE = 1 << 17  # samples cross-correlated to measure that lead
FLAC_LEVEL = 0.5  # libFLAC's middle level: nearly the size of the highest at half the time
AUDIO_BLOCK = 1 << 20  # samples encoded or decoded at a time (no song-sized float temporaries)
SESSION_SUFFIX = ".stemlab.json"
MIN_RATE, MAX_RATE = 1000, 768000  # as engine.audio reads
MAX_MEDIAN_FRAMES = 100_001  # about 20 minutes at 86 frames a second


@dataclass
class SessionState:
    """Everything but the arrays: plain JSON types only."""

    song_name: str
    song_path: str
    sample_rate: int
    sources: list[str]
    model_name: str
    model_sample_rate: int
    n_fft: int
    hop_length: int
    device: str
    wiener: bool
    gating: dict[str, dict[str, Any]]  # per source: mode, threshold, median_frames, linked
    global_gating: dict[str, Any]  # mode, threshold, median_ms
    mixer: dict[str, Any]  # strips: [{gain_db, pan, mute, solo}], master_gain_db, play_original
    loop: Optional[list[float]] = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # the song's tempo, beats and key (app.grid.music_to_json) and each stem's; sessions saved before
    # the grid have neither, and the app measures them again
    music: Optional[dict[str, Any]] = None
    stem_music: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the teaching view's folder of true stems, reattached on open while it still exists
    truth_folder: Optional[str] = None


def session_paths(path: Path) -> tuple[Path, Path]:
    """NAME.stemlab.json -> (json path, npz path beside it)."""
    p = Path(path)
    name = p.name
    if name.endswith(SESSION_SUFFIX):
        base = name[: -len(SESSION_SUFFIX)]
    elif p.suffix == ".json":
        base = p.stem
    else:
        base = name
    return p.with_name(base + SESSION_SUFFIX), p.with_name(base + ".stemlab.npz")


def _session_error(msg: str) -> SessionError:
    return SessionError(msg)


def incomplete_message(session_name: str, damaged: Optional[str] = None) -> str:
    """What a user is told of a session whose JSON or arrays file is truncated or corrupt."""
    which = "the file" if damaged is None else f"its arrays file {damaged}"
    return f"{session_name} is not a complete StemLab session ({which} is cut short or damaged)."


def save_session(
    path: Path,
    state: SessionState,
    mixture: np.ndarray,
    result: Any,
    lock: threading.Lock,
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
    stem_codec: str = "mp3",
) -> Path:
    """Write the arrays file, then the JSON (both atomically); returns the JSON path. stem_codec "mp3" codes
    the ungated stems as MP3 (FLAC for any the encoder cannot take), "flac" keeps them lossless."""
    from engine.audio import write_file_atomic, write_text_atomic
    from engine.errors import AudioWriteError
    from engine.progress import check_cancel
    from engine.separator import release_pages

    if stem_codec not in STEM_CODECS:
        raise ValueError(f"stem_codec must be one of {STEM_CODECS}, not {stem_codec!r}")
    json_path, npz_path = session_paths(path)
    doc = {
        "format": SESSION_FORMAT,
        "data": npz_path.name,
        "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
        **state.__dict__,
    }
    with lock:
        if result.ungated is None:
            raise AudioWriteError("This separation kept no ungated stems; it cannot be saved as a session.")
        tracks = [mixture] + [result.ungated[k] for k in range(len(state.sources))]
        check_cancel(cancel)
        # libFLAC and LAME run outside the GIL: a track per core halves a long song's save on two cores
        codecs = ["flac"] + [stem_codec] * (len(tracks) - 1)  # the song itself is always lossless
        with ThreadPoolExecutor(max_workers=_workers(len(tracks))) as pool:
            encoded = list(pool.map(lambda k: _encode_track(tracks[k], state.sample_rate, codecs[k]),
                                    range(len(tracks))))
        release_pages(result.ungated)
        arrays: dict[str, np.ndarray] = {"mixture_flac": encoded[0].blob}
        arrays.update({f"stem_{t.codec}_{k}": t.blob for k, t in enumerate(encoded[1:])})
        arrays["scales"] = np.asarray([t.scale for t in encoded], np.float32)
        arrays["stem_leads"] = np.asarray([t.lead for t in encoded[1:]], np.int32)
        arrays["activity"] = np.ascontiguousarray(result.activity, np.float32)
    check_cancel(cancel)
    write_file_atomic(npz_path, lambda fh: np.savez(fh, **arrays))
    write_text_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    return json_path


FLAC_MAX_RATE = 655350  # the most a FLAC header holds; the session's own rate is what is used on load


def _flac_bytes(track: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """track: (channels, n) float -> (16-bit stereo FLAC bytes as a uint8 array, the scale it was divided by).
    A track that peaks above full scale (a decoded lossy song often does) is scaled down to fit rather
    than clipped; encoded a block at a time, so no song-sized float temporary is made."""
    import soundfile as sf

    from engine.audio import to_stereo
    from engine.separator import release_pages

    n = track.shape[-1]
    scale = _peak_scale(track)  # a long song's re-gating copy on disk: read a block at a time, not kept resident
    buf = io.BytesIO()
    rate = sample_rate if sample_rate <= FLAC_MAX_RATE else 48000
    with sf.SoundFile(buf, "w", samplerate=rate, channels=2, format="FLAC", subtype="PCM_16",
                      compression_level=FLAC_LEVEL) as fh:
        for a in range(0, n, AUDIO_BLOCK):
            block = to_stereo(np.asarray(track[:, a:a + AUDIO_BLOCK], np.float32)).T
            fh.write(block / np.float32(scale) if scale != 1.0 else block)
            release_pages(track)
    return np.frombuffer(buf.getvalue(), np.uint8), scale


@dataclass
class _Coded:
    """One track as stored: its bytes, the codec ("flac" or "mp3"), the scale it was divided by and, for
    MP3, the samples its decoded stream leads the original by (0 where the decoder compensates)."""

    blob: np.ndarray
    codec: str
    scale: float
    lead: int = 0


def _encode_track(track: np.ndarray, sample_rate: int, codec: str) -> _Coded:
    """A track coded as asked; an MP3 the encoder refuses or breaks on falls back to FLAC for that track."""
    import soundfile as sf

    if codec == "mp3" and sample_rate in MP3_RATES:
        try:
            blob, scale = _mp3_bytes(track, sample_rate)
            return _Coded(blob, "mp3", scale, _measure_lead(blob, track, scale))
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            pass  # kept losslessly below
    blob, scale = _flac_bytes(track, sample_rate)
    return _Coded(blob, "flac", scale)


def _peak_scale(track: np.ndarray) -> float:
    """1, or the track's peak where it exceeds full scale (read a block at a time)."""
    from engine.separator import release_pages

    peak = 0.0
    for a in range(0, track.shape[-1], AUDIO_BLOCK):
        peak = max(peak, float(np.abs(track[:, a:a + AUDIO_BLOCK]).max()))
        release_pages(track)
    return max(1.0, peak)


def _mp3_bytes(track: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """track: (channels, n) float -> (stereo VBR MP3 bytes as a uint8 array, the scale it was divided by),
    scaled and encoded a block at a time as _flac_bytes does."""
    import soundfile as sf

    from engine.audio import to_stereo
    from engine.separator import release_pages

    n = track.shape[-1]
    scale = _peak_scale(track)
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=sample_rate, channels=2, format="MP3", subtype="MPEG_LAYER_III",
                      compression_level=MP3_LEVEL, bitrate_mode="VARIABLE") as fh:
        for a in range(0, n, AUDIO_BLOCK):
            block = to_stereo(np.asarray(track[:, a:a + AUDIO_BLOCK], np.float32)).T
            fh.write(block / np.float32(scale) if scale != 1.0 else block)
            release_pages(track)
    return np.frombuffer(buf.getvalue(), np.uint8), scale


def _measure_lead(blob: np.ndarray, track: np.ndarray, scale: float) -> int:
    """How many samples the decoded stream of an MP3 leads the track it was encoded from: 0 when the
    decoder returns exactly the track's length (it honoured LAME's delay and padding header), else the lag
    of the best cross-correlation of the first ALIGN_PROBE samples (0 for a silent opening)."""
    import soundfile as sf

    from engine.audio import to_stereo

    n = track.shape[-1]
    with sf.SoundFile(io.BytesIO(blob.tobytes())) as fh:
        if fh.frames == n:
            return 0
        decoded = fh.read(min(n, ALIGN_PROBE) + MAX_LEAD, dtype="float32", always_2d=True).sum(axis=1)
    original = to_stereo(np.asarray(track[:, :min(n, ALIGN_PROBE)], np.float32)).sum(axis=0) / np.float32(scale)
    return best_lag(original, decoded, MAX_LEAD)


def best_lag(original: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    """The lag l in [0, max_lag] at which decoded[l:] best matches original (cross-correlation by FFT);
    0 when the original is silent."""
    if not np.any(original):
        return 0
    size = 1 << int(np.ceil(np.log2(len(original) + len(decoded))))
    corr = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(original, size)), size)
    return int(np.argmax(corr[: max_lag + 1]))


def _workers(n_tracks: int) -> int:
    return max(1, min(n_tracks, os.cpu_count() or 1))


def _decode_flac(blob: np.ndarray, scale: float, out: np.ndarray) -> bool:
    """Decode FLAC bytes into out (2, n) float32 times scale; False if the stream is not stereo of n frames,
    _DamagedAudio if it breaks off."""
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(blob.tobytes())) as fh:
        if fh.channels != 2 or fh.frames != out.shape[-1]:
            return False
        pos = 0
        while pos < out.shape[-1]:
            block = fh.read(AUDIO_BLOCK, dtype="float32")
            if not len(block):  # the header promised more frames than the stream holds
                raise _DamagedAudio("the FLAC stream ends early")
            out[:, pos:pos + len(block)] = block.T
            pos += len(block)
    if scale != 1.0:
        out *= np.float32(scale)
    return True


def _decode_mp3(blob: np.ndarray, scale: float, lead: int, out: np.ndarray) -> bool:
    """Decode MP3 bytes into out (2, n) float32 times scale, dropping the first `lead` decoded samples and
    padding with silence the last few a decoder may not return (at most MAX_LEAD); False if the stream is
    not stereo, _DamagedAudio if it breaks off well before n samples."""
    import soundfile as sf

    n = out.shape[-1]
    with sf.SoundFile(io.BytesIO(blob.tobytes())) as fh:
        if fh.channels != 2:
            return False
        if lead:
            fh.read(lead, dtype="float32")
        pos = 0
        while pos < n:
            block = fh.read(min(AUDIO_BLOCK, n - pos), dtype="float32")
            if not len(block):
                break
            out[:, pos:pos + len(block)] = block.T
            pos += len(block)
    if pos < n - MAX_LEAD:
        raise _DamagedAudio("the MP3 stream ends early")
    out[:, pos:] = 0.0
    if scale != 1.0:
        out *= np.float32(scale)
    return True


def _flac_frames(blob: np.ndarray) -> int:
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(blob.tobytes())) as fh:
        return int(fh.frames) if fh.channels == 2 else -1


def _require(doc: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    if key not in doc:
        raise _session_error(f"{where}: the session lacks '{key}'.")
    value = doc[key]
    ok = isinstance(value, kind) and not (kind in (int, float, (int, float)) and isinstance(value, bool))
    if not ok:
        raise _session_error(f"{where}: '{key}' has the wrong type.")
    return value


def _optional(doc: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    if doc.get(key) is None:
        return None
    return _require(doc, key, kind, where)


def read_session_state(path: Path) -> tuple[SessionState, Path]:
    """Parse and validate the JSON; returns the state and the arrays file beside it."""
    state, npz, _ = _read_document(path)
    return state, npz


def _read_document(path: Path) -> tuple[SessionState, Path, str]:
    """read_session_state, with the session's format (SESSION_FORMAT or one of OLD_FORMATS)."""
    p = Path(path)
    where = p.name
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _session_error(f"{where}: cannot be read as a StemLab session ({exc}).") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{"):  # a JSON object that stops or breaks part-way
            raise _session_error(incomplete_message(where)) from exc
        raise _session_error(f"{where}: cannot be read as a StemLab session ({exc}).") from exc
    if not isinstance(doc, dict) or doc.get("format") not in (SESSION_FORMAT, *OLD_FORMATS):
        raise _session_error(f"{where}: not a StemLab session file ({SESSION_FORMAT}).")
    fmt = str(doc["format"])
    data_name = _require(doc, "data", str, where)
    if Path(data_name).name != data_name or data_name in ("", ".", ".."):
        raise _session_error(f"{where}: the arrays file must sit beside the session, not at {data_name!r}.")
    npz = p.parent / data_name
    state = SessionState(
        song_name=_require(doc, "song_name", str, where),
        song_path=_require(doc, "song_path", str, where),
        sample_rate=_require(doc, "sample_rate", int, where),
        sources=_require(doc, "sources", list, where),
        model_name=_require(doc, "model_name", str, where),
        model_sample_rate=_require(doc, "model_sample_rate", int, where),
        n_fft=_require(doc, "n_fft", int, where),
        hop_length=_require(doc, "hop_length", int, where),
        device=_require(doc, "device", str, where),
        wiener=_require(doc, "wiener", bool, where),
        gating=_require(doc, "gating", dict, where),
        global_gating=_require(doc, "global_gating", dict, where),
        mixer=_require(doc, "mixer", dict, where),
        loop=_optional(doc, "loop", list, where),
        notes=[n for n in doc["notes"] if isinstance(n, str)] if isinstance(doc.get("notes"), list) else [],
        timings={
            k: float(v)
            for k, v in doc.get("timings", {}).items()
            if isinstance(k, str) and isinstance(v, (int, float))
        }
        if isinstance(doc.get("timings"), dict)
        else {},
        music=_optional(doc, "music", dict, where),
        stem_music=_optional(doc, "stem_music", dict, where) or {},
        truth_folder=_optional(doc, "truth_folder", str, where),
    )
    if not state.sources or not all(isinstance(s, str) and s for s in state.sources):
        raise _session_error(f"{where}: 'sources' must be a list of names.")
    # Stems are exported as <source>.wav into the folder the user picks: a name must stay a plain file name.
    if len(set(state.sources)) != len(state.sources) or not all(_plain_name(s) for s in state.sources):
        raise _session_error(f"{where}: the source names must be distinct plain names, not paths.")
    for key in ("sample_rate", "model_sample_rate"):
        if not MIN_RATE <= getattr(state, key) <= MAX_RATE:
            raise _session_error(f"{where}: '{key}' must lie between {MIN_RATE} and {MAX_RATE} Hz.")
    if not (16 <= state.n_fft <= 1 << 16 and 1 <= state.hop_length <= state.n_fft):
        raise _session_error(f"{where}: the STFT sizes are out of range.")
    if state.n_fft % state.hop_length:
        raise _session_error(f"{where}: n_fft must be a multiple of hop_length.")
    _check_settings(state, where)
    return state, npz, fmt


def _plain_name(name: str) -> bool:
    return (
        0 < len(name) <= 100
        and name not in (".", "..")
        and Path(name).name == name
        and not any(c in name for c in '\\/:*?"<>|\0')
    )


def _finite(value: Any, lo: float, hi: float) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and lo <= value <= hi
    )


def _check_settings(state: SessionState, where: str) -> None:
    """Refuse settings of the wrong type or out of range: the GUI restores them into its controls, and
    gating runs with them (a median filter of 10^12 frames is a memory bomb, not a setting)."""

    def bad(what: str) -> SessionError:
        return _session_error(f"{where}: {what} is invalid.")

    from engine.gating import GATING_MODES

    for name, g in state.gating.items():
        if name not in state.sources or not isinstance(g, dict):
            raise bad(f"the gating of {name!r}")
        if g.get("mode", "binary") not in GATING_MODES or not _finite(g.get("threshold", 0.5), 0.0, 1.0):
            raise bad(f"the gating of {name}")
        frames = g.get("median_frames", 9)
        if not (isinstance(frames, int) and not isinstance(frames, bool) and 1 <= frames <= MAX_MEDIAN_FRAMES):
            raise bad(f"the median filter length of {name}")
        if not _finite(g.get("median_ms", 100.0), 0.0, 1e6) or not isinstance(g.get("linked", True), bool):
            raise bad(f"the gating of {name}")
    gg = state.global_gating
    if (
        gg.get("mode", "binary") not in GATING_MODES
        or not _finite(gg.get("threshold", 0.5), 0.0, 1.0)
        or not _finite(gg.get("median_ms", 100.0), 0.0, 1e6)
    ):
        raise bad("the global gating")
    mixer = state.mixer
    strips = mixer.get("strips", [])
    if not isinstance(strips, list) or len(strips) > len(state.sources):
        raise bad("the mixer")
    for strip in strips:
        if not (
            isinstance(strip, dict)
            and _finite(strip.get("gain_db", 0.0), -1e3, 1e3)
            and _finite(strip.get("pan", 0.0), -1.0, 1.0)
            and isinstance(strip.get("mute", False), bool)
            and isinstance(strip.get("solo", False), bool)
        ):
            raise bad("a mixer strip")
    if not _finite(mixer.get("master_gain_db", 0.0), -1e3, 1e3) or not isinstance(
        mixer.get("play_original", False), bool
    ):
        raise bad("the master strip")
    from .grid import StemMusic, music_from_json

    if state.music is not None:
        try:
            music_from_json(state.music)
        except ValueError as exc:
            raise _session_error(f"{where}: the song's music analysis is invalid ({exc}).") from exc
    for name, m in state.stem_music.items():
        if name not in state.sources:
            raise bad(f"the music of {name!r}")
        try:
            StemMusic.from_json(m)
        except ValueError as exc:
            raise _session_error(f"{where}: the music of {name} is invalid ({exc}).") from exc
    loop = state.loop
    if loop is not None and not (
        len(loop) == 2 and all(_finite(v, 0.0, 1e7) for v in loop) and loop[0] < loop[1]
    ):
        raise bad("the loop region")


class _DamagedAudio(Exception):
    """A FLAC or MP3 stream inside a format-2 or 3 arrays file that does not decode to what the session states."""


def _read_float32_arrays(data: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Format 1: mixture (2, n), ungated (n_sources, 2, n) and activity (n_sources, n_frames), float32."""
    arrays = {k: data[k] for k in ("mixture", "ungated", "activity") if k in data.files}
    for key in ("mixture", "ungated", "activity"):
        if key not in arrays:
            raise _session_error(f"{name}: the array '{key}' is missing.")
        if arrays[key].dtype != np.float32:
            raise _session_error(f"{name}: '{key}' must be float32, not {arrays[key].dtype}.")
    return arrays["mixture"], arrays["ungated"], arrays["activity"]


def _read_coded_arrays(data: Any, n_src: int, name: str, cancel: Optional[threading.Event], lossy: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Format 2: FLAC bytes of the mixture and of each stem, their scales, activity float32. Format 3
    (lossy): the same, each stem's bytes MP3 (stem_mp3_k) or FLAC (stem_flac_k), and the leads of the MP3s."""
    import soundfile as sf

    from engine.progress import check_cancel

    keys = ["mixture_flac"]
    for k in range(n_src):
        keys.append(f"stem_mp3_{k}" if lossy and f"stem_mp3_{k}" in data.files else f"stem_flac_{k}")
    for key in keys + ["scales", "activity"] + (["stem_leads"] if lossy else []):
        if key not in data.files:
            raise _session_error(f"{name}: the array '{key}' is missing.")
    leads = np.zeros(n_src, np.int64)
    if lossy:
        stored = data["stem_leads"]
        if stored.dtype != np.int32 or stored.shape != (n_src,) or (stored < 0).any() or (stored > MAX_LEAD).any():
            raise _session_error(f"{name}: 'stem_leads' must be {n_src} int32 values from 0 to {MAX_LEAD}.")
        leads = stored.astype(np.int64)
    scales, activity = data["scales"], data["activity"]
    if scales.dtype != np.float32 or scales.shape != (n_src + 1,):
        raise _session_error(f"{name}: 'scales' must be {n_src + 1} float32 values.")
    if not (np.isfinite(scales).all() and (scales >= 1.0).all() and (scales <= 1e6).all()):
        raise _session_error(f"{name}: 'scales' must lie between 1 and 10^6.")
    if activity.dtype != np.float32:
        raise _session_error(f"{name}: 'activity' must be float32, not {activity.dtype}.")
    try:
        blobs = []
        for key in keys:
            blob = data[key]
            if blob.dtype != np.uint8 or blob.ndim != 1:
                raise _session_error(f"{name}: '{key}' must hold {key.split('_')[-2].upper()} bytes (uint8).")
            blobs.append(blob)
        n = _flac_frames(blobs[0])
        if n <= 0:
            raise _session_error(f"{name}: 'mixture' must be (2, n_samples).")
        mixture = np.empty((2, n), np.float32)
        ungated = np.empty((n_src, 2, n), np.float32)
        targets = [mixture] + [ungated[k] for k in range(n_src)]
        check_cancel(cancel)
        def decode(k: int) -> bool:
            if "_mp3_" in keys[k]:
                return _decode_mp3(blobs[k], float(scales[k]), int(leads[k - 1]), targets[k])
            return _decode_flac(blobs[k], float(scales[k]), targets[k])

        with ThreadPoolExecutor(max_workers=_workers(len(blobs))) as pool:
            decoded = list(pool.map(decode, range(len(blobs))))
        for k, ok in enumerate(decoded):
            if not ok:
                what = "mixture" if k == 0 else "ungated"
                raise _session_error(f"{name}: '{what}' must be ({n_src}, 2, {n}).")
    except (sf.LibsndfileError, RuntimeError) as exc:  # soundfile's errors for a stream that breaks off
        raise _DamagedAudio(str(exc)) from exc
    return mixture, ungated, activity


@dataclass
class LoadedSession:
    state: SessionState
    json_path: Path
    mixture: np.ndarray  # (2, n_samples)
    result: Any  # engine.SeparationResult, stems gated per state.gating
    music: Any = None  # engine.music.MusicInfo, None when the session has no analysis
    stem_music: dict[str, Any] = field(default_factory=dict)  # {source: app.grid.StemMusic}


def load_session(
    path: Path, *, progress: Any = None, cancel: Optional[threading.Event] = None
) -> LoadedSession:
    """Read a session and rebuild its SeparationResult (stems re-gated from the cached data)."""
    from engine import GatingSettings, SeparationResult
    from engine.progress import check_cancel
    from engine.spectral import STFTConfig

    json_path = Path(path)
    state, npz, fmt = _read_document(json_path)
    where = json_path.name
    if not npz.is_file():
        raise _session_error(
            f"{where}: its arrays file {npz.name} is missing; it must sit beside the session."
        )
    if npz.is_symlink() or npz.resolve().parent != json_path.resolve().parent:
        raise _session_error(f"{where}: its arrays file {npz.name} must sit beside the session, not link elsewhere.")
    n_src = len(state.sources)
    try:
        with np.load(npz, allow_pickle=False) as data:
            if fmt in (SESSION_FORMAT, FLAC_FORMAT):
                mixture, ungated, activity = _read_coded_arrays(data, n_src, npz.name, cancel,
                                                                lossy=fmt == SESSION_FORMAT)
            else:
                mixture, ungated, activity = _read_float32_arrays(data, npz.name)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        # np.load reads the arrays file as a zip: one cut short (a copy or a save that did not
        # finish) has no central directory, or ends inside an array, or fails its CRC
        raise _session_error(incomplete_message(where, npz.name)) from exc
    except (OSError, ValueError) as exc:
        raise _session_error(f"{npz.name}: the session's arrays cannot be read ({exc}).") from exc
    except _DamagedAudio as exc:
        raise _session_error(incomplete_message(where, npz.name)) from exc
    check_cancel(cancel)
    if mixture.ndim != 2 or mixture.shape[0] != 2 or mixture.shape[1] == 0:
        raise _session_error(f"{npz.name}: 'mixture' must be (2, n_samples).")
    if ungated.shape != (n_src, 2, mixture.shape[1]):
        raise _session_error(f"{npz.name}: 'ungated' must be ({n_src}, 2, {mixture.shape[1]}).")
    if activity.ndim != 2 or activity.shape[0] != n_src:
        raise _session_error(f"{npz.name}: 'activity' must hold one curve per source.")
    if not (np.isfinite(activity).all() and np.isfinite(mixture).all()):
        raise _session_error(f"{npz.name}: the arrays hold NaN or infinite values.")
    n_model = int(round(mixture.shape[1] * state.model_sample_rate / state.sample_rate))
    if abs(activity.shape[1] - (n_model // state.hop_length + 1)) > 2:
        raise _session_error(f"{npz.name}: 'activity' does not hold one value per frame of the song.")
    if activity.size and (float(activity.min()) < 0.0 or float(activity.max()) > 1.0):
        raise _session_error(f"{npz.name}: 'activity' must hold probabilities (0 to 1).")
    gating: dict[str, Any] = {}
    for s in state.sources:
        g = state.gating.get(s, {})
        try:
            gating[s] = GatingSettings(
                mode=str(g.get("mode", "binary")),
                threshold=float(g.get("threshold", 0.5)),
                median_frames=int(g.get("median_frames", 9)),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise _session_error(f"{where}: the gating of {s} is invalid ({exc}).") from exc
    result = SeparationResult(
        sources=list(state.sources),
        sample_rate=state.sample_rate,
        stems=ungated.copy(),
        activity=activity,
        model_sample_rate=state.model_sample_rate,
        stft_config=STFTConfig(state.n_fft, state.hop_length),
        gating=gating,
        ungated=ungated,
        device=state.device,
        model_name=state.model_name,
        notes=list(state.notes),
        timings=dict(state.timings),
    )
    if state.wiener:
        result.notes.append(
            "reopened without Wiener refinement (a session keeps only the plain stems); "
            "separate again to refine"
        )
    result.regate(gating)
    from .grid import StemMusic, music_from_json

    music = music_from_json(state.music) if state.music is not None else None
    stem_music = {s: StemMusic.from_json(m) for s, m in state.stem_music.items()}
    return LoadedSession(state, json_path, mixture, result, music, stem_music)
