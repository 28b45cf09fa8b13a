"""Property-based tests (hypothesis): the audio loader on whatever soundfile can write or a disk can hold,
and the gating code against its definitions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.ndimage import median_filter

from engine.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, load_audio
from engine.errors import AudioLoadError
from engine.gating import GatingSettings, gate_curve, gate_envelope, gates, median_filter_binary

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (format, subtype, numpy dtype written, quantisation step of a round trip)
FORMATS = [
    ("WAV", "PCM_U8", "float32", 2 / 256),
    ("WAV", "PCM_16", "int16", 0.0),
    ("WAV", "PCM_24", "float64", 2 / 2**24),
    ("WAV", "PCM_32", "int32", 2 / 2**24),  # read as float32: 24 bits of mantissa
    ("WAV", "FLOAT", "float32", 0.0),
    ("WAV", "DOUBLE", "float64", 1e-7),
    ("FLAC", "PCM_16", "float32", 2 / 2**16),
    ("FLAC", "PCM_24", "float64", 2 / 2**24),
]
RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000]


@st.composite
def written_song(draw: st.DrawFn) -> tuple[str, str, np.ndarray, int, float]:
    fmt, subtype, dtype, step = draw(st.sampled_from(FORMATS))
    channels = draw(st.integers(1, 8))
    frames = draw(st.integers(0, 3000))
    rate = draw(st.sampled_from(RATES) | st.integers(1, 400_000))
    if fmt == "FLAC":
        rate = min(rate, 655_350)
    if np.dtype(dtype).kind == "i":
        info = np.iinfo(dtype)
        data = draw(hnp.arrays(dtype, (frames, channels), elements=st.integers(info.min, info.max)))
    else:
        data = draw(hnp.arrays(dtype, (frames, channels), elements=st.floats(-1.0, 1.0, width=32)))
    return fmt, subtype, data, rate, step


@FAST
@given(song=written_song(), silent_ok=st.booleans())
def test_loader_round_trips_or_says_why(song: tuple, silent_ok: bool) -> None:
    fmt, subtype, data, rate, step = song
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"song.{fmt.lower()}"
        try:
            sf.write(path, data, rate, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            assume(False)  # soundfile cannot write this combination: nothing to read
        try:
            audio = load_audio(path, allow_silent=silent_ok)
        except AudioLoadError as exc:
            message = str(exc)
            assert message and "Traceback" not in message
            n = data.shape[0]
            expected = (n == 0 or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
                        or (not silent_ok and "silence" in message))
            assert expected, message
            return
    assert audio.sample_rate == rate and MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.flags.c_contiguous
    assert audio.samples.shape == (data.shape[1], data.shape[0]) and audio.source_channels == data.shape[1]
    assert np.isfinite(audio.samples).all()
    as_float = data / 2.0 ** (8 * data.dtype.itemsize - 1) if data.dtype.kind == "i" else data
    np.testing.assert_allclose(audio.samples.T, as_float, atol=step + 1e-7)


@FAST
@given(content=st.binary(min_size=0, max_size=3000),
       header=st.sampled_from([b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3"]),
       suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff"]))
def test_loader_on_arbitrary_bytes_raises_only_its_own_error(content: bytes, header: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"junk{suffix}"
        path.write_bytes(header + content)
        try:
            audio = load_audio(path, allow_silent=True)
        except AudioLoadError as exc:
            assert str(exc)
        else:  # some byte strings are valid (tiny) audio files: then they are sane
            assert audio.n_samples > 0 and np.isfinite(audio.samples).all()


@FAST
@given(cut=st.floats(0.0, 1.0), fmt=st.sampled_from(["WAV", "FLAC", "OGG"]))
def test_loader_on_a_file_cut_anywhere(cut: float, fmt: str) -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (4000, 2)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"cut.{fmt.lower()}"
        sf.write(path, x, 44100, format=fmt)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        try:
            audio = load_audio(path)
        except AudioLoadError:
            return
        assert 0 < audio.n_samples <= 4000 + 2048 and np.isfinite(audio.samples).all()


# ---- gating ------------------------------------------------------------------------------------------------

binary = hnp.arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 200)))


@FAST
@given(active=binary, n=st.integers(1, 41))
def test_median_filter_binary_is_scipys_median_filter(active: np.ndarray, n: int) -> None:
    odd = n | 1
    ours = median_filter_binary(active, n)
    theirs = median_filter(active.astype(np.uint8), size=(1, odd), mode="nearest").astype(bool)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(median_filter_binary(active[0], n), theirs[0])  # 1-D too


probability = hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 300)),
                         elements=st.floats(0.0, 1.0, width=32))
setting = st.builds(GatingSettings, mode=st.sampled_from(["binary", "soft", "none"]), threshold=st.floats(0.0, 1.0),
                    median_frames=st.integers(1, 31))


@FAST
@given(p=probability, g=setting)
def test_gates_lie_in_zero_one(p: np.ndarray, g: GatingSettings) -> None:
    out = gates(p, [f"s{i}" for i in range(p.shape[0])], g)
    assert out.shape == p.shape and out.dtype == np.float32
    assert (out >= 0).all() and (out <= 1).all()


@FAST
@given(p=probability, lo=st.floats(0.0, 1.0), hi=st.floats(0.0, 1.0), n=st.integers(1, 31))
def test_raising_the_threshold_never_turns_a_frame_on(p: np.ndarray, lo: float, hi: float, n: int) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    for row in p:
        low = gate_curve(row, GatingSettings(threshold=lo, median_frames=n))
        high = gate_curve(row, GatingSettings(threshold=hi, median_frames=n))
        assert (high <= low).all()


@st.composite
def gated_signal(draw: st.DrawFn) -> tuple[np.ndarray, int, int, int]:
    hop = draw(st.sampled_from([64, 128, 256]))
    n_fft = hop * draw(st.sampled_from([2, 4]))
    n_samples = draw(st.integers(1, 40 * hop))
    n_frames = n_samples // hop + 1
    values = st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0, width=32)
    gate = draw(hnp.arrays(np.float32, (2, n_frames), elements=values))
    return gate, hop, n_fft, n_samples


@FAST
@given(sig=gated_signal(), data=st.data())
def test_gate_envelope_in_zero_one_and_one_under_open_gates(sig: tuple, data: st.DataObject) -> None:
    gate, hop, n_fft, n = sig
    env = gate_envelope(gate, hop, n_fft, n)
    assert env.shape == (2, n)
    assert (env >= -1e-6).all() and (env <= 1 + 1e-6).all()
    # a sample whose every covering frame is open (gate 1) passes unchanged; all closed: silent
    half = n_fft // 2
    for t in range(n):
        ks = [k for k in range(gate.shape[1]) if 0 < t - k * hop + half < n_fft]
        for row in range(2):
            if ks and all(gate[row, k] == 1.0 for k in ks):
                assert env[row, t] == pytest.approx(1.0, abs=1e-5)
            if ks and all(gate[row, k] == 0.0 for k in ks):
                assert env[row, t] == pytest.approx(0.0, abs=1e-6)
    ones = gate_envelope(np.ones_like(gate), hop, n_fft, n)
    np.testing.assert_allclose(ones, 1.0, atol=1e-5)
    # any block of it equals the same samples of the whole
    a = data.draw(st.integers(0, n - 1))
    b = data.draw(st.integers(a + 1, n))
    np.testing.assert_allclose(gate_envelope(gate, hop, n_fft, n, a, b), env[:, a:b], atol=1e-6)
