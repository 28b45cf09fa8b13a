"""Sessions: saved and reopened without the network; data only, validated, beside the JSON."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from app.errors import SessionError
from app.session import SessionState, load_session, save_session, session_paths
from engine import GatingSettings, Separator
from tests.conftest import tone_mix


@pytest.fixture(scope="module")
def separated(tiny_model: Path) -> tuple:
    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(2.0)
    gating = {s: GatingSettings(threshold=0.4, median_frames=5) for s in sep.sources}
    return x, sep.separate(x, 44100, gating=gating)


def state_for(result, song: str = "song.wav") -> SessionState:
    return SessionState(
        song_name=song,
        song_path=f"/music/{song}",
        sample_rate=result.sample_rate,
        sources=list(result.sources),
        model_name=result.model_name,
        model_sample_rate=result.model_sample_rate,
        n_fft=result.stft_config.n_fft,
        hop_length=result.stft_config.hop_length,
        device=result.device,
        wiener=False,
        gating={
            s: {"mode": "binary", "threshold": 0.4, "median_frames": 5, "linked": True}
            for s in result.sources
        },
        global_gating={"mode": "binary", "threshold": 0.4, "median_ms": 60.0},
        mixer={
            "strips": [{"gain_db": -3.0, "pan": 0.0, "mute": False, "solo": False}],
            "master_gain_db": 0.0,
            "play_original": False,
        },
    )


def test_round_trip_restores_the_stems(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "my song.stemlab.json", state_for(result), x, result, threading.Lock())
    json_path, npz = session_paths(path)
    assert json_path.exists() and npz.exists()
    loaded = load_session(json_path)
    np.testing.assert_allclose(loaded.result.stems, result.stems, atol=1e-6)
    np.testing.assert_array_equal(loaded.mixture, x)
    assert loaded.state.mixer["strips"][0]["gain_db"] == -3.0
    # and it can be re-gated like a fresh separation
    loaded.result.regate(GatingSettings(threshold=1.0, median_frames=1), sources=[result.sources[0]])
    assert not loaded.result.stems[0].any()


def test_refuses_a_data_file_outside_the_sessions_folder(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "a.stemlab.json", state_for(result), x, result, threading.Lock())
    doc = json.loads(path.read_text())
    for bad in ("../a.stemlab.npz", "/etc/passwd", "sub/a.npz"):
        doc["data"] = bad
        path.write_text(json.dumps(doc))
        with pytest.raises(SessionError, match="beside"):
            load_session(path)


def test_refuses_pickled_or_mistyped_arrays(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "b.stemlab.json", state_for(result), x, result, threading.Lock())
    _, npz = session_paths(path)
    np.savez(
        npz, mixture=np.array([object()], dtype=object), ungated=result.ungated, activity=result.activity
    )
    with pytest.raises(SessionError):
        load_session(path)
    np.savez(npz, mixture=x.astype(np.float64), ungated=result.ungated, activity=result.activity)
    with pytest.raises(SessionError, match="float32"):
        load_session(path)
    np.savez(npz, mixture=x, ungated=result.ungated[:, :, :10], activity=result.activity)
    with pytest.raises(SessionError, match="ungated"):
        load_session(path)


def test_refuses_malformed_json(tmp_path: Path) -> None:
    p = tmp_path / "c.stemlab.json"
    p.write_text("{not json")
    with pytest.raises(SessionError):
        load_session(p)
    p.write_text(json.dumps({"format": "stemlab-session/1", "data": "c.stemlab.npz", "song_name": 3}))
    with pytest.raises(SessionError):
        load_session(p)


def test_a_session_cut_short_is_named_as_such(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "cut.stemlab.json", state_for(result), x, result, threading.Lock())
    json_path, npz = session_paths(path)
    whole_npz, whole_json = npz.read_bytes(), json_path.read_text()
    for cut in (0, 10, len(whole_npz) // 3, len(whole_npz) - 30):
        npz.write_bytes(whole_npz[:cut])
        with pytest.raises(SessionError) as info:
            load_session(json_path)
        msg = str(info.value)
        assert msg.startswith("cut.stemlab.json is not a complete StemLab session"), (cut, msg)
        assert "cut.stemlab.npz is cut short or damaged" in msg
    npz.write_bytes(whole_npz)
    json_path.write_text(whole_json[: len(whole_json) // 2])
    with pytest.raises(SessionError, match=r"^cut.stemlab.json is not a complete StemLab session \(the file is cut"):
        load_session(json_path)
    json_path.write_text(whole_json)
    assert load_session(json_path).result.stems.shape == result.stems.shape


def test_a_long_song_keeps_its_regate_copy_on_disk_and_saves_as_a_session(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past LONG_SONG_S the ungated stems live in an unlinked file under the user's cache folder: the same
    stems, nothing left in the folder, and the session saves and reopens them as before."""
    from app import workers

    monkeypatch.setattr(workers, "LONG_SONG_S", 1.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(2.0)
    gating = {s: GatingSettings(threshold=0.4, median_frames=5) for s in sep.sources}
    outcome = workers.separate_song(sep, x, 44100, gating, False)
    result = outcome.result
    assert isinstance(result.ungated, np.memmap)
    assert list((tmp_path / "cache" / "stemlab").iterdir()) == []
    reference = sep.separate(x, 44100, gating=gating)
    np.testing.assert_array_equal(result.stems, reference.stems)
    path = save_session(tmp_path / "long.stemlab.json", state_for(result), x, result, threading.Lock())
    loaded = load_session(path)
    np.testing.assert_array_equal(loaded.result.ungated, reference.ungated)
