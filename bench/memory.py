"""Peak memory against song length: the command line's streaming path and the app's in-memory path,
and how long the app takes to show a long song.

Each case runs in its own process so its peak resident set (VmHWM) is its own. The CLI case is
`stemlab separate` itself (app.cli.main, reading a 16-bit WAV from disk and writing float WAV
stems); the app case is `Separator.separate(..., keep_for_regate=True)` on the song in memory.
Both use the default-size IASS network with random weights (memory and speed do not depend on
them). The app-worker case is the app's own separation (app.workers.separate_song: the engine, the
timeline's band frames, the stem pictures; a long song's re-gating copy on disk and its gated stems in
float16) followed by saving it as a session; app-worker-float32 is the same with the gated stems kept in
float32, as before they were held compactly. The session case separates the demo song with the bundled
model, repeats the separation to the asked length, and saves it in the float32 format 1, in today's
format with the stems lossless (FLAC, as format 2) and with the stems compact (MP3, the default): sizes,
times, and each stem's error against float32.
Usage: python bench/memory.py [--cli 1 5 10 30 60] [--app 1 5 10] [--app-worker 10]
[--app-worker-float32 10] [--session 1 10] [--open 60] [--write]
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


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_app_worker(minutes: float, float32: bool = False) -> dict[str, Any]:
    """app.workers.separate_song on a synthetic song, then save_session of what it returns; with float32,
    the gated stems are held in float32 whatever the song's length."""
    import threading

    from app import workers
    from app.session import save_session
    from app.workers import separate_song

    if float32:
        workers.COMPACT_SONG_S = float("inf")
    from bench.speed import iass_separator
    from engine import GatingSettings

    sep, _ = iass_separator("auto")
    sep.separate(synthetic_song(5.0, SR), SR)
    base = rss_mb()
    song = synthetic_song(minutes * 60.0, SR)
    gating = {s: GatingSettings() for s in sep.sources}
    with tempfile.TemporaryDirectory(dir=os.environ.get("STEMLAB_BENCH_TMP")) as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp  # the re-gating copy's unlinked file
        t0 = time.perf_counter()
        outcome = separate_song(sep, song, SR, gating, False)
        wall = time.perf_counter() - t0
        peak_separate = peak_rss_mb()
        t1 = time.perf_counter()
        path = save_session(Path(tmp) / "s.stemlab.json", session_state(outcome.result, "bench.wav"), song,
                            outcome.result, threading.Lock())
        save_s = time.perf_counter() - t1
        size = sum(f.stat().st_size for f in Path(tmp).glob("s.stemlab.*"))
    return {"wall_s": wall, "baseline_rss_mb": base, "peak_separate_mb": peak_separate, "save_s": save_s,
            "session_mb": size / 2**20, "rss_anon_mb": status_mb("RssAnon"), "rss_file_mb": status_mb("RssFile"),
            "stems_mb": outcome.result.stems.nbytes / 2**20, "stems_dtype": str(outcome.result.stems.dtype)}


def session_state(result: Any, song: str) -> Any:
    from app.session import SessionState

    return SessionState(
        song_name=song, song_path=song, sample_rate=result.sample_rate, sources=list(result.sources),
        model_name=result.model_name, model_sample_rate=result.model_sample_rate,
        n_fft=result.stft_config.n_fft, hop_length=result.stft_config.hop_length, device=result.device,
        wiener=False, gating={}, global_gating={}, mixer={})


