"""`stemlab evaluate`: separate every excerpt of a set and score it against the true stems.

Per source and on average: whole-excerpt SDR (the Music Demixing Challenge's figure), optionally
BSSEval v4 SDR/SIR/SAR from museval (slow), and activity-detection precision/recall/F1 after
thresholding and median filtering. The same report carries the references: silence (0 dB), the
mixture as the estimate, and the oracle ideal ratio and binary masks with the same STFT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import StemLabError
from engine.gating import GatingSettings, GatingSpec
from engine.metrics import is_active, precision_recall_f1, sdr
from engine.model import IASSUNet
from engine.modelcard import ModelCard
from engine.separator import Separator, describe_gating, render_wiener
from engine.spectral import STFTConfig, istft, stft
from engine.stems import resample_stems
from training.datasets.dataset import MultitrackDataset
from training.errors import TrainingError
from training.run.checkpoints import load_checkpoint_file
from training.run.config import TrainConfig
from training.run.models import build_model

SILENT_DB = 30.0  # the issue-11 target: a silent stem's estimate this far below the mixture


def load_for_eval(model: str) -> tuple[Separator, bool]:
    """A model card, "bundled", or a training checkpoint (.pt, IASS or Open-Unmix) -> the engine's
    Separator for it (the one inference path) and whether the network has an activity head."""
    if not model.endswith(".pt"):
        return Separator.load(model), True
    state = load_checkpoint_file(model)
    cfg = TrainConfig.from_dict(state["config"])
    net = build_model(cfg)
    net.load_state_dict(state["model"])
    architecture = net.architecture() if isinstance(net, IASSUNet) else {"model": cfg.model}
    card = ModelCard(name=f"{cfg.name} ({Path(model).name})", sources=list(cfg.sources),
                     sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                     max_bin=cfg.max_bin, architecture=architecture, weights="-")
    return Separator(net, card), isinstance(net, IASSUNet)


def oracle_stems(stems: np.ndarray, mixture: np.ndarray, config: STFTConfig, binary: bool) -> np.ndarray:
    """Ideal ratio mask |S_j| / sum_k |S_k| (or the ideal binary mask) applied to the mixture."""
    spec_s = stft(torch.from_numpy(stems), config)
    spec_x = stft(torch.from_numpy(mixture), config)
    mag = spec_s.abs()
    if binary:
        masks = (mag == mag.max(dim=0, keepdim=True).values).float()
    else:
        masks = mag / (mag.sum(dim=0, keepdim=True) + 1e-10)
    return istft(masks * spec_x[None], config, mixture.shape[-1]).numpy()


def museval_v4(reference: np.ndarray, estimates: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """BSSEval v4 medians over 1-s windows per source: reference, estimates (S, 2, n)."""
    import types

    # museval's package imports musdb -> stempeg, which refuses to load without ffmpeg; its metrics
    # need neither, so an empty stand-in satisfies that import.
    sys.modules.setdefault("musdb", types.ModuleType("musdb"))
    import museval

    sdr_, isr, sir, sar = museval.evaluate(np.transpose(reference, (0, 2, 1)), np.transpose(estimates, (0, 2, 1)),
                                           win=sample_rate, hop=sample_rate)
    return {k: np.nanmedian(v, axis=1) for k, v in (("sdr", sdr_), ("sir", sir), ("sar", sar))}


def _gating_dict(gating: GatingSpec) -> dict[str, Any]:
    """One setting for all stems as a flat object (as reports always had it), per-stem ones under per_source."""
    if isinstance(gating, GatingSettings):
        return describe_gating(gating, ["all"])["all"]
    return {"per_source": describe_gating(gating, list(gating))}


def evaluate(model: str, set_dir: str, *, gating: GatingSpec | None = None, museval_n: int = 0,
             limit: int = 0, progress: bool = True, wiener: bool = False) -> dict[str, Any]:
    """Score `model` on every excerpt of `set_dir`. The gating is the model's own (its card's tuned
    settings, as `stemlab separate` and the app use them; the engine's default for a checkpoint) unless
    `gating` is given. With `wiener`, both the gated and the ungated estimates are refined by the engine's
    multichannel Wiener filter (as `stemlab separate --wiener`)."""
    sep, has_activity = load_for_eval(model)
    if gating is None:
        gating = sep.card.default_gating()
    name, sources, config = sep.card.name, sep.sources, sep.stft_config
    ds = MultitrackDataset(set_dir)
    if list(ds.sources) != sources:
        raise TrainingError(f"the set's sources {list(ds.sources)} differ from the model's {sources}")
    songs = ds.songs[:limit] if limit else ds.songs
    methods = ("gated", "ungated", "mixture", "oracle_irm", "oracle_ibm")
    scores: dict[str, list[list[float]]] = {m: [[] for _ in sources] for m in methods}
    bss: dict[str, list[list[float]]] = {f"{m}_{k}": [[] for _ in sources] for m in ("gated", "ungated")
                                         for k in ("sdr", "sir", "sar")}
    detection: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in sources]  # (pred, truth) frame arrays, concatenated later
    # where a stem does not play: how far below the mixture its estimate stays (dB), gated and not
    leak: dict[str, list[list[float]]] = {m: [[] for _ in sources] for m in ("gated", "ungated")}
    t0 = time.perf_counter()
    for k, e in enumerate(songs):
        ex = ds.load_song(e)
        stems = np.stack([ex.stems.get(s, np.zeros_like(ex.mixture)) for s in sources])
        mixture = stems.sum(axis=0)
        # the engine's separation as the app and the command line run it, gating included
        result = sep.separate(mixture, ds.sample_rate, gating=gating, wiener=wiener)
        assert result.ungated is not None
        est, est_g = result.ungated, result.stems
        if wiener:  # the ungated estimate through the same filter: every gate open
            assert result.masks is not None and result.mixture is not None
            open_gates = np.ones((len(sources), result.masks.shape[-1]), np.float32)
            est = resample_stems(render_wiener(result.mixture, result.masks, open_gates, config,
                                               range(len(sources)), device=sep.device),
                                 sep.sample_rate, ds.sample_rate, mixture.shape[-1])
        if has_activity:
            g = result.gates()
            for j, s in enumerate(sources):
                truth = ex.energy_activity[s][: g.shape[1]]
                detection[j].append((g[j][: truth.shape[0]] > 0.5, truth > 0))
        refs = {"gated": est_g, "ungated": est, "mixture": np.repeat(mixture[None], len(sources), 0),
                "oracle_irm": oracle_stems(stems, mixture, config, False),
                "oracle_ibm": oracle_stems(stems, mixture, config, True)}
        mix_energy = float(np.sum(mixture.astype(np.float64) ** 2)) + 1e-20
        for j in range(len(sources)):
            if not is_active(stems[j]):
                for m, x in (("gated", est_g), ("ungated", est)):
                    energy = float(np.sum(x[j].astype(np.float64) ** 2))
                    leak[m][j].append(10 * np.log10(max(energy, 1e-20) / mix_energy))
                continue
            for m in methods:
                scores[m][j].append(sdr(stems[j], refs[m][j]))
        if k < museval_n:
            # museval refuses silent references and wholly silent estimates: score the stems that play
            # and whose estimate is not all zeros (a gated-away stem has no museval score)
            for m, x in (("gated", est_g), ("ungated", est)):
                active = [j for j in range(len(sources)) if np.any(stems[j]) and np.any(x[j])]
                if len(active) < 1:
                    continue
                res = museval_v4(stems[active], x[active], ds.sample_rate)
                for i, j in enumerate(active):
                    if is_active(stems[j]):
                        for key in ("sdr", "sir", "sar"):
                            bss[f"{m}_{key}"][j].append(float(res[key][i]))
        if progress:
            print(f"\revaluate: {k + 1}/{len(songs)} excerpts", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    report: dict[str, Any] = {"model": name, "set": str(set_dir), "n_excerpts": len(songs), "sources": sources,
                              "gating": _gating_dict(gating), "wiener": wiener,
                              "seconds": round(time.perf_counter() - t0, 1), "sdr": {}, "museval": {},
                              "activity": {}, "silent": {}}
    for m in methods:
        per = {s: (float(np.mean(v)) if v else None) for s, v in zip(sources, scores[m])}
        vals = [v for v in per.values() if v is not None]
        report["sdr"][m] = {"per_source": per, "mean": float(np.mean(vals)) if vals else None,
                            "n": {s: len(v) for s, v in zip(sources, scores[m])}}
    report["sdr"]["silence"] = {"per_source": {s: 0.0 for s in sources}, "mean": 0.0}
    for m, lists in leak.items():
        report["silent"][m] = {s: ({"n": len(v), "median_db": float(np.median(v)),
                                    "share_30db_below": float(np.mean(np.array(v) <= -SILENT_DB))} if v else None)
                               for s, v in zip(sources, lists)}
    if museval_n:
        for key, lists in bss.items():
            # median over frames (inside museval_v4), then median over excerpts
            report["museval"][key] = {s: (float(np.median(v)) if v else None) for s, v in zip(sources, lists)}
    for j, s in enumerate(sources):
        if detection[j]:
            pred = np.concatenate([d[0] for d in detection[j]])
            truth = np.concatenate([d[1] for d in detection[j]])
            p, r, f = precision_recall_f1(pred, truth)
            report["activity"][s] = {"precision": p, "recall": r, "f1": f}
    return report


def markdown(report: dict[str, Any]) -> str:
    sources = report["sources"]
    head = "| estimate | " + " | ".join(sources) + " | mean |\n| --- |" + " --- |" * (len(sources) + 1) + "\n"
    names = {"gated": f"{report['model']}, gated", "ungated": f"{report['model']}, no gating",
             "mixture": "mixture as estimate", "silence": "silence", "oracle_irm": "oracle ideal ratio mask",
             "oracle_ibm": "oracle ideal binary mask"}
    rows = []
    for m in ("gated", "ungated", "silence", "mixture", "oracle_irm", "oracle_ibm"):
        r = report["sdr"][m]
        cells = [("" if r["per_source"][s] is None else f"{r['per_source'][s]:.2f}") for s in sources]
        rows.append(f"| {names[m]} | " + " | ".join(cells) + f" | {r['mean']:.2f} |")
    out = [f"SDR in dB (whole excerpt, mean over excerpts where the stem plays), {report['n_excerpts']} excerpts "
           f"of `{report['set']}`:", "", head + "\n".join(rows)]
    if report["museval"]:
        out += ["", "BSSEval v4 (museval; median over 1-s frames, then over excerpts; frames where the estimate "
                "is all zeros are dropped by museval, which flatters gating):", "",
                "| estimate | metric | " + " | ".join(sources) + " |",
                "| --- | --- |" + " --- |" * len(sources)]
        for key, per in report["museval"].items():
            m, metric = key.rsplit("_", 1)
            out.append(f"| {m} | {metric.upper()} | " + " | ".join("" if per[s] is None else f"{per[s]:.2f}"
                                                                  for s in sources) + " |")
    if report["activity"]:
        g = report["gating"]
        setting = (f"threshold {g['threshold']}, median {g['median_frames']} frames" if "threshold" in g
                   else "per-stem thresholds and median lengths")
        out += ["", f"Activity detection ({setting}) against the energy labels:", "", "| | " + " | ".join(sources) + " |", "| --- |" + " --- |" * len(sources)]
        for key in ("precision", "recall", "f1"):
            out.append(f"| {key} | " + " | ".join(f"{report['activity'][s][key]:.3f}" if s in report["activity"]
                                                  else "" for s in sources) + " |")
    if any(v for per in report.get("silent", {}).values() for v in per.values()):
        out += ["", f"Where a stem does not play: its estimate's energy against the mixture's (median dB, and the share "
                f"of those excerpts at least {SILENT_DB:.0f} dB below the mixture):", "",
                "| estimate | " + " | ".join(sources) + " |", "| --- |" + " --- |" * len(sources)]
        for m, per in report["silent"].items():
            out.append(f"| {m} | " + " | ".join(
                "" if per[s] is None else f"{per[s]['median_db']:.1f} ({per[s]['share_30db_below']:.0%} of {per[s]['n']})"
                for s in sources) + " |")
    return "\n".join(out) + "\n"


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.limit < 0 or args.museval < 0:
        print("stemlab evaluate: --limit and --museval count excerpts: 0 or more", file=sys.stderr)
        return 2
    try:
        try:
            given = {k: v for k, v in (("threshold", args.threshold), ("median_frames", args.median_frames))
                     if v is not None}
            gating = GatingSettings(**given) if given else None  # none given: the model card's own
        except ValueError as exc:
            raise TrainingError(str(exc)) from exc
        report = evaluate(args.model, args.set, gating=gating,
                          museval_n=args.museval, limit=args.limit, progress=not args.quiet,
                          wiener=args.wiener)
    except StemLabError as exc:
        print(f"stemlab evaluate: {exc}", file=sys.stderr)
        return 2
    text = markdown(report)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(text)
    return 0
