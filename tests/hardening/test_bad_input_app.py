"""Every file of the bad-input corpus opened in the app, one after another in one window (pytest-qt,
offscreen): one error dialog for each file that cannot be used, a song and stems for each that can,
and the window still separating a good song at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import SR
from tests.hardening.corpus import build_corpus

WAIT = 60000


def test_each_corpus_file_gives_one_dialog_or_stems(qtbot: Any, window: Any, tmp_path: Path, dialogs: list,
                                                    song_file: Path) -> None:
    w = window
    cases = build_corpus(tmp_path / "in")
    for case in cases:
        before = len(dialogs)
        if not case.ok:
            with qtbot.waitSignal(w.error_shown, timeout=WAIT) as blocker:
                w.open_path(str(case.path))
            qtbot.waitUntil(lambda: w._open_worker is None, timeout=WAIT)
            assert len(dialogs) == before + 1, (case.name, dialogs[before:])
            kind, title, text = dialogs[-1]
            assert kind == "warning" and title == "Cannot open the song", case.name
            assert case.message in text and case.path.name in text, (case.name, text)
            assert blocker.args[1] == text
            assert "Traceback" not in text and "Unexpected error" not in text
            continue
        with qtbot.waitSignal(w.song_loaded, timeout=WAIT) as blocker:
            w.open_path(str(case.path))
        song = blocker.args[0]
        assert song.sample_rate == case.sample_rate and song.samples.shape[0] == 2, case.name
        assert np.isfinite(w.song.spectrogram.image).all() and np.isfinite(song.overview.hi).all()
        if case.message and "resampled" not in case.message:  # resampling is the separation's business
            assert any(case.message in n for n in song.notes), (case.name, song.notes)
            assert case.message in w.status_text.text()
        with qtbot.waitSignal(w.separation_finished, timeout=WAIT) as blocker:
            w.separate()
        qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
        r = blocker.args[0]
        n = song.samples.shape[1]
        assert r.stems.shape == (6, 2, n) and np.isfinite(r.stems).all(), case.name
        assert case.n_samples is None or n == case.n_samples
        if case.silent:
            assert not r.stems.any() and not r.activity.any()
            assert all(h.activity_label.text() == "on 0% of the song" for h in w.headers)
            assert "digital silence" in w.status_text.text()
        assert len(dialogs) == before, (case.name, dialogs[before:])
    # still usable: a good song opens and separates
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT):
        w.open_path(str(song_file))
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
    assert w.result.stems.shape == (6, 2, 3 * SR)
