"""A synthetic singer for training data: sings a monophonic vocal line with lyrics at exact pitches
and exact note lengths, so generated songs have a realistic, sample-accurate vocal stem.

How: espeak-ng speaks each syllable once (cached); WORLD (pyworld) analyses it into f0, spectral
envelope and aperiodicity; the frames are time-warped onto the note (the vowel is stretched, the
consonants keep their natural length where the note allows), a sung pitch curve (scoop or
portamento, vibrato, slow drift) replaces the spoken one, and WORLD resynthesises whole legato
phrases at espeak's rate (22050 Hz) before one resample to the requested rate.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import shutil
import subprocess
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from training.errors import DataGenerationError

__all__ = ["SingerError", "SungNote", "VoiceSettings", "random_lyrics", "random_voice", "sing"]


class SingerError(DataGenerationError):
    """The singer cannot sing: espeak-ng or pyworld is missing, or the notes make no sense.

    A DataGenerationError, hence a StemLabError."""


@dataclass(frozen=True)
class VoiceSettings:
    """Who sings and how. Equal settings (seed included) give bit-identical audio."""

    espeak_voice: str = "en-us"      # espeak-ng voice/variant, e.g. "en-us+f3", "en+m2", "de", "es+f2"
    formant_shift: float = 1.0       # spectral envelope warp factor (0.85..1.2 changes apparent gender/size)
    vibrato_rate_hz: float = 5.5
    vibrato_depth_cents: float = 35.0  # peak deviation once the vibrato has faded in
    vibrato_onset_s: float = 0.25    # vibrato fades in after the note start
    scoop_cents: float = -60.0       # pitch starts this far below and glides in
    scoop_time_s: float = 0.06
    breathiness: float = 0.1         # 0..1 aperiodicity boost
    drift_cents: float = 8.0         # slow random pitch wander (RMS)
    breath_between_phrases: bool = True   # add a soft inhale noise before phrases after a rest
    seed: int = 0


@dataclass(frozen=True)
class SungNote:
    """One sung note. Times in seconds from the start of the output."""

    start_s: float
    end_s: float
    midi_pitch: float
    # text espeak speaks, e.g. "la", "love", "ing"; "" or "-" means continue/hold the previous vowel (melisma)
    syllable: str


# --- constants -------------------------------------------------------------------------------

_VOICE_RATE = 22050            # espeak-ng's native output rate; all synthesis happens here
_FRAME_MS = 5.0
_FRAME_S = _FRAME_MS / 1000.0
_HOP = round(_VOICE_RATE * _FRAME_S)  # 110 samples
_ESPEAK_SPEED_WPM = 130        # a little slower than default: longer, cleaner vowels to stretch
_SING_RMS_DBFS = -20.0
_PEAK_CEILING = 10.0 ** (-1.0 / 20.0)
_LEGATO_GAP_S = 1e-3           # notes closer than this are sung as one connected phrase
_MIN_MIDI, _MAX_MIDI = 24.0, 108.0
_HOLD_MARKS = ("", "-")
_FALLBACK_VOWEL = "ah"
_ANALYSIS_CACHE_SIZE = 256     # ~0.3 MB per entry; a song rarely uses more than ~150 syllables
_ESPEAK_PARALLEL = 4
_MAX_EDGE_FRAMES = 24          # 120 ms: longest natural length kept for one consonant edge

_TRAIN_BASES = ("en-us", "en", "en-gb-x-rp", "en-us-nyc")
_TRAIN_VARIANTS = (
    "m1", "m3", "m4", "m6", "m7", "Andy", "Lee", "boris", "gustave", "john", "Michael",
    "norbert", "klatt", "klatt3", "max", "Gene",
    "f1", "linda", "aunty", "steph", "Annie",
)
_BENCH_BASES = ("en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
_BENCH_VARIANTS = (
    "m5", "m8", "Mario", "marcelo", "robert", "quincy", "travis", "edward", "klatt2", "Alex",
    "belinda", "grandma", "steph2", "anika",
)
_TRAIN_FORMANT = (0.92, 1.10)                       # [low, high)
_BENCH_FORMANT = ((0.85, 0.915), (1.105, 1.18))     # disjoint from training's on both sides


# --- optional dependencies -------------------------------------------------------------------

_pyworld: Any = None
_pyworld_lock = threading.Lock()


def _world() -> Any:
    """Import pyworld once. pyworld 0.3.5 imports ``pkg_resources`` only to read its own version;
    setuptools >= 81 no longer ships it, so a minimal stand-in is lent for the import and removed."""
    global _pyworld
    with _pyworld_lock:
        if _pyworld is not None:
            return _pyworld
        lent = False
        if "pkg_resources" not in sys.modules:
            try:
                import pkg_resources  # noqa: F401
            except ImportError:
                shim = types.ModuleType("pkg_resources")
                shim.get_distribution = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
                    version=importlib.metadata.version(name))
                sys.modules["pkg_resources"] = shim
                lent = True
        try:
            import pyworld
        except ImportError as exc:
            raise SingerError(f"pyworld is not installed (pip install pyworld): {exc}") from exc
        finally:
            if lent:
                sys.modules.pop("pkg_resources", None)
        _pyworld = pyworld
        return pyworld


def _espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SingerError("espeak-ng is not installed: apt-get install espeak-ng")
    return exe


# --- espeak rendering and WORLD analysis (cached per voice and syllable) ---------------------

@dataclass(frozen=True)
class _Syllable:
    """WORLD analysis of one spoken syllable, trimmed to the speech.

    log_sp: (n_frames, n_bins) float32 natural-log spectral envelope, level-normalised so the
            vowel core has unit mean power; ap: (n_frames, n_bins) float16 aperiodicity;
    voiced: (n_frames,) bool; bounds: frame indices (v0, c0, c1, v1) = voiced region start,
            vowel core start, core end, voiced region end (0 <= v0 <= c0 < c1 <= v1 <= n_frames).
    """

    log_sp: np.ndarray
    ap: np.ndarray
    voiced: np.ndarray
    bounds: tuple[int, int, int, int]

    @property
    def n_frames(self) -> int:
        return int(self.log_sp.shape[0])


_cache: OrderedDict[tuple[str, str], _Syllable] = OrderedDict()
_cache_lock = threading.Lock()


def _clean_text(text: str) -> str:
    """Keep letters, apostrophes and spaces: espeak would otherwise read digits or punctuation."""
    cleaned = re.sub(r"[^\w' ]|[\d_]", "", text).strip()[:32]
    return cleaned or _FALLBACK_VOWEL


def _espeak_cmd(voice: str) -> list[str]:
    return [_espeak_exe(), "--stdout", "-v", voice, "-s", str(_ESPEAK_SPEED_WPM)]


def _parse_wav(data: bytes, voice: str, text: str) -> np.ndarray:
    """espeak's streamed WAV has placeholder sizes, so parse the fixed 44-byte PCM header by hand.

    Returns float64 (n_samples,) at _VOICE_RATE."""
    if len(data) < 46 or data[:4] != b"RIFF" or data[8:12] != b"WAVE" or data[36:40] != b"data":
        raise SingerError(f"espeak-ng gave no usable audio for {text!r} with voice {voice!r}")
    rate = int.from_bytes(data[24:28], "little")
    body = data[44:len(data) - (len(data) - 44) % 2]
    x = np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768.0
    if rate != _VOICE_RATE:
        x = soxr.resample(x, rate, _VOICE_RATE)
    return x


def _speak_many(voice: str, texts: Sequence[str]) -> list[np.ndarray]:
    """Run espeak-ng for several syllables, a few processes at a time (text via stdin, so a
    syllable can never be mistaken for an option). Returns one float64 (n_samples,) per text."""
    out: list[np.ndarray] = []
    for i in range(0, len(texts), _ESPEAK_PARALLEL):
        chunk = texts[i:i + _ESPEAK_PARALLEL]
        try:
            procs = [subprocess.Popen(_espeak_cmd(voice), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE) for _ in chunk]
        except OSError as exc:
            raise SingerError(f"espeak-ng could not be started ({exc}): apt-get install espeak-ng") from exc
        for proc, text in zip(procs, chunk):
            try:
                stdout, stderr = proc.communicate(text.encode("utf-8"), timeout=30)
            except subprocess.TimeoutExpired as exc:
                for other in procs:
                    other.kill()
                    other.wait()
                raise SingerError(f"espeak-ng hung on {text!r} with voice {voice!r}") from exc
            if proc.returncode != 0:
                msg = stderr.decode("utf-8", "replace").strip()
                detail = msg or f"exit status {proc.returncode}"
                raise SingerError(f"espeak-ng failed for voice {voice!r}: {detail}")
            out.append(_parse_wav(stdout, voice, text))
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _analyse(x: np.ndarray, voice: str, text: str) -> _Syllable:
    """WORLD analysis of one espeak syllable x: (n_samples,) float64 at _VOICE_RATE."""
    pw = _world()
    n_fr = len(x) // _HOP
    if n_fr < 4:
        raise SingerError(f"espeak-ng produced no sound for {text!r} with voice {voice!r}")
    frame_db = 10.0 * np.log10(np.mean(x[:n_fr * _HOP].reshape(n_fr, _HOP) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(frame_db > frame_db.max() - 50.0)
    if frame_db.max() < -70.0 or loud.size == 0:
        raise SingerError(f"espeak-ng produced no sound for {text!r} with voice {voice!r}")
    # espeak pads with silence (and some variants add an echo tail far below the speech)
    a = max(int(loud[0]) - 1, 0) * _HOP
    b = min(int(loud[-1]) + 2, n_fr) * _HOP
    x = np.ascontiguousarray(x[a:b])

    f0, t = pw.dio(x, _VOICE_RATE, f0_floor=60.0, f0_ceil=700.0, frame_period=_FRAME_MS)
    f0 = pw.stonemask(x, f0, t, _VOICE_RATE)
    n = len(f0)
    hop_db = np.full(n, -120.0)
    k = min(n, len(x) // _HOP)
    hop_db[:k] = 10.0 * np.log10(np.mean(x[:k * _HOP].reshape(k, _HOP) ** 2, axis=1) + 1e-12)

    # dio drops voicing inside breathy espeak vowels; the syllable nucleus is one voiced stretch,
    # so merge voiced runs separated by short gaps and keep the loudest merged run
    runs = _runs(f0 > 0)
    merged: list[list[int]] = []
    for r0, r1 in runs:
        if merged and r0 - merged[-1][1] <= 16:
            merged[-1][1] = r1
        else:
            merged.append([r0, r1])
    if merged:
        v0, v1 = max(merged, key=lambda r: float(np.sum(10.0 ** (hop_db[r[0]:r[1]] / 10.0))))
    else:
        # nothing voiced (whisper-like variant): treat the loud part as the vowel
        v0, v1 = _runs(hop_db > hop_db.max() - 12.0)[0]
    voiced = np.zeros(n, dtype=bool)
    voiced[v0:v1] = True

    # a smooth, octave-corrected f0 across the nucleus gives CheapTrick a clean envelope
    good = np.flatnonzero(voiced & (f0 > 0))
    f0_fill = f0.copy()
    if good.size:
        med = float(np.median(f0[good]))
        fixed = f0[good].copy()
        fixed[fixed < 0.6 * med] *= 2.0
        fixed[fixed > 1.7 * med] /= 2.0
        f0_fill[v0:v1] = np.interp(np.arange(v0, v1), good, fixed)
    else:
        f0_fill[v0:v1] = 120.0
    f0_fill[~voiced] = 0.0
    sp = pw.cheaptrick(x, f0_fill, t, _VOICE_RATE)
    ap = pw.d4c(x, f0_fill, t, _VOICE_RATE)

    # vowel core: the contiguous stretch around the loudest nucleus frame within 8 dB of it;
    # voiced consonants (l, m, n, v) are well below the vowel, so they stay out of the core
    power = np.sum(sp, axis=1)
    p_db = 10.0 * np.log10(power + 1e-30)
    peak = v0 + int(np.argmax(p_db[v0:v1]))
    c0 = peak
    while c0 > v0 and p_db[c0 - 1] >= p_db[peak] - 8.0:
        c0 -= 1
    c1 = peak + 1
    while c1 < v1 and p_db[c1] >= p_db[peak] - 8.0:
        c1 += 1
    log_sp = (np.log(np.maximum(sp, 1e-30)) - math.log(float(np.mean(power[c0:c1])) / sp.shape[1]))
    arrays = (log_sp.astype(np.float32), ap.astype(np.float16), voiced)
    for arr in arrays:
        arr.flags.writeable = False  # shared through the cache by every later song
    return _Syllable(log_sp=arrays[0], ap=arrays[1], voiced=arrays[2], bounds=(v0, c0, c1, v1))


def _syllables(voice: str, texts: Sequence[str]) -> dict[str, _Syllable]:
    """Analyses for the given syllable texts in one voice, rendering the missing ones in a batch."""
    wanted = list(dict.fromkeys(texts))
    found: dict[str, _Syllable] = {}
    with _cache_lock:
        for text in wanted:
            hit = _cache.get((voice, text))
            if hit is not None:
                _cache.move_to_end((voice, text))
                found[text] = hit
    missing = [t for t in wanted if t not in found]
    if missing:
        for text, wave in zip(missing, _speak_many(voice, missing)):
            found[text] = _analyse(wave, voice, text)
        with _cache_lock:
            for text in missing:
                _cache[(voice, text)] = found[text]
            while len(_cache) > _ANALYSIS_CACHE_SIZE:
                _cache.popitem(last=False)
    return found


# --- score handling ---------------------------------------------------------------------------

@dataclass
class _Group:
    """One sung syllable: a syllable note plus any melisma (hold) notes after it, contiguous."""

    text: str
    vowel_only: bool        # a hold after a rest: no consonants to sing again
    start_s: float
    end_s: float


def _validated(notes: Sequence[SungNote]) -> list[SungNote]:
    """Sorted copy; a note overlapping the next is cut at the next start (one voice, one note)."""
    for nt in notes:
        vals = (nt.start_s, nt.end_s, nt.midi_pitch)
        if not all(math.isfinite(float(v)) for v in vals):
            raise SingerError(f"note has a non-finite time or pitch: {nt}")
        if nt.start_s < 0 or nt.end_s <= nt.start_s:
            raise SingerError(f"note must start at >= 0 s and end after it starts: {nt}")
        if not _MIN_MIDI <= nt.midi_pitch <= _MAX_MIDI:
            raise SingerError(f"note pitch {nt.midi_pitch} is outside the singable MIDI range "
                              f"{_MIN_MIDI:.0f}..{_MAX_MIDI:.0f}: {nt}")
    ordered = sorted(notes, key=lambda nt: (nt.start_s, nt.end_s))
    out: list[SungNote] = []
    for nt in ordered:
        if out and out[-1].end_s > nt.start_s:
            prev = out[-1]
            if nt.start_s <= prev.start_s:
                raise SingerError(f"two notes start together ({prev} and {nt}): the singer sings "
                                  "one note at a time")
            out[-1] = SungNote(prev.start_s, nt.start_s, prev.midi_pitch, prev.syllable)
        out.append(nt)
    return out


def _notes_to_sing(notes: Sequence[SungNote], total_s: float | None, sample_rate: int
                   ) -> tuple[list[SungNote], float, int]:
    """(the valid notes that start before the end, the length in seconds, the length in samples); the
    length defaults to the last note's end and half a second."""
    clean = _validated(notes)
    if total_s is None:
        total_s = (clean[-1].end_s if clean else 0.0) + 0.5
    if not math.isfinite(total_s) or total_s < 0:
        raise SingerError(f"total_s must be a finite length >= 0, got {total_s!r}")
    return [nt for nt in clean if nt.start_s < total_s], total_s, round(total_s * sample_rate)


