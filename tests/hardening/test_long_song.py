"""Long songs: memory that does not grow with the song beyond the song itself, and an app that draws
what is on screen. A real hour is measured by bench/memory.py (docs/BENCHMARKS.md), not rendered here:
these run a few minutes of audio and compare allocations between lengths (numpy's, via tracemalloc)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import soundfile as sf

from engine import Audio, Separator, load_audio
from engine.export import separate_to_folder
from tests.conftest import SR, tone_mix

WAIT = 120000


def song(minutes: float) -> np.ndarray:
    x = tone_mix(minutes * 60.0, seed=3)
    return x


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of the bytes allocated by fn (numpy arrays included), above what existed before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


@pytest.fixture(scope="module")
def separator(tiny_model: Path) -> Separator:
    return Separator.load(tiny_model, device="cpu", allow_untrained=True)


def test_streaming_separation_memory_does_not_grow_with_length(separator: Separator, tmp_path: Path) -> None:
    peaks = {}
    for minutes in (0.5, 1.5):
        audio = Audio(song(minutes), SR)  # made before measuring: the song is what the caller holds
        folder = tmp_path / f"{minutes}"
        peaks[minutes] = peak_bytes(lambda a=audio, f=folder: separate_to_folder(separator, a, f))
        assert sf.info(str(folder / "drums.wav")).frames == audio.n_samples
    a_minute_of_stems = 6 * 2 * 60 * SR * 4  # what keeping the stems in memory would add: 127 MB
    growth = peaks[1.5] - peaks[0.5]
    # Only the activity curves grow (about 125 kB a minute).
    assert growth < 0.01 * a_minute_of_stems, (peaks, growth)
    assert peaks[0.5] < 80 * 2**20, peaks  # chunk-sized buffers, not song-sized


def test_loading_holds_one_copy_of_the_song(tmp_path: Path) -> None:
    path = tmp_path / "three minutes.wav"
    x = song(3)
    sf.write(path, x.T, SR, subtype="PCM_16")
    del x
    holder: list = []
    peak = peak_bytes(lambda: holder.append(load_audio(path)))
    size = holder[0].samples.nbytes
    assert holder[0].samples.flags.c_contiguous and holder[0].samples.shape == (2, 3 * 60 * SR)
    assert peak < size * 1.1, (peak, size)  # the song plus one block, not two or three copies


def test_app_draws_tiles_of_what_is_on_screen(qtbot: Any, window: Any, tmp_path: Path) -> None:
    """A song long enough that its whole-song spectrogram is decimated: zoomed in, the mix and every
    stem get a spectrogram of the span on screen in full detail; zoomed out, the whole-song images."""
    w = window
    path = tmp_path / "ninety seconds.wav"
    sf.write(path, tone_mix(90.0).T, SR)
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT):
        w.open_path(str(path))
    whole = w.song.spectrogram
    assert whole.image.shape[0] <= 2400 and whole.column_s > 1024 / SR  # decimated
    with qtbot.waitSignal(w.spectrogram_detail_shown, timeout=WAIT):
        w.overview_plot.setXRange(40.0, 45.0, padding=0)
    tile = w._tiles.mix
    assert tile.start_s <= 40.0 and tile.start_s + tile.duration_s >= 45.0
    assert tile.column_s < whole.column_s and tile.duration_s < 10.0
    rect = w.mix_spec.image.mapRectToParent(w.mix_spec.image.boundingRect())
    assert rect.left() == pytest.approx(tile.start_s, abs=1e-6)
    # separated while zoomed in: the stems get tiles too, gated like their whole-song pictures
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    qtbot.waitUntil(lambda: w._tiles is not None and len(w._tiles.stems) == 6, timeout=WAIT)
    for lane, name in zip(w.lanes, w.result.sources, strict=True):
        img = lane.spec.image.image
        assert img.shape == w._tiles.stems[name].image.shape
    # every stem gated off: the stem tiles follow
    with qtbot.waitSignal(w.regate_done, timeout=WAIT):
        w.master.gating.threshold.setValue(100)
    qtbot.waitUntil(lambda: not w.regates.busy and w._tiles is not None and w._tile_worker is None, timeout=WAIT)
    assert float(w.lanes[0].spec.image.image.max()) <= -99.0
    # zoomed out: the whole-song images come back
    w.zoom_fit()
    qtbot.waitUntil(lambda: w._tiles is None, timeout=WAIT)
    assert w.mix_spec.image.image.shape == whole.image.shape
