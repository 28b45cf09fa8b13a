"""Faults: a disk that fills up during an export, a training run killed with SIGKILL (also in the middle
of writing its checkpoint), and damaged checkpoints and model files.

A full disk is simulated with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with
EFBIG as they would with ENOSPC) in a subprocess, so the test process itself is never limited.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from tests.conftest import SR, tone_mix
from tests.hardening.privileges import unprivileged_prefix

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60000
SOURCES = ["vocals", "drums", "bass", "guitar", "piano", "other"]


def limit_file_size(max_bytes: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return apply


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_WAIT_POLICY="PASSIVE")


# ---- a disk that fills up -------------------------------------------------------------------------------


@pytest.mark.parametrize("song_rate,limit", [
    (SR, 400_000),  # the network's own stems (float WAV, 1 MB each) cannot be written
    (2 * SR, 1_500_000),  # they can (at the model's 44.1 kHz); the final 88.2 kHz stems cannot
])
def test_cli_export_on_a_full_disk_leaves_no_partial_file(tiny_model: Path, tmp_path: Path, song_rate: int,
                                                          limit: int) -> None:
    song = tmp_path / "song.flac"
    sf.write(song, tone_mix(3.0, sample_rate=song_rate).T, song_rate, subtype="PCM_16")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "app.cli", "separate", str(song), "--out", str(out), "--model",
                          str(tiny_model), "--allow-untrained", "--quiet"], capture_output=True, text=True, env=env(),
                         cwd=ROOT, timeout=300, preexec_fn=limit_file_size(limit))
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("stemlab:")]
    assert len(lines) == 1 and "could not write the stems (File too large)" in lines[0], res.stderr
    assert "no partial file was left" in lines[0]
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == [], left  # no result folder, no stem, no temporary, no hidden staging folder, no separation.json


def test_write_audio_reports_a_full_disk(tmp_path: Path) -> None:
    """The atomic writer the app's export uses: the OS's reason, no file, no noise from soundfile's callback."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from engine.audio import write_audio
        from engine.errors import AudioWriteError
        for name in ("a.wav", "b.flac"):
            try:
                noise = np.random.default_rng(0).uniform(-1, 1, (2, 441000)).astype(np.float32)
                write_audio({str(tmp_path)!r} + "/" + name, noise, 44100)
            except AudioWriteError as exc:
                print(exc)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=120,
                         preexec_fn=limit_file_size(200_000))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.count("could not be written (File too large).") == 2, res.stdout
    assert list(tmp_path.iterdir()) == []


def test_app_export_faults_in_a_subprocess(tmp_path: Path) -> None:
    """Runs test_app_export_faults_child below in its own pytest, limited like a full disk, and as
    root without the right to ignore permission bits (tests/hardening/privileges.py)."""
    prefix: list[str] = []
    child_env = env()
    child_env["STEMLAB_FAULT_CHILD"] = "1"
    if os.geteuid() == 0:
        prefix = list(unprivileged_prefix())
        home = Path("/tmp") / f"stemlab-nobody-{os.getpid()}"
        home.mkdir(mode=0o777, exist_ok=True)
        home.chmod(0o777)
        child_env.update(HOME=str(home), TMPDIR=str(home))
    try:
        res = subprocess.run([*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                              f"{__file__}::test_app_export_faults_child"], capture_output=True, text=True,
                             env=child_env, cwd=ROOT, timeout=300)
    finally:
        if prefix:
            shutil.rmtree(home, ignore_errors=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout


@pytest.mark.skipif(os.environ.get("STEMLAB_FAULT_CHILD") != "1",
                    reason="run by test_app_export_faults_in_a_subprocess")
def test_app_export_faults_child(qtbot: Any, window: Any, song_file: Path, tmp_path: Path, dialogs: list) -> None:
    from app.export_dialog import ExportChoice

    w = window
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT):
        w.open_path(str(song_file))
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)

    def export(folder: Path) -> None:
        choice = ExportChoice(folder=folder, stems=list(w.result.sources), fmt="wav", subtype="FLOAT", remix=True,
                              song_stem="song")
        with qtbot.waitSignal(w.error_shown, timeout=WAIT):
            w.export(choice)
        qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)

    # a read-only folder: one dialog naming the cause, nothing written
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        export(locked)
        assert dialogs[-1][1] == "Export failed" and "Permission denied" in dialogs[-1][2], dialogs
        assert list(locked.iterdir()) == []
        export(locked / "stems")
        assert "cannot create the output folder" in dialogs[-1][2]
    # a disk that fills up during the first stem (each is about 1 MB): one dialog, no partial file
    full = tmp_path / "full"
    n_dialogs = len(dialogs)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, hard))
    try:
        export(full)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert len(dialogs) == n_dialogs + 1
    kind, title, text = dialogs[-1]
    assert title == "Export failed" and "File too large" in text and "Unexpected" not in text, text
    assert list(full.iterdir()) == []
    # still usable: the same export with room succeeds
    choice = ExportChoice(folder=full, stems=list(w.result.sources), fmt="wav", subtype="FLOAT", remix=True,
                          song_stem="song")
    with qtbot.waitSignal(w.export_finished, timeout=WAIT):
        w.export(choice)
    qtbot.waitUntil(lambda: w._busy_worker is None, timeout=WAIT)
    assert sorted(p.name for p in full.iterdir()) == sorted(
        [f"{s}.wav" for s in SOURCES] + ["activity.csv", "separation.json", "song (remix).wav"])


