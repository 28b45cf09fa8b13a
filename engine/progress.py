"""Plain-Python progress reporting and cancellation shared by the CLI, the GUI worker and training."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import SeparationCancelled


@dataclass(frozen=True)
class Progress:
    """One progress report: `done` of `total` units of `stage` ("separate", "render", ...)."""

    stage: str
    done: int
    total: int
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def remaining_s(self) -> Optional[float]:
        """Estimated seconds left, from the rate so far; None until something is done."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return self.elapsed_s * (self.total - self.done) / self.done


ProgressCallback = Callable[[Progress], None]


def check_cancel(cancel: Optional[threading.Event]) -> None:
    """Raise SeparationCancelled if the event is set."""
    if cancel is not None and cancel.is_set():
        raise SeparationCancelled("Cancelled by the user.")
