"""Training on songs written and rendered while training (no data set on disk), and a clean exit with
a data-loader worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.test_data import needs_synth
from tests.training.test_training import tiny_config
from training.errors import TrainingError
from training.run.batches import FlySource, make_source
from training.run.config import TrainConfig
from training.run.trainer import Trainer


def fly_config(out: Path, **changes) -> TrainConfig:
    cfg = TrainConfig(name="fly", out_dir=str(out), train_sets=[], val_set=None, depth=3, base_width=4,
                      max_width=16, activity_hidden=8, excerpt_frames=32, batch_size=2, max_steps=3,
                      epoch_steps=2, num_workers=0, precision="fp32", log_every=1, checkpoint_minutes=60,
                      fly_songs=2, fly_steps_per_song=2, fly_max_song_s=5.0, fly_fonts=["fluidr3"])
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


def test_no_data_at_all_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="fly_songs"):
        make_source(fly_config(tmp_path, fly_songs=0))


@needs_synth
def test_on_the_fly_batches_slide_over_rendered_songs_and_repeat_exactly(tmp_path: Path) -> None:
    cfg = fly_config(tmp_path)
    src = make_source(cfg)
    assert isinstance(src, FlySource)
    a = src.batch(1, None)
    assert sorted(src.cache) == [0, 1] and len(src.songs) == 2
    assert a.mixture.shape == (2, 2, cfg.excerpt_samples) and a.activity.shape == (2, 6, cfg.excerpt_frames)
    torch.testing.assert_close(a.stems.sum(1), a.mixture, atol=1e-5, rtol=0)
    assert a.activity.sum() > 0  # the labels come from the rendered notes
    src.batch(2, None)
    assert sorted(src.cache) == [1, 2]  # the window moved on by one song; song 0 was let go
    fresh = make_source(cfg)  # a resumed run renders the same songs and draws the same batch
    b = fresh.batch(1, None)
    assert torch.equal(a.mixture, b.mixture) and torch.equal(a.activity, b.activity)
    one = src.batch(3, 0)  # interleaved batches work on live songs too
    assert bool(one.known[:, 0].all()) and not bool(one.known[:, 1:].any())


@needs_synth
def test_training_on_the_fly_runs_and_checkpoints(tmp_path: Path) -> None:
    cfg = fly_config(tmp_path / "run")
    result = Trainer(cfg, progress=False).run()
    assert result["step"] == 3 and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_run_with_a_loader_worker_exits(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    # The worker ignores SIGTERM (so a stop reaches the trainer first); left to interpreter exit, the
    # multiprocessing exit hook would SIGTERM it and wait forever. The trainer must shut it down itself.
    cfg = tiny_config(tiny_sets, tmp_path / "run", num_workers=1, max_steps=2, val_set=None)
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    proc = subprocess.run([sys.executable, "-m", "app.cli", "train", "--config", str(path), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["step"] == 2
