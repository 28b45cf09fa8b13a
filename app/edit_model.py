"""The edit as plain Python: the song, the separation's identity, every stem's mix and gating, the
master, the loop, with change events, undo/redo and the session's plain dicts (napari's ViewerModel idea).

Every view reads this model and writes the user's gestures into it: the mixer strips and lanes, the
audio mixer, the exported separation.json, the saved session. Nothing here imports Qt (an
import-linter contract in pyproject.toml keeps it so), so the tests drive it without a window.

Settings are kept per source *name*, not per row: a re-separation with the same sources keeps them
all, one with other sources keeps those that still exist, and an undo step stays meaningful across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

GATING_MODES = ("binary", "soft", "none")  # as engine.gating.GATING_MODES (which would import torch)
DEFAULT_MEDIAN_MS = 100.0
MEDIAN_MS_RANGE = (10.0, 2000.0)  # what the median control offers (app.widgets)
GAIN_DB_RANGE = (-60.0, 12.0)  # the faders' travel (app.mixer.MIN_GAIN_DB, MAX_GAIN_DB)
HISTORY_LIMIT = 500
STRIP_WORDS = {"gain_db": "gain", "pan": "pan", "mute": "mute", "solo": "solo"}  # for "Undo gain of vocals"
# The controls' steps: values are kept at them, so what the screen shows is what plays and is saved.
GAIN_STEP_DB, PAN_STEP, THRESHOLD_STEP, MEDIAN_STEP_MS = 0.5, 0.01, 0.01, 1.0


def ms_to_frames(ms: float, frame_rate: float) -> int:
    """Median length in ms -> an odd number of activity frames, at least 1 (engine.gating.ms_to_frames
    and the median control round alike; a test holds them equal)."""
    return max(1, int(round(ms / 1000.0 * frame_rate))) | 1


def frames_to_ms(n_frames: int, frame_rate: float) -> float:
    return 1000.0 * n_frames / frame_rate


# ---- the pieces of an edit (immutable: a snapshot is the state, so undo keeps references) ---------------


@dataclass(frozen=True)
class Strip:
    """One stem's channel strip, in user units."""

    gain_db: float = 0.0
    pan: float = 0.0  # -1 (left) .. 1 (right)
    mute: bool = False
    solo: bool = False


@dataclass(frozen=True)
class GlobalGating:
    """The master gating: the mode is the app's for every stem; threshold and median for linked stems."""

    mode: str = "binary"
    threshold: float = 0.5
    median_ms: float = DEFAULT_MEDIAN_MS


@dataclass(frozen=True)
class StemGating:
    """A stem's own gating; while linked ("follow master") the master's threshold and median apply."""

    threshold: float = 0.5
    median_ms: float = DEFAULT_MEDIAN_MS
    linked: bool = True


@dataclass(frozen=True)
class GateValues:
    """What a stem is gated with, in the engine's terms (engine.GatingSettings' fields)."""

    mode: str
    threshold: float
    median_frames: int


@dataclass(frozen=True)
class SongInfo:
    name: str
    path: str
    sample_rate: int
    duration_s: float


@dataclass(frozen=True)
class SeparationInfo:
    """Which separation the edit applies to: its model and its sources (in model order)."""

    model_name: str
    sources: tuple[str, ...]
    model_sample_rate: int
    hop_length: int

    @property
    def frame_rate(self) -> float:
        return self.model_sample_rate / self.hop_length


@dataclass(frozen=True)
class Mix:
    """The undoable part of the edit: what the user set. strips and stems are keyed by source name;
    a source without an entry has the defaults (Strip(), linked gating)."""

    strips: Mapping[str, Strip] = field(default_factory=dict)
    master_gain_db: float = 0.0
    gating: GlobalGating = GlobalGating()
    stems: Mapping[str, StemGating] = field(default_factory=dict)
    loop: Optional[tuple[float, float]] = None  # the looped region in seconds; None: play through

    def __post_init__(self) -> None:
        # Only what differs from the defaults is kept, so two mixes that sound alike compare equal
        # (a session read back, a setting changed and changed back: nothing unsaved).
        object.__setattr__(self, "strips", {s: st for s, st in self.strips.items() if st != Strip()})
        object.__setattr__(self, "stems", {s: g for s, g in self.stems.items() if not g.linked})

    def strip(self, source: str) -> Strip:
        return self.strips.get(source, Strip())

    def stem_gating(self, source: str) -> StemGating:
        own = self.stems.get(source)
        if own is None:
            return StemGating(self.gating.threshold, self.gating.median_ms, True)
        return own

    def effective(self, source: str) -> StemGating:
        """The threshold and median that gate the stem (the master's while it is linked)."""
        own = self.stem_gating(source)
        if own.linked:
            return StemGating(self.gating.threshold, self.gating.median_ms, True)
        return own

    def with_strip(self, source: str, strip: Strip) -> "Mix":
        return replace(self, strips={**self.strips, source: strip})

    def with_stem(self, source: str, gating: StemGating) -> "Mix":
        return replace(self, stems={**self.stems, source: gating})


