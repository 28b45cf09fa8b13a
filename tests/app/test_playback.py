"""Playback through a real PortAudio stream on ALSA's null device (no sound card, no daemon).

ALSA reads its configuration when PortAudio starts, so the stream runs in a subprocess with
ALSA_CONFIG_PATH pointing at a null default device. The null sink is not paced in real time:
the callback runs as fast as PortAudio asks, which is enough to check it runs and moves on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, time
import numpy as np
from app.mixer import Mixer
from app.playback import Player, probe_output

sr = 44100
t = np.arange(sr * 2) / sr
tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
stems = np.stack([np.stack([tone, tone]), np.stack([tone, -tone])])
mixer = Mixer()
mixer.set_tracks(stems.sum(0), stems, sr)
ok, name = probe_output(sr)
player = Player(mixer, blocksize=512)
started = player.play()
deadline = time.monotonic() + 10
while time.monotonic() < deadline and mixer.position < sr // 2:
    time.sleep(0.005)
mid = mixer.position
mixer.strips[0].mute = True   # a change while the stream runs
mixer.update_gains()
deadline = time.monotonic() + 10
while time.monotonic() < deadline and not mixer.ended:
    time.sleep(0.005)
player.close()
print(json.dumps({"ok": ok, "device": name, "started": started, "mid": mid, "end": mixer.position,
                  "ended": mixer.ended, "blocks": mixer.blocks_processed,
                  "peak": float(mixer.levels[-1].max())}))
"""


def alsa_null_env(tmp_path: Path) -> dict[str, str]:
    conf = tmp_path / "asound-null.conf"
    conf.write_text('pcm.!default { type plug slave.pcm "nullsink" }\npcm.nullsink { type null }\n')
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{conf}"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_stream_callback_runs_and_advances_the_position(tmp_path: Path) -> None:
    pytest.importorskip("sounddevice", exc_type=OSError)
    if not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("no ALSA configuration on this machine")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env=alsa_null_env(tmp_path),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"] and out["started"], out
    assert out["blocks"] > 10
    assert out["mid"] >= 44100 // 2
    assert out["ended"] and out["end"] == 2 * 44100


WINDOW_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import numpy as np, soundfile as sf
from PySide6.QtCore import QEventLoop, QTimer
from app.main import create_app
from app.main_window import MainWindow
from app.settings import Settings

model, tmp = sys.argv[1], Path(sys.argv[2])
app = create_app()
settings = Settings(str(tmp / "s.ini"))
settings.set("ui/first_run_done", True)
w = MainWindow(settings=settings, model=model, allow_untrained=True)
w.show()

def wait(signal, seconds=60):
    loop = QEventLoop(); signal.connect(loop.quit)
    QTimer.singleShot(int(seconds * 1000), loop.quit); loop.exec()

def pump(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(); time.sleep(0.005)

wait(w.model_ready)
t = np.arange(44100 * 30) / 44100
sf.write(tmp / "song.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
w.open_path(str(tmp / "song.wav")); wait(w.song_loaded)
w.separate(); wait(w.separation_finished)
pump(0.1)
w.toggle_play()
# the null sink is not paced: the song plays through as fast as the callback mixes (how fast depends on
# the machine), then the stream stops itself; wait for that, up to the song's own length
deadline = time.monotonic() + 30.0
while not (w.mixer.ended and not w.player.playing) and time.monotonic() < deadline:
    pump(0.05)
pump(0.1)
out = {"available": w.player.available, "reason": w.player.reason, "ended": w.mixer.ended,
       "playing_at_end": w.player.playing, "position": w.mixer.position, "playhead": w.playheads[0].value(),
       "clock": w.clock.text(), "banner": "playback" in w.messages}
w.toggle_play()  # from the start again
out["restarted"] = w.player.playing
w.toggle_play()  # pause
out["playing_after_pause"] = w.player.playing
w.shutdown()
print(json.dumps(out))
"""


def test_window_plays_and_the_playhead_follows(tmp_path: Path, tiny_model: Path) -> None:
    pytest.importorskip("sounddevice", exc_type=OSError)
    if not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("no ALSA configuration on this machine")
    env = alsa_null_env(tmp_path)
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run(
        [sys.executable, "-c", WINDOW_SCRIPT, str(tiny_model), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["available"], out
    assert not out["banner"]
    assert out["position"] == 30 * 44100 and out["ended"] and not out["playing_at_end"], out
    assert out["playhead"] == pytest.approx(30.0) and out["clock"].startswith("0:30.0"), out
    assert out["restarted"] and out["playing_after_pause"] is False, out
