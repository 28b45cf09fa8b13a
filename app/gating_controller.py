"""Activity gating for the main window: the edit's gating as the engine's settings, the model card's tuned
stems, and re-gating the stems in the background (app.workers.RegateQueue) when the gating changes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from PySide6.QtCore import QObject

from .edit_model import EditModel, StemGating
from .workers import RegateOutcome

if TYPE_CHECKING:
    from .main_window import MainWindow


class GatingController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        self.showing = False  # building a separation's rows: no re-gating until it is on screen
        self._t0 = time.perf_counter()

    def card_gating(self) -> dict[str, StemGating]:
        """The model card's tuned threshold and median length per stem, where it has them (as `stemlab
        separate` gates by default): a stem the edit has no settings for yet starts there, no longer
        following the master. The app's gating mode stays one for all stems."""
        card = self.w.separator.card if self.w.separator is not None else None
        per = ((card.gating or {}).get("per_source") or {}) if card is not None else {}
        if not per or self.w.result is None:
            return {}
        frame_ms = 1000.0 * self.w.result.stft_config.hop_length / self.w.result.model_sample_rate
        tuned = {}
        for source in self.w.result.sources:
            settings = per.get(source)
            if settings:
                tuned[source] = StemGating(
                    float(settings.get("threshold", 0.5)), int(settings.get("median_frames", 9)) * frame_ms, False
                )
        return tuned

    def spec(self, sources: Optional[list[str]] = None, frame_rate: Optional[float] = None) -> Any:
        """{source: GatingSettings} as the edit sets it (linked stems follow the master): the separation's
        sources at its frame rate, or `sources` at `frame_rate` (a separation about to run)."""
        from engine import GatingSettings

        if sources is None and self.w.result is not None:
            sources, frame_rate = list(self.w.result.sources), self.w.result.frame_rate
        values = self.edit.gate_values(sources or [], frame_rate)
        return {s: GatingSettings(v.mode, v.threshold, v.median_frames) for s, v in values.items()}

    def gated_otherwise(self, result: Any) -> list[str]:
        """The stems whose gating in `result` is not the edit's (a card's tuned stem, a change made while
        the separation ran, a session's setting outside the controls' range)."""
        from engine.gating import settings_for

        spec = self.spec()
        return [s for s in result.sources if settings_for(result.gating, s) != spec[s]]

    def set_stem_threshold(self, source: str, threshold: float) -> None:
        """Give one stem its own threshold (what dragging its threshold line does)."""
        self.edit.set_stem_gating(source, linked=False, threshold=threshold)
        self.edit.seal()

    def request_regate(self, sources: list[str]) -> None:
        if self.w.result is None or not sources or self.showing:
            return
        self._t0 = time.perf_counter()
        self.w.regates.request(self.spec(), sources)

    def _on_regated(self, outcome: RegateOutcome) -> None:
        if self.w.result is None:
            return
        for s, spec in outcome.spectrograms.items():
            i = self.w.result.sources.index(s)
            self.w.stem_specs[i] = spec
            self.w.lanes[i].spec.set_spectrogram(spec, self.w.levels)
        fr = self.w.result.frame_rate
        for i in range(len(self.w.lanes)):
            self.w.lanes[i].set_gate(outcome.gates[i], fr)
            self.update_activity_label(i, outcome.gates[i])
        self.w.teaching.regated(outcome.gates, outcome.sources)
        if outcome.spectrograms:
            self.w.timeline.retile()
        total = (time.perf_counter() - self._t0) * 1000
        self.w.status(
            f"Re-gated {', '.join(outcome.sources)}: audio in {outcome.seconds * 1000:.0f} ms, "
            f"on screen in {total:.0f} ms"
        )
        self.w.regate_done.emit(outcome)

    def update_activity_label(self, i: int, gate: np.ndarray) -> None:
        if i < len(self.w.headers):
            share = float(np.mean(gate)) if gate.size else 0.0
            self.w.headers[i].activity_label.setText(f"on {100 * share:.0f}% of the song")
