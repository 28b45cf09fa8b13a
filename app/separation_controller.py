"""Model loading and background separation for the main window: the model card in a worker (with the
bundled model standing in for one that fails), separating, its progress and cancel, re-separating."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import QObject

from .edit_model import EditModel
from .workers import SeparationOutcome, Worker, load_separator, separate_song

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

NO_MODEL_HELP = (
    "Train one with <code>stemlab train</code>, or choose a model card with "
    "<b>File ▸ Load model…</b>. You can still open, view and play songs."
)


class SeparationController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        self._song: Any = None  # the song the running separation is of
        self._started = 0.0
        self.worker: Optional[Worker] = None

    def load_model(self, spec: str, startup: bool = False, fallback_from: Optional[tuple[str, str]] = None) -> None:
        """Load a model card in a worker. fallback_from: (the model that failed, why), when this is
        the bundled model standing in for it."""
        self.w.model_label.setText("Loading model…")
        w = Worker(load_separator, spec, allow_untrained=self.w.allow_untrained, name="loading the model")
        w.signals.finished.connect(
            lambda sep, spec=spec, startup=startup, fb=fallback_from: self._on_model_loaded(sep, spec, startup, fb)
        )
        w.signals.failed.connect(
            lambda msg, spec=spec, startup=startup, fb=fallback_from: self._on_model_failed(msg, spec, startup, fb)
        )
        self.w.runner.start(w)

    def _on_model_loaded(
        self, separator: Any, spec: str, startup: bool, fallback_from: Optional[tuple[str, str]] = None
    ) -> None:
        self.w.separator = separator
        self.w.model_error = ""
        card = separator.card
        self.w.model_label.setText(self.model_label_text())
        self.w.device_label.setText("")
        self.w.hide_message("model")
        if not card.trained:
            self.w.show_message(
                "model",
                "warning",
                f"The model <b>{card.name}</b> is untrained (random weights): its stems are noise. "
                "It is for testing the app only.",
            )
        if fallback_from is not None:
            failed, why = fallback_from
            self.w.show_message(
                "model",
                "warning",
                f"<b>{Path(failed).name}</b> could not be loaded: {why} Using the bundled model "
                f"<b>{card.name}</b> instead.",
                action=("Load model…", self.w.choose_model),
            )
        fr = card.sample_rate / card.hop_length
        self.w.master.gating.set_frame_rate(fr)
        if not startup and fallback_from is None:
            self.w.settings.set("model/path", spec)
        self.w.model_ready.emit(True)
        self.w._update_actions()
        self.w.placeholder.text.setText(self.placeholder_text())
        if startup:
            self.w.songs.maybe_open_first()

    def model_label_text(self) -> str:
        if self.w.separator is None:
            return "No model loaded"
        card = self.w.separator.card
        trained = "" if card.trained else " (untrained)"
        return f"Model: {card.name}{trained} · {self.w.separator.device_description}"

    def _on_model_failed(
        self, message: str, spec: str, startup: bool, fallback_from: Optional[tuple[str, str]] = None
    ) -> None:
        if spec != "bundled" and fallback_from is None and (startup or self.w.separator is None):
            # A damaged or missing model must not leave the app without one: try the bundled model.
            self.load_model("bundled", startup=startup, fallback_from=(spec, message))
            return
        if fallback_from is not None:
            failed, why = fallback_from
            message = f"{Path(failed).name} could not be loaded: {why} The bundled model cannot stand in: {message}"
        if startup or fallback_from is not None:
            self.w.separator = None
            self.w.model_error = message
            self.w.model_label.setText("No model loaded")
            help_text = NO_MODEL_HELP
            self.w.show_message(
                "model",
                "warning",
                f"<b>Separation is unavailable.</b> {message} {help_text}",
                action=("Load model…", self.w.choose_model),
            )
            self.w.model_ready.emit(False)
            self.w._update_actions()
            self.w.placeholder.text.setText(self.placeholder_text())
            if startup:
                self.w.songs.maybe_open_first()
        else:
            self.w._error("Cannot load the model", message)
            # the current model stays; the label said "Loading model…" meanwhile
            self.w.model_label.setText(self.model_label_text())

    def placeholder_text(self) -> str:
        if self.w.separator is None:
            return "No model is loaded, so this song cannot be separated yet. " + NO_MODEL_HELP.replace(
                "<code>", ""
            ).replace("</code>", "").replace("<b>", "").replace("</b>", "")
        names = ", ".join(self.w.separator.sources)
        card, device = self.w.separator.card, self.w.separator.device_description
        return f"Split the song into {names} with {card.name} on {device}."

    def wiener(self) -> bool:
        return self.w.act_wiener.isChecked()

    def on_wiener_toggled(self, on: bool) -> None:
        self.w.settings.set("separation/wiener", bool(on))

    def separate(self) -> None:
        if self.w.song is None:
            self.w.status("Open a song first.")
            return
        if self.w.separator is None:
            self.w._error(
                "No model",
                (self.w.model_error or "No model is loaded.")
                + " "
                + "Train one with `stemlab train`, or choose a model card with File > Load model….",
            )
            return
        if self.worker is not None:
            return
        # The edit's settings, for the sources this model has: a re-separation keeps what the user set.
        card = self.w.separator.card
        gating = self.w.gating.spec(self.w.separator.sources, card.sample_rate / card.hop_length)
        w = Worker(
            separate_song,
            self.w.separator,
            self.w.song.stereo,
            self.w.song.sample_rate,
            gating,
            self.wiener(),
            name="separation",
        )
        w.signals.progress.connect(self._on_progress)
        w.signals.finished.connect(self._on_separated)
        w.signals.failed.connect(lambda m: self.w._error("Separation failed", m))
        w.signals.cancelled.connect(self._on_cancelled)
        w.signals.done.connect(self._on_done)
        self.worker = w
        self._song = self.w.song
        self._started = time.perf_counter()
        self.w.status(f"Separating {self.w.song.path.name} on {self.w.separator.device_description}…")
        self.w._set_progress(0.0)
        self.w.placeholder.title.setText("Separating…")
        self.w.stall.start()
        self.w.runner.start(w)
        self.w._update_actions()

    def _on_progress(self, p: Any) -> None:
        weights = {"separate": (0.0, 0.88), "render": (0.88, 0.96), "analyse": (0.96, 1.0)}
        if not self.wiener():
            weights["separate"] = (0.0, 0.95)
            weights["analyse"] = (0.95, 1.0)
        a, b = weights.get(p.stage, (0.0, 1.0))
        frac = a + (b - a) * p.fraction
        self.w._set_progress(frac)
        elapsed = time.perf_counter() - self._started
        if frac > 0.02:
            left = elapsed * (1.0 - frac) / frac
            self.w.eta_label.setText(f"about {left:.0f} s left" if left >= 1 else "almost done")
        stage = {"separate": "Separating", "render": "Refining (Wiener)", "analyse": "Drawing spectrograms"}
        self.w.status(f"{stage.get(p.stage, p.stage)}… {100 * frac:.0f}%")

    def _on_separated(self, outcome: SeparationOutcome) -> None:
        # The stall is measured while the worker runs; building the lanes is timed on its own.
        self.w.last_stall_ms = self.w.stall.stop()
        if self.w.song is not self._song:
            return  # the song changed meanwhile
        r = outcome.result
        self.w.last_separation_s = outcome.seconds
        t0 = time.perf_counter()
        self.w._show_separation(r, outcome.spectrograms, outcome.gates, frames=outcome.frames)
        self.w.last_show_ms = (time.perf_counter() - t0) * 1000.0
        notes = f" Notes: {'; '.join(r.notes)}." if r.notes else ""
        self.w.status(f"Separated into {len(r.sources)} stems in {outcome.seconds:.1f} s on {r.device}.{notes}")
        self.w.device_label.setText(f"Last run: {r.device}")
        self.w.separation_finished.emit(r)

    def _on_cancelled(self) -> None:
        self.w.status("Separation cancelled; nothing was changed.")
        self.w.separation_cancelled.emit()

    def _on_done(self) -> None:
        if self.w.stall.running:
            self.w.last_stall_ms = self.w.stall.stop()
        log.info("longest event-loop stall during the separation: %.1f ms", self.w.last_stall_ms)
        self.worker = None
        self.w._set_progress(False)
        self.w.placeholder.title.setText("Not separated yet")
        self.w._update_actions()
