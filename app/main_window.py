"""StemLab's main window: open a song, separate it in the background, see and hear the stems,
reshape them with the mixer and the activity gate, export, save a session.

The window builds the widgets and composes a controller per concern, each reading the edit
(app.edit_model): opening songs (app.song_controller), model loading and separation
(app.separation_controller), gating (app.gating_controller), the transport (app.transport_controller),
the timeline's zoom and tiles (app.timeline_controller), exports (app.export_controller) and sessions
(app.session_controller).
The GUI thread only draws: loading, separating, re-gating, exporting and sessions run as workers
(app.workers) and come back through signals. The engine (and torch) is imported lazily, after the
window is on screen.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.resources import demo_song_path

from . import theme, timeline_pictures
from .about import about_html
from .edit_model import EditModel, SeparationInfo, SongInfo, make_global_gating
from .edit_view import EditView
from .export_controller import ExportController
from .export_dialog import ExportDialog
from .gating_controller import GatingController
from .grid_view import GridController
from .keys import shift_digit
from .mixer import Mixer
from .playback import Player
from .separation_controller import SeparationController
from .session import SESSION_SUFFIX
from .session_controller import CANCEL, DISCARD, SAVE, SESSION_FILTER, SessionController, open_session_job
from .settings import Settings
from .song_controller import SongController
from .stall_monitor import StallMonitor
from .teaching_view import StemRow, TeachingController
from .timeline_controller import TimelineController
from .transport_controller import TransportController
from .widgets import (
    MIX_SPEC_HEIGHT,
    OVERVIEW_HEIGHT,
    SPEC_COLORMAP,
    ElidedLabel,
    LogFreqAxis,
    MasterHeader,
    MessageBar,
    Placeholder,
    SpectrogramView,
    StemLane,
    TimeAxis,
    TrackHeader,
    TrackView,
    format_time,
    make_lane_widget,
    make_playhead,
    overview_curve,
    set_overview,
)
from .workers import (
    JobRunner,
    RegateQueue,
    SongData,
    SpectrogramTiles,
    Worker,
)

log = logging.getLogger(__name__)

# what scripts and older callers import from here, now at home in the controllers
__all__ = ["CANCEL", "DISCARD", "SAVE", "SESSION_FILTER", "MainWindow", "open_session_job"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
# The window first opens centred, at SCREEN_SHARE of the screen's available area (panels excluded)
# but at least PREFERRED_SIZE, and never larger than that area; it cannot be made smaller than
# MINIMUM_SIZE, nor narrower than its toolbar up to the clock (unless the area is smaller still).
PREFERRED_SIZE = QSize(1560, 960)
SCREEN_SHARE = 0.8
MINIMUM_SIZE = QSize(960, 600)


class MainWindow(QMainWindow):
    song_loaded = Signal(object)  # SongData
    separation_finished = Signal(object)  # engine.SeparationResult
    separation_cancelled = Signal()
    regate_done = Signal(object)  # RegateOutcome
    export_finished = Signal(list)
    session_saved = Signal(str)
    session_loaded = Signal(str)
    model_ready = Signal(bool)  # True: a model is loaded
    error_shown = Signal(str, str)  # title, message
    spectrogram_detail_shown = Signal()  # spectrogram tiles of the span on screen are drawn
    job_failed = Signal(str)

    def __init__(
        self,
        settings: Optional[Settings] = None,
        model: Optional[str] = None,
        allow_untrained: bool = False,
        probe_audio: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.model_spec = model or str(self.settings.get("model/path"))
        self.allow_untrained = allow_untrained
        self.setWindowTitle("StemLab")
        self.setAcceptDrops(True)
        self.runner = JobRunner(self)
        self.result_lock = threading.Lock()
        self.mixer = Mixer()
        s = self.settings
        # The edit: the one truth every widget, the audio mixer, sessions and exports read (app.edit_model).
        self.edit = EditModel(
            make_global_gating(s.get("gating/mode"), s.get("gating/threshold"), s.get("gating/median_ms"))
        )
        # A controller per concern; each reads the edit and the widgets built below, the window wires them.
        self.songs = SongController(self, self.edit)
        self.separation = SeparationController(self, self.edit)
        self.gating = GatingController(self, self.edit)
        self.transport = TransportController(self, self.edit)
        self.timeline = TimelineController(self, self.edit)
        # the dialog is looked up here when it opens (tests stand a fake in for app.main_window.ExportDialog)
        self.exports = ExportController(self, self.edit, make_dialog=lambda *a: ExportDialog(*a))
        self.sessions = SessionController(self, self.edit)
        self.regates = RegateQueue(self.runner, self.result_lock, self)
        self.regates.regated.connect(self.gating._on_regated)
        self.regates.failed.connect(lambda m: self._error("Re-gating failed", m))
        # Asked before unsaved changes are dropped (closing, opening another song or session): returns
        # SAVE, DISCARD or CANCEL. Tests replace it; by default it is a dialog.
        self.ask_unsaved: Any = self.sessions.ask_unsaved_dialog
        self.player = Player(self.mixer, int(self.settings.get("playback/blocksize")))
        self.stall = StallMonitor(parent=self)
        self.separator: Any = None
        self.model_error = ""
        self.song: Optional[SongData] = None
        self.result: Any = None
        self.stem_specs: list[timeline_pictures.Spectrogram] = []
        self.headers: list[TrackHeader] = []
        self.lanes: list[StemLane] = []
        self.spec_views: list[SpectrogramView] = []
        self.levels = (-85.0, -10.0)
        self.session_path: Optional[Path] = None
        self.last_stall_ms: Optional[float] = None
        self.last_separation_s: Optional[float] = None
        self.last_show_ms: Optional[float] = None
        self._busy_worker: Optional[Worker] = None  # the one export or session job at a time
        self._probe_audio = probe_audio
        self._build_actions()
        self._build_ui()
        self._build_teaching()
        self._build_grid()
        self._build_edit_view()
        self._build_shortcuts()
        self._restore_settings()
        self.fit_to_screen()
        self._update_actions()
        self.ui_timer = QTimer(self)
        self.ui_timer.setInterval(33)
        self.ui_timer.timeout.connect(self.transport.tick)
        self.ui_timer.start()
        QTimer.singleShot(0, self._after_show)

    # ==== construction ==============================================================================
    def _act(
        self,
        text: str,
        slot: Any,
        shortcut: Any = None,
        tip: str = "",
        checkable: bool = False,
        icon: Optional[QStyle.StandardPixmap] = None,
    ) -> QAction:
        a = QAction(text, self)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            a.setToolTip(f"{tip} ({keys})" if keys else tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda _=False: slot())
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        SP = QStyle.StandardPixmap
        self.act_open = self._act(
            "&Open song…",
            self.songs.choose_song,
            QKeySequence.StandardKey.Open,
            "Open a song (WAV, FLAC, OGG, MP3)",
            icon=SP.SP_DialogOpenButton,
        )
        self.act_demo = self._act("Open &demo song", self.songs.open_demo, None, "Open the bundled demo song")
        self.act_open_session = self._act(
            "Open &session…", self.sessions.choose_session, "Ctrl+Shift+O", "Reopen a saved session instantly"
        )
        self.act_save_session = self._act(
            "&Save session…",
            self.sessions.choose_save_session,
            QKeySequence.StandardKey.Save,
            "Save the song, its stems and your settings",
            icon=SP.SP_DialogSaveButton,
        )
        self.act_export = self._act(
            "&Export…",
            self.exports.show_export_dialog,
            "Ctrl+E",
            "Export stems and the remix as WAV or FLAC",
            icon=SP.SP_DriveHDIcon,
        )
        self.act_attach_truth = self._act(
            "Attach &truth stems…",
            self.choose_truth,
            None,
            "Attach a folder of the song's true stems (<source>.wav/.flac/.ogg) to see and hear how good the stems are",
        )
        self.act_teaching_report = self._act(
            "Export teaching &report…",
            self.exports.export_teaching_report,
            None,
            "Write a PNG per stem (spectrograms, activity lanes, figures) and a CSV of the figures",
        )
        self.act_load_model = self._act(
            "Load &model…", self.choose_model, "Ctrl+M", "Choose a model card (.json) to separate with"
        )
        self.act_quit = self._act("&Quit", self.close, QKeySequence.StandardKey.Quit, "Quit StemLab")
        self.act_undo = self._act(
            "&Undo", self.sessions.undo, QKeySequence.StandardKey.Undo, "Undo the last change of the mix"
        )
        self.act_redo = self._act("&Redo", self.sessions.redo, "Ctrl+Shift+Z", "Redo the change undone last")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_reset_mix = self._act(
            "Reset &mix", self.sessions.reset_mix, None,
            "Every stem's gain, pan, mute and solo, and the master gain, back to the start",
        )
        self.act_separate = self._act(
            "&Separate", self.separation.separate, "Ctrl+R", "Separate the song into stems", icon=SP.SP_MediaSeekForward
        )
        self.act_cancel = self._act(
            "&Cancel", self.cancel_work, "Esc", "Cancel the running job", icon=SP.SP_BrowserStop
        )
        self.act_wiener = self._act(
            "&Wiener refinement (slower)",
            self.separation.on_wiener_toggled,
            None,
            "Refine the stems with a multichannel Wiener filter",
            checkable=True,
        )
        self.act_play = self._act(
            "&Play / Pause", self.transport.toggle_play, "Space", "Play or pause", icon=SP.SP_MediaPlay
        )
        self.act_stop = self._act(
            "S&top", self.transport.stop, "Home", "Stop and go back to the start", icon=SP.SP_MediaStop
        )
        self.act_loop = self._act(
            "&Loop region",
            self.transport.set_looping,
            "L",
            "Loop the highlighted region (drag its edges in the waveform)",
            checkable=True,
        )
        self.act_ab = self._act(
            "&A/B: original mix",
            self.transport.set_ab,
            "B",
            "Switch between your stem mix and the original song",
            checkable=True,
        )
        self.act_fit = self._act("Zoom to &fit", self.timeline.zoom_fit, "F", "Show the whole song")
        self.act_zoom_in = self._act("Zoom &in", lambda: self.timeline.zoom(0.5), "+", "Zoom in around the playhead")
        self.act_zoom_out = self._act("Zoom &out", lambda: self.timeline.zoom(2.0), "-", "Zoom out")
        self.act_keys = self._act(
            "&Keyboard shortcuts", self.show_shortcuts, "F1", "List the keyboard shortcuts"
        )
        self.act_about = self._act(
            "&About StemLab", self.show_about, None, "The model and its measured quality"
        )

        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        m.addAction(self.act_demo)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self.songs.fill_recent_menu)
        m.addSeparator()
        m.addAction(self.act_open_session)
        m.addAction(self.act_save_session)
        m.addAction(self.act_export)
        m.addSeparator()
        m.addAction(self.act_attach_truth)
        m.addAction(self.act_teaching_report)
        m.addSeparator()
        m.addAction(self.act_load_model)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        for a in (self.act_undo, self.act_redo):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_reset_mix)
        m = mb.addMenu("&Separate")
        m.addAction(self.act_separate)
        m.addAction(self.act_cancel)
        m.addAction(self.act_wiener)
        m = mb.addMenu("&Playback")
        for a in (self.act_play, self.act_stop, self.act_loop, self.act_ab):
            m.addAction(a)
        m = mb.addMenu("&View")
        for a in (self.act_fit, self.act_zoom_in, self.act_zoom_out):
            m.addAction(a)
        m.addSeparator()
        self.view_menu = m  # the grid's toggle and snap choice follow (_build_grid)
        m = mb.addMenu("&Help")
        m.addAction(self.act_keys)
        m.addAction(self.act_about)

        tb = QToolBar("Main")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        # Toolbar buttons show short words (the menus keep the full names), so the row fits a
        # 1280-pixel screen with the clock on it.
        for a, word in (
            (self.act_open, "Open"),
            (self.act_save_session, "Save"),
            (self.act_export, "Export"),
            (self.act_separate, "Separate"),
            (self.act_cancel, "Cancel"),
            (self.act_play, "Play"),
            (self.act_stop, "Stop"),
            (self.act_loop, "Loop"),
            (self.act_ab, "A/B"),
        ):
            a.setIconText(word)
        for a in (self.act_open, self.act_save_session, self.act_export):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.act_separate)
        tb.addAction(self.act_cancel)
        tb.addSeparator()
        for a in (self.act_play, self.act_stop, self.act_loop, self.act_ab):
            tb.addAction(a)
        self.clock = QLabel("0:00.0 / 0:00.0")
        self.clock.setObjectName("Clock")
        self.clock.setToolTip("Playhead / song length")
        self.clock.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        tb.addWidget(self.clock)
        # The model label takes the rest of the row and gives way first (cut with "…"): the clock
        # and the transport never go to the overflow menu.
        self.model_label = ElidedLabel("Loading model…")
        self.model_label.setObjectName("Dim")
        tb.addWidget(self.model_label)
        self.toolbar = tb

    def _build_ui(self) -> None:
        central = QWidget()
        self.setCentralWidget(central)
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        self.message_area = QVBoxLayout()
        self.message_area.setSpacing(0)
        root.addLayout(self.message_area)
        self.messages: dict[str, MessageBar] = {}
        self.pages = QStackedWidget()
        root.addWidget(self.pages, 1)
        self.pages.addWidget(self._build_welcome())
        self.pages.addWidget(self._build_editor())

        sb = self.statusBar()
        sb.setFixedHeight(26)
        self.status_text = QLabel("Ready")
        self.opened_status = "Ready"  # what the status said when the song on screen opened
        sb.addWidget(self.status_text, 1)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(240)
        self.progress.setRange(0, 1000)
        # Showing or hiding the bar must not resize the status bar: that would re-lay out and repaint
        # every plot above it while a separation runs.
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)
        sb.addPermanentWidget(self.progress)
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("Dim")
        sb.addPermanentWidget(self.eta_label)
        self.device_label = QLabel("")
        self.device_label.setObjectName("Dim")
        sb.addPermanentWidget(self.device_label)
        self.playback_label = QLabel("")
        self.playback_label.setObjectName("Dim")
        sb.addPermanentWidget(self.playback_label)

    def _build_welcome(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addStretch(1)
        title = QLabel("StemLab")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setStyleSheet("font-size: 30pt; font-weight: bold; color: #e8ecf4;")
        lay.addWidget(title)
        sub = QLabel("Take a song apart into its instruments, reshape it, put it back together.")
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub.setObjectName("Dim")
        lay.addWidget(sub)
        drop = QLabel("Drop a song here  ·  Ctrl+O to open")
        drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        drop.setStyleSheet(
            f"border: 2px dashed {theme.BORDER}; border-radius: 12px; padding: 40px; "
            "font-size: 14pt; color: #9aa3b5; margin: 20px 200px;"
        )
        lay.addWidget(drop)
        row = QHBoxLayout()
        row.addStretch(1)
        b = QPushButton("Open song…")
        b.setObjectName("Big")
        b.clicked.connect(self.songs.choose_song)
        row.addWidget(b)
        self.demo_button = QPushButton("Open the demo song")
        self.demo_button.setObjectName("Big")
        self.demo_button.clicked.connect(self.songs.open_demo)
        row.addWidget(self.demo_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.recent_list = QListWidget()
        self.recent_list.setMaximumWidth(640)
        self.recent_list.setMaximumHeight(170)
        self.recent_list.itemActivated.connect(lambda it: self.songs.open_path(it.data(Qt.ItemDataRole.UserRole)))
        rl = QHBoxLayout()
        rl.addStretch(1)
        col = QVBoxLayout()
        self.recent_title = QLabel("Recent")
        self.recent_title.setObjectName("Dim")
        col.addWidget(self.recent_title)
        col.addWidget(self.recent_list)
        rl.addLayout(col)
        rl.addStretch(1)
        lay.addLayout(rl)
        lay.addStretch(2)
        return page

    def _build_editor(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        top = QHBoxLayout()
        top.setSpacing(0)
        self.master = MasterHeader()  # bound to the edit by EditView
        top.addWidget(self.master)
        plots = QVBoxLayout()
        plots.setSpacing(0)
        # waveform overview with the time ruler on top
        self.overview_glw = make_lane_widget()
        self.overview_glw.setFixedHeight(OVERVIEW_HEIGHT)
        self.overview_plot = TrackView(self.overview_glw, 0, OVERVIEW_HEIGHT, top=TimeAxis("top"))
        self.overview_plot.setYRange(-1, 1, padding=0.02)
        self.overview_plot.left.setTicks([[(-1.0, "-1"), (0.0, "0"), (1.0, "1")]])
        self.overview_items = overview_curve(self.overview_plot)
        self.loop_region = pg.LinearRegionItem(
            values=(0, 1), brush=pg.mkBrush(79, 179, 255, 45), pen=pg.mkPen(theme.ACCENT, width=1.5)
        )
        self.loop_region.setZValue(50)
        self.loop_region.setVisible(False)  # EditView moves and shows it as the edit's loop says
        # zoomed in, the waveform is redrawn from the samples of the visible span (debounced)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(60)
        self._detail_timer.timeout.connect(self.timeline.refresh_waveform_detail)
        self.overview_plot.vb.sigXRangeChanged.connect(lambda *_: self._detail_timer.start())
        self.overview_plot.addItem(self.loop_region)
        plots.addWidget(self.overview_glw)
        # the mixture spectrogram with the shared colour bar
        self.mix_glw = make_lane_widget()
        self.mix_glw.setFixedHeight(MIX_SPEC_HEIGHT)
        self.mix_plot = TrackView(self.mix_glw, 0, MIX_SPEC_HEIGHT, left=LogFreqAxis("left"))
        self.mix_spec = SpectrogramView(self.mix_plot)
        self.spec_views = [self.mix_spec]
        label = pg.TextItem("MIX", color=theme.MIX_COLOUR, anchor=(0, 0))
        label.setParentItem(self.mix_plot.getViewBox())
        label.setPos(4, 2)
        self.colorbar = pg.ColorBarItem(
            values=self.levels,
            colorMap=pg.colormap.get(SPEC_COLORMAP),
            width=12,
            interactive=True,
            rounding=1,
            colorMapMenu=False,
            label="dB",
        )
        self.colorbar.getAxis("left").setTextPen(pg.mkPen(theme.TEXT_DIM))
        self.colorbar.getAxis("right").setTextPen(pg.mkPen(theme.TEXT_DIM))
        self.mix_glw.addItem(self.colorbar, row=0, col=2)
        self.colorbar.sigLevelsChanged.connect(self.timeline.on_levels_changed)
        plots.addWidget(self.mix_glw)
        top.addLayout(plots, 1)
        self.scroll_spacer = QWidget()
        self.scroll_spacer.setFixedWidth(self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent))
        top.addWidget(self.scroll_spacer)
        v.addLayout(top)
        self.playheads = [make_playhead(self.overview_plot), make_playhead(self.mix_plot)]
        self.base_plots = [self.overview_plot, self.mix_plot]
        for p in self.base_plots:
            self._connect_plot(p)
        self.mix_plot.setXLink(self.overview_plot)

        self.stem_pages = QStackedWidget()
        self.placeholder = Placeholder()
        self.placeholder.button.clicked.connect(self.separation.separate)
        self.stem_pages.addWidget(self.placeholder)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.lanes_host = QWidget()
        self.lanes_layout = QVBoxLayout(self.lanes_host)
        self.lanes_layout.setContentsMargins(0, 0, 0, 0)
        self.lanes_layout.setSpacing(0)
        self.lanes_layout.addStretch(1)
        self.scroll.setWidget(self.lanes_host)
        self.stem_pages.addWidget(self.scroll)
        v.addWidget(self.stem_pages, 1)
        return page

    def _build_teaching(self) -> None:
        """The teaching view (app.teaching_view): true stems beside the estimates, once attached."""
        self.teaching = TeachingController(
            self.runner, self.result_lock, self.overview_plot, self._connect_plot, lambda: self.levels, self,
            ruler=self.overview_glw,
        )
        self.teaching.truth_loaded.connect(self._on_truth_loaded)
        self.teaching.truth_failed.connect(lambda m: self._error("Cannot use the true stems", m))
        self.teaching.parts_built.connect(self._on_teaching_built)
        self.teaching.report_written.connect(self.exports.on_teaching_report)
        self.teaching.report_failed.connect(lambda m: self._error("Cannot write the teaching report", m))

    def _build_grid(self) -> None:
        """The producer's grid (app.grid_view): tempo, beats, bars and key, the grid lines, loop snapping."""
        self.grid = GridController(self.runner, self.result_lock, self.settings, self.loop_region, self)
        self.grid.fill_view_menu(self.view_menu, self)
        self.grid.add_plot(self.overview_plot, z=-5.0)  # behind the waveform
        self.grid.add_plot(self.mix_plot)
        self.grid.analysed.connect(self._on_music_analysed)
        self.grid.failed.connect(lambda m: self.status(f"Tempo and key could not be measured: {m}"))

    def _build_edit_view(self) -> None:
        """The edit's views (app.edit_view): strips, lanes, master, loop and the audio mixer follow it."""
        self.edit_view = EditView(
            self.edit, self.mixer, self.master, self.loop_region, self.act_loop, self.act_ab, self.teaching,
            self.settings, self.gating.request_regate, self,
        )
        self.edit.events.history.connect(self.sessions.on_history)
        self.edit_view.push_all()
        self.sessions.on_history()

    def _on_music_analysed(self, info: Any) -> None:
        """The tempo and key arrive from their worker whenever it finishes: they join the status while it
        still tells of the song's opening, and never replace what came since (a separation and its notes)."""
        took = f" in {self.grid.analysis_s:.1f} s" if self.grid.analysis_s is not None else ""
        shown = self.status_text.text()
        if shown == self.opened_status:
            self.status(f"{shown} · measured {self.master.music_label.text()}{took}")

    def _build_shortcuts(self) -> None:
        for k in range(9):
            QShortcut(QKeySequence(str(k + 1)), self, activated=lambda k=k: self.transport.toggle_solo(k))
        # Shift+digit (mute) is no QShortcut: see event() and app.keys. Sliders and spin boxes keep
        # their arrow keys while focused (app.keys.KeepNavigationKeys); elsewhere they seek.
        QShortcut(QKeySequence("Left"), self, activated=lambda: self.transport.nudge(-5.0))
        QShortcut(QKeySequence("Right"), self, activated=lambda: self.transport.nudge(5.0))

    def _mute_key(self, event: QKeyEvent) -> Optional[int]:
        """The stem index (0-based) a Shift+digit press mutes, or None for any other key."""
        n = shift_digit(event, QGuiApplication.platformName())
        return None if n is None else n - 1

    def event(self, event: QEvent) -> bool:
        # Before a press goes to the shortcuts, Qt offers it to the focused widget as ShortcutOverride,
        # propagating to its parents up to here. Reaching the window means no focused text field
        # wants it as typing: Shift+digit is then this window's shortcut, as a QShortcut would be.
        # Accepting keeps the shortcut map off it (a layout's shifted symbol may be another shortcut).
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            k = self._mute_key(event)
            if k is not None:
                if not event.isAutoRepeat():  # holding the key must not flicker the mute
                    self.transport.toggle_mute(k)
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's spelling)
        if self._mute_key(event) is not None:
            event.accept()  # the press that follows a Shift+digit handled in event(): done already
            return
        super().keyPressEvent(event)

    def _connect_plot(self, plot: TrackView) -> None:
        plot.scene().sigMouseClicked.connect(lambda ev, p=plot: self.transport.on_plot_clicked(p, ev))

    # ==== the window on its screen =====================================================================
    def _available_geometry(self) -> QRect:
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, 1280, 720)

    def _place_initially(self) -> None:
        avail = self._available_geometry()
        share = QSize(int(avail.width() * SCREEN_SHARE), int(avail.height() * SCREEN_SHARE))
        size = PREFERRED_SIZE.expandedTo(share).boundedTo(avail.size())
        self.resize(size)
        self.move(
            avail.left() + (avail.width() - size.width()) // 2, avail.top() + (avail.height() - size.height()) // 2
        )

    def fit_to_screen(self) -> None:
        """Keep the whole window, frame included, on its screen's available area (panels excluded):
        shrink it if it is larger, move it if it sticks out, and bound its minimum size by the area."""
        if self.isMaximized() or self.isFullScreen():
            return
        avail = self._available_geometry()
        frame, inner = self.frameGeometry(), self.geometry()
        # the frame's size is known once the window manager has framed the window (0 before)
        extra_w = max(0, frame.width() - inner.width())
        extra_h = max(0, frame.height() - inner.height())
        room = QSize(max(1, avail.width() - extra_w), max(1, avail.height() - extra_h))
        least = MINIMUM_SIZE.expandedTo(QSize(self._toolbar_width_to_clock(), 0))
        self.setMinimumSize(least.boundedTo(room))
        size = self.size().boundedTo(room)
        if size != self.size():
            self.resize(size)
        frame = self.frameGeometry()
        x = min(max(frame.left(), avail.left()), avail.left() + avail.width() - frame.width())
        y = min(max(frame.top(), avail.top()), avail.top() + avail.height() - frame.height())
        if (x, y) != (frame.left(), frame.top()):
            self.move(x, y)

    def _toolbar_width_to_clock(self) -> int:
        """How wide the toolbar must be to show every item up to the clock (and a sliver of the model
        label), so none of them goes to its overflow menu: QToolBar overflows from the end."""
        tb = self.toolbar
        lay = tb.layout()
        m = lay.contentsMargins()
        width = m.left() + m.right() + self.model_label.minimumSizeHint().width()
        for a in tb.actions():
            w = tb.widgetForAction(a)
            if w is not None and not w.isHidden():
                width += w.sizeHint().width() + lay.spacing()
            if w is self.clock:
                break
        return width

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's spelling)
        super().showEvent(event)
        # once shown, the frame is known: fit again (a restored geometry may be from a larger screen)
        QTimer.singleShot(0, self.fit_to_screen)

    def _restore_settings(self) -> None:
        s = self.settings
        self.act_wiener.setChecked(bool(s.get("separation/wiener")))
        self._place_initially()
        geom = s.get("ui/geometry")
        if geom is not None:
            try:
                self.restoreGeometry(geom)
            except TypeError:
                pass
        self.songs.fill_recent_list()

    # ==== start-up ===================================================================================
    def _after_show(self) -> None:
        if self._probe_audio:
            self.transport.check_playback()
        self.separation.load_model(self.model_spec, startup=True)
        self.grid.warm_up()

    # ==== messages and errors =========================================================================
    def show_message(
        self, key: str, kind: str, text: str, action: Optional[tuple[str, Any]] = None
    ) -> MessageBar:
        self.hide_message(key)
        bar = MessageBar(kind, text, action[0] if action else "")
        if action and bar.action_button is not None:
            bar.action_button.clicked.connect(action[1])
        self.message_area.addWidget(bar)
        self.messages[key] = bar
        return bar

    def hide_message(self, key: str) -> None:
        bar = self.messages.pop(key, None)
        if bar is not None:
            bar.hide()
            bar.deleteLater()

    def _error(self, title: str, message: str) -> None:
        self.status(f"{title}: {message}")
        self.error_shown.emit(title, message)
        QMessageBox.warning(self, title, message)

    def status(self, text: str) -> None:
        self.status_text.setText(text)

    # ==== the song on screen (app.song_controller opens it) ===========================================
    def _show_song(self, song: SongData, music: Any = None) -> None:
        """Show a song; music: its tempo, beats and key from a session (else measured in a worker)."""
        self.player.close()
        self._clear_separation()
        self.song = song
        self.teaching.set_song(song)
        self.timeline.forget_tiles()
        self.session_path = None
        self.setWindowTitle(f"{song.path.name}[*] — StemLab")
        self.master.song_label.setText(
            f"{song.path.name}\n{format_time(song.duration_s)} · {song.sample_rate} Hz"
        )
        self.master.song_label.setToolTip(str(song.path))
        self.mixer.set_tracks(song.stereo, None, song.sample_rate)
        # A new song starts at 0: the position, a seek the old song left pending for the audio
        # callback, the playheads; and its meters start from silence.
        self.mixer.seek(0)
        self.mixer.position = 0
        self.transport.move_playheads(0.0)
        self.transport.reset_meters()
        # a fresh edit: the mix at its defaults, the loop off on the second quarter, no history
        self.edit.open_song(SongInfo(song.path.name, str(song.path), song.sample_rate, song.duration_s))
        set_overview(self.overview_items, song.overview)
        self.timeline.detail_shown = False
        self.levels = timeline_pictures.display_levels(song.spectrogram.image)
        self.colorbar.setLevels(self.levels)
        self.mix_spec.set_spectrogram(song.spectrogram, self.levels)
        self.timeline.relink_colorbar()
        vb = self.overview_plot.getViewBox()
        vb.setLimits(xMin=0.0, xMax=song.duration_s, minXRange=0.05)
        self.timeline.zoom_fit()
        self.grid.set_song(song, music, label=self.master.music_label)
        self.pages.setCurrentIndex(1)
        self.stem_pages.setCurrentIndex(0)
        self.placeholder.text.setText(self.separation.placeholder_text())
        self.transport.update_clock()
        self._update_actions()

    # ==== the separation on screen: its rows of stems (app.separation_controller runs it) ===========
    def cancel_work(self) -> None:
        if self.separation.worker is not None:
            self.separation.worker.cancel()
            self.status("Cancelling the separation…")
        if self._busy_worker is not None:
            self._busy_worker.cancel()
        if self.songs.worker is not None:
            self.songs.worker.cancel()

    def _clear_separation(self) -> None:
        self.regates.clear()
        self.regates.result = None
        self.regates.frames = {}
        self.teaching.clear_separation()
        self.grid.clear_separation()
        self.result = None
        self.stem_specs = []
        self.edit_view.clear_stems()
        for h in self.headers:
            h.setParent(None)
            h.deleteLater()
        for lane in self.lanes:
            lane.widget.setParent(None)
            lane.widget.deleteLater()
        while self.lanes_layout.count() > 1:
            item = self.lanes_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.headers, self.lanes = [], []
        self.spec_views = [self.mix_spec]
        self.timeline.relink_colorbar()
        self.stem_pages.setCurrentIndex(0)

    def _show_separation(
        self,
        result: Any,
        specs: list[timeline_pictures.Spectrogram],
        gates: np.ndarray,
        state: Optional[dict[str, Any]] = None,
        frames: Optional[dict[str, timeline_pictures.BandFrames]] = None,
    ) -> None:
        assert self.song is not None
        was_playing = self.player.playing
        self.player.close()
        self._clear_separation()
        self.result = result
        self.regates.result = result
        self.regates.frames = dict(frames or {})
        self.stem_specs = list(specs)
        fr = result.frame_rate
        self.master.gating.set_frame_rate(fr)
        times = result.frame_times()
        rows = []
        for i, name in enumerate(result.sources):
            colour = theme.stem_colour(name, i)
            header = TrackHeader(i, name, colour, fr)
            lane = StemLane(i, name, colour)
            lane.spec.set_spectrogram(specs[i], self.levels)
            lane.set_activity(times, result.activity[i])
            lane.set_gate(gates[i], fr)
            for p in lane.plots():
                p.setXLink(self.overview_plot)
                self._connect_plot(p)
            row = StemRow(header, lane.widget)
            rows.append(row)
            self.lanes_layout.insertWidget(self.lanes_layout.count() - 1, row)
            self.headers.append(header)
            self.lanes.append(lane)
            self.spec_views.append(lane.spec)
            self.gating.update_activity_label(i, gates[i])
        self.timeline.relink_colorbar()
        self.mixer.set_tracks(self.song.stereo, result.stems, self.song.sample_rate)
        self.teaching.show_separation(result, rows, gates, self.regates.frames, self.mixer)
        self.grid.show_separation(result, self.headers, [lane.plots() for lane in self.lanes],
                                  (state or {}).get("stem_music"))
        # The edit carries its settings over to this separation (or takes the session's) and tells its
        # views: the strips, the lanes and the mixer (whose strips and loop set_tracks reset) follow it.
        self.edit_view.show_stems(self.headers, self.lanes)
        info = SeparationInfo(result.model_name, tuple(result.sources), result.model_sample_rate,
                              result.stft_config.hop_length)
        self.gating.showing = True
        try:
            self.edit.set_separation(info, None if state else self.gating.card_gating())
            if state:
                self.edit.apply_session(state.get("gating"), state.get("global_gating"), state.get("mixer"),
                                        state.get("loop"))
        finally:
            self.gating.showing = False
        self.gating.request_regate(self.gating.gated_otherwise(result))
        self.stem_pages.setCurrentIndex(1)
        self._update_actions()
        self.timeline.retile()
        if was_playing:
            self.player.play()

    # ==== the one export or session job at a time ====================================================
    def _busy_done(self) -> None:
        self._busy_worker = None
        self._set_progress(False)
        self._update_actions()

    # ==== the teaching view (app.teaching_view) ========================================================
    def _truth_sources(self) -> list[str]:
        if self.result is not None:
            return list(self.result.sources)
        if self.separator is not None:
            return list(self.separator.sources)
        from engine.model import DEFAULT_SOURCES

        return list(DEFAULT_SOURCES)

    def choose_truth(self) -> None:
        if self.song is None:
            self.status("Open a song first; true stems belong to a song.")
            return
        start = str(self.song.path.parent)
        folder = QFileDialog.getExistingDirectory(self, "Folder of the song's true stems", start)
        if folder:
            self.attach_truth(folder)

    def attach_truth(self, folder: str) -> None:
        self.status(f"Reading the true stems in {folder}…")
        self.teaching.attach(folder, self._truth_sources())

    def _on_truth_loaded(self, truth: Any) -> None:
        notes = f" ({'; '.join(truth.notes)})" if truth.notes else ""
        later = "" if self.result is not None else " They are shown once the song is separated."
        self.status(f"True stems attached: {truth.describe()}.{later}{notes}")

    def _on_teaching_built(self) -> None:
        self.grid.set_extra_plots([p for lane in self.teaching.lanes.values() for p in lane.plots()])
        self.timeline.relink_colorbar()
        self.edit_view.push_mixer()
        self._update_actions()
        self.timeline.retile()  # zoomed in, the true stems get tiles of the span on screen too

    # ==== models and help =============================================================================
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model card", "", "Model card (*.json)")
        if path:
            self.separation.load_model(path)

    def show_about(self) -> None:
        card = self.separator.card if self.separator is not None else None
        device = self.separator.device_description if self.separator is not None else ""
        QMessageBox.about(self, "About StemLab", about_html(card, device, self.model_error))

    def show_shortcuts(self) -> None:
        rows = [
            ("Space", "Play / pause"),
            ("Home", "Stop, back to start"),
            ("← / →", "Seek 5 s"),
            ("L", "Loop the highlighted region (its edges snap to bars or beats: View ▸ Snap loop to)"),
            ("Shift+drag", "Place the loop's edges freely, off the grid"),
            ("G", "Show or hide the beat grid"),
            ("B", "A/B: original song vs your mix"),
            ("1 … 9", "Solo stem n"),
            ("Shift+1 … 9", "Mute stem n"),
            ("F, +, −", "Zoom to fit, in, out"),
            ("Ctrl+O", "Open a song"),
            ("Ctrl+R", "Separate"),
            ("Esc", "Cancel"),
            ("Ctrl+E", "Export"),
            ("Ctrl+S", "Save session"),
            ("Ctrl+Z", "Undo a change of the mix, the gating or the loop"),
            ("Ctrl+Shift+Z, Ctrl+Y", "Redo"),
            ("Ctrl+Shift+O", "Open session"),
            ("Ctrl+M", "Load a model"),
            ("Mouse", "wheel: zoom · drag: scroll · click: seek · drag the dashed line: threshold"),
        ]
        html = (
            "<table>"
            + "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
            + "</table>"
        )
        QMessageBox.information(self, "Keyboard shortcuts", html)

    # ==== helpers =====================================================================================
    def _set_progress(self, value: Any) -> None:
        """None: busy without a fraction; False: hide; a float: that fraction."""
        if value is False:
            self.progress.setVisible(False)
            self.eta_label.setText("")
            return
        self.progress.setVisible(True)
        if value is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * float(value)))

    def _update_actions(self) -> None:
        has_song = self.song is not None
        separated = self.result is not None
        separating = self.separation.worker is not None
        self.act_separate.setEnabled(has_song and self.separator is not None and not separating)
        self.act_separate.setToolTip(
            "Separate the song into stems (Ctrl+R)"
            if self.separator is not None
            else "No model is loaded: File > Load model…"
        )
        self.placeholder.button.setEnabled(self.act_separate.isEnabled())
        self.act_cancel.setEnabled(separating or self._busy_worker is not None)
        self.act_export.setEnabled(separated and self._busy_worker is None)
        self.act_attach_truth.setEnabled(has_song)
        self.act_teaching_report.setEnabled(self.teaching.active)
        self.act_save_session.setEnabled(separated and self._busy_worker is None)
        self.act_reset_mix.setEnabled(separated)
        for a in (self.act_play, self.act_stop, self.act_loop, self.act_ab, self.act_fit):
            a.setEnabled(has_song)
        self.demo_button.setEnabled(demo_song_path().exists())

    # ==== drag and drop, closing ======================================================================
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(
            u.isLocalFile()
            and (
                u.toLocalFile().lower().endswith(AUDIO_SUFFIXES) or u.toLocalFile().endswith(SESSION_SUFFIX)
            )
            for u in urls
        ):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        for u in event.mimeData().urls():
            if u.isLocalFile():
                self.songs.open_path(u.toLocalFile())
                event.acceptProposedAction()
                return

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop playback, cancel every job and wait for the worker threads to end."""
        self.ui_timer.stop()
        self.stall.stop()
        self.player.close()
        self.regates.clear()
        self.runner.cancel_all()
        ok = self.runner.wait(timeout_ms)
        self.grid.close()
        return ok

    def closeEvent(self, event: Any) -> None:
        if not self.sessions.unsaved_settled(self.close):
            event.ignore()
            return
        self.settings.set("ui/geometry", self.saveGeometry())
        self.settings.sync()
        self.shutdown()
        super().closeEvent(event)

    # ==== the controllers' doors, as tests, scripts and the command line call them =====================
    def open_path(self, path: str) -> None:
        self.songs.open_path(path)

    def open_demo(self) -> None:
        self.songs.open_demo()

    def open_on_start(self, path: str, truth: Optional[str] = None) -> None:
        self.songs.open_on_start(path, truth)

    def _maybe_open_first(self) -> None:
        self.songs.maybe_open_first()

    def load_model(self, spec: str, startup: bool = False, fallback_from: Optional[tuple[str, str]] = None) -> None:
        self.separation.load_model(spec, startup, fallback_from)

    def separate(self) -> None:
        self.separation.separate()

    def gating_spec(self, sources: Optional[list[str]] = None, frame_rate: Optional[float] = None) -> Any:
        return self.gating.spec(sources, frame_rate)

    def set_stem_threshold(self, source: str, threshold: float) -> None:
        self.gating.set_stem_threshold(source, threshold)

    def toggle_play(self) -> None:
        self.transport.toggle_play()

    def stop(self) -> None:
        self.transport.stop()

    def seek(self, seconds: float) -> None:
        self.transport.seek(seconds)

    def nudge(self, seconds: float) -> None:
        self.transport.nudge(seconds)

    def set_looping(self, on: bool) -> None:
        self.transport.set_looping(on)

    def set_ab(self, on: bool) -> None:
        self.transport.set_ab(on)

    def toggle_solo(self, k: int) -> None:
        self.transport.toggle_solo(k)

    def toggle_mute(self, k: int) -> None:
        self.transport.toggle_mute(k)

    def _tick(self) -> None:
        self.transport.tick()

    def _update_play_icon(self) -> None:
        self.transport.update_play_icon()

    def zoom_fit(self) -> None:
        self.timeline.zoom_fit()

    def zoom(self, factor: float) -> None:
        self.timeline.zoom(factor)

    def show_export_dialog(self) -> None:
        self.exports.show_export_dialog()

    def export(self, choice: Any) -> None:
        self.exports.export(choice)

    def export_teaching_report(self) -> None:
        self.exports.export_teaching_report()

    def save_session(self, path: Path) -> None:
        self.sessions.save_session(path)

    def open_session(self, path: str) -> None:
        self.sessions.open_session(path)

    def undo(self) -> None:
        self.sessions.undo()

    def redo(self) -> None:
        self.sessions.redo()

    def reset_mix(self) -> None:
        self.sessions.reset_mix()

    @property
    def _sep_worker(self) -> Optional[Worker]:
        return self.separation.worker

    @property
    def _open_worker(self) -> Optional[Worker]:
        return self.songs.worker

    @property
    def _tile_worker(self) -> Optional[Worker]:
        return self.timeline.worker

    @property
    def _tiles(self) -> Optional[SpectrogramTiles]:
        return self.timeline.tiles

    @property
    def _detail_shown(self) -> bool:
        return self.timeline.detail_shown

    @property
    def _last_tick(self) -> float:
        return self.transport.last_tick

    @_last_tick.setter
    def _last_tick(self, value: float) -> None:
        self.transport.last_tick = value
