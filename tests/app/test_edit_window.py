"""The edit model in the real window (pytest-qt, offscreen, the tiny random model): re-separating keeps
the user's settings, undo/redo, reset mix, and the question before unsaved changes are dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.app.test_window import WAIT, open_song, separate
from tests.conftest import SR, tone_mix


@pytest.fixture()
def separated_window(qtbot: Any, window: Any, song_file: Path) -> Any:
    open_song(qtbot, window, song_file)
    separate(qtbot, window)
    settle(qtbot, window)
    return window


def settle(qtbot: Any, w: Any) -> None:
    """Wait for re-gating and the music analysis (which may put the loop on bars) to finish."""
    qtbot.waitUntil(lambda: not w.regates.busy and not w.grid.busy, timeout=WAIT)


def screen_state(w: Any) -> dict[str, Any]:
    """What the strips and lanes show, per source."""
    out = {}
    for i, s in enumerate(w.result.sources):
        h = w.headers[i]
        out[s] = {
            "gain_db": h.gain.db, "pan": h.pan.value() / 100.0, "mute": h.mute.isChecked(), "solo": h.solo.isChecked(),
            "linked": h.linked.isChecked(), "threshold": h.gating.threshold_value,
            "line": round(w.lanes[i].threshold_line.value(), 6), "median_frames": h.gating.median_frames,
        }
    return out


def test_separating_again_keeps_every_setting_and_the_export_matches_the_screen(
    qtbot: Any, separated_window: Any, tmp_path: Path
) -> None:
    from app.export_dialog import ExportChoice
    from engine.gating import settings_for

    w = separated_window
    src = w.result.sources
    w.headers[0].gain.set_db(-4.5)
    w.headers[1].mute.setChecked(True)
    w.headers[2].solo.setChecked(True)
    w.headers[3].pan.setValue(-50)
    w.master.gating.threshold.setValue(51)
    w.master.gain.set_db(-2.0)
    w.set_stem_threshold("drums", 0.83)
    w.loop_region.setRegion((0.5, 1.5))
    w.act_loop.setChecked(True)
    settle(qtbot, w)
    before, loop, mix = screen_state(w), w.edit.mix.loop, w.edit.mix
    assert before["drums"]["threshold"] == 0.83 and not before["drums"]["linked"]
    assert before["vocals"]["threshold"] == 0.51 and before["vocals"]["linked"]
    assert w.mixer.loop == (int(loop[0] * SR), int(loop[1] * SR))

    w.act_separate.trigger()  # Ctrl+R
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
    settle(qtbot, w)
    # the screen, the edit and the sound agree, as before the re-separation
    assert screen_state(w) == before
    assert w.edit.mix == mix and w.act_loop.isChecked() and w.loop_region.isVisible()
    assert w.mixer.loop == (int(loop[0] * SR), int(loop[1] * SR))  # playback wraps at the loop's end
    st = w.mixer.strips
    assert [(s.gain_db, s.pan, s.mute, s.solo) for s in st[:4]] == [
        (-4.5, 0.0, False, False), (0.0, 0.0, True, False), (0.0, 0.0, False, True), (0.0, -0.5, False, False)]
    assert w.mixer.master_gain_db == -2.0
    spec = w.gating_spec()
    assert spec["drums"].threshold == 0.83 and spec["vocals"].threshold == 0.51
    for s in src:  # the stems are gated as shown
        assert settings_for(w.result.gating, s) == spec[s]

    choice = ExportChoice(folder=tmp_path / "out", stems=list(src), fmt="wav", subtype="FLOAT", remix=True,
                          song_stem="song")
    with qtbot.waitSignal(w.export_finished, timeout=WAIT):
        w.export(choice)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    meta = json.loads((tmp_path / "out" / "separation.json").read_text())
    for i, s in enumerate(src):
        g = meta["gating"][s]
        assert g["threshold"] == before[s]["threshold"] and g["median_frames"] == before[s]["median_frames"]
        strip = meta["mixer"]["strips"][i]
        keys = ("gain_db", "pan", "mute", "solo")
        assert [strip[k] for k in keys] == [before[s][k] for k in keys]
        data, _ = sf.read(tmp_path / "out" / f"{s}.wav", always_2d=True, dtype="float32")
        np.testing.assert_array_equal(data.T, w.result.stem(s))
    assert meta["mixer"]["master_gain_db"] == -2.0
    remix, _ = sf.read(tmp_path / "out" / "song (remix).wav", always_2d=True, dtype="float32")
    np.testing.assert_allclose(remix.T, w.mixer.render(), atol=1e-6)


def test_undo_and_redo_a_gain_change(qtbot: Any, separated_window: Any) -> None:
    from PySide6.QtGui import QKeySequence

    w = separated_window
    fader = w.headers[0].gain.slider
    assert not w.act_undo.isEnabled() and not w.act_redo.isEnabled()
    for v in (-2, -5, -9, -12):  # a drag through four positions, then released
        fader.setValue(v)
    fader.sliderReleased.emit()
    assert w.headers[0].gain.db == -6.0 and w.mixer.gain_matrix()[0, 0] == pytest.approx(10 ** (-6 / 20))
    assert w.act_undo.isEnabled() and "gain" in w.act_undo.text()
    w.act_undo.trigger()  # Ctrl+Z: the whole drag at once
    assert w.headers[0].gain.db == 0.0 and w.headers[0].gain.value.text() == "+0.0 dB"
    assert w.mixer.gain_matrix()[0, 0] == pytest.approx(1.0)
    assert not w.act_undo.isEnabled() and w.act_redo.isEnabled()
    w.act_redo.trigger()
    assert w.headers[0].gain.db == -6.0 and w.mixer.strips[0].gain_db == -6.0
    assert w.act_undo.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    assert {k.toString() for k in w.act_redo.shortcuts()} == {"Ctrl+Shift+Z", "Ctrl+Y"}
    # and through the keys themselves
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(w, Qt.Key.Key_Z, ctrl)
    assert w.headers[0].gain.db == 0.0
    qtbot.keyClick(w, Qt.Key.Key_Y, ctrl)
    assert w.headers[0].gain.db == -6.0
    qtbot.keyClick(w, Qt.Key.Key_Z, ctrl)
    qtbot.keyClick(w, Qt.Key.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier)
    assert w.headers[0].gain.db == -6.0 and w.mixer.strips[0].gain_db == -6.0
    # let the modifiers go, as a user's fingers would: Qt remembers the last key event's modifiers, and a
    # later test's drag would otherwise read Shift as held
    qtbot.keyRelease(w, Qt.Key.Key_Shift)
    qtbot.keyRelease(w, Qt.Key.Key_Control)
    assert QApplication.keyboardModifiers() == Qt.KeyboardModifier.NoModifier
    # undoing a threshold re-gates the stem back
    i = w.result.sources.index("drums")
    stems = w.result.stems[i].copy()
    with qtbot.waitSignal(w.regate_done, timeout=WAIT):
        w.set_stem_threshold("drums", 1.0)
    settle(qtbot, w)
    assert not w.result.stems[i].any()
    with qtbot.waitSignal(w.regate_done, timeout=WAIT):
        w.undo()
    settle(qtbot, w)
    assert w.headers[i].linked.isChecked() and w.lanes[i].threshold_line.value() == pytest.approx(0.5)
    np.testing.assert_allclose(w.result.stems[i], stems, atol=1e-6)


def test_reset_mix_and_undo_it(separated_window: Any) -> None:
    w = separated_window
    h = w.headers
    h[0].gain.set_db(-6.0)
    h[1].mute.setChecked(True)
    h[2].solo.setChecked(True)
    h[3].pan.setValue(40)
    w.master.gain.set_db(-3.0)
    edited = w.mixer.gain_matrix().copy()
    w.act_reset_mix.trigger()
    assert all(x.gain.db == 0.0 and x.pan.value() == 0 and not x.mute.isChecked() and not x.solo.isChecked() for x in h)
    assert w.master.gain.db == 0.0
    g = w.mixer.gain_matrix()
    assert np.all(g[:6] == 1.0) and not g[6].any()
    assert all(lane.widget.ci.opacity() == 1.0 for lane in w.lanes)
    w.undo()
    np.testing.assert_array_equal(w.mixer.gain_matrix(), edited)
    assert h[2].solo.isChecked() and h[3].pan.value() == 40 and w.master.gain.db == -3.0


def test_unsaved_changes_are_asked_about_on_close_and_not_after_a_save(
    qtbot: Any, separated_window: Any, tmp_path: Path
) -> None:
    w = separated_window
    asked: list[str] = []

    def answer(reply: str) -> Any:
        return lambda: (asked.append(reply), reply)[1]

    assert w.isWindowModified()  # a separation not saved yet
    w.ask_unsaved = answer("cancel")
    assert not w.close() and w.isVisible() and asked == ["cancel"]
    path = tmp_path / "s.stemlab.json"
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(path)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert not w.isWindowModified() and not w.edit.dirty
    # an edit, then taken back: nothing unsaved
    w.headers[1].mute.setChecked(True)
    assert w.isWindowModified()
    w.headers[1].mute.setChecked(False)
    assert not w.edit.dirty
    # another song while an edit is unsaved: asked; cancelled, the song stays
    w.headers[0].gain.set_db(-3.0)
    other = tmp_path / "other.wav"
    sf.write(other, tone_mix(2.0, seed=3).T, SR)
    song = w.song
    w.open_path(str(other))
    assert asked == ["cancel", "cancel"] and w.song is song
    # "Save": saved into the session it came from, then closed
    w.ask_unsaved = answer("save")
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        assert not w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    assert asked[-1] == "save"
    saved = json.loads(path.read_text())
    assert saved["mixer"]["strips"][0]["gain_db"] == -3.0


def test_a_saved_edit_closes_without_asking(qtbot: Any, separated_window: Any, tmp_path: Path) -> None:
    w = separated_window
    asked: list[int] = []
    w.ask_unsaved = lambda: (asked.append(1), "cancel")[1]
    w.set_stem_threshold("bass", 0.8)
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(tmp_path / "s.stemlab.json")
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    settle(qtbot, w)
    assert w.close() and asked == []
