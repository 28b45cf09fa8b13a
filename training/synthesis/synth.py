"""Instruments written in code, beside the SoundFonts: plucked strings (Karplus-Strong), modal keys,
mallets and bells, FM, subtractive and wavetable voices, drawbar organs, and drums made of noise,
sweeps and resonators. Every part draws its own timbre (a `Patch`) from the song's generator, so the
model hears sounds no SoundFont makes and no two songs share.

    CodeSynth(sample_rate).render(tracks, n_samples, rng) -> (2, n_samples) float32

the same contract as `FluidRenderer.render`. Decaying voices (plucks, keys, mallets, drums) are
rendered once per pitch and velocity band and cut at each note's end with a release, as a sampler
would; sustained voices are rendered per note length. Everything is numpy and scipy: no samples,
no external synthesizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.songs.model import Track
from training.synthesis.render import _biquad, pan_gains

SYNTH_NAME = "code"  # how song.json's "fonts" names a stem rendered here
MAX_DECAY_S = 4.0  # a decaying voice's cached length
MAX_NOTE_S = 10.0  # longest sustained note rendered
VEL_BANDS = 4  # timbre varies with velocity in this many bands; loudness follows velocity exactly
Voice = Callable[["Patch", float, float, float, np.random.Generator], np.ndarray]


def midi_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


@dataclass
class Patch:
    """One part's timbre: the engine, whether its notes decay by themselves, and its parameters."""

    engine: str
    decaying: bool
    params: dict[str, Any] = field(default_factory=dict)
    body: list[tuple[str, float, float, float]] = field(default_factory=list)  # (kind, f0, q, gain_db) on the part

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine, **{k: (round(v, 4) if isinstance(v, float) else v)
                                          for k, v in self.params.items() if not isinstance(v, np.ndarray)}}


# ----------------------------------------------------------------------------------------------
# Building blocks


def _env(t: np.ndarray, attack: float, decay: float, sustain: float) -> np.ndarray:
    """Linear attack, then exponential decay to `sustain` (a note's end is cut by CodeSynth._released)."""
    a = np.minimum(t / max(attack, 1e-4), 1.0)
    return a * (sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0.0) / max(decay, 1e-4)))


def _poly_blep(phase: np.ndarray, dt: float) -> np.ndarray:
    """The polyBLEP correction for a rising saw with its step at phase 0 (phase in [0, 1))."""
    out = np.zeros_like(phase)
    lo = phase < dt
    x = phase[lo] / dt
    out[lo] = x + x - x * x - 1.0
    hi = phase > 1.0 - dt
    x = (phase[hi] - 1.0) / dt
    out[hi] = x * x + x + x + 1.0
    return out


