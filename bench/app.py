"""The desktop app's responsiveness: launch to a visible window, opening a 4-minute song, gating
re-render latency, the longest event-loop stall during a separation, and the audio callback's cost.

Runs offscreen unless a display is set. The separation uses the bundled model when there is one,
else the default-size IASS network with random weights (the same compute as a trained one).
Usage: python bench/app.py [--seconds 240] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SR = 44100

LAUNCH_CHILD = r"""
import sys, time, json
t_start = float(sys.argv[1])
from PySide6.QtCore import QObject, QEvent, QTimer
from app.main import create_app
app = create_app()
from app.main_window import MainWindow
from app.settings import Settings
marks = {}
class Watch(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and "painted" not in marks:
            marks["painted"] = time.time() - t_start
        return False
w = MainWindow(settings=Settings(sys.argv[2]), model=sys.argv[3], allow_untrained=sys.argv[4] == "1")
watch = Watch()
w.installEventFilter(watch)
w.show()
marks["shown"] = time.time() - t_start
def ready(ok):
    marks["model_ready"] = time.time() - t_start
    QTimer.singleShot(50, app.quit)
w.model_ready.connect(ready)
QTimer.singleShot(120000, app.quit)
app.exec()
w.shutdown()
print(json.dumps(marks))
"""


def launch_times(model: str, allow_untrained: bool, tmp: Path, runs: int = 3) -> dict[str, float]:
    """Seconds from starting the Python process to the first paint of the window and to a loaded model."""
    out: list[dict[str, float]] = []
    for k in range(runs):
        t0 = time.time()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                LAUNCH_CHILD,
                repr(t0),
                str(tmp / f"launch{k}.ini"),
                model,
                "1" if allow_untrained else "0",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(o[k] for o in out) for k in ("painted", "model_ready")}


def wait_for(app: Any, signal: Any, timeout_s: float = 600.0) -> list:
    from PySide6.QtCore import QEventLoop, QTimer

    got: list = []
    loop = QEventLoop()

    def on(*args: Any) -> None:
        got.append(args)
        loop.quit()

    signal.connect(on)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(on)
    if not got:
        raise TimeoutError(f"no {signal} within {timeout_s} s")
    return got[0]


def settle(app: Any, w: Any) -> None:
    """Let queued re-renders finish (without spinning: the workers need the CPU)."""
    while w.regates.busy:
        app.processEvents()
        time.sleep(0.003)
    app.processEvents()


def default_size_separator() -> Any:
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import ModelCard
    from engine.separator import Separator

    torch.manual_seed(0)
    net = IASSUNet()
    card = ModelCard(
        name="iass-default-random",
        sources=list(net.sources),
        sample_rate=SR,
        n_fft=2048,
        hop_length=512,
        max_bin=net.n_bins,
        architecture=net.architecture(),
        weights="-",
        trained=False,
    )
    return Separator(net, card)


def callback_cost(n_sources: int = 6, block: int = 1024, reps: int = 2000) -> float:
    """Microseconds per Mixer.process block (what the audio callback does)."""
    import numpy as np

    from app.mixer import Mixer

    rng = np.random.default_rng(0)
    n = SR * 10
    stems = (0.1 * rng.standard_normal((n_sources, 2, n))).astype(np.float32)
    m = Mixer()
    m.set_tracks(stems.sum(0), stems, SR)
    m.strips[1].gain_db = -6.0
    m.strips[2].pan = 0.3
    m.update_gains()
    out = np.empty((block, 2), np.float32)
    m.process(out)
    t0 = time.perf_counter()
    for _ in range(reps):
        if m.position > n - block:
            m.seek(0)
        m.process(out)
    return (time.perf_counter() - t0) / reps * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="song length (default 240 s)")
    parser.add_argument("--write", action="store_true", help="update the App section of docs/BENCHMARKS.md")
    args = parser.parse_args()

    import soundfile as sf

    from bench.common import machine, synthetic_song, write_section
    from bench.tiny_model import make_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="stemlab-bench-app-"))
    from engine.resources import bundled_card_file

    bundled = bundled_card_file().exists()
    tiny = str(make_tiny_model(tmp / "tiny.json"))
    launch_model, launch_untrained = ("bundled", False) if bundled else (tiny, True)
    launch = launch_times(launch_model, launch_untrained, tmp)

    song = synthetic_song(args.seconds, SR)
    wav = tmp / "song4min.wav"
    ogg = tmp / "song4min.ogg"
    sf.write(wav, song.T, SR)
    # libsndfile crashes writing a long Vorbis file in one call: write it in blocks
    with sf.SoundFile(ogg, "w", SR, 2, format="OGG", subtype="VORBIS") as fh:
        for a in range(0, song.shape[1], 65536):
            fh.write(song[:, a : a + 65536].T)

    from app.main import create_app

    app = create_app()
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True)
    from app.main_window import MainWindow
    from app.settings import Settings

    w = MainWindow(
        settings=Settings(str(tmp / "s.ini")),
        model=launch_model,
        allow_untrained=launch_untrained,
        probe_audio=False,
    )
    w.resize(1600, 1000)
    w.show()
    wait_for(app, w.model_ready)
    open_s = {}
    for name, path in (("wav", wav), ("ogg", ogg)):
        t0 = time.perf_counter()
        w.open_path(str(path))
        wait_for(app, w.song_loaded)
        app.processEvents()  # the first paint of the new song
        open_s[name] = time.perf_counter() - t0
    if not bundled:
        w.separator = default_size_separator()
    model_name = w.separator.card.name
    t0 = time.perf_counter()
    w.separate()
    wait_for(app, w.separation_finished)
    sep_s = time.perf_counter() - t0
    while w._sep_worker is not None:
        app.processEvents()
        time.sleep(0.003)
    stall_ms, show_ms = w.last_stall_ms, w.last_show_ms
    # re-gating: one stem and all stems, audio render and time until it is on screen
    one, allst, one_audio, all_audio = [], [], [], []
    for k in range(5):
        for target, bucket, audio in (("one", one, one_audio), ("all", allst, all_audio)):
            t0 = time.perf_counter()
            if target == "one":
                w.set_stem_threshold(w.result.sources[1], 0.3 + 0.1 * k)
            else:
                w.master.gating.threshold.setValue(30 + 10 * k)
            (outcome,) = wait_for(app, w.regate_done)
            settle(app, w)
            bucket.append(time.perf_counter() - t0)
            audio.append(outcome.seconds)
    # a burst of 20 slider steps: how many renders ran (newest wins)
    renders0 = w.regates.renders
    t0 = time.perf_counter()
    for v in range(20, 80, 3):
        w.master.gating.threshold.setValue(v)
        app.processEvents()
    settle(app, w)
    burst_s = time.perf_counter() - t0
    burst_renders = w.regates.renders - renders0
    w.shutdown()
    cb_us = callback_cost(len(w.result.sources))
    block_us = 1024 / SR * 1e6

    ms = lambda s: f"{1000 * s:.0f} ms"  # noqa: E731
    rows = [
        ("Launch to first paint of the window", f"{launch['painted']:.2f} s"),
        ("Launch to model loaded (engine + torch imported)", f"{launch['model_ready']:.2f} s"),
        (
            f"Open a {args.seconds / 60:.0f}-minute song, WAV (decode + overview + spectrogram + paint)",
            ms(open_s["wav"]),
        ),
        (f"Open a {args.seconds / 60:.0f}-minute song, OGG Vorbis", ms(open_s["ogg"])),
        (f"Separation of it ({model_name}), in the worker", f"{sep_s:.1f} s"),
        ("Longest event-loop stall during the separation (10 ms timer lateness)", f"{stall_ms:.0f} ms"),
        ("Building the stem lanes when it finishes", f"{show_ms:.0f} ms"),
        ("Re-gate one stem: audio re-rendered (median of 5)", ms(statistics.median(one_audio))),
        ("Re-gate one stem: until stems, band and spectrogram are on screen", ms(statistics.median(one))),
        (f"Re-gate all {len(w.result.sources)} stems: audio re-rendered", ms(statistics.median(all_audio))),
        (f"Re-gate all {len(w.result.sources)} stems: until on screen", ms(statistics.median(allst))),
        (
            "20 threshold steps in a burst: renders run (newest wins) / time to settle",
            f"{burst_renders} / {ms(burst_s)}",
        ),
        (
            f"Audio callback (Mixer.process, {len(w.result.sources)} stems, 1024 frames)",
            f"{cb_us:.0f} µs ({100 * cb_us / block_us:.1f}% of the block's {block_us / 1000:.1f} ms)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nApp benchmark on {machine()}, platform {os.environ.get('QT_QPA_PLATFORM', 'xcb')}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    if args.write:
        cmd = (
            "python bench/app.py"
            + (f" --seconds {args.seconds:g}" if args.seconds != 240 else "")
            + " --write"
        )
        body = [
            "## App",
            "",
            f"`{cmd}` on {machine()}; Qt platform `{os.environ.get('QT_QPA_PLATFORM', 'xcb')}`; "
            f"{time.strftime('%Y-%m-%d')}. Launch figures are medians of 3 fresh processes. The separation "
            f"used {model_name}"
            + (
                ""
                if bundled
                else " (the default-size network with random weights: the same compute as a trained model)"
            )
            + "; the song is "
            f"{args.seconds:g} s of generated stereo audio at 44.1 kHz.",
            "",
            "| Measure | Result |",
            "|---|---|",
        ] + [f"| {a} | {b} |" for a, b in rows]
        write_section("app", "\n".join(body))
        print("wrote the App section of docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
