"""The producer's grid on screen: beat and bar lines on every lane of the timeline, the song's tempo,
metre and key in its info, the loop snapping to bars or beats (Shift held: free), and each stem's tempo
and key in its strip. The arithmetic is in app.grid.

The controller owns the analysis workers (the song's after it opens, the stems' after a separation) and
the View menu's grid settings; the main window tells it what happened and hands it the plots.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QKeySequence, QPainter
from PySide6.QtWidgets import QMenu, QWidget

from . import timeline_pictures
from .errors import MusicAnalysisError
from .grid import (
    SNAP_MODES,
    SongMusic,
    StemMusic,
    analyse_song,
    analyse_stems,
    grid_lines,
    music_text,
    music_tooltip,
    snap_region,
)
from .music_process import MusicProcess
from .settings import Settings
from .workers import JobRunner, Worker

log = logging.getLogger(__name__)

BAR_COLOUR = QColor(255, 255, 255, 150)
BEAT_COLOUR = QColor(255, 255, 255, 70)
FREE_MODIFIER = Qt.KeyboardModifier.ShiftModifier  # held while dragging the loop: no snapping
SNAP_WORDS = {"bars": "&Bars", "beats": "B&eats", "off": "&Off (free)"}


class BeatGrid(pg.GraphicsObject):
    """Vertical bar and beat lines over a plot, chosen for the span on screen at each paint
    (app.grid.grid_lines): thinned when zoomed out, never a solid block."""

    def __init__(self) -> None:
        super().__init__()
        self.beats_s = np.zeros(0)
        self.downbeat = np.zeros(0, dtype=bool)
        self.bar_pen = pg.mkPen(BAR_COLOUR, width=1)
        self.beat_pen = pg.mkPen(BEAT_COLOUR, width=1)
        self.bar_pen.setCosmetic(True)
        self.beat_pen.setCosmetic(True)
        self.last_lines: Any = None  # the GridLines of the latest paint (for tests)

    def set_beats(self, beats_s: np.ndarray, downbeat: np.ndarray) -> None:
        self.beats_s = np.asarray(beats_s, dtype=np.float64)
        self.downbeat = np.asarray(downbeat, dtype=bool)
        self.prepareGeometryChange()
        self.update()

    def lines_for_view(self) -> Any:
        """The GridLines for the view box's current span and width."""
        vb = self.getViewBox()
        if vb is None:
            return grid_lines(np.zeros(0), np.zeros(0, bool), 0.0, 1.0, 0.0)
        (x0, x1), _ = vb.viewRange()
        return grid_lines(self.beats_s, self.downbeat, x0, x1, float(vb.width()))

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's spelling)
        rect = self.viewRect()
        return QRectF() if rect is None or self.beats_s.size == 0 else rect

    def viewRangeChanged(self) -> None:  # noqa: N802 (pyqtgraph's spelling)
        self.prepareGeometryChange()
        self.update()

    def paint(self, painter: QPainter, *args: Any) -> None:
        vb = self.getViewBox()
        if vb is None or self.beats_s.size == 0:
            return
        _, (y0, y1) = vb.viewRange()
        lines = self.lines_for_view()
        self.last_lines = lines
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, times in ((self.beat_pen, lines.beats), (self.bar_pen, lines.bars)):
            if times.size:
                painter.setPen(pen)
                painter.drawLines([QLineF(float(t), y0, float(t), y1) for t in times])


