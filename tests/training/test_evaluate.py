"""The evaluator's figures on stems with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.spectral import STFTConfig
from training.evaluate import evaluate, markdown, oracle_stems
from training.metrics import precision_recall_f1, sdr
from training.trainer import Trainer
from tests.training.test_training import tiny_config


def test_sdr_known_values() -> None:
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 10000))
    noise = rng.standard_normal((2, 10000))
    noise *= np.sqrt((s ** 2).sum() / (noise ** 2).sum()) / 10.0  # 20 dB below the reference
    assert abs(sdr(s, s + noise) - 20.0) < 1e-6
    assert abs(sdr(s, np.zeros_like(s))) < 1e-6  # silence scores exactly 0 dB
    assert sdr(s, s) > 90


def test_precision_recall_f1_by_hand() -> None:
    pred = np.array([1, 1, 0, 0, 1], bool)
    truth = np.array([1, 0, 0, 1, 1], bool)
    p, r, f = precision_recall_f1(pred, truth)
    assert (p, r) == (2 / 3, 2 / 3) and abs(f - 2 / 3) < 1e-12
    assert precision_recall_f1(np.zeros(3, bool), np.zeros(3, bool)) == (1.0, 1.0, 1.0)


def test_oracle_masks_reconstruct_well() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(44100) / 44100
    a = np.stack([np.sin(2 * np.pi * 220 * t)] * 2)
    b = 0.3 * rng.standard_normal((2, 44100))
    stems = np.stack([a, b]).astype(np.float32)
    mix = stems.sum(0)
    irm = oracle_stems(stems, mix, STFTConfig(), binary=False)
    np.testing.assert_allclose(irm.sum(0), mix, atol=1e-4)  # ratio masks sum to one
    assert sdr(a, irm[0]) > 15 and sdr(a, irm[0]) > sdr(a, mix)


def test_evaluate_report_has_references(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(tiny_sets, tmp_path, val_set=None, max_steps=2)
    Trainer(cfg, progress=False).run()
    report = evaluate(str(tmp_path / "checkpoint.pt"), str(tiny_sets["val"]), progress=False)
    assert report["n_excerpts"] == 2
    assert report["sdr"]["silence"]["mean"] == 0.0
    irm, mixture = report["sdr"]["oracle_irm"]["mean"], report["sdr"]["mixture"]["mean"]
    assert irm > mixture and irm > 5.0
    assert set(report["activity"]) == set(cfg.sources)
    text = markdown(report)
    assert "oracle ideal ratio mask" in text and "f1" in text
