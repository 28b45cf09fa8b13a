"""A singer written in code: a source-filter voice that sings the same notes and lyrics as the espeak /
WORLD singer (training/synthesis/singer.py) with no speech engine at all, for timbres nobody trained on and for
machines without espeak-ng or pyworld.

How: each syllable's letters become a phoneme timeline (onset consonants, a vowel or diphthong stretched
over the note, coda consonants). Voiced sound is additive: the harmonics of the sung pitch curve
(singer._pitch_cents: scoop, glides, vibrato, drift, plus jitter and shimmer), each weighted by a glottal
tilt and the vocal tract's formants at that moment (five resonances per phoneme, scaled per voice, F1
raised to follow a high pitch as trained singers do, an optional singer's formant near 3 kHz). Fricatives,
bursts and breath are noise shaped in the frequency domain. Synthesis runs at the output rate, so the
voice has air up to 16 kHz where the espeak singer stops at 11 kHz.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.synthesis.singer import (
    SingerError,
    SungNote,
    VoiceSettings,
    _clean_text,
    _drift_fn,
    _groups,
    _notes_to_sing,
    _phrases,
    _pitch_cents,
)

__all__ = ["CodeVoice", "code_voice", "phonemes", "sing"]

_CTRL = 64                     # samples per control frame (formants, harmonic amplitudes)
_SING_RMS_DBFS = -20.0
_PEAK_CEILING = 10.0 ** (-1.0 / 20.0)
_MAX_HARMONIC_HZ = 11000.0

# Formants (Hz) of an adult male voice, F1-F3 after Peterson & Barney's averages, F4/F5 typical.
_VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "e": (480, 2000, 2600), "E": (530, 1840, 2480),
    "ae": (660, 1720, 2410), "a": (730, 1090, 2440), "o": (500, 850, 2400), "O": (570, 840, 2410),
    "U": (440, 1020, 2240), "u": (300, 870, 2240), "V": (640, 1190, 2390), "R": (490, 1350, 1690),
    "M": (280, 1000, 2200),  # a hum ("hmm"): the nasal murmur as the nucleus
}
_BANDWIDTHS = (80.0, 100.0, 140.0, 200.0, 260.0)
_FORMANT_GAINS = (1.0, 0.6, 0.3, 0.16, 0.09)   # 0, -4.4, -10.5, -16, -21 dB
_F45 = (3400.0, 4200.0)
# Voiced consonants: formants of the constriction, and how loud they sound against a vowel.
_VOICED_CONS: dict[str, tuple[tuple[float, float, float], float]] = {
    "m": ((280, 1000, 2200), 0.30), "n": ((280, 1500, 2500), 0.30), "N": ((280, 1900, 2500), 0.28),
    "l": ((360, 1100, 2700), 0.55), "r": ((400, 1100, 1500), 0.55), "w": ((300, 610, 2200), 0.5),
    "y": ((270, 2100, 3000), 0.5), "v": ((300, 1100, 2200), 0.25), "z": ((300, 1600, 2500), 0.2),
    "b": ((250, 900, 2200), 0.15), "d": ((250, 1700, 2600), 0.15), "g": ((250, 1900, 2400), 0.15),
    "dh": ((300, 1300, 2500), 0.22),
}
# Noise of each consonant: (centre Hz, width in octaves, level against the vowel, duration s)
_NOISE: dict[str, tuple[float, float, float, float]] = {
    "s": (6500, 0.7, 0.35, 0.11), "z": (6000, 0.7, 0.15, 0.09), "sh": (3200, 0.8, 0.3, 0.11),
    "f": (5000, 1.6, 0.06, 0.09), "v": (4000, 1.6, 0.03, 0.07), "th": (5500, 1.5, 0.05, 0.09),
    "dh": (4500, 1.5, 0.03, 0.06), "h": (1500, 1.5, 0.08, 0.07), "p": (900, 1.2, 0.2, 0.02),
    "t": (4200, 1.0, 0.25, 0.025), "k": (2000, 0.9, 0.22, 0.03), "b": (800, 1.2, 0.08, 0.012),
    "d": (3800, 1.0, 0.1, 0.015), "g": (1900, 0.9, 0.1, 0.02), "ch": (3300, 0.8, 0.3, 0.08),
    "j": (3000, 0.8, 0.15, 0.06),
}
_PLOSIVES = {"p", "t", "k", "b", "d", "g", "ch", "j"}
_VOWEL_SPELLINGS: tuple[tuple[str, tuple[str, ...]], ...] = (  # longest first; diphthongs glide
    ("igh", ("a", "i")), ("eah", ("E", "a")), ("ee", ("i",)), ("ea", ("i",)), ("oo", ("u",)), ("ou", ("a", "U")),
    ("ow", ("o", "U")), ("oy", ("O", "i")), ("oi", ("O", "i")), ("ay", ("e", "i")), ("ai", ("e", "i")),
    ("ey", ("e", "i")), ("ew", ("I", "u")), ("oh", ("o", "U")), ("ah", ("a",)), ("er", ("R",)),
    ("ur", ("R",)), ("ir", ("R",)), ("or", ("O", "R")), ("ar", ("a", "R")), ("a", ("ae",)), ("e", ("E",)),
    ("i", ("I",)), ("o", ("a",)), ("u", ("V",)), ("y", ("a", "i")),
)
_LONG: dict[tuple[str, ...], tuple[str, ...]] = {("ae",): ("e", "i"), ("I",): ("a", "i"), ("a",): ("o", "U"), ("V",): ("I", "u"), ("E",): ("i",)}
_CONS_SPELLINGS = (
    ("sh", "sh"), ("ch", "ch"), ("th", "th"), ("ng", "N"), ("ck", "k"), ("ph", "f"), ("wh", "w"),
    ("b", "b"), ("c", "k"), ("d", "d"), ("f", "f"), ("g", "g"), ("h", "h"), ("j", "j"), ("k", "k"),
    ("l", "l"), ("m", "m"), ("n", "n"), ("p", "p"), ("q", "k"), ("r", "r"), ("s", "s"), ("t", "t"),
    ("v", "v"), ("w", "w"), ("x", "s"), ("y", "y"), ("z", "z"),
)


@dataclass(frozen=True)
class CodeVoice:
    """The timbre of one code singer (besides the VoiceSettings' vibrato, scoop, drift, breath)."""

    formant_scale: float = 1.0     # vocal tract length: ~1.0 a man, ~1.17 a woman, ~1.3 a child
    tilt_db_per_octave: float = -4.0   # harmonic roll-off of the glottal source with lip radiation
    breathiness: float = 0.1       # aspiration noise against the voiced sound
    singers_formant_db: float = 0.0    # a resonance near 2.9 kHz that carries an opera voice
    jitter: float = 0.004          # relative pitch perturbation (RMS)
    shimmer: float = 0.05          # relative amplitude perturbation (RMS)
    nasality: float = 0.0          # 0..1 a little of the nasal murmur in every vowel


def code_voice(voice: VoiceSettings) -> CodeVoice:
    """A code timbre drawn from the voice's seed: its formant_shift moves the tract length, its
    breathiness the aspiration, so one VoiceSettings sings as one person with either singer."""
    rng = np.random.default_rng([voice.seed, 77])
    female = any(tag in voice.espeak_voice for tag in ("+f", "linda", "aunty", "steph", "Annie", "belinda",
                                                       "grandma", "anika"))
    base = float(rng.uniform(1.12, 1.22)) if female else float(rng.uniform(0.95, 1.05))
    return CodeVoice(
        formant_scale=base * voice.formant_shift,
        tilt_db_per_octave=float(rng.uniform(-7.0, -3.0)),
        breathiness=float(np.clip(voice.breathiness + rng.uniform(0.0, 0.15), 0.0, 0.6)),
        singers_formant_db=float(rng.choice([0.0, rng.uniform(3.0, 10.0)])),
        jitter=float(rng.uniform(0.002, 0.008)),
        shimmer=float(rng.uniform(0.02, 0.08)),
        nasality=float(rng.uniform(0.0, 0.3)),
    )


def phonemes(text: str) -> tuple[list[str], list[str], list[str]]:
    """(onset consonants, vowel targets, coda consonants) of one sung syllable, e.g. "night" ->
    (["n"], ["a", "i"], ["t"]); a syllable with no vowel letter sings "a"."""
    word = _clean_text(text).lower().replace("'", "")
    units: list[tuple[str, tuple[str, ...]]] = []  # ("c", (phone,)) or ("v", vowels)
    i = 0
    while i < len(word):
        if word[i] == " ":
            i += 1
            continue
        for spelling, targets in _VOWEL_SPELLINGS:
            # "y" is a consonant before a vowel ("yes") and a vowel elsewhere ("fly")
            if spelling == "y" and i + 1 < len(word) and word[i + 1] in "aeiou":
                continue
            if word.startswith(spelling, i):
                units.append(("v", targets))
                i += len(spelling)
                break
        else:
            for spelling, phone in _CONS_SPELLINGS:
                if word.startswith(spelling, i):
                    if not (units and units[-1] == ("c", (phone,))):  # "ll", "ss": one sound
                        units.append(("c", (phone,)))
                    i += len(spelling)
                    break
            else:
                i += 1
    # a final silent "e" ("love", "shine") is not sung as a second vowel
    if len(units) >= 3 and units[-1] == ("v", ("E",)) and word.endswith("e") and units[-2][0] == "c" \
            and any(k == "v" for k, _ in units[:-2]):
        units.pop()
        # ... and makes the vowel before it long: "shine", "home", "make"
        k = max(j for j, (kind, _) in enumerate(units) if kind == "v")
        units[k] = ("v", _LONG.get(units[k][1], units[k][1]))
    if word.endswith("a") and len(word) > 1 and units and units[-1] == ("v", ("ae",)):
        units[-1] = ("v", ("a",))  # an open "a" is "ah": "la", "na"
    first = next((k for k, (kind, _) in enumerate(units) if kind == "v"), None)
    if first is None:
        if "m" in (u[1][0] for u in units) or "n" in (u[1][0] for u in units):
            return [u[1][0] for u in units if u[1][0] not in ("m", "n")], ["M"], []
        return [u[1][0] for u in units], ["a"], []
    last = max(k for k, (kind, _) in enumerate(units) if kind == "v")
    vowels = [v for kind, vs in units[first:last + 1] if kind == "v" for v in vs]
    onset = [u[1][0] for u in units[:first]]
    coda = [u[1][0] for u in units[last + 1:]]
    return onset, vowels, coda


def _resonance(f: np.ndarray, centre: np.ndarray, bw: float) -> np.ndarray:
    """Magnitude of a two-pole resonance at `centre` with bandwidth `bw`, 1 at its peak (skirts falling
    12 dB per octave above it)."""
    return centre * bw / np.sqrt((centre * centre - f * f) ** 2 + (f * bw) ** 2)


def _tract(f: np.ndarray, formants: np.ndarray, voice: CodeVoice) -> np.ndarray:
    """The vocal tract's magnitude at frequencies f (frames, k) for formants (frames, 5): parallel
    resonances, each formant a little weaker than the one below, a singer's formant where the voice has it."""
    out = np.zeros_like(f)
    widen = 1.0 + 0.15 * (voice.formant_scale - 1.0)
    for j in range(5):
        out += _FORMANT_GAINS[j] * _resonance(f, formants[:, j:j + 1], _BANDWIDTHS[j] * widen)
    if voice.singers_formant_db > 0:
        g = 10.0 ** (voice.singers_formant_db / 20.0) - 1.0
        out *= 1.0 + g * np.exp(-0.5 * ((f - 2900.0 * voice.formant_scale ** 0.5) / 400.0) ** 2)
    return out


def _envelope(f: np.ndarray, formants: np.ndarray, voice: CodeVoice, f0: np.ndarray) -> np.ndarray:
    """Harmonic amplitudes: the tract at each harmonic times the source's roll-off above f0."""
    octaves = np.log2(np.maximum(f, 1.0) / np.maximum(f0[:, None], 1.0))
    return _tract(f, formants, voice) * 10.0 ** (voice.tilt_db_per_octave * np.maximum(octaves, 0.0) / 20.0)


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, centre: float, octaves: float) -> np.ndarray:
    """White noise shaped to a band of `octaves` around `centre` (log-Gaussian), unit RMS: (n,)."""
    if n <= 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= np.exp(-0.5 * (np.log2(np.maximum(f, 20.0) / centre) / max(octaves / 2.0, 0.05)) ** 2)
    y = np.fft.irfft(spec, n)
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


