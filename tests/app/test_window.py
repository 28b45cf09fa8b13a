"""The main window through its real workers (pytest-qt, offscreen), on the tiny random model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
import soundfile as sf

from tests.conftest import SR, tone_mix

WAIT = 60000


def open_song(qtbot: Any, w: Any, path: Path) -> Any:
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT) as blocker:
        w.open_path(str(path))
    return blocker.args[0]


def separate(qtbot: Any, w: Any) -> Any:
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT) as blocker:
        w.separate()
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
    return blocker.args[0]


@pytest.fixture()
def separated_window(qtbot: Any, window: Any, song_file: Path) -> Any:
    open_song(qtbot, window, song_file)
    separate(qtbot, window)
    return window


def test_launch_without_a_model_says_so_and_still_opens_songs(
    qtbot: Any, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, song_file: Path
) -> None:
    monkeypatch.setenv("STEMLAB_RESOURCES", str(tmp_path / "empty"))
    w = make_window(model="bundled", allow_untrained=False)
    assert w.separator is None
    bar = w.messages["model"]
    assert "No trained model is bundled" in bar.text() and "stemlab train" in bar.text()
    assert "Load model" in bar.text()
    song = open_song(qtbot, w, song_file)
    assert song.samples.shape == (2, 3 * SR)
    assert not w.act_separate.isEnabled()
    assert "No model" in w.placeholder.text.text()
    # playback unavailable is said once, as a banner, not a dialog
    assert "Playback is unavailable" in w.messages["playback"].text()


def test_first_run_opens_the_demo_song(
    qtbot: Any, make_window: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "res" / "demo" / "demo.ogg"
    demo.parent.mkdir(parents=True)
    sf.write(demo, tone_mix(2.0).T, SR, format="OGG", subtype="VORBIS")
    monkeypatch.setenv("STEMLAB_RESOURCES", str(tmp_path / "res"))
    settings.set("ui/first_run_done", False)
    w = make_window()
    qtbot.waitUntil(lambda: w.song is not None, timeout=WAIT)
    assert w.song.path == demo and settings.get("ui/first_run_done")


def test_open_shows_waveform_and_spectrogram_before_separation(
    qtbot: Any, window: Any, song_file: Path
) -> None:
    song = open_song(qtbot, window, song_file)
    x, y = window.overview_items.getData()
    assert len(x) > 100 and np.nanmax(y) > 0.3
    img = window.mix_spec.image.image
    assert img is not None and img.shape[1] == song.spectrogram.image.shape[1]
    assert window.stem_pages.currentIndex() == 0  # the "Separate" call to action
    assert window.act_separate.isEnabled()
    assert window.mixer.n_samples == 3 * SR


def test_zooming_in_redraws_the_waveform_from_the_samples(qtbot: Any, window: Any, song_file: Path) -> None:
    open_song(qtbot, window, song_file)
    x_full, _ = window.overview_items.getData()
    window.overview_plot.setXRange(1.0, 1.2)
    qtbot.waitUntil(lambda: getattr(window, "_detail_shown", False), timeout=5000)
    x_zoom, y_zoom = window.overview_items.getData()
    inside = (x_zoom >= 1.0) & (x_zoom <= 1.2)
    assert inside.sum() > 5 * ((x_full >= 1.0) & (x_full <= 1.2)).sum()
    window.zoom_fit()
    qtbot.waitUntil(lambda: not window._detail_shown, timeout=5000)


def test_separation_shows_stems_curves_and_gates(separated_window: Any) -> None:
    w = separated_window
    r = w.result
    assert r.stems.shape == (6, 2, 3 * SR) and r.stems.dtype == np.float32
    assert len(w.lanes) == len(w.headers) == 6
    for i, lane in enumerate(w.lanes):
        t, a = lane.curve.getData()
        np.testing.assert_allclose(a, r.activity[i])
        assert lane.spec.image.image is not None
    assert w.mixer.stems is r.stems  # playback reads the result's stems directly
    assert "CPU" in w.status_text.text() and "CPU" in w.device_label.text()
    assert w.last_stall_ms is not None


def test_threshold_change_regates_stems_bands_and_spectrogram(qtbot: Any, separated_window: Any) -> None:
    w = separated_window
    r = w.result
    before = r.stems.copy()
    # everything gated off at threshold 1: stems fall silent, bands empty
    with qtbot.waitSignal(w.regate_done, timeout=WAIT):
        w.master.gating.threshold.setValue(100)
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=WAIT)
    assert not r.stems.any()
    for lane in w.lanes:
        _, levels = lane.band.getData()
        assert not np.asarray(levels).any()
        assert lane.threshold_line.value() == pytest.approx(1.0)
    assert float(w.lanes[0].spec.image.image.max()) <= -99.0
    # back to 0: every stem on again and equal to the ungated stems
    with qtbot.waitSignal(w.regate_done, timeout=WAIT):
        w.master.gating.threshold.setValue(0)
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=WAIT)
    np.testing.assert_allclose(r.stems, r.ungated, atol=1e-6)
    assert not np.array_equal(before, r.stems) or np.array_equal(before, r.ungated)


def test_per_stem_threshold_and_newest_setting_wins(qtbot: Any, separated_window: Any) -> None:
    w = separated_window
    r = w.result
    # a burst of changes to one stem: only the newest is rendered last
    for v in (0.9, 0.1, 0.7, 1.0):
        w.set_stem_threshold("drums", v)
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=WAIT)
    assert w.regates.renders <= 3
    i = r.sources.index("drums")
    assert not r.stems[i].any()
    assert not w.headers[i].linked.isChecked()
    assert w.gating_spec()["drums"].threshold == 1.0
    assert w.gating_spec()["vocals"].threshold == w.master.gating.threshold_value
    # the median control is in ms, shown in frames too
    w.master.gating.median.setValue(200)
    assert w.master.gating.median_frames_label.text() == f"{w.gating_spec()['vocals'].median_frames} fr"
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=WAIT)


def test_mixer_controls_reach_the_mixer(qtbot: Any, separated_window: Any) -> None:
    w = separated_window
    h = w.headers
    h[0].gain.set_db(-6.0)
    h[1].mute.setChecked(True)
    h[2].pan.setValue(-100)
    g = w.mixer.gain_matrix()
    assert g[0, 0] == pytest.approx(10 ** (-6 / 20))
    assert not g[1].any()
    assert g[2, 0] == pytest.approx(1.0) and g[2, 1] == 0.0
    w.toggle_solo(3)  # key 4
    g = w.mixer.gain_matrix()
    assert g[3].all() and not g[[0, 1, 2, 4, 5]].any()
    w.set_ab(True)
    g = w.mixer.gain_matrix()
    assert not g[:6].any() and g[6].all()
    # no sound card: play says why and keeps working; seeking still moves the playhead
    w.toggle_play()
    assert not w.player.playing
    w.seek(1.5)
    assert w.mixer.position == int(1.5 * SR)
    assert w.playheads[0].value() == pytest.approx(1.5)


def test_export_writes_stems_and_remix_and_never_overwrites_silently(
    qtbot: Any, separated_window: Any, tmp_path: Path, dialogs: list
) -> None:
    from app.export_dialog import ExportChoice

    w = separated_window
    w.headers[0].gain.set_db(-6.0)
    w.headers[5].mute.setChecked(True)
    choice = ExportChoice(
        folder=tmp_path / "out",
        stems=["vocals", "bass"],
        fmt="flac",
        subtype="PCM_24",
        remix=True,
        song_stem="song",
    )
    with qtbot.waitSignal(w.export_finished, timeout=WAIT) as blocker:
        w.export(choice)
    written = blocker.args[0]
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["vocals.flac", "bass.flac", "activity.csv", "separation.json", "song (remix).flac"]
    )
    data, rate = sf.read(tmp_path / "out" / "song (remix).flac", always_2d=True)
    assert rate == SR and data.shape == (3 * SR, 2)
    np.testing.assert_allclose(data.T, w.mixer.render(), atol=2e-6 * 8)  # 24-bit quantisation
    info = sf.info(str(tmp_path / "out" / "bass.flac"))
    assert info.subtype == "PCM_24" and info.samplerate == SR
    assert not list((tmp_path / "out").glob("*.part"))
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    # the dialog path asks before replacing (the fake answers No) and writes nothing
    before = {p: p.stat().st_mtime_ns for p in written}
    from app import main_window as mw

    class FakeDialog:
        DialogCode = mw.ExportDialog.DialogCode

        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def exec(self) -> Any:
            return mw.ExportDialog.DialogCode.Accepted

        def choice(self) -> ExportChoice:
            return choice

    mw_dialog = mw.ExportDialog
    mw.ExportDialog = FakeDialog  # type: ignore[misc]
    try:
        w.show_export_dialog()
    finally:
        mw.ExportDialog = mw_dialog  # type: ignore[misc]
    assert dialogs and dialogs[-1][0] == "question" and "already exist" in dialogs[-1][2]
    assert w._busy_worker is None
    assert {p: p.stat().st_mtime_ns for p in written} == before


def test_cancel_mid_separation_leaves_the_app_as_it_was(qtbot: Any, window: Any, tmp_path: Path) -> None:
    w = window
    path = tmp_path / "long.wav"
    sf.write(path, tone_mix(40.0).T, SR)
    open_song(qtbot, w, path)
    w.separator.chunk_samples = w.separator.chunk_samples // 4  # more chunks: a cancel lands mid-way
    with qtbot.waitSignal(w.separation_cancelled, timeout=WAIT):
        w.separate()
        qtbot.waitSignal(w._sep_worker.signals.progress, timeout=WAIT).wait()
        w.cancel_work()
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
    assert w.result is None and w.stem_pages.currentIndex() == 0
    assert w.act_separate.isEnabled() and not w.progress.isVisible()
    assert "cancelled" in w.status_text.text().lower()


def test_corrupt_file_shows_one_error_and_the_app_stays_usable(
    qtbot: Any, window: Any, tmp_path: Path, song_file: Path, dialogs: list
) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    with qtbot.waitSignal(window.error_shown, timeout=WAIT):
        window.open_path(str(bad))
    assert len(dialogs) == 1 and dialogs[0][0] == "warning" and "broken.wav" in dialogs[0][2]
    assert window.song is None
    open_song(qtbot, window, song_file)
    separate(qtbot, window)
    assert window.result is not None


def test_session_save_and_reopen_restores_everything(
    qtbot: Any, separated_window: Any, make_window: Any, tmp_path: Path
) -> None:
    w = separated_window
    w.set_stem_threshold("bass", 0.8)
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=WAIT)
    w.headers[0].gain.set_db(-4.5)
    w.headers[2].solo.setChecked(True)
    w.master.gain.set_db(-2.0)
    stems = w.result.stems.copy()
    path = tmp_path / "sess.stemlab.json"
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(path)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    w2 = make_window()
    with qtbot.waitSignal(w2.session_loaded, timeout=WAIT):
        w2.open_path(str(path))
    np.testing.assert_allclose(w2.result.stems, stems, atol=1e-6)
    assert w2.headers[0].gain.db == -4.5 and w2.headers[2].solo.isChecked()
    assert not w2.headers[w2.result.sources.index("bass")].linked.isChecked()
    assert w2.gating_spec()["bass"].threshold == pytest.approx(0.8)
    assert w2.master.gain.db == -2.0
    np.testing.assert_array_equal(w2.mixer.gain_matrix(), w.mixer.gain_matrix())
    assert str(path.resolve()) in w2.settings.recent_files()


def test_settings_and_recent_files_persist(settings: Any, tmp_path: Path) -> None:
    from app.settings import DEFAULTS, Settings

    assert settings.get("gating/threshold") == DEFAULTS["gating/threshold"]
    settings.set("gating/threshold", 0.3)
    f = tmp_path / "a.wav"
    f.write_bytes(b"x")
    settings.add_recent(str(f))
    settings.sync()
    again = Settings(str(tmp_path / "settings.ini"))
    assert again.get("gating/threshold") == 0.3
    assert again.recent_files() == [str(f.resolve())]
    with pytest.raises(KeyError):
        settings.set("no/such/key", 1)


def test_about_names_the_model(window: Any, dialogs: list) -> None:
    window.show_about()
    kind, title, text = dialogs[-1]
    assert kind == "about" and "tiny-random" in text and "untrained" in text


def test_play_before_separating_plays_the_original_mix(qtbot: Any, window: Any, song_file: Path) -> None:
    w = window
    song = open_song(qtbot, w, song_file)
    assert w.result is None
    g = w.mixer.gain_matrix()
    assert g.shape == (1, 2) and g[0].tolist() == [1.0, 1.0]
    out = np.zeros((512, 2), np.float32)
    assert w.mixer.process(out) == 512
    np.testing.assert_array_equal(out.T, song.stereo[:, :512])
    w.master.gain.set_db(-6.0)  # the master fader works on it too
    assert w.mixer.gain_matrix()[0, 0] == pytest.approx(10 ** (-6 / 20))
    # once separated, A plays the stems and B the original, as before
    separate(qtbot, w)
    g = w.mixer.gain_matrix()
    assert g[:6].any() and not g[6].any()


class _Stream:
    """Stands in for a running sounddevice stream: Player.playing reads only `active`."""

    active = True

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_meters_fall_to_silence_after_pause(separated_window: Any) -> None:
    w = separated_window
    meters = [h.meter for h in w.headers] + [w.master.meter]
    w.player._stream = _Stream()  # playing
    w.mixer.levels[...] = 0.9
    w._tick()
    assert all(m.peak_db > -3.0 and not m.silent for m in meters)
    w.player._stream = None  # paused: the callback no longer runs, mixer.levels keep the last block
    for _ in range(10):
        w._last_tick -= 1.0  # one second between ticks
        w._tick()
    assert all(m.silent for m in meters), [m.peak_db for m in meters]


def test_a_new_song_starts_at_zero_with_silent_meters(qtbot: Any, separated_window: Any, tmp_path: Path) -> None:
    """Paused at 1.5 s with the master meter up, then a new song: playheads at 0, the meter silent, and
    playing starts from its beginning (no seek of the old song left pending for the audio callback)."""
    w = separated_window
    w.seek(1.5)
    w.mixer.levels[...] = 0.9
    w.player._stream = _Stream()
    w._tick()
    w.player._stream = None
    w._tick()  # the pause is seen
    assert not w.master.meter.silent and w.playheads[0].value() == pytest.approx(1.5)
    other = tmp_path / "other.wav"
    sf.write(other, tone_mix(2.0, seed=3).T, SR)
    open_song(qtbot, w, other)
    lines = list(w.playheads)
    assert lines and all(line.value() == 0.0 for line in lines)
    assert w.clock.text().startswith("0:00.0 /") and w.master.meter.silent
    out = np.zeros((256, 2), np.float32)
    w.mixer.process(out)
    assert w.mixer.position == 256


def test_a_silent_song_is_drawn_as_silence(qtbot: Any, window: Any, tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((2 * SR, 2), np.float32), SR)
    song = open_song(qtbot, window, path)
    assert "the song is digital silence" in song.notes
    item = window.mix_spec.image
    lo, hi = item.getLevels()
    assert np.isfinite([lo, hi]).all() and hi > lo
    item.render()  # the picture pyqtgraph paints
    img = item.qimage
    lowest = pg.colormap.get("inferno").map(0.0, mode="qcolor")
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 5)}
    assert colours == {lowest.rgba()}, [hex(c) for c in list(colours)[:5]]


def test_a_truncated_session_says_so_once_and_changes_nothing(
    qtbot: Any, separated_window: Any, tmp_path: Path, dialogs: list, caplog: pytest.LogCaptureFixture
) -> None:
    from app.session import session_paths

    w = separated_window
    path = tmp_path / "cut.stemlab.json"
    with qtbot.waitSignal(w.session_saved, timeout=WAIT):
        w.save_session(path)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    _, npz = session_paths(path)
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])  # a copy that did not finish
    song, result, stems = w.song, w.result, w.result.stems.copy()
    title = w.windowTitle()
    dialogs.clear()
    with qtbot.waitSignal(w.error_shown, timeout=WAIT):
        w.open_path(str(path))
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert len(dialogs) == 1, dialogs
    kind, heading, text = dialogs[0]
    assert kind == "warning" and heading == "Cannot open the session"
    assert "cut.stemlab.json is not a complete StemLab session" in text and "cut short or damaged" in text
    assert "Unexpected" not in text and "BadZipFile" not in text
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no traceback logged
    assert w.song is song and w.result is result and w.windowTitle() == title
    np.testing.assert_array_equal(w.result.stems, stems)
    assert w.mixer.stems is result.stems and w.stem_pages.currentIndex() == 1


def test_stems_start_at_the_gating_the_model_card_tunes(qtbot: Any, make_window: Any, tiny_model: Path,
                                                        tmp_path: Path, song_file: Path) -> None:
    """As `stemlab separate` does: a stem the card tunes starts at its threshold and median length."""
    import json
    import shutil

    for f in tiny_model.parent.glob(tiny_model.stem + ".*"):
        shutil.copy(f, tmp_path / f.name)
    card_path = tmp_path / tiny_model.name
    card = json.loads(card_path.read_text())
    card["gating"] = {"per_source": {"drums": {"mode": "binary", "threshold": 0.2, "median_frames": 25}}}
    card_path.write_text(json.dumps(card))
    w = make_window(model=str(card_path))
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT):
        w.open_path(str(song_file))
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=WAIT)
    spec = w.gating_spec()
    d = w.result.sources.index("drums")
    assert not w.headers[d].linked.isChecked()
    assert spec["drums"].threshold == pytest.approx(0.2, abs=0.01) and spec["drums"].median_frames == 25
    assert spec["vocals"].threshold == pytest.approx(w.master.gating.threshold_value)
    assert w.headers[0].linked.isChecked()


def test_the_tempo_measured_late_never_hides_the_separations_notes(qtbot: Any, window: Any, tmp_path: Path) -> None:
    """The song's tempo and key come from their own worker, whenever it finishes: while the status still
    tells of the opening they join it; after a separation (whose notes matter more) they leave it alone."""
    w = window
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((2 * SR, 2), np.float32), SR)
    with qtbot.waitSignal(w.grid.analysed, timeout=WAIT):
        open_song(qtbot, w, path)
    assert w.status_text.text().startswith(w.opened_status) and "· measured no steady beat" in w.status_text.text()
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
    separated = w.status_text.text()
    assert separated.startswith("Separated into 6 stems") and "digital silence" in separated
    w.grid.analysed.emit(w.grid.music)  # as a slow analysis would, after the separation
    assert w.status_text.text() == separated
