"""The timeline's view for the main window: zoom, the waveform redrawn in detail when zoomed in, spectrogram
tiles of the span on screen (computed in a worker), and the colour bar over every spectrogram."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import QObject

from . import timeline_pictures
from .edit_model import EditModel
from .widgets import set_overview
from .workers import SpectrogramTiles, Worker, spectrogram_tiles

if TYPE_CHECKING:
    from .main_window import MainWindow

DETAIL_MAX_SAMPLES = 4_000_000
# Zoomed in so far that fewer than this many columns of the whole-song spectrogram are on screen, the
# span on screen gets its own spectrogram tile (computed in a worker), when it is at most TILE_MAX_S long.
TILE_MIN_COLUMNS = 1000
TILE_MAX_S = 900.0


class TimelineController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        self.worker: Optional[Worker] = None  # the spectrogram tiles being drawn
        self.tiles: Optional[SpectrogramTiles] = None  # the tiles on screen, None: whole-song images
        self._serial = 0
        self.detail_shown = False  # the waveform shows the span on screen in detail

    def zoom_fit(self) -> None:
        if self.w.song is not None:
            self.w.overview_plot.setXRange(0.0, self.w.song.duration_s, padding=0)

    def zoom(self, factor: float) -> None:
        if self.w.song is None:
            return
        (x0, x1), _ = self.w.overview_plot.getViewBox().viewRange()
        centre = self.w.mixer.position / self.w.mixer.sample_rate
        if not x0 <= centre <= x1:
            centre = (x0 + x1) / 2
        half = max(0.05, (x1 - x0) * factor / 2)
        self.w.overview_plot.setXRange(
            max(0.0, centre - half), min(self.w.song.duration_s, centre + half), padding=0
        )

    def request_tiles(self) -> None:
        """Zoomed in on a long song, draw the spectrograms of the span on screen in full detail (a worker
        computes them); zoomed out, go back to the whole-song images."""
        song = self.w.song
        if song is None or song.mono is None:
            return
        (x0, x1), _ = self.w.overview_plot.vb.viewRange()
        x0, x1 = max(0.0, x0), min(song.duration_s, x1)
        span = max(x1 - x0, 1e-3)
        finest = (timeline_pictures.SPEC_N_FFT // 2) / song.sample_rate  # one analysis hop per column
        whole = song.spectrogram.column_s
        if whole <= finest * 1.01 or span / whole >= TILE_MIN_COLUMNS or span * 1.5 > TILE_MAX_S:
            if self.tiles is not None or self.worker is not None:
                self.show_whole_spectrograms()
            return
        t = self.tiles
        if t is not None and t.start_s <= x0 and x1 <= t.stop_s and (
            span / t.mix.column_s >= TILE_MIN_COLUMNS or t.mix.column_s <= finest * 1.01
        ):
            return  # the tiles on screen cover the view finely enough
        pad = span / 4
        start = int(max(0.0, x0 - pad) * song.sample_rate)
        stop = int(min(song.duration_s, x1 + pad) * song.sample_rate)
        if self.worker is not None:
            self.worker.cancel()
        self._serial += 1
        w = Worker(
            spectrogram_tiles,
            song.mono,
            song.sample_rate,
            start,
            stop,
            self._serial,
            self.w.result,
            self.w.regates.frames,
            self.w.result_lock,
            self.w.teaching.truth_frames(),
            name="drawing the spectrogram",
        )
        w.signals.finished.connect(self._on_tiles)
        w.signals.done.connect(lambda w=w: self._tiles_done(w))
        self.worker = w
        self.w.runner.start(w)

    def _tiles_done(self, w: Worker) -> None:
        if self.worker is w:
            self.worker = None

    def _on_tiles(self, tiles: SpectrogramTiles) -> None:
        if tiles.serial != self._serial or self.w.song is None:
            return  # the song, the stems or the view changed meanwhile
        self.w.mix_spec.set_spectrogram(tiles.mix, self.w.levels)
        if self.w.result is not None:
            for i, name in enumerate(self.w.result.sources):
                if name in tiles.stems and i < len(self.w.lanes):
                    self.w.lanes[i].spec.set_spectrogram(tiles.stems[name], self.w.levels)
        self.w.teaching.show_spectrograms(tiles.truth)
        self.tiles = tiles
        self.w.spectrogram_detail_shown.emit()

    def show_whole_spectrograms(self) -> None:
        self._serial += 1  # a tile still being computed is dropped when it arrives
        if self.worker is not None:
            self.worker.cancel()
        self.tiles = None
        if self.w.song is not None:
            self.w.mix_spec.set_spectrogram(self.w.song.spectrogram, self.w.levels)
        for lane, spec in zip(self.w.lanes, self.w.stem_specs, strict=False):
            lane.spec.set_spectrogram(spec, self.w.levels)
        self.w.teaching.show_spectrograms(None)

    def forget_tiles(self) -> None:
        """A new song: forget tiles of the old one (its view is reset to fit by the caller)."""
        self._serial += 1
        if self.worker is not None:
            self.worker.cancel()
        self.tiles = None

    def retile(self) -> None:
        """The stem images were replaced by whole-song ones: draw tiles again if zoomed in."""
        if self.tiles is not None or self.worker is not None:
            self.tiles = None
            self._serial += 1
            self.w._detail_timer.start()

    def refresh_waveform_detail(self) -> None:
        self.request_tiles()
        song = self.w.song
        if song is None or song.mono is None:
            return
        (x0, x1), _ = self.w.overview_plot.vb.viewRange()
        sr = song.sample_rate
        a, b = max(0, int(x0 * sr)), min(song.mono.shape[0], int(x1 * sr) + 1)
        # Only when the overview's own buckets would be coarse, and the span is small enough to
        # summarise in a few ms here (at most DETAIL_MAX_SAMPLES samples).
        coarse = (b - a) < song.mono.shape[0] / 3
        if coarse and b - a <= DETAIL_MAX_SAMPLES:
            pad = (b - a) // 2
            lo, hi = max(0, a - pad), min(song.mono.shape[0], b + pad)
            set_overview(
                self.w.overview_items, timeline_pictures.overview(song.mono, sr, n_buckets=4000, start=lo, stop=hi)
            )
            self.detail_shown = True
        elif self.detail_shown:
            set_overview(self.w.overview_items, song.overview)
            self.detail_shown = False

    def relink_colorbar(self) -> None:
        self.w.colorbar.setImageItem([v.image for v in self.w.spec_views] + self.w.teaching.images())
        self.w.colorbar.setLevels(self.w.levels)

    def on_levels_changed(self, bar: Any) -> None:
        self.w.levels = tuple(float(v) for v in bar.levels())  # type: ignore[assignment]
