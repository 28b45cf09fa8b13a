"""The producer's grid: grid lines thinned for the zoom span, the loop snapping to bars and beats (free
with Shift), the song's tempo, metre and key measured off the GUI thread and shown, a new song making
the old analysis obsolete, the stems' tempo and key, and sessions keeping it all."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from app.grid import (
    MIN_BAR_PX,
    MIN_BEAT_PX,
    StemMusic,
    grid_lines,
    music_from_json,
    music_text,
    music_to_json,
    snap_region,
    snap_targets,
    stem_measures,
)
from engine.music import MusicInfo
from tests.app.test_window import WAIT, open_song, separate
from tests.engine.test_music import song as click_song

SR = 44100
AM, DM, E = [9, 0, 4], [2, 5, 9], [4, 8, 11]


def regular(bpm: float, seconds: float, per_bar: int = 4, start: float = 0.5) -> MusicInfo:
    beats = np.arange(start, seconds, 60.0 / bpm)
    down = np.arange(beats.size) % per_bar == 0
    return MusicInfo(bpm, beats, down, per_bar, "A minor", 0.2)


# ---- Qt-free: grid lines -----------------------------------------------------------------------------


def test_grid_lines_thin_out_when_zoomed_out_and_stay_put_when_panning() -> None:
    info = regular(120.0, 600.0)
    # zoomed in on 10 s over 1000 px: every bar and every beat (50 px apart)
    near = grid_lines(info.beats_s, info.downbeat, 100.0, 110.0, 1000)
    assert near.bar_step == 1 and len(near.bars) == 5 and len(near.beats) == 16
    assert not set(np.round(near.bars, 6)) & set(np.round(near.beats, 6))  # a bar is not drawn twice
    # the whole 10-minute song over 1000 px: beats (0.8 px apart) dropped, bars thinned by powers of two
    far = grid_lines(info.beats_s, info.downbeat, 0.0, 600.0, 1000)
    assert len(far.beats) == 0 and far.bar_step in (4, 8, 16)
    gaps_px = np.diff(far.bars) * 1000 / 600.0
    assert gaps_px.min() >= MIN_BAR_PX and len(far.bars) <= 1000 / MIN_BAR_PX
    # at every zoom, whatever is drawn lies apart on screen: never a solid block
    for span in (1.0, 7.0, 30.0, 90.0, 300.0, 600.0):
        lines = grid_lines(info.beats_s, info.downbeat, 0.0, span, 800)
        px = 800 / span
        if len(lines.beats):
            every = np.sort(np.r_[lines.beats, lines.bars])
            assert np.diff(every).min() * px >= MIN_BEAT_PX - 1e-6
        if len(lines.bars) > 1:
            assert np.diff(lines.bars).min() * px >= MIN_BAR_PX - 1e-6
    # panning keeps the same bars (counted from the first), only shifted into view
    a = grid_lines(info.beats_s, info.downbeat, 0.0, 300.0, 800)
    b = grid_lines(info.beats_s, info.downbeat, 37.0, 337.0, 800)
    both = np.intersect1d(np.round(a.bars, 6), np.round(b.bars, 6))
    assert a.bar_step == b.bar_step and len(both) == len(a.bars[a.bars >= 37.0])


def test_grid_lines_without_bars_thin_the_beats() -> None:
    beats = np.arange(0.0, 60.0, 0.5)
    lines = grid_lines(beats, np.zeros(beats.size, bool), 0.0, 60.0, 300)
    assert len(lines.beats) == 0 and np.diff(lines.bars).min() * 300 / 60 >= MIN_BAR_PX
    assert grid_lines(np.zeros(0), np.zeros(0, bool), 0.0, 10.0, 500).bars.size == 0


# ---- Qt-free: snapping --------------------------------------------------------------------------------


def test_the_loop_snaps_to_beats_to_bars_or_stays_free() -> None:
    info = regular(120.0, 60.0)  # beats at 0.5, 1.0, 1.5, ...; bars every 2 s from 0.5
    b, d = info.beats_s, info.downbeat
    assert snap_region(3.2, 7.9, b, d, "beats") == pytest.approx((3.0, 8.0))
    assert snap_region(3.2, 7.9, b, d, "bars") == pytest.approx((2.5, 8.5))
    assert snap_region(3.2, 7.9, b, d, "off") == (3.2, 7.9)
    assert snap_region(3.2, 7.9, b, d, "bars", free=True) == (3.2, 7.9)  # the modifier held
    # both edges near one bar line: the loop keeps one bar, not zero
    assert snap_region(4.4, 4.6, b, d, "bars") == pytest.approx((4.5, 6.5))
    # at the last bar: the start goes back one
    last = b[d][-1]
    assert snap_region(last + 0.1, last + 0.3, b, d, "bars") == pytest.approx((b[d][-2], last))
    # no analysis: nothing to snap to
    assert snap_region(1.0, 2.0, np.zeros(0), np.zeros(0, bool), "bars") == (1.0, 2.0)
    # bars without known downbeats fall back to beats
    assert len(snap_targets(b, np.zeros(b.size, bool), "bars")) == len(b)
    with pytest.raises(ValueError):
        snap_targets(b, d, "triplets")


# ---- Qt-free: texts and sessions -------------------------------------------------------------------------


def test_info_text_stems_and_json_round_trip() -> None:
    info = regular(120.0, 20.0)
    assert music_text(info) == "120.0 BPM · 4/4 · A minor"
    assert music_text(MusicInfo(0.0, np.zeros(0), np.zeros(0, bool), 4, "unknown", 0.0)) == "no steady beat"
    back = music_from_json(json.loads(json.dumps(music_to_json(info))))
    np.testing.assert_allclose(back.beats_s, info.beats_s, atol=1e-5)
    np.testing.assert_array_equal(back.downbeat, info.downbeat)
    assert (back.tempo_bpm, back.beats_per_bar, back.key) == (120.0, 4, "A minor")
    for broken in ({"beats_s": [1.0, 0.5]}, {"downbeat": [2] * len(info.beats_s)}, {"key": "H major"},
                   {"tempo_bpm": float("inf")}, {"beats_per_bar": 0}):
        with pytest.raises(ValueError):
            music_from_json({**music_to_json(info), **broken})
    assert stem_measures("drums") == (True, False) and stem_measures("bass") == (True, True)
    assert stem_measures("vocals") == (False, True)
    assert StemMusic(121.04, None).text() == "121.0 BPM" and StemMusic(None, "E minor").text() == "E minor"
    assert StemMusic(quiet=True).text() == "too quiet for tempo or key"
    assert StemMusic.from_json(StemMusic(98.0, "C major").to_json()) == StemMusic(98.0, "C major")


# ---- through the window --------------------------------------------------------------------------------


def write_click_song(path: Path, bpm: float, chords: list[list[int]], seconds: float = 16.0) -> Path:
    """Kicks on every beat, louder and lower on each downbeat, a chord per bar (tests.engine.test_music)."""
    sf.write(path, click_song(bpm, seconds, chords).T, SR, subtype="FLOAT")
    return path


@pytest.fixture()
def click_120(tmp_path: Path) -> Path:
    return write_click_song(tmp_path / "clicks 120.wav", 120.0, [AM, DM, E, AM])


def open_and_analyse(qtbot: Any, w: Any, path: Path) -> MusicInfo:
    with qtbot.waitSignal(w.grid.analysed, timeout=WAIT) as blocker:
        open_song(qtbot, w, path)
    return blocker.args[0]


def test_tempo_metre_and_key_appear_in_the_song_info_measured_off_the_gui_thread(
    qtbot: Any, window: Any, click_120: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.grid_view

    threads: list[threading.Thread] = []
    real = app.grid_view.analyse_song

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(app.grid_view, "analyse_song", spy)
    w = window
    open_song(qtbot, w, click_120)
    assert "analysing" in w.master.music_label.text()  # the song is on screen before its analysis
    # The event loop keeps running while the analysis is measured: a 10 ms timer goes on ticking (a loop
    # blocked by the analysis would deliver at most one coalesced tick). A count, not a wall-clock bound:
    # the longest stall is measured by bench/app.py.
    from PySide6.QtCore import QTimer

    ticks: list[int] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    with qtbot.waitSignal(w.grid.analysed, timeout=WAIT) as blocker:
        pass
    timer.stop()
    info = blocker.args[0]
    assert threads and threads[0] is not threading.main_thread()
    assert abs(info.tempo_bpm / 120.0 - 1) < 0.04, info.tempo_bpm
    assert info.beats_per_bar == 4 and info.key == "A minor"
    text = w.master.music_label.text()
    assert text.startswith(f"{info.tempo_bpm:.1f} BPM") and "4/4" in text and "A minor" in text
    assert "engine.music" in w.master.music_label.toolTip()
    assert len(ticks) >= 3, f"the event loop ran {len(ticks)} timer ticks during the analysis"
    # the grid is on the waveform and the mix's spectrogram, and paints lines for the view
    assert len(w.grid.items) == 2
    for item in w.grid.items:
        assert item.beats_s.size == info.beats_s.size
        lines = item.lines_for_view()
        assert len(lines.bars) >= 3


def test_a_new_song_makes_the_running_analysis_obsolete(
    qtbot: Any, window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.music_process

    # two minutes take the child a few seconds (after it compiled): still running when the next song opens
    monkeypatch.setattr(app.music_process, "RESTART_AFTER_S", 60.0)
    w = window
    first_song = write_click_song(tmp_path / "clicks 120.wav", 120.0, [AM, DM, E, AM], seconds=120.0)
    other = write_click_song(tmp_path / "clicks 90.wav", 90.0, [AM, DM, E, AM], seconds=20.0)
    seen: list[Any] = []
    w.grid.analysed.connect(seen.append)
    open_song(qtbot, w, first_song)
    first = w.grid._song_worker
    assert first is not None
    child = w.grid.process._proc.pid
    info = open_and_analyse(qtbot, w, other)
    assert first.cancel_event.is_set()
    assert w.grid.process._proc.pid != child  # a long song's obsolete analysis is not left to finish
    qtbot.waitUntil(lambda: not w.grid.busy, timeout=WAIT)
    assert len(seen) == 1 and seen[0] is info  # nothing of the first song arrived
    assert abs(info.tempo_bpm / 90.0 - 1) < 0.04 and w.grid.music is info
    assert w.master.music_label.text().startswith(f"{info.tempo_bpm:.1f} BPM")


def test_the_loop_snaps_when_dragged_and_shift_places_it_freely(
    qtbot: Any, window: Any, click_120: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    w = window
    info = open_and_analyse(qtbot, w, click_120)
    bars, beats = info.beats_s[info.downbeat], info.beats_s
    region = w.loop_region
    # the default region was placed before the analysis: it was put on bars when the beats came
    a, b = region.getRegion()
    assert np.min(np.abs(bars - a)) < 1e-6 and np.min(np.abs(bars - b)) < 1e-6
    w.act_loop.setChecked(True)

    def drag_end_to(x: float) -> None:
        line = region.lines[1]
        line.moving = True  # as InfiniteLine.mouseDragEvent sets it while the mouse drags the edge
        line.setValue(x)
        line.moving = False
        region.sigRegionChangeFinished.emit(region)

    later_bars, later_beats = bars[bars > a + 1.0], beats[beats > a + 1.0]
    drag_end_to(later_bars[1] + 0.3)
    assert region.getRegion() == pytest.approx((a, later_bars[1]))
    assert w.mixer.loop[1] == int(later_bars[1] * SR)  # what plays follows what is shown
    w.grid.snap_actions["beats"].trigger()
    assert settings.get("view/loop_snap") == "beats"
    drag_end_to(later_beats[5] + 0.1)
    assert region.getRegion()[1] == pytest.approx(later_beats[5])
    monkeypatch.setattr(QGuiApplication, "keyboardModifiers", staticmethod(lambda: Qt.KeyboardModifier.ShiftModifier))
    drag_end_to(later_beats[5] + 0.1)
    assert region.getRegion()[1] == pytest.approx(later_beats[5] + 0.1)  # Shift held: free
    # a region set by the program (a session's loop) is never moved
    region.setRegion((1.234, 5.678))
    assert region.getRegion() == pytest.approx((1.234, 5.678))


def test_the_grid_toggle_is_remembered(qtbot: Any, make_window: Any, settings: Any, click_120: Path) -> None:
    w = make_window()
    open_and_analyse(qtbot, w, click_120)
    assert w.grid.act_grid.isChecked() and all(item.isVisible() for item in w.grid.items)
    w.grid.act_grid.trigger()
    assert not any(item.isVisible() for item in w.grid.items)
    assert settings.get("view/beat_grid") is False
    w2 = make_window()
    assert not w2.grid.act_grid.isChecked() and not w2.grid.visible


def test_stems_get_their_tempo_and_key_and_a_session_keeps_the_analysis(
    qtbot: Any, window: Any, click_120: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.grid_view

    w = window
    info = open_and_analyse(qtbot, w, click_120)
    with qtbot.waitSignal(w.grid.stems_analysed, timeout=WAIT) as blocker:
        separate(qtbot, w)
    stems = blocker.args[0]
    sources = list(w.result.sources)
    assert set(stems) == set(sources)
    drums, vocals = stems["drums"], stems["vocals"]
    assert drums.quiet or (drums.tempo_bpm is not None and drums.key is None)
    assert vocals.quiet or (vocals.tempo_bpm is None and vocals.key is not None)
    for name, h in zip(sources, w.headers):
        assert h.music_label.text() == stems[name].text() and h.music_label.text()
    # the grid is drawn on every stem's lanes too
    assert len(w.grid._stem_items) == 2 * len(sources)
    # exported stems carry the analysis as `stemlab separate` writes it
    from app.export_dialog import ExportChoice

    out = tmp_path / "out"
    with qtbot.waitSignal(w.export_finished, timeout=WAIT):
        w.export(ExportChoice(folder=out, stems=["vocals"], fmt="wav", subtype="PCM_16", remix=False,
                              song_stem="clicks"))
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    meta = json.loads((out / "separation.json").read_text())
    assert meta["tempo_bpm"] == pytest.approx(info.tempo_bpm, abs=0.01) and meta["key"] == info.key
    assert (out / "beats.csv").read_text().splitlines()[0] == "time_s,downbeat"
    path = tmp_path / "clicks.stemlab.json"
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(path)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    doc = json.loads(path.read_text())
    assert doc["music"]["key"] == info.key and set(doc["stem_music"]) == set(sources)

    calls: list[int] = []
    for name in ("analyse_song", "analyse_stems"):
        real = getattr(app.grid_view, name)
        monkeypatch.setattr(app.grid_view, name, lambda *a, real=real, **k: (calls.append(1), real(*a, **k))[1])
    with qtbot.waitSignal(w.session_loaded, timeout=WAIT):
        w.open_path(str(path))
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert not calls and not w.grid.busy  # nothing measured again
    assert w.grid.music.key == info.key and w.grid.music.tempo_bpm == pytest.approx(info.tempo_bpm)
    np.testing.assert_allclose(w.grid.music.beats_s, info.beats_s, atol=1e-5)
    assert w.master.music_label.text() == music_text(info)
    assert [h.music_label.text() for h in w.headers] == [stems[s].text() for s in sources]

    # a session saved before the grid existed opens as it did, and the analysis is measured anew
    del doc["music"], doc["stem_music"]
    old = tmp_path / "old.stemlab.json"
    old.write_text(json.dumps(doc))
    (tmp_path / "old.stemlab.npz").write_bytes((tmp_path / "clicks.stemlab.npz").read_bytes())
    old_doc = json.loads(old.read_text())
    old_doc["data"] = "old.stemlab.npz"
    old.write_text(json.dumps(old_doc))
    with qtbot.waitSignal(w.grid.analysed, timeout=WAIT) as again, qtbot.waitSignal(w.session_loaded, timeout=WAIT):
        w.open_path(str(old))
    assert calls and again.args[0].key == info.key
    qtbot.waitUntil(lambda: not w.grid.busy and w._busy_worker is None, timeout=WAIT)
