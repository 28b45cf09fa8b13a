"""Where `stemlab separate` puts each song's result: names that never collide or escape, a result that
replaces an earlier one whole or not at all, and interrupted runs that leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.errors import AudioWriteError
from engine.export import RESULT_MARKER, replacing_folder, song_folder_names


def test_folder_names_are_unique_safe_and_in_batch_order() -> None:
    names = song_folder_names([Path("a/intro.wav"), Path("b/intro.wav"), Path("x.flac"), Path("x.wav"),
                               Path("X.ogg"), Path("..wav"), Path("d/.hidden.mp3"), Path("bad\nname\x07.wav"),
                               Path("intro (2).wav")])
    assert names == ["intro", "intro (2)", "x", "x (2)", "X (3)", "song", "_hidden", "bad_name_", "intro (2) (2)"]
    assert all("/" not in n and not n.startswith(".") for n in names)


def _result(folder: Path, *files: str) -> None:
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).write_text(f)


def test_a_finished_result_replaces_an_earlier_one_whole(tmp_path: Path) -> None:
    final = tmp_path / "song"
    _result(final, RESULT_MARKER, "vocals.wav", "guitar.wav")
    with replacing_folder(final) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".song.partial-")
        (staging / "vocals.wav").write_text("new")
        (staging / RESULT_MARKER).write_text("new")
    assert sorted(p.name for p in final.iterdir()) == [RESULT_MARKER, "vocals.wav"]  # no stale guitar.wav
    assert (final / "vocals.wav").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song"]


def test_a_failed_or_interrupted_result_leaves_the_earlier_one_as_it_was(tmp_path: Path) -> None:
    final = tmp_path / "song"
    _result(final, RESULT_MARKER, "vocals.wav")
    for exc in (AudioWriteError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with replacing_folder(final) as staging:
                (staging / "vocals.wav").write_text("half")
                raise exc
        assert (final / "vocals.wav").read_text() == "vocals.wav"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["song"]


def test_a_folder_that_is_not_a_result_is_never_touched(tmp_path: Path) -> None:
    final = tmp_path / "song"
    _result(final, "my notes.txt")
    with pytest.raises(AudioWriteError, match="not a StemLab result"):
        with replacing_folder(final):
            pass
    assert [p.name for p in final.iterdir()] == ["my notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioWriteError, match="not a folder"):
        with replacing_folder(tmp_path / "file"):
            pass


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_killed_run_are_tidied(tmp_path: Path) -> None:
    dead = _dead_pid()
    final = tmp_path / "song"
    _result(tmp_path / f".song.partial-{dead}", "vocals.wav")  # killed while writing
    _result(tmp_path / f".song.old-{dead}", RESULT_MARKER, "vocals.wav")  # killed between the two renames
    _result(tmp_path / f".song.partial-{os.getppid()}", "vocals.wav")  # a live run's: left alone
    with replacing_folder(final) as staging:
        assert (final / RESULT_MARKER).is_file()  # the earlier result was put back first
        (staging / RESULT_MARKER).write_text("new")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f".song.partial-{os.getppid()}", "song"]


# ----------------------------------------------------------------------------------------------
# Through the command line


def _stemlab(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "separate", *args, "--quiet", "--allow-untrained"],
                          capture_output=True, text=True, timeout=300, **kw)


def _song(path: Path, seconds: float = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 44100)) / 44100
    sf.write(path, np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32) * 0.3, 44100)
    return path


def test_two_songs_of_one_name_keep_both_results(tiny_model: Path, tmp_path: Path) -> None:
    a, b = _song(tmp_path / "a" / "intro.wav"), _song(tmp_path / "b" / "intro.wav", 3.0)
    out = tmp_path / "out"
    res = _stemlab(str(a), str(b), "--out", str(out), "--model", str(tiny_model))
    assert res.returncode == 0, res.stderr
    assert sf.info(out / "intro" / "vocals.wav").duration == pytest.approx(2.0, abs=1e-3)
    assert sf.info(out / "intro (2)" / "vocals.wav").duration == pytest.approx(3.0, abs=1e-3)


def test_a_song_inside_its_own_output_folder_is_refused_and_kept(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    song = _song(out / "vocals" / "vocals.wav")
    before = song.read_bytes()
    res = _stemlab(str(song), "--out", str(out), "--model", str(tiny_model))
    assert res.returncode == 1 and "inside its own output folder" in res.stderr and "Traceback" not in res.stderr
    assert song.read_bytes() == before


def test_sigterm_while_separating_exits_130_and_leaves_nothing(tiny_model: Path, tmp_path: Path) -> None:
    song = _song(tmp_path / "long.wav", 300.0)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "separate", str(song), "--out", str(out), "--quiet",
                             "--allow-untrained", "--model", str(tiny_model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".long.partial-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []  # no final folder, no hidden staging folder, no .part files
