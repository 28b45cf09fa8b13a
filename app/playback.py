"""Playback through sounddevice: an output stream whose callback only runs Mixer.process.

Without a sound card (no PortAudio, no output device, or the device refusing the song's rate) the
player reports why once and the rest of the app carries on.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from .mixer import Mixer

log = logging.getLogger(__name__)


def probe_output(sample_rate: int = 44100) -> tuple[bool, str]:
    """(True, device name) when a stereo float stream at sample_rate can open, else (False, why)."""
    try:
        import sounddevice as sd
    except (OSError, ImportError) as exc:  # OSError: the PortAudio library itself is missing
        return False, f"the sound library is unavailable ({exc})"
    try:
        device = sd.default.device[1]
        if device is None or int(device) < 0:
            outputs = [d for d in sd.query_devices() if d.get("max_output_channels", 0) > 0]
            if not outputs:
                return False, "no sound output device was found"
            device = int(outputs[0]["index"])
        info = sd.query_devices(device)
        channels = min(2, int(info.get("max_output_channels", 0)))
        if channels < 1:
            return False, f"{info.get('name', 'the default device')} has no output channels"
        sd.check_output_settings(device=device, channels=channels, dtype="float32", samplerate=sample_rate)
        return True, str(info.get("name", "default output"))
    except (sd.PortAudioError, ValueError, TypeError, KeyError, OSError) as exc:
        return False, f"the sound output cannot be opened ({exc})"


class Player:
    """Owns one sounddevice.OutputStream while playing; stopped, no stream exists."""

    def __init__(self, mixer: Mixer, blocksize: int = 1024) -> None:
        self.mixer = mixer
        self.blocksize = int(blocksize)
        self._stream: Any = None
        self._available: Optional[bool] = None
        self.reason = ""
        self.device_name = ""
        self.status_flags = 0  # underruns counted by the callback (an int add, no allocation)
        self._callback_stop: type = RuntimeError  # sounddevice.CallbackStop once a stream exists

    def check(self, sample_rate: Optional[int] = None) -> bool:
        ok, text = probe_output(sample_rate or self.mixer.sample_rate)
        self._available = ok
        if ok:
            self.device_name, self.reason = text, ""
        else:
            self.reason = text
        return ok

    @property
    def available(self) -> bool:
        if self._available is None:
            self.check()
        return bool(self._available)

    @property
    def playing(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        if status:
            self.status_flags += 1
        played = self.mixer.process(outdata)
        if played < frames:
            raise self._callback_stop  # the song ended: PortAudio drains this block, then stops

    def play(self) -> bool:
        """Start (or resume) from the mixer's position. Returns False when playback is unavailable."""
        if self.playing:
            return True
        if not self.available or self.mixer.n_samples == 0:
            return False
        self.close()
        if self.mixer.ended or self.mixer.position >= self.mixer.n_samples:
            self.mixer.position = self.mixer.loop[0] if self.mixer.loop else 0
            self.mixer.ended = False
        import sounddevice as sd

        self._callback_stop = sd.CallbackStop
        try:
            self._stream = sd.OutputStream(
                samplerate=self.mixer.sample_rate,
                channels=2,
                dtype="float32",
                blocksize=self.blocksize,
                callback=self._callback,
                latency="low",
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError, TypeError, OSError) as exc:  # report, do not crash the GUI
            self.reason = f"the sound output could not start ({exc})"
            self._available = False
            self.close()
            return False
        return True

    def pause(self) -> None:
        self.close()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            import sounddevice as sd

            try:
                stream.abort()
                stream.close()
            except (sd.PortAudioError, OSError) as exc:  # closing a broken stream must not take the app down
                log.debug("closing the stream failed: %s", exc)