class GridController(QObject):
    """The song's and the stems' music analysis and what the window shows of it."""

    analysed = Signal(object)  # MusicInfo of the open song
    stems_analysed = Signal(object)  # {source: StemMusic}
    failed = Signal(str)

    def __init__(self, runner: JobRunner, lock: threading.Lock, settings: Settings, loop_region: Any,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.runner, self.lock, self.settings = runner, lock, settings
        self.loop_region = loop_region
        self.items: list[BeatGrid] = []
        self._stem_items: list[BeatGrid] = []
        self._extra_items: list[BeatGrid] = []  # on the teaching view's lanes
        self.song: Any = None
        self.music: Any = None  # engine.music.MusicInfo of the open song, once analysed
        self.analysis_s: Optional[float] = None  # how long the song's analysis took (None: from a session)
        self.result: Any = None
        self.stem_music: dict[str, StemMusic] = {}
        self.headers: list[Any] = []
        self.song_label: Any = None  # the master strip's label for the song's music
        self._song_worker: Optional[Worker] = None
        self._stem_worker: Optional[Worker] = None
        self._snapping = False
        self._dragged = False
        self.snap_actions: dict[str, QAction] = {}
        self.process = MusicProcess()  # engine.music runs there: librosa never holds this process's GIL
        self.visible = bool(settings.get("view/beat_grid"))
        mode = str(settings.get("view/loop_snap"))
        self.snap_mode = mode if mode in SNAP_MODES else "bars"
        loop_region.sigRegionChanged.connect(self._on_region_changed)
        loop_region.sigRegionChangeFinished.connect(self._on_region_finished)

    # ---- the View menu ---------------------------------------------------------------------------
    def fill_view_menu(self, menu: QMenu, window: QWidget) -> None:
        self.act_grid = QAction("Beat &grid", window)
        self.act_grid.setCheckable(True)
        self.act_grid.setChecked(self.visible)
        self.act_grid.setShortcut(QKeySequence("G"))
        self.act_grid.setToolTip("Show the song's bar and beat lines on the timeline (G)")
        self.act_grid.toggled.connect(self.set_visible)
        window.addAction(self.act_grid)
        menu.addAction(self.act_grid)
        snap = menu.addMenu("&Snap loop to")
        snap.setToolTipsVisible(True)
        group = QActionGroup(window)
        group.setExclusive(True)
        for mode in SNAP_MODES:
            a = QAction(SNAP_WORDS[mode], window)
            a.setCheckable(True)
            a.setChecked(mode == self.snap_mode)
            a.setToolTip("Hold Shift while dragging the loop to place it freely")
            a.triggered.connect(lambda _=False, mode=mode: self.set_snap(mode))
            group.addAction(a)
            snap.addAction(a)
            self.snap_actions[mode] = a

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        self.settings.set("view/beat_grid", self.visible)
        for item in self.items + self._stem_items + self._extra_items:
            item.setVisible(self.visible)

    def set_snap(self, mode: str) -> None:
        if mode not in SNAP_MODES:
            raise ValueError(mode)
        self.snap_mode = mode
        self.settings.set("view/loop_snap", mode)
        if mode in self.snap_actions:
            self.snap_actions[mode].setChecked(True)
        self.snap_loop()

    # ---- plots -----------------------------------------------------------------------------------
    def add_plot(self, plot: Any, z: float = 10.0, stem: bool = False) -> BeatGrid:
        """Draw the grid on this plot (a widgets.TrackView); stem plots go with their separation."""
        item = self._make_item(plot, z)
        (self._stem_items if stem else self.items).append(item)
        return item

    def set_extra_plots(self, plots: list[Any]) -> None:
        """The teaching view's lanes now on screen (they replace the previous ones): the grid on them too."""
        self._extra_items = [self._make_item(p, 10.0) for p in plots]

    def _make_item(self, plot: Any, z: float) -> BeatGrid:
        item = BeatGrid()
        item.setZValue(z)
        item.setVisible(self.visible)
        if self.music is not None:
            item.set_beats(self.music.beats_s, self.music.downbeat)
        plot.addItem(item, ignoreBounds=True)
        return item

    def _draw(self) -> None:
        beats = self.music.beats_s if self.music is not None else np.zeros(0)
        down = self.music.downbeat if self.music is not None else np.zeros(0, bool)
        for item in self.items + self._stem_items + self._extra_items:
            item.set_beats(beats, down)

    # ---- events from the window ------------------------------------------------------------------
    def warm_up(self) -> None:
        """Start the analysis process as the window opens: it compiles librosa's beat tracker (about
        3 s) before the first song needs it. If it cannot start, each analysis says so when it fails."""
        try:
            self.process.start()
        except MusicAnalysisError as exc:
            log.warning("%s", exc)

    def close(self) -> None:
        """Stop the analysis process (the window closes; its workers were cancelled first)."""
        self.process.close()

    def set_song(self, song: Any, music: Any = None, label: Any = None) -> None:
        """A new song is shown: analyse it in a worker, unless a session brought its analysis (music)."""
        for w in (self._song_worker, self._stem_worker):
            if w is not None:
                w.cancel()  # obsolete: its result is dropped when it arrives
        self.song, self.music, self.analysis_s = song, music, None
        if label is not None:
            self.song_label = label
        self.clear_separation()
        self._draw()
        if music is not None:
            self._show_info()
            return
        self._set_label("Tempo and key: analysing…", "The song's tempo, beats, bars and key are being measured")
        mono = song.mono if song.mono is not None else timeline_pictures.mono(song.samples)
        w = Worker(analyse_song, self.process, mono, song.sample_rate, name="measuring tempo and key")
        w.signals.finished.connect(lambda out, song=song: self._on_song_analysed(out, song))
        w.signals.failed.connect(lambda msg, song=song: self._on_failed(msg, song))
        w.signals.done.connect(lambda w=w: self._done("_song_worker", w))
        self._song_worker = w
        self.runner.start(w)

    def show_separation(self, result: Any, headers: list[Any], stem_plots: list[list[Any]],
                        stem_music: Optional[dict[str, StemMusic]] = None) -> None:
        """A separation is on screen: the grid on its lanes, and the stems' tempo and key (from the
        session, else measured in a worker)."""
        self.clear_separation()
        self.result, self.headers = result, list(headers)
        for plots in stem_plots:
            for p in plots:
                self.add_plot(p, stem=True)
        if stem_music:
            self.stem_music = dict(stem_music)
            self._show_stems()
            return
        for h in self.headers:
            h.music_label.setText("tempo and key: measuring…")
        if self.song is None:
            return
        w = Worker(analyse_stems, self.process, result, self.song.stereo, self.lock,
                   name="measuring the stems' tempo and key")
        # a weak reference: the connection outlives the job, and must not keep a replaced separation alive
        ref = weakref.ref(result)
        w.signals.finished.connect(lambda out, ref=ref: self._on_stems_analysed(out, ref()))
        w.signals.failed.connect(lambda msg: self.failed.emit(msg))
        w.signals.done.connect(lambda w=w: self._done("_stem_worker", w))
        self._stem_worker = w
        self.runner.start(w)

    def clear_separation(self) -> None:
        if self._stem_worker is not None:
            self._stem_worker.cancel()
        self.result, self.headers, self.stem_music = None, [], {}
        self._stem_items, self._extra_items = [], []  # their plots go with the lanes

    @property
    def busy(self) -> bool:
        return self._song_worker is not None or self._stem_worker is not None

    # ---- the loop ----------------------------------------------------------------------------------
    def free_placement(self) -> bool:
        """True while the modifier that places the loop freely is held."""
        return bool(QGuiApplication.keyboardModifiers() & FREE_MODIFIER)

    def snap_loop(self, free: bool = False) -> None:
        """Put the loop's edges on the grid (as the View menu's snap says)."""
        if self.music is None or self._snapping:
            return
        a, b = self.loop_region.getRegion()
        sa, sb = snap_region(a, b, self.music.beats_s, self.music.downbeat, self.snap_mode, free=free)
        if abs(sa - a) > 1e-9 or abs(sb - b) > 1e-9:
            self._snapping = True
            try:
                self.loop_region.setRegion((sa, sb))
            finally:
                self._snapping = False

    def _dragging(self) -> bool:
        r = self.loop_region
        return bool(getattr(r, "moving", False) or any(getattr(line, "moving", False) for line in r.lines))

    def _on_region_changed(self, *_: Any) -> None:
        # Only what the user drags snaps: a session's loop or the window's own placement stays as set.
        if self._snapping or not self._dragging():
            return
        self._dragged = True
        if not self.free_placement():
            self.snap_loop()

    def _on_region_finished(self, *_: Any) -> None:
        # Dragging the whole region moves it once more as the button is released, without a change
        # signal: snap that last step too.
        if self._snapping or not self._dragged:
            return
        self._dragged = False
        if not self.free_placement():
            self.snap_loop()

    # ---- results -----------------------------------------------------------------------------------
    def _done(self, attr: str, w: Worker) -> None:
        if getattr(self, attr) is w:
            setattr(self, attr, None)

    def _on_song_analysed(self, out: SongMusic, song: Any) -> None:
        if song is not self.song:
            return  # another song was opened meanwhile
        self.music, self.analysis_s = out.info, out.seconds
        self._draw()
        self._show_info()
        self.snap_loop()  # the default region was placed before the beats were known
        self.analysed.emit(out.info)

    def _on_failed(self, message: str, song: Any) -> None:
        if song is self.song:
            self._set_label("Tempo and key: not measured", message)
            self.failed.emit(message)

    def _on_stems_analysed(self, out: dict[str, StemMusic], result: Any) -> None:
        if result is None or result is not self.result:
            return
        self.stem_music = dict(out)
        self._show_stems()
        self.stems_analysed.emit(dict(out))

    def _set_label(self, text: str, tip: str) -> None:
        if self.song_label is not None:
            self.song_label.setText(text)
            self.song_label.setToolTip(tip)

    def _show_info(self) -> None:
        if self.music is not None:
            self._set_label(music_text(self.music), music_tooltip(self.music, self.analysis_s))

    def _show_stems(self) -> None:
        if self.result is None:
            return
        for name, h in zip(self.result.sources, self.headers):
            m = self.stem_music.get(name)
            text = m.text() if m is not None else ""
            h.music_label.setText(text)
            h.music_label.setToolTip(
                f"{name.capitalize()}: {text} (measured on the stem before gating; tempo for drums and "
                "bass, key for every stem but the drums)" if text else ""
            )

    def info_text(self) -> str:
        return self.song_label.text() if self.song_label is not None else ""
