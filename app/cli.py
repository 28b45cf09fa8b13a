"""The `stemlab` command line: `separate` here, `gui`, and the training commands when installed."""

from __future__ import annotations

import _thread
import argparse
import contextlib
import dataclasses
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Optional, Sequence


def _setup_threads() -> None:
    # OpenMP spin-waiting fights for the two cores when anything else runs (NOTES.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold a Ctrl-C that lands while the native libraries load and raise it after: raised inside torch's
    import, it can surface in a C++ callback (pybind11) that cannot pass it on, and the process aborts
    (SIGABRT, seen by the fuzz harness) instead of exiting 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is not signal.SIG_IGN:
        raise KeyboardInterrupt


_command_running = False  # a command holds Ctrl-C through _ctrl_c: one delivered again after it ended is dropped


def _ctrl_c(signum: int, frame: Optional[FrameType]) -> None:
    """Ctrl-C as Python's own handler raises it, except inside an object's finalizer (`__del__`, which the
    garbage collector runs at any moment, a sound file's among them): raised there, it would cut the
    finalizer short and be printed as "Exception ignored ... Traceback" and lost (the fuzz run saw it). It
    is delivered again a moment later, once the finalizer has returned."""
    if not _command_running:
        return  # the command has ended: its result stands
    f = frame
    while f is not None:
        if f.f_code.co_name == "__del__":
            later = threading.Timer(0.01, _deliver_again, args=(signum,))
            later.daemon = True
            later.start()
            return
        f = f.f_back
    raise KeyboardInterrupt


def _deliver_again(signum: int) -> None:
    if _command_running:
        _thread.interrupt_main(signal.Signals(signum))


