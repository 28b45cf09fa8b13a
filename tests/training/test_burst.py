"""The GPU burst's parts: songs in code alone (no fonts, no espeak), the code singer, the two-file pack,
and the whole script's dry run on this CPU with a one-minute budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.test_training import tiny_config
from training.synthesis import formant_singer, render, singer
from training.synthesis.singer import SungNote, VoiceSettings

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def _f0(x: np.ndarray, sr: int) -> float:
    """Pitch of a steady stretch by autocorrelation (60-1000 Hz)."""
    x = x - x.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)[:len(x)]
    lo, hi = sr // 1000, sr // 60
    lag = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    return sr / (lag + 0.5 * (a - c) / (a - 2 * b + c))


def test_the_code_singer_sings_the_notes_where_they_are() -> None:
    sr = 44100
    voice = VoiceSettings(vibrato_depth_cents=0.0, drift_cents=0.0, scoop_cents=0.0, breath_between_phrases=False,
                          seed=4)
    notes = [SungNote(0.5, 1.5, 57.0, "la"), SungNote(2.0, 3.0, 64.0, "see")]
    y = formant_singer.sing(notes, sr, voice, total_s=3.5)
    assert y.shape == (round(3.5 * sr),) and y.dtype == np.float32
    assert not np.any(y[: int(0.49 * sr)]) and not np.any(y[int(3.01 * sr):])  # silence outside the notes
    assert np.any(y[int(0.6 * sr):int(1.4 * sr)])
    for (t0, t1), midi in (((0.8, 1.2), 57.0), ((2.3, 2.7), 64.0)):
        f = _f0(y[int(t0 * sr):int(t1 * sr)].astype(np.float64), sr)
        assert abs(1200 * np.log2(f / (440 * 2 ** ((midi - 69) / 12)))) < 20  # within 20 cents
    assert np.array_equal(y, formant_singer.sing(notes, sr, voice, total_s=3.5))  # same voice, same samples
    rms = np.sqrt(np.mean(y[y != 0] ** 2))
    assert -23 < 20 * np.log10(rms) < -17 and np.abs(y).max() < 1.0


def test_vowels_and_consonants_sound_as_written() -> None:
    sr = 44100
    voice = VoiceSettings(vibrato_depth_cents=0.0, drift_cents=0.0, breath_between_phrases=False, seed=1)

    def spectrum(text: str, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        y = formant_singer.sing([SungNote(0.1, 1.1, 52.0, text)], sr, voice, total_s=1.2)
        seg = y[int(t0 * sr):int(t1 * sr)] * np.hanning(int(t1 * sr) - int(t0 * sr))
        return np.fft.rfftfreq(len(seg), 1 / sr), np.abs(np.fft.rfft(seg)) ** 2

    f, ee = spectrum("see", 0.5, 0.9)
    _, oo = spectrum("ooh", 0.5, 0.9)
    hi, lo = (f > 1800) & (f < 2600), (f > 600) & (f < 1000)  # the second formants of /i/ and of /u/
    assert ee[hi].sum() / ee[lo].sum() > 10 * oo[hi].sum() / oo[lo].sum()
    f, s = spectrum("see", 0.11, 0.17)  # the /s/ at the start: hiss above 4 kHz
    assert s[f > 4000].sum() > s[f < 1000].sum()
    assert formant_singer.phonemes("night") == (["n"], ["a", "i"], ["t"])
    assert formant_singer.phonemes("shine") == (["sh"], ["a", "i"], ["n"])


def test_songs_render_with_no_fonts_no_espeak_and_no_mma(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.datasets import make_data
    from training.songs import form
    from training.songs.model import SOURCES

    def missing(*_: object) -> None:
        raise AssertionError("needed a dependency the GPU machine lacks")

    monkeypatch.setattr(render, "require_fluidsynth", missing)
    monkeypatch.setattr(singer, "_espeak_exe", missing)
    monkeypatch.setattr(form, "mma_available", lambda: False)  # where plan_song looks it up
    rendered, lab = make_data.render_labelled_song(make_data.song_seed(900, 3), render.CodeRenderer(), 20.0,
                                                   synth_share=1.0, code_voice_share=1.0)
    assert set(rendered.info["fonts"].values()) <= {"code"}
    assert rendered.info["singer"] in ("code", None)
    assert rendered.stems and all(np.isfinite(x).all() and x.shape[0] == 2 for x in rendered.stems.values())
    assert lab["energy_activity"].shape[0] == len(SOURCES)


def test_the_pack_is_two_halves_and_comes_back(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    from training.run.resume_pack import ema_path, factor, lo_path, pack, unfactor, unpack
    from training.run.trainer import Trainer

    Trainer(tiny_config(tiny_sets, tmp_path / "a", val_set=None, max_steps=3, ema_decay=0.5), progress=False).run()
    full = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    packed = pack(tmp_path / "a", tmp_path / "packed.pt")
    assert lo_path(packed).exists() and ema_path(packed).exists()
    unpack(packed, tmp_path / "b")
    back = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    for k, w in full["model"].items():
        assert torch.equal(back["model"][k], w)  # bit for bit
    # the weights' average comes back within bfloat16 rounding of its (small) difference from the weights
    assert set(back["ema"]) == set(full["ema"])
    for k, e in full["ema"].items():
        if e.dtype.is_floating_point:
            d = (e - full["model"][k].float()).abs()
            assert torch.all((back["ema"][k] - e).abs() <= d / 128 + 1e-12), k
        else:
            assert torch.equal(back["ema"][k], e)
    assert any(not torch.equal(e, full["model"][k].float()) for k, e in full["ema"].items() if e.dtype.is_floating_point)
    for i, s in full["optimizer"]["state"].items():
        v, v2 = s["exp_avg_sq"], back["optimizer"]["state"][i]["exp_avg_sq"]
        assert v2.shape == v.shape and torch.all(v2 >= 0)
        if v.dim() >= 2:  # Adafactor's factors: the row and column means are kept exactly
            torch.testing.assert_close(v2.reshape(v.shape[0], -1).mean(1), v.reshape(v.shape[0], -1).mean(1),
                                       rtol=1e-4, atol=1e-12)
        else:
            torch.testing.assert_close(v2, v)
    assert back["step"] == full["step"] and back["optimizer"]["param_groups"] == full["optimizer"]["param_groups"]
    # without the .lo half the weights are cut to bfloat16, still a resumable run
    lo_path(packed).unlink()
    unpack(packed, tmp_path / "c")
    resumed = Trainer(tiny_config(tiny_sets, tmp_path / "c", val_set=None, max_steps=5), resume=True, progress=False)
    assert resumed.step == 3 and resumed.run()["step"] == 5
    assert torch.equal(unfactor(factor(torch.tensor([1.0, 2.0]))), torch.tensor([1.0, 2.0]))


@pytest.mark.slow
def test_the_gpu_burst_dry_run_on_this_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_burst.sh"), str(out), "--minutes", "1", "--device", "cpu",
                        "--workers", "1", "--timing-s", "20", "--max-song-s", "30"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["iass-burst.json", "iass-burst.safetensors", "log.jsonl", "report.json", "report.md",
                     "resume.pt", "resume.pt.ema", "resume.pt.lo"]
    assert all((out / f).stat().st_size < 16 * MIB for f in files)
    report = json.loads((out / "report.json").read_text())
    assert report["device"] == "cpu" and report["steps"] > 0 and report["songs_rendered"] >= 2
    assert report["resumed_from"] and report["end_step"] == report["start_step"] + report["steps"]
    assert set(report["eval"]) == {"start", "ema"}
    assert np.isfinite(report["eval"]["ema"]["gated"]["mean"])
    assert report["timing"]["song_s"] == 20.0 and report["timing"]["seconds"] > 0
    # what comes home: the card separates, the pack resumes at the step the burst reached
    from engine.separator import Separator
    from training.run.resume_pack import unpack

    sep = Separator.load(out / "iass-burst.json", device="cpu")
    res = sep.separate(np.zeros((2, 44100), np.float32), 44100)
    assert res.stems.shape[:2] == (len(sep.sources), 2)
    unpack(out / "resume.pt", tmp_path / "home")
    assert torch.load(tmp_path / "home" / "checkpoint.pt", weights_only=True)["step"] == report["end_step"]
    assert "Traceback" not in r.stderr


def test_the_burst_refuses_what_it_does_not_apply(tiny_sets: dict[str, Path], tmp_path: Path) -> None:
    """The burst cuts its batches on the GPU without the CPU path's low shelves: it says so, not trains without them."""
    from training.errors import TrainingError
    from training.run.burst import SongPool

    with pytest.raises(TrainingError, match="low_shelf_prob"):
        SongPool(tiny_config(tiny_sets, tmp_path, low_shelf_prob=0.5, low_shelf_db=6.0), workers=1)
