"""App test fixtures: an isolated settings file, a main window on the tiny random model, and a
check that no test leaves a worker thread running."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest


@pytest.fixture()
def settings(tmp_path: Path) -> Any:
    from app.settings import Settings

    s = Settings(str(tmp_path / "settings.ini"))
    s.set("ui/first_run_done", True)  # no demo song opening by itself under a test
    return s


@pytest.fixture()
def dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Records (kind, title, text) of every message box instead of blocking on it."""
    from PySide6.QtWidgets import QMessageBox

    seen: list[tuple[str, str, str]] = []

    def fake(kind: str, answer: Any = None) -> Any:
        def show(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
            seen.append((kind, title, text))
            return answer

        return show

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(fake("warning", QMessageBox.StandardButton.Ok)))
    monkeypatch.setattr(
        QMessageBox, "critical", staticmethod(fake("critical", QMessageBox.StandardButton.Ok))
    )
    monkeypatch.setattr(
        QMessageBox, "information", staticmethod(fake("information", QMessageBox.StandardButton.Ok))
    )
    monkeypatch.setattr(
        QMessageBox, "question", staticmethod(fake("question", QMessageBox.StandardButton.No))
    )
    monkeypatch.setattr(QMessageBox, "about", staticmethod(fake("about")))
    return seen


@pytest.fixture()
def no_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as on a machine without a sound card, whatever this one has."""
    import app.playback

    monkeypatch.setattr(
        app.playback, "probe_output", lambda sample_rate=44100: (False, "no sound output device was found")
    )


def _wait_threads_gone(before: set[int], timeout: float = 10.0) -> list[threading.Thread]:
    import time

    end = time.monotonic() + timeout
    while True:
        extra = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon]
        if not extra or time.monotonic() > end:
            return extra
        time.sleep(0.05)


# The desktop the window tests assume. The offscreen platform's own screen is 800x600, which the
# window now fits itself to; a test of other screens calls pretend_screen itself.
TEST_SCREEN = (1920, 1080)


def pretend_screen(monkeypatch: pytest.MonkeyPatch, width: int, height: int, x: int = 0, y: int = 0) -> None:
    """Make every screen report an available area of width x height at (x, y) to the app's code."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QScreen

    monkeypatch.setattr(QScreen, "availableGeometry", lambda self: QRect(x, y, width, height))


@pytest.fixture()
def make_window(
    qtbot: Any,
    settings: Any,
    dialogs: Any,
    no_sound: None,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """make_window(model=...) -> a shown MainWindow whose model finished loading."""
    from app.main_window import MainWindow

    pretend_screen(monkeypatch, *TEST_SCREEN)

    windows: list[Any] = []

    def make(model: Any = "tiny", allow_untrained: bool = True) -> Any:
        spec = str(tiny_model) if model == "tiny" else model
        w = MainWindow(settings=settings, model=spec, allow_untrained=allow_untrained)
        # "Save your changes?" would be a modal dialog: tests drop the changes unless they answer themselves
        w.ask_unsaved = lambda: "discard"
        qtbot.addWidget(w)
        with qtbot.waitSignal(w.model_ready, timeout=60000):
            w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        assert w.shutdown(30000), "a worker did not finish"
        assert w.runner.running_threads() == 0
        assert not w.runner.active
        w.close()


@pytest.fixture()
def window(make_window: Any) -> Any:
    return make_window()


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    from PySide6.QtCore import QThreadPool

    before = {t.ident for t in threading.enumerate()}
    yield
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    extra = _wait_threads_gone(before)
    assert not extra, f"threads left running: {extra}"
