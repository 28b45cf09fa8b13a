"""The teaching view: per stem, its true stem beside the estimate (spectrogram, true activity with the
frames gated wrongly marked, the model's mask), live figures against the truth, a "hear" switch
between estimate, truth and error, and the teaching report. The arithmetic is in app.teaching.

The controller owns the truth and the workers that read it and score the stems; the main window only
tells it what happened (a song opened, a separation shown, a re-gating done) and places its widgets.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import theme, timeline_pictures
from .teaching import (
    LISTEN_MODES,
    StemFigures,
    TeachingData,
    Truth,
    activity_lanes,
    compute_figures,
    figures_csv,
    load_truth,
    prepare_teaching,
    report_names,
)
from .widgets import (
    HEADER_WIDTH,
    SPEC_HEIGHT,
    LogFreqAxis,
    SpectrogramView,
    TrackView,
    confirm_replace,
    gate_runs,
    make_lane_widget,
    make_playhead,
    stem_header_layout,
)
from .workers import JobRunner, Worker

TRUTH_LANE_HEIGHT = 26
MASK_HEIGHT = 60
RULER_HEIGHT = 20  # the time ruler atop the timeline's waveform (widgets.TrackView's top axis)
TEACHING_HEIGHT = TRUTH_LANE_HEIGHT + SPEC_HEIGHT + MASK_HEIGHT
MASK_COLORMAP = "viridis"
MISSED_COLOUR = "#ff3b3b"
LEAKED_COLOUR = "#ffe14d"
LISTEN_WORDS = {"estimate": "Estimate", "truth": "Truth", "error": "Error"}


class StemRow(QWidget):
    """One stem's row in the timeline: its header and lanes, and below them (with a truth) its teaching
    header and lanes."""

    def __init__(self, header: QWidget, lane_widget: QWidget, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.left = QVBoxLayout()
        self.left.setSpacing(0)
        self.right = QVBoxLayout()
        self.right.setSpacing(0)
        self.left.addWidget(header)
        self.right.addWidget(lane_widget)
        row.addLayout(self.left)
        row.addLayout(self.right, 1)
        self.extra: list[QWidget] = []

    def add_extra(self, left: QWidget, right: QWidget) -> None:
        self.left.addWidget(left)
        self.right.addWidget(right)
        self.extra += [left, right]

    def clear_extra(self) -> None:
        for w in self.extra:
            w.setParent(None)
            w.deleteLater()
        self.extra = []


def _label(plot: TrackView, text: str, colour: str) -> None:
    # on a dark ground: the mask's bright cells must not swallow it
    item = pg.TextItem(text, color=colour, anchor=(0, 0), fill=pg.mkBrush(16, 18, 22, 170))
    item.setParentItem(plot.getViewBox())
    item.setPos(4, 1)


class TruthLane:
    """A stem's teaching lanes: the true activity (missed and leaked frames marked), the true stem's
    spectrogram, and the model's ungated mask, on the timeline's time axis."""

    def __init__(self, name: str, colour: str) -> None:
        self.name, self.colour = name, colour
        self.widget = make_lane_widget()
        self.widget.setFixedHeight(TEACHING_HEIGHT)
        self.lane_plot = TrackView(self.widget, 0, TRUTH_LANE_HEIGHT)
        self.lane_plot.setYRange(-0.1, 1.1, padding=0)
        self.lane_plot.left.setTicks([[(0.5, "true")]])
        c = QColor(colour)
        c.setAlpha(150)
        self.truth_band = pg.PlotDataItem(stepMode="center", fillLevel=0.0, brush=pg.mkBrush(c), pen=None)
        self.missed_band = pg.PlotDataItem(
            stepMode="center", fillLevel=0.0, brush=pg.mkBrush(MISSED_COLOUR), pen=None
        )
        self.leaked_band = pg.PlotDataItem(
            stepMode="center", fillLevel=0.0, brush=pg.mkBrush(LEAKED_COLOUR), pen=None
        )
        for item in (self.truth_band, self.missed_band, self.leaked_band):
            self.lane_plot.addItem(item)
        self.spec_plot = TrackView(self.widget, 1, SPEC_HEIGHT, left=LogFreqAxis("left"))
        self.spec = SpectrogramView(self.spec_plot)
        _label(self.spec_plot, f"TRUE {name.upper()}", colour)
        self.mask_plot = TrackView(self.widget, 2, MASK_HEIGHT, left=LogFreqAxis("left"))
        self.mask = pg.ImageItem(axisOrder="col-major")
        self.mask.setColorMap(pg.colormap.get(MASK_COLORMAP))
        self.mask_plot.addItem(self.mask)
        _label(self.mask_plot, "MASK: what the model hears", theme.TEXT_DIM)
        self.playheads = [make_playhead(p) for p in self.plots()]

    def plots(self) -> list[TrackView]:
        return [self.lane_plot, self.spec_plot, self.mask_plot]

    def set_lanes(self, truth: np.ndarray, missed: np.ndarray, leaked: np.ndarray, frame_rate: float) -> None:
        for item, frames, height in (
            (self.truth_band, truth, 1.0),
            (self.missed_band, missed, 1.0),
            (self.leaked_band, leaked, 0.6),
        ):
            edges, levels = gate_runs(frames.astype(np.float32), frame_rate)
            item.setData(edges, levels * height)

    def set_mask(self, spec: Optional[timeline_pictures.Spectrogram]) -> None:
        if spec is None:
            self.mask.clear()
            return
        self.mask.setImage(spec.image, autoLevels=False, levels=(0.0, 1.0))
        self.mask.setRect(QRectF(spec.start_s, spec.log_fmin, spec.duration_s, spec.log_fmax - spec.log_fmin))
        self.mask_plot.setYRange(spec.log_fmin, spec.log_fmax, padding=0)


def _fmt_db(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:+.2f} dB"


class TeachingHeader(QFrame):
    """A stem's teaching strip: what to hear (estimate, truth, error) and its figures against the truth."""

    listen_changed = Signal(int, str)

    def __init__(self, index: int, name: str, colour: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.index, self.name = index, name
        outer = stem_header_layout(self, colour, TEACHING_HEIGHT)
        box = QVBoxLayout()
        box.setContentsMargins(0, 6, 0, 6)
        box.setSpacing(4)
        top = QHBoxLayout()
        title = QLabel(f"Truth · {name}")
        title.setObjectName("StemName")
        title.setStyleSheet(f"color: {colour};")
        top.addWidget(title, 1)
        hear = QLabel("Hear")
        hear.setObjectName("Dim")
        top.addWidget(hear)
        self.listen_group = QButtonGroup(self)
        self.listen_group.setExclusive(True)
        self.listen_buttons: dict[str, QPushButton] = {}
        tips = {
            "estimate": f"Hear the separated {name} (as gated now)",
            "truth": f"Hear the true {name} stem",
            "error": f"Hear what the estimate got wrong: the true {name} minus the estimate",
        }
        for mode in LISTEN_MODES:
            b = QPushButton(LISTEN_WORDS[mode])
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(tips[mode])
            b.setObjectName("Listen")
            self.listen_group.addButton(b)
            self.listen_buttons[mode] = b
            top.addWidget(b)
        self.listen_buttons["estimate"].setChecked(True)
        self.listen_group.buttonToggled.connect(self._on_listen)
        box.addLayout(top)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(3)
        self.values: dict[str, QLabel] = {}
        rows = [
            ("SDR", (("sdr_gated", "gated", "SDR of the gated estimate against the true stem (as stemlab evaluate)"),
                     ("sdr_mixture", "mixture", "SDR of the mixture itself: where the separation started"),
                     ("improvement", "gain", "How far the separation got beyond the mixture"))),
            ("Activity", (("precision", "P", "Precision of the gate against the true activity"),
                          ("recall", "R", "Recall of the gate against the true activity"),
                          ("f1", "F1", "F1 of the gate against the true activity (as stemlab evaluate)"))),
            ("Frames", (("missed", "missed", "Frames where the stem plays but the gate is shut (red)"),
                        ("leaked", "leaked", "Frames where the gate is open but the stem is silent (yellow)"),
                        ("truth_share", "plays", "Share of the song where the true stem sounds"))),
        ]
        for r, (head, cells) in enumerate(rows):
            h = QLabel(head)
            h.setObjectName("Dim")
            grid.addWidget(h, r, 0)
            for c, (key, word, tip) in enumerate(cells):
                cell = QLabel(f"{word} –")
                cell.setObjectName("Value")
                cell.setToolTip(tip)
                grid.addWidget(cell, r, c + 1)
                self.values[key] = cell
        grid.setColumnStretch(3, 1)
        box.addLayout(grid)
        legend = QLabel(
            f"<span style='color:{colour}'>■</span> true activity &nbsp; "
            f"<span style='color:{MISSED_COLOUR}'>■</span> missed &nbsp; "
            f"<span style='color:{LEAKED_COLOUR}'>■</span> leaked"
        )
        legend.setObjectName("Dim")
        box.addWidget(legend)
        mask = QLabel("Mask: the share of the mix the model keeps for this stem, before gating "
                      "(dark 0, yellow 1)")
        mask.setObjectName("Dim")
        mask.setWordWrap(True)
        box.addWidget(mask)
        box.addStretch(1)
        outer.addLayout(box, 1)
        self._words = {key: cell.text().split(" ")[0] for key, cell in self.values.items()}

    def _on_listen(self, button: QPushButton, checked: bool) -> None:
        if checked:
            for mode, b in self.listen_buttons.items():
                if b is button:
                    self.listen_changed.emit(self.index, mode)

    @property
    def listen(self) -> str:
        for mode, b in self.listen_buttons.items():
            if b.isChecked():
                return mode
        return "estimate"

    def set_listen(self, mode: str) -> None:
        self.listen_buttons[mode].setChecked(True)

    def set_figures(self, f: StemFigures) -> None:
        w = self._words
        v = self.values
        if f.sdr_gated is None:
            v["sdr_gated"].setText("silent in truth")
            v["sdr_mixture"].setText(f"estimate {f.silent_db:+.1f} dB" if f.silent_db is not None else "")
            v["sdr_mixture"].setToolTip("The estimate's energy against the mixture's: how quiet a silent stem stays")
            v["improvement"].setText("")
        else:
            v["sdr_gated"].setText(f"{w['sdr_gated']} {_fmt_db(f.sdr_gated)}")
            v["sdr_mixture"].setText(f"{w['sdr_mixture']} {_fmt_db(f.sdr_mixture)}")
            v["improvement"].setText(f"{w['improvement']} {_fmt_db(f.improvement)}")
        v["precision"].setText(f"P {f.precision:.3f}")
        v["recall"].setText(f"R {f.recall:.3f}")
        v["f1"].setText(f"F1 {f.f1:.3f}")
        n = max(1, f.n_frames)
        v["missed"].setText(f"missed {100 * f.n_missed / n:.1f}%")
        v["leaked"].setText(f"leaked {100 * f.n_leaked / n:.1f}%")
        v["truth_share"].setText(f"plays {100 * f.n_truth / n:.0f}%")

    def text(self) -> str:
        """The figures as shown (for tests and the status bar)."""
        return " ".join(cell.text() for cell in self.values.values())


class TeachingController(QObject):
    """The song's truth and what the teaching view shows of it; the main window feeds it events."""

    truth_loaded = Signal(object)  # Truth
    truth_failed = Signal(str)
    figures_updated = Signal(object)  # {source: StemFigures}
    parts_built = Signal()  # teaching lanes were added to or removed from the rows
    listen_changed = Signal()
    report_written = Signal(list)  # the paths written
    report_failed = Signal(str)

    def __init__(
        self,
        runner: JobRunner,
        lock: threading.Lock,
        x_link: TrackView,
        connect_plot: Callable[[TrackView], None],
        levels: Callable[[], tuple[float, float]],
        parent: Optional[QObject] = None,
        ruler: Optional[QWidget] = None,
    ) -> None:
        super().__init__(parent)
        self.ruler = ruler  # the timeline's time ruler (its top RULER_HEIGHT pixels), drawn atop each PNG
        self.runner, self.lock = runner, lock
        self.x_link, self.connect_plot, self.levels = x_link, connect_plot, levels
        self.truth: Optional[Truth] = None
        self.data: Optional[TeachingData] = None
        self.figures: dict[str, StemFigures] = {}
        self.song: Any = None
        self.result: Any = None
        self.rows: list[StemRow] = []
        self.lanes: dict[str, TruthLane] = {}
        self.headers: dict[str, TeachingHeader] = {}
        self._gates: Optional[np.ndarray] = None
        self._frames: dict[str, timeline_pictures.BandFrames] = {}
        self._load_worker: Optional[Worker] = None
        self._prep_worker: Optional[Worker] = None
        self._fig_worker: Optional[Worker] = None
        self._fig_pending = False
        self._fig_sources: set[str] = set()  # the stems to rescore next
        self._fig_running: list[str] = []  # the stems the running job scores
        self.mixer: Any = None
        self.last_figures_ms: Optional[float] = None

    # ---- events from the window ------------------------------------------------------------------
    def set_song(self, song: Any) -> None:
        """A new song is shown: the old one's truth goes."""
        for w in (self._load_worker, self._prep_worker, self._fig_worker):
            if w is not None:
                w.cancel()
        self.song = song
        self.truth = None
        self.clear_separation()

    def attach(self, folder: str | Path, sources: list[str]) -> None:
        """Read a folder of true stems for the open song, in a worker (truth_loaded or truth_failed)."""
        song = self.song
        if song is None:
            self.truth_failed.emit("Open a song first; true stems belong to a song.")
            return
        if self._load_worker is not None:
            self._load_worker.cancel()
        w = Worker(load_truth, Path(folder), list(sources), song.sample_rate, song.samples.shape[-1],
                   song.stereo, name="reading the true stems")
        w.signals.finished.connect(lambda truth, song=song: self._on_truth(truth, song))
        w.signals.failed.connect(self.truth_failed)
        w.signals.done.connect(lambda w=w: self._done("_load_worker", w))
        self._load_worker = w
        self.runner.start(w)

    def show_separation(self, result: Any, rows: list[StemRow], gates: np.ndarray,
                        frames: dict[str, timeline_pictures.BandFrames], mixer: Any) -> None:
        """A separation is on screen (rows in source order); with a truth, prepare its teaching view."""
        self.clear_separation()
        self.result, self.rows, self.mixer = result, list(rows), mixer
        self._gates = np.array(gates, copy=True)
        self._frames = frames
        self._prepare()

    def clear_separation(self) -> None:
        for w in (self._prep_worker, self._fig_worker):
            if w is not None:
                w.cancel()
        self._fig_pending = False
        for row in self.rows:
            row.clear_extra()
        had = bool(self.lanes)
        self.rows, self.lanes, self.headers = [], {}, {}
        self.result, self.data, self.figures, self._gates = None, None, {}, None
        self._fig_sources = set()
        if self.mixer is not None:
            self.mixer.set_truth(None)
        if had:
            self.parts_built.emit()

    def regated(self, gates: np.ndarray, sources: list[str]) -> None:
        """The stems of `sources` were re-gated with `gates` (all sources): redraw the lanes, rescore."""
        self._gates = np.array(gates, copy=True)
        if self.data is None or self.result is None:
            return
        self._draw_lanes()
        self._request_figures(sources)

    # ---- state for the window --------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.truth is not None and self.data is not None and bool(self.lanes)

    def listen(self, i: int) -> str:
        if self.result is None or i >= len(self.result.sources):
            return "estimate"
        h = self.headers.get(self.result.sources[i])
        return h.listen if h is not None else "estimate"

    def set_listen(self, source: str, mode: str) -> None:
        self.headers[source].set_listen(mode)

    def images(self) -> list[pg.ImageItem]:
        """The true stems' spectrogram images (they share the timeline's colour bar)."""
        return [lane.spec.image for lane in self.lanes.values()]

    def truth_frames(self) -> dict[str, timeline_pictures.BandFrames]:
        """The band frames of the true stems on screen (for the tiles of a zoomed-in view)."""
        if self.truth is None:
            return {}
        return {s: self.truth.frames[s] for s in self.lanes if s in self.truth.frames}

    def show_spectrograms(self, tiles: Optional[dict[str, timeline_pictures.Spectrogram]]) -> None:
        """Draw the true stems' tiles of the span on screen, or (None) their whole-song pictures."""
        if self.truth is None:
            return
        for s, lane in self.lanes.items():
            spec = self.truth.spectrograms[s] if tiles is None else tiles.get(s)
            if spec is not None:
                lane.spec.set_spectrogram(spec, self.levels())

    def playheads(self) -> list[pg.InfiniteLine]:
        return [line for lane in self.lanes.values() for line in lane.playheads]

    def set_audible(self, audible: list[bool]) -> None:
        """Dim the teaching lanes of stems the mixer silences, as their own lanes are."""
        if self.result is None:
            return
        for s, lane in self.lanes.items():
            i = self.result.sources.index(s)
            lane.widget.ci.setOpacity(1.0 if i >= len(audible) or audible[i] else 0.35)

    # ---- the work --------------------------------------------------------------------------------
    def _done(self, attr: str, w: Worker) -> None:
        if getattr(self, attr) is w:
            setattr(self, attr, None)

    def _on_truth(self, truth: Truth, song: Any) -> None:
        if song is not self.song:
            return  # another song was opened meanwhile
        self.truth = truth
        self.truth_loaded.emit(truth)
        if self.result is not None:
            self._prepare()

    def _prepare(self) -> None:
        if self.truth is None or self.result is None or self.song is None:
            return
        if self.truth.n_samples != self.result.n_samples or self.truth.sample_rate != self.result.sample_rate:
            self.truth_failed.emit("The true stems do not match this separation's length or rate.")
            return
        if self._prep_worker is not None:
            self._prep_worker.cancel()
        result = self.result
        w = Worker(prepare_teaching, self.truth, result, self.song.stereo, dict(self._frames),
                   name="preparing the teaching view")
        w.signals.finished.connect(lambda data, result=result: self._on_prepared(data, result))
        w.signals.failed.connect(self.truth_failed)
        w.signals.done.connect(lambda w=w: self._done("_prep_worker", w))
        self._prep_worker = w
        self.runner.start(w)

    def _on_prepared(self, data: TeachingData, result: Any) -> None:
        if result is not self.result or self.truth is None:
            return
        self.data = data
        truth = self.truth
        for i, s in enumerate(result.sources):
            if s not in truth.stems or i >= len(self.rows):
                continue
            colour = theme.stem_colour(s, i)
            lane = TruthLane(s, colour)
            lane.spec.set_spectrogram(truth.spectrograms[s], self.levels())
            lane.set_mask(data.masks.get(s))
            for p in lane.plots():
                p.setXLink(self.x_link)
                self.connect_plot(p)
            header = TeachingHeader(i, s, colour)
            header.listen_changed.connect(lambda *_: self.listen_changed.emit())
            self.rows[i].add_extra(header, lane.widget)
            self.lanes[s], self.headers[s] = lane, header
        if self.mixer is not None:
            self.mixer.set_truth([truth.stems.get(s) for s in result.sources])
        self._draw_lanes()
        self.parts_built.emit()
        self._request_figures(list(result.sources))

    def _draw_lanes(self) -> None:
        if self.data is None or self.result is None or self._gates is None:
            return
        fr = self.result.frame_rate
        for s, lane in self.lanes.items():
            i = self.result.sources.index(s)
            lanes = activity_lanes(self.data.activity[s], self._gates[i])
            lane.set_lanes(lanes.truth, lanes.missed, lanes.leaked, fr)

    def _request_figures(self, sources: Optional[list[str]] = None) -> None:
        """Score the stems of `sources` as gated now; one job at a time, the newest setting wins: a
        request meanwhile cancels the running job (its scores are stale) and runs, merged with what that
        job had to score, once it ends."""
        if self.truth is None or self.data is None or self.result is None or self._gates is None:
            return
        self._fig_sources |= set(self.result.sources if sources is None else sources)
        if self._fig_worker is not None:
            self._fig_pending = True
            self._fig_worker.cancel()
            return
        self._fig_pending = False
        result = self.result
        names, self._fig_sources = [s for s in result.sources if s in self._fig_sources], set()
        self._fig_running = names
        t0 = time.perf_counter()
        w = Worker(compute_figures, self.truth, self.data.activity, result, self._gates, self.song.stereo,
                   self.lock, names, name="scoring the stems")
        w.signals.finished.connect(lambda figs, result=result, t0=t0: self._on_figures(figs, result, t0))
        w.signals.failed.connect(self.truth_failed)
        w.signals.done.connect(self._figures_done)
        self._fig_worker = w
        self.runner.start(w)

    def _figures_done(self) -> None:
        w, self._fig_worker = self._fig_worker, None
        if w is not None and w.cancel_event.is_set():
            self._fig_sources |= set(self._fig_running)  # cancelled: nothing of it was shown
        if self._fig_pending:
            self._request_figures([])

    def _on_figures(self, figures: dict[str, StemFigures], result: Any, t0: float) -> None:
        if result is not self.result:
            return
        self.last_figures_ms = (time.perf_counter() - t0) * 1000.0
        self.figures.update(figures)
        for s, f in figures.items():
            if s in self.headers:
                self.headers[s].set_figures(f)
        if not self._fig_pending:
            self.figures_updated.emit(dict(self.figures))

    # ---- the report ------------------------------------------------------------------------------
    def report_files(self, folder: Path, song_name: str) -> tuple[dict[str, Path], Path]:
        pngs, csv = report_names(song_name, list(self.lanes))
        return {s: Path(folder) / name for s, name in pngs.items()}, Path(folder) / csv

    def choose_and_export(self, parent: QWidget, start_folder: str, song_name: str, gating: dict[str, Any],
                          status: Callable[[str], None]) -> None:
        """Ask for a folder, ask before replacing any file, then write the report (report_written)."""
        if not self.active:
            status("Attach the song's true stems and separate it first (File ▸ Attach truth stems…).")
            return
        folder = QFileDialog.getExistingDirectory(parent, "Export the teaching report into", start_folder)
        if folder:
            self.export_report(Path(folder), song_name, gating, parent, status)

    def export_report(self, folder: Path, song_name: str, gating: dict[str, Any], parent: QWidget,
                      status: Callable[[str], None]) -> None:
        pngs, csv = self.report_files(folder, song_name)
        if not confirm_replace(parent, [*pngs.values(), csv], "of a teaching report"):
            status("Teaching report not exported: nothing was overwritten.")
            return
        images = {}
        for s, path in pngs.items():
            row = self.rows[self.result.sources.index(s)]
            images[path] = _png_bytes(self._report_image(row, f"{song_name} · {s}"))
        ordered = [self.figures[s] for s in self.result.sources if s in self.figures]
        text = figures_csv(ordered, gating)
        w = Worker(write_report, images, csv, text, name="writing the teaching report")
        w.signals.finished.connect(lambda paths: self.report_written.emit(list(paths)))
        w.signals.failed.connect(self.report_failed)
        self.runner.start(w)


    def _report_image(self, row: StemRow, title: str) -> QImage:
        """A stem's row as on screen, undimmed, under the timeline's time ruler."""
        plots = row.findChildren(pg.GraphicsLayoutWidget)
        opacity = [p.ci.opacity() for p in plots]
        for p in plots:
            p.ci.setOpacity(1.0)
        body = row.grab().toImage()
        for p, o in zip(plots, opacity):
            p.ci.setOpacity(o)
        if self.ruler is None:
            return body
        ruler = self.ruler.grab(QRect(0, 0, self.ruler.width(), RULER_HEIGHT)).toImage()
        out = QImage(body.width(), body.height() + RULER_HEIGHT, QImage.Format.Format_RGB32)
        out.fill(QColor(theme.BACKGROUND))
        painter = QPainter(out)
        painter.drawImage(HEADER_WIDTH, 0, ruler)
        painter.drawImage(0, RULER_HEIGHT, body)
        painter.setPen(QColor(theme.TEXT))
        painter.drawText(QRect(8, 0, HEADER_WIDTH - 16, RULER_HEIGHT), int(Qt.AlignmentFlag.AlignVCenter), title)
        painter.end()
        return out


def _png_bytes(image: Any) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def write_report(images: dict[Path, bytes], csv_path: Path, csv_text: str, *, progress: Any = None,
                 cancel: Optional[threading.Event] = None) -> list[Path]:
    """Write the report's PNGs and CSV, each atomically (a worker's job)."""
    from engine.audio import write_file_atomic, write_text_atomic
    from engine.progress import check_cancel

    written = []
    for path, data in images.items():
        check_cancel(cancel)

        def write(fh: BinaryIO, data: bytes = data) -> None:
            fh.write(data)

        written.append(write_file_atomic(path, write))
    written.append(write_text_atomic(csv_path, csv_text))
    return written

