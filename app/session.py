"""Sessions: a separated song saved as `NAME.stemlab.json` (settings, plain data) plus
`NAME.stemlab.npz` (the song, the ungated stems and the activity curves), so it reopens without
running the network. Data only: numpy arrays loaded with allow_pickle=False, every field
type-checked, and the arrays file must sit beside the JSON the user chose.
"""

from __future__ import annotations

import json
import math
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import SessionError

SESSION_FORMAT = "stemlab-session/1"
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
) -> Path:
    """Write the arrays file, then the JSON (both atomically); returns the JSON path."""
    from engine.audio import write_file_atomic, write_text_atomic
    from engine.errors import AudioWriteError
    from engine.progress import check_cancel

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
        arrays = {
            "mixture": np.ascontiguousarray(mixture, np.float32),
            "ungated": np.ascontiguousarray(result.ungated, np.float32),
            "activity": np.ascontiguousarray(result.activity, np.float32),
        }
        check_cancel(cancel)
        write_file_atomic(npz_path, lambda fh: np.savez(fh, **arrays))
    write_text_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    return json_path


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
    if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT:
        raise _session_error(f"{where}: not a StemLab session file ({SESSION_FORMAT}).")
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
    return state, npz


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
    state, npz = read_session_state(json_path)
    where = json_path.name
    if not npz.is_file():
        raise _session_error(
            f"{where}: its arrays file {npz.name} is missing; it must sit beside the session."
        )
    if npz.is_symlink() or npz.resolve().parent != json_path.resolve().parent:
        raise _session_error(f"{where}: its arrays file {npz.name} must sit beside the session, not link elsewhere.")
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("mixture", "ungated", "activity") if k in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        # np.load reads the arrays file as a zip: one cut short (a copy or a save that did not
        # finish) has no central directory, or ends inside an array
        raise _session_error(incomplete_message(where, npz.name)) from exc
    except (OSError, ValueError) as exc:
        raise _session_error(f"{npz.name}: the session's arrays cannot be read ({exc}).") from exc
    check_cancel(cancel)
    for key in ("mixture", "ungated", "activity"):
        if key not in arrays:
            raise _session_error(f"{npz.name}: the array '{key}' is missing.")
        if arrays[key].dtype != np.float32:
            raise _session_error(f"{npz.name}: '{key}' must be float32, not {arrays[key].dtype}.")
    mixture, ungated, activity = arrays["mixture"], arrays["ungated"], arrays["activity"]
    n_src = len(state.sources)
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
