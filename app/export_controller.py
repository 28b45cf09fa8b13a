"""Exporting for the main window: the stems and the remix (asked through ExportDialog, confirmed before any
file is replaced, written in a worker) and the teaching report."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QDesktopServices

from .edit_model import EditModel
from .export_dialog import ExportDialog
from .widgets import confirm_replace
from .workers import Worker, export_job

if TYPE_CHECKING:
    from .main_window import MainWindow


class ExportController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel, make_dialog: Optional[Callable[..., Any]] = None) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        # builds the export dialog: (parent, sources, song path, settings) -> an ExportDialog
        self.make_dialog: Callable[..., Any] = make_dialog or ExportDialog

    def show_export_dialog(self) -> None:
        if self.w.result is None or self.w.song is None:
            self.w.status("Separate the song first; then its stems can be exported.")
            return
        dlg = self.make_dialog(self.w, self.w.result.sources, self.w.song.path, self.w.settings)
        if dlg.exec() != ExportDialog.DialogCode.Accepted:
            return
        choice = dlg.choice()
        # beats.csv comes with the stems when the song's tempo and beats are known (engine.export)
        if not confirm_replace(self.w, choice.paths(beats=self.w.grid.music is not None)):
            self.w.status("Export cancelled: nothing was overwritten.")
            return
        self.export(choice)

    def export(self, choice: Any) -> None:
        """Start exporting (the dialog's choice); the caller has confirmed any overwrite."""
        if self.w.result is None or self.w.song is None or self.w._busy_worker is not None:
            return
        self.w.edit_view.push_mixer()
        info = {"input": str(self.w.song.path), "mixer": self.edit.to_session()["mixer"], "exported_by": "StemLab app"}
        w = Worker(
            export_job,
            self.w.result,
            self.w.mixer,
            self.w.result_lock,
            choice.folder,
            choice.stems,
            choice.fmt,
            choice.subtype,
            choice.remix,
            self.w.song.path.stem,
            info,
            music=self.w.grid.music,
            name="export",
        )
        w.signals.progress.connect(
            lambda p: (self.w._set_progress(p.fraction), self.w.status(f"Exporting… {100 * p.fraction:.0f}%"))
        )
        w.signals.finished.connect(self._on_exported)
        w.signals.failed.connect(lambda m: self.w._error("Export failed", m))
        w.signals.cancelled.connect(lambda: self.w.status("Export cancelled; no partial files were left."))
        w.signals.done.connect(self.w._busy_done)
        self.w._busy_worker = w
        self.w._set_progress(0.0)
        self.w.runner.start(w)
        self.w._update_actions()

    def _announce(self, written: list, status: Callable[[Any], str], message: Callable[[Any], str]) -> None:
        """Say in the status line where the files went and, when any were written, offer to open the folder."""
        folder = written[0].parent if written else None
        self.w.status(status(folder))
        if folder is not None:
            self.w.show_message(
                "export",
                "info",
                message(folder),
                action=("Open folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))),
            )

    def _on_exported(self, written: list) -> None:
        n_audio = sum(p.suffix in (".wav", ".flac") for p in written)
        self._announce(written, lambda folder: f"Exported {n_audio} audio files to {folder}",
                       lambda folder: f"Exported {n_audio} audio files to <b>{folder}</b>.")
        self.w.export_finished.emit(written)

    def export_teaching_report(self) -> None:
        if self.w.song is None:
            return
        self.w.teaching.choose_and_export(
            self.w, str(self.w.song.path.parent), self.w.song.path.stem, self.w.gating.spec(), self.w.status
        )

    def on_teaching_report(self, written: list) -> None:
        self._announce(written, lambda folder: f"Teaching report: {len(written)} files written to {folder}",
                       lambda folder: f"Teaching report written to <b>{folder}</b> ({len(written) - 1} PNGs and a CSV).")