def _saw(freq: float | np.ndarray, n: int, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Band-limited rising saw in [-1, 1]; freq may be an (n,) array (vibrato)."""
    inc = np.broadcast_to(np.asarray(freq, dtype=np.float64) / sr, (n,))
    phase = (phase0 + np.cumsum(inc) - inc[0]) % 1.0
    dt = float(np.clip(inc.mean(), 1e-6, 0.5))
    return 2.0 * phase - 1.0 - _poly_blep(phase, dt)


def _pulse(freq: float | np.ndarray, n: int, sr: int, width: float) -> np.ndarray:
    """Band-limited pulse wave as the difference of two saws."""
    return _saw(freq, n, sr) - _saw(freq, n, sr, phase0=width) + (2.0 * width - 1.0)


_FLOOR_HZ = {"lowpass": 30.0, "highpass": 20.0}


def _filtered(x: np.ndarray, kind: str, f0: float, sr: int, q: float = 0.707) -> np.ndarray:
    """x through one RBJ biquad (render._biquad) of `kind`, its frequency kept inside the audio band."""
    from scipy import signal

    b, a = _biquad(kind, float(np.clip(f0, _FLOOR_HZ.get(kind, 0.0), 0.45 * sr)), sr, q=q)
    return signal.lfilter(b, a, x)


def _vibrato(f: float, n: int, sr: int, rate: float, cents: float, onset_s: float) -> np.ndarray:
    t = np.arange(n) / sr
    depth = cents * np.minimum(t / max(onset_s, 1e-3), 1.0)
    return f * 2.0 ** (depth * np.sin(2 * math.pi * rate * t) / 1200.0)


# ----------------------------------------------------------------------------------------------
# Voices: (patch, frequency, velocity 0..1, length in seconds, rng) -> mono (n,) float64


def voice_pluck(p: Patch, f: float, vel: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Extended Karplus-Strong string: a filtered noise burst circulating in a damped, tuned delay loop.
    The loop runs one period at a time, so numpy does the work in blocks of a period."""
    sr = p.params["sr"]
    n = int(length_s * sr)
    period = sr / f
    delay = max(2, int(period))
    frac = period - delay
    t60 = p.params["t60"] * (110.0 / f) ** p.params["decay_slope"]
    rho = 10.0 ** (-3.0 / (max(t60, 0.05) * f))
    y = np.zeros(n + delay + 2)
    burst = rng.uniform(-1.0, 1.0, delay)
    bright = np.clip(p.params["brightness"] * (0.55 + 0.45 * vel), 0.05, 0.98)
    burst = _filtered(burst, "lowpass", 200.0 + bright * 0.45 * sr, sr)  # softer picks give duller strings
    pick = int(p.params["pick_position"] * delay)
    if 0 < pick < delay:
        burst[pick:] -= burst[:delay - pick]  # the pick position's comb
    y[:delay] = burst
    w0, w1 = rho * (1.0 - frac), rho * frac
    for s in range(delay + 1, n, delay):
        e = min(s + delay, n)
        y[s:e] += w0 * y[s - delay:e - delay] + w1 * y[s - delay - 1:e - delay - 1]
    return y[:n]


def voice_modal(p: Patch, f: float, vel: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Struck modes: piano-like strings (stretched partials, two-stage decay, unison beating) or bars and
    bells (fixed mode ratios), with a hammer or mallet thump."""
    sr = p.params["sr"]
    n = int(length_s * sr)
    t = np.arange(n) / sr
    ratios = p.params["ratios"]
    if ratios is None:  # a string: stretched harmonics
        k = np.arange(1, p.params["n_partials"] + 1)
        b = p.params["inharmonicity"] * (f / 261.6) ** 0.5
        ratios = k * np.sqrt(1.0 + b * k * k)
    ratios = np.asarray(ratios, dtype=float)
    keep = ratios * f < 0.45 * sr
    ratios = ratios[keep]
    hard = p.params["hardness"] * (0.5 + 0.8 * vel)
    amps = np.asarray(p.params.get("mode_amps", 1.0 / np.arange(1, len(keep) + 1) ** p.params["tilt"]))[keep]
    amps = amps * np.exp(-ratios * f / (hard * 2500.0 + 200.0))  # harder strikes excite more high modes
    tau1 = p.params["tau"] * (261.6 / f) ** p.params["decay_slope"]
    out = np.zeros(n)
    for r, a in zip(ratios, amps):
        tau = tau1 / (1.0 + p.params["mode_damping"] * (r - 1.0))
        env = a * ((1 - p.params["aftersound"]) * np.exp(-t / (0.18 * tau)) + p.params["aftersound"] * np.exp(-t / tau))
        ph = rng.uniform(0, 2 * math.pi)
        partial = np.sin(2 * math.pi * r * f * t + ph)
        if p.params["beat_hz"] > 0:
            partial *= 1.0 + 0.3 * np.cos(2 * math.pi * p.params["beat_hz"] * r * t)
        out += env * partial
    thump_n = min(n, int(0.012 * sr))
    if thump_n > 8 and p.params["thump"] > 0:
        noise = _filtered(rng.standard_normal(thump_n), "lowpass", 300 + 2500 * hard, sr)
        out[:thump_n] += p.params["thump"] * noise * np.exp(-np.arange(thump_n) / (0.003 * sr))
    return out


def voice_fm(p: Patch, f: float, vel: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Two-operator FM with a decaying index (electric pianos, bells, basses) or a held one (brass, organs)."""
    sr = p.params["sr"]
    n = int(length_s * sr)
    t = np.arange(n) / sr
    fc, fm = f * p.params["carrier_ratio"], f * p.params["mod_ratio"]
    i_max = max(0.0, 0.45 * sr / max(fm, 1.0) - 1.0)
    index = min(p.params["index"] * (0.4 + 0.8 * vel), i_max)
    idx_env = index * (p.params["index_sustain"] + (1 - p.params["index_sustain"]) * np.exp(-t / p.params["index_decay"]))
    y = np.sin(2 * math.pi * fc * t + idx_env * np.sin(2 * math.pi * fm * t))
    if p.params["tine"] > 0:  # a high, fast-fading partial: the electric piano's bark
        y += p.params["tine"] * np.sin(2 * math.pi * f * 14.0 * t) * np.exp(-t / 0.03) * (f * 14 < 0.45 * sr)
    if p.decaying:
        return y * np.exp(-t / (p.params["decay"] * (261.6 / f) ** 0.4)) * np.minimum(t / 0.002, 1.0)
    return y * _env(t, p.params["attack"], p.params["decay"], p.params["sustain"])


def voice_subtractive(p: Patch, f: float, vel: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Detuned saws or pulses through a resonant low-pass whose envelope opens and closes it
    (basses, leads, brass, strings, pads)."""
    sr = p.params["sr"]
    n = int(length_s * sr)
    t = np.arange(n) / sr
    osc = np.zeros(n)
    for k in range(p.params["unison"]):
        detune = p.params["detune_cents"] * (k - (p.params["unison"] - 1) / 2)
        fk: float | np.ndarray = f * 2 ** (detune / 1200)
        if p.params["vibrato_cents"] > 0:
            fk = _vibrato(float(fk), n, sr, p.params["vibrato_rate"], p.params["vibrato_cents"], 0.3)
        if p.params["wave"] == "saw":
            osc += _saw(fk, n, sr, phase0=float(rng.random()))
        else:
            osc += _pulse(fk, n, sr, p.params["pulse_width"])
    if p.params["sub"] > 0:
        osc += p.params["sub"] * np.sign(np.sin(math.pi * f * t))
    osc /= p.params["unison"]
    lo = f * p.params["cutoff_low"]
    hi = lo * p.params["env_amount"] * (0.5 + vel)
    dark = _filtered(osc, "lowpass", lo, sr, p.params["resonance"])
    bright = _filtered(osc, "lowpass", hi, sr, p.params["resonance"])
    fenv = _env(t, p.params["filter_attack"], p.params["filter_decay"], p.params["filter_sustain"])
    y = dark + fenv * (bright - dark)
    if p.decaying:
        return y * np.exp(-t / p.params["decay"]) * np.minimum(t / 0.003, 1.0)
    return y * _env(t, p.params["attack"], p.params["decay"], p.params["sustain"])


def voice_wavetable(p: Patch, f: float, vel: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Two harmonic spectra crossfaded over the note (an envelope or a slow LFO): pads, organs, leads."""
    sr = p.params["sr"]
    n = int(length_s * sr)
    t = np.arange(n) / sr
    ta, tb = p.params["table_a"], p.params["table_b"]
    k_max = min(len(ta), int(0.45 * sr / f))
    if p.params["morph_rate"] > 0:
        m = 0.5 + 0.5 * np.sin(2 * math.pi * p.params["morph_rate"] * t + rng.uniform(0, 6.3))
    else:
        m = 1.0 - np.exp(-t / p.params["morph_time"])
    ff = _vibrato(f, n, sr, p.params["vibrato_rate"], p.params["vibrato_cents"], 0.4) if p.params["vibrato_cents"] else f
    phase = 2 * math.pi * np.cumsum(np.broadcast_to(ff, (n,))) / sr
    a_sum = np.zeros(n)
    b_sum = np.zeros(n)
    for k in range(1, k_max + 1):
        s = np.sin(k * phase)
        a_sum += ta[k - 1] * s
        b_sum += tb[k - 1] * s
    y = (1 - m) * a_sum + m * b_sum
    return y * _env(t, p.params["attack"], p.params["decay"], p.params["sustain"])


VOICES: dict[str, Voice] = {"pluck": voice_pluck, "modal": voice_modal, "fm": voice_fm,
                            "subtractive": voice_subtractive, "wavetable": voice_wavetable}


# ----------------------------------------------------------------------------------------------
# Drums: each General MIDI key maps to a family, each family has a voice with per-kit settings

def _drum_family(key: int) -> str:
    if key in (35, 36):
        return "kick"
    if key in (38, 40):
        return "snare"
    if key in (37, 75, 76, 77):
        return "rim"
    if key == 39:
        return "clap"
    if key in (42, 44):
        return "hat_closed"
    if key == 46:
        return "hat_open"
    if key in (41, 43, 45, 47, 48, 50, 60, 61, 62, 63, 64, 65, 66):
        return "tom"
    if key in (49, 52, 55, 57):
        return "crash"
    if key in (51, 53, 59):
        return "ride"
    if key in (54, 69, 70, 82):
        return "shaker"
    if key in (56, 67, 68, 80, 81):
        return "bell"
    return "rim"


def draw_kit(rng: np.random.Generator) -> dict[str, Any]:
    """A drum kit's sound: every family's tuning, decay and colour."""
    u = rng.uniform
    return {
        "kick": {"f0": u(90, 220), "f1": u(38, 62), "sweep": u(0.01, 0.06), "decay": u(0.12, 0.55),
                 "click": u(0.0, 0.6), "drive": u(0.0, 3.0)},
        "snare": {"tone": u(150, 260), "tone_decay": u(0.04, 0.12), "noise_f": u(1500, 6000), "noise_q": u(0.4, 1.5),
                  "noise_decay": u(0.08, 0.3), "mix": u(0.4, 0.85)},
        "rim": {"f": u(350, 1800), "q": u(4, 20), "decay": u(0.01, 0.05)},
        "clap": {"f": u(900, 2200), "bursts": int(rng.integers(2, 5)), "spread": u(0.006, 0.015), "decay": u(0.08, 0.25)},
        "hat": {"metal": bool(rng.random() < 0.5), "cut": u(5000, 10000), "closed": u(0.02, 0.08),
                "open": u(0.18, 0.6), "base": u(280, 420)},
        "tom": {"f_low": u(70, 110), "spread": u(1.6, 2.6), "decay": u(0.2, 0.6), "sweep": u(0.0, 0.4)},
        "crash": {"decay": u(0.9, 2.5), "cut": u(2500, 6000), "base": u(250, 450)},
        "ride": {"decay": u(0.8, 2.0), "ping": u(2500, 5500), "ping_amt": u(0.2, 0.7), "base": u(300, 500)},
        "shaker": {"cut": u(4000, 9000), "decay": u(0.03, 0.12)},
        "bell": {"f": u(500, 950), "ratio": u(1.4, 1.6), "decay": u(0.08, 0.4)},
    }


def _metal(base: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Six detuned square waves at inharmonic ratios: the classic analogue cymbal source."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for r in (1.0, 1.4471, 1.6170, 1.9265, 2.5028, 2.6637):
        out += np.sign(np.sin(2 * math.pi * base * r * (1 + rng.uniform(-0.01, 0.01)) * t + rng.uniform(0, 6.3)))
    return out / 6.0


def drum_hit(kit: dict[str, Any], key: int, vel: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One hit of a General MIDI drum key: mono float64."""
    fam = _drum_family(key)
    bright = 0.6 + 0.4 * vel
    if fam == "kick":
        k = kit["kick"]
        n = int((k["decay"] * 5) * sr)
        t = np.arange(n) / sr
        freq = k["f1"] + (k["f0"] - k["f1"]) * np.exp(-t / k["sweep"])
        y = np.sin(2 * math.pi * np.cumsum(freq) / sr) * np.exp(-t / k["decay"])
        cn = int(0.004 * sr)
        y[:cn] += k["click"] * bright * _filtered(rng.standard_normal(cn), "highpass", 2000, sr) * np.linspace(1, 0, cn)
        if k["drive"] > 0:
            y = np.tanh((1 + k["drive"]) * y) / math.tanh(1 + k["drive"])
        return y
    if fam == "snare":
        k = kit["snare"]
        n = int(k["noise_decay"] * 6 * sr)
        t = np.arange(n) / sr
        tone = (np.sin(2 * math.pi * k["tone"] * t) + 0.5 * np.sin(2 * math.pi * k["tone"] * 1.7 * t)) * np.exp(-t / k["tone_decay"])
        noise = _filtered(rng.standard_normal(n), "bandpass", k["noise_f"] * bright, sr, k["noise_q"]) * np.exp(-t / k["noise_decay"])
        noise /= np.abs(noise).max() + 1e-9
        return (1 - k["mix"]) * tone + k["mix"] * noise
    if fam == "rim":
        k = kit["rim"]
        n = int(max(k["decay"] * 8, 0.05) * sr)
        imp = np.zeros(n)
        imp[0] = 1.0
        imp[1:16] = rng.uniform(-0.3, 0.3, 15)
        y = _filtered(imp, "bandpass", k["f"] * (0.9 + 0.2 * (key % 3) / 2), sr, k["q"])
        return y / (np.abs(y).max() + 1e-9)
    if fam == "clap":
        k = kit["clap"]
        n = int((k["decay"] * 5 + k["bursts"] * k["spread"]) * sr)
        t = np.arange(n) / sr
        env = np.zeros(n)
        for b in range(k["bursts"]):
            t0 = b * k["spread"]
            env += (t >= t0) * np.exp(-np.maximum(t - t0, 0) / (0.004 if b < k["bursts"] - 1 else k["decay"]))
        y = _filtered(rng.standard_normal(n), "bandpass", k["f"], sr, 1.2) * env
        return y / (np.abs(y).max() + 1e-9)
    if fam in ("hat_closed", "hat_open"):
        k = kit["hat"]
        decay = k["open"] if fam == "hat_open" else (k["closed"] * (0.6 if key == 44 else 1.0))
        n = int(decay * 6 * sr)
        t = np.arange(n) / sr
        src = _metal(k["base"], n, sr, rng) if k["metal"] else rng.standard_normal(n)
        y = _filtered(src, "highpass", k["cut"] * (0.8 + 0.3 * bright), sr) * np.exp(-t / decay)
        return y / (np.abs(y).max() + 1e-9)
    if fam == "tom":
        k = kit["tom"]
        order = (41, 43, 45, 47, 48, 50, 60, 61, 62, 63, 64, 65, 66)
        pos = order.index(key) if key in order else 3
        f0 = k["f_low"] * k["spread"] ** (min(pos, 5) / 5.0)
        n = int(k["decay"] * 5 * sr)
        t = np.arange(n) / sr
        freq = f0 * (1 + k["sweep"] * np.exp(-t / 0.05))
        y = np.sin(2 * math.pi * np.cumsum(freq) / sr) * np.exp(-t / k["decay"])
        y[: int(0.003 * sr)] += 0.3 * rng.standard_normal(int(0.003 * sr))
        return y
    if fam in ("crash", "ride"):
        k = kit[fam]
        n = int(k["decay"] * 3 * sr)
        t = np.arange(n) / sr
        src = 0.6 * _metal(k["base"], n, sr, rng) + 0.4 * rng.standard_normal(n)
        y = _filtered(src, "highpass", k.get("cut", 3500), sr) * np.exp(-t / k["decay"])
        if fam == "ride":
            y += k["ping_amt"] * np.sin(2 * math.pi * k["ping"] * t) * np.exp(-t / (0.4 * k["decay"]))
        y *= np.minimum(t / 0.002, 1.0)
        return y / (np.abs(y).max() + 1e-9)
    if fam == "shaker":
        k = kit["shaker"]
        n = int(k["decay"] * 6 * sr)
        t = np.arange(n) / sr
        env = np.minimum(t / 0.008, 1.0) * np.exp(-t / k["decay"])
        y = _filtered(rng.standard_normal(n), "highpass", k["cut"], sr) * env
        return y / (np.abs(y).max() + 1e-9)
    k = kit["bell"]  # cowbell, agogo, woodblocks
    n = int(k["decay"] * 5 * sr)
    t = np.arange(n) / sr
    f0 = k["f"] * (1.0 + 0.25 * (key % 2))
    y = (_pulse(f0, n, sr, 0.5) + _pulse(f0 * k["ratio"], n, sr, 0.5)) * np.exp(-t / k["decay"])
    return _filtered(y, "bandpass", f0 * 1.2, sr, 2.0)


# ----------------------------------------------------------------------------------------------
# Drawing a part's timbre


def _table(rng: np.random.Generator, n: int = 32) -> np.ndarray:
    """A random harmonic spectrum: a tilt, odd/even balance, and one or two formant bumps."""
    k = np.arange(1, n + 1, dtype=float)
    amps = k ** -rng.uniform(0.6, 2.0)
    amps[1::2] *= rng.uniform(0.1, 1.0)  # even harmonics
    for _ in range(int(rng.integers(0, 3))):
        c, w, g = rng.uniform(2, 20), rng.uniform(1.5, 5), rng.uniform(1.5, 6)
        amps *= 1 + g * np.exp(-0.5 * ((k - c) / w) ** 2)
    return amps / np.abs(amps).sum()


_MALLET_RATIOS = {"marimba": [1.0, 3.99, 10.65], "vibes": [1.0, 4.0, 10.1], "glock": [1.0, 2.71, 5.15, 8.5],
                  "bell": [0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.66, 3.0], "bar": [1.0, 2.76, 5.4, 8.93]}


def draw_patch(rng: np.random.Generator, track: Track, sample_rate: int) -> Patch:
    """A timbre for one part, from its stem and General MIDI program family."""
    u = rng.uniform
    stem, family = track.stem, track.program // 8
    sr = {"sr": sample_rate}
    if stem == "guitar" or (stem == "other" and family == 13) or (stem == "bass" and rng.random() < 0.45):
        if stem == "guitar" and rng.random() < 0.15:
            return _fm_patch(rng, sr, decaying=True)
        base_t60 = u(1.5, 6.0) if stem != "bass" else u(1.0, 4.0)
        body = [("peak", float(u(90, 250)), float(u(0.8, 2.0)), float(u(2, 8))),
                ("peak", float(u(400, 3000)), float(u(0.7, 2.5)), float(u(-6, 6)))]
        return Patch("pluck", True, {**sr, "t60": base_t60, "decay_slope": u(0.3, 1.0), "brightness": u(0.25, 0.95),
                                     "pick_position": u(0.08, 0.35)}, body=body)
    if stem == "piano" or (stem == "other" and family == 1):
        if stem == "piano" and family == 0 and rng.random() < 0.3:  # a tine or FM electric piano
            p = _fm_patch(rng, sr, decaying=True)
            p.params.update(carrier_ratio=1.0, mod_ratio=float(rng.choice([1.0, 1.0, 2.0, 7.0])), tine=u(0.0, 0.4))
            return p
        if family == 1 or rng.random() < 0.15:  # mallets and bells
            kind = str(rng.choice(list(_MALLET_RATIOS)))
            ratios = _MALLET_RATIOS[kind]
            return Patch("modal", True, {**sr, "ratios": ratios, "mode_amps": list(u(0.2, 1.0, len(ratios)) * (1.0 / np.arange(1, len(ratios) + 1))),
                                         "tilt": 1.0, "hardness": u(0.3, 1.5), "tau": u(0.4, 2.5), "decay_slope": u(0.2, 0.8),
                                         "mode_damping": u(0.2, 2.0), "aftersound": u(0.4, 0.9), "beat_hz": u(0, 0.6) * (kind == "vibes"),
                                         "thump": u(0, 0.3), "kind": kind})
        return Patch("modal", True, {**sr, "ratios": None, "n_partials": int(rng.integers(10, 20)),
                                     "inharmonicity": u(1e-5, 6e-4), "tilt": u(0.6, 1.4), "hardness": u(0.4, 1.6),
                                     "tau": u(1.0, 4.0), "decay_slope": u(0.3, 0.8), "mode_damping": u(0.05, 0.5),
                                     "aftersound": u(0.3, 0.8), "beat_hz": u(0.2, 1.5), "thump": u(0.0, 0.3)})
    if stem == "bass":
        if rng.random() < 0.35:
            p = _fm_patch(rng, sr, decaying=bool(rng.random() < 0.6))
            p.params.update(carrier_ratio=1.0, mod_ratio=float(rng.choice([0.5, 1.0, 1.0, 2.0])), index=u(0.8, 4.0))
            return p
        return _subtractive_patch(rng, sr, decaying=bool(rng.random() < 0.3), bass=True)
    # other (and the rest of "piano"/"guitar" odd cases): organs, pads, leads, brass, strings, bells
    if family == 2:
        drawbars = np.zeros(32)
        for h in (1, 2, 3, 4, 6, 8):
            drawbars[h - 1] = u(0, 1) ** 2
        drawbars[0] = max(drawbars[0], 0.5)
        p = _wavetable_patch(rng, sr)
        p.params.update(table_a=drawbars / drawbars.sum(), table_b=drawbars / drawbars.sum(), attack=0.005,
                        sustain=1.0, morph_rate=0.0, vibrato_cents=0.0)
        return p
    if family in (11, 12) or rng.random() < 0.1:  # synth pads, FX: wavetables
        return _wavetable_patch(rng, sr)
    if family in (5, 6, 7, 10) and rng.random() < 0.5:  # strings, brass, reeds, leads
        return _subtractive_patch(rng, sr, decaying=False, bass=False)
    if rng.random() < 0.25:
        return _fm_patch(rng, sr, decaying=bool(rng.random() < 0.4))
    return _subtractive_patch(rng, sr, decaying=False, bass=False) if rng.random() < 0.6 else _wavetable_patch(rng, sr)


def _fm_patch(rng: np.random.Generator, sr: dict[str, Any], decaying: bool) -> Patch:
    u = rng.uniform
    ratios = [(1.0, 1.0), (1.0, 2.0), (1.0, 3.0), (2.0, 1.0), (1.0, 0.5), (1.0, 1.41), (3.0, 1.0), (1.0, 3.5)]
    c, m = ratios[int(rng.integers(len(ratios)))]
    return Patch("fm", decaying, {**sr, "carrier_ratio": c, "mod_ratio": m, "index": u(0.5, 6.0),
                                  "index_decay": u(0.05, 1.0), "index_sustain": u(0.0, 0.5) if not decaying else u(0.0, 0.2),
                                  "tine": 0.0, "decay": u(0.5, 3.0), "attack": u(0.002, 0.15),
                                  "sustain": u(0.4, 1.0)})


def _subtractive_patch(rng: np.random.Generator, sr: dict[str, Any], decaying: bool, bass: bool) -> Patch:
    u = rng.uniform
    return Patch("subtractive", decaying, {
        **sr, "wave": "saw" if rng.random() < 0.6 else "pulse", "pulse_width": u(0.1, 0.5),
        "unison": int(rng.integers(1, 4)) if not bass else int(rng.integers(1, 3)),
        "detune_cents": u(3, 20), "sub": u(0, 0.6) if bass else 0.0,
        "cutoff_low": u(1.0, 4.0) if bass else u(1.5, 8.0), "env_amount": u(1.5, 12.0),
        "resonance": u(0.6, 4.0), "filter_attack": u(0.001, 0.2), "filter_decay": u(0.05, 1.2),
        "filter_sustain": u(0.0, 0.6), "attack": u(0.002, 0.02) if bass else u(0.002, 0.6),
        "decay": u(0.2, 2.0), "sustain": u(0.5, 1.0),
        "vibrato_cents": u(0, 25) * (not bass) * (rng.random() < 0.6), "vibrato_rate": u(4.0, 6.5)})


def _wavetable_patch(rng: np.random.Generator, sr: dict[str, Any]) -> Patch:
    u = rng.uniform
    return Patch("wavetable", False, {
        **sr, "table_a": _table(rng), "table_b": _table(rng), "morph_rate": u(0.1, 1.5) if rng.random() < 0.4 else 0.0,
        "morph_time": u(0.1, 2.0), "attack": u(0.005, 0.8), "decay": u(0.3, 3.0), "sustain": u(0.4, 1.0),
        "vibrato_cents": u(0, 15) * (rng.random() < 0.5), "vibrato_rate": u(4.0, 6.5)})


# ----------------------------------------------------------------------------------------------
# Rendering parts


class CodeSynth:
    """Renders tracks with code-written instruments, one timbre drawn per track."""

    def __init__(self, sample_rate: int = 44100) -> None:
        self.sample_rate = sample_rate
        self.rendered_s = 0.0
        self.last_patches: list[dict[str, Any]] = []

    def render(self, tracks: Sequence[Track], n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """tracks (all of one stem) -> (2, n_samples) float32."""
        out = np.zeros((2, n_samples))
        self.last_patches = []
        for track in tracks:
            if not track.notes:
                continue
            mono = self._render_track(track, n_samples, rng)
            pan = float(np.clip(track.pan, -1.0, 1.0))
            out += pan_gains(pan)[:, None] * mono[None, :] * (np.clip(track.volume, 1, 127) / 127.0) ** 2
        self.rendered_s += n_samples / self.sample_rate
        return out.astype(np.float32)

    def _render_track(self, track: Track, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        sr = self.sample_rate
        buf = np.zeros(n_samples)
        if track.is_drum:
            kit = draw_kit(rng)
            self.last_patches.append({"engine": "drums"})
            cache: dict[tuple[int, int, int], np.ndarray] = {}
            for n in track.notes:
                vel = n.velocity / 127.0
                key = (n.pitch, int(vel * VEL_BANDS), int(rng.integers(3)))  # three round-robin variants
                if key not in cache:
                    cache[key] = drum_hit(kit, n.pitch, vel, sr, rng)
                self._add(buf, cache[key] * vel ** 1.5, n.start_s)
            return self._normalised(buf)
        patch = draw_patch(rng, track, sr)
        self.last_patches.append(patch.describe())
        voice = VOICES[patch.engine]
        tuning = 2 ** (rng.uniform(-10, 10) / 1200)
        release = float(rng.uniform(0.04, 0.25)) if patch.decaying else float(rng.uniform(0.05, 0.6))
        cache_d: dict[tuple[int, int], np.ndarray] = {}
        # A decaying voice is rendered as long as the part's longest note needs, not always MAX_DECAY_S.
        decay_len = min(MAX_DECAY_S, max(n.end_s - n.start_s for n in track.notes) + release + 0.05)
        cache_s: dict[tuple[int, int, int], np.ndarray] = {}
        for n in track.notes:
            vel = n.velocity / 127.0
            band = min(int(vel * VEL_BANDS), VEL_BANDS - 1)
            f = midi_hz(n.pitch) * tuning
            dur = max(0.02, n.end_s - n.start_s)
            if patch.decaying:
                k = (n.pitch, band)
                if k not in cache_d:
                    cache_d[k] = voice(patch, f, (band + 0.5) / VEL_BANDS, decay_len, rng)
                x = self._released(cache_d[k], dur, release)
            else:
                ks = (n.pitch, band, int(min(dur, MAX_NOTE_S) / 0.025))
                if ks not in cache_s:
                    body = voice(patch, f, (band + 0.5) / VEL_BANDS, min(dur, MAX_NOTE_S) + release, rng)
                    cache_s[ks] = self._released(body, min(dur, MAX_NOTE_S), release)
                x = cache_s[ks]
            self._add(buf, x * vel, n.start_s)
        if patch.body:
            from scipy import signal

            for kind, f0, q, g in patch.body:
                b, a = _biquad(kind, f0, sr, q=q, gain_db=g)
                buf = signal.lfilter(b, a, buf)
        return self._normalised(buf)

    def _released(self, x: np.ndarray, dur: float, release: float) -> np.ndarray:
        """The note cut at its end with an exponential release (a damper, a lifted finger)."""
        sr = self.sample_rate
        end = int(dur * sr)
        n_rel = int(release * sr)
        if end >= len(x):
            return x
        y = x[: end + n_rel].copy()
        tail = y[end:]
        tail *= np.exp(-np.arange(len(tail)) / max(n_rel / 4.6, 1.0))
        return y

    def _add(self, buf: np.ndarray, x: np.ndarray, start_s: float) -> None:
        s0 = round(start_s * self.sample_rate)
        if s0 >= len(buf):
            return
        m = min(len(x), len(buf) - s0)
        buf[s0:s0 + m] += x[:m]

    @staticmethod
    def _normalised(buf: np.ndarray) -> np.ndarray:
        """A part at a steady working level (its final loudness is set by the mix)."""
        rms = math.sqrt(float((buf ** 2).mean()) + 1e-20)
        return buf * (0.1 / rms) if rms > 1e-9 else buf