@contextlib.contextmanager
def _ctrl_c_outside_finalizers() -> Iterator[None]:
    """Ctrl-C through _ctrl_c for the length of a command, where Python's own handler has it (a Ctrl-C that
    is ignored stays ignored)."""
    global _command_running
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _ctrl_c)
    _command_running = True
    try:
        yield
    finally:
        _command_running = False
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _lies_inside(path: Path, folder: Path) -> bool:
    """Whether path resolves to somewhere inside folder (a path that does not resolve, say a loop of
    links, lies nowhere: loading it then says what is wrong with it)."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def cmd_separate(args: argparse.Namespace) -> int:
    with _ctrl_c_held():
        import torch  # noqa: F401  (loaded here, where a Ctrl-C waits for it)
    from tqdm import tqdm

    from engine import GatingSettings, Separator, StemLabError, load_audio
    from engine.audio import SUBTYPES
    from engine.errors import AudioWriteError, is_out_of_memory
    from engine.export import replacing_folder, separate_to_folder, song_folder_names
    from engine.gating import MAX_MEDIAN_FRAMES
    from engine.music import analyse, warm_up
    from engine.progress import Progress

    if args.format == "flac" and args.bits == "float":
        return _fail("--bits float needs --format wav: FLAC holds 16- or 24-bit integer samples")
    if args.median_frames is not None and not 1 <= args.median_frames <= MAX_MEDIAN_FRAMES:
        return _fail(f"--median-frames must lie between 1 and {MAX_MEDIAN_FRAMES}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return _fail("--threshold must lie between 0 and 1")
    mode = "none" if args.no_gating else ("soft" if args.soft_gating else "binary")
    # no gating option given: the model card's tuned gating per stem (or the default where it has none)
    chosen = args.no_gating or args.soft_gating or args.threshold is not None or args.median_frames is not None
    given = {k: v for k, v in (("threshold", args.threshold), ("median_frames", args.median_frames)) if v is not None}
    gating: Any = dataclasses.replace(GatingSettings(mode=mode), **given)
    try:
        t0 = time.perf_counter()
        separator = Separator.load(args.model, device=args.device, precision=args.precision,
                                   allow_untrained=args.allow_untrained)
        if not separator.card.trained:
            print("warning: this model is untrained (random weights); its stems mean nothing.", file=sys.stderr)
        load_s = time.perf_counter() - t0
        print(f"Model {separator.card.name} on {separator.device_description}; sources: "
              f"{', '.join(separator.sources)}", file=sys.stderr)
        if not chosen:
            gating = separator.card.default_gating()
    except StemLabError as exc:
        return _fail(str(exc))
    failures = 0
    out_root = Path(args.out)
    for song, name in zip(args.songs, song_folder_names([Path(s) for s in args.songs])):
        path = Path(song)
        try:
            out_dir = out_root / name
            if _lies_inside(path, out_dir):
                raise AudioWriteError(f"{path} lies inside its own output folder {out_dir}, which the new result "
                                      "would replace; choose another --out.")
            audio = load_audio(path, allow_silent=True)  # silence separates into silent stems
            with tqdm(total=100, desc=path.name[:30], unit="%", file=sys.stderr, leave=True,
                      disable=args.quiet, bar_format="{l_bar}{bar}| {elapsed}<{remaining}") as bar:
                def on_progress(p: Progress) -> None:
                    bar.n = int(100 * p.fraction) if p.stage == "separate" else 100
                    bar.refresh()
                info = {"input": str(path), "input_channels": audio.source_channels,
                        "model_card": separator.card.name, "model_metrics": separator.card.metrics,
                        "model_load_s": round(load_s, 3), "precision": separator.precision,
                        "gating_from": "the command line" if chosen else "the model card"}
                subtype = SUBTYPES[args.bits] if args.bits else None
                if args.analysis:
                    with _ctrl_c_held():  # a Ctrl-C inside numba's compiler would be swallowed there
                        warm_up()  # once a process
                music = analyse(audio.samples, audio.sample_rate) if args.analysis else None
                with replacing_folder(out_dir) as staging:  # the whole result, or nothing, takes its place
                    meta = separate_to_folder(separator, audio, staging, fmt=args.format, subtype=subtype,
                                              gating=gating, wiener=args.wiener, info=info, progress=on_progress,
                                              music=music)
            for note in meta["notes"]:
                print(f"note: {path.name}: {note}", file=sys.stderr)
            total = meta["timings_s"]["total_s"]
            rtf = audio.duration_s / max(total, 1e-9)
            print(f"{path.name}: {len(separator.sources)} stems -> {out_dir} ({total:.1f} s, {rtf:.1f}x real time)")
        except StemLabError as exc:
            failures += 1
            message = str(exc)
            named = message.startswith((path.name, str(path)))
            print(f"stemlab: {message}" if named else f"stemlab: {path.name}: {message}", file=sys.stderr)
        except (MemoryError, RuntimeError) as exc:  # torch says "out of memory" with a RuntimeError
            if not is_out_of_memory(exc):
                raise
            failures += 1
            print(f"stemlab: {path.name}: not enough memory to separate this song.", file=sys.stderr)
    return 1 if failures else 0


def display_problem(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Why a window cannot open here (None when it can, as far as can be told without opening one):
    Qt aborts the process, beyond any message, when it finds no display."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("WAYLAND_DISPLAY"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return "there is no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset)"
    m = re.fullmatch(r"(unix)?:(\d+)(\.\d+)?", display)
    if m and not os.path.exists(f"/tmp/.X11-unix/X{m.group(2)}"):
        return f"no X server answers on DISPLAY={display} (no /tmp/.X11-unix/X{m.group(2)})"
    return None


def truth_folder_problem(folder: str, songs: Sequence[str]) -> Optional[str]:
    """What is wrong with `stemlab gui --truth DIR` before a window opens (None: the app reads it; the
    names and lengths of its stems are checked against the song and the model there)."""
    p = Path(folder)
    if not songs:
        return "--truth needs the SONG whose true stems the folder holds: stemlab gui SONG --truth DIR"
    try:
        if not p.is_dir():
            return f"--truth {folder}: no such folder"
    except OSError as exc:  # a name too long, a folder that cannot be entered, ...
        return f"--truth {folder}: cannot be used ({exc.strerror or exc})"
    try:
        if not any(f.suffix.lower() in (".wav", ".flac", ".ogg") for f in p.iterdir()):
            return f"--truth {folder}: the folder holds no .wav, .flac or .ogg file (true stems are <source>.wav, e.g. vocals.wav)"
    except OSError as exc:
        return f"--truth {folder}: cannot be listed ({exc.strerror or exc})"
    return None


def cmd_gui(args: argparse.Namespace) -> int:
    if args.truth is not None:
        bad = truth_folder_problem(args.truth, args.songs)
        if bad:
            return _fail(bad)
    problem = display_problem()
    if problem:
        return _fail(f"{problem}. Start StemLab in a desktop session (or ssh -X, or xvfb-run), or separate "
                     "on the command line: stemlab separate SONG --out DIR")
    from app.main import run_app

    return run_app(args.songs[:1], model=args.model, allow_untrained=args.allow_untrained, truth=args.truth)


def _fail(message: str) -> int:
    print(f"stemlab: {message}", file=sys.stderr)
    return 2


def training_commands() -> dict[str, Any]:
    """The training side's commands, name -> entry point, read from the installed package's metadata
    (pyproject's `stemlab.commands`): found without importing training, which only the command run loads."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="stemlab.commands")}


def run_training_command(entry: Any, argv: Sequence[str]) -> int:
    try:
        with _ctrl_c_held():
            import torch  # noqa: F401  (loaded here, where a Ctrl-C waits for it)

            command = entry.load()
    except ImportError as exc:
        print(f"stemlab {argv[0]}: the training extras are not installed ({exc}); "
              "install them with: pip install -e '.[training]'", file=sys.stderr)
        return 2
    return int(command(list(argv)))


def build_parser() -> argparse.ArgumentParser:
    from engine.arguments import path_text

    trained = sorted(training_commands())
    more = f"training commands: {', '.join(trained)} (stemlab COMMAND --help)" if trained else None
    parser = argparse.ArgumentParser(prog="stemlab", description="Take songs apart into stems and remix them.",
                                     epilog=more)
    sub = parser.add_subparsers(dest="command")

    sep = sub.add_parser("separate", help="separate songs into stems on the command line")
    sep.add_argument("songs", nargs="+", metavar="SONG", help="audio files (WAV, FLAC, OGG, MP3)")
    sep.add_argument("--out", required=True, type=path_text, help="output folder; each song gets DIR/<song name>/")
    sep.add_argument("--model", default="bundled", type=path_text, help="model card (.json) or 'bundled' (default)")
    sep.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    sep.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    sep.add_argument("--threshold", type=float, default=None,
                     help="activity threshold for every stem (default: the model card's per stem, else 0.5)")
    sep.add_argument("--median-frames", type=int, default=None,
                     help="median filter length in frames for every stem (default: the card's, else 9)")
    sep.add_argument("--no-gating", action="store_true", help="do not gate masks by predicted activity")
    sep.add_argument("--soft-gating", action="store_true", help="multiply masks by the activity probability")
    sep.add_argument("--wiener", action="store_true", help="refine stems with a multichannel Wiener filter")
    sep.add_argument("--format", default="wav", choices=["wav", "flac"])
    sep.add_argument("--bits", choices=["16", "24", "float"], help="sample format (default float WAV / 24-bit FLAC)")
    sep.add_argument("--quiet", action="store_true", help="no progress bar")
    sep.add_argument("--no-analysis", dest="analysis", action="store_false",
                     help="skip tempo, beats and key (separation.json's tempo_bpm and key, beats.csv)")
    sep.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    sep.set_defaults(func=cmd_separate)

    gui = sub.add_parser("gui", help="open the desktop remix app (default)")
    gui.add_argument("songs", nargs="*", metavar="SONG")
    gui.add_argument("--model", default=None, type=path_text, help="model card (.json) to separate with (default: last used)")
    gui.add_argument("--truth", default=None, type=path_text, metavar="DIR",
                     help="folder of the song's true stems (<source>.wav, .flac or .ogg): the teaching view")
    gui.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    gui.set_defaults(func=cmd_gui)

    return parser


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signum)


def main(argv: Optional[Sequence[str]] = None) -> int:
    # Ctrl-C at any moment, while the parser imports the training commands too, ends with exit 130
    args_list = list(sys.argv[1:] if argv is None else argv)
    with _ctrl_c_outside_finalizers():
        return _main(argv, args_list)


def _main(argv: Optional[Sequence[str]], args_list: list[str]) -> int:
    try:
        _setup_threads()
        commands = training_commands()
        if args_list and args_list[0] in commands:
            return run_training_command(commands[args_list[0]], args_list)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            args = parser.parse_args(["gui", *(argv or [])])
        if args.command == "separate":
            # A terminal closed or a kill ends the run as Ctrl-C does: every unfinished file is removed on the way out.
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, _interrupt)
        return int(args.func(args))
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # a bug, or memory running out: one line, and a crash report for a bug
        from app.crash import raised_by_ctrl_c, report_unexpected

        if raised_by_ctrl_c(exc):
            return _interrupted()
        return report_unexpected(exc, args_list)


def _interrupted() -> int:
    print("stemlab: interrupted; nothing unfinished was left under a final name", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