def make_global_gating(
    mode: Any, threshold: Any, median_ms: Any, fallback: GlobalGating = GlobalGating()
) -> GlobalGating:
    """A master gating on the controls' steps; a value out of range is clamped, one of the wrong type
    (a damaged settings file) keeps the fallback's."""
    return GlobalGating(
        mode if mode in GATING_MODES else fallback.mode,
        _step(_clamp(threshold, 0.0, 1.0, fallback.threshold), THRESHOLD_STEP),
        _step(_clamp(median_ms, *MEDIAN_MS_RANGE, fallback.median_ms), MEDIAN_STEP_MS),
    )


def carry_over(mix: Mix, sources: Sequence[str], tuned: Optional[Mapping[str, StemGating]] = None) -> Mix:
    """The mix for a separation into `sources`: settings of sources the mix knows carry over, the
    others start at the defaults (or at `tuned`, the model card's gating for them). Settings of
    sources that are gone are dropped."""
    tuned = tuned or {}
    strips = {s: mix.strips[s] for s in sources if s in mix.strips}
    stems = {s: mix.stems[s] for s in sources if s in mix.stems}
    for s in sources:
        if s not in stems and s in tuned:
            stems[s] = tuned[s]
    return replace(mix, strips=strips, stems=stems)


# ---- change events -------------------------------------------------------------------------------


class Event:
    """A list of callbacks (no Qt): emit() calls each with the event's arguments, in connection order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []

    def connect(self, callback: Callable[..., None]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class EditEvents:
    """What changed. strips(sources) and gating(sources, global_changed) name the stems concerned;
    gating's sources are those whose controls or effective settings changed."""

    def __init__(self) -> None:
        self.song = Event()  # a song was opened (the edit started over)
        self.separation = Event()  # a separation is on (or off); its settings were carried over
        self.strips = Event()  # (sources,)
        self.master = Event()  # master gain or the A/B switch
        self.gating = Event()  # (sources, global_changed)
        self.loop = Event()  # the loop's region or whether it loops
        self.history = Event()  # undo/redo availability or the unsaved state changed


# ---- undo and redo ---------------------------------------------------------------------------------


