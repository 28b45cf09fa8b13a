"""The fuzz harness (tests/hardening/fuzz.py), bounded: a seeded sample of cases over every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening.fuzz import COMMANDS, Sandbox, run_cases

CASES = 32


@pytest.mark.slow
def test_a_seeded_sample_of_fuzzed_commands_keeps_the_rules(tiny_model: Path, tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "sandbox", tiny_model)
    verdicts = run_cases(sandbox, CASES, seed=20261202)
    bad = [(v.case.argv, v.case.changed, v.problems, v.stderr_tail[-300:]) for v in verdicts if not v.ok]
    assert not bad, bad
    assert {v.case.command for v in verdicts} == set(COMMANDS)  # the sample reaches every command
    assert any(v.returncode == 0 for v in verdicts) and any(v.returncode == 2 for v in verdicts)
