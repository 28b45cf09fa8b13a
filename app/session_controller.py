"""Sessions for the main window: save and open them in workers, undo and redo, and the prompt before
unsaved changes are dropped (closing, opening another song or session)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from . import timeline_pictures
from .edit_model import EditModel
from .session import SESSION_SUFFIX
from .workers import SongData, Worker, stem_pictures, ungated_frames

if TYPE_CHECKING:
    from .main_window import MainWindow

SESSION_FILTER = f"StemLab session (*{SESSION_SUFFIX})"
# The answers to "save the changes first?" (MainWindow.ask_unsaved returns one)
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


class SessionController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        self._after_save: Any = None  # what to do once the session asked for by "Save" is saved
        self._save_snapshot: Any = None

    def choose_save_session(self) -> None:
        if self.w.result is None or self.w.song is None:
            self.w.status("Separate a song first; a session keeps the song with its stems.")
            return
        start = str(self.w.session_path or self.w.song.path.with_name(self.w.song.path.stem + SESSION_SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self.w, "Save session", start, SESSION_FILTER)
        if path:
            self.save_session(Path(path))

    def save_session(self, path: Path) -> None:
        from .grid import music_to_json
        from .session import SessionState, save_session

        if self.w.result is None or self.w.song is None or self.w._busy_worker is not None:
            return
        r = self.w.result
        self._save_snapshot = self.edit.snapshot()  # what the file will hold, whatever changes meanwhile
        settings = self.edit.to_session()
        state = SessionState(
            song_name=self.w.song.path.name,
            song_path=str(self.w.song.path),
            sample_rate=r.sample_rate,
            sources=list(r.sources),
            model_name=r.model_name,
            model_sample_rate=r.model_sample_rate,
            n_fft=r.stft_config.n_fft,
            hop_length=r.stft_config.hop_length,
            device=r.device,
            wiener=bool(r.wiener),
            gating=settings["gating"],
            global_gating=settings["global_gating"],
            mixer=settings["mixer"],
            loop=settings["loop"],
            notes=list(r.notes),
            timings={k: float(v) for k, v in r.timings.items()},
            music=music_to_json(self.w.grid.music) if self.w.grid.music is not None else None,
            stem_music={s: m.to_json() for s, m in self.w.grid.stem_music.items()},
            truth_folder=self._truth_folder(),
        )
        w = Worker(
            save_session, path, state, self.w.song.stereo, r, self.w.result_lock, name="saving the session"
        )
        w.signals.finished.connect(self._on_saved)
        w.signals.failed.connect(self._on_save_failed)
        w.signals.done.connect(self.w._busy_done)
        self.w._busy_worker = w
        self.w._set_progress(None)
        self.w.status(f"Saving the session {Path(path).name}…")
        self.w.runner.start(w)

    def _on_saved(self, path: Path) -> None:
        self.w.session_path = Path(path)
        self.edit.mark_saved(self._save_snapshot)
        self.w.settings.add_recent(str(path))
        self.w.songs.fill_recent_list()
        self.w.status(f"Session saved: {path}")
        self.w.session_saved.emit(str(path))
        then, self._after_save = self._after_save, None
        if then is not None:
            QTimer.singleShot(0, then)  # once the save job is done: close, or open what was asked for

    def _on_save_failed(self, message: str) -> None:
        self._after_save = None  # what waited for the save does not happen: the changes are not safe
        self.w._error("Cannot save the session", message)

    def choose_session(self) -> None:
        folder = str(self.w.settings.get("ui/last_folder"))
        path, _ = QFileDialog.getOpenFileName(self.w, "Open a session", folder, SESSION_FILTER)
        if path:
            self.w.open_path(path)

    def open_session(self, path: str) -> None:
        if self.w._busy_worker is not None:
            return
        w = Worker(open_session_job, Path(path), name="opening the session")
        w.signals.finished.connect(self._on_opened)
        w.signals.failed.connect(lambda m: self.w._error("Cannot open the session", m))
        w.signals.done.connect(self.w._busy_done)
        self.w._busy_worker = w
        self.w._set_progress(None)
        self.w.status(f"Opening the session {Path(path).name}…")
        self.w.runner.start(w)

    def _on_opened(self, opened: Any) -> None:
        loaded, song, specs, gates, frames = opened
        if self.w.separation.worker is not None:
            self.w.separation.worker.cancel()
        self.w._show_song(song, music=loaded.music)
        st = loaded.state
        self.w._show_separation(
            loaded.result,
            specs,
            gates,
            state={"gating": st.gating, "global_gating": st.global_gating, "mixer": st.mixer, "loop": st.loop,
                   "stem_music": loaded.stem_music},
            frames=frames,
        )
        self.w.session_path = loaded.json_path
        self.w.settings.add_recent(str(loaded.json_path))
        self.w.songs.fill_recent_list()
        self.w.setWindowTitle(f"{loaded.json_path.name}[*] — StemLab")
        # the teaching view comes back with the true stems it had, while their folder is still there
        gone = ""
        if st.truth_folder:
            if Path(st.truth_folder).is_dir():
                self.w.attach_truth(st.truth_folder)
            else:
                gone = f"; its true stems ({st.truth_folder}) are no longer there"
        self.w.status(
            f"Session {loaded.json_path.name} opened: {st.song_name}, separated by {st.model_name} "
            f"on {st.device}{gone}"
        )
        self.w.session_loaded.emit(str(loaded.json_path))

    def _truth_folder(self) -> Optional[str]:
        """The teaching view's folder of true stems (absolute), None when none is attached."""
        truth = self.w.teaching.truth
        return str(Path(truth.folder).resolve()) if truth is not None else None

    def undo(self) -> None:
        label = self.edit.history.undo_label
        if self.edit.undo():
            self.w.status(f"Undid {label}")

    def redo(self) -> None:
        label = self.edit.history.redo_label
        if self.edit.redo():
            self.w.status(f"Redid {label}")

    def reset_mix(self) -> None:
        if self.edit.separation is None:
            return
        self.edit.reset_mix()
        self.w.status("Mix reset: every stem at 0 dB, centred, neither muted nor soloed (Ctrl+Z brings it back)")

    def on_history(self) -> None:
        h = self.edit.history
        self.w.act_undo.setEnabled(h.undo_label is not None)
        self.w.act_redo.setEnabled(h.redo_label is not None)
        self.w.act_undo.setText(f"&Undo {h.undo_label}" if h.undo_label else "&Undo")
        self.w.act_redo.setText(f"&Redo {h.redo_label}" if h.redo_label else "&Redo")
        self.w.setWindowModified(self.edit.dirty)

    def ask_unsaved_dialog(self) -> str:
        box = QMessageBox(self.w)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Unsaved changes")
        name = self.w.song.path.name if self.w.song is not None else "the song"
        box.setText(f"Save the separation of {name} and your settings as a session first?")
        box.setInformativeText("Your changes are lost unless you save them.")
        box.setStandardButtons(
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: SAVE, QMessageBox.StandardButton.Discard: DISCARD}.get(
            QMessageBox.StandardButton(answer), CANCEL
        )

    def unsaved_settled(self, then: Any) -> bool:
        """True when nothing unsaved would be lost (or the user lets it go). Otherwise False: cancelled,
        or a save was started and `then` runs once it is saved."""
        if not self.edit.dirty or self._after_save is not None:
            return not self.edit.dirty
        answer = self.w.ask_unsaved()
        if answer == DISCARD:
            return True
        if answer == SAVE:
            if self.w.session_path is not None:
                path: Any = self.w.session_path
            else:
                start = str(self.w.song.path.with_name(self.w.song.path.stem + SESSION_SUFFIX)) if self.w.song else ""
                path, _ = QFileDialog.getSaveFileName(self.w, "Save session", start, SESSION_FILTER)
            if path and self.w._busy_worker is None:
                self._after_save = then
                self.save_session(Path(path))
        return False


def open_session_job(path: Path, *, progress: Any = None, cancel: Optional[threading.Event] = None) -> tuple:
    """Worker: read a session, then compute what the timeline draws."""
    from .session import load_session

    t0 = time.perf_counter()
    loaded = load_session(path, progress=progress, cancel=cancel)
    r = loaded.result
    ov = timeline_pictures.overview(loaded.mixture, r.sample_rate)
    mix_spec = timeline_pictures.log_spectrogram(loaded.mixture, r.sample_rate, cancel=cancel)
    frames = ungated_frames(r, cancel=cancel)
    gates = r.gates()
    pics = stem_pictures(r, gates, list(r.sources), frames, cancel)
    # The song's recorded path is only a name to show: exports and saves start in the session's own
    # folder (what the user chose), never wherever a session file says.
    name = Path(loaded.state.song_path).name
    song_path = loaded.json_path.parent / (name if name not in ("", ".", "..") else "song")
    song = SongData(
        song_path,
        loaded.mixture,
        r.sample_rate,
        ov,
        mix_spec,
        [],
        time.perf_counter() - t0,
        timeline_pictures.mono(loaded.mixture),
    )
    return loaded, song, [pics[s] for s in r.sources], gates, frames
