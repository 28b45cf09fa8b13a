"""The main window's controllers (app.*_controller): the window composes them and still answers as before;
an export asks before replacing beats.csv, and a session remembers the teaching view's truth folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.export_dialog import ExportChoice
from app.session import SessionError, read_session_state
from engine.music import MusicInfo
from tests.app.test_teaching import _open_with_truth, song_with_truth  # noqa: F401 (a fixture)
from tests.app.test_window import WAIT, open_song, separate


def test_the_window_composes_a_controller_per_concern(window: Any) -> None:
    from app.export_controller import ExportController
    from app.gating_controller import GatingController
    from app.separation_controller import SeparationController
    from app.session_controller import SessionController
    from app.timeline_controller import TimelineController
    from app.transport_controller import TransportController

    w = window
    for attr, kind in (("separation", SeparationController), ("gating", GatingController),
                       ("transport", TransportController), ("timeline", TimelineController),
                       ("exports", ExportController), ("sessions", SessionController)):
        ctl = getattr(w, attr)
        assert isinstance(ctl, kind) and ctl.w is w and ctl.edit is w.edit
    # the window's old doors lead to them
    assert w._sep_worker is w.separation.worker is None
    assert w._tiles is w.timeline.tiles is None
    w._last_tick -= 1.0
    assert w._last_tick == w.transport.last_tick


def test_export_paths_list_beats_csv_only_when_it_is_written(tmp_path: Path) -> None:
    choice = ExportChoice(folder=tmp_path, stems=["vocals"], fmt="wav", subtype="PCM_16", remix=True, song_stem="s")
    assert tmp_path / "beats.csv" not in choice.paths()
    assert tmp_path / "beats.csv" in choice.paths(beats=True)
    # no stems, no activity.csv, separation.json nor beats.csv: only the remix
    remix_only = ExportChoice(folder=tmp_path, stems=[], fmt="wav", subtype="PCM_16", remix=True, song_stem="s")
    assert remix_only.paths(beats=True) == [tmp_path / "s (remix).wav"]


def test_export_asks_before_replacing_an_existing_beats_csv(
    qtbot: Any, window: Any, song_file: Path, tmp_path: Path, dialogs: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = window
    open_song(qtbot, w, song_file)
    separate(qtbot, w)
    qtbot.waitUntil(lambda: not w.grid.busy, timeout=WAIT)
    if w.grid.music is None:  # the tone mix may have no measurable beat: give the song one
        beats = np.arange(0.5, 3.0, 0.5)
        w.grid.music = MusicInfo(120.0, beats, np.arange(beats.size) % 4 == 0, 4, "A minor", 0.2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "beats.csv").write_text("mine\n")  # the only file there: the export would replace just it
    choice = ExportChoice(folder=out, stems=["vocals"], fmt="wav", subtype="PCM_16", remix=False, song_stem="song")

    class FakeDialog:
        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def exec(self) -> Any:
            from app.export_dialog import ExportDialog

            return ExportDialog.DialogCode.Accepted

        def choice(self) -> ExportChoice:
            return choice

    w.exports.make_dialog = FakeDialog
    w.show_export_dialog()  # the fake question answers No
    assert dialogs and dialogs[-1][0] == "question" and "beats.csv" in dialogs[-1][2]
    assert w._busy_worker is None and (out / "beats.csv").read_text() == "mine\n"
    assert not (out / "vocals.wav").exists()
    # answered Yes, the export goes ahead and replaces it
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(w.export_finished, timeout=WAIT) as blocker:
        w.show_export_dialog()
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert out / "beats.csv" in blocker.args[0]
    assert (out / "beats.csv").read_text().splitlines()[0] == "time_s,downbeat"


def test_a_session_remembers_the_truth_folder_and_attaches_it_again(
    qtbot: Any, window: Any, song_with_truth: tuple[Path, Path], tmp_path: Path  # noqa: F811
) -> None:
    w = window
    song, truth_dir = song_with_truth
    _open_with_truth(qtbot, w, song, truth_dir)
    separate(qtbot, w)
    path = tmp_path / "taught.stemlab.json"
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(path)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    doc = json.loads(path.read_text())
    assert doc["truth_folder"] == str(truth_dir.resolve())
    assert read_session_state(path)[0].truth_folder == str(truth_dir.resolve())

    # reopened, the teaching view reads the same folder again
    with qtbot.waitSignal(w.teaching.truth_loaded, timeout=WAIT) as blocker, qtbot.waitSignal(
        w.session_loaded, timeout=WAIT
    ):
        w.open_path(str(path))
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert Path(blocker.args[0].folder).resolve() == truth_dir.resolve()
    qtbot.waitUntil(lambda: w.teaching.active, timeout=WAIT)
    assert w.act_teaching_report.isEnabled()

    # the folder gone: the session still opens, without the truth, and says so
    shutil.rmtree(truth_dir)
    with qtbot.waitSignal(w.session_loaded, timeout=WAIT):
        w.open_path(str(path))
    assert "no longer there" in w.status_text.text()
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert w.teaching.truth is None and not w.teaching.active


def test_a_session_without_truth_saves_none_and_a_wrong_type_is_refused(
    qtbot: Any, window: Any, song_file: Path, tmp_path: Path
) -> None:
    w = window
    open_song(qtbot, w, song_file)
    separate(qtbot, w)
    path = tmp_path / "plain.stemlab.json"
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(path)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    doc = json.loads(path.read_text())
    assert doc["truth_folder"] is None
    # a session written before the field opens as before
    del doc["truth_folder"]
    path.write_text(json.dumps(doc))
    assert read_session_state(path)[0].truth_folder is None
    doc["truth_folder"] = 5
    path.write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="truth_folder"):
        read_session_state(path)
