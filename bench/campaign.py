"""The quality campaign's tables (issue 11): checkpoints scored on the public benchmark, on the benchmark's
songs in a training font (the sound gap) and on new generated songs (the song gap), and the long run's
learning curve against training hours. Evaluations are cached beside the checkpoints' names in runs/eval/.

    python bench/campaign.py --model start=runs/start/checkpoint.pt --model v2=runs/snapshots/step-4972.pt \\
        [--sets data/benchmark data/benchmark-fluidr3 data/val] [--section NAME] [--title TEXT] [--write]

Each --model is LABEL=PATH (a checkpoint or a model card; PATH+wiener scores it with the Wiener filter). The first set is the benchmark; the curve
section lists every model with the benchmark's gated mean and the checkpoint's training hours.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402

WIENER = "+wiener"  # LABEL=PATH+wiener: the same model with the multichannel Wiener filter
SET_NAMES = {"data/benchmark": "benchmark (real songs, TimGM6mb)",
             "data/benchmark-fluidr3": "benchmark songs in FluidR3 (a training font)"}


def set_name(set_dir: str) -> str:
    """How a table names a set: the benchmark's two renderings by name, a generated set by its generator version."""
    if set_dir in SET_NAMES:
        return SET_NAMES[set_dir]
    manifest = ROOT / set_dir / "manifest.json"
    version = json.loads(manifest.read_text()).get("generator_version") if manifest.exists() else None
    return f"new generated songs ({set_dir}, generator v{version})" if version else set_dir


def evaluation(label: str, model: str, set_dir: str) -> dict[str, Any]:
    """The report for one model on one set; a PATH ending in `+wiener` is scored with the Wiener filter."""
    from training.evaluation.evaluate import evaluate

    cache = ROOT / "runs" / "eval" / f"{label}--{Path(set_dir).name}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    wiener = model.endswith(WIENER)
    report = evaluate(model.removesuffix(WIENER), set_dir, progress=False, wiener=wiener)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _facts(model: str) -> dict[str, Any]:
    """The step, training hours and CPU-hours a checkpoint (or a model card's training record) states."""
    model = model.removesuffix(WIENER)
    if model.endswith(".json"):
        training = json.loads(Path(model).read_text()).get("training", {})
        return {"step": training.get("steps"), "elapsed_s": (training.get("train_hours_wall") or 0) * 3600 or None,
                "cpu_s": None}
    import torch

    state = torch.load(model, map_location="cpu", weights_only=True)
    return {"step": state.get("step"), "elapsed_s": state.get("elapsed_s"), "cpu_s": state.get("cpu_s") or None}


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def fmt(v: Any) -> str:
    return "" if v is None else f"{v:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--sets", nargs="+", default=["data/benchmark", "data/benchmark-fluidr3", "data/val"])
    ap.add_argument("--section", default="campaign")
    ap.add_argument("--title", default="The quality campaign: where the gap is (issue 11)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    models = [tuple(m.split("=", 1)) for m in args.model]
    reports = {(label, s): evaluation(label, path, s) for label, path in models for s in args.sets}
    sources = next(iter(reports.values()))["sources"]
    lines = [f"## {args.title}", "",
             "SDR in dB (whole excerpt, mean over excerpts where the stem plays), gated / ungated means, "
             "activity F1 mean; `stemlab evaluate`'s code on every set.", "",
             row(["model", "set"] + sources + ["mean gated", "mean ungated", "F1"]),
             row(["---"] * (len(sources) + 5))]
    for label, path in models:
        for s in args.sets:
            r = reports[(label, s)]
            g = r["sdr"]["gated"]
            f1 = [v["f1"] for v in r["activity"].values()]
            lines.append(row([label, set_name(s)] + [fmt(g["per_source"][x]) for x in sources]
                             + [fmt(g["mean"]), fmt(r["sdr"]["ungated"]["mean"]),
                                f"{sum(f1) / len(f1):.2f}" if f1 else ""]))
    for s in args.sets:
        r = reports[(models[0][0], s)]
        for key, name in (("mixture", "mixture as estimate"), ("oracle_irm", "oracle ratio mask")):
            lines.append(row([name, set_name(s)] + [fmt(r["sdr"][key]["per_source"][x]) for x in sources]
                             + [fmt(r["sdr"][key]["mean"]), "", ""]))
    bench = args.sets[0]
    lines += ["", f"By training time (`{bench}`, gated SDR; hours are the run's training wall time on the "
              "machines it ran on; CPU-hours the training process's CPU time as the checkpoint counts it, which for "
              "iass-main starts at step 12960, where the count began):", "",
              row(["model", "step", "training hours", "CPU-hours"] + sources + ["mean"]),
              row(["---"] * (len(sources) + 5))]
    for label, path in models:
        r = reports[(label, bench)]["sdr"]["gated"]
        facts = _facts(path)  # one read of the checkpoint or card
        step, elapsed = facts["step"], facts["elapsed_s"]
        hours = None if elapsed is None else float(elapsed) / 3600
        cpu_h = None if facts["cpu_s"] is None else float(facts["cpu_s"]) / 3600
        lines.append(row([label, "" if step is None else str(int(step)), "" if hours is None else f"{hours:.2f}",
                          "" if cpu_h is None else f"{cpu_h:.2f}"]
                         + [fmt(r["per_source"][x]) for x in sources] + [fmt(r["mean"])]))
    cmd = "python bench/campaign.py " + " ".join(f"--model {m}" for m in args.model) + " --sets " + " ".join(args.sets)
    if args.section != "campaign":
        cmd += f" --section {args.section}"
    if args.title != ap.get_default("title"):
        cmd += f' --title "{args.title}"'

    lines += ["", f"Command: `{cmd} --write`"]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.section, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
