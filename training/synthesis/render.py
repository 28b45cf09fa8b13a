"""Rendering songs stem by stem: fluidsynth driven from Python (float output), per-stem mixing FX,
and loudness normalisation applied identically to every stem so that the stems sum to the mixture.
"""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import DataGenerationError
from training.songs.model import SOURCES, Song, Track

SAMPLE_RATE = 44100
MAX_PEAK = 0.98  # float mixture peak ceiling; every stem is scaled alike to stay under it
MAX_LIMIT_DB = 6.0  # most peak reduction the master limiter may apply


def limiter_gain(mix: np.ndarray, ceiling: float, window: int = 256) -> np.ndarray:
    """mix: (channels, n) -> (n,) smooth gain <= 1 with |mix * gain| <= ceiling everywhere.

    A look-ahead brick-wall limiter on the master bus. The same gain curve multiplies every stem,
    so the stems still sum exactly to the limited mixture.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    peak = np.abs(mix).max(axis=0)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    if need.min() >= 1.0:
        return np.ones_like(need, dtype=np.float32)
    # A minimum over 2w+1 then a mean over w never exceeds the needed gain at any sample.
    held = minimum_filter1d(need, 2 * window + 1, mode="nearest")
    smooth = uniform_filter1d(held, window, mode="nearest")
    return np.minimum(smooth, need).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# SoundFonts


@dataclass(frozen=True)
class FontSpec:
    """One SoundFont: where Debian puts it, the package that ships it, its licence, what it is for."""

    name: str
    paths: tuple[str, ...]
    package: str
    licence: str
    kind: str = "gm"  # "gm": full General MIDI bank; "drums": drum kits only
    use: str = "train"  # "train" or "benchmark" (never trained on)
    weight: float = 1.0  # how often a stem draws it among the available fonts

    def find(self) -> str | None:
        for p in self.paths:
            if os.path.isfile(p):
                return p
        return None


FONTS: dict[str, FontSpec] = {
    f.name: f
    for f in (
        FontSpec("fluidr3", ("/usr/share/sounds/sf2/FluidR3_GM.sf2",), "fluid-soundfont-gm", "MIT", weight=3.0),
        FontSpec("fluidr3mono", ("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
                                 "/usr/share/fluidr3mono-gm-soundfont/FluidR3Mono_GM.sf3"),
                 "fluidr3mono-gm-soundfont", "MIT", weight=1.5),
        FontSpec("musescore", ("/usr/share/sounds/sf3/MuseScore_General_Full.sf3",
                               "/usr/share/sounds/sf3/MuseScore_General.sf3",
                               "/usr/share/sounds/sf2/MuseScore_General.sf2"),
                 "musescore-general-soundfont", "MIT", weight=3.0),
        FontSpec("opl3", ("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2",), "opl3-soundfont", "CC-BY-SA-4.0",
                 weight=1.2),
        FontSpec("avl_black_pearl", ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2",
                                     "/usr/lib/lv2/avldrums.lv2/Black_Pearl_4_LV2.sf2"),
                 "avldrums.lv2-soundfont", "CC-BY-SA-3.0", kind="drums", weight=1.0),
        FontSpec("avl_red_zeppelin", ("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2",
                                      "/usr/lib/lv2/avldrums.lv2/Red_Zeppelin_4_LV2.sf2"),
                 "avldrums.lv2-soundfont", "CC-BY-SA-3.0", kind="drums", weight=1.0),
        FontSpec("timgm6mb", ("/usr/share/sounds/sf2/TimGM6mb.sf2",), "timgm6mb-soundfont", "GPL-2",
                 use="benchmark"),
    )
}
TRAIN_FONTS = tuple(n for n, f in FONTS.items() if f.use == "train")
REQUIRED_FONT = "fluidr3"


def require_fluidsynth() -> Any:
    """Import pyfluidsynth, or say which Debian and pip packages to install."""
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError) as exc:
        raise DataGenerationError(
            "fluidsynth is not available (" + str(exc).strip()[:120] + "). Install the Debian package "
            "'libfluidsynth3' (apt-get install libfluidsynth3) and the Python binding 'pyfluidsynth' "
            "(pip install pyfluidsynth)."
        ) from exc
    import fluidsynth as fs

    if not hasattr(fs, "_fl") or not hasattr(fs._fl, "fluid_synth_write_float"):
        raise DataGenerationError("this fluidsynth library has no fluid_synth_write_float; install 'libfluidsynth3'.")
    return fs


def resolve_fonts(names: Sequence[str] | None = None, allow_benchmark: bool = False) -> dict[str, str]:
    """Map font names to installed files; skip missing optional fonts, insist on FluidR3_GM.

    names: font names from FONTS (default: every training font). Raises DataGenerationError naming
    the Debian package when FluidR3_GM (or a font asked for explicitly) is missing.
    """
    explicit = names is not None
    wanted = list(names) if names is not None else list(TRAIN_FONTS)
    out: dict[str, str] = {}
    for n in wanted:
        spec = FONTS.get(n)
        if spec is None:
            raise DataGenerationError(f"unknown SoundFont {n!r}; choose from {', '.join(FONTS)}.")
        if spec.use == "benchmark" and not allow_benchmark:
            raise DataGenerationError(f"{n} is the benchmark's SoundFont and must never be used for training data.")
        path = spec.find()
        if path is None:
            if explicit or n == REQUIRED_FONT:
                raise DataGenerationError(
                    f"SoundFont {n} not found (looked in {', '.join(spec.paths)}). "
                    f"Install the Debian package '{spec.package}' (apt-get install {spec.package})."
                )
            continue
        out[n] = path
    if not explicit and REQUIRED_FONT not in out:
        raise DataGenerationError("FluidR3_GM is required: apt-get install fluid-soundfont-gm")
    if not any(FONTS[n].kind == "gm" for n in out):
        raise DataGenerationError("at least one full General MIDI SoundFont is needed (e.g. fluidr3).")
    return out


# ----------------------------------------------------------------------------------------------
# The synthesizer


class FluidRenderer:
    """Renders lists of tracks to float stereo with fluidsynth; fonts are loaded once, on first use.

    fluidsynth's own reverb and chorus are off: mixing FX are ours. Output is 32-bit float straight from
    `fluid_synth_write_float` (no int16 step). Events are placed on exact sample positions between
    `write` calls; fluidsynth applies them at its next internal 64-sample block, so a note may start
    up to 63 samples (1.4 ms) late: far below one STFT frame (512 samples).

    Each render uses a fresh synth that shares the loaded SoundFonts (fluid_synth_add_sfont): a reused
    synth keeps voice state (filter histories) from earlier renders, and the same song must give the
    same samples whatever a worker rendered before.
    """

    def __init__(self, fonts: dict[str, str], sample_rate: int = SAMPLE_RATE, gain: float = 0.4) -> None:
        fs = require_fluidsynth()
        self._fs = fs
        self.sample_rate = sample_rate
        self.gain = gain
        self.fonts = dict(fonts)
        # Fresh synths warn "No preset found" for every channel before fonts are attached: not news.
        set_log = lib_log = fs._fl.fluid_set_log_function
        lib_log.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        lib_log.restype = ctypes.c_void_p
        set_log(2, None, None)  # FLUID_WARN
        self._holder = self._new_synth()  # owns the loaded fonts; never renders
        self._sfids: dict[str, int] = {}
        self._sfonts: dict[str, int] = {}  # name -> fluid_sfont_t* (owned by the holder)
        self._presets: dict[str, set[tuple[int, int]]] = {}
        lib = fs._fl
        self._write = lib.fluid_synth_write_float
        self._write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._write.restype = ctypes.c_int
        self._get_sfont = lib.fluid_synth_get_sfont_by_id
        self._get_sfont.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._get_sfont.restype = ctypes.c_void_p
        self._add_sfont = lib.fluid_synth_add_sfont
        self._add_sfont.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._add_sfont.restype = ctypes.c_int
        self._remove_sfont = lib.fluid_synth_remove_sfont
        self._remove_sfont.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._remove_sfont.restype = ctypes.c_int
        self.rendered_s = 0.0

    def _new_synth(self) -> Any:
        # Settings must be in place before the synth is created, hence keyword settings.
        return self._fs.Synth(gain=self.gain, samplerate=float(self.sample_rate), channels=16, **{
            "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512, "synth.cpu-cores": 1})

    def font_id(self, name: str) -> int:
        """Load a font into the holder synth (once); returns its id there."""
        if name not in self._sfids:
            path = self.fonts[name]
            sfid = self._holder.sfload(path)
            if sfid < 0:
                raise DataGenerationError(f"fluidsynth could not load SoundFont {path}.")
            self._sfids[name] = sfid
            self._sfonts[name] = self._get_sfont(self._holder.synth, sfid)
            self._presets[name] = {(bank, prog) for bank in (0, 8, 16, 128) for prog in range(128)
                                   if self._holder.sfpreset_name(sfid, bank, prog)}
        return self._sfids[name]

    def has_preset(self, font: str, bank: int, program: int) -> bool:
        self.font_id(font)
        return (bank, program) in self._presets[font]

    def _choose(self, font: str, track: Track) -> tuple[str, int, int]:
        """(font, bank, program) for a track, falling back to FluidR3_GM if the font lacks the preset."""
        fallback = REQUIRED_FONT if REQUIRED_FONT in self.fonts else next(
            n for n in self.fonts if FONTS[n].kind == "gm")
        if track.is_drum:
            if FONTS[font].kind == "drums":
                return font, 0, 0
            kit = track.drum_kit if self.has_preset(font, 128, track.drum_kit) else 0
            if self.has_preset(font, 128, kit):
                return font, 128, kit
            return fallback, 128, 0
        if FONTS[font].kind == "drums" or not self.has_preset(font, 0, track.program):
            return fallback, 0, track.program
        return font, 0, track.program

    def render(self, tracks: Sequence[Track], font: str, n_samples: int) -> np.ndarray:
        """tracks (all of one stem) -> (2, n_samples) float32, rendered with `font`."""
        out = np.zeros((n_samples, 2), dtype=np.float32)
        melodic = [t for t in tracks if not t.is_drum and t.notes]
        drums = [t for t in tracks if t.is_drum and t.notes]
        # 15 melodic channels (9 is the drum channel); more tracks than that render in extra passes.
        batches: list[list[tuple[int, Track]]] = []
        chans = [c for c in range(16) if c != 9]
        for i in range(0, max(len(melodic), 1), len(chans)):
            batches.append([(chans[k], t) for k, t in enumerate(melodic[i:i + len(chans)])])
        batches[0] += [(9, t) for t in drums]
        for batch in batches:
            if batch:
                out += self._render_batch(batch, font, n_samples)
        self.rendered_s += n_samples / self.sample_rate
        return np.ascontiguousarray(out.T)

    def _render_batch(self, batch: list[tuple[int, Track]], font: str, n_samples: int) -> np.ndarray:
        synth = self._new_synth()
        added: dict[str, int] = {}
        try:
            for chan, t in batch:
                f, bank, prog = self._choose(font, t)
                self.font_id(f)
                if f not in added:
                    added[f] = self._add_sfont(synth.synth, self._sfonts[f])
                synth.program_select(chan, added[f], bank, prog)
            return self._play(synth, batch, n_samples)
        finally:
            for f in added:
                self._remove_sfont(synth.synth, self._sfonts[f])
            synth.delete()

    def _play(self, synth: Any, batch: list[tuple[int, Track]], n_samples: int) -> np.ndarray:
        events: list[tuple[int, int, int, int, int]] = []  # (sample, order, chan, key, vel); vel 0 = off
        for chan, t in batch:
            synth.cc(chan, 7, int(np.clip(t.volume, 0, 127)))
            synth.cc(chan, 10, int(np.clip(round(64 + 63 * t.pan), 0, 127)))
            synth.cc(chan, 11, 127)
            # A repeated key on one channel: end the earlier note before the next one starts.
            last_end: dict[int, int] = {}
            for n in sorted(t.notes, key=lambda n: (n.pitch, n.start_s)):
                s0 = round(n.start_s * self.sample_rate)
                s1 = max(s0 + 32, round(n.end_s * self.sample_rate))
                if s0 >= n_samples:
                    continue
                prev_end = last_end.get(n.pitch)
                if prev_end is not None and prev_end > s0:
                    # shorten the previous note (already appended): replace its off event
                    for k in range(len(events) - 1, -1, -1):
                        e = events[k]
                        if e[2] == chan and e[3] == n.pitch and e[4] == 0 and e[0] == prev_end:
                            events[k] = (s0, 0, chan, n.pitch, 0)
                            break
                events.append((s0, 1, chan, n.pitch, max(1, n.velocity)))
                events.append((min(s1, n_samples - 1), 0, chan, n.pitch, 0))
                last_end[n.pitch] = min(s1, n_samples - 1)
        events.sort()
        buf = np.zeros((n_samples, 2), dtype=np.float32)
        base = buf.ctypes.data
        pos = 0
        i = 0
        block = 8192
        while pos < n_samples:
            nxt = events[i][0] if i < len(events) else n_samples
            # Nothing sounding and nothing due for a while: skip ahead (the buffer is already zero).
            if nxt - pos > 4096 and synth.get_active_voice_count() == 0:
                pos += (nxt - pos) // 64 * 64  # whole blocks, so block boundaries stay where they were
            while pos < nxt:
                step = min(block, nxt - pos)
                self._write(synth.synth, step, base + pos * 8, 0, 2, base + pos * 8, 1, 2)
                pos += step
            while i < len(events) and events[i][0] <= pos:
                _, _, chan, key, vel = events[i]
                if vel > 0:
                    synth.noteon(chan, key, vel)
                else:
                    synth.noteoff(chan, key)
                i += 1
            if i >= len(events) and pos < n_samples:
                self._write(synth.synth, n_samples - pos, base + pos * 8, 0, 2, base + pos * 8, 1, 2)
                pos = n_samples
        return buf


# ----------------------------------------------------------------------------------------------
# Loudness (ITU-R BS.1770 K-weighting, gated integrated loudness)


def _biquad(kind: str, f0: float, sample_rate: int, q: float = 0.7071, gain_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook biquad (b, a)."""
    a_lin = 10 ** (gain_db / 40.0)
    w0 = 2 * math.pi * min(f0, sample_rate * 0.49) / sample_rate
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2 * q)
    if kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "bandpass":  # constant 0 dB peak gain
        b = [alpha, 0.0, -alpha]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "peak":
        b = [1 + alpha * a_lin, -2 * cw, 1 - alpha * a_lin]
        a = [1 + alpha / a_lin, -2 * cw, 1 - alpha / a_lin]
    elif kind == "lowshelf":
        sq = 2 * math.sqrt(a_lin) * alpha
        b = [a_lin * ((a_lin + 1) - (a_lin - 1) * cw + sq), 2 * a_lin * ((a_lin - 1) - (a_lin + 1) * cw),
             a_lin * ((a_lin + 1) - (a_lin - 1) * cw - sq)]
        a = [(a_lin + 1) + (a_lin - 1) * cw + sq, -2 * ((a_lin - 1) + (a_lin + 1) * cw),
             (a_lin + 1) + (a_lin - 1) * cw - sq]
    elif kind == "highshelf":
        sq = 2 * math.sqrt(a_lin) * alpha
        b = [a_lin * ((a_lin + 1) + (a_lin - 1) * cw + sq), -2 * a_lin * ((a_lin - 1) + (a_lin + 1) * cw),
             a_lin * ((a_lin + 1) + (a_lin - 1) * cw - sq)]
        a = [(a_lin + 1) - (a_lin - 1) * cw + sq, 2 * ((a_lin - 1) - (a_lin + 1) * cw),
             (a_lin + 1) - (a_lin - 1) * cw - sq]
    else:
        raise ValueError(kind)
    bb, aa = np.array(b), np.array(a)
    return bb / aa[0], aa / aa[0]


