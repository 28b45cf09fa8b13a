"""Peak memory against song length: the command line's streaming path and the app's in-memory path,
and how long the app takes to show a long song.

Each case runs in its own process so its peak resident set (VmHWM) is its own. The CLI case is
`stemlab separate` itself (app.cli.main, reading a 16-bit WAV from disk and writing float WAV
stems); the app case is `Separator.separate(..., keep_for_regate=True)` on the song in memory.
Both use the default-size IASS network with random weights (memory and speed do not depend on
them). Usage: python bench/memory.py [--cli 1 5 10 30 60] [--app 1 5 10] [--open 60] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, peak_rss_mb, rss_mb, synthetic_song, write_section  # noqa: E402

SR = 44100


def write_song(path: Path, minutes: float) -> None:
    """A synthetic song as 16-bit stereo WAV, written ten minutes at a time."""
    import soundfile as sf

    with sf.SoundFile(str(path), "w", samplerate=SR, channels=2, subtype="PCM_16") as fh:
        left = minutes * 60.0
        seed = 0
        while left > 0:
            part = min(left, 600.0)
            fh.write(0.5 * synthetic_song(part, SR, seed=seed).T)
            left -= part
            seed += 1


def save_random_model(folder: Path) -> Path:
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import save_model

    torch.manual_seed(0)
    path = folder / "iass-random.json"
    save_model(IASSUNet(), path, name="iass-default-random", sample_rate=SR, n_fft=2048, hop_length=512,
               trained=False)
    return path


def run_cli(song: Path, model: Path, out: Path) -> dict[str, Any]:
    """The command line in this process: load the WAV, stream the stems to disk."""
    import torch  # noqa: F401 - imported before the baseline, like the model code the command loads

    import engine.export  # noqa: F401
    from app.cli import main

    base = rss_mb()
    t0 = time.perf_counter()
    code = main(["separate", str(song), "--out", str(out), "--model", str(model), "--allow-untrained", "--quiet"])
    return {"exit": code, "wall_s": time.perf_counter() - t0, "baseline_rss_mb": base}


def run_app(minutes: float, on_disk: bool = False) -> dict[str, Any]:
    """The app's separation: every stem kept twice (gated, and ungated for re-gating), the ungated copy in
    memory, or with on_disk in an unlinked file (Separator.separate's cache_dir)."""
    from bench.speed import iass_separator

    sep, _ = iass_separator("auto")
    sep.separate(synthetic_song(5.0, SR), SR)  # warm-up: first-call allocations and kernel selection
    base = rss_mb()
    song = synthetic_song(minutes * 60.0, SR)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=os.environ.get("STEMLAB_BENCH_TMP")) as cache:
        result = sep.separate(song, SR, keep_for_regate=True, cache_dir=cache if on_disk else None)
    wall = time.perf_counter() - t0
    kept = result.stems.nbytes + (result.ungated.nbytes if result.ungated is not None and not on_disk else 0)
    return {"wall_s": wall, "baseline_rss_mb": base, "stems_mb": kept / 2**20}


