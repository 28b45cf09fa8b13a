"""Measures how late the GUI event loop runs: a precise 10 ms timer records its worst lateness."""

from __future__ import annotations

import time
from typing import Optional

from PySide6.QtCore import QObject, Qt, QTimer


class StallMonitor(QObject):
    """While running, `max_stall_ms` is the longest the event loop was late serving a 10 ms tick."""

    def __init__(self, interval_ms: int = 10, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.max_stall_ms = 0.0
        self.ticks = 0
        self.stalls: list[tuple[float, float]] = []  # (when, ms late) for ticks over 20 ms late

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        self.max_stall_ms = 0.0
        self.ticks = 0
        self.stalls = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        if self._timer.isActive():
            self._tick()
            self._timer.stop()
        return self.max_stall_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        late = (now - self._last) * 1000.0 - self.interval_ms
        self._last = now
        self.ticks += 1
        if late > 20.0 and len(self.stalls) < 1000:
            self.stalls.append((now, late))
        if late > self.max_stall_ms:
            self.max_stall_ms = late