def _phrases(notes: list[SungNote]) -> list[list[SungNote]]:
    """Split into legato phrases: runs of notes each starting where the previous one ends."""
    phrases: list[list[SungNote]] = []
    for nt in notes:
        if phrases and nt.start_s - phrases[-1][-1].end_s <= _LEGATO_GAP_S:
            phrases[-1].append(nt)
        else:
            phrases.append([nt])
    return phrases


def _groups(phrase: list[SungNote], last_text: str | None) -> tuple[list[_Group], str | None]:
    """Syllable groups of one phrase; last_text is the syllable sung before it (for holds)."""
    groups: list[_Group] = []
    for nt in phrase:
        if nt.syllable.strip() in _HOLD_MARKS:
            if groups:
                groups[-1].end_s = nt.end_s
                continue
            groups.append(_Group(last_text or _FALLBACK_VOWEL, True, nt.start_s, nt.end_s))
        else:
            text = _clean_text(nt.syllable)
            groups.append(_Group(text, False, nt.start_s, nt.end_s))
            last_text = text
    return groups, last_text


def _source_positions(syl: _Syllable, m: int, vowel_only: bool) -> np.ndarray:
    """Fractional source frame for each of m output frames: (m,) float64.

    Consonant edges keep their natural length (capped: espeak lengthens word-final consonants
    as at the end of a sentence) while they fit in 60% of the note, squeezed proportionally beyond
    that; the vowel core absorbs the rest, stretched or squeezed."""
    v0, c0, c1, v1 = syl.bounds
    n = syl.n_frames
    if vowel_only:
        src = np.array([c0, c1], dtype=np.float64)
        tgt = np.array([0.0, m], dtype=np.float64)
    else:
        edges = np.minimum([v0, c0 - v0, v1 - c1, n - v1], _MAX_EDGE_FRAMES).astype(np.float64)
        fixed_nat = float(np.sum(edges))
        fixed = min(fixed_nat, 0.6 * m)
        scale = fixed / fixed_nat if fixed_nat > 0 else 0.0
        e = edges * scale
        lens = [e[0], e[1], m - fixed, e[2], e[3]]
        src = np.array([0, v0, c0, c1, v1, n], dtype=np.float64)
        tgt = np.concatenate([[0.0], np.cumsum(lens)])
    pos = np.interp(np.arange(m) + 0.5, tgt, src) - 0.5
    return np.clip(pos, 0.0, n - 1.0)


