"""The window on small and large screens: it fits the available area, the toolbar keeps its clock at
1280 pixels, and the About box is a compact table that fits a 720-pixel screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication, QMessageBox, QToolButton

from tests.app.conftest import pretend_screen
from tests.app.test_window import _Stream, open_song

SCREENS = [(1280, 720), (1366, 768), (1920, 1080), (2560, 1440), (3840, 2160)]


def inside(inner: QRect, outer: QRect) -> bool:
    return outer.contains(inner.topLeft()) and outer.contains(inner.bottomRight())


@pytest.mark.parametrize("width,height", SCREENS)
def test_the_window_fits_the_available_screen(
    qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, width: int, height: int
) -> None:
    # a panel on top: the available area starts below it
    pretend_screen(monkeypatch, width, height - 32, 0, 32)
    avail = QRect(0, 32, width, height - 32)
    w = make_window()
    qtbot.wait(10)  # the fit after showing
    assert inside(w.frameGeometry(), avail), (w.frameGeometry(), avail)
    m = w.minimumSize()
    assert m.width() <= avail.width() and m.height() <= avail.height()
    assert m.width() >= 800 and m.height() >= 500  # a sensible floor: it cannot be squeezed to nothing
    # it uses the room there is: the preferred size on a large screen, nearly all of a small one
    assert w.width() >= min(1560, avail.width() - 16) and w.height() >= min(960, avail.height() - 40)


def test_a_geometry_saved_on_a_large_screen_is_fitted_to_a_small_one(
    qtbot: Any, make_window: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretend_screen(monkeypatch, 2560, 1440)
    big = make_window()
    big.resize(2400, 1350)
    big.move(100, 60)
    settings.set("ui/geometry", big.saveGeometry())
    pretend_screen(monkeypatch, 1280, 720)
    w = make_window()
    qtbot.wait(10)
    assert inside(w.frameGeometry(), QRect(0, 0, 1280, 720)), w.frameGeometry()
    # a later resize past the screen is brought back on showing again
    w.resize(1700, 1000)
    w.hide()
    w.show()
    qtbot.waitUntil(lambda: inside(w.frameGeometry(), QRect(0, 0, 1280, 720)), timeout=5000)


@pytest.fixture()
def themed() -> Iterator[None]:
    """The app's style sheet (fonts and padding as users see them) for the length of one test."""
    from app.theme import STYLE_SHEET

    app = QApplication.instance()
    before = app.styleSheet()
    app.setStyleSheet(STYLE_SHEET)
    yield
    app.setStyleSheet(before)


def test_the_toolbar_keeps_the_clock_at_1280_pixels(
    qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, song_file: Path, themed: None
) -> None:
    pretend_screen(monkeypatch, 1280, 720)
    w = make_window()
    open_song(qtbot, w, song_file)
    w.resize(1280, 720)
    w.model_label.setText("Model: a-model-with-a-rather-long-name (untrained) · NVIDIA GeForce RTX 4090 (CUDA)")
    qtbot.wait(50)
    assert w.width() == 1280
    tb = w.toolbar
    overflow = [b for b in tb.findChildren(QToolButton) if b.objectName() == "qt_toolbar_ext_button"]
    assert overflow and not any(b.isVisible() for b in overflow), "items went to the toolbar's overflow menu"
    for widget in (w.clock, tb.widgetForAction(w.act_ab), tb.widgetForAction(w.act_play)):
        assert widget.isVisible() and inside(widget.geometry(), tb.contentsRect()), widget
    clock_text = w.clock.fontMetrics().horizontalAdvance(w.clock.text())
    assert w.clock.width() >= clock_text
    # the model label gives way and says the whole of it in its tooltip
    assert w.model_label.isVisible() and "…" in w.model_label.elided_text()
    assert w.model_label.toolTip() == w.model_label.text()
    # the window cannot be made so narrow that the clock goes to the overflow menu, and that
    # minimum still fits a 1280-pixel screen
    assert w.minimumSize().width() <= 1280
    w.resize(600, 500)
    qtbot.wait(50)
    assert w.width() == w.minimumSize().width() and w.clock.isVisible()
    assert inside(w.clock.geometry(), tb.contentsRect()) and not any(b.isVisible() for b in overflow)
    # the play button's short word follows the state
    w.player._stream = _Stream()
    w._update_play_icon()
    assert tb.widgetForAction(w.act_play).text() == "Pause"
    w.player._stream = None
    w._update_play_icon()
    assert tb.widgetForAction(w.act_play).text() == "Play"


# the shape of a trained model card's metrics (resources/models/iass.json), cut down
CARD_METRICS: dict[str, Any] = {
    "validation": {
        "val_loss": 1.3943614540621638,
        "val_sdr": [5.653634030414329, 7.054167010128721, 7.069025312182327, 1.5471145715433041,
                    0.4573288954583125, 0.44840685449237083],
        "val_sdr_gated": [5.101824256375517, 7.649848371722421, 6.9446056744551985, 0.7835505921295501,
                          2.594507940043303, 0.3835789270866161],
        "val_sdr_mean": 3.7049461123698944,
    },
    "model": "iass-main (best.pt)",
    "set": "data/benchmark",
    "n_excerpts": 50,
    "sources": ["vocals", "drums", "bass", "guitar", "piano", "other"],
    "gating": {"mode": "binary", "threshold": 0.5, "median_frames": 9},
    "seconds": 137.2,
    "sdr": {
        variant: {
            "per_source": {s: v + k for s, v in zip(
                ["vocals", "drums", "bass", "guitar", "piano", "other"],
                [5.135643892161868, 2.9267951627421134, -0.32371021298738517, -0.03709081524910706,
                 0.9467912685999912, 0.7132077655294443], strict=True)},
            "mean": 1.5602728434661541 + k,
            "n": {"vocals": 45, "drums": 50, "bass": 44, "guitar": 28, "piano": 35, "other": 39},
        }
        for k, variant in enumerate(["gated", "ungated", "mixture", "oracle_irm", "oracle_ibm", "silence"])
    },
    "museval": {},
    "activity": {
        s: {"precision": 0.5842247024705912, "recall": 0.958479218432347, "f1": 0.7259555493774025}
        for s in ["vocals", "drums", "bass", "guitar", "piano", "other"]
    },
}


def test_the_about_box_is_a_small_table_that_fits_720_pixels(window: Any, dialogs: list) -> None:
    card = window.separator.card
    card.metrics = CARD_METRICS
    card.notes = "Trained on rendered songs. " * 40
    window.show_about()
    kind, title, text = dialogs[-1]
    assert kind == "about" and "tiny-random" in text
    assert not re.findall(r"\d\.\d{3,}", text), re.findall(r"\d\.\d{3,}", text)[:5]  # rounded
    assert "<table" in text and "(dB)" in text
    assert "5.14" in text and "0.73" in text and "1.56" in text  # vocals SDR, F1, mean SDR
    assert all(s in text for s in card.sources)
    # laid out as QMessageBox.about lays it out, it fits a 1280x720 screen with its OK button
    box = QMessageBox(QMessageBox.Icon.NoIcon, title, text, QMessageBox.StandardButton.Ok, window)
    box.show()
    QApplication.processEvents()
    try:
        size = box.size()
        assert size.height() <= 720 - 60 and size.width() <= 1280, size
        ok = box.button(QMessageBox.StandardButton.Ok)
        corner = ok.mapTo(box, ok.rect().bottomRight())
        assert ok.isVisible() and box.rect().contains(corner), (corner, box.rect())
    finally:
        box.close()