def _aspiration(rng: np.random.Generator, n: int, sr: int, formants: np.ndarray, level: np.ndarray,
                voice: CodeVoice) -> np.ndarray:
    """Breath noise filtered by the tract frame by frame (short-time Fourier, 1024 / 256), scaled so
    that where level is 1 its RMS is about 1: (n,)."""
    from scipy import signal

    if n < 1024:
        return np.zeros(n)
    _, t, z = signal.stft(rng.standard_normal(n), sr, nperseg=1024, noverlap=768)
    f = np.fft.rfftfreq(1024, 1.0 / sr)
    ctrl = np.clip(np.round(t * sr / _CTRL).astype(int), 0, len(level) - 1)
    shape = _tract(np.repeat(f[None, :], len(ctrl), 0), formants[ctrl], voice) * (f[None, :] > 300.0)
    z = z * (shape * level[ctrl, None]).T
    _, y = signal.istft(z, sr, nperseg=1024, noverlap=768)
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    return y / (math.sqrt(float(np.mean(y ** 2))) + 1e-12) * math.sqrt(float(np.mean(level ** 2)))


@dataclass
class _Segment:
    """One stretch of the timeline: formant targets (3 or 5 values) over [t0, t1), voiced level, noise."""

    t0: float
    t1: float
    targets: tuple[tuple[float, ...], ...]  # one target, or two for a diphthong glide
    voiced: float
    noise: str | None = None


