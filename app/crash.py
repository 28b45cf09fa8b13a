"""What the command line does with a failure nobody foresaw (a bug): one line for the user, and the
details in a crash report to attach to an issue, never a traceback on the terminal.

Reports go to $XDG_CACHE_HOME/stemlab/crash-reports/ (else ~/.cache/...), one file each, written whole
or not at all (engine.audio.write_text_atomic). Running out of memory is not a bug: it is told apart
(engine.errors.is_out_of_memory) and gets its own line and exit 1.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Optional, Sequence

EXIT_SOFTWARE = 70  # sysexits.h EX_SOFTWARE: an internal error
REPORTS = "crash-reports"


def reports_dir() -> Path:
    from engine.resources import user_cache_dir

    return user_cache_dir() / REPORTS


def report_text(exc: BaseException, argv: Sequence[str]) -> str:
    """The report: what ran, on what, and the traceback."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    lines = [
        "StemLab crash report",
        f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"command: stemlab {' '.join(argv)}",
        f"stemlab {installed('stemlab')}, torch {installed('torch')}, numpy {installed('numpy')}",
        f"python {platform.python_version()} on {platform.platform()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "",
        *traceback.format_exception(type(exc), exc, exc.__traceback__),
    ]
    return "\n".join(line.rstrip("\n") for line in lines) + "\n"


def write_report(exc: BaseException, argv: Sequence[str]) -> tuple[Optional[Path], str]:
    """Write the report; (its path, "") or (None, why it could not be written)."""
    from engine.audio import write_text_atomic

    folder = reports_dir()
    path = folder / f"stemlab-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, report_text(exc, argv))
    except Exception as err:  # a report that cannot be written must not hide the failure itself
        return None, f"{type(err).__name__}: {err}"
    return path, ""


def raised_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a Ctrl-C is behind `exc`: C code that meets the KeyboardInterrupt turns it into an error of
    its own (an extension module being imported gives "ImportError: initialization failed", seen by the
    fuzz run in scipy.optimize), with the interrupt as its cause or context. That is an interruption, not
    a bug."""
    seen: set[int] = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def report_unexpected(exc: BaseException, argv: Sequence[str]) -> int:
    """Tell the user in one line, keep the details in a report; the exit code to end with."""
    from engine.errors import is_out_of_memory

    if is_out_of_memory(exc):
        print("stemlab: not enough memory to finish; close other programs, or give it less to do at once "
              "(a shorter song; in training, a smaller batch).", file=sys.stderr)
        return 1
    what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    path, why = write_report(exc, argv)
    where = f"details in {path}" if path else f"no crash report could be written ({why})"
    print(f"stemlab: internal error ({what}); this is a bug in StemLab, {where}. "
          "Please attach it to an issue.", file=sys.stderr)
    return EXIT_SOFTWARE
