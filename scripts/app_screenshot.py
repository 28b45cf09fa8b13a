"""Screenshot of the main window with the demo song separated: docs/img/app.png.

Run under a display (Xvfb works): the window is shown by the real platform plugin, then grabbed.
Uses the bundled model when present, else a tiny random model (its stems are noise; the window
says so). Usage: xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/app_screenshot.py [OUT.png]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "app.png"
    from PySide6.QtCore import QEventLoop, QTimer

    from app.main import create_app
    from app.settings import Settings
    from bench.tiny_model import bundled_or_tiny

    tmp = Path(tempfile.mkdtemp(prefix="stemlab-shot-"))
    model, allow_untrained = bundled_or_tiny(tmp)
    app = create_app()
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True)
    from app.main_window import MainWindow

    w = MainWindow(settings=Settings(str(tmp / "settings.ini")), model=model, allow_untrained=allow_untrained)
    w.resize(1600, 1000)
    w.show()

    def wait(signal, seconds: float = 300.0) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    wait(w.model_ready)
    demo = ROOT / "resources" / "demo" / "demo.ogg"
    if not demo.exists():
        print("no demo song at", demo, file=sys.stderr)
        return 1
    w.open_path(str(demo))
    wait(w.song_loaded)
    if allow_untrained:
        # The random model's activity sits near 0.45-0.55 everywhere: a threshold just below it
        # lets every stem through, and vocals get their own higher threshold to show gating.
        w.master.gating.threshold.setValue(44)
    w.separate()
    wait(w.separation_finished)
    if allow_untrained and "vocals" in w.result.sources:
        w.set_stem_threshold("vocals", 0.5)
        wait(w.regate_done, 30)
    # a producer's state: drums down 6 dB, "other" muted, a loop on the chorus, playhead in it
    names = w.result.sources
    if "drums" in names:
        w.headers[names.index("drums")].gain.set_db(-6.0)
    if "other" in names:
        w.headers[names.index("other")].mute.setChecked(True)
    w.act_loop.setChecked(True)
    w.loop_region.setRegion((18.7, 26.2))
    w.seek(21.0)
    w.hide_message("playback")  # the capture machine has no sound card; the banner is tested elsewhere
    for _ in range(20):
        app.processEvents()
    loop = QEventLoop()
    QTimer.singleShot(1500, loop.quit)
    loop.exec()
    out.parent.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out))
    print(f"saved {out} ({w.width()}x{w.height()}), model {w.separator.card.name}")
    w.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