def pan_gains(pan: float) -> np.ndarray:
    """(left, right) constant-power gains for pan in -1..1, unity at the centre."""
    return np.array([math.cos((pan + 1) * math.pi / 4), math.sin((pan + 1) * math.pi / 4)]) * math.sqrt(2)


def k_weight(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """x: (channels, n) -> K-weighted (channels, n) (BS.1770 shelf + high-pass, designed for this rate)."""
    from scipy import signal  # imported here: scipy.signal costs 0.6 s at start-up
    b1, a1 = _biquad("highshelf", 1681.974450955533, sample_rate, q=0.7071752369554196, gain_db=3.999843853973347)
    b2, a2 = _biquad("highpass", 38.13547087602444, sample_rate, q=0.5003270373238773)
    sos = np.vstack([np.concatenate([b1, a1]), np.concatenate([b2, a2])])
    return signal.sosfilt(sos, x, axis=-1)


def integrated_loudness(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """x: (channels, n) -> gated integrated loudness in LUFS (BS.1770-4); -inf for silence."""
    y = k_weight(np.asarray(x, dtype=np.float64), sample_rate)
    block, hop = int(0.4 * sample_rate), int(0.1 * sample_rate)
    if y.shape[-1] < block:
        y = np.pad(y, ((0, 0), (0, block - y.shape[-1])))
    power = np.cumsum(np.concatenate([np.zeros((y.shape[0], 1)), y ** 2], axis=1), axis=1)
    starts = np.arange(0, y.shape[-1] - block + 1, hop)
    z = (power[:, starts + block] - power[:, starts]) / block  # (channels, blocks)
    zs = z.sum(axis=0)
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(np.maximum(zs, 1e-20))
    keep = lk > -70.0
    if not keep.any():
        return float("-inf")
    rel = -0.691 + 10 * math.log10(float(zs[keep].mean())) - 10.0
    keep &= lk > rel
    return float(-0.691 + 10 * math.log10(float(zs[keep].mean())))


# ----------------------------------------------------------------------------------------------
# Mixing FX


@dataclass
class StemFX:
    """Mixing settings drawn for one stem (kept in song.json so a mix can be explained)."""

    level_db: float = 0.0  # loudness relative to the mix reference
    eq: list[tuple[str, float, float, float]] = field(default_factory=list)  # (kind, f0, q, gain_db)
    lowpass_hz: float | None = None
    highpass_hz: float | None = None
    drive: float = 0.0  # tanh drive, 0 = none
    comp: tuple[float, float, float, float] | None = None  # (threshold_db, ratio, attack_s, release_s)
    reverb_send: float = 0.0
    width: float = 1.0
    section_gains_db: list[float] = field(default_factory=list)  # fader moves, one gain per section

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


# Stem loudness against the -20 LUFS reference. Widened so that real mixes lie inside the generated
# ones (DATA.md, `python -m training.songs.stats`): real songs hold drums and bass 5 and 1 dB quieter
# against the mix than the first generator did, and "other" 3.5 dB louder, each over a 9-14 dB spread.
_LEVELS = {"vocals": (-2.0, 3.0), "drums": (-12.0, 0.0), "bass": (-10.0, 1.0), "guitar": (-8.0, 1.0),
           "piano": (-8.0, 3.0), "other": (-10.5, 5.5)}


def draw_fx(rng: np.random.Generator, stem: str, tracks: Sequence[Track]) -> StemFX:
    fx = StemFX(level_db=float(rng.uniform(*_LEVELS[stem])))
    if rng.random() < 0.5:
        fx.eq.append(("lowshelf", float(rng.uniform(80, 250)), 0.7, float(rng.uniform(-6, 4))))
    if rng.random() < 0.6:
        fx.eq.append(("peak", float(np.exp(rng.uniform(np.log(250), np.log(5000)))), float(rng.uniform(0.6, 2.5)),
                      float(rng.uniform(-7, 6))))
    if rng.random() < 0.5:
        fx.eq.append(("highshelf", float(rng.uniform(3000, 10000)), 0.7, float(rng.uniform(-7, 4))))
    # Band limits on instrumental stems, so "ends below 11 kHz" never means "voice".
    if stem != "vocals" and rng.random() < 0.25:
        fx.lowpass_hz = float(rng.uniform(5000, 12000))
    if stem not in ("bass", "drums") and rng.random() < 0.3:
        fx.highpass_hz = float(rng.uniform(60, 220))
    clean_guitar = stem == "guitar" and not any(t.program in (29, 30) for t in tracks)
    if clean_guitar and rng.random() < 0.25:
        fx.drive = float(rng.uniform(3, 25))
    elif stem in ("bass", "other") and rng.random() < 0.07:
        fx.drive = float(rng.uniform(1.5, 4))
    if rng.random() < 0.55:
        fx.comp = (float(rng.uniform(-28, -10)), float(rng.uniform(2, 6)), float(rng.uniform(0.003, 0.03)),
                   float(rng.uniform(0.05, 0.3)))
    base_send = {"drums": 0.12, "bass": 0.04, "vocals": 0.25}.get(stem, 0.2)
    fx.reverb_send = float(np.clip(rng.normal(base_send, 0.1), 0.0, 0.5)) if rng.random() < 0.85 else 0.0
    fx.width = float(rng.uniform(0.6, 1.0)) if stem != "vocals" else 1.0
    return fx


AUTOMATION_PROB = 0.35  # a stem's fader moves between sections (real songs: 29 % move a CC7 volume)
AUTOMATION_DB = 4.0


def section_automation(sections: Sequence[Any], gains_db: Sequence[float], n: int, sample_rate: int,
                       ramp_s: float = 0.5) -> np.ndarray:
    """(n,) gain curve: each section at its gain, with linear ramps of ramp_s across the boundaries."""
    times = [0.0]
    values = [10 ** (gains_db[0] / 20)]
    for sec, prev_db, db in zip(sections[1:], gains_db[:-1], gains_db[1:]):
        times += [max(sec.start_s - ramp_s / 2, times[-1]), sec.start_s + ramp_s / 2]
        values += [10 ** (prev_db / 20), 10 ** (db / 20)]
    t = np.arange(n) / sample_rate
    return np.interp(t, times, values).astype(np.float32)


def make_reverb_ir(rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict[str, float]]:
    """A stereo noise-burst room: (2, n) impulse response with unit energy, and its settings."""
    from scipy import signal  # imported here: scipy.signal costs 0.6 s at start-up
    rt60 = float(np.exp(rng.uniform(np.log(0.3), np.log(2.8))))
    predelay = float(rng.uniform(0.0, 0.04))
    damp_hz = float(rng.uniform(2500, 9000))
    n = int((predelay + min(rt60, 3.0)) * sample_rate)
    t = np.arange(n) / sample_rate
    noise = rng.standard_normal((2, n))
    bright = noise * np.exp(-6.9 * t / (0.55 * rt60))
    b, a = _biquad("lowpass", damp_hz, sample_rate)
    dark = signal.lfilter(b, a, rng.standard_normal((2, n)), axis=-1) * np.exp(-6.9 * t / rt60)
    ir = 0.5 * bright + dark
    ir[:, : int(predelay * sample_rate)] = 0.0
    # A few early reflections.
    for _ in range(int(rng.integers(3, 9))):
        k = int(rng.uniform(predelay, predelay + 0.06) * sample_rate)
        if k < n:
            ir[:, k] += rng.uniform(-1, 1, 2) * 3.0
    ir /= math.sqrt(float((ir ** 2).sum() / 2))
    return ir.astype(np.float32), {"rt60_s": rt60, "predelay_s": predelay, "damp_hz": damp_hz}


def _compress(x: np.ndarray, threshold_db: float, ratio: float, attack_s: float, release_s: float,
              sample_rate: int) -> np.ndarray:
    """Feed-forward RMS compressor, linked stereo. Threshold is relative to the stem's loud-part level."""
    from scipy import signal  # imported here: scipy.signal costs 0.6 s at start-up
    power = (x.astype(np.float64) ** 2).mean(axis=0)
    # One-pole smoothing with a single time constant between attack and release (vectorised).
    tau = math.sqrt(attack_s * release_s)
    alpha = math.exp(-1.0 / (tau * sample_rate))
    env = signal.lfilter([1 - alpha], [1, -alpha], power)
    level_db = 10 * np.log10(np.maximum(env, 1e-12))
    ref = float(np.percentile(level_db[level_db > -80], 95)) if (level_db > -80).any() else 0.0
    over = level_db - (ref + threshold_db)
    gain_db = np.where(over > 0, -over * (1 - 1 / ratio), 0.0)
    gain = 10 ** (gain_db / 20)
    makeup = 10 ** (-float(np.median(gain_db[level_db > -80])) / 20) if (level_db > -80).any() else 1.0
    return (x * gain * min(makeup, 4.0)).astype(np.float32)


def apply_fx(x: np.ndarray, fx: StemFX, ir: np.ndarray | None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """x: (2, n) -> (2, n) processed (no level change here; levels are set by loudness later)."""
    from scipy import signal  # imported here: scipy.signal costs 0.6 s at start-up
    y = x.astype(np.float64)
    if fx.drive > 0:
        pre_b, pre_a = _biquad("highpass", 300.0, sample_rate)
        y = np.tanh(fx.drive * signal.lfilter(pre_b, pre_a, y, axis=-1) / (np.abs(y).max() + 1e-9)) * 0.5
        cab_b, cab_a = _biquad("lowpass", 4500.0, sample_rate, q=0.9)
        y = signal.lfilter(cab_b, cab_a, y, axis=-1)
    for kind, f0, q, g in fx.eq:
        b, a = _biquad(kind, f0, sample_rate, q=q, gain_db=g)
        y = signal.lfilter(b, a, y, axis=-1)
    if fx.highpass_hz:
        sos = signal.butter(2, fx.highpass_hz, "highpass", fs=sample_rate, output="sos")
        y = signal.sosfilt(sos, y, axis=-1)
    if fx.lowpass_hz:
        sos = signal.butter(6, fx.lowpass_hz, "lowpass", fs=sample_rate, output="sos")
        y = signal.sosfilt(sos, y, axis=-1)
    if fx.comp is not None:
        y = _compress(y, *fx.comp, sample_rate=sample_rate)
    if fx.width < 1.0:
        mid = y.mean(axis=0, keepdims=True)
        y = mid + fx.width * (y - mid)
    if ir is not None and fx.reverb_send > 0:
        wet = np.stack([signal.oaconvolve(y.mean(axis=0), ir[c])[: y.shape[-1]] for c in range(2)])
        dry_rms = math.sqrt(float((y ** 2).mean()) + 1e-20)
        wet_rms = math.sqrt(float((wet ** 2).mean()) + 1e-20)
        y = y + fx.reverb_send * wet * (dry_rms / wet_rms)
    return y.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# A whole song


@dataclass
class RenderedSong:
    """stems: {name: (2, n_samples) float32}, only stems with sound; their sum is the mixture."""

    song: Song
    stems: dict[str, np.ndarray]
    sample_rate: int
    info: dict[str, Any]

    @property
    def n_samples(self) -> int:
        return int(next(iter(self.stems.values())).shape[-1]) if self.stems else 0

    def mixture(self) -> np.ndarray:
        out = np.zeros((2, self.n_samples), dtype=np.float32)
        for x in self.stems.values():
            out += x
        return out


def _draw_font(rng: np.random.Generator, stem: str, fonts: dict[str, str], drums: bool) -> str:
    names = [n for n in fonts if FONTS[n].kind == "gm" or (drums and FONTS[n].kind == "drums")]
    w = np.array([FONTS[n].weight for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


class CodeRenderer:
    """Stands in for FluidRenderer where there are no SoundFonts (or no fluidsynth): render_song then
    plays every part, the choir behind the singer too, on the code-written instruments."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self.fonts: dict[str, str] = {}


def render_song(song: Song, renderer: FluidRenderer | CodeRenderer, rng: np.random.Generator, mix: bool = True,
                target_lufs: float | None = None, synth_share: float = 0.0,
                code_voice_share: float = 0.0) -> RenderedSong:
    """Render each stem (fluidsynth, or with probability `synth_share` the code-written instruments of
    training.synthesis.synth; the singer for vocals, with probability `code_voice_share` the code singer of
    training.synthesis.formant_singer), apply mixing FX, set loudness and peak. A CodeRenderer (no fonts) renders
    every part in code.

    mix=False keeps the raw stems (unit FX, no reverb) but still normalises the mixture.
    """
    from training.synthesis import formant_singer, singer, synth

    sr = renderer.sample_rate
    n = math.ceil(song.duration_s * sr)
    ir, room = make_reverb_ir(rng, sr)
    raw: dict[str, np.ndarray] = {}
    fonts_used: dict[str, str] = {}
    patches: dict[str, list[dict[str, Any]]] = {}
    singer_used: str | None = None
    code = synth.CodeSynth(sr)
    for stem in SOURCES:
        tracks = [t for t in song.tracks if t.stem == stem and t.notes]
        x = np.zeros((2, n), dtype=np.float32)
        has = False
        if tracks:
            # The choir behind the singer keeps its SoundFont: the code instruments have no voices.
            if not renderer.fonts or (synth_share > 0 and stem != "vocals" and rng.random() < synth_share):
                x += code.render(tracks, n, np.random.default_rng(rng.integers(2 ** 63)))
                fonts_used[stem] = synth.SYNTH_NAME
                patches[stem] = code.last_patches
            else:
                assert isinstance(renderer, FluidRenderer)
                font = _draw_font(rng, stem, renderer.fonts, drums=(stem == "drums"))
                fonts_used[stem] = font
                x += renderer.render(tracks, font, n)
            has = True
        if stem == "vocals" and song.vocal_notes:
            code_voice = code_voice_share > 0 and rng.random() < code_voice_share
            sing = formant_singer.sing if code_voice else singer.sing
            voice = sing(song.vocal_notes, sample_rate=sr, voice=song.voice, total_s=n / sr)
            singer_used = "code" if code_voice else "espeak-world"
            pan = float(np.clip(rng.normal(0, 0.08), -0.3, 0.3))
            sung = voice[None, :] * pan_gains(pan)[:, None].astype(np.float32)
            if tracks:  # choir under the singer, a little quieter
                lv = integrated_loudness(sung, sr)
                lc = integrated_loudness(x, sr)
                if math.isfinite(lv) and math.isfinite(lc):
                    x *= 10 ** ((lv - lc - float(rng.uniform(4, 10))) / 20)
            x += sung[:, :n]
            has = True
        if has and float(np.abs(x).max()) > 1e-6:
            raw[stem] = x
    stems: dict[str, np.ndarray] = {}
    fx_info: dict[str, Any] = {}
    stem_lufs: dict[str, float] = {}
    for stem, x in raw.items():
        tracks = [t for t in song.tracks if t.stem == stem]
        fx = draw_fx(rng, stem, tracks) if mix else StemFX()
        y = apply_fx(x, fx, ir if mix else None, sr)
        if mix and rng.random() < AUTOMATION_PROB:
            fx.section_gains_db = [float(rng.uniform(-AUTOMATION_DB, AUTOMATION_DB)) for _ in song.sections]
            y *= section_automation(song.sections, fx.section_gains_db, y.shape[-1], sr)
        loud = integrated_loudness(y, sr)
        if not math.isfinite(loud):
            continue
        y *= 10 ** ((-20.0 + fx.level_db - loud) / 20)  # stems relative to a -20 LUFS reference
        stems[stem] = y.astype(np.float32)
        stem_lufs[stem] = -20.0 + fx.level_db
        fx_info[stem] = fx.as_dict()
    if target_lufs is None:
        target_lufs = float(rng.uniform(-16.0, -12.0))
    mixture = np.zeros((2, n), dtype=np.float64)
    for y in stems.values():
        mixture += y
    loud = integrated_loudness(mixture, sr)
    gain = 10 ** ((target_lufs - loud) / 20) if math.isfinite(loud) else 1.0
    raw_peak = float(np.abs(mixture).max())
    # At most MAX_LIMIT_DB of peak limiting; beyond that the whole mix is turned down instead.
    if raw_peak * gain > MAX_PEAK * 10 ** (MAX_LIMIT_DB / 20):
        gain = MAX_PEAK * 10 ** (MAX_LIMIT_DB / 20) / raw_peak
    envelope = limiter_gain(mixture * gain, MAX_PEAK)
    for k, y in stems.items():
        stems[k] = (y * gain * envelope).astype(np.float32)
    # Individual stems may not exceed full scale either (they are stored as fixed-point FLAC).
    stem_peak = max((float(np.abs(y).max()) for y in stems.values()), default=0.0)
    if stem_peak > MAX_PEAK:
        for k in stems:
            stems[k] *= np.float32(MAX_PEAK / stem_peak)
        gain *= MAX_PEAK / stem_peak
    final_mix = np.zeros((2, n), dtype=np.float64)
    for y in stems.values():
        final_mix += y
    loud_final = integrated_loudness(final_mix, sr)
    gain_db = loud_final - loud if math.isfinite(loud) and math.isfinite(loud_final) else 0.0
    raw_peak, gain = float(np.abs(final_mix).max()), 1.0
    final = RenderedSong(song, stems, sr, {})
    mix_l = loud + gain_db if math.isfinite(loud) else float("-inf")
    final.info = {
        "fonts": fonts_used,
        "singer": singer_used,
        "synth_patches": patches,
        "fx": fx_info if mix else {},
        "room": room if mix else {},
        "target_lufs": round(target_lufs, 2),
        "mixture_lufs": round(mix_l, 2) if math.isfinite(mix_l) else None,
        "mixture_peak": round(raw_peak * gain, 4),
        "stem_lufs": {k: round(v + gain_db, 2) for k, v in stem_lufs.items()},
    }
    return final


def font_paths_for_docs() -> dict[str, Path]:
    return {n: Path(p) for n, f in FONTS.items() if (p := f.find())}
