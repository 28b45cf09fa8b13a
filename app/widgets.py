"""The window's pieces: track headers (mixer strip + gating controls), level meters, a message
bar, and the timeline lanes (waveform, spectrograms, activity curves) sharing one time axis.

Widgets here only draw what they are given and emit what the user did; app.edit_view writes it into the
edit (app.edit_model) and the edit back into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .keys import keep_navigation_keys
from .mixer import MAX_GAIN_DB, MIN_GAIN_DB
from .timeline_pictures import Overview, Spectrogram

LEFT_AXIS_WIDTH = 46
RIGHT_COLUMN_WIDTH = 74
HEADER_WIDTH = 450
SPEC_HEIGHT = 90
ACTIVITY_HEIGHT = 48
LANE_HEIGHT = SPEC_HEIGHT + ACTIVITY_HEIGHT
OVERVIEW_HEIGHT = 78
MIX_SPEC_HEIGHT = 118
SPEC_COLORMAP = "inferno"
MEDIAN_MS_RANGE = (10.0, 2000.0)


def format_time(seconds: float, decimals: int = 1) -> str:
    seconds = max(0.0, float(seconds))
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}:{s:0{3 + decimals if decimals else 2}.{decimals}f}"


def format_pan(pan: float) -> str:
    p = int(round(pan * 100))
    return "C" if p == 0 else (f"L{-p}" if p < 0 else f"R{p}")


# ---- axes ------------------------------------------------------------------------------------------


class TimeAxis(pg.AxisItem):
    """Seconds shown as m:ss (or m:ss.s when zoomed in)."""

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:
        decimals = 0 if spacing >= 1 else (1 if spacing >= 0.1 else 2)
        return [format_time(v, decimals) for v in values]


class LogFreqAxis(pg.AxisItem):
    """Values are log10(Hz); ticks at musical round numbers."""

    TICKS = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        ticks = (
            self.TICKS
            if size >= 160
            else ((100, 300, 1000, 3000, 10000) if size >= 100 else (100, 1000, 10000))
        )
        return [(1.0, [float(np.log10(f)) for f in ticks if minVal <= np.log10(f) <= maxVal])]

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:
        out = []
        for v in values:
            f = 10**v
            out.append(f"{f / 1000:g}k" if f >= 1000 else f"{f:g}")
        return out


def style_axis(ax: pg.AxisItem) -> None:
    ax.setTextPen(pg.mkPen(theme.TEXT_DIM))
    ax.setPen(pg.mkPen(theme.BORDER))
    ax.setStyle(tickLength=-4)


class TrackView:
    """A light plot: a ViewBox and its left axis placed in a lane's GraphicsLayout row.

    pyqtgraph's PlotItem builds menus and a config panel per plot (tens of ms each); lanes need
    none of it, so a stem's lanes appear without a visible hitch.
    """

    def __init__(
        self,
        glw: pg.GraphicsLayoutWidget,
        row: int,
        height: int,
        left: Optional[pg.AxisItem] = None,
        top: Optional[pg.AxisItem] = None,
    ) -> None:
        self.vb = pg.ViewBox(enableMenu=False, defaultPadding=0.0)
        self.vb.setMouseEnabled(x=True, y=False)
        self.left = left if left is not None else pg.AxisItem("left")
        self.left.linkToView(self.vb)
        self.left.setWidth(LEFT_AXIS_WIDTH)
        style_axis(self.left)
        layout = glw.ci.layout
        if top is not None:
            top.linkToView(self.vb)
            top.setHeight(20)
            style_axis(top)
            glw.addItem(top, row=row, col=1)
            layout.setRowFixedHeight(row, 20)
            row += 1
            height -= 20
        glw.addItem(self.left, row=row, col=0)
        glw.addItem(self.vb, row=row, col=1)
        layout.setRowFixedHeight(row, height)

    def addItem(self, item: Any, ignoreBounds: bool = False) -> None:  # noqa: N802 (pyqtgraph's spelling)
        self.vb.addItem(item, ignoreBounds=ignoreBounds)

    def setYRange(self, lo: float, hi: float, padding: float = 0.0) -> None:  # noqa: N802
        self.vb.setYRange(lo, hi, padding=padding)

    def setXRange(self, lo: float, hi: float, padding: float = 0.0) -> None:  # noqa: N802
        self.vb.setXRange(lo, hi, padding=padding)

    def setXLink(self, other: "TrackView") -> None:  # noqa: N802
        self.vb.setXLink(other.vb)

    def getViewBox(self) -> pg.ViewBox:  # noqa: N802
        return self.vb

    def scene(self) -> Any:
        return self.vb.scene()


def make_lane_widget() -> pg.GraphicsLayoutWidget:
    glw = pg.GraphicsLayoutWidget()
    glw.setBackground(theme.BACKGROUND)
    layout = glw.ci.layout
    glw.ci.setContentsMargins(0, 0, 0, 0)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.setColumnFixedWidth(0, LEFT_AXIS_WIDTH)
    layout.setColumnFixedWidth(2, RIGHT_COLUMN_WIDTH)
    glw.setFrameStyle(QFrame.Shape.NoFrame)
    glw.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    glw.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return glw


class SpectrogramView:
    """An ImageItem of a log-frequency spectrogram placed on the time axis."""

    def __init__(self, plot: TrackView) -> None:
        self.plot = plot
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.colormap.get(SPEC_COLORMAP))
        plot.addItem(self.image)

    def set_spectrogram(self, spec: Spectrogram, levels: tuple[float, float]) -> None:
        self.image.setImage(spec.image, autoLevels=False, levels=levels)
        self.image.setRect(QRectF(spec.start_s, spec.log_fmin, spec.duration_s, spec.log_fmax - spec.log_fmin))
        self.plot.setYRange(spec.log_fmin, spec.log_fmax, padding=0)


class LevelMeter(QWidget):
    """Two horizontal peak bars (L, R) in dBFS with a falling peak hold."""

    FLOOR_DB = -60.0

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(12)
        self.setMinimumWidth(80)
        self._db = [self.FLOOR_DB, self.FLOOR_DB]
        self._hold = [self.FLOOR_DB, self.FLOOR_DB]
        self.setToolTip("Post-fader peak level (dBFS). Red: the mix clips.")

    def set_peaks(self, left: float, right: float, dt: float = 0.033) -> None:
        changed = False
        for c, peak in enumerate((left, right)):
            db = 20.0 * np.log10(max(float(peak), 1e-6))
            new = max(db, self._db[c] - 30.0 * dt)  # fall 30 dB/s
            hold = max(db, self._hold[c] - 10.0 * dt)
            if abs(new - self._db[c]) > 0.05 or abs(hold - self._hold[c]) > 0.05:
                changed = True
            self._db[c], self._hold[c] = new, hold
        if changed:
            self.update()

    def reset(self) -> None:
        self._db = [self.FLOOR_DB, self.FLOOR_DB]
        self._hold = [self.FLOOR_DB, self.FLOOR_DB]
        self.update()

    @property
    def silent(self) -> bool:
        """True once both bars and both peak holds have fallen to the floor."""
        return max(*self._db, *self._hold) <= self.FLOOR_DB

    @property
    def peak_db(self) -> float:
        """The higher of the two bars, dBFS (FLOOR_DB or below: nothing shown)."""
        return max(self._db)

    def _x(self, db: float, width: int) -> int:
        frac = (min(max(db, self.FLOOR_DB), 3.0) - self.FLOOR_DB) / (3.0 - self.FLOOR_DB)
        return int(frac * width)

    def paintEvent(self, event: Any) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor("#101216"))
        grad = QLinearGradient(0, 0, w, 0)
        grad.setColorAt(0.0, QColor("#2e8b57"))
        grad.setColorAt(0.75, QColor("#7ccf5a"))
        grad.setColorAt(0.9, QColor("#e8c547"))
        grad.setColorAt(1.0, QColor("#e04a3f"))
        bar_h = (h - 3) // 2
        for c in range(2):
            y = 1 + c * (bar_h + 1)
            p.fillRect(0, y, self._x(self._db[c], w), bar_h, grad)
            hx = self._x(self._hold[c], w)
            if self._hold[c] > self.FLOOR_DB + 1:
                p.fillRect(
                    max(0, hx - 2), y, 2, bar_h, QColor("#ffffff") if self._hold[c] < 0 else QColor("#ff3030")
                )
        p.setPen(QColor("#3a3f4b"))
        zero = self._x(0.0, w)
        p.drawLine(zero, 0, zero, h)
        p.end()


class MessageBar(QFrame):
    """A dismissable one-line banner for things the user should know but need not answer."""

    COLOURS = {"info": "#1f3b57", "warning": "#4a3a16", "error": "#4d1f1f"}

    def __init__(self, kind: str, text: str, action_text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.kind = kind
        self.setStyleSheet(f"QFrame#MessageBar {{ background: {self.COLOURS.get(kind, '#1f3b57')}; }}")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        icon = QLabel({"info": "ℹ", "warning": "⚠", "error": "✖"}.get(kind, "ℹ"))
        icon.setStyleSheet("font-size: 13pt;")
        lay.addWidget(icon)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        lay.addWidget(self.label, 1)
        self.action_button: Optional[QPushButton] = None
        if action_text:
            self.action_button = QPushButton(action_text)
            lay.addWidget(self.action_button)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay.addWidget(close)

    def text(self) -> str:
        return self.label.text()


class ElidedLabel(QLabel):
    """A one-line label that gives way: it asks for little width and shows its text cut with "…"
    (whole in the tooltip) when squeezed, so a long model name never pushes the toolbar's clock into
    the overflow menu. text() is the whole text."""

    MIN_WIDTH = 40

    def __init__(self, text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__("", parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's spelling)
        super().setText(text)
        self.setToolTip(text)  # the whole text, however much of it fits

    def sizeHint(self) -> Any:  # noqa: N802 (Qt's spelling)
        hint = super().sizeHint()
        hint.setWidth(self.MIN_WIDTH)
        return hint

    def minimumSizeHint(self) -> Any:  # noqa: N802
        return self.sizeHint()

    def elided_text(self) -> str:
        m = self.contentsMargins()
        room = max(0, self.width() - m.left() - m.right())
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, event: Any) -> None:  # noqa: N802
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.setFont(self.font())
        p.drawText(self.contentsRect(), int(self.alignment().value), self.elided_text())
        p.end()


def confirm_replace(parent: Optional[QWidget], paths: Iterable[Path], kind: str = "") -> bool:
    """True when none of `paths` exists, or the user agreed to replace those that do (asked once, No
    by default). kind names what the files are, e.g. "of a teaching report"."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if not existing:
        return True
    folder = existing[0].parent
    names = "\n".join(p.name for p in existing[:8]) + ("\n…" if len(existing) > 8 else "")
    of = f" {kind}" if kind else ""
    answer = QMessageBox.question(
        parent,
        "Replace files?",
        f"{len(existing)} file(s){of} already exist in {folder}:\n{names}\n\nReplace them?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def _small(text: str, tip: str = "", object_name: str = "Dim") -> QLabel:
    lab = QLabel(text)
    lab.setObjectName(object_name)
    if tip:
        lab.setToolTip(tip)
    return lab


class GatingControls(QWidget):
    """Threshold slider and median-filter length (ms, with frames shown): one source's or the global."""

    changed = Signal()

    def __init__(
        self, frames_per_second: float = 86.13, with_mode: bool = False, parent: Optional[QWidget] = None
    ) -> None:
        super().__init__(parent)
        self.frame_rate = frames_per_second
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        self.mode: Optional[QComboBox] = None
        row = 0
        if with_mode:
            self.mode = QComboBox()
            self.mode.addItems(["binary", "soft", "none"])
            self.mode.setToolTip(
                "binary: threshold then median filter (the IASS method); soft: scale by the "
                "probability; none: no gating"
            )
            self.mode.currentIndexChanged.connect(self._emit)
            grid.addWidget(_small("Mode"), row, 0)
            grid.addWidget(self.mode, row, 1, 1, 2)
            row += 1
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(50)
        self.threshold.setToolTip(
            "Activity threshold: frames whose predicted probability is below it are "
            "silenced. You can also drag the dashed line in the activity lane."
        )
        self.threshold_label = _small("0.50", object_name="Value")
        self.threshold_label.setFixedWidth(40)
        self.threshold.valueChanged.connect(self._on_threshold)
        grid.addWidget(_small("Thresh"), row, 0)
        grid.addWidget(self.threshold, row, 1)
        grid.addWidget(self.threshold_label, row, 2)
        row += 1
        self.median = QDoubleSpinBox()
        self.median.setRange(*MEDIAN_MS_RANGE)
        self.median.setDecimals(0)
        self.median.setSingleStep(10)
        self.median.setSuffix(" ms")
        self.median.setKeyboardTracking(False)
        self.median.setToolTip(
            "Median filter length: the gate ignores on/off flickers shorter than about "
            "half of it. Rounded to an odd number of activity frames."
        )
        self.median_frames_label = _small("9 fr", object_name="Value")
        self.median_frames_label.setFixedWidth(40)
        self.median.valueChanged.connect(self._on_median)
        keep_navigation_keys(self.threshold, self.median)
        grid.addWidget(_small("Median"), row, 0)
        grid.addWidget(self.median, row, 1)
        grid.addWidget(self.median_frames_label, row, 2)
        grid.setColumnStretch(1, 1)
        self._frames = 9
        self._blocked = False

    def set_frame_rate(self, frame_rate: float) -> None:
        self.frame_rate = frame_rate
        self._on_median(self.median.value(), emit=False)

    def _emit(self) -> None:
        if not self._blocked:
            self.changed.emit()

    def _on_threshold(self, v: int) -> None:
        self.threshold_label.setText(f"{v / 100:.2f}")
        self._emit()

    def _on_median(self, ms: float, emit: bool = True) -> None:
        self._frames = max(1, int(round(ms / 1000.0 * self.frame_rate))) | 1
        self.median_frames_label.setText(f"{self._frames} fr")
        if emit:
            self._emit()

    @property
    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    @property
    def median_ms(self) -> float:
        return float(self.median.value())

    @property
    def median_frames(self) -> int:
        return self._frames

    @property
    def mode_value(self) -> str:
        return self.mode.currentText() if self.mode is not None else "binary"

    def set_values(self, threshold: float, median_ms: float, mode: Optional[str] = None) -> None:
        self._blocked = True
        try:
            self.threshold.setValue(int(round(threshold * 100)))
            self.median.setValue(median_ms)
            self._on_median(self.median.value(), emit=False)
            if mode is not None and self.mode is not None:
                self.mode.setCurrentText(mode)
        finally:
            self._blocked = False


class GainFader(QObject):
    """A horizontal gain fader in dB with its value label; double-click the value to reset."""

    changed = Signal(float)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(MIN_GAIN_DB * 2), int(MAX_GAIN_DB * 2))  # half-dB steps
        self.slider.setValue(0)
        self.slider.setPageStep(6)
        self.slider.setToolTip("Gain in dB (fully left = silent). Double-click the value to reset to 0 dB.")
        self.value = _small("0.0 dB", object_name="Value")
        self.value.setFixedWidth(56)
        self.value.mouseDoubleClickEvent = lambda e: self.slider.setValue(0)  # type: ignore[method-assign]
        self.slider.valueChanged.connect(self._on_value)
        keep_navigation_keys(self.slider)

    def add_to(self, grid: QGridLayout, row: int, label: str = "Gain") -> None:
        grid.addWidget(_small(label), row, 0)
        grid.addWidget(self.slider, row, 1)
        grid.addWidget(self.value, row, 2)

    def _on_value(self, v: int) -> None:
        db = v / 2.0
        self.value.setText("-inf dB" if db <= MIN_GAIN_DB else f"{db:+.1f} dB")
        self.changed.emit(db)

    @property
    def db(self) -> float:
        return self.slider.value() / 2.0

    def set_db(self, db: float) -> None:
        self.slider.setValue(int(round(np.clip(db, MIN_GAIN_DB, MAX_GAIN_DB) * 2)))


