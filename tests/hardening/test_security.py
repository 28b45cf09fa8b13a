"""Model files, checkpoints and session files are data, never code: nothing in StemLab unpickles or
evaluates what a file says, and a session that points outside what the user chose, or holds values of
the wrong type, is refused with a SessionError (never another exception, never a GUI crash)."""

from __future__ import annotations

import ast
import json
import math
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import SessionError
from app.session import SessionState, load_session, save_session, session_paths
from engine import Separator
from engine.errors import ModelLoadError
from engine.modelcard import load_model, sha256_file
from tests.conftest import tone_mix

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("app", "engine", "training", "bench", "scripts")
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib", "jsonpickle"}


def python_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))


def _keyword(call: ast.Call, name: str) -> Any:
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def test_no_code_loads_data_as_code() -> None:
    """An AST scan: no pickle-family import, no eval/exec/compile, torch.load only with weights_only=True,
    numpy's load only without pickles, yaml only safely."""
    problems = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{where}:{node.lineno} imports {a.name}" for a in node.names
                             if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                problems.append(f"{where}:{node.lineno} imports from {node.module}")
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id in ("eval", "exec", "compile", "__import__") and not (
                        f.id == "__import__" and node.args and isinstance(node.args[0], ast.Constant)):
                    problems.append(f"{where}:{node.lineno} calls {f.id}()")
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                    owner, attr = f.value.id, f.attr
                    if owner == "torch" and attr == "load" and _keyword(node, "weights_only") is not True:
                        problems.append(f"{where}:{node.lineno} torch.load without weights_only=True")
                    if owner in ("np", "numpy") and attr == "load" and _keyword(node, "allow_pickle") is not False:
                        problems.append(f"{where}:{node.lineno} np.load without allow_pickle=False")
                    if owner == "yaml" and attr in ("load", "unsafe_load", "full_load"):
                        problems.append(f"{where}:{node.lineno} yaml.{attr}")
    assert len(python_files()) > 40
    assert problems == []


