"""Every file of the bad-input corpus through `stemlab separate`, in a subprocess as a user runs it:
one clear line for each file that cannot be used, stems for each that can, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SR, tone_mix
from tests.hardening.corpus import Case, build_corpus
from tests.hardening.privileges import unprivileged_prefix

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["vocals", "drums", "bass", "guitar", "piano", "other"]
NOBODY = 65534


def as_nobody_prefix() -> list[str]:
    """Under root, a command prefix under which root meets permission bits (see privileges.py)."""
    return list(unprivileged_prefix())


def stemlab(*args: str, prefix: Sequence[str] = (), cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if prefix:
        env["HOME"] = str(cwd)  # nobody's own home does not exist
    return subprocess.run([*prefix, sys.executable, "-m", "app.cli", "separate", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=cwd)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("stemlab:")]


@pytest.fixture(scope="module")
def batch(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[list[Case], Path, subprocess.CompletedProcess]:
    """The whole corpus in one run, as someone would drop a folder of files on the command line."""
    root = tmp_path_factory.mktemp("corpus")
    cases = build_corpus(root / "in")
    out = root / "out" / "not yet there"  # a missing output folder is created
    res = stemlab(*[str(c.path) for c in cases], "--out", str(out), "--model", str(tiny_model), "--allow-untrained",
                  "--quiet")
    return cases, out, res


def test_the_batch_survives_every_bad_file(batch: tuple) -> None:
    cases, out, res = batch
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    assert res.returncode == 1  # some files failed: non-zero
    failed = [c for c in cases if not c.ok]
    lines = error_lines(res.stderr)
    assert len(lines) == len(failed), res.stderr
    for c in failed:
        mine = [line for line in lines if c.path.name in line]
        assert len(mine) == 1, (c.name, res.stderr)
        assert c.message in mine[0], (c.name, mine[0])
        assert not (out / c.path.stem).exists() or not any((out / c.path.stem).iterdir())
    done = res.stdout.splitlines()
    assert len(done) == len(cases) - len(failed), res.stdout


@pytest.mark.parametrize("name", ["truncated-wav", "truncated-mp3", "full-scale-clipping", "beyond-full-scale-float",
                                  "digital-silence", "one-channel", "six-channels", "rate-8k", "rate-192k",
                                  "tenth-of-a-second", "spaces-and-non-ascii"])
def test_usable_files_give_stems_and_say_what_was_changed(batch: tuple, name: str) -> None:
    cases, out, res = batch
    case = next(c for c in cases if c.name == name)
    folder = out / case.path.stem
    meta = json.loads((folder / "separation.json").read_text())
    assert meta["sample_rate"] == case.sample_rate
    if case.message:
        assert any(case.message in n for n in meta["notes"]), meta["notes"]
        notes = [line for line in res.stderr.splitlines() if line.startswith(f"note: {case.path.name}:")]
        assert any(case.message in n for n in notes), res.stderr
    lengths = set()
    for s in SOURCES:
        data, rate = sf.read(folder / f"{s}.wav", dtype="float32", always_2d=True)
        assert rate == case.sample_rate and data.shape[1] == 2
        assert np.isfinite(data).all()
        lengths.add(data.shape[0])
        if case.silent:
            assert not data.any()
    (n,) = lengths
    if case.n_samples is not None:
        assert n == case.n_samples
    if case.max_samples is not None:
        assert 0 < n <= case.max_samples
    activity = np.loadtxt(folder / "activity.csv", delimiter=",", skiprows=1)
    assert activity.shape[1] == 1 + len(SOURCES) and np.isfinite(activity).all()
    if case.silent:
        assert not activity[:, 1:].any()  # no instrument is active in silence
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.fixture()
def shared_dir() -> Iterator[Path]:
    """A folder another user can read (pytest's own tmp folders are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="stemlab-hardening-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        for p in d.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(d)


def test_read_only_output_folder_is_refused_with_one_line(tiny_model: Path, shared_dir: Path) -> None:
    """Root writes anywhere, so under root the command runs as `nobody` to meet a folder it may not write."""
    prefix = as_nobody_prefix()
    for f in tiny_model.parent.glob(tiny_model.stem + ".*"):
        shutil.copy(f, shared_dir / f.name)
        (shared_dir / f.name).chmod(0o644)
    song = shared_dir / "song.wav"
    sf.write(song, tone_mix(1.0).T, SR)
    song.chmod(0o644)
    locked = shared_dir / "locked"
    (locked / "song").mkdir(parents=True)  # the song's folder exists but cannot be written into
    locked_parent = shared_dir / "locked-parent"  # the song's folder cannot even be made
    locked_parent.mkdir()
    home = shared_dir / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    for d in (locked / "song", locked, locked_parent):
        d.chmod(0o555)
    for out, message in ((locked, "could not write the stems"), (locked_parent, "cannot create the output folder")):
        res = stemlab(str(song), "--out", str(out), "--model", str(shared_dir / tiny_model.name), "--allow-untrained",
                      "--quiet", prefix=prefix, cwd=home)
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr
        lines = error_lines(res.stderr)
        assert len(lines) == 1 and message in lines[0] and "Permission denied" in lines[0], res.stderr
        assert not any(out.rglob("*.wav")) and not any(out.rglob(".*"))