# ---- training killed -------------------------------------------------------------------------------------


TRAIN_FLAGS = ["--depth", "3", "--base-width", "4", "--max-width", "16", "--activity-hidden", "8",
               "--excerpt-frames", "32", "--batch-size", "2", "--epoch-steps", "1000", "--num-workers", "0",
               "--precision", "fp32", "--log-every", "1", "--val-set", "none", "--threads", "1"]


@pytest.fixture(scope="module")
def train_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.training.conftest import write_set

    return write_set(tmp_path_factory.mktemp("train") / "set", 2, 3.0, seed=5)


def train(run: Path, train_set: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "train", "--out-dir", str(run), "--train-sets",
                             str(train_set), *TRAIN_FLAGS, "--quiet", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)


def checkpoint_step(run: Path) -> int:
    from training.run.checkpoints import load_checkpoint_file

    return int(load_checkpoint_file(run / "checkpoint.pt")["step"])


def test_training_killed_resumes_from_its_last_checkpoint(train_set: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = train(run, train_set, "--max-steps", "100000", "--checkpoint-minutes", "0.005")  # every 0.3 s
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a few checkpoints were written
            if (run / "checkpoint.pt.sha256").exists() and checkpoint_step(run) >= 6:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint appeared: " + (proc.stderr.read() if proc.poll() is not None else ""))
        time.sleep(0.7)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    logged = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()
              if line.strip().endswith("}")]
    step = checkpoint_step(run)  # whole and matching its sha256
    # nothing lost but the last moments: the checkpoint is at most a few steps behind the log
    assert 6 <= step <= max(logged) and max(logged) - step <= 20, (step, max(logged))
    res = subprocess.run([sys.executable, "-m", "app.cli", "train", "--resume", "--out-dir", str(run), "--max-steps",
                          str(step + 2), "--quiet"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"resumed {run} at step {step} " in res.stdout
    assert json.loads(res.stdout.strip().splitlines()[-1])["step"] == step + 2
    for line in (run / "log.jsonl").read_text().splitlines():  # a line cut by the kill costs only itself
        if line.strip().endswith("}"):
            json.loads(line)
    assert checkpoint_step(run) == step + 2
    assert not list(run.glob(".*.part"))  # a save the kill interrupted left only its temporary, now gone


KILL_DURING_SAVE = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import torch
import training.run.checkpoints as ck
from training.run.config import TrainConfig
from training.run.trainer import Trainer

run, train_set, mode = sys.argv[2], sys.argv[3], sys.argv[4]
real_save, real_replace = torch.save, os.replace
saves = []

def stop_here():
    open(os.path.join(run, "stopped"), "w").close()
    time.sleep(600)

def save(obj, fh):  # the second checkpoint is written half-way, then the process waits to be killed
    saves.append(1)
    if len(saves) >= 2 and mode == "mid-write":
        import io
        buf = io.BytesIO()
        real_save(obj, buf)
        fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        fh.flush()
        stop_here()
    real_save(obj, fh)

def replace(src, dst):  # or killed after its digest was recorded, before the rename
    if len(saves) >= 2 and mode == "before-rename" and str(dst).endswith("checkpoint.pt"):
        stop_here()
    real_replace(src, dst)

ck.torch.save = save
ck.os.replace = replace
cfg = TrainConfig(name="k", out_dir=run, train_sets=[train_set], val_set=None, depth=3, base_width=4, max_width=16,
                  activity_hidden=8, excerpt_frames=32, batch_size=2, max_steps=6, epoch_steps=3, num_workers=0,
                  precision="fp32", log_every=1, checkpoint_minutes=60, threads=1)
Trainer(cfg, progress=False).run()
"""


@pytest.mark.parametrize("mode", ["mid-write", "before-rename"])
def test_a_kill_while_saving_leaves_the_previous_checkpoint_whole(train_set: Path, tmp_path: Path, mode: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(ROOT), str(run), str(train_set), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        deadline = time.monotonic() + 120
        while not (run / "stopped").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the second checkpoint save never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert (run / ".checkpoint.pt.part").exists()  # the interrupted write, under its temporary name
    assert checkpoint_step(run) == 3  # the first checkpoint (end of epoch 1), whole and verified
    from training.run.config import TrainConfig
    from training.run.trainer import Trainer

    trainer = Trainer(TrainConfig.load(run / "config.json"), resume=True, progress=False)
    assert trainer.step == 3
    assert trainer.run()["step"] == 6 and checkpoint_step(run) == 6
    assert not (run / ".checkpoint.pt.part").exists()


# ---- damaged checkpoints and model files -----------------------------------------------------------------


def flip(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_a_checkpoint_is_refused(train_set: Path, tmp_path: Path) -> None:
    from training.run.config import TrainConfig
    from training.errors import TrainingError
    from training.run.trainer import Trainer

    cfg = TrainConfig(name="b", out_dir=str(tmp_path), train_sets=[str(train_set)], val_set=None, depth=3,
                      base_width=4, max_width=16, activity_hidden=8, excerpt_frames=32, batch_size=2, max_steps=2,
                      epoch_steps=2, num_workers=0, precision="fp32", checkpoint_minutes=60)
    Trainer(cfg, progress=False).run()
    ckpt = tmp_path / "checkpoint.pt"
    flip(ckpt)  # inside the tensor data: torch would load it, with one weight changed
    with pytest.raises(TrainingError, match="corrupt .*sha256"):
        Trainer(cfg, resume=True, progress=False)


def copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.parent.glob(src.stem + ".*"):
        shutil.copy(f, dst / f.name)
    return dst / src.name


def test_cli_refuses_a_damaged_model_with_one_line(tiny_model: Path, song_file: Path, tmp_path: Path) -> None:
    card = copy_model(tiny_model, tmp_path / "model")
    flip(card.with_suffix(".safetensors"))
    res = subprocess.run([sys.executable, "-m", "app.cli", "separate", str(song_file), "--out", str(tmp_path / "o"),
                          "--model", str(card), "--allow-untrained"], capture_output=True, text=True, env=env(),
                         cwd=ROOT, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("stemlab:")]
    assert len(lines) == 1 and "do not match their model card" in lines[0]


def test_app_falls_back_to_the_bundled_model(qtbot: Any, make_window: Any, tiny_model: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, dialogs: list, song_file: Path) -> None:
    damaged = copy_model(tiny_model, tmp_path / "damaged")
    flip(damaged.with_suffix(".safetensors"))
    bundled = copy_model(tiny_model, tmp_path / "res" / "models")
    bundled.rename(bundled.with_name("iass.json"))  # the card names its weights file, tiny.safetensors
    monkeypatch.setenv("STEMLAB_RESOURCES", str(tmp_path / "res"))
    w = make_window(model=str(damaged))
    assert w.separator is not None and w.separator.card.name == "tiny-random"
    text = w.messages["model"].text()
    assert "tiny.json" in text and "do not match" in text and "bundled model" in text
    assert dialogs == []  # at start-up a banner says it, not a dialog
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT):
        w.open_path(str(song_file))
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
    # choosing a damaged model later: one dialog, and the model in use stays
    with qtbot.waitSignal(w.error_shown, timeout=WAIT):
        w.load_model(str(damaged))
    assert len(dialogs) == 1 and dialogs[0][1] == "Cannot load the model" and "do not match" in dialogs[0][2]
    assert w.separator is not None and w.model_label.text().startswith("Model: tiny-random")
    assert w.settings.get("model/path") != str(damaged)


def test_app_without_a_bundled_model_says_both(qtbot: Any, make_window: Any, tiny_model: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, dialogs: list) -> None:
    damaged = copy_model(tiny_model, tmp_path / "damaged")
    flip(damaged.with_suffix(".safetensors"))
    monkeypatch.setenv("STEMLAB_RESOURCES", str(tmp_path / "empty"))
    w = make_window(model=str(damaged))
    assert w.separator is None and dialogs == []
    text = w.messages["model"].text()
    assert "do not match" in text and "No trained model is bundled" in text
    assert w.model_label.text() == "No model loaded"
