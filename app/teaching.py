"""The teaching view's arithmetic, without Qt: a song's true stems read from a folder, the true activity
beside the gated one (missed and leaked frames), and the figures `stemlab evaluate` reports, per stem.

Every figure comes from engine.metrics, the functions training/evaluation/evaluate.py uses: SDR of the gated stem
and of the mixture against the truth, and activity precision / recall / F1 of the gate (> 0.5) against
the truth's energy labels (engine.metrics.energy_activity at the model's frame rate).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from engine.audio import load_audio, resample, to_stereo
from engine.errors import AudioLoadError
from engine.metrics import energy_activity, is_active, precision_recall_f1, sdr
from engine.progress import check_cancel
from engine.spectral import STFTConfig

from . import timeline_pictures
from .errors import TruthError

TRUTH_SUFFIXES = (".wav", ".flac", ".ogg")
# True stems may differ from the song in length by this much (encoder padding, a resampler's rounding):
# they are trimmed or padded with silence. More than that, and they are not this song's stems.
LENGTH_TOLERANCE_S = 0.010
LISTEN_MODES = ("estimate", "truth", "error")
GATE_ON = 0.5  # a frame counts as predicted active where its gate exceeds this (as in evaluate)


@dataclass
class Truth:
    """A song's true stems, at the song's own rate and length.

    stems: {source: (2, n_samples) float32}, in the model's source order (any subset of its sources).
    mixture_sdr: {source: SDR of the mixture against the true stem, dB}, None where the truth is silent.
    spectrograms: {source: the true stem's picture, drawn as the app draws every stem}; frames: their band
    frames, from which a zoomed-in view draws the span on screen in full detail.
    """

    folder: Path
    sample_rate: int
    stems: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)
    mixture_sdr: dict[str, Optional[float]] = field(default_factory=dict)
    spectrograms: dict[str, timeline_pictures.Spectrogram] = field(default_factory=dict)
    frames: dict[str, timeline_pictures.BandFrames] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return list(self.stems)

    @property
    def n_samples(self) -> int:
        return int(next(iter(self.stems.values())).shape[-1])

    def describe(self) -> str:
        return f"{', '.join(self.sources)} from {self.folder}"


def truth_files(folder: Path, sources: Sequence[str]) -> dict[str, Path]:
    """{source: file} of the true stems in folder, named <source>.wav, .flac or .ogg (any case).

    Raises TruthError when folder is no folder, holds two files for one source, or none for any source.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TruthError(f"{folder}: no such folder; give the folder that holds the true stems.")
    try:
        entries = sorted(p for p in folder.iterdir() if p.suffix.lower() in TRUTH_SUFFIXES)
    except OSError as exc:
        raise TruthError(f"{folder}: cannot be listed ({exc.strerror or exc}).") from exc
    wanted = {s.lower(): s for s in sources}
    found: dict[str, Path] = {}
    for p in entries:
        s = wanted.get(p.stem.lower())
        if s is None:
            continue
        if s in found:
            raise TruthError(f"{folder}: two true stems for {s} ({found[s].name} and {p.name}); keep one.")
        found[s] = p
    if not found:
        expected = ", ".join(f"{s}.wav" for s in sources[:3]) + (", …" if len(sources) > 3 else "")
        others = ", ".join(p.name for p in entries[:4]) + ("…" if len(entries) > 4 else "")
        seen = f"; it holds {others}" if entries else "; it holds no WAV, FLAC or OGG file"
        raise TruthError(f"{folder}: no true stems named after the model's sources ({expected}){seen}.")
    return {s: found[s] for s in sources if s in found}


def load_truth(
    folder: Path,
    sources: Sequence[str],
    sample_rate: int,
    n_samples: int,
    mixture: Optional[np.ndarray] = None,
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> Truth:
    """Read the true stems of a song of n_samples at sample_rate (mixture: its (2, n) samples, for the
    mixture's SDR) and draw their spectrograms. A stem at another rate is resampled as songs are
    (engine.audio.resample); one within LENGTH_TOLERANCE_S of the song's length is trimmed or padded.
    Raises TruthError, one line naming the file and what is wrong with it."""
    files = truth_files(Path(folder), sources)
    truth = Truth(Path(folder), int(sample_rate), {})
    tolerance = round(LENGTH_TOLERANCE_S * sample_rate)
    for s, path in files.items():
        check_cancel(cancel)
        try:
            audio = load_audio(path, allow_silent=True)  # a stem that does not play in this song is silent
        except AudioLoadError as exc:
            raise TruthError(f"True stem {_one_line(str(exc))}") from exc
        x = to_stereo(audio.samples)
        if audio.sample_rate != sample_rate:
            x = resample(x, audio.sample_rate, sample_rate)
            truth.notes.append(f"{path.name} resampled from {audio.sample_rate} Hz to the song's {sample_rate} Hz")
        diff = x.shape[-1] - n_samples
        if abs(diff) > tolerance:
            raise TruthError(
                f"True stem {path.name} lasts {x.shape[-1] / sample_rate:.3f} s but the song "
                f"{n_samples / sample_rate:.3f} s: these are not this song's stems (they may differ by at most "
                f"{1000 * LENGTH_TOLERANCE_S:.0f} ms)."
            )
        if diff > 0:
            x = x[:, :n_samples]
        elif diff < 0:
            x = np.pad(x, ((0, 0), (0, -diff)))
        truth.stems[s] = np.ascontiguousarray(x, dtype=np.float32)
        if mixture is not None:
            truth.mixture_sdr[s] = sdr(x, mixture) if is_active(x) else None
        truth.frames[s] = timeline_pictures.band_frames(x, sample_rate, cancel=cancel)
        truth.spectrograms[s] = truth.frames[s].render()
    return truth


def _one_line(text: str) -> str:
    return " ".join(text.split())


def demo_truth_folder(song_path: Path, demo_song: Path) -> Optional[Path]:
    """The bundled demo song's own true stems (resources/demo/stems), when song_path is the demo song."""
    try:
        same = Path(song_path).resolve() == Path(demo_song).resolve()
    except OSError:
        return None
    folder = Path(demo_song).parent / "stems"
    return folder if same and folder.is_dir() else None


# ---- per separation ------------------------------------------------------------------------------


def truth_activity(stem: np.ndarray, sample_rate: int, model_sample_rate: int, config: STFTConfig) -> np.ndarray:
    """stem: (2, n) at the song's rate -> (n_frames,) uint8 energy labels at the model's frame rate, as
    `stemlab evaluate` labels its songs (engine.metrics.energy_activity on the stem at the model's rate)."""
    x = resample(stem, sample_rate, model_sample_rate) if sample_rate != model_sample_rate else stem
    return energy_activity(x, config)


@dataclass
class Lanes:
    """One stem's frames, each (n_frames,) bool: true activity, gate on, and where they disagree."""

    truth: np.ndarray
    predicted: np.ndarray
    missed: np.ndarray  # the truth plays, the gate is shut
    leaked: np.ndarray  # the gate is open, the truth is silent

    @property
    def n_missed(self) -> int:
        return int(self.missed.sum())

    @property
    def n_leaked(self) -> int:
        return int(self.leaked.sum())


def activity_lanes(truth: np.ndarray, gate: np.ndarray) -> Lanes:
    """truth: (n_frames,) 0/1 labels; gate: (n_frames,) in [0, 1] -> Lanes over the frames both have."""
    n = min(truth.shape[0], gate.shape[0])
    t = np.asarray(truth[:n]) > 0
    p = np.asarray(gate[:n]) > GATE_ON
    return Lanes(t, p, t & ~p, p & ~t)


@dataclass
class StemFigures:
    """One stem's figures against its truth. sdr_gated / sdr_mixture are None where the truth is silent
    (evaluate skips those too); silent_db is then the estimate's energy against the mixture's."""

    source: str
    sdr_gated: Optional[float]
    sdr_mixture: Optional[float]
    precision: float
    recall: float
    f1: float
    n_frames: int
    n_truth: int
    n_missed: int
    n_leaked: int
    silent_db: Optional[float] = None

    @property
    def improvement(self) -> Optional[float]:
        if self.sdr_gated is None or self.sdr_mixture is None:
            return None
        return self.sdr_gated - self.sdr_mixture


def stem_figures(
    source: str, truth_stem: np.ndarray, estimate: np.ndarray, mixture: np.ndarray, lanes: Lanes,
    mixture_sdr: Optional[float] = None,
) -> StemFigures:
    """truth_stem, estimate, mixture: (2, n) at one rate; lanes: from activity_lanes. mixture_sdr, when
    known already (Truth.mixture_sdr), saves a pass over the song."""
    p, r, f = precision_recall_f1(lanes.predicted, lanes.truth)
    common: dict[str, Any] = {"precision": p, "recall": r, "f1": f, "n_frames": int(lanes.truth.shape[0]),
                              "n_truth": int(lanes.truth.sum()), "n_missed": lanes.n_missed,
                              "n_leaked": lanes.n_leaked}
    if is_active(truth_stem):
        mix_sdr = sdr(truth_stem, mixture) if mixture_sdr is None else mixture_sdr
        return StemFigures(source, sdr(truth_stem, estimate), mix_sdr, **common)
    mix_energy = float(np.sum(np.asarray(mixture, dtype=np.float64) ** 2)) + 1e-20
    energy = float(np.sum(np.asarray(estimate, dtype=np.float64) ** 2))
    return StemFigures(source, None, None, silent_db=float(10 * np.log10(max(energy, 1e-20) / mix_energy)),
                       **common)


def compute_figures(
    truth: Truth,
    truth_act: dict[str, np.ndarray],
    result: Any,
    gates: np.ndarray,
    mixture: np.ndarray,
    lock: threading.Lock,
    sources: Optional[Iterable[str]] = None,
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> dict[str, StemFigures]:
    """Figures of `sources` (default every stem with a truth) for the gated stems in result.stems now.

    gates: (n_sources, n_frames), the gates result.stems were rendered with; lock: the lock re-gating
    holds while it rewrites result.stems, held only to copy one stem: a whole-song SDR takes seconds on
    a long song, and re-gating (what is heard) must not wait for it.
    """
    out = {}
    names = [s for s in result.sources if s in truth.stems and (sources is None or s in set(sources))]
    for s in names:
        check_cancel(cancel)
        i = result.sources.index(s)
        lanes = activity_lanes(truth_act[s], gates[i])
        with lock:
            estimate = np.array(result.stems[i], dtype=np.float32)  # a copy, float32 if held compact
        out[s] = stem_figures(s, truth.stems[s], estimate, mixture, lanes, truth.mixture_sdr.get(s))
        del estimate
    return out


@dataclass
class TeachingData:
    """What one separation needs beside its truth: the true activity per stem at the model's frame rate
    ((n_frames,) uint8) and the pictures of the model's ungated masks (Spectrogram, values in [0, 1])."""

    activity: dict[str, np.ndarray]
    masks: dict[str, timeline_pictures.Spectrogram]


def prepare_teaching(
    truth: Truth,
    result: Any,
    mixture: np.ndarray,
    frames: dict[str, timeline_pictures.BandFrames],
    *,
    progress: Any = None,
    cancel: Optional[threading.Event] = None,
) -> TeachingData:
    """The true activity and mask pictures of every stem with a truth (a worker's job).

    result: engine.SeparationResult at the truth's rate and length; mixture: the song (2, n); frames:
    the ungated stems' band frames where the app keeps them (else they are computed here)."""
    activity, masks = {}, {}
    mix_frames = timeline_pictures.band_frames(mixture, result.sample_rate, cancel=cancel)
    for i, s in enumerate(result.sources):
        if s not in truth.stems:
            continue
        check_cancel(cancel)
        activity[s] = truth_activity(truth.stems[s], result.sample_rate, result.model_sample_rate,
                                     result.stft_config)
        stem_frames = frames.get(s)
        if stem_frames is None and result.ungated is not None:
            stem_frames = timeline_pictures.band_frames(result.ungated[i], result.sample_rate, cancel=cancel)
            from engine.separator import release_pages  # here: engine.separator imports torch
            release_pages(result.ungated)  # an on-disk copy read for the picture need not stay resident
        if stem_frames is not None and stem_frames.power.shape == mix_frames.power.shape:
            masks[s] = timeline_pictures.Spectrogram(mask_image(stem_frames, mix_frames),
                                            stem_frames.per_col * stem_frames.hop_s,
                                            stem_frames.log_fmin, stem_frames.log_fmax)
    return TeachingData(activity, masks)


def mask_image(stem_frames: timeline_pictures.BandFrames, mix_frames: timeline_pictures.BandFrames) -> np.ndarray:
    """What the model hears: its ungated mask seen through the app's spectrogram bands, the ungated stem's
    band power over the mixture's, as an amplitude ratio in [0, 1]. (n_columns, n_bands) float32.

    Both BandFrames must come from signals of one length and rate (the same frames and bands).
    """
    est = stem_frames.power.reshape(-1, stem_frames.per_col, stem_frames.power.shape[1]).mean(axis=1)
    mix = mix_frames.power.reshape(-1, mix_frames.per_col, mix_frames.power.shape[1]).mean(axis=1)
    floor = 10.0 ** (timeline_pictures.DB_FLOOR / 10.0)
    ratio = np.sqrt(est / np.maximum(mix, floor))
    ratio[mix <= floor] = 0.0  # silence in the mix: nothing to hear, nothing to mask
    return np.clip(ratio, 0.0, 1.0).astype(np.float32)


# ---- the report ----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "source", "sdr_gated_db", "sdr_mixture_db", "improvement_db", "precision", "recall", "f1",
    "frames", "true_frames", "missed_frames", "leaked_frames", "silent_estimate_db", "threshold",
    "median_frames", "mode",
)


def figures_csv(figures: Sequence[StemFigures], gating: dict[str, Any]) -> str:
    """The figures as CSV, one row per stem, with the gating each stem was measured at.

    gating: {source: GatingSettings}."""

    def num(v: Optional[float], digits: int = 3) -> str:
        return "" if v is None else f"{v:.{digits}f}"

    rows = [",".join(CSV_COLUMNS)]
    for f in figures:
        g = gating.get(f.source)
        rows.append(",".join([
            f.source, num(f.sdr_gated), num(f.sdr_mixture), num(f.improvement), num(f.precision, 4),
            num(f.recall, 4), num(f.f1, 4), str(f.n_frames), str(f.n_truth), str(f.n_missed), str(f.n_leaked),
            num(f.silent_db, 1), "" if g is None else f"{g.threshold:.2f}",
            "" if g is None else str(g.median_frames), "" if g is None else g.mode,
        ]))
    return "\n".join(rows) + "\n"


def report_names(song_name: str, sources: Sequence[str]) -> tuple[dict[str, str], str]:
    """({source: PNG file name}, CSV file name) of a song's teaching report."""
    safe = "".join(c if c.isalnum() or c in " -_.()" else "_" for c in song_name).strip() or "song"
    return {s: f"{safe} - teaching - {s}.png" for s in sources}, f"{safe} - teaching.csv"
