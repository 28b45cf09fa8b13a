"""What a producer needs to remix in time: a song's tempo, beats, downbeats and key (librosa).

    info = analyse(samples, sample_rate)      # samples (channels, n) float32
    info.tempo_bpm, info.beats_s, info.downbeat, info.beats_per_bar, info.key

How: the mix is summed to mono and resampled to 22050 Hz (librosa's default soxr resampling). Beats come
from librosa's dynamic-programming beat tracker on the onset-strength envelope; the tempo is the median
inter-beat interval of the tracked beats (the tracker's own global estimate is the start of its search,
not a measurement). Bars: for three and four beats to the bar and every phase, the accent each
candidate downbeat would carry (how loud the bass is as the beat begins, and how far the harmony
moves there, each standardised); the best one wins, three needing a clear lead since most music is in four. Key: the
song's chroma weighted by loudness, plus half again of the chroma below 300 Hz (the bass), against
Temperley's major and minor profiles in all twelve transpositions (Pearson correlation); the
confidence is the winner's lead over the runner-up. (Krumhansl-Kessler, Aarden and Sha'ath profiles,
and CQT chroma, scored within a few points of it on 60 generated songs: bench/music_analysis.py.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

ANALYSIS_RATE = 22050
HOP = 512
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Temperley's (2001) key profiles, tonic first
MAJOR_PROFILE = np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0])
MINOR_PROFILE = np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0])
BASS_HZ = 300.0       # below this the chroma counts again: the bass says where the harmony stands
BASS_WEIGHT = 0.5
THREE_NEEDS = 0.15  # how much clearer (in standardised accent) three-to-the-bar must be than four


@dataclass(frozen=True)
class MusicInfo:
    """A song's tempo (BPM), beat times (s), which beats start a bar, beats per bar, and key."""

    tempo_bpm: float
    beats_s: np.ndarray
    downbeat: np.ndarray
    beats_per_bar: int
    key: str
    key_confidence: float

    def summary(self) -> dict[str, Any]:
        """The fields separation.json holds."""
        return {"tempo_bpm": round(self.tempo_bpm, 2), "key": self.key, "key_confidence": round(self.key_confidence, 3),
                "beats_per_bar": self.beats_per_bar, "n_beats": int(len(self.beats_s))}

    def beats_csv(self) -> str:
        rows = ["time_s,downbeat"] + [f"{t:.4f},{int(d)}" for t, d in zip(self.beats_s, self.downbeat)]
        return "\n".join(rows) + "\n"

    def bar_times(self) -> np.ndarray:
        return self.beats_s[self.downbeat]


def key_name(tonic: int, mode: str) -> str:
    return f"{NOTE_NAMES[tonic % 12]} {mode}"


def pitch_class(name: str) -> int:
    """The pitch class of a note name: "A", "Bb", "A#", "c#" -> 0..11."""
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[name[0].upper()]
    return (base + name[1:].count("#") - name[1:].count("b")) % 12


def estimate_key(chroma: np.ndarray, weights: np.ndarray | None = None,
                 bass: np.ndarray | None = None) -> tuple[str, float]:
    """Key of a (12, frames) chroma (and of the bass's chroma): (name, lead of the best correlation
    over the second best)."""
    w = np.ones(chroma.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    profile = (chroma * w[None, :]).sum(axis=1)
    if bass is not None and profile.sum() > 0:
        b = (bass * w[None, :]).sum(axis=1)
        profile = profile / profile.sum() + (BASS_WEIGHT * b / b.sum() if b.sum() > 0 else 0.0)
    if not np.any(profile > 0):
        return "unknown", 0.0
    scores = []
    for mode, ref in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            scores.append((float(np.corrcoef(profile, np.roll(ref, tonic))[0, 1]), tonic, mode))
    scores.sort(reverse=True)
    return key_name(scores[0][1], scores[0][2]), scores[0][0] - scores[1][0]


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def choose_bars(accent: np.ndarray, choices: Sequence[int] = (4, 3)) -> tuple[int, int]:
    """(beats per bar, index of the first downbeat) from a per-beat accent curve."""
    best = (4, 0, -np.inf)
    for m in choices:
        if len(accent) < 2 * m:
            continue
        for phase in range(m):
            score = float(accent[phase::m].mean())
            if m == 3:
                score -= THREE_NEEDS
            if score > best[2]:
                best = (m, phase, score)
    return best[0], best[1]


@functools.cache
def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels librosa's analysis runs, on two seconds of noise,
    once a process: the first analysis spends a few seconds there, inside callbacks from native code that
    swallow a KeyboardInterrupt. A command line holds Ctrl-C around this call (app.cli), so that a Ctrl-C
    is never lost in them; every call after the first returns at once."""
    noise = np.random.default_rng(0).standard_normal((2, 2 * ANALYSIS_RATE)).astype(np.float32) * 0.1
    analyse(noise, ANALYSIS_RATE)


def analyse(samples: np.ndarray, sample_rate: int) -> MusicInfo:
    """Tempo, beats, bars and key of a song: samples (channels, n) or (n,) float32 at sample_rate."""
    import librosa

    x = np.asarray(samples, dtype=np.float32)
    mono = x.mean(axis=0) if x.ndim == 2 else x
    y = librosa.resample(mono, orig_sr=sample_rate, target_sr=ANALYSIS_RATE) if sample_rate != ANALYSIS_RATE else mono
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.size < ANALYSIS_RATE or not np.any(np.abs(y) > 1e-6):
        return MusicInfo(0.0, np.zeros(0), np.zeros(0, bool), 4, "unknown", 0.0)
    sr = ANALYSIS_RATE
    stft = np.abs(librosa.stft(y, n_fft=4096, hop_length=HOP))
    mel = librosa.feature.melspectrogram(S=stft ** 2, sr=sr, n_fft=4096)
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=HOP)
    _, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=HOP, units="frames", trim=False)
    beats = np.asarray(beats, dtype=int)
    beats_s = librosa.frames_to_time(beats, sr=sr, hop_length=HOP)
    tempo = float(60.0 / np.median(np.diff(beats_s))) if len(beats_s) > 2 else 0.0

    chroma = librosa.feature.chroma_stft(S=stft ** 2, sr=sr, hop_length=HOP, n_fft=4096)
    low_bins = librosa.fft_frequencies(sr=sr, n_fft=4096) <= BASS_HZ
    bass = librosa.feature.chroma_stft(S=stft ** 2 * low_bins[:, None], sr=sr, hop_length=HOP, n_fft=4096)
    loudness = np.sqrt((stft ** 2).sum(axis=0))
    key, confidence = estimate_key(chroma, loudness, bass)

    downbeat = np.zeros(len(beats), dtype=bool)
    per_bar = 4
    if len(beats) >= 8:
        edges = np.r_[beats, chroma.shape[1]]
        # per beat: the bass's loudness in its first ~90 ms, and how far the harmony it begins moves
        low_db = librosa.power_to_db(mel[:8].sum(axis=0))  # below ~200 Hz
        bass_at = np.array([low_db[b:b + 4].mean() if b < len(low_db) else low_db[-1] for b in beats])
        harmony = np.stack([np.median(chroma[:, a:max(a + 1, z)], axis=1) for a, z in zip(edges[:-1], edges[1:])], 1)
        change = np.r_[0.0, np.linalg.norm(np.diff(harmony, axis=1), axis=0)]
        per_bar, phase = choose_bars(_standardise(bass_at) + _standardise(change))
        downbeat[phase::per_bar] = True
    return MusicInfo(tempo, beats_s, downbeat, per_bar, key, confidence)
