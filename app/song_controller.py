"""Opening songs for the main window: a song file in a worker (a session file goes to the session
controller), the demo song, the song given on the command line with its true stems, recent files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QListWidgetItem

from engine.resources import demo_song_path

from .edit_model import EditModel
from .session import SESSION_SUFFIX
from .widgets import format_time
from .workers import SongData, Worker, open_song

if TYPE_CHECKING:
    from .main_window import MainWindow

SONG_FILTER = "Audio (*.wav *.flac *.ogg *.oga *.mp3 *.aif *.aiff);;All files (*)"


class SongController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        self.worker: Optional[Worker] = None
        self._pending_open: Optional[str] = None  # the song to open once the model is loaded
        self._first_opened = False
        self._pending_truth: Optional[tuple[str, str]] = None  # (song path, truth folder) from the command line

    def choose_song(self) -> None:
        folder = str(self.w.settings.get("ui/last_folder"))
        path, _ = QFileDialog.getOpenFileName(self.w, "Open a song", folder, SONG_FILTER)
        if path:
            self.open_path(path)

    def open_demo(self) -> None:
        path = demo_song_path()
        if not path.exists():
            self.w._error("No demo song", f"The demo song is not installed (expected {path}).")
            return
        self.open_path(str(path))

    def open_path(self, path: str) -> None:
        """Open a song or a session file (chosen by its name), once unsaved changes are saved or dropped."""
        if not self.w.sessions.unsaved_settled(lambda path=path: self.open_path(path)):
            return
        if str(path).endswith(SESSION_SUFFIX):
            self.w.sessions.open_session(path)
            return
        if self.worker is not None:
            self.worker.cancel()
        self.w.status(f"Opening {Path(path).name}…")
        self.w._set_progress(None)
        w = Worker(open_song, str(path), name="opening the song")
        w.signals.finished.connect(self._on_opened)
        w.signals.failed.connect(lambda msg: self._on_open_failed(msg))
        w.signals.done.connect(lambda w=w: self._open_done(w))
        self.worker = w
        self.w.runner.start(w)

    def _open_done(self, w: Worker) -> None:
        if self.worker is w:
            self.worker = None
            self.w._set_progress(False)

    def _on_open_failed(self, message: str) -> None:
        self.w._error("Cannot open the song", message)

    def _on_opened(self, song: SongData) -> None:
        if self.w.separation.worker is not None:
            self.w.separation.worker.cancel()
        self.w._show_song(song)
        self.w.settings.add_recent(str(song.path))
        self.w.settings.set("ui/last_folder", str(song.path.parent))
        self.fill_recent_list()
        extra = f" ({'; '.join(song.notes)})" if song.notes else ""
        self.w.opened_status = (
            f"Opened {song.path.name}: {format_time(song.duration_s)} at {song.sample_rate} Hz in "
            f"{song.load_s:.2f} s{extra}"
        )
        self.w.status(self.w.opened_status)
        self._attach_truth_on_open(song)
        self.w.song_loaded.emit(song)

    def maybe_open_first(self) -> None:
        if self._first_opened:
            return
        self._first_opened = True
        pending = self._pending_open
        if pending:
            self.open_path(pending)
        elif not self.w.settings.get("ui/first_run_done"):
            self.w.settings.set("ui/first_run_done", True)
            if demo_song_path().exists():
                self.open_path(str(demo_song_path()))

    def open_on_start(self, path: str, truth: Optional[str] = None) -> None:
        """Open this song once the window is up (run_app's command-line argument), with the true
        stems in the folder `truth` if given."""
        self._pending_open = path
        self._first_opened = False
        if truth:
            self._pending_truth = (str(path), str(truth))

    def fill_recent_menu(self) -> None:
        self.w.recent_menu.clear()
        files = self.w.settings.recent_files()
        for f in files:
            a = self.w.recent_menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_path(f))
        if not files:
            a = self.w.recent_menu.addAction("(none)")
            a.setEnabled(False)
        else:
            self.w.recent_menu.addSeparator()
            self.w.recent_menu.addAction(
                "Clear list", lambda: (self.w.settings.clear_recent(), self.fill_recent_list())
            )

    def fill_recent_list(self) -> None:
        self.w.recent_list.clear()
        files = self.w.settings.recent_files()
        for f in files:
            it = QListWidgetItem(f"{Path(f).name}    —    {Path(f).parent}")
            it.setData(Qt.ItemDataRole.UserRole, f)
            self.w.recent_list.addItem(it)
        self.w.recent_list.setVisible(bool(files))
        self.w.recent_title.setVisible(bool(files))

    def _attach_truth_on_open(self, song: SongData) -> None:
        """The command line's --truth for its song, or the demo song's own stems."""
        from .teaching import demo_truth_folder

        pending, self._pending_truth = self._pending_truth, None
        if pending is not None and Path(pending[0]).resolve() == song.path.resolve():
            self.w.attach_truth(pending[1])
            return
        folder = demo_truth_folder(song.path, demo_song_path())
        if folder is not None:
            self.w.attach_truth(str(folder))
