"""The timeline's pictures: waveform overview and log-frequency spectrogram."""

from __future__ import annotations

import numpy as np

from app.timeline_pictures import log_spectrogram, overview

SR = 44100


def test_overview_buckets_hold_min_and_max() -> None:
    x = np.zeros((2, 10000), np.float32)
    x[:, 1234] = 0.9
    x[:, 7000] = -0.5
    ov = overview(x, SR, n_buckets=100)
    assert ov.lo.shape == ov.hi.shape == (100,)
    assert ov.hi.max() == np.float32(0.9) and ov.lo.min() == np.float32(-0.5)
    assert abs(ov.times[np.argmax(ov.hi)] - 1234 / SR) < 100 / SR


def test_spectrogram_is_decimated_and_puts_a_tone_in_its_band() -> None:
    t = np.arange(SR * 30) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    spec = log_spectrogram(x, SR, max_columns=500)
    assert spec.image.shape[0] <= 500 and spec.image.dtype == np.float32
    assert abs(spec.duration_s - 30.0) < 0.5
    centres = (
        spec.log_fmin
        + (np.arange(spec.image.shape[1]) + 0.5) * (spec.log_fmax - spec.log_fmin) / spec.image.shape[1]
    )
    peak_hz = 10 ** centres[np.argmax(spec.image[len(spec.image) // 2])]
    assert 900 < peak_hz < 1100
    # a short click in a long song still shows in its (averaged) column
    y = np.zeros(SR * 60, np.float32)
    y[SR * 30 : SR * 30 + 256] = 0.8
    img = log_spectrogram(y, SR, max_columns=200).image
    assert img.max(axis=1).argmax() in range(95, 105)


def test_display_levels_put_silence_at_the_bottom_of_the_colour_map() -> None:
    from app.timeline_pictures import DB_FLOOR, display_levels

    silent = log_spectrogram(np.zeros(SR, np.float32), SR).image
    lo, hi = display_levels(silent)
    assert lo == DB_FLOOR and hi > lo  # a range, with silence its lowest colour
    assert np.all(np.abs(silent - lo) < 1e-3)
    t = np.arange(SR) / SR
    loud = log_spectrogram((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR).image
    lo, hi = display_levels(loud)
    assert hi >= loud.max() and hi - lo == 75.0
    quiet = log_spectrogram((1e-4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR).image
    lo, hi = display_levels(quiet)
    assert lo == DB_FLOOR and hi > quiet.max()  # its floor is the bottom colour, not mid-scale
    # nothing finite, or nothing at all: still a finite, non-empty range
    for img in (np.full((4, 3), -np.inf, np.float32), np.full((4, 3), np.nan, np.float32), np.zeros((0, 3))):
        lo, hi = display_levels(img)
        assert np.isfinite([lo, hi]).all() and hi > lo
