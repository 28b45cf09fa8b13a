"""The `stemlab separate` command end to end, in a subprocess like a user runs it."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

SOURCES = ["vocals", "drums", "bass", "guitar", "piano", "other"]


def stemlab(*args: str, env_resources: Path | None = None) -> subprocess.CompletedProcess:
    import os
    env = dict(os.environ)
    if env_resources is not None:
        env["STEMLAB_RESOURCES"] = str(env_resources)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_separate_writes_stems_csv_and_json(tiny_model: Path, song_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out dir"
    res = stemlab("separate", str(song_file), "--out", str(out), "--model", str(tiny_model), "--allow-untrained",
                  "--format", "flac", "--threshold", "0.4", "--median-frames", "5")
    assert res.returncode == 0, res.stderr
    song_dir = out / "song"
    for s in SOURCES:
        info = sf.info(song_dir / f"{s}.flac")
        assert info.samplerate == 44100 and info.channels == 2 and abs(info.duration - 3.0) < 1e-3
    rows = list(csv.reader((song_dir / "activity.csv").open()))
    assert rows[0] == ["time_s", *SOURCES] and len(rows) == 1 + 3 * 44100 // 512 + 1
    meta = json.loads((song_dir / "separation.json").read_text())
    assert meta["gating"]["vocals"] == {"mode": "binary", "threshold": 0.4, "median_frames": 5}
    assert meta["sources"] == SOURCES and meta["timings_s"]["total_s"] > 0
    assert not list(song_dir.glob("*.part"))


def test_failures_exit_nonzero_with_one_line(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("hello, I am not audio")
    res = stemlab("separate", str(bad), "--out", str(tmp_path / "o"), "--model", str(tiny_model),
                  "--allow-untrained", "--quiet")
    assert res.returncode == 1
    assert "cannot be read as audio" in res.stderr and "Traceback" not in res.stderr


def test_no_bundled_model_is_said_plainly(song_file: Path, tmp_path: Path) -> None:
    res = stemlab("separate", str(song_file), "--out", str(tmp_path / "o"), env_resources=tmp_path)
    assert res.returncode == 2
    assert "No trained model is bundled" in res.stderr and "Traceback" not in res.stderr


def test_untrained_model_is_refused_without_the_flag(tiny_model: Path, song_file: Path, tmp_path: Path) -> None:
    res = stemlab("separate", str(song_file), "--out", str(tmp_path / "o"), "--model", str(tiny_model))
    assert res.returncode == 2 and "untrained" in res.stderr
