"""The `stemlab separate` command end to end, in a subprocess like a user runs it."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
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


def test_separate_writes_tempo_key_and_beats(tiny_model: Path, tmp_path: Path) -> None:
    from tests.engine.test_music import SR, C, F, G, song

    path = tmp_path / "in c.wav"
    sf.write(path, song(120.0, 16.0, [C, F, G, C]).T, SR)
    r = stemlab("separate", str(path), "--out", str(tmp_path / "out"), "--model", str(tiny_model),
                "--allow-untrained", "--quiet")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "out" / "in c"
    meta = json.loads((folder / "separation.json").read_text())
    assert abs(meta["tempo_bpm"] - 120.0) < 4.8 and meta["key"] == "C major" and meta["beats_per_bar"] == 4
    assert "beats.csv" in meta["files"]
    rows = list(csv.DictReader((folder / "beats.csv").open()))
    assert len(rows) == meta["n_beats"] > 20 and {r["downbeat"] for r in rows} == {"0", "1"}
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and sum(r["downbeat"] == "1" for r in rows) == pytest.approx(len(rows) / 4, abs=2)
    r = stemlab("separate", str(path), "--out", str(tmp_path / "plain"), "--model", str(tiny_model),
                "--allow-untrained", "--quiet", "--no-analysis")
    assert r.returncode == 0 and not (tmp_path / "plain" / "in c" / "beats.csv").exists()
    assert "tempo_bpm" not in json.loads((tmp_path / "plain" / "in c" / "separation.json").read_text())


def test_the_training_commands_are_found_without_importing_training() -> None:
    """`stemlab separate` and `gui` never import training; its commands come from the package metadata
    and run through `stemlab` as before."""
    code = ("import sys, app.cli as c; c.build_parser(); names = sorted(c.training_commands()); "
            "print(names, [m for m in sys.modules if m == 'training' or m.startswith('training.')])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("['evaluate', 'export-model', 'make-benchmark', 'make-data', 'make-demo', 'train'] []")
    r = subprocess.run([sys.executable, "-m", "app.cli", "train", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "--resume" in r.stdout