def stem_header_layout(header: QFrame, colour: str, height: int) -> QHBoxLayout:
    """A stem's header in the left column: fixed size, the stem's colour swatch on the left; returns the
    row to add the header's contents to."""
    header.setObjectName("TrackHeader")
    header.setFixedWidth(HEADER_WIDTH)
    header.setFixedHeight(height)
    outer = QHBoxLayout(header)
    outer.setContentsMargins(0, 0, 8, 0)
    outer.setSpacing(8)
    swatch = QFrame()
    swatch.setFixedWidth(5)
    swatch.setStyleSheet(f"background: {colour};")
    outer.addWidget(swatch)
    return outer


class TrackHeader(QFrame):
    """One stem's strip: name, mute, solo, gain, pan, meter, and its gating controls."""

    mixer_changed = Signal(int)
    gating_changed = Signal(int)

    def __init__(
        self, index: int, name: str, colour: str, frame_rate: float, parent: Optional[QWidget] = None
    ):
        super().__init__(parent)
        self.index, self.name, self.colour = index, name, colour
        outer = stem_header_layout(self, colour, LANE_HEIGHT)
        left = QGridLayout()
        left.setContentsMargins(0, 6, 0, 6)
        left.setHorizontalSpacing(6)
        left.setVerticalSpacing(2)
        self.name_label = QLabel(f"{index + 1}  {name.capitalize()}")
        self.name_label.setObjectName("StemName")
        self.name_label.setStyleSheet(f"color: {colour};")
        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self.name_label, 1)
        self.mute = QPushButton("M")
        self.mute.setObjectName("Mute")
        self.mute.setCheckable(True)
        self.mute.setFixedSize(26, 22)
        self.mute.setToolTip(f"Mute {name} (Shift+{index + 1})")
        self.solo = QPushButton("S")
        self.solo.setObjectName("Solo")
        self.solo.setCheckable(True)
        self.solo.setFixedSize(26, 22)
        self.solo.setToolTip(f"Solo {name} (key {index + 1}); several stems can be soloed")
        for b in (self.mute, self.solo):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.toggled.connect(lambda _=False: self.mixer_changed.emit(self.index))
            top.addWidget(b)
        left.addLayout(top, 0, 0, 1, 3)
        self.gain = GainFader(self)
        self.gain.changed.connect(lambda _=0.0: self.mixer_changed.emit(self.index))
        self.gain.add_to(left, 1)
        self.pan = QSlider(Qt.Orientation.Horizontal)
        self.pan.setRange(-100, 100)
        self.pan.setValue(0)
        self.pan.setToolTip("Pan (stereo balance). Double-click the value to centre.")
        self.pan_value = _small("C", object_name="Value")
        self.pan_value.setFixedWidth(56)
        self.pan_value.mouseDoubleClickEvent = lambda e: self.pan.setValue(0)  # type: ignore[method-assign]
        self.pan.valueChanged.connect(self._on_pan)
        keep_navigation_keys(self.pan)
        left.addWidget(_small("Pan"), 2, 0)
        left.addWidget(self.pan, 2, 1)
        left.addWidget(self.pan_value, 2, 2)
        self.meter = LevelMeter()
        left.addWidget(self.meter, 3, 0, 1, 3)
        self.music_label = _small("", "The stem's tempo and key (app.grid_view)")  # filled by the grid
        left.addWidget(self.music_label, 4, 0, 1, 3)
        left.setRowStretch(5, 1)
        left.setColumnStretch(1, 1)
        outer.addLayout(left, 11)
        sep = QFrame()
        sep.setFixedWidth(1)
        sep.setStyleSheet(f"background: {theme.BORDER};")
        outer.addWidget(sep)
        right = QVBoxLayout()
        right.setContentsMargins(0, 6, 0, 6)
        right.setSpacing(4)
        self.linked = QCheckBox("Gate: follow master")
        self.linked.setChecked(True)
        self.linked.setToolTip(
            "When ticked this stem uses the master gating settings; untick to set its own."
        )
        self.linked.toggled.connect(self._on_linked)
        right.addWidget(self.linked)
        self.gating = GatingControls(frame_rate)
        self.gating.changed.connect(lambda: self.gating_changed.emit(self.index))
        self.gating.setEnabled(False)
        right.addWidget(self.gating)
        self.activity_label = _small("", "Share of the song where this stem is on after gating")
        right.addWidget(self.activity_label)
        right.addStretch(1)
        right_box = QWidget()
        right_box.setLayout(right)
        right_box.setFixedWidth(190)
        outer.addWidget(right_box)

    def _on_pan(self, v: int) -> None:
        self.pan_value.setText(format_pan(v / 100.0))
        self.mixer_changed.emit(self.index)

    def _on_linked(self, linked: bool) -> None:
        self.gating.setEnabled(not linked)
        self.gating_changed.emit(self.index)


