import threading
from pathlib import Path

import numpy as np
import pytest

from engine import GatingSettings, SeparationCancelled, Separator
from engine.errors import AudioLoadError
from tests.conftest import tone_mix


@pytest.fixture(scope="module")
def separator(tiny_model: Path) -> Separator:
    return Separator.load(tiny_model, device="cpu", allow_untrained=True, chunk_seconds=1.0, overlap_seconds=0.2)


def test_ungated_softmax_stems_sum_to_the_mixture(separator: Separator) -> None:
    x = tone_mix(2.5)
    r = separator.separate(x, 44100, gating=GatingSettings(mode="none"))
    assert r.stems.shape == (6, 2, x.shape[1])
    assert r.activity.shape == (6, x.shape[1] // 512 + 1)
    assert 0.0 <= r.activity.min() and r.activity.max() <= 1.0
    np.testing.assert_allclose(r.stems.sum(0), x, atol=1e-4)


def test_regate_equals_fresh_separation_and_zero_threshold(separator: Separator) -> None:
    x = tone_mix(2.0, seed=3)
    r = separator.separate(x, 44100, gating=GatingSettings(mode="none"))
    setting = GatingSettings(threshold=float(np.median(r.activity)), median_frames=3)
    fresh = separator.separate(x, 44100, gating=setting)
    r.regate(setting)
    np.testing.assert_allclose(r.stems, fresh.stems, atol=1e-5)
    # threshold 0 keeps everything; threshold 1 silences any source whose probability never reaches 1
    r.regate(GatingSettings(threshold=0.0, median_frames=1))
    np.testing.assert_allclose(r.stems.sum(0), x, atol=1e-4)
    r.regate(GatingSettings(threshold=1.0, median_frames=1), sources=["drums"])
    assert np.abs(r.stem("drums")).max() == 0.0
    assert np.abs(r.stem("vocals")).max() > 0.0


def test_other_sample_rates_and_mono(separator: Separator) -> None:
    x = tone_mix(1.5, sample_rate=22050, channels=1)
    r = separator.separate(x, 22050, gating=GatingSettings(mode="none"))
    assert r.sample_rate == 22050 and r.stems.shape == (6, 2, x.shape[1])
    assert any("mono" in n for n in r.notes) and any("resampled" in n for n in r.notes)
    mix = r.stems.sum(0)
    # the stems, resampled back, add up to the input but for the resampler's cut just below Nyquist
    err = mix[:, 2000:-2000] - x[0, 2000:-2000]
    assert 10 * np.log10((x[0, 2000:-2000] ** 2).sum() * 2 / (err ** 2).sum()) > 25


def test_wiener_stems_sum_to_mixture_and_regate(separator: Separator) -> None:
    x = tone_mix(2.0, seed=5)
    r = separator.separate(x, 44100, gating=GatingSettings(mode="none"), wiener=True)
    np.testing.assert_allclose(r.stems.sum(0), x, atol=2e-3)
    r.regate(GatingSettings(threshold=1.0, median_frames=1), sources=["bass"])
    assert np.abs(r.stem("bass")).max() == 0.0


def test_cancel_raises_and_progress_reports(separator: Separator) -> None:
    cancel = threading.Event()
    stages = []

    def on_progress(p):
        stages.append(p)
        if p.done == 2:
            cancel.set()
    with pytest.raises(SeparationCancelled):
        separator.separate(tone_mix(6.0), 44100, progress=on_progress, cancel=cancel)
    assert stages and stages[0].stage == "separate"


def test_short_and_bad_input(separator: Separator) -> None:
    r = separator.separate(np.full((2, 100), 0.1, np.float32), 44100)
    assert r.stems.shape == (6, 2, 100)
    with pytest.raises(AudioLoadError):
        separator.separate(np.full((2, 100), np.nan, np.float32), 44100)
    with pytest.raises(AudioLoadError):
        separator.separate(np.zeros((2, 0), np.float32), 44100)


def test_keep_for_regate_false_gates_in_place(separator: Separator) -> None:
    x = tone_mix(2.0, seed=7)
    setting = GatingSettings(threshold=0.5, median_frames=3)
    a = separator.separate(x, 44100, gating=setting)
    b = separator.separate(x, 44100, gating=setting, keep_for_regate=False)
    assert b.ungated is None
    np.testing.assert_allclose(a.stems, b.stems, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_regate_cache_on_disk_gives_the_same_stems_and_leaves_no_file(separator: Separator, tmp_path: Path,
                                                                         rate: int) -> None:
    """cache_dir keeps the ungated stems in an unlinked file (a long song in the app): the same samples as in
    memory, before and after re-gating, and nothing left in the folder, even while the result lives."""
    x = tone_mix(3.0, sample_rate=rate, seed=5)
    gating = GatingSettings(threshold=0.45, median_frames=5)
    in_memory = separator.separate(x, rate, gating=gating)
    on_disk = separator.separate(x, rate, gating=gating, cache_dir=tmp_path)
    assert isinstance(on_disk.ungated, np.memmap) and not on_disk.ungated.flags.writeable
    assert list(tmp_path.iterdir()) == []
    np.testing.assert_array_equal(on_disk.ungated, in_memory.ungated)
    np.testing.assert_array_equal(on_disk.stems, in_memory.stems)
    other = GatingSettings(threshold=0.6, median_frames=9)
    np.testing.assert_array_equal(on_disk.regate(other, sources=["drums"]), in_memory.regate(other, sources=["drums"]))
    np.testing.assert_array_equal(on_disk.stems, in_memory.stems)
    wiener = separator.separate(x, rate, gating=gating, wiener=True, cache_dir=tmp_path)
    assert isinstance(wiener.ungated, np.memmap) and list(tmp_path.iterdir()) == []


def test_release_pages_drops_a_read_on_disk_copy_from_the_resident_set(tmp_path) -> None:
    """Reading an on_disk copy maps its pages in; release_pages takes them out of this process's resident
    memory, and the data reads back the same."""
    import numpy as np

    from engine.separator import on_disk, release_pages

    def rss_file_kb() -> int:
        for line in open("/proc/self/status"):
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        return 0

    data = np.random.default_rng(0).standard_normal((2, 2, 8 << 20)).astype(np.float32)  # 128 MB
    copy = on_disk(data, tmp_path)
    assert float(copy.sum(dtype=np.float64)) == pytest.approx(float(data.sum(dtype=np.float64)))
    before = rss_file_kb()
    release_pages(copy)
    assert before - rss_file_kb() > 64 * 1024  # most of the 128 MB left the resident set
    np.testing.assert_array_equal(copy, data)
    release_pages(data)  # not a memmap: left alone
    assert list(tmp_path.iterdir()) == []
