"""StemLab's main window: open a song, separate it in the background, see and hear the stems,
reshape them with the mixer and the activity gate, export, save a session.

The GUI thread only draws: loading, separating, re-gating, exporting and sessions run as workers
(app.workers) and come back through signals. The engine (and torch) is imported lazily, after the
window is on screen.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRect, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
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
    QListWidgetItem,
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
from .edit_model import EditModel, SeparationInfo, SongInfo, StemGating, make_global_gating
from .edit_view import EditView
from .export_dialog import ExportDialog
from .grid_view import GridController
from .keys import shift_digit
from .mixer import Mixer
from .playback import Player
from .session import SESSION_SUFFIX
from .settings import Settings
from .stall_monitor import StallMonitor
from .teaching_view import StemRow, TeachingController
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
    confirm_replace,
    format_time,
    make_lane_widget,
    make_playhead,
    overview_curve,
    set_overview,
)
from .workers import (
    JobRunner,
    RegateOutcome,
    RegateQueue,
    SeparationOutcome,
    SongData,
    SpectrogramTiles,
    Worker,
    export_job,
    load_separator,
    open_song,
    separate_song,
    spectrogram_tiles,
    stem_pictures,
    ungated_frames,
)

log = logging.getLogger(__name__)

SONG_FILTER = "Audio (*.wav *.flac *.ogg *.oga *.mp3 *.aif *.aiff);;All files (*)"
SESSION_FILTER = f"StemLab session (*{SESSION_SUFFIX})"
DETAIL_MAX_SAMPLES = 4_000_000
# Zoomed in so far that fewer than this many columns of the whole-song spectrogram are on screen, the
# span on screen gets its own spectrogram tile (computed in a worker), when it is at most TILE_MAX_S long.
TILE_MIN_COLUMNS = 1000
TILE_MAX_S = 900.0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
# The window first opens centred, at SCREEN_SHARE of the screen's available area (panels excluded)
# but at least PREFERRED_SIZE, and never larger than that area; it cannot be made smaller than
# MINIMUM_SIZE, nor narrower than its toolbar up to the clock (unless the area is smaller still).
PREFERRED_SIZE = QSize(1560, 960)
SCREEN_SHARE = 0.8
MINIMUM_SIZE = QSize(960, 600)
# The answers to "save the changes first?" (MainWindow.ask_unsaved returns one)
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
NO_MODEL_HELP = (
    "Train one with <code>stemlab train</code>, or choose a model card with "
    "<b>File ▸ Load model…</b>. You can still open, view and play songs."
)




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
        self.regates = RegateQueue(self.runner, self.result_lock, self)
        self.regates.regated.connect(self._on_regated)
        self.regates.failed.connect(lambda m: self._error("Re-gating failed", m))
        self.mixer = Mixer()
        s = self.settings
        # The edit: the one truth every widget, the audio mixer, sessions and exports read (app.edit_model).
        self.edit = EditModel(
            make_global_gating(s.get("gating/mode"), s.get("gating/threshold"), s.get("gating/median_ms"))
        )
        # Asked before unsaved changes are dropped (closing, opening another song or session): returns
        # SAVE, DISCARD or CANCEL. Tests replace it; by default it is a dialog.
        self.ask_unsaved: Any = self._ask_unsaved_dialog
        self._after_save: Any = None  # what to do once the session asked for by "Save" is saved
        self._save_snapshot: Any = None
        self._showing = False  # building a separation's rows: no re-gating until it is on screen
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
        self._open_worker: Optional[Worker] = None
        self._tile_worker: Optional[Worker] = None
        self._tiles: Optional[SpectrogramTiles] = None  # the tiles on screen, None: whole-song images
        self._tile_serial = 0
        self._sep_worker: Optional[Worker] = None
        self._busy_worker: Optional[Worker] = None  # export / session jobs
        self._playback_warned = False
        self._probe_audio = probe_audio
        self._last_tick = time.perf_counter()
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
        self.ui_timer.timeout.connect(self._tick)
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
            self.choose_song,
            QKeySequence.StandardKey.Open,
            "Open a song (WAV, FLAC, OGG, MP3)",
            icon=SP.SP_DialogOpenButton,
        )
        self.act_demo = self._act("Open &demo song", self.open_demo, None, "Open the bundled demo song")
        self.act_open_session = self._act(
            "Open &session…", self.choose_session, "Ctrl+Shift+O", "Reopen a saved session instantly"
        )
        self.act_save_session = self._act(
            "&Save session…",
            self.choose_save_session,
            QKeySequence.StandardKey.Save,
            "Save the song, its stems and your settings",
            icon=SP.SP_DialogSaveButton,
        )
        self.act_export = self._act(
            "&Export…",
            self.show_export_dialog,
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
            self.export_teaching_report,
            None,
            "Write a PNG per stem (spectrograms, activity lanes, figures) and a CSV of the figures",
        )
        self.act_load_model = self._act(
            "Load &model…", self.choose_model, "Ctrl+M", "Choose a model card (.json) to separate with"
        )
        self.act_quit = self._act("&Quit", self.close, QKeySequence.StandardKey.Quit, "Quit StemLab")
        self.act_undo = self._act("&Undo", self.undo, QKeySequence.StandardKey.Undo, "Undo the last change of the mix")
        self.act_redo = self._act("&Redo", self.redo, "Ctrl+Shift+Z", "Redo the change undone last")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_reset_mix = self._act(
            "Reset &mix", self.reset_mix, None,
            "Every stem's gain, pan, mute and solo, and the master gain, back to the start",
        )
        self.act_separate = self._act(
            "&Separate", self.separate, "Ctrl+R", "Separate the song into stems", icon=SP.SP_MediaSeekForward
        )
        self.act_cancel = self._act(
            "&Cancel", self.cancel_work, "Esc", "Cancel the running job", icon=SP.SP_BrowserStop
        )
        self.act_wiener = self._act(
            "&Wiener refinement (slower)",
            self._on_wiener_toggled,
            None,
            "Refine the stems with a multichannel Wiener filter",
            checkable=True,
        )
        self.act_play = self._act(
            "&Play / Pause", self.toggle_play, "Space", "Play or pause", icon=SP.SP_MediaPlay
        )
        self.act_stop = self._act(
            "S&top", self.stop, "Home", "Stop and go back to the start", icon=SP.SP_MediaStop
        )
        self.act_loop = self._act(
            "&Loop region",
            self.set_looping,
            "L",
            "Loop the highlighted region (drag its edges in the waveform)",
            checkable=True,
        )
        self.act_ab = self._act(
            "&A/B: original mix",
            self.set_ab,
            "B",
            "Switch between your stem mix and the original song",
            checkable=True,
        )
        self.act_fit = self._act("Zoom to &fit", self.zoom_fit, "F", "Show the whole song")
        self.act_zoom_in = self._act("Zoom &in", lambda: self.zoom(0.5), "+", "Zoom in around the playhead")
        self.act_zoom_out = self._act("Zoom &out", lambda: self.zoom(2.0), "-", "Zoom out")
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
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
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
        b.clicked.connect(self.choose_song)
        row.addWidget(b)
        self.demo_button = QPushButton("Open the demo song")
        self.demo_button.setObjectName("Big")
        self.demo_button.clicked.connect(self.open_demo)
        row.addWidget(self.demo_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.recent_list = QListWidget()
        self.recent_list.setMaximumWidth(640)
        self.recent_list.setMaximumHeight(170)
        self.recent_list.itemActivated.connect(lambda it: self.open_path(it.data(Qt.ItemDataRole.UserRole)))
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
        self._detail_timer.timeout.connect(self._refresh_waveform_detail)
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
        self.colorbar.sigLevelsChanged.connect(self._on_levels_changed)
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
        self.placeholder.button.clicked.connect(self.separate)
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
        self.teaching.report_written.connect(self._on_teaching_report)
        self.teaching.report_failed.connect(lambda m: self._error("Cannot write the teaching report", m))
        self._pending_truth: Optional[tuple[str, str]] = None  # (song path, truth folder) from the command line

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
            self.settings, self._request_regate, self,
        )
        self.edit.events.history.connect(self._on_history)
        self.edit_view.push_all()
        self._on_history()

    def _on_music_analysed(self, info: Any) -> None:
        took = f" in {self.grid.analysis_s:.1f} s" if self.grid.analysis_s is not None else ""
        self.status(f"Measured {self.master.music_label.text()}{took}")

    def _build_shortcuts(self) -> None:
        for k in range(9):
            QShortcut(QKeySequence(str(k + 1)), self, activated=lambda k=k: self.toggle_solo(k))
        # Shift+digit (mute) is no QShortcut: see event() and app.keys. Sliders and spin boxes keep
        # their arrow keys while focused (app.keys.KeepNavigationKeys); elsewhere they seek.
        QShortcut(QKeySequence("Left"), self, activated=lambda: self.nudge(-5.0))
        QShortcut(QKeySequence("Right"), self, activated=lambda: self.nudge(5.0))

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
                    self.toggle_mute(k)
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's spelling)
        if self._mute_key(event) is not None:
            event.accept()  # the press that follows a Shift+digit handled in event(): done already
            return
        super().keyPressEvent(event)

    def _connect_plot(self, plot: TrackView) -> None:
        plot.scene().sigMouseClicked.connect(lambda ev, p=plot: self._on_plot_clicked(p, ev))

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
        self._fill_recent_list()

    # ==== start-up ===================================================================================
    def _after_show(self) -> None:
        if self._probe_audio:
            self._check_playback()
        self.load_model(self.model_spec, startup=True)
        self.grid.warm_up()

    def _check_playback(self) -> None:
        if not self.player.check():
            self.playback_label.setText("No playback")
            self.playback_label.setToolTip(f"Playback is unavailable: {self.player.reason}")
            if not self._playback_warned:
                self._playback_warned = True
                self.show_message(
                    "playback",
                    "warning",
                    f"Playback is unavailable: {self.player.reason}. You can still separate, view "
                    "and export songs.",
                )
        else:
            self.playback_label.setText(f"Output: {self.player.device_name}")

    def load_model(self, spec: str, startup: bool = False, fallback_from: Optional[tuple[str, str]] = None) -> None:
        """Load a model card in a worker. fallback_from: (the model that failed, why), when this is
        the bundled model standing in for it."""
        self.model_label.setText("Loading model…")
        w = Worker(load_separator, spec, allow_untrained=self.allow_untrained, name="loading the model")
        w.signals.finished.connect(
            lambda sep, spec=spec, startup=startup, fb=fallback_from: self._on_model_loaded(sep, spec, startup, fb)
        )
        w.signals.failed.connect(
            lambda msg, spec=spec, startup=startup, fb=fallback_from: self._on_model_failed(msg, spec, startup, fb)
        )
        self.runner.start(w)

    def _on_model_loaded(
        self, separator: Any, spec: str, startup: bool, fallback_from: Optional[tuple[str, str]] = None
    ) -> None:
        self.separator = separator
        self.model_error = ""
        card = separator.card
        self.model_label.setText(self._model_label_text())
        self.device_label.setText("")
        self.hide_message("model")
        if not card.trained:
            self.show_message(
                "model",
                "warning",
                f"The model <b>{card.name}</b> is untrained (random weights): its stems are noise. "
                "It is for testing the app only.",
            )
        if fallback_from is not None:
            failed, why = fallback_from
            self.show_message(
                "model",
                "warning",
                f"<b>{Path(failed).name}</b> could not be loaded: {why} Using the bundled model "
                f"<b>{card.name}</b> instead.",
                action=("Load model…", self.choose_model),
            )
        fr = card.sample_rate / card.hop_length
        self.master.gating.set_frame_rate(fr)
        if not startup and fallback_from is None:
            self.settings.set("model/path", spec)
        self.model_ready.emit(True)
        self._update_actions()
        self.placeholder.text.setText(self._placeholder_text())
        if startup:
            self._maybe_open_first()

    def _model_label_text(self) -> str:
        if self.separator is None:
            return "No model loaded"
        card = self.separator.card
        trained = "" if card.trained else " (untrained)"
        return f"Model: {card.name}{trained} · {self.separator.device_description}"

    def _on_model_failed(
        self, message: str, spec: str, startup: bool, fallback_from: Optional[tuple[str, str]] = None
    ) -> None:
        if spec != "bundled" and fallback_from is None and (startup or self.separator is None):
            # A damaged or missing model must not leave the app without one: try the bundled model.
            self.load_model("bundled", startup=startup, fallback_from=(spec, message))
            return
        if fallback_from is not None:
            failed, why = fallback_from
            message = f"{Path(failed).name} could not be loaded: {why} The bundled model cannot stand in: {message}"
        if startup or fallback_from is not None:
            self.separator = None
            self.model_error = message
            self.model_label.setText("No model loaded")
            help_text = NO_MODEL_HELP
            self.show_message(
                "model",
                "warning",
                f"<b>Separation is unavailable.</b> {message} {help_text}",
                action=("Load model…", self.choose_model),
            )
            self.model_ready.emit(False)
            self._update_actions()
            self.placeholder.text.setText(self._placeholder_text())
            if startup:
                self._maybe_open_first()
        else:
            self._error("Cannot load the model", message)
            # the current model stays; the label said "Loading model…" meanwhile
            self.model_label.setText(self._model_label_text())

    def _maybe_open_first(self) -> None:
        if getattr(self, "_first_opened", False):
            return
        self._first_opened = True
        pending = getattr(self, "_pending_open", None)
        if pending:
            self.open_path(pending)
        elif not self.settings.get("ui/first_run_done"):
            self.settings.set("ui/first_run_done", True)
            if demo_song_path().exists():
                self.open_path(str(demo_song_path()))

    def open_on_start(self, path: str, truth: Optional[str] = None) -> None:
        """Open this song once the window is up (run_app's command-line argument), with the true
        stems in the folder `truth` if given."""
        self._pending_open = path
        self._first_opened = False
        if truth:
            self._pending_truth = (str(path), str(truth))

    def _placeholder_text(self) -> str:
        if self.separator is None:
            return "No model is loaded, so this song cannot be separated yet. " + NO_MODEL_HELP.replace(
                "<code>", ""
            ).replace("</code>", "").replace("<b>", "").replace("</b>", "")
        names = ", ".join(self.separator.sources)
        card, device = self.separator.card, self.separator.device_description
        return f"Split the song into {names} with {card.name} on {device}."

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

    # ==== opening songs ===============================================================================
    def choose_song(self) -> None:
        folder = str(self.settings.get("ui/last_folder"))
        path, _ = QFileDialog.getOpenFileName(self, "Open a song", folder, SONG_FILTER)
        if path:
            self.open_path(path)

    def open_demo(self) -> None:
        path = demo_song_path()
        if not path.exists():
            self._error("No demo song", f"The demo song is not installed (expected {path}).")
            return
        self.open_path(str(path))

    def open_path(self, path: str) -> None:
        """Open a song or a session file (chosen by its name), once unsaved changes are saved or dropped."""
        if not self._unsaved_settled(lambda path=path: self.open_path(path)):
            return
        if str(path).endswith(SESSION_SUFFIX):
            self.open_session(path)
            return
        if self._open_worker is not None:
            self._open_worker.cancel()
        self.status(f"Opening {Path(path).name}…")
        self._set_progress(None)
        w = Worker(open_song, str(path), name="opening the song")
        w.signals.finished.connect(self._on_song_opened)
        w.signals.failed.connect(lambda msg: self._on_open_failed(msg))
        w.signals.done.connect(lambda w=w: self._open_done(w))
        self._open_worker = w
        self.runner.start(w)

    def _open_done(self, w: Worker) -> None:
        if self._open_worker is w:
            self._open_worker = None
            self._set_progress(False)

    def _on_open_failed(self, message: str) -> None:
        self._error("Cannot open the song", message)

    def _on_song_opened(self, song: SongData) -> None:
        if self._sep_worker is not None:
            self._sep_worker.cancel()
        self._show_song(song)
        self.settings.add_recent(str(song.path))
        self.settings.set("ui/last_folder", str(song.path.parent))
        self._fill_recent_list()
        extra = f" ({'; '.join(song.notes)})" if song.notes else ""
        self.status(
            f"Opened {song.path.name}: {format_time(song.duration_s)} at {song.sample_rate} Hz in "
            f"{song.load_s:.2f} s{extra}"
        )
        self._attach_truth_on_open(song)
        self.song_loaded.emit(song)

    def _show_song(self, song: SongData, music: Any = None) -> None:
        """Show a song; music: its tempo, beats and key from a session (else measured in a worker)."""
        self.player.close()
        self._clear_separation()
        self.song = song
        self.teaching.set_song(song)
        self._forget_tiles()
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
        self._move_playheads(0.0)
        self._reset_meters()
        # a fresh edit: the mix at its defaults, the loop off on the second quarter, no history
        self.edit.open_song(SongInfo(song.path.name, str(song.path), song.sample_rate, song.duration_s))
        set_overview(self.overview_items, song.overview)
        self._detail_shown = False
        self.levels = timeline_pictures.display_levels(song.spectrogram.image)
        self.colorbar.setLevels(self.levels)
        self.mix_spec.set_spectrogram(song.spectrogram, self.levels)
        self._relink_colorbar()
        vb = self.overview_plot.getViewBox()
        vb.setLimits(xMin=0.0, xMax=song.duration_s, minXRange=0.05)
        self.zoom_fit()
        self.grid.set_song(song, music, label=self.master.music_label)
        self.pages.setCurrentIndex(1)
        self.stem_pages.setCurrentIndex(0)
        self.placeholder.text.setText(self._placeholder_text())
        self._update_clock()
        self._update_actions()

    # ==== separation ==================================================================================
    def _wiener(self) -> bool:
        return self.act_wiener.isChecked()

    def _on_wiener_toggled(self, on: bool) -> None:
        self.settings.set("separation/wiener", bool(on))

    def separate(self) -> None:
        if self.song is None:
            self.status("Open a song first.")
            return
        if self.separator is None:
            self._error(
                "No model",
                (self.model_error or "No model is loaded.")
                + " "
                + "Train one with `stemlab train`, or choose a model card with File > Load model….",
            )
            return
        if self._sep_worker is not None:
            return
        # The edit's settings, for the sources this model has: a re-separation keeps what the user set.
        card = self.separator.card
        gating = self.gating_spec(self.separator.sources, card.sample_rate / card.hop_length)
        w = Worker(
            separate_song,
            self.separator,
            self.song.stereo,
            self.song.sample_rate,
            gating,
            self._wiener(),
            name="separation",
        )
        w.signals.progress.connect(self._on_sep_progress)
        w.signals.finished.connect(self._on_separated)
        w.signals.failed.connect(lambda m: self._error("Separation failed", m))
        w.signals.cancelled.connect(self._on_sep_cancelled)
        w.signals.done.connect(self._on_sep_done)
        self._sep_worker = w
        self._sep_song = self.song
        self._sep_started = time.perf_counter()
        self.status(f"Separating {self.song.path.name} on {self.separator.device_description}…")
        self._set_progress(0.0)
        self.placeholder.title.setText("Separating…")
        self.stall.start()
        self.runner.start(w)
        self._update_actions()

    def cancel_work(self) -> None:
        if self._sep_worker is not None:
            self._sep_worker.cancel()
            self.status("Cancelling the separation…")
        if self._busy_worker is not None:
            self._busy_worker.cancel()
        if self._open_worker is not None:
            self._open_worker.cancel()

    def _on_sep_progress(self, p: Any) -> None:
        weights = {"separate": (0.0, 0.88), "render": (0.88, 0.96), "analyse": (0.96, 1.0)}
        if not self._wiener():
            weights["separate"] = (0.0, 0.95)
            weights["analyse"] = (0.95, 1.0)
        a, b = weights.get(p.stage, (0.0, 1.0))
        frac = a + (b - a) * p.fraction
        self._set_progress(frac)
        elapsed = time.perf_counter() - self._sep_started
        if frac > 0.02:
            left = elapsed * (1.0 - frac) / frac
            self.eta_label.setText(f"about {left:.0f} s left" if left >= 1 else "almost done")
        stage = {"separate": "Separating", "render": "Refining (Wiener)", "analyse": "Drawing spectrograms"}
        self.status(f"{stage.get(p.stage, p.stage)}… {100 * frac:.0f}%")

    def _on_separated(self, outcome: SeparationOutcome) -> None:
        # The stall is measured while the worker runs; building the lanes is timed on its own.
        self.last_stall_ms = self.stall.stop()
        if self.song is not getattr(self, "_sep_song", None):
            return  # the song changed meanwhile
        r = outcome.result
        self.last_separation_s = outcome.seconds
        t0 = time.perf_counter()
        self._show_separation(r, outcome.spectrograms, outcome.gates, frames=outcome.frames)
        self.last_show_ms = (time.perf_counter() - t0) * 1000.0
        notes = f" Notes: {'; '.join(r.notes)}." if r.notes else ""
        self.status(f"Separated into {len(r.sources)} stems in {outcome.seconds:.1f} s on {r.device}.{notes}")
        self.device_label.setText(f"Last run: {r.device}")
        self.separation_finished.emit(r)

    def _on_sep_cancelled(self) -> None:
        self.status("Separation cancelled; nothing was changed.")
        self.separation_cancelled.emit()

    def _on_sep_done(self) -> None:
        if self.stall.running:
            self.last_stall_ms = self.stall.stop()
        log.info("longest event-loop stall during the separation: %.1f ms", self.last_stall_ms)
        self._sep_worker = None
        self._set_progress(False)
        self.placeholder.title.setText("Not separated yet")
        self._update_actions()

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
        self._relink_colorbar()
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
            self._update_activity_label(i, gates[i])
        self._relink_colorbar()
        self.mixer.set_tracks(self.song.stereo, result.stems, self.song.sample_rate)
        self.teaching.show_separation(result, rows, gates, self.regates.frames, self.mixer)
        self.grid.show_separation(result, self.headers, [lane.plots() for lane in self.lanes],
                                  (state or {}).get("stem_music"))
        # The edit carries its settings over to this separation (or takes the session's) and tells its
        # views: the strips, the lanes and the mixer (whose strips and loop set_tracks reset) follow it.
        self.edit_view.show_stems(self.headers, self.lanes)
        info = SeparationInfo(result.model_name, tuple(result.sources), result.model_sample_rate,
                              result.stft_config.hop_length)
        self._showing = True
        try:
            self.edit.set_separation(info, None if state else self._card_gating())
            if state:
                self.edit.apply_session(state.get("gating"), state.get("global_gating"), state.get("mixer"),
                                        state.get("loop"))
        finally:
            self._showing = False
        self._request_regate(self._gated_otherwise(result))
        self.stem_pages.setCurrentIndex(1)
        self._update_actions()
        self._retile()
        if was_playing:
            self.player.play()

    def _relink_colorbar(self) -> None:
        self.colorbar.setImageItem([v.image for v in self.spec_views] + self.teaching.images())
        self.colorbar.setLevels(self.levels)

    def _on_levels_changed(self, bar: Any) -> None:
        self.levels = tuple(float(v) for v in bar.levels())  # type: ignore[assignment]

    def _update_activity_label(self, i: int, gate: np.ndarray) -> None:
        if i < len(self.headers):
            share = float(np.mean(gate)) if gate.size else 0.0
            self.headers[i].activity_label.setText(f"on {100 * share:.0f}% of the song")

    # ==== gating ======================================================================================
    def _card_gating(self) -> dict[str, StemGating]:
        """The model card's tuned threshold and median length per stem, where it has them (as `stemlab
        separate` gates by default): a stem the edit has no settings for yet starts there, no longer
        following the master. The app's gating mode stays one for all stems."""
        card = self.separator.card if self.separator is not None else None
        per = ((card.gating or {}).get("per_source") or {}) if card is not None else {}
        if not per or self.result is None:
            return {}
        frame_ms = 1000.0 * self.result.stft_config.hop_length / self.result.model_sample_rate
        tuned = {}
        for source in self.result.sources:
            settings = per.get(source)
            if settings:
                tuned[source] = StemGating(
                    float(settings.get("threshold", 0.5)), int(settings.get("median_frames", 9)) * frame_ms, False
                )
        return tuned

    def gating_spec(self, sources: Optional[list[str]] = None, frame_rate: Optional[float] = None) -> Any:
        """{source: GatingSettings} as the edit sets it (linked stems follow the master): the separation's
        sources at its frame rate, or `sources` at `frame_rate` (a separation about to run)."""
        from engine import GatingSettings

        if sources is None and self.result is not None:
            sources, frame_rate = list(self.result.sources), self.result.frame_rate
        values = self.edit.gate_values(sources or [], frame_rate)
        return {s: GatingSettings(v.mode, v.threshold, v.median_frames) for s, v in values.items()}

    def _gated_otherwise(self, result: Any) -> list[str]:
        """The stems whose gating in `result` is not the edit's (a card's tuned stem, a change made while
        the separation ran, a session's setting outside the controls' range)."""
        from engine.gating import settings_for

        spec = self.gating_spec()
        return [s for s in result.sources if settings_for(result.gating, s) != spec[s]]

    def set_stem_threshold(self, source: str, threshold: float) -> None:
        """Give one stem its own threshold (what dragging its threshold line does)."""
        self.edit.set_stem_gating(source, linked=False, threshold=threshold)
        self.edit.seal()

    def _request_regate(self, sources: list[str]) -> None:
        if self.result is None or not sources or self._showing:
            return
        self._regate_t0 = time.perf_counter()
        self.regates.request(self.gating_spec(), sources)

    def _on_regated(self, outcome: RegateOutcome) -> None:
        if self.result is None:
            return
        for s, spec in outcome.spectrograms.items():
            i = self.result.sources.index(s)
            self.stem_specs[i] = spec
            self.lanes[i].spec.set_spectrogram(spec, self.levels)
        fr = self.result.frame_rate
        for i in range(len(self.lanes)):
            self.lanes[i].set_gate(outcome.gates[i], fr)
            self._update_activity_label(i, outcome.gates[i])
        self.teaching.regated(outcome.gates, outcome.sources)
        if outcome.spectrograms:
            self._retile()
        total = (time.perf_counter() - getattr(self, "_regate_t0", time.perf_counter())) * 1000
        self.status(
            f"Re-gated {', '.join(outcome.sources)}: audio in {outcome.seconds * 1000:.0f} ms, "
            f"on screen in {total:.0f} ms"
        )
        self.regate_done.emit(outcome)

    # ==== mixer =======================================================================================
    def toggle_solo(self, k: int) -> None:
        if k < len(self.edit.sources) and k < len(self.headers):
            source = self.edit.sources[k]
            self.edit.set_strip(source, solo=not self.edit.strip(source).solo)

    def toggle_mute(self, k: int) -> None:
        if k < len(self.edit.sources) and k < len(self.headers):
            source = self.edit.sources[k]
            self.edit.set_strip(source, mute=not self.edit.strip(source).mute)

    def set_ab(self, on: bool) -> None:
        if self.edit_view.syncing:
            return
        self.edit.set_play_original(on)
        self.status("B: playing the original song" if on else "A: playing your stem mix")

    # ==== transport ===================================================================================
    def toggle_play(self) -> None:
        if self.song is None:
            return
        if self.player.playing:
            self.player.pause()
            self.status("Paused")
        elif self.player.play():
            self.status("Playing")
        else:
            reason = self.player.reason or "no sound output"
            if not self._playback_warned:
                self._playback_warned = True
                self.show_message(
                    "playback",
                    "warning",
                    f"Playback is unavailable: {reason}. You can still separate, view and export songs.",
                )
            self.status(f"Playback is unavailable: {reason}")
        self._update_play_icon()

    def stop(self) -> None:
        self.player.pause()
        self.seek(self.mixer.loop[0] / self.mixer.sample_rate if self.mixer.loop else 0.0)
        self._update_play_icon()

    def seek(self, seconds: float) -> None:
        if self.song is None:
            return
        sample = int(round(max(0.0, min(seconds, self.song.duration_s)) * self.song.sample_rate))
        self.mixer.seek(sample)
        if not self.player.playing:
            self.mixer.position = sample
        self._move_playheads(sample / self.song.sample_rate)
        self._update_clock()

    def nudge(self, seconds: float) -> None:
        if self.song is not None:
            self.seek(self.mixer.position / self.mixer.sample_rate + seconds)

    def set_looping(self, on: bool) -> None:
        if self.song is None or self.edit_view.syncing:
            return
        if on:
            (x0, x1), _ = self.overview_plot.getViewBox().viewRange()
            a, b = self.loop_region.getRegion()
            if b <= x0 or a >= x1:  # the region is off screen: put it in the middle of the view
                span = x1 - x0
                self.loop_region.setRegion((x0 + 0.3 * span, x0 + 0.6 * span))
                self.grid.snap_loop()
            self.edit.set_looping(True)
            self.status("Looping the highlighted region (drag its edges in the waveform)")
        else:
            self.edit.set_looping(False)
            self.status("Loop off")

    def _on_plot_clicked(self, plot: TrackView, ev: Any) -> None:
        if self.song is None or ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        vb = plot.getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        x = vb.mapSceneToView(ev.scenePos()).x()
        self.seek(float(x))

    def zoom_fit(self) -> None:
        if self.song is not None:
            self.overview_plot.setXRange(0.0, self.song.duration_s, padding=0)

    def zoom(self, factor: float) -> None:
        if self.song is None:
            return
        (x0, x1), _ = self.overview_plot.getViewBox().viewRange()
        centre = self.mixer.position / self.mixer.sample_rate
        if not x0 <= centre <= x1:
            centre = (x0 + x1) / 2
        half = max(0.05, (x1 - x0) * factor / 2)
        self.overview_plot.setXRange(
            max(0.0, centre - half), min(self.song.duration_s, centre + half), padding=0
        )

    def _request_tiles(self) -> None:
        """Zoomed in on a long song, draw the spectrograms of the span on screen in full detail (a worker
        computes them); zoomed out, go back to the whole-song images."""
        song = self.song
        if song is None or song.mono is None:
            return
        (x0, x1), _ = self.overview_plot.vb.viewRange()
        x0, x1 = max(0.0, x0), min(song.duration_s, x1)
        span = max(x1 - x0, 1e-3)
        finest = (timeline_pictures.SPEC_N_FFT // 2) / song.sample_rate  # one analysis hop per column
        whole = song.spectrogram.column_s
        if whole <= finest * 1.01 or span / whole >= TILE_MIN_COLUMNS or span * 1.5 > TILE_MAX_S:
            if self._tiles is not None or self._tile_worker is not None:
                self._show_whole_spectrograms()
            return
        t = self._tiles
        if t is not None and t.start_s <= x0 and x1 <= t.stop_s and (
            span / t.mix.column_s >= TILE_MIN_COLUMNS or t.mix.column_s <= finest * 1.01
        ):
            return  # the tiles on screen cover the view finely enough
        pad = span / 4
        start = int(max(0.0, x0 - pad) * song.sample_rate)
        stop = int(min(song.duration_s, x1 + pad) * song.sample_rate)
        if self._tile_worker is not None:
            self._tile_worker.cancel()
        self._tile_serial += 1
        w = Worker(
            spectrogram_tiles,
            song.mono,
            song.sample_rate,
            start,
            stop,
            self._tile_serial,
            self.result,
            self.regates.frames,
            self.result_lock,
            self.teaching.truth_frames(),
            name="drawing the spectrogram",
        )
        w.signals.finished.connect(self._on_tiles)
        w.signals.done.connect(lambda w=w: self._tiles_done(w))
        self._tile_worker = w
        self.runner.start(w)

    def _tiles_done(self, w: Worker) -> None:
        if self._tile_worker is w:
            self._tile_worker = None

    def _on_tiles(self, tiles: SpectrogramTiles) -> None:
        if tiles.serial != self._tile_serial or self.song is None:
            return  # the song, the stems or the view changed meanwhile
        self.mix_spec.set_spectrogram(tiles.mix, self.levels)
        if self.result is not None:
            for i, name in enumerate(self.result.sources):
                if name in tiles.stems and i < len(self.lanes):
                    self.lanes[i].spec.set_spectrogram(tiles.stems[name], self.levels)
        self.teaching.show_spectrograms(tiles.truth)
        self._tiles = tiles
        self.spectrogram_detail_shown.emit()

    def _show_whole_spectrograms(self) -> None:
        self._tile_serial += 1  # a tile still being computed is dropped when it arrives
        if self._tile_worker is not None:
            self._tile_worker.cancel()
        self._tiles = None
        if self.song is not None:
            self.mix_spec.set_spectrogram(self.song.spectrogram, self.levels)
        for lane, spec in zip(self.lanes, self.stem_specs, strict=False):
            lane.spec.set_spectrogram(spec, self.levels)
        self.teaching.show_spectrograms(None)

    def _forget_tiles(self) -> None:
        """A new song: forget tiles of the old one (its view is reset to fit by the caller)."""
        self._tile_serial += 1
        if self._tile_worker is not None:
            self._tile_worker.cancel()
        self._tiles = None

    def _retile(self) -> None:
        """The stem images were replaced by whole-song ones: draw tiles again if zoomed in."""
        if self._tiles is not None or self._tile_worker is not None:
            self._tiles = None
            self._tile_serial += 1
            self._detail_timer.start()

    def _refresh_waveform_detail(self) -> None:
        self._request_tiles()
        song = self.song
        if song is None or song.mono is None:
            return
        (x0, x1), _ = self.overview_plot.vb.viewRange()
        sr = song.sample_rate
        a, b = max(0, int(x0 * sr)), min(song.mono.shape[0], int(x1 * sr) + 1)
        # Only when the overview's own buckets would be coarse, and the span is small enough to
        # summarise in a few ms here (at most DETAIL_MAX_SAMPLES samples).
        coarse = (b - a) < song.mono.shape[0] / 3
        if coarse and b - a <= DETAIL_MAX_SAMPLES:
            pad = (b - a) // 2
            lo, hi = max(0, a - pad), min(song.mono.shape[0], b + pad)
            set_overview(
                self.overview_items, timeline_pictures.overview(song.mono, sr, n_buckets=4000, start=lo, stop=hi)
            )
            self._detail_shown = True
        elif getattr(self, "_detail_shown", False):
            set_overview(self.overview_items, song.overview)
            self._detail_shown = False

    def _move_playheads(self, t: float) -> None:
        for line in self.playheads:
            line.setValue(t)
        for lane in self.lanes:
            for line in lane.playheads:
                line.setValue(t)
        for line in self.teaching.playheads():
            line.setValue(t)

    def _update_clock(self) -> None:
        if self.song is None:
            self.clock.setText("0:00.0 / 0:00.0")
            return
        t = self.mixer.position / self.mixer.sample_rate
        self.clock.setText(f"{format_time(t)} / {format_time(self.song.duration_s)}")

    def _update_play_icon(self) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if self.player.playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.act_play.setIcon(self.style().standardIcon(icon))
        self.act_play.setText("Pause" if self.player.playing else "Play")
        self.act_play.setIconText(self.act_play.text())  # the toolbar's word, set apart in _build_actions

    def _tick(self) -> None:
        """The UI timer (30 Hz): playhead, clock and meters follow the audio callback's position."""
        now = time.perf_counter()
        dt, self._last_tick = now - self._last_tick, now
        if self.song is None:
            return
        playing = self.player.playing
        if playing or getattr(self, "_was_playing", False):
            t = self.mixer.position / self.mixer.sample_rate
            self._move_playheads(t)
            self._update_clock()
            (x0, x1), _ = self.overview_plot.getViewBox().viewRange()
            if playing and (t > x1 or t < x0) and x1 - x0 < self.song.duration_s * 0.999:
                span = x1 - x0
                self.overview_plot.setXRange(t, min(self.song.duration_s, t + span), padding=0)
            levels = self.mixer.levels
            n = len(self.headers)
            if playing and levels.shape[0] == n + 2:
                for i, h in enumerate(self.headers):
                    h.meter.set_peaks(levels[i, 0], levels[i, 1], dt)
                self.master.meter.set_peaks(levels[-1, 0], levels[-1, 1], dt)
            if not playing and getattr(self, "_was_playing", False):
                self._update_play_icon()
        if not playing:
            # Stopped, the meters fall back to silence at their own rate (not frozen at the last peak).
            for m in self._meters():
                if not m.silent:
                    m.set_peaks(0.0, 0.0, dt)
        self._was_playing = playing

    def _meters(self) -> list[Any]:
        return [h.meter for h in self.headers] + [self.master.meter]

    def _reset_meters(self) -> None:
        for m in self._meters():
            m.reset()

    # ==== export ======================================================================================
    def show_export_dialog(self) -> None:
        if self.result is None or self.song is None:
            self.status("Separate the song first; then its stems can be exported.")
            return
        dlg = ExportDialog(self, self.result.sources, self.song.path, self.settings)
        if dlg.exec() != ExportDialog.DialogCode.Accepted:
            return
        choice = dlg.choice()
        if not confirm_replace(self, choice.paths()):
            self.status("Export cancelled: nothing was overwritten.")
            return
        self.export(choice)

    def export(self, choice: Any) -> None:
        """Start exporting (the dialog's choice); the caller has confirmed any overwrite."""
        if self.result is None or self.song is None or self._busy_worker is not None:
            return
        self.edit_view.push_mixer()
        info = {"input": str(self.song.path), "mixer": self.edit.to_session()["mixer"], "exported_by": "StemLab app"}
        w = Worker(
            export_job,
            self.result,
            self.mixer,
            self.result_lock,
            choice.folder,
            choice.stems,
            choice.fmt,
            choice.subtype,
            choice.remix,
            self.song.path.stem,
            info,
            music=self.grid.music,
            name="export",
        )
        w.signals.progress.connect(
            lambda p: (self._set_progress(p.fraction), self.status(f"Exporting… {100 * p.fraction:.0f}%"))
        )
        w.signals.finished.connect(self._on_exported)
        w.signals.failed.connect(lambda m: self._error("Export failed", m))
        w.signals.cancelled.connect(lambda: self.status("Export cancelled; no partial files were left."))
        w.signals.done.connect(self._busy_done)
        self._busy_worker = w
        self._set_progress(0.0)
        self.runner.start(w)
        self._update_actions()

    def _on_exported(self, written: list) -> None:
        folder = written[0].parent if written else None
        audio = [p for p in written if p.suffix in (".wav", ".flac")]
        self.status(f"Exported {len(audio)} audio files to {folder}")
        if folder is not None:
            self.show_message(
                "export",
                "info",
                f"Exported {len(audio)} audio files to <b>{folder}</b>.",
                action=("Open folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))),
            )
        self.export_finished.emit(written)

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

    def _attach_truth_on_open(self, song: SongData) -> None:
        """The command line's --truth for its song, or the demo song's own stems."""
        from .teaching import demo_truth_folder

        pending, self._pending_truth = self._pending_truth, None
        if pending is not None and Path(pending[0]).resolve() == song.path.resolve():
            self.attach_truth(pending[1])
            return
        folder = demo_truth_folder(song.path, demo_song_path())
        if folder is not None:
            self.attach_truth(str(folder))

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
        self._relink_colorbar()
        self.edit_view.push_mixer()
        self._update_actions()
        self._retile()  # zoomed in, the true stems get tiles of the span on screen too

    def export_teaching_report(self) -> None:
        if self.song is None:
            return
        self.teaching.choose_and_export(
            self, str(self.song.path.parent), self.song.path.stem, self.gating_spec(), self.status
        )

    def _on_teaching_report(self, written: list) -> None:
        folder = written[0].parent if written else None
        self.status(f"Teaching report: {len(written)} files written to {folder}")
        if folder is not None:
            self.show_message(
                "export",
                "info",
                f"Teaching report written to <b>{folder}</b> ({len(written) - 1} PNGs and a CSV).",
                action=("Open folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))),
            )

    # ==== sessions ====================================================================================
    def choose_save_session(self) -> None:
        if self.result is None or self.song is None:
            self.status("Separate a song first; a session keeps the song with its stems.")
            return
        start = str(self.session_path or self.song.path.with_name(self.song.path.stem + SESSION_SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self, "Save session", start, SESSION_FILTER)
        if path:
            self.save_session(Path(path))

    def save_session(self, path: Path) -> None:
        from .grid import music_to_json
        from .session import SessionState, save_session

        if self.result is None or self.song is None or self._busy_worker is not None:
            return
        r = self.result
        self._save_snapshot = self.edit.snapshot()  # what the file will hold, whatever changes meanwhile
        settings = self.edit.to_session()
        state = SessionState(
            song_name=self.song.path.name,
            song_path=str(self.song.path),
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
            music=music_to_json(self.grid.music) if self.grid.music is not None else None,
            stem_music={s: m.to_json() for s, m in self.grid.stem_music.items()},
        )
        w = Worker(
            save_session, path, state, self.song.stereo, r, self.result_lock, name="saving the session"
        )
        w.signals.finished.connect(self._on_session_saved)
        w.signals.failed.connect(self._on_session_save_failed)
        w.signals.done.connect(self._busy_done)
        self._busy_worker = w
        self._set_progress(None)
        self.status(f"Saving the session {Path(path).name}…")
        self.runner.start(w)

    def _on_session_saved(self, path: Path) -> None:
        self.session_path = Path(path)
        self.edit.mark_saved(self._save_snapshot)
        self.settings.add_recent(str(path))
        self._fill_recent_list()
        self.status(f"Session saved: {path}")
        self.session_saved.emit(str(path))
        then, self._after_save = self._after_save, None
        if then is not None:
            QTimer.singleShot(0, then)  # once the save job is done: close, or open what was asked for

    def _on_session_save_failed(self, message: str) -> None:
        self._after_save = None  # what waited for the save does not happen: the changes are not safe
        self._error("Cannot save the session", message)

    def choose_session(self) -> None:
        folder = str(self.settings.get("ui/last_folder"))
        path, _ = QFileDialog.getOpenFileName(self, "Open a session", folder, SESSION_FILTER)
        if path:
            self.open_path(path)

    def open_session(self, path: str) -> None:
        if self._busy_worker is not None:
            return
        w = Worker(open_session_job, Path(path), name="opening the session")
        w.signals.finished.connect(self._on_session_opened)
        w.signals.failed.connect(lambda m: self._error("Cannot open the session", m))
        w.signals.done.connect(self._busy_done)
        self._busy_worker = w
        self._set_progress(None)
        self.status(f"Opening the session {Path(path).name}…")
        self.runner.start(w)

    def _on_session_opened(self, opened: Any) -> None:
        loaded, song, specs, gates, frames = opened
        if self._sep_worker is not None:
            self._sep_worker.cancel()
        self._show_song(song, music=loaded.music)
        st = loaded.state
        self._show_separation(
            loaded.result,
            specs,
            gates,
            state={"gating": st.gating, "global_gating": st.global_gating, "mixer": st.mixer, "loop": st.loop,
                   "stem_music": loaded.stem_music},
            frames=frames,
        )
        self.session_path = loaded.json_path
        self.settings.add_recent(str(loaded.json_path))
        self._fill_recent_list()
        self.setWindowTitle(f"{loaded.json_path.name}[*] — StemLab")
        self.status(
            f"Session {loaded.json_path.name} opened: {st.song_name}, separated by {st.model_name} "
            f"on {st.device}"
        )
        self.session_loaded.emit(str(loaded.json_path))

    # ==== undo, redo, unsaved changes ==================================================================
    def undo(self) -> None:
        label = self.edit.history.undo_label
        if self.edit.undo():
            self.status(f"Undid {label}")

    def redo(self) -> None:
        label = self.edit.history.redo_label
        if self.edit.redo():
            self.status(f"Redid {label}")

    def reset_mix(self) -> None:
        if self.edit.separation is None:
            return
        self.edit.reset_mix()
        self.status("Mix reset: every stem at 0 dB, centred, neither muted nor soloed (Ctrl+Z brings it back)")

    def _on_history(self) -> None:
        h = self.edit.history
        self.act_undo.setEnabled(h.undo_label is not None)
        self.act_redo.setEnabled(h.redo_label is not None)
        self.act_undo.setText(f"&Undo {h.undo_label}" if h.undo_label else "&Undo")
        self.act_redo.setText(f"&Redo {h.redo_label}" if h.redo_label else "&Redo")
        self.setWindowModified(self.edit.dirty)

    def _ask_unsaved_dialog(self) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Unsaved changes")
        name = self.song.path.name if self.song is not None else "the song"
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

    def _unsaved_settled(self, then: Any) -> bool:
        """True when nothing unsaved would be lost (or the user lets it go). Otherwise False: cancelled,
        or a save was started and `then` runs once it is saved."""
        if not self.edit.dirty or self._after_save is not None:
            return not self.edit.dirty
        answer = self.ask_unsaved()
        if answer == DISCARD:
            return True
        if answer == SAVE:
            if self.session_path is not None:
                path: Any = self.session_path
            else:
                start = str(self.song.path.with_name(self.song.path.stem + SESSION_SUFFIX)) if self.song else ""
                path, _ = QFileDialog.getSaveFileName(self, "Save session", start, SESSION_FILTER)
            if path and self._busy_worker is None:
                self._after_save = then
                self.save_session(Path(path))
        return False

    # ==== models and help =============================================================================
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model card", "", "Model card (*.json)")
        if path:
            self.load_model(path)

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
        separating = self._sep_worker is not None
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

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for f in files:
            a = self.recent_menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_path(f))
        if not files:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction(
                "Clear list", lambda: (self.settings.clear_recent(), self._fill_recent_list())
            )

    def _fill_recent_list(self) -> None:
        self.recent_list.clear()
        files = self.settings.recent_files()
        for f in files:
            it = QListWidgetItem(f"{Path(f).name}    —    {Path(f).parent}")
            it.setData(Qt.ItemDataRole.UserRole, f)
            self.recent_list.addItem(it)
        self.recent_list.setVisible(bool(files))
        self.recent_title.setVisible(bool(files))

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
                self.open_path(u.toLocalFile())
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
        if not self._unsaved_settled(self.close):
            event.ignore()
            return
        self.settings.set("ui/geometry", self.saveGeometry())
        self.settings.sync()
        self.shutdown()
        super().closeEvent(event)


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
