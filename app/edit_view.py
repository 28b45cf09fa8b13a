"""Binds the edit (app.edit_model) to what shows and plays it: the stems' strips and lanes, the master
strip, the loop region, the Loop and A/B actions, and the audio mixer.

One direction each way: a gesture on a widget becomes a change of the model, and every change of
the model (a gesture, an undo, a session, a re-separation) is written back into every widget and into
the audio mixer. Widgets never talk to the mixer or to each other, so what is shown, heard, saved and
exported cannot drift apart.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import numpy as np
from PySide6.QtCore import QObject

from .edit_model import EditModel
from .mixer import Mixer, StripSettings
from .settings import Settings
from .widgets import MasterHeader, StemLane, TrackHeader


class EditView(QObject):
    """The model's views and controllers for the mix, the gating and the loop.

    regate(sources): called when the gating of those stems changed (the window re-renders them).
    """

    def __init__(
        self,
        model: EditModel,
        mixer: Mixer,
        master: MasterHeader,
        loop_region: Any,
        act_loop: Any,
        act_ab: Any,
        teaching: Any,
        settings: Settings,
        regate: Callable[[list[str]], None],
        parent: Optional[QObject] = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.mixer, self.master = model, mixer, master
        self.loop_region, self.act_loop, self.act_ab = loop_region, act_loop, act_ab
        self.teaching, self.settings, self.regate = teaching, settings, regate
        self.headers: list[TrackHeader] = []
        self.lanes: list[StemLane] = []
        self.syncing = False  # writing the model into the widgets: their signals are not gestures
        master.mixer_changed.connect(self._on_master_widgets)
        master.gating.changed.connect(self._on_global_gating_widgets)
        master.gain.slider.sliderReleased.connect(model.seal)
        master.gating.threshold.sliderReleased.connect(model.seal)
        loop_region.sigRegionChanged.connect(self._on_region_widget)
        # a drag of the whole region moves it a last time on release, with only this signal
        loop_region.sigRegionChangeFinished.connect(self._on_region_finished)
        teaching.listen_changed.connect(self.push_mixer)
        ev = model.events
        ev.strips.connect(self._show_strips)
        ev.master.connect(self._show_master)
        ev.gating.connect(self._show_gating)
        ev.loop.connect(self._show_loop)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        was, self.syncing = self.syncing, True
        try:
            yield
        finally:
            self.syncing = was

    # ---- the stems' widgets ------------------------------------------------------------------------
    def show_stems(self, headers: list[TrackHeader], lanes: list[StemLane]) -> None:
        """New strips and lanes (a separation on screen), in source order; the model fills them."""
        self.headers, self.lanes = list(headers), list(lanes)
        for i, (h, lane) in enumerate(zip(headers, lanes)):
            h.mixer_changed.connect(self._on_strip_widgets)
            h.gating_changed.connect(self._on_stem_gating_widgets)
            for slider in (h.gain.slider, h.pan, h.gating.threshold):
                slider.sliderReleased.connect(self.model.seal)
            lane.threshold_line.sigPositionChangeFinished.connect(lambda line, i=i: self._on_line_dragged(i, line))

    def clear_stems(self) -> None:
        self.headers, self.lanes = [], []

    def _source(self, i: int) -> Optional[str]:
        sources = self.model.sources
        return sources[i] if i < len(sources) and i < len(self.headers) else None

    # ---- gestures -> the model -----------------------------------------------------------------------
    def _on_strip_widgets(self, i: int) -> None:
        source = self._source(i)
        if self.syncing or source is None:
            return
        h, old = self.headers[i], self.model.strip(source)
        now = {
            "gain_db": h.gain.db, "pan": h.pan.value() / 100.0, "mute": h.mute.isChecked(), "solo": h.solo.isChecked()
        }
        changes = {k: v for k, v in now.items() if getattr(old, k) != v}
        if changes:
            # a fader dragged (or stepped by its keys) is one undo step until it is released
            key = next((f"{k}:{source}" for k in ("gain_db", "pan") if k in changes), None)
            self.model.set_strip(source, coalesce=key, **changes)

    def _on_stem_gating_widgets(self, i: int) -> None:
        source = self._source(i)
        if self.syncing or source is None:
            return
        h, old = self.headers[i], self.model.stem_gating(source)
        if h.linked.isChecked() != old.linked:
            self.model.set_stem_gating(source, linked=h.linked.isChecked())
            return
        if old.linked:
            return
        changes = {"threshold": h.gating.threshold_value, "median_ms": h.gating.median_ms}
        changes = {k: v for k, v in changes.items() if getattr(old, k) != v}
        if changes:
            key = f"threshold:{source}" if "threshold" in changes else None
            self.model.set_stem_gating(source, coalesce=key, **changes)

    def _on_line_dragged(self, i: int, line: Any) -> None:
        source = self._source(i)
        if self.syncing or source is None:
            return
        self.model.set_stem_gating(source, linked=False, threshold=float(np.clip(line.value(), 0.0, 1.0)))
        self.model.seal()
        with self._writing():  # the line lands on the threshold's step, changed or not
            self._show_gating_widgets([source], False)

    def _on_master_widgets(self) -> None:
        if self.syncing:
            return
        self.model.set_master_gain(self.master.gain.db)
        self.model.set_play_original(self.master.ab.isChecked())

    def _on_global_gating_widgets(self) -> None:
        if self.syncing:
            return
        g, old = self.master.gating, self.model.mix.gating
        key = "master threshold" if g.threshold_value != old.threshold else None
        self.model.set_global_gating(
            mode=g.mode_value, threshold=g.threshold_value, median_ms=g.median_ms, coalesce=key
        )
        new = self.model.mix.gating
        # the user's choice is also the next song's start (QSettings)
        self.settings.set("gating/threshold", new.threshold)
        self.settings.set("gating/median_ms", new.median_ms)
        self.settings.set("gating/mode", new.mode)

    def _on_region_widget(self, *_: Any) -> None:
        if self.syncing:
            return
        a, b = self.loop_region.getRegion()
        self.model.set_region(a, b)

    def _on_region_finished(self, *_: Any) -> None:
        self._on_region_widget()
        self.model.seal()

    # ---- the model -> widgets and the audio mixer ------------------------------------------------------
    def push_all(self) -> None:
        """Write the whole edit into the widgets and the mixer (after the mixer got new tracks)."""
        sources = list(self.model.sources)
        self._show_strips(sources)
        self._show_master()
        with self._writing():  # no re-gating: the caller gated the stems already
            self._show_gating_widgets(sources, True)
        self._show_loop()

    def _show_strips(self, sources: list[str]) -> None:
        with self._writing():
            for i, source in enumerate(self.model.sources[: len(self.headers)]):
                if source not in sources:
                    continue
                h, st = self.headers[i], self.model.strip(source)
                h.mute.setChecked(st.mute)
                h.solo.setChecked(st.solo)
                h.gain.set_db(st.gain_db)
                h.pan.setValue(int(round(st.pan * 100)))
        self.push_mixer()

    def _show_master(self) -> None:
        with self._writing():
            self.master.gain.set_db(self.model.mix.master_gain_db)
            self.master.ab.setChecked(self.model.play_original)
            self.act_ab.setChecked(self.model.play_original)
        self.push_mixer()

    def _show_gating(self, sources: list[str], global_changed: bool) -> None:
        with self._writing():
            self._show_gating_widgets(sources, global_changed)
        self.regate(list(sources))

    def _show_gating_widgets(self, sources: list[str], global_changed: bool) -> None:
        g = self.model.mix.gating
        if global_changed:
            self.master.gating.set_values(g.threshold, g.median_ms, g.mode)
        for i, source in enumerate(self.model.sources[: len(self.headers)]):
            if source not in sources:
                continue
            h, own, eff = self.headers[i], self.model.stem_gating(source), self.model.effective_gating(source)
            h.linked.setChecked(own.linked)
            h.gating.setEnabled(not own.linked)
            h.gating.set_values(eff.threshold, eff.median_ms)
            self.lanes[i].set_threshold(eff.threshold, g.mode)

    def _show_loop(self) -> None:
        m = self.model
        with self._writing():
            if tuple(self.loop_region.getRegion()) != m.region:
                self.loop_region.setRegion(m.region)
            self.loop_region.setVisible(m.looping)
            self.act_loop.setChecked(m.looping)
        self.push_loop()

    def push_loop(self) -> None:
        m, sr = self.model, self.mixer.sample_rate
        if m.mix.loop is None or m.song is None:
            self.mixer.set_loop(None)
        else:
            a, b = m.mix.loop
            self.mixer.set_loop(int(a * sr), int(b * sr))

    def push_mixer(self) -> None:
        """The audio mixer's strips and master from the model (and what the teaching view plays)."""
        m = self.model
        strips = [
            StripSettings(st.gain_db, st.pan, st.mute, st.solo, listen=self.teaching.listen(i))
            for i, st in enumerate(m.strip(s) for s in m.sources)
        ]
        if len(strips) == self.mixer.n_sources:
            self.mixer.strips = strips
        audible = m.audible()
        for lane, on in zip(self.lanes, audible, strict=False):
            # what you see follows what you hear: silenced stems are dimmed
            lane.widget.ci.setOpacity(1.0 if on else 0.35)
        self.teaching.set_audible(audible)
        self.mixer.master_gain_db = m.mix.master_gain_db
        self.mixer.play_original = m.play_original
        self.mixer.update_gains()
