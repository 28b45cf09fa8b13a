"""The fuzz harness over the whole command line, at length: N random cases (tests/hardening/fuzz.py says
what a case is and what it must keep to), counted per command, every failure printed.

    python bench/fuzz.py [--cases 300] [--seed 1] [--write]

--write puts the counts into docs/RELIABILITY.md (section "Fuzzing the command line").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def tiny_model(folder: Path) -> Path:
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import save_model

    torch.manual_seed(0)
    net = IASSUNet(n_bins=128, depth=3, base_width=4, max_width=16, activity_hidden=8, mask_activation="softmax")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.json"
    save_model(net, path, name="tiny-random", sample_rate=44100, n_fft=2048, hop_length=512, trained=False)
    return path


def main() -> int:
    from bench.common import machine
    from tests.hardening.fuzz import Sandbox, run_cases, summary

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stemlab-fuzz-") as d:
        sandbox = Sandbox(Path(d) / "sandbox", tiny_model(Path(d) / "model"))
        verdicts = run_cases(sandbox, args.cases, args.seed, progress=True)
    rows = summary(verdicts)
    lines = ["| command | cases | kept every rule | done (exit 0) | refused (exit 2) | interrupted (exit 130) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for command, r in sorted(rows.items()):
        lines.append(f"| {command} | {r['cases']} | {r['ok']} | {r['exit 0']} | {r['exit 2']} | {r['exit 130']} |")
    total = sum(r["cases"] for r in rows.values())
    ok = sum(r["ok"] for r in rows.values())
    failures = [v for v in verdicts if not v.ok]
    text = (f"## Fuzzing the command line\n\nMachine: {machine()}. {total} cases, seed {args.seed}: {ok} kept every "
            f"rule, {len(failures)} did not.\n\n" + "\n".join(lines))
    if failures:
        text += "\n\nFailures:\n\n" + "\n".join(f"- `{' '.join(v.case.argv)}`: {'; '.join(v.problems)}"
                                                  for v in failures)
    text += f"\n\nCommand: `python bench/fuzz.py --cases {args.cases} --seed {args.seed} --write`"
    print(text)
    if args.write:
        write_reliability_section(text)
    return 0 if not failures else 1


def write_reliability_section(text: str) -> None:
    """Replace (or add) the section in docs/RELIABILITY.md that starts with the same heading."""
    path = ROOT / "docs" / "RELIABILITY.md"
    doc = path.read_text()
    head = text.splitlines()[0]
    if head in doc:
        start = doc.index(head)
        nxt = doc.find("\n## ", start + len(head))
        doc = doc[:start] + text + ("\n" + doc[nxt:] if nxt >= 0 else "\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(doc)


if __name__ == "__main__":
    raise SystemExit(main())
