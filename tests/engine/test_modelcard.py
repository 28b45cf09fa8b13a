import json
import shutil
from pathlib import Path

import pytest

from engine.errors import ModelLoadError
from engine.modelcard import bundled_card_path, load_model


def copy_model(src: Path, dst: Path) -> Path:
    for f in src.parent.glob(src.stem + ".*"):
        shutil.copy(f, dst / f.name)
    return dst / src.name


def test_loads_and_checks_hash(tiny_model: Path, tmp_path: Path) -> None:
    net, card = load_model(tiny_model, allow_untrained=True)
    assert card.sources == list(net.sources) and card.sha256
    card_path = copy_model(tiny_model, tmp_path)
    weights = tmp_path / card.weights
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="do not match"):
        load_model(card_path, allow_untrained=True)


def test_untrained_is_refused_by_default(tiny_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="untrained"):
        load_model(tiny_model)


@pytest.mark.parametrize("change,message", [
    ({"architecture": {"depth": 2}}, "do not fit"),
    ({"sources": ["a", "b"]}, "disagree"),
    ({"weights": "../elsewhere.safetensors"}, "file name"),
    ({"n_fft": -1}, "positive"),
    ({"sample_rate": True}, "positive integer"),
    ({"sample_rate": 4_000_000_000}, "not an audio rate"),
    ({"hop_length": 4096}, "do not make an STFT"),
    ({"sources": ["voc,als", "drums", "bass", "guitar", "piano", "other"]}, "plain names"),
    ({"sources": ["vocals\n", "drums", "bass", "guitar", "piano", "other"]}, "plain names"),
])
def test_card_that_does_not_fit_is_refused(tiny_model: Path, tmp_path: Path, change: dict, message: str) -> None:
    card_path = copy_model(tiny_model, tmp_path)
    data = json.loads(card_path.read_text())
    for key, value in change.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    card_path.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=message):
        load_model(card_path, allow_untrained=True)


def test_garbage_card_and_missing_weights(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read the model card"):
        load_model(tmp_path / "x.json")
    card_path = copy_model(tiny_model, tmp_path)
    (tmp_path / "tiny.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(card_path, allow_untrained=True)


def test_missing_bundled_model_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMLAB_RESOURCES", str(tmp_path))
    with pytest.raises(ModelLoadError, match="No trained model is bundled"):
        bundled_card_path()


def test_saving_writes_both_files_or_neither(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import modelcard
    from engine.errors import AudioWriteError
    from engine.model import IASSUNet

    net = IASSUNet(n_bins=64, depth=2, base_width=2, max_width=4, activity_hidden=4)
    # a card named like its weights would overwrite them: refused before anything is written
    with pytest.raises(AudioWriteError, match="a model card is a .json file"):
        modelcard.save_model(net, tmp_path / "m.safetensors", name="m", sample_rate=44100, n_fft=2048, hop_length=512)
    assert list(tmp_path.iterdir()) == []

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(modelcard, "write_text_atomic", disk_full)
    with pytest.raises(AudioWriteError, match="nothing was left"):
        modelcard.save_model(net, tmp_path / "m.json", name="m", sample_rate=44100, n_fft=2048, hop_length=512)
    assert list(tmp_path.iterdir()) == []  # no orphan weights, no half card
    monkeypatch.undo()
    card = modelcard.save_model(net, tmp_path / "m.json", name="m", sample_rate=44100, n_fft=2048, hop_length=512)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"] and card.weights == "m.safetensors"


def test_what_is_not_a_card_is_refused_without_reading_it_all(tiny_model: Path, tmp_path: Path) -> None:
    card_path = copy_model(tiny_model, tmp_path)
    text = card_path.read_text()
    card_path.write_text(text[:20] + "\x00" + text[20:])
    with pytest.raises(ModelLoadError, match="NUL"):
        load_model(card_path, allow_untrained=True)
    card_path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelLoadError, match="nested too deeply|cannot be read"):
        load_model(card_path, allow_untrained=True)
    with pytest.raises(ModelLoadError, match="not a model card file"):
        load_model("/dev/zero", allow_untrained=True)
    card_path.write_text(" " * (2 << 20))
    with pytest.raises(ModelLoadError, match="too large"):
        load_model(card_path, allow_untrained=True)


def test_a_card_carries_its_gating_per_stem_and_the_cli_uses_it(tiny_model: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from engine.gating import GatingSettings
    from engine.modelcard import ModelCard

    card_path = copy_model(tiny_model, tmp_path)
    data = json.loads(card_path.read_text())
    data["gating"] = {"per_source": {"drums": {"mode": "binary", "threshold": 0.2, "median_frames": 25},
                                     "bass": {"mode": "none"}}, "tuned_on": "data/val"}
    card_path.write_text(json.dumps(data))
    _, card = load_model(card_path, allow_untrained=True)
    spec = card.default_gating()
    assert isinstance(spec, dict) and spec["drums"] == GatingSettings("binary", 0.2, 25)
    assert spec["bass"].mode == "none" and spec["vocals"] == GatingSettings()
    for bad in ({"per_source": {"kazoo": {"threshold": 0.5}}}, {"per_source": {"drums": {"threshold": 2.0}}},
                {"per_source": {"drums": {"speed": 1}}}, {"per_source": []}):
        with pytest.raises(ModelLoadError, match="gating"):
            ModelCard.from_json({**data, "gating": bad}, "x.json")
    # no gating option: the card's; --threshold: that one for every stem
    from tests.conftest import SR, tone_mix
    import soundfile as sf

    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(2.0).T, SR)
    for extra, want in (([], {"drums": 0.2, "vocals": 0.5}), (["--threshold", "0.7"], {"drums": 0.7, "vocals": 0.7})):
        out = tmp_path / f"out{len(extra)}"
        r = subprocess.run([sys.executable, "-m", "app.cli", "separate", str(song), "--out", str(out), "--model",
                            str(card_path), "--allow-untrained", "--quiet", "--no-analysis", *extra],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        meta = json.loads((out / "song" / "separation.json").read_text())
        for s, t in want.items():
            assert meta["gating"][s]["threshold"] == t, meta["gating"]
        assert meta["gating_from"] == ("the model card" if not extra else "the command line")