def _syllable_segments(text: str, t0: float, t1: float, hold: bool) -> list[_Segment]:
    onset, vowels, coda = ([], [_vowel_of(text)], []) if hold else phonemes(text)
    dur = t1 - t0
    budget_on, budget_off = 0.3 * dur, 0.25 * dur
    on_len = [_cons_len(c) for c in onset]
    off_len = [_cons_len(c) for c in coda]
    k_on = min(1.0, budget_on / sum(on_len)) if on_len else 1.0
    k_off = min(1.0, budget_off / sum(off_len)) if off_len else 1.0
    segs: list[_Segment] = []
    t = t0
    for c, d in zip(onset, on_len):
        segs.append(_cons_segment(c, t, t + d * k_on))
        t += d * k_on
    v_end = t1 - sum(off_len) * k_off
    segs.append(_Segment(t, v_end, tuple(_VOWELS[v] for v in vowels[:2]), 1.0))
    t = v_end
    for c, d in zip(coda, off_len):
        segs.append(_cons_segment(c, t, t + d * k_off))
        t += d * k_off
    return segs


def _vowel_of(text: str) -> str:
    return phonemes(text)[1][-1]


def _cons_len(c: str) -> float:
    if c in _NOISE and c not in _VOICED_CONS:
        return _NOISE[c][3] + (0.03 if c in _PLOSIVES else 0.0)
    return 0.07


