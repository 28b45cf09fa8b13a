"""The teaching view: true stems read and refused, missed and leaked frames, the figures `stemlab
evaluate` reports, listening to the truth and the error, and the teaching report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from app.errors import TruthError
from app.teaching import activity_lanes, load_truth, truth_activity, truth_files
from engine.metrics import energy_activity, sdr
from engine.model import DEFAULT_SOURCES
from engine.spectral import STFTConfig
from tests.app.test_window import WAIT, open_song, separate
from tests.conftest import SR

SECONDS = 3.0
N = int(SECONDS * SR)


def _tone(freq: float, on: tuple[float, float], seed: int) -> np.ndarray:
    """A stereo tone with a little noise, sounding only between on[0] and on[1] seconds. (2, N) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) / SR
    x = 0.2 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(N)
    x *= (t >= on[0]) & (t < on[1])
    return np.stack([x, 0.7 * x]).astype(np.float32)


def make_stems() -> dict[str, np.ndarray]:
    """Known stems: each source plays a different stretch of the song; guitar does not play at all."""
    spans = {"vocals": (0.5, 2.0), "drums": (0.0, 3.0), "bass": (1.0, 2.5), "piano": (0.0, 1.2),
             "other": (2.0, 3.0)}
    stems = {s: _tone(110.0 * (k + 1), spans[s], k) for k, s in enumerate(spans)}
    stems["guitar"] = np.zeros((2, N), np.float32)
    return {s: stems[s] for s in DEFAULT_SOURCES}


@pytest.fixture()
def song_with_truth(tmp_path: Path) -> tuple[Path, Path]:
    """song.wav (the sum of its stems, float) and truth/<source>.wav, float as well (exact)."""
    stems = make_stems()
    truth = tmp_path / "truth"
    truth.mkdir()
    for s, x in stems.items():
        sf.write(truth / f"{s}.wav", x.T, SR, subtype="FLOAT")
    song = tmp_path / "song.wav"
    sf.write(song, np.stack(list(stems.values())).sum(axis=0).T, SR, subtype="FLOAT")
    return song, truth


