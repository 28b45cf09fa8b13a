"""Meeting a folder one may not write, as root: root ignores permission bits, so commands that must meet
one run without the capabilities that let root do so (or, failing that, as `nobody`)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
# the capabilities by which root reads and writes what permission bits forbid
_CAPS = "-dac_override,-dac_read_search,-fowner"


@functools.lru_cache(maxsize=None)
def unprivileged_prefix() -> tuple[str, ...]:
    """A command prefix under which permission bits hold: () when not root; under root, root without
    CAP_DAC_OVERRIDE (it keeps its uid, so a checkout and Python in a private home still run), else
    `nobody` where nobody can run this Python and import the checkout; else the test is skipped."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a folder root may not write cannot be made")
    probe = [sys.executable, "-c", "import app, engine, pytest"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for prefix in ((setpriv, f"--bounding-set={_CAPS}"),
                   (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")):
        if subprocess.run([*prefix, *probe], env=env, cwd="/", capture_output=True).returncode == 0 \
                and _denies_writes(prefix):
            return prefix
    pytest.skip("root here cannot drop the right to write anywhere, nor run this Python as nobody")


def _denies_writes(prefix: tuple[str, ...]) -> bool:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        locked = Path(d) / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        Path(d).chmod(0o755)
        r = subprocess.run([*prefix, "touch", str(locked / "x")], capture_output=True)
        locked.chmod(0o755)
        return r.returncode != 0
