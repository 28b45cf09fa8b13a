"""Reading the small JSON files StemLab is handed (model cards, training configs, metrics): only from a
regular file, only so many bytes, as a JSON object, or one StemLabError that says what is wrong."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Union

from .errors import StemLabError

MAX_JSON_BYTES = 1 << 20  # these files are a few kB; anything this large is not one


def read_json_object(path: Union[str, os.PathLike], what: str, error: type[StemLabError] = StemLabError,
                     max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The JSON object in `path`; raises `error` naming the file and the problem: missing, not a regular
    file (a folder, a pipe that would block, a device that never ends), too large, NUL bytes, not UTF-8,
    not JSON, nested too deeply, not an object."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise error(f"{p}: cannot read the {what} ({'no such file' if not os.path.lexists(p) else exc.strerror})") \
            from exc
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: not a {what} file (a folder, device or pipe)")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{p}: cannot read the {what} ({exc.strerror or exc})") from exc
    if len(raw) > max_bytes:
        raise error(f"{p.name}: over {max_bytes >> 20} MB, too large to be a {what}")
    if b"\x00" in raw:
        raise error(f"{p.name}: holds NUL bytes; a {what} is a JSON text file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise error(f"{p.name}: cannot read the {what} ({reason})") from exc
    if not isinstance(data, dict):
        raise error(f"{p.name}: a {what} is a JSON object, not a JSON {type(data).__name__}")
    return data