def run_open(song: Path) -> dict[str, Any]:
    """Open a long song in the main window (offscreen): seconds until the waveform and spectrogram are
    shown, the longest event-loop stall meanwhile, and the time to draw a zoomed-in spectrogram tile."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, QTimer

    from app.main import create_app
    from app.main_window import MainWindow
    from app.settings import Settings
    from app.stall_monitor import StallMonitor

    app = create_app()
    pg.setConfigOptions(antialias=True, imageAxisOrder="col-major")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(str(Path(tmp) / "settings.ini"))
        settings.set("ui/first_run_done", True)
        w = MainWindow(settings=settings, model=str(Path(tmp) / "none.json"), probe_audio=False)
        w.show()

        def wait(signal: Any, timeout_s: float = 900.0) -> None:
            loop = QEventLoop()
            signal.connect(loop.quit)
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
            signal.disconnect(loop.quit)

        wait(w.model_ready)  # no model: the bundled one may be absent; opening songs needs none
        stall = StallMonitor()
        stall.start()
        base = rss_mb()
        t0 = time.perf_counter()
        w.open_path(str(song))
        wait(w.song_loaded)
        app.processEvents()
        w.grab()  # paint it once
        open_s = time.perf_counter() - t0
        max_stall = stall.stop()
        # zoom in to 30 s in the middle: the spectrogram is recomputed for the visible span
        mid = w.song.duration_s / 2
        t1 = time.perf_counter()
        stall.start()
        w.overview_plot.setXRange(mid - 15.0, mid + 15.0, padding=0)
        wait(w.spectrogram_detail_shown, 120.0)
        app.processEvents()
        w.grab()
        tile_s = time.perf_counter() - t1
        tile_stall = stall.stop()
        out = {"open_s": open_s, "max_stall_ms": max_stall, "tile_s": tile_s, "tile_stall_ms": tile_stall,
               "baseline_rss_mb": base, "columns": int(w.mix_spec.image.image.shape[0])}
        w.shutdown()
        w.close()
    return out


def one(case: str, minutes: float, song: str, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {"case": case, "minutes": minutes}
    if case == "cli":
        with tempfile.TemporaryDirectory(dir=os.environ.get("STEMLAB_BENCH_TMP")) as tmp:
            out.update(run_cli(Path(song), Path(model), Path(tmp)))
    elif case in ("app", "app-disk"):
        out.update(run_app(minutes, on_disk=case == "app-disk"))
    else:
        out.update(run_open(Path(song)))
    out["song_mb"] = minutes * 60 * SR * 2 * 4 / 2**20  # the song as float32 stereo in memory
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def spawn(case: str, minutes: float, song: Path, model: Path) -> dict[str, Any]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    res = subprocess.run([sys.executable, __file__, "--one", case, "--minutes", str(minutes), "--song", str(song),
                          "--model", str(model)], capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines() or ["(no output)"]
        return {"case": case, "minutes": minutes, "error": lines[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--minutes", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--song", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--cli", type=float, nargs="*", default=[1, 5, 10, 30, 60], help="CLI song lengths, minutes")
    ap.add_argument("--app", type=float, nargs="*", default=[1, 5, 10], help="app song lengths, minutes")
    ap.add_argument("--app-disk", type=float, nargs="*", default=[10],
                    help="app song lengths, minutes, with the re-gating cache on disk")
    ap.add_argument("--open", type=float, nargs="*", default=[60], help="open a song this long in the app")
    ap.add_argument("--write", action="store_true", help="write the tables into docs/BENCHMARKS.md")
    ap.add_argument("--section", default="memory", help="the BENCHMARKS.md section to write (default: memory)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.minutes, args.song, args.model)))
        return
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("STEMLAB_BENCH_TMP")) as tmp_name:
        tmp = Path(tmp_name)
        model = save_random_model(tmp)
        for case, lengths in (("cli", args.cli), ("app", args.app), ("app-disk", args.app_disk), ("open", args.open)):
            for minutes in lengths:
                song = tmp / f"song-{minutes:g}min.wav"
                if case in ("cli", "open") and not song.exists():
                    write_song(song, minutes)
                r = spawn(case, minutes, song, model)
                rows.append(r)
                print(json.dumps(r), flush=True)
                if case == "cli" and song.exists() and minutes not in args.open:
                    song.unlink()
    table = format_tables(rows, args)
    print(table)
    if args.write:
        title = ("Peak memory against song length (issue 5)" if args.section == "memory"
                 else f"Peak memory: {args.section} (issue 13)")
        write_section(args.section, f"## {title}\n\n" + table)


def format_tables(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {machine()}. Song: synthetic stereo 44.1 kHz. Model: the default-size IASS network "
        "(6.4 M parameters) with random weights. Each row is its own process; peak memory is its peak "
        "resident set (VmHWM), Python, torch and the model included; \"baseline\" is the resident set just "
        "before the song is read. \"Held by design\" is what the path must keep: the song as float32 stereo, "
        "and in the app every stem twice (gated, and ungated for instant re-gating). \"Overhead\" is the "
        "peak less the baseline and less what is held by design: it must not grow with the song.",
        "",
        "| path | song | held by design | wall time | peak memory | baseline | overhead |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {"cli": "CLI `stemlab separate` (streams stems to disk)",
             "app": "app `Separator.separate(keep_for_regate=True)`",
             "app-disk": "app, ungated stems in an unlinked file (`cache_dir`)"}
    for r in rows:
        if r["case"] not in names:
            continue
        label = names[r["case"]]
        if "error" in r:
            lines.append(f"| {label} | {r['minutes']:g} min | | failed: {r['error']} | | | |")
            continue
        held = r["song_mb"] + r.get("stems_mb", 0.0)
        what = f"{held:.0f} MB" + (f" (song {r['song_mb']:.0f} + stems {r['stems_mb']:.0f})" if "stems_mb" in r else "")
        over = r["peak_rss_mb"] - r["baseline_rss_mb"] - held
        lines.append(f"| {label} | {r['minutes']:g} min | {what} | {r['wall_s']:.0f} s | "
                     f"{r['peak_rss_mb']:.0f} MB | {r['baseline_rss_mb']:.0f} MB | {over:.0f} MB |")
    opens = [r for r in rows if r["case"] == "open"]
    if opens:
        lines += ["", "Opening a long song in the app (offscreen; decode, waveform overview, spectrogram, first "
                  "paint), then zooming in to 30 s in its middle (the spectrogram of the visible span is computed "
                  "in a worker):", "",
                  "| song | open until painted | longest event-loop stall | zoomed tile shown | stall | peak memory |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in opens:
            if "error" in r:
                lines.append(f"| {r['minutes']:g} min | failed: {r['error']} | | | | |")
                continue
            lines.append(f"| {r['minutes']:g} min | {r['open_s']:.1f} s | {r['max_stall_ms']:.0f} ms | "
                         f"{r['tile_s']:.2f} s | {r['tile_stall_ms']:.0f} ms | {r['peak_rss_mb']:.0f} MB |")
    cmd = "python bench/memory.py"
    for flag, values, default in (("cli", args.cli, [1, 5, 10, 30, 60]), ("app", args.app, [1, 5, 10]),
                                  ("app-disk", args.app_disk, [10]), ("open", args.open, [60])):
        if values != default:
            cmd += f" --{flag}" + "".join(f" {m:g}" for m in values)
    if args.section != "memory":
        cmd += f" --section {args.section}"
    lines += ["", f"Command: `{cmd} --write` (run under `nice -n 19` beside a training run on the same 2 cores, "
              "so wall times are slower than on an idle machine; memory is not affected)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
