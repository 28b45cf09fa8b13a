"""The method comparisons of the IASS papers, at this machine's scale, on the public benchmark set.

Each variant trains for the same wall-clock budget on the same generated data (resumable: rerun to
continue), then is evaluated on the benchmark set with `stemlab evaluate`'s code. The table goes
to docs/BENCHMARKS.md with the commands that reproduce every row, including the ones that lose.

    python bench/compare.py --minutes 30 [--only iass-unit umx] [--eval-only] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402

COMMON = {"train_sets": ["data/train"], "val_set": "data/val", "mask_activation": "softmax", "epoch_steps": 50,
          "max_steps": 1000000, "checkpoint_minutes": 5.0, "num_workers": 1}
VARIANTS: dict[str, dict] = {
    "iass-unit": {"weighting": "unit"},
    "iass-dwa": {"weighting": "dwa"},
    "iass-ebw1": {"weighting": "ebw1", "ebw_scope": "dataset"},
    "iass-ebw2": {"weighting": "ebw2", "ebw_scope": "dataset"},
    "iass-interleaved": {"weighting": "unit", "procedure": "interleaved"},
    "iass-interleaved-accum": {"weighting": "unit", "procedure": "interleaved_accum"},
    "umx": {"model": "umx", "channels_last": False, "activity_weight": 0.0},
}


def config_for(name: str, minutes: float) -> dict:
    cfg = dict(COMMON)
    cfg.update(VARIANTS[name])
    cfg.update({"name": f"cmp-{name}", "out_dir": f"runs/cmp-{name}", "max_minutes": minutes})
    return cfg


def train(name: str, minutes: float) -> None:
    cfg = config_for(name, minutes)
    path = ROOT / "runs" / f"cmp-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    subprocess.run(["bash", str(ROOT / "scripts" / "train.sh"), str(path), "--quiet"], cwd=ROOT, check=True)


def evaluate(name: str, bench_set: str) -> dict:
    out = ROOT / "runs" / f"cmp-{name}" / "eval_benchmark"
    if out.with_suffix(".json").exists():
        return json.loads(out.with_suffix(".json").read_text())
    from training.evaluation.evaluate import evaluate as run_eval

    report = run_eval(str(ROOT / "runs" / f"cmp-{name}" / "best.pt"), bench_set, progress=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def run_info(name: str) -> dict:
    import torch

    state = torch.load(ROOT / "runs" / f"cmp-{name}" / "checkpoint.pt", map_location="cpu", weights_only=True)
    return {"steps": state["step"], "minutes": state["elapsed_s"] / 60}


def table(names: list[str], reports: dict[str, dict], minutes: float, bench_set: str) -> str:
    any_report = next(iter(reports.values()))
    sources = any_report["sources"]
    train_set = COMMON["train_sets"][0]
    hours = json.loads((ROOT / train_set / "manifest.json").read_text()).get("hours")
    lines = [f"Every variant trained from scratch for {minutes:.0f} minutes of wall time on this machine (2 CPU cores) "
             f"on the same generated set (`{train_set}`, {hours:.1f} h of songs), then evaluated on `{bench_set}` ({any_report['n_excerpts']} excerpts of real "
             "composers' songs rendered with a SoundFont never used in training). SDR in dB, whole excerpt, mean "
             "over excerpts where the stem plays; F1 of the activity after threshold 0.5 and a 9-frame median. "
             "The same data seed for every variant (batch k depends only on the seed and k; the interleaved procedures "
             "draw one source's database per batch), batch 8 x 3 s, Adam 1e-3, "
             "an epoch of 50 steps (so DWA's weights move from step 100 on), the best validation epoch's weights.",
             "",
             "| variant | steps | gating | " + " | ".join(sources) + " | mean SDR | mean F1 |",
             "| --- | --- | --- |" + " --- |" * len(sources) + " --- | --- |"]
    for n in names:
        r = reports[n]
        info = run_info(n)
        f1s = [v["f1"] for v in r["activity"].values()]
        f1 = f"{sum(f1s) / len(f1s):.3f}" if f1s else ""
        for m in ("gated", "ungated") if f1s else ("ungated",):
            per = r["sdr"][m]["per_source"]
            cells = " | ".join("" if per[s] is None else f"{per[s]:.2f}" for s in sources)
            lines.append(f"| {n} | {info['steps']} | {'on' if m == 'gated' else 'off'} | {cells} | "
                         f"{r['sdr'][m]['mean']:.2f} | {f1} |")
    for ref, label in (("mixture", "mixture as estimate"), ("oracle_irm", "oracle ideal ratio mask")):
        per = any_report["sdr"][ref]["per_source"]
        lines.append(f"| {label} | | | " + " | ".join("" if per[s] is None else f"{per[s]:.2f}" for s in sources)
                     + f" | {any_report['sdr'][ref]['mean']:.2f} | |")
    lines += ["", f"Command: `python bench/compare.py --minutes {minutes:.0f} --write` (each variant's config is "
              "written to `runs/cmp-<variant>.json`; `bash scripts/train.sh runs/cmp-<variant>.json` resumes one)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS))
    ap.add_argument("--set", default="data/benchmark")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    names = args.only or list(VARIANTS)
    if not args.eval_only:
        for n in names:
            train(n, args.minutes)
    reports = {n: evaluate(n, args.set) for n in names}
    text = table(names, reports, args.minutes, args.set)
    print(text)
    if args.write:
        write_section("compare", "## Method comparisons (issue 6)\n\n" + text)


if __name__ == "__main__":
    main()