def _cons_segment(c: str, t0: float, t1: float) -> _Segment:
    if c in _VOICED_CONS:
        formants, level = _VOICED_CONS[c]
        return _Segment(t0, t1, (formants,), level, c if c in _NOISE else None)
    return _Segment(t0, t1, ((500.0, 1500.0, 2500.0),), 0.0, c if c in _NOISE else None)


def _render_phrase(phrase: list[SungNote], groups: list, voice: VoiceSettings, timbre: CodeVoice,
                   gains_db: np.ndarray, vib: np.ndarray, drift: tuple, sr: int,
                   rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """One legato phrase with continuous phase: (first sample, audio (n,) float64)."""
    s0 = round(phrase[0].start_s * sr)
    s1 = round(phrase[-1].end_s * sr)
    n = s1 - s0
    n_ctrl = n // _CTRL + 2
    times = phrase[0].start_s + np.arange(n_ctrl) * _CTRL / sr
    cents = _pitch_cents(times, phrase, voice, vib, drift)
    f0 = 440.0 * 2.0 ** ((cents / 100.0 - 69.0) / 12.0)
    # jitter: smooth random pitch wobble; shimmer: smooth amplitude wobble
    smooth = np.convolve(rng.standard_normal(n_ctrl + 8), np.hanning(9) / np.hanning(9).sum(), "same")[4:-4]
    f0 *= 1.0 + timbre.jitter * smooth * 2.5
    shim = 1.0 + timbre.shimmer * np.convolve(rng.standard_normal(n_ctrl + 8), np.hanning(9) / 4.5, "same")[4:-4]

    segs: list[_Segment] = []
    for g, gain in zip(groups, gains_db):
        for s in _syllable_segments(g.text, g.start_s, g.end_s, g.vowel_only):
            s.voiced *= 10.0 ** (gain / 20.0)
            segs.append(s)
    # per control frame: formants (5), voiced level; transitions eased over ~25 ms
    formants = np.zeros((n_ctrl, 5))
    level = np.zeros(n_ctrl)
    seg_t0 = np.array([s.t0 for s in segs])
    idx = np.clip(np.searchsorted(seg_t0, times, side="right") - 1, 0, len(segs) - 1)
    for k, s in enumerate(segs):
        sel = idx == k
        if not sel.any():
            continue
        u = np.clip((times[sel] - s.t0) / max(s.t1 - s.t0, 1e-6), 0.0, 1.0)
        a = np.array(s.targets[0], dtype=float)
        if len(s.targets) > 1:  # diphthong: hold the first vowel, glide to the second over the last 40 %
            b = np.array(s.targets[1], dtype=float)
            w = np.clip((u - 0.6) / 0.4, 0.0, 1.0)[:, None]
            f3 = a[None, :] * (1 - w) + b[None, :] * w
        else:
            f3 = np.repeat(a[None, :], sel.sum(), axis=0)
        formants[sel, :3] = f3
        level[sel] = s.voiced
    formants[:, 3:] = _F45
    formants *= timbre.formant_scale
    ease = max(1, int(0.025 * sr / _CTRL))
    kernel = np.hanning(2 * ease + 1)
    kernel /= kernel.sum()
    for j in range(5):
        formants[:, j] = np.convolve(np.pad(formants[:, j], ease, mode="edge"), kernel, "valid")
    level = np.convolve(np.pad(level, ease, mode="edge"), kernel, "valid")
    formants[:, 0] = np.maximum(formants[:, 0], 1.05 * f0)  # F1 follows a high pitch
    # phrase edges: 30 ms attack, 60 ms release
    t_rel = times - times[0]
    t_end = phrase[-1].end_s - times
    level *= np.clip(t_rel / 0.03, 0, 1) * np.clip(t_end / 0.06, 0, 1) * shim

    # voiced: additive harmonics at the sample rate, amplitudes from the control frames
    n_h = int(min(_MAX_HARMONIC_HZ, 0.45 * sr) / max(float(f0.min()), 40.0))
    pos = np.arange(n) / _CTRL
    f0_s = np.interp(pos, np.arange(n_ctrl), f0)
    phase = 2.0 * np.pi * np.cumsum(f0_s) / sr + rng.uniform(0, 2 * np.pi)
    harm = np.arange(1, n_h + 1)
    fh = f0[:, None] * harm[None, :]
    amp = _envelope(fh, formants, timbre, f0) * level[:, None] * (fh < 0.45 * sr)
    if timbre.nasality > 0:  # some of the nasal murmur's low resonance, and less above it
        amp *= 1.0 + timbre.nasality * (_resonance(fh, np.full((n_ctrl, 1), 280.0), 100.0) - 0.4)
    y = np.zeros(n)
    for k in range(n_h):
        a = np.interp(pos, np.arange(n_ctrl), amp[:, k])
        if float(a.max()) < 1e-5:
            continue
        y += a * np.sin((k + 1) * phase)
    voiced_rms = math.sqrt(float(np.mean(y ** 2))) + 1e-12

    # aspiration: noise through the same tract, following the voiced level
    y += timbre.breathiness * voiced_rms * _aspiration(rng, n, sr, formants, level, timbre)
    # consonant noise
    for s in segs:
        if s.noise is None:
            continue
        centre, octaves, lev, _ = _NOISE[s.noise]
        a0 = max(0, round(s.t0 * sr) - s0)
        a1 = min(n, max(a0 + 1, round(s.t1 * sr) - s0))
        m = a1 - a0
        burst = _shaped_noise(rng, m, sr, centre * timbre.formant_scale ** 0.5, octaves)
        if s.noise in _PLOSIVES:  # closure, then a burst that decays
            closure = int(0.6 * m) if s.noise in ("p", "t", "k") else int(0.3 * m)
            env = np.zeros(m)
            tail = m - closure
            env[closure:] = np.exp(-np.arange(tail) / max(tail / 3.0, 1.0))
            y[a0:a0 + closure] *= 0.05 if s.noise in ("p", "t", "k") else 0.4
        else:
            u = (np.arange(m) + 0.5) / m
            env = np.sin(np.pi * u) ** 0.5
        y[a0:a1] += lev * 3.0 * voiced_rms * burst * env
    return s0, y


def sing(notes: Sequence[SungNote], sample_rate: int = 44100, voice: VoiceSettings = VoiceSettings(),
         total_s: float | None = None, timbre: CodeVoice | None = None) -> np.ndarray:
    """Sing `notes` as singer.sing does (same phrasing, holds, pitch curve, level, breaths), with the
    code voice `timbre` (default: code_voice(voice)). Returns mono float32 (n_samples,) at sample_rate;
    exact zeros where no note or breath is. Needs numpy only."""
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise SingerError(f"sample_rate must be a whole number of at least 8000 Hz, got {sample_rate!r}")
    sr = int(sample_rate)
    timbre = timbre or code_voice(voice)
    clean, total_s, n_out = _notes_to_sing(notes, total_s, sr)
    if not clean:
        return np.zeros(n_out, dtype=np.float32)
    rng = np.random.default_rng([voice.seed, 78])
    drift = _drift_fn(rng, voice.drift_cents)
    buf = np.zeros(max(n_out, round(clean[-1].end_s * sr) + 1))
    last_text: str | None = None
    phrases = _phrases(clean)
    for phrase in phrases:
        groups, last_text = _groups(phrase, last_text)
        gains = rng.uniform(-1.5, 1.5, len(groups))
        vib = voice.vibrato_rate_hz * rng.uniform(0.95, 1.05, len(phrase))
        s0, y = _render_phrase(phrase, groups, voice, timbre, gains, vib, drift, sr, rng)
        buf[s0:s0 + len(y)] += y[:len(buf) - s0]
    sung = buf != 0
    rms = math.sqrt(float(np.mean(buf[sung] ** 2))) if sung.any() else 0.0
    if rms > 0:
        buf *= min(10.0 ** (_SING_RMS_DBFS / 20.0) / rms, _PEAK_CEILING / float(np.max(np.abs(buf))))
    if voice.breath_between_phrases:
        prev_end = 0.0
        for phrase in phrases:
            rest = phrase[0].start_s - prev_end
            prev_end = phrase[-1].end_s
            if rest < 0.45:
                continue
            length = min(0.35, rest - 0.15) * rng.uniform(0.6, 1.0)
            b1 = round((phrase[0].start_s - rng.uniform(0.03, 0.08)) * sr)
            nb = int(length * sr)
            level = 10.0 ** ((-44.0 + rng.uniform(-4.0, 4.0)) / 20.0)
            u = (np.arange(nb) + 0.5) / max(nb, 1)
            inhale = _shaped_noise(rng, nb, sr, float(rng.uniform(1200.0, 2200.0)), 1.4) * np.sin(np.pi * u ** 0.7) ** 2
            buf[max(0, b1 - nb):b1] += (level * inhale)[-(b1 - max(0, b1 - nb)):] if b1 > 0 else 0.0
    return buf[:n_out].astype(np.float32)
