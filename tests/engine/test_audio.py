from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import load_audio, resample, to_stereo, write_audio
from engine.errors import AudioLoadError, AudioWriteError
from tests.conftest import tone_mix


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_reads_every_supported_format(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"song.{fmt}"
    x = tone_mix(1.0)
    sf.write(path, x.T, 44100, format=fmt.upper() if fmt != "ogg" else "OGG")
    audio = load_audio(path)
    assert audio.samples.shape[0] == 2 and audio.sample_rate == 44100
    assert abs(audio.n_samples - x.shape[1]) < 3000  # mp3 adds encoder delay


def test_channel_handling_notes() -> None:
    notes: list[str] = []
    mono = np.ones((1, 10), np.float32)
    assert to_stereo(mono, notes).shape == (2, 10) and "mono" in notes[0]
    six = np.random.default_rng(0).random((6, 10)).astype(np.float32)
    out = to_stereo(six, notes)
    assert out.shape == (2, 10) and "downmixed" in notes[1]


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"this is text, not audio" * 10, "cannot be read"),
])
def test_bad_files_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioLoadError, match=message):
        load_audio(path)


def test_missing_silent_and_nan(tmp_path: Path) -> None:
    with pytest.raises(AudioLoadError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    sf.write(tmp_path / "silent.wav", np.zeros((4410, 2)), 44100)
    with pytest.raises(AudioLoadError, match="silence"):
        load_audio(tmp_path / "silent.wav")
    x = tone_mix(0.2).T.copy()
    x[100, 0] = np.nan
    sf.write(tmp_path / "nan.wav", x, 44100, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="NaN"):
        load_audio(tmp_path / "nan.wav")


def test_resample_keeps_a_tone() -> None:
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 1000 * t)[None].astype(np.float32)
    y = resample(x, 48000, 44100)
    assert y.shape == (1, 44100)
    spectrum = np.abs(np.fft.rfft(y[0]))
    assert abs(int(spectrum.argmax()) - 1000) <= 1


def test_write_is_atomic_and_cleans_up(tmp_path: Path) -> None:
    out = write_audio(tmp_path / "a.flac", tone_mix(0.5), 44100)
    assert sf.info(out).subtype == "PCM_24"
    with pytest.raises(AudioWriteError):
        write_audio(tmp_path / "missing" / "a.wav", tone_mix(0.5), 44100)
    with pytest.raises(AudioWriteError):
        write_audio(tmp_path / "b.flac", tone_mix(0.5), 44100, "FLOAT")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac"]


def test_an_extreme_sample_is_called_damage_but_loud_floats_load(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    x = np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32)
    loud = tmp_path / "loud.wav"
    sf.write(loud, x * 8.0, 44100, subtype="FLOAT")  # +18 dBFS: over full scale, but audio
    assert abs(float(load_audio(loud).samples.max()) - 8.0) < 1e-3
    x[1000, 0] = 3.0e30
    spike = tmp_path / "spike.wav"
    sf.write(spike, x, 44100, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="1 samples lie beyond"):
        load_audio(spike)
