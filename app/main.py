"""Starting the desktop app: `run_app(songs)` (what `stemlab gui` calls)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional, Sequence

from PySide6.QtWidgets import QApplication


def create_app(argv: Optional[Sequence[str]] = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv or sys.argv[:1]))
    from .settings import APPLICATION, ORGANIZATION
    from .theme import apply_dark_theme

    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("StemLab")
    apply_dark_theme(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


def threads_are_safe() -> bool:
    """False for PySide6 6.12 on Python < 3.12: that pair crashes when worker threads run Python."""
    import PySide6

    version = tuple(int(p) for p in PySide6.__version__.split(".")[:2] if p.isdigit())
    return not (version >= (6, 12) and sys.version_info < (3, 12))


def run_app(
    songs: Sequence[str] = (),
    *,
    model: Optional[str] = None,
    allow_untrained: bool = False,
    truth: Optional[str] = None,
) -> int:
    """Open the main window (with the first song, if any, and its true stems in the folder `truth`)
    and run the event loop; returns the exit code."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app()
    if not threads_are_safe():
        logging.getLogger(__name__).warning(
            "PySide6 %s on Python %d.%d corrupts memory when background jobs run; install "
            "'PySide6-Essentials<6.12' (pyproject.toml pins it) or use Python 3.12+.",
            __import__("PySide6").__version__,
            *sys.version_info[:2],
        )
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="col-major")
    from .main_window import MainWindow

    window = MainWindow(model=model, allow_untrained=allow_untrained)
    if songs:
        window.open_on_start(str(songs[0]), truth=truth)
    window.show()
    return int(app.exec())
