"""A fuzz harness over the whole command line: every command of `stemlab`, every option its parser
declares, fed random and malformed values, files, paths and signals, each case judged by the rules
every command keeps (docs/RELIABILITY.md):

- it ends (no hang: TIMEOUT_S), by itself or, when the case sends a signal, with exit 130 or a result;
- exit 0 (done), 1 (some songs failed), 2 (refused) or 130 (interrupted): never a crash or another signal;
- no traceback, and every refusal is one line;
- the files it was given are unchanged, and nothing appears outside the folders it was asked to write.

Each case starts from a quick valid invocation of one command (tiny model, tiny sets, a short song) and
changes one to three things. Options that ask for an amount of work (hours, steps, minutes, songs) only
get values that must be refused, so a case that runs long is a hang, not a big order.

    from tests.hardening.fuzz import Sandbox, run_cases
    tests/hardening/test_fuzz.py runs a bounded, seeded sample; bench/fuzz.py runs many more.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import soundfile as sf

from app.crash import EXIT_SOFTWARE

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 150.0
COMMANDS = ("separate", "evaluate", "export-model", "make-data", "make-benchmark", "make-demo", "train", "gui")
# options whose value is an amount of work: only values that must be refused
WORK = {"--hours", "--max-steps", "--max-minutes", "--limit", "--museval", "--max-songs", "--epoch-steps",
        "--excerpt-s", "--max-song-s", "--workers", "--fly-songs", "--batch-size", "--excerpt-frames",
        "--val-excerpts", "--depth", "--base-width", "--max-width", "--activity-hidden", "--umx-hidden",
        "--n-fft", "--max-bin", "--fly-max-song-s", "--val-seconds", "--partial", "--threads", "--num-workers"}
BAD_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e400", "-1e309", "abc", "", "0x1F", "1,5", "½", "9" * 40,
               "1e-320", "--", "-0", " -3", "None"]
SOME_NUMBERS = ["1", "3", "0.5", "0.99", "7", "12"]
TEXTS = ["", " ", "x" * 300, "../../etc/passwd", "a/b", "-", "--out", "über", "😀", "\t", "con", "nul",
         "name,with,commas", "line\nbreak"]


@dataclass
class Case:
    command: str
    argv: list[str]
    outputs: list[str]            # paths (relative to the sandbox) the command may write under
    signal_after_s: Optional[float] = None
    changed: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    case: Case
    returncode: int
    seconds: float
    problems: list[str]
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return not self.problems


class Sandbox:
    """A folder of inputs, good and bad, that the cases draw from (cwd of every case)."""

    def __init__(self, root: Path, tiny_model: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        from tests.conftest import SR, tone_mix
        from tests.training.conftest import write_set

        inp = root / "in"
        inp.mkdir(exist_ok=True)
        for f in tiny_model.parent.glob(tiny_model.stem + ".*"):
            shutil.copy(f, inp / f.name)
        # marked trained, so that every command accepts it and the cases get past the model to the work
        card = json.loads((inp / f"{tiny_model.stem}.json").read_text())
        card["trained"] = True
        (inp / f"{tiny_model.stem}.json").write_text(json.dumps(card))
        self.model = f"in/{tiny_model.stem}.json"
        sf.write(inp / "song.wav", tone_mix(2.0).T, SR)
        sf.write(inp / "song.flac", tone_mix(1.5, seed=2).T, SR)
        (inp / "empty.wav").write_bytes(b"")
        (inp / "text.wav").write_text("not a song\n" * 20)
        (inp / "notes.json").write_text('{"not": "a config"')
        (inp / "list.json").write_text("[1, 2, 3]")
        (inp / "deep.json").write_text("[" * 5000 + "]" * 5000)
        (inp / "nul.json").write_bytes(b'{"name": "a\x00b"}')
        (inp / "binary.bin").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        (inp / "folder").mkdir(exist_ok=True)
        (inp / "loop_a").unlink(missing_ok=True)
        (inp / "loop_b").unlink(missing_ok=True)
        (inp / "loop_a").symlink_to("loop_b")
        (inp / "loop_b").symlink_to("loop_a")
        if not (inp / "fifo").exists():
            os.mkfifo(inp / "fifo")
        write_set(root / "in" / "set", 2, 3.0, seed=1)
        self.set = "in/set"
        run = inp / "run"
        if not (run / "checkpoint.pt").exists():
            self._make_run(run)
        self.run = "in/run"
        cfg = json.loads((ROOT / "training" / "configs" / "smoke.json").read_text())
        cfg.update(train_sets=[self.set], fly_songs=0, val_set=None, excerpt_frames=64, max_steps=1)
        (inp / "train.json").write_text(json.dumps(cfg))
        self.config = "in/train.json"
        self.files = ["in/song.wav", "in/song.flac", "in/empty.wav", "in/text.wav", "in/notes.json", "in/list.json",
                      "in/deep.json", "in/nul.json", "in/binary.bin", "in/folder", "in/loop_a", "in/missing.wav",
                      "in/fifo", "/dev/null", "/dev/zero", self.model, self.set, self.run, self.config]

    def _make_run(self, run: Path) -> None:
        from training.run.config import TrainConfig
        from training.run.trainer import Trainer

        cfg = TrainConfig(name="fuzz", out_dir=str(run), train_sets=[str(self.root / "in" / "set")], val_set=None,
                          depth=3, base_width=4, max_width=16, activity_hidden=8, excerpt_frames=32,
                          batch_size=2, max_steps=1, num_workers=0, precision="fp32", log_every=1)
        Trainer(cfg, progress=False).run()

    def snapshot(self) -> dict[str, str]:
        """Every file and link in the sandbox: its hash (or link target)."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                p = Path(dirpath) / name
                rel = p.relative_to(self.root).as_posix()
                if p.is_symlink():
                    out[rel] = "->" + os.readlink(p)
                elif p.is_file():
                    out[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
                else:
                    out[rel] = "special"
        return out


def _option_table() -> dict[str, list[tuple[str, Any]]]:
    """Per command: (flag, argparse action) for every option but --help."""
    from app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    table = {}
    for name, p in sub.choices.items():  # type: ignore[attr-defined]
        table[name] = [(a.option_strings[-1], a) for a in p._actions if a.option_strings and "-h" not in a.option_strings]
    return table


def base_case(command: str, sb: Sandbox, out: str) -> Case:
    """A quick, valid invocation of each command, writing under `out`."""
    base = {
        "separate": ["separate", "in/song.wav", "--out", out, "--model", sb.model, "--quiet"],
        "evaluate": ["evaluate", "--model", sb.model, "--set", sb.set, "--limit", "1", "--quiet", "--out", f"{out}/r"],
        "export-model": ["export-model", "--run", sb.run, "--out", f"{out}/m.json", "--checkpoint", "checkpoint.pt"],
        "make-data": ["make-data", "--hours", "0.001", "--out", out, "--max-song-s", "4", "--workers", "1",
                      "--synth-share", "1", "--no-progress"],
        "make-benchmark": ["make-benchmark", "--out", out, "--max-songs", "1", "--excerpt-s", "4", "--no-progress"],
        "make-demo": ["make-demo", "--out", out],
        "train": ["train", "--config", sb.config, "--out-dir", out, "--quiet", "--max-steps", "1"],
        "gui": ["gui"],
    }[command]
    return Case(command, list(base), [out])


def _value_for(flag: str, action: Any, sb: Sandbox, rng: random.Random, out: str) -> list[str]:
    """One fuzzed value (or none, for a switch) for an option."""
    if action.nargs == 0:
        return []
    kind = getattr(action.type, "__name__", "str")
    if action.choices:
        return [rng.choice(list(action.choices) + ["", "x", "CPU", "cuda:9", "../wav"])]
    if kind in ("int", "float") or flag in WORK:
        pool = BAD_NUMBERS if flag in WORK else BAD_NUMBERS + SOME_NUMBERS
        values = [rng.choice(pool)]
    elif flag in ("--out", "--out-dir", "--run", "--set", "--model", "--config", "--metrics", "--val-set",
                  "--train-sets", "--fly-fonts"):
        values = [rng.choice(sb.files + [out, f"{out}/x", "", ".", "in", "/proc/self/mem", f"{out}/../../in/set"])]
    else:
        values = [rng.choice(TEXTS + SOME_NUMBERS + sb.files)]
    if action.nargs in ("*", "+") and rng.random() < 0.3:
        values.append(rng.choice(sb.files))
    return values


def make_case(rng: random.Random, sb: Sandbox, table: dict[str, list[tuple[str, Any]]], index: int) -> Case:
    command = rng.choice(COMMANDS)
    out = f"out/{index}"
    case = base_case(command, sb, out)
    options = table.get(command, [])
    for _ in range(rng.randint(1, 3)):
        what = rng.random()
        if what < 0.65 and options:
            flag, action = rng.choice(options)
            value = _value_for(flag, action, sb, rng, out)
            argv = case.argv
            if flag in argv:  # replace the base's value
                i = argv.index(flag)
                n_old = 0 if action.nargs == 0 else 1
                argv[i:i + 1 + n_old] = [flag, *value]
            else:
                argv += [flag, *value]
            case.changed.append(f"{flag} {' '.join(map(repr, value))}")
            if flag in ("--out", "--out-dir") and value:
                case.outputs.append(os.path.normpath(value[0]))  # asked to write there
                stem = os.path.splitext(os.path.normpath(value[0]))[0]
                if command == "export-model":  # a card's weights lie beside it, named after it
                    case.outputs.append(stem + ".safetensors")
                if command == "evaluate":  # --out R writes R.md and R.json (R's own suffix replaced)
                    case.outputs += [stem + ".md", stem + ".json"]
        elif what < 0.85 and command in ("separate", "gui"):
            song = rng.choice(sb.files + ["in/song.flac", "-", "--", "in/song.wav"])
            pos = 1 if command == "gui" or rng.random() < 0.5 else len(case.argv)
            case.argv.insert(pos, song)
            case.changed.append(f"song {song!r}")
        elif what < 0.95:
            case.signal_after_s = rng.choice([0.5, 1.5, 3.0, 6.0])
            case.changed.append(f"SIGINT after {case.signal_after_s} s")
        else:
            case.argv.append(rng.choice(["--no-such-option", "-x", "--", "---"]))
            case.changed.append("unknown option")
    return case


def judge(case: Case, sb: Sandbox, before: dict[str, str]) -> Verdict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", QT_QPA_PLATFORM="",
               XDG_CACHE_HOME=f"{sb.root}-cache")  # crash reports and caches: beside the sandbox
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(k, None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", *case.argv], cwd=sb.root, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True, preexec_fn=_default_signals)
    problems: list[str] = []
    try:
        if case.signal_after_s is not None:
            try:
                proc.wait(timeout=case.signal_after_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        problems.append(f"hang: still running after {TIMEOUT_S:.0f} s")
    seconds = time.monotonic() - t0
    rc = proc.returncode
    # interrupted: exit 130, or (a Ctrl-C landing while the interpreter shuts down) death by SIGINT itself,
    # which a shell reports as 130 too
    allowed = {0, 1, 2} | ({130, -signal.SIGINT} if case.signal_after_s is not None else set())
    if rc == EXIT_SOFTWARE:
        problems.append("internal error: " + _crash_summary(err))
    elif rc not in allowed and not problems:
        problems.append(f"exit status {rc}")
    if "Traceback (most recent call last)" in err:
        problems.append("traceback")
    errors = [ln for ln in err.splitlines() if ln.startswith(("stemlab", "usage:", "error:"))]
    if rc == 2 and not errors and not problems:
        problems.append("refused without a message")
    after = sb.snapshot()
    for rel, digest in before.items():
        if rel not in after:
            problems.append(f"removed {rel}")
        elif after[rel] != digest and not _under(rel, case.outputs):
            problems.append(f"changed {rel}")
    for rel in after.keys() - before.keys():
        if not _under(rel, case.outputs + ["runs", "data", "out"]):
            problems.append(f"wrote {rel} outside its output folders")
    return Verdict(case, rc if rc is not None else -999, seconds, problems, err[-800:])


def _crash_summary(err: str) -> str:
    """The last lines of the crash report the command named on stderr: where it failed and why, so that
    a failure on a machine nobody can log into (CI) says what it was."""
    m = re.search(r"(/\S+crash-reports/\S+\.txt)", err)
    if not m:
        return "no crash report named"
    try:
        lines = [ln for ln in Path(m.group(1)).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError as exc:
        return f"crash report unreadable ({exc})"
    return " | ".join(ln.strip() for ln in lines[-4:])


def _default_signals() -> None:
    """A harness started in the background by a shell inherits SIGINT ignored, and so would every case:
    Ctrl-C must reach each command as it reaches one run from a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _under(rel: str, folders: list[str]) -> bool:
    return any(f in (".", "") or rel == f or rel.startswith(f.rstrip("/") + "/") for f in folders)


def run_cases(sb: Sandbox, n: int, seed: int, progress: bool = False) -> list[Verdict]:
    rng = random.Random(seed)
    table = _option_table()
    verdicts = []
    for i in range(n):
        case = make_case(rng, sb, table, i)
        before = sb.snapshot()
        v = judge(case, sb, before)
        verdicts.append(v)
        shutil.rmtree(sb.root / "out" / str(i), ignore_errors=True)
        if progress:
            mark = "ok " if v.ok else "BAD"
            print(f"{mark} {i:4d} {v.seconds:6.1f}s rc={v.returncode:4d} {case.command:14s} {'; '.join(case.changed)}"
                  + ("" if v.ok else f"  -> {v.problems}"), flush=True)
    return verdicts


def summary(verdicts: list[Verdict]) -> dict[str, Any]:
    by_command: dict[str, dict[str, int]] = {}
    for v in verdicts:
        row = by_command.setdefault(v.case.command, {"cases": 0, "ok": 0, "exit 0": 0, "exit 2": 0, "exit 130": 0})
        row["cases"] += 1
        row["ok"] += v.ok
        key = f"exit {v.returncode}"
        if key in row:
            row[key] += 1
    return by_command