class Boom:
    """Unpickling this would run code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_pickled_model_file_is_refused_without_running_it(tiny_model: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(pickle.dumps({"model": Boom(marker)}))
    card = json.loads(tiny_model.read_text())
    card["sha256"] = sha256_file(weights)  # a consistent card: the hash alone does not catch it
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(tmp_path / "tiny.json", allow_untrained=True)
    assert not marker.exists()


def test_a_pickled_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    from training.run.checkpoints import load_checkpoint_file
    from training.errors import TrainingError

    marker = tmp_path / "pwned"
    torch.save({"model": Boom(marker)}, tmp_path / "checkpoint.pt")  # no digest record: the legacy path
    with pytest.raises(TrainingError, match="corrupt"):
        load_checkpoint_file(tmp_path / "checkpoint.pt")
    assert not marker.exists()


@pytest.mark.parametrize("sources", [["../../escape", "b"], ["a", "a"], ["a", "sub/b"], [], ["."]])
def test_a_model_card_whose_sources_are_paths_is_refused(tiny_model: Path, tmp_path: Path, sources: list) -> None:
    card = json.loads(tiny_model.read_text())
    card["sources"] = sources
    card["architecture"]["sources"] = sources
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    (tmp_path / "tiny.safetensors").write_bytes(tiny_model.with_suffix(".safetensors").read_bytes())
    with pytest.raises(ModelLoadError, match="plain names"):
        load_model(tmp_path / "tiny.json", allow_untrained=True)


def test_a_model_card_without_its_weights_digest_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    card = json.loads(tiny_model.read_text())
    (tmp_path / "tiny.safetensors").write_bytes(tiny_model.with_suffix(".safetensors").read_bytes())
    for bad in ("", None, 12, "0" * 63, "g" * 64):
        card["sha256"] = bad
        (tmp_path / "tiny.json").write_text(json.dumps(card))
        with pytest.raises(ModelLoadError, match="sha256"):
            load_model(tmp_path / "tiny.json", allow_untrained=True)


# ---- sessions ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    sep = Separator.load(tiny_model, allow_untrained=True)
    x = tone_mix(1.0)
    result = sep.separate(x, 44100)
    state = SessionState(
        song_name="song.wav", song_path="/music/song.wav", sample_rate=44100, sources=list(result.sources),
        model_name=result.model_name, model_sample_rate=44100, n_fft=2048, hop_length=512, device="cpu",
        wiener=False,
        gating={s: {"mode": "binary", "threshold": 0.5, "median_frames": 9, "median_ms": 100.0, "linked": True}
                for s in result.sources},
        global_gating={"mode": "binary", "threshold": 0.5, "median_ms": 100.0},
        mixer={"strips": [{"gain_db": 0.0, "pan": 0.0, "mute": False, "solo": False} for _ in result.sources],
               "master_gain_db": 0.0, "play_original": False},
        loop=[0.2, 0.6],
    )
    folder = tmp_path_factory.mktemp("session")
    path = save_session(folder / "s.stemlab.json", state, x, result, threading.Lock())
    return path, json.loads(path.read_text())


def write_doc(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, allow_nan=True))


def test_the_unchanged_session_loads(saved: tuple) -> None:
    path, doc = saved
    write_doc(path, doc)
    assert load_session(path).result.stems.shape[0] == 6


@pytest.mark.parametrize("where,value,message", [
    (("sources",), ["../../../tmp/escape", "drums", "bass", "guitar", "piano", "other"], "plain names"),
    (("sources",), ["vocals", "vocals", "bass", "guitar", "piano", "other"], "plain names"),
    (("data",), "../s.stemlab.npz", "beside"),
    (("sample_rate",), 1, "between"),
    (("model_sample_rate",), 10**9, "between"),
    (("n_fft",), 2**40, "out of range"),
    (("gating", "drums", "median_frames"), 10**12, "median filter"),
    (("gating", "drums", "threshold"), math.inf, "gating"),
    (("gating", "drums", "threshold"), "0.5", "gating"),
    (("global_gating", "median_ms"), math.nan, "global gating"),
    (("mixer", "strips", 0, "pan"), math.inf, "mixer strip"),
    (("mixer", "strips", 0, "mute"), "yes", "mixer strip"),
    (("mixer", "master_gain_db"), [1], "master"),
    (("loop",), [1.0, math.inf], "loop"),
    (("loop",), "0-1", "wrong type"),
    (("wiener",), 1, "wrong type"),
])
def test_bad_session_fields_are_refused(saved: tuple, where: tuple, value: Any, message: str) -> None:
    path, doc = saved
    bad = json.loads(json.dumps(doc))
    target = bad
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    write_doc(path, bad)
    with pytest.raises(SessionError, match=message):
        load_session(path)


def test_a_data_file_that_is_a_link_elsewhere_is_refused(saved: tuple, tmp_path: Path) -> None:
    path, doc = saved
    elsewhere = tmp_path / "elsewhere.npz"
    _, npz = session_paths(path)
    elsewhere.write_bytes(npz.read_bytes())
    link = path.with_name("linked.stemlab.npz")
    link.symlink_to(elsewhere)
    write_doc(path, dict(doc, data=link.name))
    try:
        with pytest.raises(SessionError, match="beside"):
            load_session(path)
    finally:
        link.unlink()


def test_bad_arrays_are_refused(saved: tuple) -> None:
    path, doc = saved
    write_doc(path, doc)
    _, npz = session_paths(path)
    original = npz.read_bytes()
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    try:
        for key, value, message in (("activity", arrays["activity"] * 3.0, "probabilities"),
                                    ("activity", arrays["activity"][:, :10], "per frame")):
            np.savez(npz, **dict(arrays, **{key: value.astype(np.float32)}))
            with pytest.raises(SessionError, match=message):
                load_session(path)
    finally:
        npz.write_bytes(original)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["../x", "/etc/passwd", "", "binary", "soft", "none"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_any_mangled_session_loads_sanely_or_is_refused(saved: tuple, data: st.DataObject) -> None:
    path, doc = saved
    bad = json.loads(json.dumps(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(_paths(bad)))
        target = bad
        for key in where[:-1]:
            target = target[key]
        if data.draw(st.booleans()) and isinstance(target, dict):
            del target[where[-1]]
        else:
            target[where[-1]] = data.draw(json_values)
    write_doc(path, bad)
    try:
        loaded = load_session(path)
    except SessionError as exc:
        assert str(exc)
        return
    r = loaded.result
    assert np.isfinite(r.stems).all() and r.stems.shape == r.ungated.shape
    assert all(Path(s).name == s and s not in (".", "..") for s in r.sources)
    assert os.path.dirname(loaded.json_path) == os.path.dirname(path)


def test_the_app_refuses_a_bad_session_with_one_dialog(qtbot: Any, window: Any, saved: tuple, dialogs: list) -> None:
    path, doc = saved
    bad = json.loads(json.dumps(doc))
    bad["mixer"]["strips"][0]["pan"] = math.inf
    write_doc(path, bad)
    with qtbot.waitSignal(window.error_shown, timeout=60000):
        window.open_path(str(path))
    qtbot.waitUntil(lambda: window._busy_worker is None, timeout=60000)
    assert len(dialogs) == 1 and dialogs[0][1] == "Cannot open the session" and "mixer strip" in dialogs[0][2]
    write_doc(path, doc)
    with qtbot.waitSignal(window.session_loaded, timeout=60000):
        window.open_path(str(path))
    # the song's recorded place (/music/song.wav) is only a name: exports start beside the session
    assert window.song.path == path.parent / "song.wav"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_any_mangled_mp3_stem_loads_sanely_or_is_refused_in_one_line(saved: tuple, data: st.DataObject) -> None:
    """Format 3's MP3 stems are bytes from a file like any other: overwritten, cut or grown in place (the npz
    itself whole), a stem decodes to finite samples of the session's length or the session is refused
    with the one incomplete message."""
    from app.session import incomplete_message

    path, doc = saved
    write_doc(path, doc)
    _, npz = session_paths(path)
    original = npz.read_bytes()
    with np.load(npz, allow_pickle=False) as arrays_file:
        arrays = {k: arrays_file[k] for k in arrays_file.files}
    key = data.draw(st.sampled_from(sorted(k for k in arrays if k.startswith("stem_mp3_"))))
    blob = arrays[key].copy()
    start = data.draw(st.integers(0, blob.size - 1))
    how = data.draw(st.sampled_from(["overwrite", "cut", "grow"]))
    if how == "overwrite":
        size = data.draw(st.integers(1, 4096))
        junk = np.frombuffer(data.draw(st.binary(min_size=size, max_size=size)), np.uint8)
        blob[start:start + size] = junk[: blob[start:start + size].size]
    elif how == "cut":
        blob = blob[:start]
    else:
        blob = np.concatenate([blob, np.frombuffer(data.draw(st.binary(min_size=1, max_size=4096)), np.uint8)])
    try:
        np.savez(npz, **dict(arrays, **{key: blob}))
        try:
            loaded = load_session(path)
        except SessionError as exc:
            message = str(exc)
            assert message == incomplete_message(path.name, npz.name) or "must" in message, message
            return
        r = loaded.result
        assert np.isfinite(r.ungated).all() and r.ungated.shape == (6, 2, loaded.mixture.shape[-1])
    finally:
        npz.write_bytes(original)
