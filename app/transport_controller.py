"""The transport for the main window: play, pause, stop, seek, loop, solo/mute keys and A/B; the 30 Hz timer
that moves the playheads, the clock and the meters after the audio callback's position."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QStyle

from .edit_model import EditModel
from .widgets import TrackView, format_time

if TYPE_CHECKING:
    from .main_window import MainWindow


class TransportController(QObject):
    def __init__(self, window: MainWindow, edit: EditModel) -> None:
        super().__init__(window)
        self.w = window
        self.edit = edit
        self.playback_warned = False
        self.last_tick = time.perf_counter()
        self._was_playing = False

    def check_playback(self) -> None:
        if not self.w.player.check():
            self.w.playback_label.setText("No playback")
            self.w.playback_label.setToolTip(f"Playback is unavailable: {self.w.player.reason}")
            if not self.playback_warned:
                self.playback_warned = True
                self.w.show_message(
                    "playback",
                    "warning",
                    f"Playback is unavailable: {self.w.player.reason}. You can still separate, view "
                    "and export songs.",
                )
        else:
            self.w.playback_label.setText(f"Output: {self.w.player.device_name}")

    def toggle_play(self) -> None:
        if self.w.song is None:
            return
        if self.w.player.playing:
            self.w.player.pause()
            self.w.status("Paused")
        elif self.w.player.play():
            self.w.status("Playing")
        else:
            reason = self.w.player.reason or "no sound output"
            if not self.playback_warned:
                self.playback_warned = True
                self.w.show_message(
                    "playback",
                    "warning",
                    f"Playback is unavailable: {reason}. You can still separate, view and export songs.",
                )
            self.w.status(f"Playback is unavailable: {reason}")
        self.update_play_icon()

    def stop(self) -> None:
        self.w.player.pause()
        self.seek(self.w.mixer.loop[0] / self.w.mixer.sample_rate if self.w.mixer.loop else 0.0)
        self.update_play_icon()

    def seek(self, seconds: float) -> None:
        if self.w.song is None:
            return
        sample = int(round(max(0.0, min(seconds, self.w.song.duration_s)) * self.w.song.sample_rate))
        self.w.mixer.seek(sample)
        if not self.w.player.playing:
            self.w.mixer.position = sample
        self.move_playheads(sample / self.w.song.sample_rate)
        self.update_clock()

    def nudge(self, seconds: float) -> None:
        if self.w.song is not None:
            self.seek(self.w.mixer.position / self.w.mixer.sample_rate + seconds)

    def set_looping(self, on: bool) -> None:
        if self.w.song is None or self.w.edit_view.syncing:
            return
        if on:
            (x0, x1), _ = self.w.overview_plot.getViewBox().viewRange()
            a, b = self.w.loop_region.getRegion()
            if b <= x0 or a >= x1:  # the region is off screen: put it in the middle of the view
                span = x1 - x0
                self.w.loop_region.setRegion((x0 + 0.3 * span, x0 + 0.6 * span))
                self.w.grid.snap_loop()
            self.edit.set_looping(True)
            self.w.status("Looping the highlighted region (drag its edges in the waveform)")
        else:
            self.edit.set_looping(False)
            self.w.status("Loop off")

    def toggle_solo(self, k: int) -> None:
        if k < len(self.edit.sources) and k < len(self.w.headers):
            source = self.edit.sources[k]
            self.edit.set_strip(source, solo=not self.edit.strip(source).solo)

    def toggle_mute(self, k: int) -> None:
        if k < len(self.edit.sources) and k < len(self.w.headers):
            source = self.edit.sources[k]
            self.edit.set_strip(source, mute=not self.edit.strip(source).mute)

    def set_ab(self, on: bool) -> None:
        if self.w.edit_view.syncing:
            return
        self.edit.set_play_original(on)
        self.w.status("B: playing the original song" if on else "A: playing your stem mix")

    def on_plot_clicked(self, plot: TrackView, ev: Any) -> None:
        if self.w.song is None or ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        vb = plot.getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        x = vb.mapSceneToView(ev.scenePos()).x()
        self.seek(float(x))

    def move_playheads(self, t: float) -> None:
        for line in self.w.playheads:
            line.setValue(t)
        for lane in self.w.lanes:
            for line in lane.playheads:
                line.setValue(t)
        for line in self.w.teaching.playheads():
            line.setValue(t)

    def update_clock(self) -> None:
        if self.w.song is None:
            self.w.clock.setText("0:00.0 / 0:00.0")
            return
        t = self.w.mixer.position / self.w.mixer.sample_rate
        self.w.clock.setText(f"{format_time(t)} / {format_time(self.w.song.duration_s)}")

    def update_play_icon(self) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if self.w.player.playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.w.act_play.setIcon(self.w.style().standardIcon(icon))
        self.w.act_play.setText("Pause" if self.w.player.playing else "Play")
        self.w.act_play.setIconText(self.w.act_play.text())  # the toolbar's word, set apart in _build_actions

    def tick(self) -> None:
        """The UI timer (30 Hz): playhead, clock and meters follow the audio callback's position."""
        now = time.perf_counter()
        dt, self.last_tick = now - self.last_tick, now
        if self.w.song is None:
            return
        playing = self.w.player.playing
        if playing or self._was_playing:
            t = self.w.mixer.position / self.w.mixer.sample_rate
            self.move_playheads(t)
            self.update_clock()
            (x0, x1), _ = self.w.overview_plot.getViewBox().viewRange()
            if playing and (t > x1 or t < x0) and x1 - x0 < self.w.song.duration_s * 0.999:
                span = x1 - x0
                self.w.overview_plot.setXRange(t, min(self.w.song.duration_s, t + span), padding=0)
            levels = self.w.mixer.levels
            n = len(self.w.headers)
            if playing and levels.shape[0] == n + 2:
                for i, h in enumerate(self.w.headers):
                    h.meter.set_peaks(levels[i, 0], levels[i, 1], dt)
                self.w.master.meter.set_peaks(levels[-1, 0], levels[-1, 1], dt)
            if not playing and self._was_playing:
                self.update_play_icon()
        if not playing:
            # Stopped, the meters fall back to silence at their own rate (not frozen at the last peak).
            for m in self.meters():
                if not m.silent:
                    m.set_peaks(0.0, 0.0, dt)
        self._was_playing = playing

    def meters(self) -> list[Any]:
        return [h.meter for h in self.w.headers] + [self.w.master.meter]

    def reset_meters(self) -> None:
        for m in self.meters():
            m.reset()