def run_session(minutes: float) -> dict[str, Any]:
    """The demo song separated by the bundled model, repeated to `minutes`, saved in format 1 (float32 npz,
    as StemLab wrote sessions before) and in today's format; sizes, save and open times, the stems' error."""
    import threading

    import numpy as np

    from app.session import load_session, save_session, session_paths
    from engine import Separator
    from engine.audio import load_audio, write_file_atomic
    from engine.resources import demo_song_path

    song = load_audio(demo_song_path())
    result = Separator.load("bundled").separate(song.samples, song.sample_rate)
    reps = max(1, int(round(minutes * 60 * song.sample_rate / song.samples.shape[-1])))
    mixture = np.tile(song.samples.astype(np.float32), reps)
    result.ungated = np.tile(result.ungated, reps)
    result.stems = result.ungated
    n_model = int(round(mixture.shape[-1] * result.model_sample_rate / result.sample_rate))
    n_frames = n_model // result.stft_config.hop_length + 1
    result.activity = np.resize(result.activity, (len(result.sources), n_frames)).astype(np.float32)
    state = session_state(result, "demo.ogg")
    with tempfile.TemporaryDirectory(dir=os.environ.get("STEMLAB_BENCH_TMP")) as tmp:
        t0 = time.perf_counter()
        arrays = {"mixture": mixture, "ungated": result.ungated, "activity": result.activity}
        old = Path(tmp) / "old.stemlab.npz"
        write_file_atomic(old, lambda fh: np.savez(fh, **arrays))
        old_s = time.perf_counter() - t0
        old_mb = old.stat().st_size / 2**20
        doc = {"format": "stemlab-session/1", "data": old.name, "saved": "", **state.__dict__}
        (Path(tmp) / "old.stemlab.json").write_text(json.dumps(doc))
        t3 = time.perf_counter()
        load_session(Path(tmp) / "old.stemlab.json")
        old_open_s = time.perf_counter() - t3
        old.unlink()
        out: dict[str, Any] = {"old_mb": old_mb, "old_save_s": old_s, "old_open_s": old_open_s,
                               "song_s": mixture.shape[-1] / song.sample_rate, "sources": list(result.sources),
                               "baseline_rss_mb": 0.0}
        for codec in ("flac", "mp3"):
            t1 = time.perf_counter()
            path = save_session(Path(tmp) / f"{codec}.stemlab.json", state, mixture, result, threading.Lock(),
                                stem_codec=codec)
            save_s = time.perf_counter() - t1
            mb = sum(f.stat().st_size for f in session_paths(path)) / 2**20
            t2 = time.perf_counter()
            loaded = load_session(path)
            open_s = time.perf_counter() - t2
            errors, peaks = [], []
            for k in range(len(result.sources)):  # a stem at a time: no song-sized float64 copies of all six
                ref = result.ungated[k].astype(np.float64)
                err = loaded.result.ungated[k] - ref
                errors.append(float(10 * np.log10(np.sum(err ** 2) / np.sum(ref ** 2))))
                peaks.append(float(20 * np.log10(np.abs(err).max())))
            mix = mixture.astype(np.float64)
            out[codec] = {"mb": mb, "save_s": save_s, "open_s": open_s, "stems_error_db": errors,
                          "stems_peak_error_dbfs": peaks,
                          "mix_error_db": float(10 * np.log10(np.sum((loaded.mixture - mix) ** 2) / np.sum(mix ** 2)))}
            del loaded
            for f in session_paths(path):
                f.unlink()
        out["wall_s"] = out["mp3"]["save_s"]
    return out


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
    elif case in ("app-worker", "app-worker-float32"):
        out.update(run_app_worker(minutes, float32=case == "app-worker-float32"))
    elif case == "session":
        out.update(run_session(minutes))
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
    ap.add_argument("--app-worker", type=float, nargs="*", default=[10],
                    help="app song lengths, minutes, through app.workers.separate_song and save_session")
    ap.add_argument("--app-worker-float32", type=float, nargs="*", default=[],
                    help="as --app-worker, with the gated stems held in float32 (as before they were compact)")
    ap.add_argument("--session", type=float, nargs="*", default=[10],
                    help="session lengths, minutes, of the demo song's separation repeated")
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
        for case, lengths in (("cli", args.cli), ("app", args.app), ("app-disk", args.app_disk),
                              ("app-worker", args.app_worker), ("app-worker-float32", args.app_worker_float32),
                              ("session", args.session), ("open", args.open)):
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
    if not any(r["case"] in names for r in rows):
        del lines[-3:]  # no such row: no empty table
    workers = [r for r in rows if r["case"] in ("app-worker", "app-worker-float32")]
    if workers:
        lines += ["", "The app's own separation (`app.workers.separate_song`: engine, band frames, stem pictures; past "
                  "5 minutes the re-gating copy on disk and the gated stems held in float16, or in float32 where "
                  "the row says so), then `save_session`. Peak is VmHWM over both; resident at the end splits "
                  "into the process's own memory (anon) and mapped file pages (file: the re-gating copy once "
                  "read, clean pages the system may drop):", "",
                  "| song | gated stems held | separate | peak (separate) | peak (with save) | "
                  "resident anon / file at end | save | session on disk |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in workers:
            if "error" in r:
                lines.append(f"| {r['minutes']:g} min | | failed: {r['error']} | | | | | |")
                continue
            held = f"{r.get('stems_dtype', 'float32')}, {r['stems_mb']:.0f} MB"
            lines.append(f"| {r['minutes']:g} min | {held} | {r['wall_s']:.0f} s | {r['peak_separate_mb']:.0f} MB | "
                         f"{r['peak_rss_mb']:.0f} MB | {r['rss_anon_mb']:.0f} / {r['rss_file_mb']:.0f} MB | "
                         f"{r['save_s']:.1f} s | {r['session_mb']:.0f} MB |")
    sessions = [r for r in rows if r["case"] == "session"]
    if sessions:
        lines += ["", "Sessions of the demo song separated by the bundled model, repeated to the length shown: "
                  "format 1 (float32 npz) against format 3 with the stems lossless (16-bit FLAC, what format 2 "
                  "stored) and compact (VBR MP3, the default); the song is 16-bit FLAC in both, activity "
                  "float32. Ratio is the size against format 1:", "",
                  "| song | format 1 | save | open | stems | size | ratio | save | open | song error |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in sessions:
            if "error" in r:
                lines.append(f"| {r['minutes']:g} min | failed: {r['error']} | | | | | | | | |")
                continue
            for codec, label in (("flac", "FLAC"), ("mp3", "MP3")):
                c = r[codec]
                lines.append(f"| {r['song_s'] / 60:.1f} min | {r['old_mb']:.1f} MB | {r['old_save_s']:.1f} s | "
                             f"{r['old_open_s']:.1f} s | {label} | {c['mb']:.1f} MB | {c['mb'] / r['old_mb']:.3f} | "
                             f"{c['save_s']:.1f} s | {c['open_s']:.1f} s | {c['mix_error_db']:.1f} dB |")
        lines += ["", "Error of each reopened stem against its float32 original: energy of the difference under the "
                  "stem's (dB), and its peak against full scale (dBFS):", "",
                  "| song | stems | " + " | ".join(sessions[0].get("sources", [])) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in sessions[0].get("sources", [])) + " |"]
        for r in sessions:
            if "error" in r:
                continue
            for codec, label in (("flac", "FLAC"), ("mp3", "MP3")):
                c = r[codec]
                cells = [f"{e:.1f} dB / {p:.0f} dBFS" for e, p in zip(c["stems_error_db"], c["stems_peak_error_dbfs"])]
                lines.append(f"| {r['song_s'] / 60:.1f} min | {label} | " + " | ".join(cells) + " |")
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
                                  ("app-disk", args.app_disk, [10]), ("app-worker", args.app_worker, [10]),
                                  ("app-worker-float32", args.app_worker_float32, []),
                                  ("session", args.session, [10]), ("open", args.open, [60])):
        if values != default:
            cmd += f" --{flag}" + "".join(f" {m:g}" for m in values)
    if args.section != "memory":
        cmd += f" --section {args.section}"
    lines += ["", f"Command: `{cmd} --write` (run under `nice -n 19` beside a training run on the same 2 cores, "
              "so wall times are slower than on an idle machine; memory is not affected)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