def _drift_fn(rng: np.random.Generator, cents: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three slow sinusoids (0.05-0.4 Hz) whose sum has an RMS of `cents`: (freqs, phases, amps)."""
    freqs = rng.uniform(0.05, 0.4, 3)
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    weights = rng.uniform(0.5, 1.0, 3)
    amps = cents * weights / math.sqrt(float(np.sum(weights ** 2)) / 2.0)
    return freqs, phases, amps


def _pitch_cents(times: np.ndarray, phrase: list[SungNote], voice: VoiceSettings,
                 vib_rates: np.ndarray, drift: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Sung pitch in cents (MIDI * 100) at absolute frame times: times (n,) -> (n,) float64."""
    starts = np.array([nt.start_s for nt in phrase])
    idx = np.clip(np.searchsorted(starts, times + 1e-9, side="right") - 1, 0, len(phrase) - 1)
    midi = np.array([nt.midi_pitch for nt in phrase])
    dur = np.array([nt.end_s - nt.start_s for nt in phrase])
    t_rel = times - starts[idx]
    cents = midi[idx] * 100.0

    # first note of a phrase scoops up from below; later notes glide over from the previous pitch
    off0 = np.full(len(phrase), float(voice.scoop_cents))
    off0[1:] = (midi[:-1] - midi[1:]) * 100.0
    glide = np.minimum(max(voice.scoop_time_s, 0.0), 0.3 * dur)
    g = glide[idx]
    in_glide = (g > 0) & (t_rel < g)
    shape = np.where(in_glide, 0.5 * (1.0 + np.cos(np.pi * np.clip(t_rel / np.maximum(g, 1e-9), 0, 1))), 0.0)
    cents += off0[idx] * shape

    if voice.vibrato_depth_cents > 0:
        tv = t_rel - voice.vibrato_onset_s
        ramp = np.clip(tv / 0.2, 0.0, 1.0)
        ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no kink where vibrato begins
        cents += voice.vibrato_depth_cents * ramp * np.sin(2.0 * np.pi * vib_rates[idx] * np.maximum(tv, 0.0))
    if voice.drift_cents > 0:
        freqs, phases, amps = drift
        cents += np.sum(amps[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * times[None, :]
                                                + phases[:, None]), axis=0)
    return cents


def _formant_warp(n_bins: int, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolation indices for an envelope warp: output bin k reads input bin k / factor."""
    pos = np.clip(np.arange(n_bins) / factor, 0.0, n_bins - 1.0)
    i0 = np.minimum(pos.astype(np.int64), n_bins - 2)
    return i0, (pos - i0)


def _render_phrase(phrase: list[SungNote], groups: list[_Group], analyses: dict[str, _Syllable],
                   voice: VoiceSettings, gains_db: np.ndarray, vib_rates: np.ndarray,
                   drift: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[int, np.ndarray]:
    """Synthesise one legato phrase in one WORLD call (continuous phase across its notes).

    Returns (first sample index, audio float64 (n_samples,)) at _VOICE_RATE."""
    pw = _world()
    s0 = round(phrase[0].start_s * _VOICE_RATE)
    s1 = round(phrase[-1].end_s * _VOICE_RATE)
    n_samples = max(s1 - s0, 1)
    k = math.ceil(n_samples / _HOP) + 2
    times = s0 / _VOICE_RATE + np.arange(k) * _FRAME_S

    g_starts = np.array([g.start_s for g in groups])
    g_idx = np.clip(np.searchsorted(g_starts, times + 1e-9, side="right") - 1, 0, len(groups) - 1)
    n_bins = next(iter(analyses.values())).log_sp.shape[1]
    log_sp = np.empty((k, n_bins), dtype=np.float64)
    ap = np.empty((k, n_bins), dtype=np.float64)
    voiced = np.zeros(k, dtype=bool)
    boundaries: list[int] = []
    for gi, grp in enumerate(groups):
        frames = np.flatnonzero(g_idx == gi)
        if frames.size == 0:
            continue
        if gi > 0:
            boundaries.append(int(frames[0]))
        syl = analyses[grp.text]
        pos = _source_positions(syl, frames.size, grp.vowel_only)
        i0 = pos.astype(np.int64)
        i1 = np.minimum(i0 + 1, syl.n_frames - 1)
        w = (pos - i0)[:, None]
        log_sp[frames] = (1.0 - w) * syl.log_sp[i0] + w * syl.log_sp[i1] + gains_db[gi] * (math.log(10) / 10)
        ap[frames] = (1.0 - w) * syl.ap[i0] + w * syl.ap[i1]
        voiced[frames] = syl.voiced[np.rint(pos).astype(np.int64)]

    # legato joins: blend the envelope over ~20 ms so one syllable flows into the next
    if boundaries:
        raw_sp, raw_ap = log_sp.copy(), ap.copy()
        for b in boundaries:
            for f in range(max(b - 2, 0), min(b + 2, k)):
                lo, hi = max(f - 2, 0), min(f + 3, k)
                log_sp[f] = raw_sp[lo:hi].mean(axis=0)
                ap[f] = raw_ap[lo:hi].mean(axis=0)

    if voice.formant_shift != 1.0:
        i0w, ww = _formant_warp(n_bins, voice.formant_shift)
        log_sp = log_sp[:, i0w] * (1.0 - ww) + log_sp[:, i0w + 1] * ww
    if voice.breathiness > 0:
        # more noise towards high frequencies, as in a breathy voice source
        tilt = np.linspace(0.3, 1.0, n_bins)
        ap = ap + float(np.clip(voice.breathiness, 0.0, 1.0)) * 0.7 * tilt * (1.0 - ap)
    ap = np.clip(ap, 0.001, 0.999)

    cents = _pitch_cents(times, phrase, voice, vib_rates, drift)
    f0 = np.where(voiced, 440.0 * 2.0 ** ((cents - 6900.0) / 1200.0), 0.0)
    y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(np.exp(log_sp)),
                      np.ascontiguousarray(ap), _VOICE_RATE, _FRAME_MS)
    y = np.concatenate([y, np.zeros(max(n_samples - len(y), 0))])[:n_samples]

    # phrase edges: short raised-cosine fades so nothing clicks where singing starts or stops
    for length, at_end in ((int(0.004 * _VOICE_RATE), False), (int(0.012 * _VOICE_RATE), True)):
        length = max(min(length, n_samples // 4), 1)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)
        if at_end:
            y[-length:] *= ramp[::-1]
        else:
            y[:length] *= ramp
    return s0, y


def _breath(rng: np.random.Generator, n: int) -> np.ndarray:
    """A soft inhale: band-passed noise with a slow rise and quicker fall, unit RMS: (n,) float64."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / _VOICE_RATE)
    centre = rng.uniform(1200.0, 2200.0)
    shape = np.exp(-0.5 * (np.log(np.maximum(f, 1.0) / centre) / 0.7) ** 2)
    noise = np.fft.irfft(spec * shape, n)
    u = (np.arange(n) + 0.5) / n
    env = np.sin(np.pi * u ** 0.7) ** 2
    out = noise * env
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


# --- public API -------------------------------------------------------------------------------

def sing(notes: Sequence[SungNote], sample_rate: int = 44100, voice: VoiceSettings = VoiceSettings(),
         total_s: float | None = None) -> np.ndarray:
    """Sing `notes` (monophonic; overlapping notes are cut at the next start).

    Notes that touch (gap <= 1 ms) are sung legato as one phrase with pitch glides between them;
    a gap starts a new phrase. A syllable of "" or "-" holds the previous syllable's vowel over
    another note (melisma). The singing RMS is about -20 dBFS; rests are exact zeros except for
    an optional soft inhale (about -44 dBFS RMS) just before a phrase that follows a rest of at
    least 0.45 s.

    Returns mono float32 (n_samples,) at sample_rate, length round(total_s * sample_rate) (or up to
    the last note end + 0.5 s), silence where no note is. Raises SingerError when espeak-ng or
    pyworld is missing or a note is invalid.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise SingerError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if not 0.5 <= voice.formant_shift <= 2.0:
        raise SingerError(f"formant_shift {voice.formant_shift} is outside 0.5..2.0")
    clean, total_s, n_out = _notes_to_sing(notes, total_s, sample_rate)
    if not clean:
        return np.zeros(n_out, dtype=np.float32)

    # draw every random number in a fixed order so the output depends only on notes and seed
    rng = np.random.default_rng(voice.seed)
    drift = _drift_fn(rng, voice.drift_cents)
    phrases = _phrases(clean)
    plans = []
    last_text: str | None = None
    for phrase in phrases:
        groups, last_text = _groups(phrase, last_text)
        gains = rng.uniform(-1.5, 1.5, len(groups))
        vib = voice.vibrato_rate_hz * rng.uniform(0.95, 1.05, len(phrase))
        plans.append((phrase, groups, gains, vib))
    analyses = _syllables(voice.espeak_voice, [g.text for _, gs, _, _ in plans for g in gs])

    n_voice = math.ceil(max(total_s, clean[-1].end_s) * _VOICE_RATE) + 1
    buf = np.zeros(n_voice, dtype=np.float64)
    sung = np.zeros(n_voice, dtype=bool)
    for phrase, groups, gains, vib in plans:
        s0, y = _render_phrase(phrase, groups, analyses, voice, gains, vib, drift)
        buf[s0:s0 + len(y)] += y
        sung[s0:s0 + len(y)] = True
    rms = math.sqrt(float(np.mean(buf[sung] ** 2))) if sung.any() else 0.0
    if rms > 0:
        gain = 10.0 ** (_SING_RMS_DBFS / 20.0) / rms
        gain = min(gain, _PEAK_CEILING / float(np.max(np.abs(buf))))
        buf *= gain

    if voice.breath_between_phrases:
        prev_end = 0.0
        for phrase, *_ in plans:
            rest = phrase[0].start_s - prev_end
            prev_end = phrase[-1].end_s
            if rest < 0.45:
                continue
            length = min(0.35, rest - 0.15) * rng.uniform(0.6, 1.0)
            gap = rng.uniform(0.03, 0.08)
            b1 = round((phrase[0].start_s - gap) * _VOICE_RATE)
            nb = int(length * _VOICE_RATE)
            level = 10.0 ** ((-44.0 + rng.uniform(-4.0, 4.0)) / 20.0)
            buf[b1 - nb:b1] += level * _breath(rng, nb)

    out = soxr.resample(buf, _VOICE_RATE, sample_rate, quality="HQ") if sample_rate != _VOICE_RATE else buf
    out = np.concatenate([out, np.zeros(max(n_out - len(out), 0))])[:n_out]
    return out.astype(np.float32)


def random_voice(rng: np.random.Generator, pool: str = "train") -> VoiceSettings:
    """Draw a varied voice from a pool.

    pool="train": espeak base voices en-us, en, en-gb-x-rp, en-us-nyc, each with one variant of
        m1 m3 m4 m6 m7 Andy Lee boris gustave john Michael norbert klatt klatt3 max Gene
        (male-sounding) or f1 linda aunty steph Annie (female-sounding); formant_shift uniform in
        [0.92, 1.10).
    pool="benchmark": voices the training pool never produces: base voices en-gb-scotland, en-029,
        en-gb-x-gbclan, en-gb-x-gbcwmd with variants m5 m8 Mario marcelo robert quincy travis edward
        klatt2 Alex belinda grandma steph2 anika (none shared with training), and formant_shift in
        [0.85, 0.915) or [1.105, 1.18) (disjoint from training's range).
    Both pools draw the singing style alike: vibrato 4.5-6.5 Hz, 10-60 cents, onset 0.12-0.4 s;
    scoop -120..-20 cents over 30-100 ms; breathiness 0-0.35; drift 2-12 cents; a fresh seed.
    Only echo-free espeak variants are used: an echo would smear into every stretched vowel.
    """
    if pool == "train":
        base = str(rng.choice(_TRAIN_BASES))
        variant = str(rng.choice(_TRAIN_VARIANTS))
        formant = float(rng.uniform(*_TRAIN_FORMANT))
    elif pool == "benchmark":
        base = str(rng.choice(_BENCH_BASES))
        variant = str(rng.choice(_BENCH_VARIANTS))
        low, high = _BENCH_FORMANT[int(rng.integers(2))]
        formant = float(rng.uniform(low, high))
    else:
        raise SingerError(f"unknown voice pool {pool!r}: use 'train' or 'benchmark'")
    return VoiceSettings(
        espeak_voice=f"{base}+{variant}",
        formant_shift=formant,
        vibrato_rate_hz=float(rng.uniform(4.5, 6.5)),
        vibrato_depth_cents=float(rng.uniform(10.0, 60.0)),
        vibrato_onset_s=float(rng.uniform(0.12, 0.4)),
        scoop_cents=float(rng.uniform(-120.0, -20.0)),
        scoop_time_s=float(rng.uniform(0.03, 0.1)),
        breathiness=float(rng.uniform(0.0, 0.35)),
        drift_cents=float(rng.uniform(2.0, 12.0)),
        breath_between_phrases=bool(rng.random() < 0.8),
        seed=int(rng.integers(2**31 - 1)),
    )


# Syllables are respelled so espeak says them as sung ("hap pee", not "hap py" -> "pie").
_WORDS: tuple[tuple[str, ...], ...] = (
    ("love",), ("heart",), ("night",), ("light",), ("dream",), ("fly",), ("sky",), ("high",),
    ("home",), ("shine",), ("stars",), ("cry",), ("tears",), ("sun",), ("rise",), ("down",),
    ("run",), ("fall",), ("long",), ("gone",), ("day",), ("time",), ("yes",), ("stay",),
    ("wait",), ("me",), ("you",), ("we",), ("go",), ("sing",), ("way",), ("see",), ("mine",),
    ("ba", "bee"), ("to", "night"), ("for", "ev", "ver"), ("hap", "pee"), ("ev", "ree"),
    ("a", "way"), ("fly", "ing"), ("fall", "ing"), ("be", "lieve"), ("mem", "oh", "rees"),
    ("mor", "ning"), ("al", "ways"), ("wun", "durr"), ("a", "lone"), ("o", "pen"),
    ("a", "gain"), ("fee", "ling"), ("hol", "ding"), ("shad", "doe"), ("win", "doe"),
    ("yel", "low"), ("mel", "oh", "dee"), ("mew", "zik"), ("for", "got", "ten"), ("sun", "shine"),
    ("lo", "ven"), ("cer", "tain"), ("ta", "kin"), ("sum", "mer"), ("riv", "ver"),
)
_VOCABLES: tuple[str, ...] = ("oh", "la", "yeah", "ooh", "ah", "na", "hey", "whoa", "hmm")


def random_lyrics(rng: np.random.Generator, n_syllables: int) -> list[str]:
    """Plausible English-like sung syllables: words from a small bank split into syllables, with
    vocables ("oh", "la", "yeah", ...) mixed in, so vocals have consonants and varied vowels.

    Returns a list of n_syllables strings, each a syllable espeak pronounces as sung."""
    if n_syllables < 0:
        raise SingerError(f"n_syllables must be >= 0, got {n_syllables}")
    out: list[str] = []
    while len(out) < n_syllables:
        if rng.random() < 0.2:
            # vocables come in little runs, as in "na na na" or "oh oh"
            out.extend([str(rng.choice(_VOCABLES))] * int(rng.integers(1, 4)))
        else:
            out.extend(_WORDS[int(rng.integers(len(_WORDS)))])
    return out[:n_syllables]
