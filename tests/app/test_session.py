"""Sessions: saved and reopened without the network; data only, validated, beside the JSON."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from app.errors import SessionError
from app.session import SESSION_FORMAT, SessionState, incomplete_message, load_session, save_session, session_paths
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


def error_db(reference: np.ndarray, got: np.ndarray) -> float:
    """The energy of got - reference, in dB below the energy of reference."""
    err = np.sum((got.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(err / np.sum(reference.astype(np.float64) ** 2) + 1e-300))


def test_round_trip_restores_the_stems(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "my song.stemlab.json", state_for(result), x, result, threading.Lock(),
                        stem_codec="flac")
    json_path, npz = session_paths(path)
    assert json_path.exists() and npz.exists()
    assert json.loads(json_path.read_text())["format"] == SESSION_FORMAT
    loaded = load_session(json_path)
    # 16 bits: the error lies some 90 dB under full scale, 60 dB or more under the stems themselves
    assert error_db(result.ungated, loaded.result.ungated) < -60.0
    assert np.abs(loaded.result.ungated - result.ungated).max() < 2.0 / 32768
    assert np.abs(loaded.mixture - x).max() < 2.0 / 32768
    np.testing.assert_array_equal(loaded.result.activity, result.activity)  # the gates see the same curves
    assert loaded.state.mixer["strips"][0]["gain_db"] == -3.0
    # and it can be re-gated like a fresh separation
    loaded.result.regate(GatingSettings(threshold=1.0, median_frames=1), sources=[result.sources[0]])
    assert not loaded.result.stems[0].any()


def test_a_song_louder_than_full_scale_is_scaled_not_clipped(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    loud = x * np.float32(1.5 / np.abs(x).max())  # a decoded lossy song overshoots 1.0
    path = save_session(tmp_path / "loud.stemlab.json", state_for(result), loud, result, threading.Lock())
    loaded = load_session(path)
    assert abs(float(np.abs(loaded.mixture).max()) - 1.5) < 1e-3
    assert error_db(loud, loaded.mixture) < -60.0


def test_a_session_is_a_fraction_of_float32(tiny_model: Path, tmp_path: Path) -> None:
    """Music-like stems (tones, quiet stretches) compress: the arrays file is well under float32's size."""
    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(4.0)
    result = sep.separate(x, 44100, gating=GatingSettings(threshold=0.4, median_frames=5))
    path = save_session(tmp_path / "size.stemlab.json", state_for(result), x, result, threading.Lock())
    float32_bytes = 4 * (x.size + result.ungated.size + result.activity.size)
    assert session_paths(path)[1].stat().st_size < 0.4 * float32_bytes


def save_format_1(path: Path, state: SessionState, mixture: np.ndarray, result) -> Path:
    """A session as StemLab wrote them before format 2: float32 arrays in the npz."""
    json_path, npz = session_paths(path)
    np.savez(npz, mixture=mixture.astype(np.float32), ungated=result.ungated.astype(np.float32),
             activity=result.activity.astype(np.float32))
    doc = {"format": "stemlab-session/1", "data": npz.name, "saved": "2026-11-01 12:00:00", **state.__dict__}
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    return json_path