class MasterHeader(QFrame):
    """The master strip (A/B, master gain, meter) and the global gating controls."""

    mixer_changed = Signal()
    gating_changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("MasterHeader")
        self.setFixedWidth(HEADER_WIDTH)
        self.setFixedHeight(OVERVIEW_HEIGHT + MIX_SPEC_HEIGHT)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(10, 8, 8, 8)
        outer.setSpacing(8)
        left = QVBoxLayout()
        left.setSpacing(5)
        title = QLabel("MASTER")
        title.setObjectName("StemName")
        left.addWidget(title)
        self.song_label = _small("No song")
        self.song_label.setWordWrap(True)
        left.addWidget(self.song_label)
        self.music_label = _small("", object_name="Value")  # tempo, metre and key (app.grid_view)
        left.addWidget(self.music_label)
        self.ab = QPushButton("A: stems")
        self.ab.setObjectName("AB")
        self.ab.setCheckable(True)
        self.ab.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.ab.setToolTip("A/B: switch between your stem mix (A) and the original song (B). Key: B")
        self.ab.toggled.connect(self._on_ab)
        left.addWidget(self.ab)
        self.gain = GainFader(self)
        self.gain.changed.connect(lambda _=0.0: self.mixer_changed.emit())
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        self.gain.add_to(grid, 0)
        grid.setColumnStretch(1, 1)
        left.addLayout(grid)
        self.meter = LevelMeter()
        left.addWidget(self.meter)
        left.addStretch(1)
        outer.addLayout(left, 10)
        sep = QFrame()
        sep.setFixedWidth(1)
        sep.setStyleSheet(f"background: {theme.BORDER};")
        outer.addWidget(sep)
        right = QVBoxLayout()
        right.setSpacing(5)
        gt = QLabel("ACTIVITY GATE")
        gt.setObjectName("StemName")
        gt.setToolTip("How each stem's predicted activity switches it on and off. Changes are heard at once.")
        right.addWidget(gt)
        self.gating = GatingControls(with_mode=True)
        self.gating.changed.connect(self.gating_changed)
        right.addWidget(self.gating)
        self.colorbar_host = QVBoxLayout()
        right.addLayout(self.colorbar_host)
        right.addStretch(1)
        outer.addLayout(right, 10)

    def _on_ab(self, checked: bool) -> None:
        self.ab.setText("B: original" if checked else "A: stems")
        self.mixer_changed.emit()


