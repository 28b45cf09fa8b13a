"""A bug the command line did not foresee ends in one line and a crash report, never a traceback; running
out of memory is told apart from a bug and ends in one line and exit 1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import app.cli
import engine.export
from app.crash import EXIT_SOFTWARE, reports_dir
from engine.errors import is_out_of_memory

ROOT = Path(__file__).resolve().parents[2]


def _real_cpu_out_of_memory() -> RuntimeError:
    """The error torch itself raises when a CPU allocation fails (asking for 4 EiB fails at once)."""
    try:
        torch.empty(2**62, dtype=torch.uint8)
    except RuntimeError as exc:
        return exc
    raise AssertionError("a 4 EiB tensor was allocated")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _separate(tmp_path: Path, *songs: Path, model: Path) -> list[str]:
    return ["separate", *map(str, songs), "--out", str(tmp_path / "out"), "--model", str(model),
            "--allow-untrained", "--quiet", "--no-analysis"]


def test_out_of_memory_is_recognised_in_each_form() -> None:
    assert is_out_of_memory(_real_cpu_out_of_memory())
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("not enough memory"))  # only torch's and Python's own kinds


def test_a_bug_gives_one_line_and_a_report(
    tmp_path: Path, cache: Path, song_file: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise KeyError("stems")  # as a bug would

    monkeypatch.setattr(app.cli, "cmd_separate", lambda args: broken())
    argv = _separate(tmp_path, song_file, model=tiny_model)
    assert app.cli.main(argv) == EXIT_SOFTWARE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("stemlab: internal error (KeyError: 'stems')")
    (report,) = reports_dir().glob("stemlab-*.txt")
    assert str(report) in err and report.parent == cache / "stemlab" / "crash-reports"
    text = report.read_text()
    assert f"command: stemlab {' '.join(argv)}" in text
    assert "Traceback (most recent call last)" in text and "in broken" in text and "KeyError: 'stems'" in text
    assert [p.name for p in report.parent.iterdir()] == [report.name]  # nothing half-written beside it


def test_ctrl_c_that_c_code_turned_into_another_error_is_an_interruption(
    tmp_path: Path, cache: Path, song_file: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An extension module whose init meets Ctrl-C raises "ImportError: initialization failed" from the
    KeyboardInterrupt (scipy.optimize did, in CI): exit 130 and the interruption's line, no crash report."""
    def importing_an_extension(_args: Any) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(app.cli, "cmd_separate", importing_an_extension)
    assert app.cli.main(_separate(tmp_path, song_file, model=tiny_model)) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("stemlab: interrupted") and len(err.splitlines()) == 1
    assert not reports_dir().exists() or not any(reports_dir().iterdir())

    def a_bug_met_while_handling_another(_args: Any) -> None:
        try:
            {}["stems"]
        except KeyError:
            raise ImportError("initialization failed")

    monkeypatch.setattr(app.cli, "cmd_separate", a_bug_met_while_handling_another)
    assert app.cli.main(_separate(tmp_path, song_file, model=tiny_model)) == EXIT_SOFTWARE
    assert "internal error (ImportError" in capsys.readouterr().err


def test_a_report_that_cannot_be_written_still_gives_one_line(
    tmp_path: Path, song_file: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(app.cli, "cmd_separate", lambda args: 1 / 0)
    assert app.cli.main(_separate(tmp_path, song_file, model=tiny_model)) == EXIT_SOFTWARE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ZeroDivisionError" in err and "no crash report could be written" in err
    assert blocker.read_text() == "not a folder"


def test_memory_running_out_is_not_a_bug(
    tmp_path: Path, cache: Path, song_file: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    oom = _real_cpu_out_of_memory()

    def out_of_memory(args: Any) -> int:
        raise oom

    monkeypatch.setattr(app.cli, "cmd_separate", out_of_memory)
    assert app.cli.main(_separate(tmp_path, song_file, model=tiny_model)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stemlab: not enough memory") and len(err.splitlines()) == 1
    assert not cache.exists()  # no crash report: nothing to fix in StemLab


def test_a_song_that_runs_out_of_memory_does_not_stop_the_batch(
    tmp_path: Path, cache: Path, song_file: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = tmp_path / "first.wav"
    first.write_bytes(song_file.read_bytes())
    real = engine.export.separate_to_folder
    oom = _real_cpu_out_of_memory()

    calls: list[int] = []

    def separate(separator: Any, audio: Any, folder: Path, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the first song, first.wav
            raise oom  # as writing a stem might, past the network's own guard
        return real(separator, audio, folder, **kw)

    monkeypatch.setattr(engine.export, "separate_to_folder", separate)
    assert app.cli.main(_separate(tmp_path, first, song_file, model=tiny_model)) == 1
    captured = capsys.readouterr()
    assert "stemlab: first.wav: not enough memory to separate this song." in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out" / "first").exists()
    assert (tmp_path / "out" / song_file.stem / "vocals.wav").is_file()


def test_the_installed_command_ends_a_bug_in_one_line(tmp_path: Path, song_file: Path, tiny_model: Path) -> None:
    """The real entry point in its own process: the line, the exit code, the report."""
    code = ("import sys, app.cli\n"
            "app.cli.cmd_separate = lambda args: [][0]\n"
            "sys.exit(app.cli.main(sys.argv[1:]))\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", code, *_separate(tmp_path, song_file, model=tiny_model)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == EXIT_SOFTWARE, r.stderr
    assert "Traceback" not in r.stderr and "internal error (IndexError: list index out of range)" in r.stderr
    assert len(list((tmp_path / "cache" / "stemlab" / "crash-reports").glob("*.txt"))) == 1


def test_a_ctrl_c_while_the_analysis_compiles_is_not_lost(
    tmp_path: Path, song_file: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """numba compiles librosa's kernels in callbacks from native code, which print a KeyboardInterrupt and
    drop it (the fuzz run saw a Ctrl-C end in exit 0 and a traceback). The command holds Ctrl-C while the
    kernels are compiled, then stops: exit 130, no stems."""
    import os

    import engine.music

    compiled: list[bool] = []

    def warm_up() -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, in the middle of the compiling
        compiled.append(True)  # the held Ctrl-C let the compiling finish

    monkeypatch.setattr(engine.music, "warm_up", warm_up)
    argv = _separate(tmp_path, song_file, model=tiny_model)
    argv.remove("--no-analysis")
    # Ctrl-C as a terminal delivers it: a suite started in the background by a shell inherits SIGINT
    # ignored, and a command then rightly ignores it too
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc = app.cli.main(argv)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert rc == 130
    assert compiled == [True]
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


_SLOW_FINALIZER = """
import sys, time
from app.cli import _ctrl_c_outside_finalizers

class Slow:
    def __del__(self):
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            time.sleep(0.02)
        print("finalizer done", file=sys.stderr, flush=True)

try:
    with _ctrl_c_outside_finalizers():
        slow = Slow()
        print("ready", flush=True)
        del slow
        time.sleep(10)
        print("not interrupted", file=sys.stderr)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_ctrl_c_inside_a_finalizer_is_not_lost() -> None:
    """A Ctrl-C that lands while the garbage collector runs an object's __del__ (a sound file's, in the fuzz
    run) was printed as "Exception ignored ... Traceback" and lost, and the command ran on. It now lets the
    finalizer finish and stops the command just after."""
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_FINALIZER], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    time.sleep(0.3)  # inside the finalizer's 1.5 s
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finalizer done" in err and "Exception ignored" not in err and "not interrupted" not in err
