"""The fuzz harness over the whole command line, at length: N random cases (tests/hardening/fuzz.py says
what a case is and what it must keep to), counted per command, every failure printed.

    python bench/fuzz.py [--cases 300] [--seed 1] [--write]

--write puts the counts into docs/RELIABILITY.md (between its fuzz:begin and fuzz:end markers).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY = ROOT / "docs" / "RELIABILITY.md"
sys.path.insert(0, str(ROOT))


def main() -> int:
    from bench.common import machine, write_section
    from tests.conftest import make_tiny_model
    from tests.hardening.fuzz import Sandbox, run_cases, summary

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stemlab-fuzz-") as d:
        sandbox = Sandbox(Path(d) / "sandbox", make_tiny_model(Path(d) / "model"))
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
        write_section("fuzz", text, RELIABILITY)
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
