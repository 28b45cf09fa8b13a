"""Does gating earn its place? Tune the activity threshold and the median-filter length on the validation
set (generated songs), per stem, then report on the public benchmark: SDR gated (default and tuned) and
ungated, activity F1, and how quiet the stems of instruments that do not play stay.

    python bench/gating.py [--model resources/models/iass.json] [--val data/val] [--set data/benchmark] [--write]

The network runs once per excerpt; every gating setting re-gates its activity, as the app does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
MEDIANS = (1, 5, 9, 15, 25, 41)


def separated(model: str, set_dir: str, limit: int = 0) -> tuple[list[str], Any, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """(sources, stft config, [(stems (S, 2, n), ungated estimate (S, 2, n), activity (S, T))])."""
    from engine.gating import GatingSettings
    from training.datasets.dataset import MultitrackDataset
    from training.evaluation.evaluate import load_for_eval

    sep, has_activity = load_for_eval(model)
    assert has_activity, "gating needs a model with an activity head"
    sources = sep.sources
    ds = MultitrackDataset(set_dir)
    out = []
    for e in ds.songs[: limit or None]:
        ex = ds.load_song(e)
        stems = np.stack([ex.stems.get(s, np.zeros_like(ex.mixture)) for s in sources])
        r = sep.separate(stems.sum(axis=0), ds.sample_rate, gating=GatingSettings(mode="none"))
        out.append((stems, r.stems, r.activity))
    return sources, sep.stft_config, out


def stem_sdr(items: list, j: int, config: Any, threshold: float, median: int) -> float:
    """Mean SDR of source j over the excerpts where it plays, gated with these settings."""
    from engine.gating import GatingSettings, gate_curve, gate_envelope
    from engine.metrics import is_active, sdr

    g = GatingSettings(threshold=threshold, median_frames=median)
    vals = []
    for stems, est, prob in items:
        if not is_active(stems[j]):
            continue
        env = gate_envelope(gate_curve(prob[j:j + 1], g), config.hop_length, config.n_fft, est.shape[-1])[0]
        vals.append(sdr(stems[j], est[j] * env[None, :]))
    return float(np.mean(vals)) if vals else float("nan")


def tune(sources: list[str], config: Any, items: list) -> dict[str, tuple[float, int]]:
    """Per source, the (threshold, median) with the best gated SDR on these excerpts."""
    best = {}
    for j, s in enumerate(sources):
        scores = {(t, m): stem_sdr(items, j, config, t, m) for t, m in itertools.product(THRESHOLDS, MEDIANS)}
        best[s] = max(scores, key=lambda k: scores[k])
    return best


def main() -> int:
    from engine.gating import GatingSettings
    from training.evaluation.evaluate import evaluate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "iass.json"))
    ap.add_argument("--val", default="data/val")
    ap.add_argument("--set", default="data/benchmark")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--default-report", help="an evaluation JSON of this model on --set with the default gating "
                                             "(`stemlab evaluate --out`), reused instead of evaluating again")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--tuned-out", help="write the tuned gating as a JSON file for `stemlab export-model --gating`")
    args = ap.parse_args()
    sources, config, val_items = separated(args.model, args.val, args.limit)
    tuned = tune(sources, config, val_items)
    print("tuned on validation:", json.dumps(tuned))
    if args.tuned_out:
        Path(args.tuned_out).write_text(json.dumps({
            "per_source": {s: {"mode": "binary", "threshold": t, "median_frames": m} for s, (t, m) in tuned.items()},
            "tuned_on": args.val, "how": "bench/gating.py: per stem, the threshold and median length of the best "
                                         f"mean SDR over thresholds {list(THRESHOLDS)} and lengths {list(MEDIANS)}"},
            indent=2) + "\n")
    spec = {s: GatingSettings(threshold=t, median_frames=m) for s, (t, m) in tuned.items()}
    if args.default_report:
        default = json.loads(Path(args.default_report).read_text())
        if default["set"] != args.set or default["gating"] != {"mode": "binary", "threshold": 0.5, "median_frames": 9}:
            raise SystemExit(f"{args.default_report} is not an evaluation on {args.set} with the default gating")
    else:
        default = evaluate(args.model, args.set, gating=GatingSettings(), progress=False, limit=args.limit)
    tuned_rep = evaluate(args.model, args.set, gating=spec, progress=False, limit=args.limit)  # type: ignore[arg-type]
    rows = [("ungated", default["sdr"]["ungated"]), ("gated, default (0.5, 9 frames)", default["sdr"]["gated"]),
            ("gated, tuned on validation", tuned_rep["sdr"]["gated"])]
    head = "| | " + " | ".join(sources) + " | mean |\n| --- |" + " --- |" * (len(sources) + 1)
    lines = [head]
    for name, r in rows:
        lines.append(f"| SDR {name} | " + " | ".join(f"{r['per_source'][s]:.2f}" if r["per_source"][s] is not None else ""
                                                     for s in sources) + f" | {r['mean']:.2f} |")
    for name, rep in (("default", default), ("tuned", tuned_rep)):
        f1 = [rep["activity"][s]["f1"] for s in sources]
        lines.append(f"| activity F1, {name} | " + " | ".join(f"{v:.3f}" for v in f1) + f" | {np.mean(f1):.3f} |")
    for name, rep in (("ungated", default["silent"]["ungated"]), ("gated, default", default["silent"]["gated"]),
                      ("gated, tuned", tuned_rep["silent"]["gated"])):
        lines.append(f"| silent stems ≥30 dB under the mix, {name} | " + " | ".join(
            "" if rep[s] is None else f"{rep[s]['share_30db_below']:.0%} ({rep[s]['median_db']:.0f} dB)" for s in sources) + " | |")
    lines.append("| tuned setting (threshold, median frames) | " + " | ".join(f"{t}, {m}" for t, m in tuned.values()) + " | |")
    text = (f"## Gating: tuned on validation, reported on the benchmark (issue 11)\n\nModel `{Path(args.model).name}` "
            f"({default['model']}); tuned per stem over thresholds {list(THRESHOLDS)} and median lengths {list(MEDIANS)} "
            f"frames on `{args.val}` ({len(val_items)} songs), scored on `{args.set}` ({default['n_excerpts']} excerpts). "
            f"SDR in dB, mean over excerpts where the stem plays; the silent-stem rows count the excerpts where it does not.\n\n"
            + "\n".join(lines) + f"\n\nCommand: `python bench/gating.py --model {args.model} --val {args.val} --set {args.set} --write`")
    print(text)
    if args.write:
        write_section("gating", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
