"""The edit model on its own (no Qt): events, undo/redo and coalescing, reset, sessions' dicts, and
carrying the settings over to another separation."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from app.edit_model import (
    EditModel,
    GlobalGating,
    SeparationInfo,
    SongInfo,
    StemGating,
    Strip,
    frames_to_ms,
    ms_to_frames,
)

SOURCES = ("vocals", "drums", "bass")


def separated(sources: tuple[str, ...] = SOURCES, **tuned: StemGating) -> EditModel:
    m = EditModel(GlobalGating("binary", 0.5, 100.0))
    m.open_song(SongInfo("song.wav", "/music/song.wav", 44100, 20.0))
    m.set_separation(SeparationInfo("tiny", sources, 44100, 512), tuned or None)
    m.mark_saved()
    return m


class Recorder:
    """Connects to every event of a model and keeps (name, args) in order."""

    def __init__(self, m: EditModel) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        for name in ("song", "separation", "strips", "master", "gating", "loop", "history"):
            getattr(m.events, name).connect(lambda *args, name=name: self.seen.append((name, args)))

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]

    def clear(self) -> None:
        self.seen.clear()


def test_the_model_imports_no_qt() -> None:
    import subprocess

    heavy = "('PySide6', 'pyqtgraph', 'sounddevice', 'torch')"
    code = f"import sys, app.edit_model; print(any(m.startswith({heavy}) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_changes_emit_what_changed_and_nothing_else() -> None:
    m = separated()
    rec = Recorder(m)
    m.set_strip("drums", gain_db=-6.0)
    assert rec.seen == [("strips", (["drums"],)), ("history", ())]
    rec.clear()
    m.set_strip("drums", gain_db=-6.0)  # no change: no event, no undo step
    assert rec.seen == []
    m.set_master_gain(-3.0)
    assert rec.names() == ["master", "history"]
    rec.clear()
    m.set_play_original(True)  # a way of listening: an event, but not an edit
    assert rec.names() == ["master"] and not m.can_redo
    rec.clear()
    m.set_stem_gating("bass", linked=False, threshold=0.8)
    assert rec.seen == [("gating", (["bass"], False)), ("history", ())]
    rec.clear()
    # the master's threshold reaches the linked stems only; the mode reaches every stem
    m.set_global_gating(threshold=0.3)
    assert rec.seen[0] == ("gating", (["vocals", "drums"], True))
    rec.clear()
    m.set_global_gating(mode="soft")
    assert rec.seen[0] == ("gating", (list(SOURCES), True))
    rec.clear()
    m.set_looping(True)
    assert rec.names() == ["loop", "history"] and m.mix.loop == (5.0, 10.0)
    disconnected: list[Any] = []
    cb = disconnected.append
    m.events.strips.connect(cb)
    m.events.strips.disconnect(cb)
    m.set_strip("vocals", mute=True)
    assert disconnected == []


def test_values_land_on_the_controls_steps_and_ranges() -> None:
    m = separated()
    m.set_strip("vocals", gain_db=-4.3, pan=0.333)
    assert m.strip("vocals") == Strip(-4.5, 0.33, False, False)
    m.set_strip("vocals", gain_db=99.0, pan=-7.0)
    assert m.strip("vocals").gain_db == 12.0 and m.strip("vocals").pan == -1.0
    m.set_stem_gating("drums", linked=False, threshold=0.8333, median_ms=5.0)
    assert m.stem_gating("drums") == StemGating(0.83, 10.0, False)
    m.set_global_gating(mode="no such mode", threshold=float("nan"))
    assert m.mix.gating == GlobalGating("binary", 0.5, 100.0)


def test_median_frames_round_as_the_engine_rounds() -> None:
    from engine.gating import ms_to_frames as engine_ms_to_frames

    for ms in (10.0, 55.0, 100.0, 333.0, 2000.0):
        for sr, hop in ((44100, 512), (22050, 256), (48000, 1024)):
            assert ms_to_frames(ms, sr / hop) == engine_ms_to_frames(ms, sr, hop)
    assert ms_to_frames(frames_to_ms(25, 44100 / 512), 44100 / 512) == 25


def test_unlinking_starts_from_the_masters_values_and_linking_follows_it_again() -> None:
    m = separated()
    m.set_global_gating(threshold=0.6, median_ms=200.0)
    m.set_stem_gating("bass", linked=False)
    assert m.stem_gating("bass") == StemGating(0.6, 200.0, False)
    m.set_stem_gating("bass", threshold=0.9)
    m.set_global_gating(threshold=0.2)
    assert m.effective_gating("bass").threshold == 0.9 and m.effective_gating("vocals").threshold == 0.2
    values = m.gate_values()
    assert values["bass"].threshold == 0.9 and values["bass"].median_frames == ms_to_frames(200.0, 44100 / 512)
    m.set_stem_gating("bass", linked=True)
    assert m.effective_gating("bass").threshold == 0.2


def test_undo_and_redo_walk_the_history() -> None:
    m = separated()
    assert not m.can_undo and not m.can_redo
    m.set_strip("vocals", gain_db=-6.0)
    m.set_strip("drums", mute=True)
    m.set_stem_gating("bass", linked=False, threshold=0.9)
    assert m.history.undo_label == "gating of bass"
    assert m.undo() and m.stem_gating("bass").linked
    assert m.undo() and not m.strip("drums").mute
    assert m.undo() and m.strip("vocals").gain_db == 0.0
    assert not m.undo() and m.can_redo
    rec = Recorder(m)
    assert m.redo() and m.strip("vocals").gain_db == -6.0
    assert rec.seen[0] == ("strips", (["vocals"],))
    # a new change after an undo forgets what could have been redone
    m.undo()
    m.set_strip("bass", solo=True)
    assert not m.can_redo and not m.redo()


def test_a_fader_drag_is_one_step_until_it_is_released() -> None:
    m = separated()
    for db in (-0.5, -1.0, -2.5, -4.0, -6.0):
        m.set_strip("vocals", gain_db=db, coalesce="gain_db:vocals")
    m.seal()  # released
    for db in (-5.0, -3.0):
        m.set_strip("vocals", gain_db=db, coalesce="gain_db:vocals")
    m.set_strip("drums", gain_db=-1.0, coalesce="gain_db:drums")  # another fader: its own step
    assert m.undo() and m.strip("drums").gain_db == 0.0 and m.strip("vocals").gain_db == -3.0
    assert m.undo() and m.strip("vocals").gain_db == -6.0
    assert m.undo() and m.strip("vocals").gain_db == 0.0
    assert not m.can_undo


def test_the_loop_region_and_looping() -> None:
    m = separated()
    assert m.region == (5.0, 10.0) and not m.looping
    m.set_region(2.0, 1.0)  # not looping: the highlight moves, no undo step, nothing unsaved
    assert m.region == (1.0, 2.0) and not m.can_undo and not m.dirty
    m.set_looping(True)
    for end in (3.0, 4.0, 5.0):
        m.set_region(1.0, end)
    m.seal()
    assert m.mix.loop == (1.0, 5.0) and m.dirty
    assert m.undo() and m.mix.loop == (1.0, 2.0) and m.region == (1.0, 2.0)
    assert m.undo() and not m.looping


def test_reset_mix_is_one_undoable_step_that_keeps_gating_and_loop() -> None:
    m = separated()
    m.set_strip("vocals", gain_db=-6.0, pan=0.5)
    m.set_strip("drums", mute=True, solo=True)
    m.set_master_gain(-3.0)
    m.set_stem_gating("bass", linked=False, threshold=0.7)
    m.set_looping(True)
    rec = Recorder(m)
    m.reset_mix()
    assert all(m.strip(s) == Strip() for s in SOURCES) and m.mix.master_gain_db == 0.0
    assert m.effective_gating("bass").threshold == 0.7 and m.looping
    assert ("strips", (["vocals", "drums"],)) in rec.seen and ("master", ()) in rec.seen
    assert m.history.undo_label == "reset mix"
    m.undo()
    assert m.strip("vocals") == Strip(-6.0, 0.5) and m.strip("drums").solo and m.mix.master_gain_db == -3.0


def test_unsaved_follows_the_saved_state_not_the_history() -> None:
    m = EditModel()
    m.open_song(SongInfo("song.wav", "/song.wav", 44100, 20.0))
    m.set_master_gain(-3.0)
    assert not m.dirty  # nothing to save without a separation
    m.set_separation(SeparationInfo("tiny", SOURCES, 44100, 512))
    assert m.dirty  # a separation not saved yet
    token = m.snapshot()
    m.set_strip("vocals", mute=True)  # changed while the save runs
    m.mark_saved(token)
    assert m.dirty
    m.undo()
    assert not m.dirty  # back to what the file holds
    m.redo()
    m.mark_saved()
    assert not m.dirty
    m.set_separation(SeparationInfo("tiny", SOURCES, 44100, 512))  # separated again: new stems
    assert m.dirty


def test_session_dicts_round_trip() -> None:
    m = separated()
    m.set_strip("vocals", gain_db=-4.5, pan=-0.25, solo=True)
    m.set_strip("bass", mute=True)
    m.set_master_gain(-2.0)
    m.set_play_original(True)
    m.set_global_gating(mode="soft", threshold=0.4, median_ms=150.0)
    m.set_stem_gating("drums", linked=False, threshold=0.83, median_ms=300.0)
    m.set_region(2.0, 6.0)
    m.set_looping(True)
    saved = json.loads(json.dumps(m.to_session()))  # plain JSON types only
    assert saved["loop"] == [2.0, 6.0]
    assert saved["gating"]["drums"] == {
        "mode": "soft", "threshold": 0.83, "median_frames": ms_to_frames(300.0, 44100 / 512),
        "median_ms": 300.0, "linked": False,
    }
    assert saved["gating"]["vocals"]["threshold"] == 0.4 and saved["gating"]["vocals"]["linked"]
    assert saved["mixer"]["strips"][0] == {"gain_db": -4.5, "pan": -0.25, "mute": False, "solo": True}
    again = separated()
    rec = Recorder(again)
    again.apply_session(saved["gating"], saved["global_gating"], saved["mixer"], saved["loop"])
    assert again.mix == m.mix and again.play_original and again.region == (2.0, 6.0)
    assert again.to_session() == saved
    assert not again.dirty and not again.can_undo
    assert {"strips", "master", "gating", "loop"} <= set(rec.names())


def test_sessions_written_before_the_model_still_open() -> None:
    """As app.main_window wrote them: strips carry `listen`, a stem may lack median_ms, values may be off."""
    old = {
        "gating": {
            "vocals": {"mode": "binary", "threshold": 0.5, "median_frames": 9, "median_ms": 100.0, "linked": True},
            "drums": {"mode": "binary", "threshold": 0.8, "median_frames": 25, "linked": False},
            "bass": "garbage",
        },
        "global_gating": {"mode": "binary", "threshold": 0.5, "median_ms": 100.0},
        "mixer": {
            "strips": [{"gain_db": -6.0, "pan": 0.0, "mute": False, "solo": False, "listen": "truth"},
                       {"gain_db": "loud", "pan": 0.5, "mute": True, "solo": False}],
            "master_gain_db": -1.0,
        },
        "loop": None,
    }
    m = separated()
    m.apply_session(old["gating"], old["global_gating"], old["mixer"], old["loop"])
    assert m.stem_gating("drums") == StemGating(0.8, round(frames_to_ms(25, 44100 / 512)), False)
    assert m.gate_values()["drums"].median_frames == 25
    assert m.stem_gating("bass").linked
    assert m.strip("vocals").gain_db == -6.0 and m.strip("drums") == Strip(0.0, 0.5, True, False)
    assert m.strip("bass") == Strip() and m.mix.master_gain_db == -1.0 and not m.play_original
    assert not m.looping


def test_separating_again_keeps_the_settings_of_sources_that_remain() -> None:
    m = separated()
    m.set_strip("vocals", gain_db=-6.0, solo=True)
    m.set_strip("bass", pan=0.5)
    m.set_stem_gating("drums", linked=False, threshold=0.83)
    m.set_looping(True)
    before = m.mix
    m.set_separation(SeparationInfo("tiny", SOURCES, 44100, 512))  # the same sources: all kept
    assert m.mix == before and m.looping
    # another model: vocals and drums remain, bass is gone, piano is new (at the card's tuning)
    rec = Recorder(m)
    m.set_separation(SeparationInfo("other", ("drums", "piano", "vocals"), 22050, 256),
                     {"piano": StemGating(0.3, 200.0, False), "drums": StemGating(0.1, 50.0, False)})
    assert m.sources == ("drums", "piano", "vocals")
    assert m.strip("vocals") == Strip(-6.0, 0.0, False, True)
    assert m.effective_gating("drums").threshold == 0.83  # the user's, not the card's
    assert m.stem_gating("piano") == StemGating(0.3, 200.0, False) and m.strip("piano") == Strip()
    assert "bass" not in m.mix.strips and m.looping
    assert m.gate_values()["drums"].median_frames == ms_to_frames(100.0, 22050 / 256)
    assert rec.seen[0] == ("separation", ()) and ("strips", (["drums", "piano", "vocals"],)) in rec.seen
    assert [row["gain_db"] for row in m.to_session()["mixer"]["strips"]] == [0.0, 0.0, -6.0]


def test_a_new_song_starts_a_fresh_edit_but_keeps_the_master_gating() -> None:
    m = separated()
    m.set_global_gating(threshold=0.7)
    m.set_strip("vocals", mute=True)
    m.set_looping(True)
    m.open_song(SongInfo("other.wav", "/other.wav", 48000, 8.0))
    assert m.separation is None and m.sources == () and not m.mix.strips and not m.looping
    assert m.mix.gating.threshold == 0.7 and m.region == (2.0, 4.0)
    assert not m.can_undo and not m.dirty
    assert m.audible() == []


@pytest.mark.parametrize("bad", [None, [], "x", {"strips": "x"}])
def test_a_damaged_mixer_dict_keeps_the_defaults(bad: Any) -> None:
    m = separated()
    m.apply_session({}, {}, bad, [3.0, "x"])
    assert all(m.strip(s) == Strip() for s in SOURCES) and not m.looping


def test_the_qt_free_app_modules_are_under_an_import_contract() -> None:
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    res = subprocess.run([exe, "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "app's models import no Qt KEPT" in res.stdout
