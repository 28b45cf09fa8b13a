"""The command line's streaming path writes what the in-memory separation holds, and nothing half-done."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import Audio, GatingSettings, SeparationCancelled, Separator
from engine.export import export_separation, separate_to_folder
from tests.conftest import tone_mix


@pytest.fixture(scope="module")
def separator(tiny_model: Path) -> Separator:
    return Separator.load(tiny_model, device="cpu", allow_untrained=True, chunk_seconds=1.0, overlap_seconds=0.2)


@pytest.mark.parametrize("rate, seconds", [(44100, 3.3), (48000, 3.3), (32000, 3.3), (48000, 24.0)])
def test_streamed_stems_equal_in_memory_stems(separator: Separator, tmp_path: Path, rate: int,
                                              seconds: float) -> None:
    """The command line streams, the app holds the song: one resampling and one gating step (engine.stems)
    make their stems the same samples at any rate (24 s at 48 kHz spans more than one of its blocks)."""
    x = tone_mix(seconds, sample_rate=rate, seed=2)
    gating = GatingSettings(threshold=0.45, median_frames=5)
    ref = separator.separate(x, rate, gating=gating)
    meta = separate_to_folder(separator, Audio(x, rate), tmp_path, fmt="wav", gating=gating)
    assert ref.gates().any() and not ref.gates().all()  # the gate does something here
    for j, s in enumerate(separator.sources):
        data, sr = sf.read(tmp_path / f"{s}.wav", dtype="float32", always_2d=True)
        assert sr == rate and data.shape == (x.shape[1], 2)
        np.testing.assert_array_equal(data.T, ref.stems[j])
    assert meta["sample_rate"] == rate and json.loads((tmp_path / "separation.json").read_text())["files"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))== []
    # the app's re-gating lands on the same samples as a fresh run with that setting
    other = GatingSettings(threshold=0.6, median_frames=9)
    ref.regate(other)
    separate_to_folder(separator, Audio(x, rate), tmp_path / "again", fmt="wav", gating=other)
    for j, s in enumerate(separator.sources):
        np.testing.assert_array_equal(sf.read(tmp_path / "again" / f"{s}.wav", dtype="float32")[0].T, ref.stems[j])


def test_cancel_leaves_no_files(separator: Separator, tmp_path: Path) -> None:
    cancel = threading.Event()

    def on_progress(p):
        if p.done >= 2:
            cancel.set()
    with pytest.raises(SeparationCancelled):
        separate_to_folder(separator, Audio(tone_mix(6.0), 44100), tmp_path, progress=on_progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_export_in_memory_result(separator: Separator, tmp_path: Path) -> None:
    r = separator.separate(tone_mix(1.0), 44100)
    written = export_separation(r, tmp_path / "x", fmt="flac", subtype="PCM_16", sources=["bass", "drums"])
    assert [p.name for p in written] == ["bass.flac", "drums.flac", "activity.csv", "separation.json"]
    assert sf.info(written[0]).subtype == "PCM_16"