def gate_runs(gate: np.ndarray, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """A gate curve as step edges and levels (only where it changes): (edges (k+1,), levels (k,))."""
    g = np.asarray(gate, dtype=np.float32)
    if g.size == 0:
        return np.zeros(2), np.zeros(1)
    if np.all((g == 0) | (g == 1)):
        change = np.flatnonzero(np.diff(g)) + 1
        starts = np.concatenate([[0], change])
        levels = g[starts]
        edges = np.concatenate([starts, [g.size]]).astype(np.float64)
    else:  # soft gates: every frame
        levels = g
        edges = np.arange(g.size + 1, dtype=np.float64)
    return (edges - 0.5).clip(0) / frame_rate, levels


class StemLane:
    """One stem's spectrogram and activity plots (in a GraphicsLayoutWidget beside its header)."""

    def __init__(self, index: int, name: str, colour: str) -> None:
        self.index, self.name, self.colour = index, name, colour
        self.widget = make_lane_widget()
        self.widget.setFixedHeight(LANE_HEIGHT)
        self.spec_plot = TrackView(self.widget, 0, SPEC_HEIGHT, left=LogFreqAxis("left"))
        self.spec = SpectrogramView(self.spec_plot)
        self.act_plot = TrackView(self.widget, 1, ACTIVITY_HEIGHT)
        self.act_plot.setYRange(-0.14, 1.14, padding=0)
        self.act_plot.left.setTicks([[(0.0, "0"), (0.5, ".5"), (1.0, "1")]])
        c = QColor(colour)
        band = QColor(c)
        band.setAlpha(70)
        self.band = pg.PlotDataItem(stepMode="center", fillLevel=0.0, brush=pg.mkBrush(band), pen=None)
        self.act_plot.addItem(self.band)
        # Cached as a pixmap: dragging the threshold line or moving the playhead over the lane
        # then repaints without re-stroking thousands of points.
        self.curve = pg.PlotDataItem(pen=pg.mkPen(c, width=1.3), antialias=False)
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        for item in (self.curve.curve, self.band.curve):  # the PlotCurveItems that actually paint
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.act_plot.addItem(self.curve)
        self.threshold_line = pg.InfiniteLine(
            pos=0.5,
            angle=0,
            movable=True,
            bounds=(0.0, 1.0),
            pen=pg.mkPen("#ffffff", width=1, style=Qt.PenStyle.DashLine),
            hoverPen=pg.mkPen(theme.ACCENT, width=2),
        )
        self.threshold_line.setToolTip("Drag to change this stem's activity threshold")
        self.act_plot.addItem(self.threshold_line)
        label = pg.TextItem(name.upper(), color=colour, anchor=(0, 0))
        label.setParentItem(self.spec_plot.getViewBox())
        label.setPos(4, 2)
        self.spec_plot.getViewBox().sigResized.connect(lambda *_: label.setPos(4, 2))
        self.playheads = [make_playhead(self.spec_plot), make_playhead(self.act_plot)]

    def plots(self) -> list[TrackView]:
        return [self.spec_plot, self.act_plot]

    def set_activity(self, times: np.ndarray, activity: np.ndarray) -> None:
        self.curve.setData(times, activity)

    def set_gate(self, gate: np.ndarray, frame_rate: float) -> None:
        edges, levels = gate_runs(gate, frame_rate)
        self.band.setData(edges, levels)

    def set_threshold(self, value: float, mode: str = "binary") -> None:
        self.threshold_line.blockSignals(True)
        self.threshold_line.setValue(value)
        self.threshold_line.blockSignals(False)
        self.threshold_line.setVisible(mode == "binary")


def make_playhead(plot: TrackView) -> pg.InfiniteLine:
    line = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=pg.mkPen(theme.PLAYHEAD, width=1.2))
    line.setZValue(100)
    plot.addItem(line, ignoreBounds=True)
    return line


class Placeholder(QFrame):
    """What the stem area shows before a separation: a call to action."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        self.title = QLabel("Not separated yet")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setStyleSheet("font-size: 15pt; color: #c8ccd6;")
        lay.addWidget(self.title)
        self.text = QLabel("")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.text.setObjectName("Dim")
        lay.addWidget(self.text)
        row = QHBoxLayout()
        row.addStretch(1)
        self.button = QPushButton("Separate  (Ctrl+R)")
        self.button.setObjectName("Big")
        row.addWidget(self.button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addStretch(2)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)


def overview_curve(plot: TrackView, colour: str = theme.MIX_COLOUR) -> pg.PlotDataItem:
    """The waveform overview: one zig-zag line through each bucket's min and max.

    Drawn as a single downsampled polyline it looks filled and costs a few ms to paint; a filled
    path between two curves cost over 100 ms per repaint.
    """
    curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=1), antialias=False)
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    curve.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.addItem(curve)
    return curve


def set_overview(curve: pg.PlotDataItem, ov: Overview) -> None:
    x = np.repeat(ov.times, 2)
    y = np.stack([ov.lo, ov.hi], axis=1).ravel()
    curve.setData(x, y)
