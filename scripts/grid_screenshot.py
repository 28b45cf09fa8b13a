"""Screenshot of the producer's grid: the demo song separated, its tempo, metre and key in the master
strip, each stem's tempo or key in its strip, the beat/bar grid over the timeline zoomed in on a few
bars, and a loop snapped to bars. Default output: docs/img/grid.png.

Run under a display (Xvfb works); the window sizes itself to the screen as it does for a user:
    xvfb-run -s "-screen 0 1280x720x24" .venv/bin/python scripts/grid_screenshot.py [OUT.png] [SPAN_S]
SPAN_S: seconds of the song on screen (default 12; 0 shows the whole song).
Uses the bundled model when present, else a tiny random model (its stems are noise; the window says so).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "grid.png"
    span = float(sys.argv[2]) if len(sys.argv) > 2 else 12.0
    from PySide6.QtCore import QEventLoop, QTimer

    from app.main import create_app
    from app.settings import Settings
    from bench.tiny_model import bundled_or_tiny

    tmp = Path(tempfile.mkdtemp(prefix="stemlab-grid-shot-"))
    model, allow_untrained = bundled_or_tiny(tmp)
    app = create_app()
    from app.main_window import MainWindow

    settings = Settings(str(tmp / "settings.ini"))
    settings.set("ui/first_run_done", True)  # the demo song is opened below, once, and timed
    w = MainWindow(settings=settings, model=model, allow_untrained=allow_untrained)
    w.show()

    def wait(signal, seconds: float = 300.0) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def pause(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    wait(w.model_ready)
    demo = ROOT / "resources" / "demo" / "demo.ogg"
    if not demo.exists():
        print("no demo song at", demo, file=sys.stderr)
        return 1
    w.stall.start()
    t0 = time.perf_counter()
    w.open_path(str(demo))
    if w.grid.music is None:
        wait(w.grid.analysed, 120)
    print(f"song open to tempo and key shown: {time.perf_counter() - t0:.1f} s "
          f"(the analysis itself {w.grid.analysis_s:.2f} s); info: {w.master.music_label.text()!r}")
    if allow_untrained:
        w.master.gating.threshold.setValue(44)  # the random model's activity sits near 0.45-0.55
    w.separate()
    wait(w.separation_finished)
    if w.grid.busy:
        wait(w.grid.stems_analysed, 300)
    stall = w.stall.stop()
    print("stems:", {s: h.music_label.text() for s, h in zip(w.result.sources, w.headers)})
    print(f"longest event-loop stall meanwhile: {stall:.0f} ms")
    info = w.grid.music
    bars = info.bar_times()
    if span > 0 and len(bars) > 6:
        start = float(bars[min(4, len(bars) - 1)]) - 0.3
        w.overview_plot.setXRange(start, start + span, padding=0)
        loop = (float(bars[min(5, len(bars) - 2)]), float(bars[min(7, len(bars) - 1)]))
    else:
        w.zoom_fit()
        loop = (float(bars[len(bars) // 3]), float(bars[len(bars) // 3 + 4]))
    w.act_loop.setChecked(True)
    w.loop_region.setRegion(loop)
    w.seek(loop[0] + 0.4)
    w.hide_message("playback")  # the capture machine has no sound card; the banner is tested elsewhere
    pause(2.0)  # the zoomed-in spectrogram tiles
    app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out))
    try:  # 256 colours, median cut, no dither: a third of the size, the panels still flat
        from PIL import Image

        Image.open(out).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE).save(out, optimize=True)
    except ImportError:
        pass
    print(f"saved {out} ({w.width()}x{w.height()}, {out.stat().st_size // 1024} KB), model {w.separator.card.name}")
    w.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
