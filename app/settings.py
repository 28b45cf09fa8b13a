"""User settings kept between runs (QSettings), with every default in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QSettings

ORGANIZATION = "StemLab"
APPLICATION = "StemLab"
MAX_RECENT = 8

# The one place defaults live. Keys are QSettings paths.
DEFAULTS: dict[str, Any] = {
    "model/path": "bundled",
    "gating/mode": "binary",
    "gating/threshold": 0.5,
    "gating/median_ms": 100.0,
    "separation/wiener": False,
    "export/format": "wav",
    "export/bits": "24",
    "export/folder": "",
    "export/remix": True,
    "playback/blocksize": 1024,
    "recent/files": [],
    "ui/first_run_done": False,
    "ui/geometry": None,
    "ui/last_folder": "",
    "view/beat_grid": True,
    "view/loop_snap": "bars",  # bars, beats or off (app.grid.SNAP_MODES)
}


class Settings:
    """Typed access to QSettings; a value of the wrong type reads as its default."""

    def __init__(self, path: Optional[str] = None) -> None:
        if path is None:
            self._qs = QSettings(ORGANIZATION, APPLICATION)
        else:
            self._qs = QSettings(str(path), QSettings.Format.IniFormat)

    def get(self, key: str) -> Any:
        default = DEFAULTS[key]
        value = self._qs.value(key, default)
        if value is None:
            return default
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return bool(value)
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            try:
                return type(default)(value)
            except (TypeError, ValueError):
                return default
        if isinstance(default, list):
            if isinstance(value, str):
                return [value] if value else []
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else default
        if isinstance(default, str):
            return str(value)
        return value

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self._qs.setValue(key, value)

    def sync(self) -> None:
        self._qs.sync()

    # ---- recent files -------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return [p for p in self.get("recent/files") if Path(p).exists()][:MAX_RECENT]

    def add_recent(self, path: str) -> list[str]:
        path = str(Path(path).resolve())
        files = [p for p in self.get("recent/files") if p != path]
        files.insert(0, path)
        self.set("recent/files", files[:MAX_RECENT])
        return self.recent_files()

    def clear_recent(self) -> None:
        self.set("recent/files", [])