class History:
    """Snapshots of the Mix before each change. Consecutive changes with the same coalescing key (one
    fader dragged, one loop edge moved) make one step until seal() ends the gesture."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self.limit = limit
        self._undo: list[tuple[str, Mix]] = []
        self._redo: list[tuple[str, Mix]] = []
        self._open_key: Optional[str] = None

    def record(self, before: Mix, label: str, key: Optional[str] = None) -> None:
        if key is not None and key == self._open_key and self._undo:
            return  # the same gesture goes on: its step already holds the state before it
        self._undo.append((label, before))
        del self._undo[: -self.limit]
        self._redo.clear()
        self._open_key = key

    def seal(self) -> None:
        self._open_key = None

    def undo(self, current: Mix) -> Optional[Mix]:
        if not self._undo:
            return None
        label, before = self._undo.pop()
        self._redo.append((label, current))
        self._open_key = None
        return before

    def redo(self, current: Mix) -> Optional[Mix]:
        if not self._redo:
            return None
        label, after = self._redo.pop()
        self._undo.append((label, current))
        self._open_key = None
        return after

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._open_key = None

    @property
    def undo_label(self) -> Optional[str]:
        return self._undo[-1][0] if self._undo else None

    @property
    def redo_label(self) -> Optional[str]:
        return self._redo[-1][0] if self._redo else None


# ---- the model -------------------------------------------------------------------------------------


class EditModel:
    """The one truth of the edit. Setters validate, record an undo step, and emit what changed."""

    def __init__(self, gating: GlobalGating = GlobalGating()) -> None:
        self.events = EditEvents()
        self.history = History()
        self.song: Optional[SongInfo] = None
        self.separation: Optional[SeparationInfo] = None
        self.mix = Mix(gating=gating)
        self.region: tuple[float, float] = (0.0, 1.0)  # the highlighted region, looped or not
        self.play_original = False  # the A/B switch: a way of listening, not an edit (no undo step)
        self._generation = 0  # counts separations, so a new one is unsaved even with equal settings
        self._saved: Any = self._snapshot()

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def sources(self) -> tuple[str, ...]:
        return self.separation.sources if self.separation is not None else ()

    @property
    def looping(self) -> bool:
        return self.mix.loop is not None

    def strip(self, source: str) -> Strip:
        return self.mix.strip(source)

    def stem_gating(self, source: str) -> StemGating:
        return self.mix.stem_gating(source)

    def effective_gating(self, source: str) -> StemGating:
        return self.mix.effective(source)

    def audible(self) -> list[bool]:
        """Per source (in order): heard, by mute and solo (the A/B switch aside)."""
        strips = [self.strip(s) for s in self.sources]
        any_solo = any(st.solo for st in strips)
        return [not st.mute and (st.solo or not any_solo) for st in strips]

    def gate_values(
        self, sources: Optional[Sequence[str]] = None, frame_rate: Optional[float] = None
    ) -> dict[str, GateValues]:
        """{source: GateValues} as set (default: the separation's sources at its frame rate)."""
        names = list(self.sources if sources is None else sources)
        if frame_rate is None:
            frame_rate = self.separation.frame_rate if self.separation is not None else 44100 / 512
        mode = self.mix.gating.mode
        out = {}
        for s in names:
            g = self.mix.effective(s)
            out[s] = GateValues(mode, g.threshold, ms_to_frames(g.median_ms, frame_rate))
        return out

    @property
    def can_undo(self) -> bool:
        return self.history.undo_label is not None

    @property
    def can_redo(self) -> bool:
        return self.history.redo_label is not None

    @property
    def dirty(self) -> bool:
        """True when there is a separation and the edit differs from the last save or open."""
        return self.separation is not None and self._snapshot() != self._saved

    def _snapshot(self) -> Any:
        return (self._generation, self.separation, self.mix)

    # ---- starting over -----------------------------------------------------------------------------
    def open_song(self, song: SongInfo) -> None:
        """A new song: a fresh edit (the master gating stays, it is the user's preference), no history."""
        self.song = song
        self.separation = None
        self.mix = Mix(gating=self.mix.gating)
        self.region = (song.duration_s * 0.25, song.duration_s * 0.5)
        self.play_original = False
        self.history.clear()
        self.mark_saved()
        self.events.song.emit()
        self.events.separation.emit()
        self._emit_all()

    def set_separation(self, info: Optional[SeparationInfo],
                       tuned: Optional[Mapping[str, StemGating]] = None) -> None:
        """A separation is shown: the settings of its sources carry over (carry_over); not an undo step."""
        self.separation = info
        self._generation += 1
        if info is not None:
            self.mix = carry_over(self.mix, info.sources, tuned)
        self.events.separation.emit()
        self._emit_all()

    def snapshot(self) -> Any:
        """An opaque token of the edit as it is now (for mark_saved once a save started now ends)."""
        return self._snapshot()

    def mark_saved(self, snapshot: Any = None) -> None:
        """The edit (as it is, or as it was at `snapshot`) is what the session file holds."""
        self._saved = self._snapshot() if snapshot is None else snapshot
        self.events.history.emit()

    # ---- the user's changes ---------------------------------------------------------------------------
    def set_strip(self, source: str, *, coalesce: Optional[str] = None, **changes: Any) -> None:
        """Change gain_db, pan, mute or solo of one stem's strip."""
        old = self.strip(source)
        new = replace(old, **changes)
        new = Strip(
            _step(_clamp(new.gain_db, *GAIN_DB_RANGE, old.gain_db), GAIN_STEP_DB),
            _step(_clamp(new.pan, -1.0, 1.0, old.pan), PAN_STEP),
            bool(new.mute), bool(new.solo),
        )
        what = ", ".join(STRIP_WORDS.get(k, k) for k in sorted(changes))
        self._change(self.mix.with_strip(source, new), f"{what} of {source}", coalesce)

    def set_master_gain(self, db: float, *, coalesce: Optional[str] = "master gain") -> None:
        db = _step(_clamp(db, *GAIN_DB_RANGE, self.mix.master_gain_db), GAIN_STEP_DB)
        self._change(replace(self.mix, master_gain_db=db), "master gain", coalesce)

    def set_play_original(self, on: bool) -> None:
        if bool(on) != self.play_original:
            self.play_original = bool(on)
            self.events.master.emit()

    def set_global_gating(self, *, coalesce: Optional[str] = None, **changes: Any) -> None:
        """Change the master gating's mode, threshold or median_ms."""
        old = self.mix.gating
        new = replace(old, **changes)
        new = make_global_gating(new.mode, new.threshold, new.median_ms, old)
        self._change(replace(self.mix, gating=new), "master gating", coalesce)

    def set_stem_gating(self, source: str, *, coalesce: Optional[str] = None, **changes: Any) -> None:
        """Change a stem's threshold, median_ms or linked. Unlinking starts from what it was gated with."""
        old = self.stem_gating(source)
        base = self.effective_gating(source) if changes.get("linked") is False and old.linked else old
        new = replace(base, **changes)
        new = StemGating(
            _step(_clamp(new.threshold, 0.0, 1.0, base.threshold), THRESHOLD_STEP),
            _step(_clamp(new.median_ms, *MEDIAN_MS_RANGE, base.median_ms), MEDIAN_STEP_MS),
            bool(new.linked),
        )
        self._change(self.mix.with_stem(source, new), f"gating of {source}", coalesce)

    def set_region(self, start: float, end: float, *, coalesce: Optional[str] = "loop") -> None:
        """Move the highlighted region; while looping, the loop moves with it (an undo step)."""
        a, b = sorted((float(start), float(end)))
        if not (math.isfinite(a) and math.isfinite(b)):
            return
        if (a, b) == self.region:
            return
        self.region = (a, b)
        if self.looping:
            self._change(replace(self.mix, loop=(a, b)), "loop region", coalesce)
        else:
            self.events.loop.emit()

    def set_looping(self, on: bool) -> None:
        if bool(on) != self.looping:
            self._change(replace(self.mix, loop=self.region if on else None), "loop", None)

    def reset_mix(self) -> None:
        """Every strip and the master back to the defaults (gating and loop stay): one undo step."""
        self._change(replace(self.mix, strips={}, master_gain_db=0.0), "reset mix", None)

    def seal(self) -> None:
        """The gesture (a fader drag, a loop drag) is over: the next change is a step of its own."""
        self.history.seal()

    def undo(self) -> bool:
        before = self.history.undo(self.mix)
        if before is None:
            return False
        self._set_mix(before)
        return True

    def redo(self) -> bool:
        after = self.history.redo(self.mix)
        if after is None:
            return False
        self._set_mix(after)
        return True

    # ---- sessions ---------------------------------------------------------------------------------
    def to_session(self) -> dict[str, Any]:
        """The settings as app.session.SessionState stores them: gating, global_gating, mixer, loop."""
        g = self.mix.gating
        rate = self.separation.frame_rate if self.separation is not None else 44100 / 512
        gating = {}
        for s in self.sources:
            eff, own = self.mix.effective(s), self.mix.stem_gating(s)
            gating[s] = {
                "mode": g.mode,
                "threshold": eff.threshold,
                "median_frames": ms_to_frames(eff.median_ms, rate),
                "median_ms": eff.median_ms,
                "linked": own.linked,
            }
        strips = []
        for s in self.sources:
            st = self.strip(s)
            strips.append({"gain_db": st.gain_db, "pan": st.pan, "mute": st.mute, "solo": st.solo})
        return {
            "gating": gating,
            "global_gating": {"mode": g.mode, "threshold": g.threshold, "median_ms": g.median_ms},
            "mixer": {"strips": strips, "master_gain_db": self.mix.master_gain_db, "play_original": self.play_original},
            "loop": list(self.mix.loop) if self.mix.loop is not None else None,
        }

    def apply_session(self, gating: Any, global_gating: Any, mixer: Any, loop: Any) -> None:
        """Take the settings of a session (read loosely: a value of the wrong type keeps its default, as
        sessions from before this model wrote them). The edit is then saved as it is, with no history."""
        gg = global_gating if isinstance(global_gating, dict) else {}
        glob = make_global_gating(gg.get("mode", "binary"), gg.get("threshold"), gg.get("median_ms"), self.mix.gating)
        rate = self.separation.frame_rate if self.separation is not None else 44100 / 512
        stems: dict[str, StemGating] = {}
        per = gating if isinstance(gating, dict) else {}
        for s in self.sources:
            g = per.get(s)
            if not isinstance(g, dict):
                continue
            ms = g.get("median_ms")
            if not _is_number(ms) and _is_number(g.get("median_frames")):
                ms = frames_to_ms(int(g["median_frames"]), rate)  # written by hand, or by another tool
            stems[s] = StemGating(
                _step(_number(g.get("threshold"), glob.threshold, 0.0, 1.0), THRESHOLD_STEP),
                _step(_number(ms, glob.median_ms, *MEDIAN_MS_RANGE), MEDIAN_STEP_MS),
                g.get("linked", True) is not False,
            )
        mx = mixer if isinstance(mixer, dict) else {}
        rows = mx.get("strips") if isinstance(mx.get("strips"), list) else []
        strips: dict[str, Strip] = {}
        for s, row in zip(self.sources, rows):
            if isinstance(row, dict):
                strips[s] = Strip(
                    _step(_number(row.get("gain_db"), 0.0, *GAIN_DB_RANGE), GAIN_STEP_DB),
                    _step(_number(row.get("pan"), 0.0, -1.0, 1.0), PAN_STEP),
                    row.get("mute") is True,
                    row.get("solo") is True,
                )
        span = None
        if isinstance(loop, (list, tuple)) and len(loop) == 2 and all(_is_number(v) for v in loop):
            a, b = sorted((float(loop[0]), float(loop[1])))
            if b > a:
                span = (a, b)
        master = _step(_number(mx.get("master_gain_db"), 0.0, *GAIN_DB_RANGE), GAIN_STEP_DB)
        self.mix = Mix(strips, master, glob, stems, span)
        if span is not None:
            self.region = span
        self.play_original = mx.get("play_original") is True
        self.history.clear()
        self.mark_saved()
        self._emit_all()

    # ---- the machinery ----------------------------------------------------------------------------
    def _change(self, new: Mix, label: str, coalesce: Optional[str]) -> None:
        if new == self.mix:
            return
        self.history.record(self.mix, label, coalesce)
        self._set_mix(new)

    def _set_mix(self, new: Mix) -> None:
        old, self.mix = self.mix, new
        if new.loop is not None:
            self.region = new.loop
        strips = [s for s in self.sources if old.strip(s) != new.strip(s)]
        if strips:
            self.events.strips.emit(strips)
        if old.master_gain_db != new.master_gain_db:
            self.events.master.emit()
        global_changed = old.gating != new.gating
        stems = [
            s for s in self.sources
            if old.stem_gating(s) != new.stem_gating(s) or old.effective(s) != new.effective(s)
            or (global_changed and old.gating.mode != new.gating.mode)
        ]
        if stems or global_changed:
            self.events.gating.emit(stems, global_changed)
        if old.loop != new.loop:
            self.events.loop.emit()
        self.events.history.emit()

    def _emit_all(self) -> None:
        """Tell every view the whole edit (a new song, separation or session)."""
        self.events.strips.emit(list(self.sources))
        self.events.master.emit()
        self.events.gating.emit(list(self.sources), True)
        self.events.loop.emit()
        self.events.history.emit()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any, default: float, lo: float, hi: float) -> float:
    return float(min(max(value, lo), hi)) if _is_number(value) else default


def _clamp(value: Any, lo: float, hi: float, fallback: float) -> float:
    return float(min(max(value, lo), hi)) if _is_number(value) else fallback


def _step(value: float, step: float) -> float:
    """value on the control's grid of `step` (round half away from zero, as Qt's sliders are set)."""
    n = value / step
    return float(round(math.floor(abs(n) + 0.5) * math.copysign(1.0, n) * step, 6)) + 0.0