@pytest.fixture()
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random model with a card that calls it trained: `stemlab evaluate` refuses untrained
    cards, and this test compares with evaluate on the very same weights."""
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import save_model

    torch.manual_seed(0)
    net = IASSUNet(n_bins=128, depth=3, base_width=4, max_width=16, activity_hidden=8, mask_activation="softmax")
    path = tmp_path_factory.mktemp("model") / "tiny-trained.json"
    save_model(net, path, name="tiny-random", sample_rate=SR, n_fft=2048, hop_length=512, trained=True)
    return path


# ---- Qt-free: reading the truth ---------------------------------------------------------------------


def test_truth_folders_are_read_or_refused_in_one_line(tmp_path: Path) -> None:
    sources = list(DEFAULT_SOURCES)
    stems = make_stems()
    good = tmp_path / "good"
    good.mkdir()
    sf.write(good / "Vocals.WAV", stems["vocals"].T, SR, subtype="FLOAT")  # any case
    # a few ms short (an encoder's padding): padded with silence
    sf.write(good / "bass.flac", stems["bass"][:, : N - 200].T, SR, subtype="PCM_24")
    # another rate: resampled as songs are
    from engine.audio import resample

    sf.write(good / "drums.ogg", resample(stems["drums"], SR, 48000).T, 48000, format="OGG", subtype="VORBIS")
    (good / "notes.txt").write_text("not a stem")
    truth = load_truth(good, sources, SR, N, stems["vocals"] + stems["bass"] + stems["drums"])
    assert truth.sources == ["vocals", "drums", "bass"]  # the model's order, only those present
    assert all(x.shape == (2, N) and x.dtype == np.float32 for x in truth.stems.values())
    np.testing.assert_array_equal(truth.stems["vocals"], stems["vocals"])
    assert np.all(truth.stems["bass"][:, N - 200 :] == 0)
    assert any("resampled from 48000 Hz" in n for n in truth.notes)
    assert sdr(stems["drums"], truth.stems["drums"]) > 15  # lossy and resampled, still the drums
    assert set(truth.spectrograms) == set(truth.sources) and truth.mixture_sdr["vocals"] is not None

    def refused(folder: Path) -> str:
        with pytest.raises(TruthError) as info:
            load_truth(folder, sources, SR, N)
        message = str(info.value)
        assert "\n" not in message and "Traceback" not in message
        return message

    assert "no such folder" in refused(tmp_path / "missing")
    other = tmp_path / "other"
    other.mkdir()
    sf.write(other / "lead.wav", stems["vocals"].T, SR)
    message = refused(other)
    assert "no true stems named after the model's sources" in message and "lead.wav" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no WAV, FLAC or OGG" in refused(empty)
    long = tmp_path / "long"
    long.mkdir()
    sf.write(long / "vocals.wav", np.zeros((SR * 4, 2), np.float32), SR)
    message = refused(long)
    assert "vocals.wav lasts 4.000 s but the song 3.000 s" in message
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "drums.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    assert refused(broken).startswith("True stem drums.wav")
    twice = tmp_path / "twice"
    twice.mkdir()
    sf.write(twice / "bass.wav", stems["bass"].T, SR)
    sf.write(twice / "bass.flac", stems["bass"].T, SR)
    assert "two true stems for bass" in refused(twice)
    assert truth_files(good, sources).keys() == {"vocals", "drums", "bass"}


def test_stemlab_gui_truth_option_refuses_bad_folders_before_any_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], song_with_truth: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli import main

    song, truth = song_with_truth
    assert main(["gui", "--truth", str(truth)]) == 2
    assert "--truth needs the SONG" in capsys.readouterr().err
    assert main(["gui", str(song), "--truth", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["gui", str(song), "--truth", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "holds no .wav, .flac or .ogg" in err and err.count("\n") == 1
    # a good folder goes to the window with its song
    import app.main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(app.main, "run_app", lambda songs, **kw: seen.update(songs=list(songs), **kw) or 0)
    assert main(["gui", str(song), "--truth", str(truth)]) == 0
    assert seen["songs"] == [str(song)] and seen["truth"] == str(truth)


def test_missed_and_leaked_frames_on_a_known_case() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 1, 1, 0, 0], np.uint8)
    gate = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0.4, 0.6], np.float32)  # soft values: on above 0.5
    lanes = activity_lanes(truth, gate[:9])  # the frames both have
    assert lanes.truth.shape == (9,)
    assert lanes.missed.nonzero()[0].tolist() == [1, 6] and lanes.n_missed == 2
    assert lanes.leaked.nonzero()[0].tolist() == [3] and lanes.n_leaked == 1
    # the true activity is evaluate's energy labels at the model's frame rate
    stem = _tone(220.0, (1.0, 2.0), 0)
    config = STFTConfig(2048, 512)
    act = truth_activity(stem, SR, SR, config)
    np.testing.assert_array_equal(act, energy_activity(stem, config))
    on = np.flatnonzero(act)
    assert abs(on[0] * 512 / SR - 1.0) < 0.03 and abs(on[-1] * 512 / SR - 2.0) < 0.03
    # a song at 48 kHz: the labels are made at the model's rate, on the model's frames
    from engine.audio import resample

    act48 = truth_activity(resample(stem, SR, 48000), 48000, SR, config)
    assert act48.shape == act.shape and np.mean(act48 != act) < 0.01


def test_the_mixer_plays_truth_and_error_in_its_callback() -> None:
    from app.mixer import Mixer, StripSettings

    rng = np.random.default_rng(0)
    stems = rng.standard_normal((2, 2, 5000)).astype(np.float32) * 0.1
    truth = rng.standard_normal((2, 5000)).astype(np.float32) * 0.1
    m = Mixer()
    m.set_tracks(stems.sum(axis=0), stems, SR)
    m.set_truth([truth, None])
    m.strips = [StripSettings(solo=True, listen="error"), StripSettings(listen="truth")]
    m.update_gains()
    out = np.zeros((1000, 2), np.float32)
    m.process(out)  # the first block cross-fades from the old gains; the next is steady
    m.process(out)
    np.testing.assert_allclose(out.T, (truth - stems[0])[:, 1000:2000], atol=1e-6)
    np.testing.assert_allclose(m.levels[0], np.abs(truth - stems[0])[:, 1000:2000].max(axis=1), rtol=1e-5)
    # no truth for the second stem: "truth" plays its estimate
    m.strips = [StripSettings(mute=True, listen="truth"), StripSettings(listen="truth")]
    m.update_gains()
    np.testing.assert_allclose(m.render(), stems[1], atol=1e-6)
    m.strips = [StripSettings(listen="truth"), StripSettings(mute=True)]
    m.update_gains()
    np.testing.assert_allclose(m.render(), truth, atol=1e-6)
    m.set_truth(None)
    np.testing.assert_allclose(m.render(), stems[0], atol=1e-6)


# ---- the window -------------------------------------------------------------------------------------


def _open_with_truth(qtbot: Any, w: Any, song: Path, truth: Path) -> Any:
    """What `stemlab gui SONG --truth DIR` does once the window is up."""
    with qtbot.waitSignal(w.teaching.truth_loaded, timeout=WAIT) as blocker:
        w.open_on_start(str(song), truth=str(truth))
        w._maybe_open_first()
    return blocker.args[0]


def _separate_and_score(qtbot: Any, w: Any) -> dict[str, Any]:
    with qtbot.waitSignal(w.teaching.figures_updated, timeout=WAIT):
        separate(qtbot, w)
    qtbot.waitUntil(lambda: not w.regates.busy and w.teaching._fig_worker is None, timeout=WAIT)
    return w.teaching.figures


def test_gui_truth_opens_the_song_with_its_teaching_view(
    qtbot: Any, window: Any, song_with_truth: tuple[Path, Path], dialogs: list
) -> None:
    song, truth_dir = song_with_truth
    truth = _open_with_truth(qtbot, window, song, truth_dir)
    assert window.song.path == song and truth.sources == list(window.separator.sources)
    assert "True stems attached" in window.status_text.text()
    assert not window.act_teaching_report.isEnabled()  # nothing to report before a separation
    figures = _separate_and_score(qtbot, window)
    result = window.result
    assert set(figures) == set(result.sources) and set(window.teaching.lanes) == set(result.sources)
    assert window.act_teaching_report.isEnabled()
    lane = window.teaching.lanes["vocals"]
    assert lane.spec.image.image.shape == truth.spectrograms["vocals"].image.shape
    assert lane.mask.image is not None and 0.0 <= float(lane.mask.image.min()) <= float(lane.mask.image.max()) <= 1.0
    # the true stems share the colour bar, and their lanes follow the time axis and the playhead
    assert tuple(lane.spec.image.levels) == pytest.approx(window.levels)
    window.zoom(0.5)
    qtbot.wait(50)
    assert lane.spec_plot.vb.viewRange()[0] == pytest.approx(window.overview_plot.vb.viewRange()[0], abs=0.005)
    window.seek(1.25)
    assert lane.playheads[0].value() == pytest.approx(1.25)
    # each figure is engine.metrics' on the stems as gated now
    i = result.sources.index("vocals")
    f = figures["vocals"]
    assert f.sdr_gated == pytest.approx(sdr(truth.stems["vocals"], result.stems[i]))
    assert f.sdr_mixture == pytest.approx(sdr(truth.stems["vocals"], window.song.stereo))
    assert figures["guitar"].sdr_gated is None and figures["guitar"].silent_db is not None  # silent in truth
    text = window.teaching.headers["vocals"].text()
    assert f"gated {f.sdr_gated:+.2f} dB" in text and f"F1 {f.f1:.3f}" in text
    assert "silent in truth" in window.teaching.headers["guitar"].text()
    # a bad folder for the open song: one dialog, one line, the teaching view stays
    bad = truth_dir.parent / "bad"
    bad.mkdir()
    sf.write(bad / "vocals.wav", np.zeros((SR, 2), np.float32), SR)
    with qtbot.waitSignal(window.error_shown, timeout=WAIT) as blocker:
        window.attach_truth(str(bad))
    title, message = blocker.args
    assert title == "Cannot use the true stems" and "vocals.wav lasts 1.000 s" in message and "\n" not in message
    assert dialogs[-1][0] == "warning" and window.teaching.active


def test_demo_song_opens_with_its_own_truth(
    qtbot: Any, window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, song_with_truth: tuple[Path, Path]
) -> None:
    song, truth_dir = song_with_truth
    res = tmp_path / "res" / "demo"
    (res / "stems").mkdir(parents=True)
    sf.write(res / "demo.ogg", sf.read(song)[0], SR, format="OGG", subtype="VORBIS")
    for s in ("vocals", "drums"):
        sf.write(res / "stems" / f"{s}.ogg", sf.read(truth_dir / f"{s}.wav")[0], SR, format="OGG", subtype="VORBIS")
    monkeypatch.setenv("STEMLAB_RESOURCES", str(tmp_path / "res"))
    with qtbot.waitSignal(window.teaching.truth_loaded, timeout=WAIT) as blocker:
        window.open_demo()
    assert blocker.args[0].sources == ["vocals", "drums"]
    # any other song opens without a truth
    with qtbot.assertNotEmitted(window.teaching.truth_loaded, wait=300):
        open_song(qtbot, window, song)
    assert window.teaching.truth is None


def test_a_figure_equals_what_stemlab_evaluate_reports(
    qtbot: Any, make_window: Any, trained_tiny: Path, tmp_path: Path
) -> None:
    from engine.gating import GatingSettings
    from training.datasets.dataset import write_manifest, write_song_folder
    from training.datasets.labels import song_labels
    from training.evaluation.evaluate import evaluate

    # a one-song set as the training fixtures write it; its FLAC stems are the truth the app reads
    stems = make_stems()
    root = tmp_path / "set"
    folder = root / "songs" / "song_00000"
    meta = {"sample_rate": SR}
    write_song_folder(folder, stems, song_labels({}, stems, DEFAULT_SOURCES, N, SR), DEFAULT_SOURCES, SR, meta)
    decoded = {s: sf.read(folder / f"{s}.flac", dtype="float32", always_2d=True)[0].T for s in DEFAULT_SOURCES}
    # labels from the stored (16-bit) stems, as the app computes them from the files it reads
    write_song_folder(folder, decoded, song_labels({}, decoded, DEFAULT_SOURCES, N, SR), DEFAULT_SOURCES, SR, meta)
    write_manifest(root)
    song = tmp_path / "mixture.wav"
    sf.write(song, np.stack([decoded[s] for s in DEFAULT_SOURCES]).sum(axis=0).T, SR, subtype="FLOAT")
    gating = GatingSettings(threshold=0.5, median_frames=9)
    report = evaluate(str(trained_tiny), str(root), gating=gating, progress=False)

    w = make_window(model=str(trained_tiny), allow_untrained=False)
    w.master.gating.set_values(0.5, 100.0, "binary")  # 100 ms at 44.1 kHz / 512 = 9 frames
    _open_with_truth(qtbot, w, song, folder)
    figures = _separate_and_score(qtbot, w)
    spec = w.gating_spec()
    assert all(g == gating for g in spec.values())
    for s in DEFAULT_SOURCES:
        expected = report["sdr"]["gated"]["per_source"][s]
        if expected is None:  # silent in the truth: evaluate has no SDR either
            assert figures[s].sdr_gated is None
        else:
            assert figures[s].sdr_gated == pytest.approx(expected, abs=1e-9), s
            assert figures[s].sdr_mixture == pytest.approx(report["sdr"]["mixture"]["per_source"][s], abs=1e-9)
        act = report["activity"][s]
        assert (figures[s].precision, figures[s].recall, figures[s].f1) == pytest.approx(
            (act["precision"], act["recall"], act["f1"]), abs=1e-9
        ), s


def test_figures_follow_the_threshold_and_the_mode(
    qtbot: Any, window: Any, song_with_truth: tuple[Path, Path]
) -> None:
    song, truth_dir = song_with_truth
    truth = _open_with_truth(qtbot, window, song, truth_dir)
    before = dict(_separate_and_score(qtbot, window))
    # a threshold of 0 opens every gate: nothing is missed, every silent frame leaks
    with qtbot.waitSignal(window.teaching.figures_updated, timeout=WAIT) as blocker:
        window.master.gating.threshold.setValue(0)
    after = blocker.args[0]
    r = window.result
    for s in r.sources:
        assert after[s].recall == 1.0 and after[s].n_missed == 0
        assert after[s].n_leaked == after[s].n_frames - after[s].n_truth
        if after[s].sdr_gated is not None:
            i = r.sources.index(s)
            assert after[s].sdr_gated == pytest.approx(sdr(truth.stems[s], r.stems[i]))
    assert any(after[s].f1 != before[s].f1 or after[s].sdr_gated != before[s].sdr_gated for s in r.sources)
    lane = window.teaching.lanes["vocals"]
    assert lane.missed_band.getData()[1].max() == 0  # the red marks went with the missed frames
    # the mode, too: "none" keeps every stem ungated, its SDR is the ungated stem's
    with qtbot.waitSignal(window.teaching.figures_updated, timeout=WAIT) as blocker:
        window.master.gating.mode.setCurrentText("none")
    i = r.sources.index("drums")
    assert blocker.args[0]["drums"].sdr_gated == pytest.approx(sdr(truth.stems["drums"], r.ungated[i]), abs=1e-5)


def test_hearing_truth_and_error_changes_what_the_mixer_plays(
    qtbot: Any, window: Any, song_with_truth: tuple[Path, Path]
) -> None:
    song, truth_dir = song_with_truth
    truth = _open_with_truth(qtbot, window, song, truth_dir)
    _separate_and_score(qtbot, window)
    r = window.result
    i = r.sources.index("bass")
    window.toggle_solo(i)  # the mixer's solo habit: only the bass strip plays
    np.testing.assert_allclose(window.mixer.render(), r.stems[i], atol=1e-6)
    header = window.teaching.headers["bass"]
    header.listen_buttons["truth"].click()
    assert window.mixer.strips[i].listen == "truth"
    np.testing.assert_allclose(window.mixer.render(), truth.stems["bass"], atol=1e-6)
    header.listen_buttons["error"].click()
    np.testing.assert_allclose(window.mixer.render(), truth.stems["bass"] - r.stems[i], atol=1e-6)
    # the error follows the gate: after a re-gating it is the truth minus the new estimate
    with qtbot.waitSignal(window.regate_done, timeout=WAIT):
        window.set_stem_threshold("bass", 1.0)
    qtbot.waitUntil(lambda: not window.regates.busy, timeout=WAIT)
    np.testing.assert_allclose(window.mixer.render(), truth.stems["bass"] - r.stems[i], atol=1e-6)
    # mute still silences the strip, whatever it plays; B still plays the original song
    window.toggle_mute(i)
    assert np.abs(window.mixer.render()).max() == 0
    window.toggle_mute(i)
    window.set_ab(True)
    np.testing.assert_allclose(window.mixer.render(), window.song.stereo, atol=1e-6)


def test_the_teaching_report_is_written_and_never_overwritten_silently(
    qtbot: Any, window: Any, song_with_truth: tuple[Path, Path], tmp_path: Path, dialogs: list,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QMessageBox

    song, truth_dir = song_with_truth
    # File > Attach truth stems… after the separation
    open_song(qtbot, window, song)
    separate(qtbot, window)
    assert not window.act_teaching_report.isEnabled()
    with qtbot.waitSignal(window.teaching.figures_updated, timeout=WAIT):
        window.attach_truth(str(truth_dir))
    qtbot.waitUntil(lambda: window.teaching._fig_worker is None, timeout=WAIT)
    figures = window.teaching.figures
    assert window.act_teaching_report.isEnabled() and set(window.teaching.lanes) == set(window.result.sources)
    out = tmp_path / "report"
    out.mkdir()
    with qtbot.waitSignal(window.teaching.report_written, timeout=WAIT) as blocker:
        window.teaching.export_report(out, song.stem, window.gating_spec(), window, window.status)
    written = blocker.args[0]
    pngs = sorted(p for p in written if p.suffix == ".png")
    assert len(pngs) == len(window.result.sources)
    for p in pngs:
        img = QImage(str(p))
        assert not img.isNull() and img.width() > 800 and img.height() > 250
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    csv = (out / f"{song.stem} - teaching.csv").read_text().splitlines()
    assert csv[0].startswith("source,sdr_gated_db,sdr_mixture_db") and len(csv) == 1 + len(figures)
    vocals = next(line.split(",") for line in csv if line.startswith("vocals,"))
    assert float(vocals[1]) == pytest.approx(figures["vocals"].sdr_gated, abs=1e-3)
    assert vocals[-3:] == ["0.50", "9", "binary"]
    # again into the same folder: asked, answered No, nothing is touched
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    with qtbot.assertNotEmitted(window.teaching.report_written, wait=300):
        window.teaching.export_report(out, song.stem, window.gating_spec(), window, window.status)
    assert dialogs[-1][:2] == ("question", "Replace files?")
    assert "nothing was overwritten" in window.status_text.text()
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    # answered Yes, the files are replaced
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(window.teaching.report_written, timeout=WAIT):
        window.teaching.export_report(out, song.stem, window.gating_spec(), window, window.status)
    assert any(p.stat().st_mtime_ns != stamps[p] for p in stamps)
    # a folder that cannot be written: one dialog saying why, nothing left behind
    gone = tmp_path / "gone"
    with qtbot.waitSignal(window.error_shown, timeout=WAIT) as blocker:
        window.teaching.export_report(gone, song.stem, window.gating_spec(), window, window.status)
    assert blocker.args[0] == "Cannot write the teaching report" and "could not be written" in blocker.args[1]
    assert not gone.exists()


def test_zoomed_in_the_true_stems_get_tiles_of_the_span_on_screen(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    from tests.conftest import tone_mix

    w = window
    mix = tone_mix(70.0, seed=5)
    song = tmp_path / "seventy seconds.wav"
    sf.write(song, mix.T, SR, subtype="FLOAT")
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    sf.write(truth_dir / "vocals.wav", (0.5 * mix).T, SR, subtype="FLOAT")
    sf.write(truth_dir / "bass.wav", (0.5 * mix).T, SR, subtype="FLOAT")
    _open_with_truth(qtbot, w, song, truth_dir)
    _separate_and_score(qtbot, w)
    whole = w.teaching.truth.spectrograms["vocals"]
    with qtbot.waitSignal(w.spectrogram_detail_shown, timeout=WAIT):
        w.overview_plot.setXRange(30.0, 34.0, padding=0)
    qtbot.waitUntil(lambda: w._tiles is not None and set(w._tiles.truth) == {"vocals", "bass"}, timeout=WAIT)
    tile = w._tiles.truth["vocals"]
    assert tile.column_s < whole.column_s
    assert tile.start_s <= 30.0 and 34.0 <= tile.start_s + tile.duration_s
    assert w.teaching.lanes["vocals"].spec.image.image.shape == tile.image.shape
    w.zoom_fit()
    qtbot.waitUntil(lambda: w._tiles is None, timeout=WAIT)
    assert w.teaching.lanes["vocals"].spec.image.image.shape == whole.image.shape


def test_with_wiener_refinement_the_figures_score_the_refined_stems(
    qtbot: Any, window: Any, song_with_truth: tuple[Path, Path]
) -> None:
    song, truth_dir = song_with_truth
    window.act_wiener.setChecked(True)
    truth = _open_with_truth(qtbot, window, song, truth_dir)
    figures = dict(_separate_and_score(qtbot, window))
    r = window.result
    assert r.wiener and not window.regates.frames  # no cached band frames: the masks are drawn anyway
    assert window.teaching.lanes["piano"].mask.image is not None
    with qtbot.waitSignal(window.teaching.figures_updated, timeout=WAIT) as blocker:
        window.set_stem_threshold("piano", 0.9)
    qtbot.waitUntil(lambda: not window.regates.busy and window.teaching._fig_worker is None, timeout=WAIT)
    i = r.sources.index("piano")
    after = window.teaching.figures["piano"]
    assert after.sdr_gated == pytest.approx(sdr(truth.stems["piano"], r.stems[i]))
    # only the stem whose gate changed was scored again
    assert after is not figures["piano"] and window.teaching.figures["vocals"] is figures["vocals"]
    assert blocker.args[0]["piano"] is after
