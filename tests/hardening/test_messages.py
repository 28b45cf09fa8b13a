"""Files that are not songs, and places without a display: each gets one line that says what it is."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from app.cli import display_problem
from engine.audio import load_audio
from engine.errors import AudioLoadError
from tests.conftest import SR, tone_mix
from tests.hardening.privileges import unprivileged_prefix

ROOT = Path(__file__).resolve().parents[2]


def _wav_with_rate(path: Path, rate: int) -> Path:
    sf.write(path, tone_mix(0.5).T, SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"fmt ") + 12, rate)
    path.write_bytes(bytes(data))
    return path


def _message(path: Path) -> str:
    with pytest.raises(AudioLoadError) as info:
        load_audio(path)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_each_kind_of_non_song_is_named(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert "loop of symbolic links" in _message(tmp_path / "a")
    (tmp_path / "dangling.wav").symlink_to("nowhere.wav")
    assert "symbolic link to nowhere.wav, which does not exist" in _message(tmp_path / "dangling.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    assert "not a regular file" in _message(tmp_path / "pipe.wav")
    tag = tmp_path / "tag.mp3"
    tag.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x0a" + bytes(10))
    assert "only its ID3 tag" in _message(tag)
    assert "sample rate of 0 Hz" in _message(_wav_with_rate(tmp_path / "zero.wav", 0))
    assert "sample rate of 4000000000 Hz" in _message(_wav_with_rate(tmp_path / "huge.wav", 4_000_000_000))
    text = tmp_path / "notes.wav"
    text.write_text("these are my lyrics, not a song\n")
    assert "not a sound file in any format" in _message(text)
    assert "no such file" in _message(tmp_path / "missing.wav")
    (tmp_path / "folder.wav").mkdir()
    assert "is a folder" in _message(tmp_path / "folder.wav")


def test_an_unreadable_file_says_permission_denied(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(0.5).T, SR)
    song.chmod(0)
    tmp_path.chmod(0o755)
    prefix = unprivileged_prefix()
    code = f"from engine.audio import load_audio\ntry:\n    load_audio({str(song)!r})\nexcept Exception as e:\n    print(e)"
    r = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    song.chmod(0o644)
    assert "permission denied" in r.stdout, r.stdout + r.stderr


def test_the_app_without_a_display_says_so_in_one_line(tmp_path: Path) -> None:
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None
    if sys.platform.startswith("linux"):
        assert "no display" in (display_problem({}) or "")
        assert "DISPLAY=:987" in (display_problem({"DISPLAY": ":987"}) or "")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "app.cli", "gui"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(env, PYTHONPATH=str(ROOT)), timeout=120)
    if sys.platform.startswith("linux"):
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no display" in r.stderr, r.stderr


def test_a_format_that_cannot_hold_the_samples_is_refused_before_any_work(tmp_path: Path) -> None:
    from engine.audio import open_sound_writer
    from engine.errors import AudioWriteError

    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(0.5).T, SR)
    r = subprocess.run([sys.executable, "-m", "app.cli", "separate", str(song), "--out", str(tmp_path / "o"),
                        "--format", "flac", "--bits", "float"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 2 and "--bits float needs --format wav" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
    with pytest.raises(AudioWriteError, match="FLAC cannot hold FLOAT"):
        with open_sound_writer(tmp_path / "x.flac", SR, 2, "FLAC", "FLOAT"):
            pass
    assert not (tmp_path / "x.flac").exists()


@pytest.mark.parametrize("argv", [
    ["gui", "song.wav", "--truth", "x" * 300],
    ["separate", "song.wav", "--out", "o/" + "é" * 130],  # 260 bytes in UTF-8, though 130 characters
    ["evaluate", "--model", "m/" * 2100, "--set", "s"],
    ["make-data", "--hours", "0.01", "--out", "d" * 256],
])
def test_a_path_too_long_for_any_file_system_is_refused_before_work(argv: list[str], tmp_path: Path) -> None:
    """Python's pathlib raises for a name too long (it swallows only a missing file); every path option
    is refused up front, as argparse refuses any bad value, in one line and exit 2."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "app.cli", *argv], cwd=tmp_path, env=env | {"PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "bytes long" in last and "Traceback" not in r.stderr
    assert not (tmp_path / "cache").exists()  # no crash report: not a bug
    assert sorted(p.name for p in tmp_path.iterdir()) == []
