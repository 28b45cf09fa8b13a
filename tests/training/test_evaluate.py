"""The evaluator's figures on stems with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.metrics import precision_recall_f1, sdr
from engine.spectral import STFTConfig
from tests.training.test_training import tiny_config
from training.evaluation.evaluate import evaluate, markdown, oracle_stems
from training.run.trainer import Trainer


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


def test_evaluate_measures_how_quiet_silent_stems_stay(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    from engine.gating import GatingSettings
    from tests.training.conftest import make_song
    from training.datasets.dataset import write_manifest, write_song_folder

    root = tmp_path / "set"
    rng = np.random.default_rng(4)
    for i in range(2):
        stems, labels = make_song(rng, 3.0)
        stems["guitar"] = np.zeros_like(stems["guitar"])  # the guitar does not play in these songs
        labels["energy_activity"][3] = 0
        labels["note_activity"][3] = 0
        write_song_folder(root / "songs" / f"song_{i:05d}", stems, labels, list(stems), 44100, {"sample_rate": 44100})
    write_manifest(root)
    cfg = tiny_config(tiny_sets, tmp_path / "run", val_set=None, max_steps=2)
    Trainer(cfg, progress=False).run()
    model = str(tmp_path / "run" / "checkpoint.pt")
    report = evaluate(model, str(root), progress=False)
    ungated = report["silent"]["ungated"]
    assert ungated["guitar"]["n"] == 2 and ungated["vocals"] is None  # only where a stem is silent
    assert -200.0 < ungated["guitar"]["median_db"] < 10.0
    # a gate that never opens silences the stem completely
    closed = evaluate(model, str(root), gating=GatingSettings(threshold=1.0), progress=False)
    assert closed["silent"]["gated"]["guitar"]["share_30db_below"] == 1.0
    assert "does not play" in markdown(report)


def test_evaluate_with_wiener_scores_the_filtered_stems(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(tiny_sets, tmp_path, val_set=None, max_steps=2)
    Trainer(cfg, progress=False).run()
    model, songs = str(tmp_path / "checkpoint.pt"), str(tiny_sets["val"])
    plain = evaluate(model, songs, progress=False)
    filtered = evaluate(model, songs, progress=False, wiener=True)
    assert plain["wiener"] is False and filtered["wiener"] is True
    for method in ("gated", "ungated"):
        a, b = plain["sdr"][method]["per_source"], filtered["sdr"][method]["per_source"]
        assert all(np.isfinite(v) for v in b.values() if v is not None)
        assert a != b  # the filter changed what was scored, gated and ungated alike
    # the references do not depend on the filter
    assert plain["sdr"]["oracle_irm"] == filtered["sdr"]["oracle_irm"]


def test_evaluate_gates_a_model_card_as_its_card_says_unless_told(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    import json

    from engine.gating import GatingSettings
    from training.run.export_model import export_run

    Trainer(tiny_config(tiny_sets, tmp_path, val_set=None, max_steps=2), progress=False).run()
    tuned = {"per_source": {"vocals": {"mode": "binary", "threshold": 0.2, "median_frames": 1}}}
    (tmp_path / "gating.json").write_text(json.dumps(tuned))
    export_run(tmp_path, tmp_path / "card.json", checkpoint="checkpoint.pt", gating_file=tmp_path / "gating.json")
    songs = str(tiny_sets["val"])
    own = evaluate(str(tmp_path / "card.json"), songs, progress=False)
    assert own["gating"]["per_source"]["vocals"] == {"mode": "binary", "threshold": 0.2, "median_frames": 1}
    assert own["gating"]["per_source"]["drums"] == {"mode": "binary", "threshold": 0.5, "median_frames": 9}
    told = evaluate(str(tmp_path / "card.json"), songs, gating=GatingSettings(), progress=False)
    assert told["gating"] == {"mode": "binary", "threshold": 0.5, "median_frames": 9}
    # a checkpoint has no card of its own: the engine's default
    assert evaluate(str(tmp_path / "checkpoint.pt"), songs, progress=False)["gating"] == told["gating"]
