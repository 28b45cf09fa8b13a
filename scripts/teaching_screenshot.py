"""Screenshot of the teaching view: the demo song separated beside its own true stems (docs/img/teaching.png).

Run under a display (Xvfb works): the window is shown by the real platform plugin at the size it takes on
that screen, then grabbed. Uses the bundled model when present, else a tiny random model.
Usage: xvfb-run -s "-screen 0 1280x720x24" .venv/bin/python scripts/teaching_screenshot.py [OUT.png] [STEM]
[REPORT_DIR] (with REPORT_DIR, the teaching report is written there as well).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "teaching.png"
    focus = sys.argv[2] if len(sys.argv) > 2 else "vocals"
    from PySide6.QtCore import QEventLoop, QTimer

    from app.main import create_app
    from app.settings import Settings
    from bench.tiny_model import bundled_or_tiny

    tmp = Path(tempfile.mkdtemp(prefix="stemlab-teaching-"))
    model, allow_untrained = bundled_or_tiny(tmp)
    create_app()
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True)
    from app.main_window import MainWindow

    w = MainWindow(settings=Settings(str(tmp / "settings.ini")), model=model, allow_untrained=allow_untrained)
    w.show()

    def wait(signal, seconds: float = 600.0) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def settle(ms: int = 800) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    wait(w.model_ready)
    demo = ROOT / "resources" / "demo" / "demo.ogg"
    w.open_path(str(demo))  # the demo song brings its own truth
    wait(w.teaching.truth_loaded)
    w.separate()
    wait(w.teaching.figures_updated)
    w.hide_message("playback")  # the capture machine has no sound card
    names = w.result.sources
    if focus in names:
        i = names.index(focus)
        w.teaching.set_listen(focus, "error")  # hear what the estimate got wrong
        w.toggle_solo(i)
        row = w.teaching.rows[i]
        settle(300)
        w.scroll.verticalScrollBar().setValue(row.y())
    w.seek(21.0)
    settle(1500)
    out.parent.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out))
    try:  # 256 colours keep the picture for the docs small; the colour maps survive it
        from PIL import Image

        Image.open(out).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            out, optimize=True
        )
    except ImportError:
        pass
    if len(sys.argv) > 3:
        folder = Path(sys.argv[3])
        folder.mkdir(parents=True, exist_ok=True)
        w.teaching.export_report(folder, demo.stem, w.gating_spec(), w, w.status)
        wait(w.teaching.report_written, 60)
        print("report:", sorted(p.name for p in folder.iterdir()))
    f = w.teaching.figures.get(focus)
    print(f"saved {out} ({w.width()}x{w.height()}), model {w.separator.card.name}; {focus}: {f}")
    print(f"figures took {w.teaching.last_figures_ms:.0f} ms (worker)")
    w.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