def test_a_format_1_session_still_opens(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_format_1(tmp_path / "old.stemlab.json", state_for(result), x, result)
    loaded = load_session(path)
    np.testing.assert_array_equal(loaded.mixture, x)
    np.testing.assert_array_equal(loaded.result.ungated, result.ungated)
    np.testing.assert_allclose(loaded.result.stems, result.stems, atol=1e-6)
    # saved again, it is written in the new format and opens as such
    again = save_session(path, loaded.state, loaded.mixture, loaded.result, threading.Lock(), stem_codec="flac")
    assert json.loads(again.read_text())["format"] == SESSION_FORMAT
    assert error_db(result.ungated, load_session(again).result.ungated) < -60.0


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
    path = save_format_1(tmp_path / "b.stemlab.json", state_for(result), x, result)
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


def test_refuses_mistyped_or_mismatched_format_2_arrays(separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "m.stemlab.json", state_for(result), x, result, threading.Lock(),
                        stem_codec="flac")
    _, npz = session_paths(path)
    with np.load(npz) as data:
        good = {k: data[k] for k in data.files}
    short = save_session(tmp_path / "short.stemlab.json", state_for(result), x[:, : x.shape[1] // 2],
                         result, threading.Lock(), stem_codec="flac")
    with np.load(session_paths(short)[1]) as data:
        short_mix = data["mixture_flac"]
    cases = [
        ({"mixture_flac": np.array([object()], dtype=object)}, "cannot be read"),
        ({"stem_flac_0": good["stem_flac_0"].astype(np.int16)}, "FLAC bytes"),
        ({"scales": good["scales"].astype(np.float64)}, "scales"),
        ({"scales": np.full_like(good["scales"], np.nan)}, "scales"),
        ({"activity": good["activity"].astype(np.float16)}, "float32"),
        ({"mixture_flac": short_mix}, "ungated"),  # stems longer than the song
    ]
    for change, match in cases:
        np.savez(npz, **{**good, **change})
        with pytest.raises(SessionError, match=match):
            load_session(path)
    np.savez(npz, **{k: v for k, v in good.items() if k != "stem_flac_1"})
    with pytest.raises(SessionError, match="stem_flac_1"):
        load_session(path)


def test_damaged_flac_inside_a_whole_arrays_file_is_named_as_such(separated: tuple, tmp_path: Path) -> None:
    """A FLAC stream cut short or scrambled, stored in an otherwise valid npz (its CRC recomputed), gives
    the one-line incomplete message, not a traceback."""
    x, result = separated
    path = save_session(tmp_path / "d.stemlab.json", state_for(result), x, result, threading.Lock(),
                        stem_codec="flac")
    _, npz = session_paths(path)
    with np.load(npz) as data:
        good = {k: data[k] for k in data.files}
    blob = good["stem_flac_0"]
    scrambled = blob.copy()
    scrambled[200:] = np.random.default_rng(0).integers(0, 256, scrambled.size - 200, dtype=np.uint8)
    for bad in (blob[: blob.size // 2], scrambled, blob[:10]):
        np.savez(npz, **{**good, "stem_flac_0": bad})
        with pytest.raises(SessionError) as info:
            load_session(path)
        assert str(info.value) == incomplete_message("d.stemlab.json", "d.stemlab.npz")


def test_refuses_malformed_json(tmp_path: Path) -> None:
    p = tmp_path / "c.stemlab.json"
    p.write_text("{not json")
    with pytest.raises(SessionError):
        load_session(p)
    for fmt in ("stemlab-session/1", SESSION_FORMAT):
        p.write_text(json.dumps({"format": fmt, "data": "c.stemlab.npz", "song_name": 3}))
        with pytest.raises(SessionError):
            load_session(p)
    p.write_text(json.dumps({"format": "stemlab-session/99", "data": "c.stemlab.npz"}))
    with pytest.raises(SessionError, match="not a StemLab session"):
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
    path = save_session(tmp_path / "long.stemlab.json", state_for(result), x, result, threading.Lock(),
                        stem_codec="flac")
    loaded = load_session(path)
    assert error_db(reference.ungated, loaded.result.ungated) < -60.0


# ---- format 3: the stems as MP3, the song as FLAC ----------------------------------------------------


def clicks(n: int, at: list[int], seed: int = 0) -> np.ndarray:
    """Quiet noise with a click (one loud sample) at each place in `at`: (2, n) float32."""
    x = (0.01 * np.random.default_rng(seed).standard_normal((2, n))).astype(np.float32)
    x[:, at] = 0.8
    return x


def test_format_3_keeps_the_song_lossless_and_the_stems_in_mp3(separated: tuple, tmp_path: Path) -> None:
    from app.session import best_lag

    x, result = separated
    path = save_session(tmp_path / "c.stemlab.json", state_for(result), x, result, threading.Lock())
    assert json.loads(path.read_text())["format"] == SESSION_FORMAT == "stemlab-session/3"
    with np.load(session_paths(path)[1]) as data:
        assert {f"stem_mp3_{k}" for k in range(len(result.sources))} <= set(data.files)
        assert not any(k.startswith("stem_flac_") for k in data.files)
    loaded = load_session(path)
    assert np.abs(loaded.mixture - x).max() < 2.0 / 32768  # the song is 16-bit FLAC, as in format 2
    assert loaded.result.ungated.shape == result.ungated.shape
    for k in range(len(result.sources)):
        # lossy, but the same stem: its error lies well under it, and it lines up to the sample
        assert error_db(result.ungated[k], loaded.result.ungated[k]) < -15.0, result.sources[k]
        assert best_lag(result.ungated[k].sum(0), loaded.result.ungated[k].sum(0), 4096) == 0
        assert best_lag(loaded.result.ungated[k].sum(0), result.ungated[k].sum(0), 4096) == 0
    np.testing.assert_array_equal(loaded.result.activity, result.activity)
    # the compact session is a fraction of the lossless one
    flac = save_session(tmp_path / "f.stemlab.json", state_for(result), x, result, threading.Lock(),
                        stem_codec="flac")
    assert session_paths(path)[1].stat().st_size < 0.7 * session_paths(flac)[1].stat().st_size


def test_an_mp3_stem_lines_up_with_the_original_to_the_sample(tmp_path: Path) -> None:
    """A click test through the encoder and decoder: every click comes back at its own sample, and the
    decoded stem has the original's length exactly."""
    from app.session import _decode_mp3, _encode_track

    n = 3 * 44100 + 777  # not a whole number of MP3 frames
    places = [1000, 44100, 100_003, n - 500]
    x = clicks(n, places)
    coded = _encode_track(x, 44100, "mp3")
    assert coded.codec == "mp3" and coded.lead == 0  # this decoder honours LAME's delay and padding header
    out = np.empty((2, n), np.float32)
    assert _decode_mp3(coded.blob, coded.scale, coded.lead, out)
    for p in places:
        window = np.abs(out[0, p - 300:p + 300])
        assert int(np.argmax(window)) + p - 300 == p


def test_a_decoder_that_does_not_trim_its_delay_is_compensated() -> None:
    """Where the decoded stream is longer than the stem (a decoder that ignores LAME's header), the lead is
    measured by cross-correlation at save time and dropped on reading, so the clicks stay in place."""
    from app.session import MAX_LEAD, _decode_mp3, _measure_lead, _mp3_bytes

    n, lead = 2 * 44100, 1105  # LAME's usual delay, 576 + 529
    places = [5000, 30000, 70000]
    x = clicks(n, places, seed=2)
    delayed = np.concatenate([np.zeros((2, lead), np.float32), x], axis=1)  # what such a decoder returns
    blob, scale = _mp3_bytes(delayed, 44100)
    assert _measure_lead(blob, x, scale) == lead
    out = np.empty((2, n), np.float32)
    assert _decode_mp3(blob, scale, lead, out)
    for p in places:
        assert int(np.argmax(np.abs(out[0, p - 300:p + 300]))) + p - 300 == p
    # a stream a few samples short of the stem is padded with silence to the stem's length
    short = np.empty((2, n + MAX_LEAD // 2), np.float32)
    assert _decode_mp3(blob, scale, lead, short) and not short[:, -MAX_LEAD // 4:].any()


def test_a_stem_mp3_cannot_take_falls_back_to_flac(separated: tuple, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import app.session as session

    x, result = separated
    assert session._encode_track(x, 96000, "mp3").codec == "flac"  # no MP3 mode at 96 kHz

    def broken(track: np.ndarray, rate: int) -> tuple:
        if np.shares_memory(track, result.ungated[2]):
            raise RuntimeError("the encoder failed")
        return real(track, rate)

    real = session._mp3_bytes
    monkeypatch.setattr(session, "_mp3_bytes", broken)
    path = save_session(tmp_path / "fb.stemlab.json", state_for(result), x, result, threading.Lock())
    with np.load(session_paths(path)[1]) as data:
        assert "stem_flac_2" in data.files and "stem_mp3_2" not in data.files and "stem_mp3_1" in data.files
    loaded = load_session(path)
    assert error_db(result.ungated[2], loaded.result.ungated[2]) < -60.0  # that stem kept losslessly
    assert error_db(result.ungated[1], loaded.result.ungated[1]) < -15.0


def test_a_format_2_session_still_opens(separated: tuple, tmp_path: Path) -> None:
    """Format 2 as StemLab wrote it: every track FLAC, no stem_leads."""
    x, result = separated
    path = save_session(tmp_path / "two.stemlab.json", state_for(result), x, result, threading.Lock(),
                        stem_codec="flac")
    _, npz = session_paths(path)
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files if k != "stem_leads"}
    np.savez(npz, **arrays)
    doc = json.loads(path.read_text())
    doc["format"] = "stemlab-session/2"
    path.write_text(json.dumps(doc))
    loaded = load_session(path)
    assert error_db(result.ungated, loaded.result.ungated) < -60.0
    np.testing.assert_allclose(loaded.result.stems, load_session(path).result.stems)


def test_a_damaged_format_3_session_gives_one_clear_message_and_changes_nothing(
        separated: tuple, tmp_path: Path) -> None:
    x, result = separated
    path = save_session(tmp_path / "d3.stemlab.json", state_for(result), x, result, threading.Lock())
    json_path, npz = session_paths(path)
    whole = npz.read_bytes()
    with np.load(npz) as data:
        good = {k: data[k] for k in data.files}
    blob = good["stem_mp3_0"]
    scrambled = blob.copy()
    scrambled[600:] = np.random.default_rng(0).integers(0, 256, scrambled.size - 600, dtype=np.uint8)
    expected = incomplete_message("d3.stemlab.json", "d3.stemlab.npz")
    for bad in (blob[: blob.size // 3], scrambled, blob[:10]):
        np.savez(npz, **{**good, "stem_mp3_0": bad})
        damaged = npz.read_bytes()
        with pytest.raises(SessionError) as info:
            load_session(path)
        assert str(info.value) == expected
        assert npz.read_bytes() == damaged  # reading changes nothing on disk
    for cut in (len(whole) // 2, len(whole) - 30):
        npz.write_bytes(whole[:cut])
        with pytest.raises(SessionError) as info:
            load_session(path)
        assert str(info.value) == expected
    for leads, match in ((np.full(len(result.sources), -1, np.int32), "stem_leads"),
                         (np.zeros(len(result.sources), np.int64), "stem_leads")):
        np.savez(npz, **{**good, "stem_leads": leads})
        with pytest.raises(SessionError, match=match):
            load_session(path)
    npz.write_bytes(whole)
    assert load_session(json_path).result.stems.shape == result.stems.shape
