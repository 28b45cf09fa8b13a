"""Where a stem's error comes from, per frequency band: which other instruments leak into it and how much of
it the model misses, on the benchmark (issue 11's diagnostic for the stems that score below silence).

    python bench/leakage.py [--model resources/models/iass.json] [--stem bass] [--set data/benchmark] [--write]

The engine's estimate of a stem is a real mask on the mixture's STFT, E = M X with X = sum of the sources
S_j, so its error splits exactly into what the mask lets through of every other source, M S_j, and what it
holds back of the stem itself, (1 - M) S_stem. M is read back from the gated estimate as |E| / |X| (on the
same 2048 / 512 STFT, clipped at 1.5), summed per band over the excerpts where the stem plays, and shown
in dB against the stem's whole true energy: a row at -10 dB in a band costs as much as an estimate that
is 10 dB off everywhere.

Per excerpt it also records the stem's SDR, how loud its estimate is against the truth, and how much the
other stems sound under 250 Hz against the stem's own energy there: the bass's SDR follows that last figure
(the excerpts where a guitar or another part plays low are the ones where the bass estimate is far too
loud), and the section's second table bins the excerpts by it.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_section

BANDS_HZ = (0, 60, 120, 250, 500, 1000, 2000, 22050)
N_FFT, HOP = 2048, 512
LOW_HZ = 250  # "under 250 Hz": where the bass lives and what else sounds there
LOW_BINS_DB = (0.0, 4.0, 8.0)  # the second table's bins of the others' low band against the stem's
LOUDNESS_FLOOR_DB = -60.0  # an estimate this far under the truth is silence (the gate took it)


@dataclass
class Excerpt:
    song: str
    sdr: float  # the gated estimate's SDR (dB)
    loudness_db: float  # the estimate's energy against the stem's true energy
    others_low_db: float  # the other stems' energy under LOW_HZ against the stem's own there


@dataclass
class StemLeakage:
    rows: dict[str, np.ndarray]  # per band: "true", "leak <source>", "missed"
    excerpts: list[Excerpt] = field(default_factory=list)


def _db(num: float, den: float) -> float:
    return float(10 * np.log10(max(num, 1e-20) / max(den, 1e-20)))


def _stft(x: np.ndarray) -> np.ndarray:
    import torch

    return torch.stft(torch.from_numpy(np.ascontiguousarray(x)), N_FFT, HOP, window=torch.hann_window(N_FFT),
                      return_complex=True).numpy()


def leakage(model: str, set_dir: Path, stems_wanted: list[str]) -> dict[str, StemLeakage]:
    """Per wanted stem, energies per band summed over the excerpts where it plays, and those excerpts'
    figures. Each excerpt is separated once, for all the wanted stems together."""
    import soundfile as sf

    from engine.metrics import is_active, sdr
    from engine.separator import Separator

    sep = Separator.load(model, device="cpu")
    for stem in stems_wanted:
        if stem not in sep.sources:
            raise SystemExit(f"leakage: the model has no stem {stem!r} (it has {', '.join(sep.sources)})")
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sep.sample_rate)
    bands = [(freqs >= lo) & (freqs < hi) for lo, hi in itertools.pairwise(BANDS_HZ)]
    low = freqs < LOW_HZ
    out: dict[str, StemLeakage] = {}
    for stem in stems_wanted:
        rows = {"true": np.zeros(len(bands))}
        rows.update({f"leak {s}": np.zeros(len(bands)) for s in sep.sources if s != stem})
        rows["missed"] = np.zeros(len(bands))
        out[stem] = StemLeakage(rows)
    for song in sorted((set_dir / "songs").iterdir()):
        stems = {}
        for s in sep.sources:
            f = song / f"{s}.flac"
            if f.exists():
                audio, _ = sf.read(f, dtype="float32", always_2d=True)
                stems[s] = audio.T
        playing = [t for t in stems_wanted if t in stems and is_active(stems[t])]
        if not playing:
            continue
        n = max(a.shape[1] for a in stems.values())
        stems = {s: np.pad(a, ((0, 0), (0, n - a.shape[1]))) for s, a in stems.items()}
        mix = sum(stems.values())
        estimates = sep.separate(mix, sep.sample_rate).stems
        X = _stft(mix)
        spectra = {s: _stft(a) for s, a in stems.items()}
        power = {s: np.abs(spec) ** 2 for s, spec in spectra.items()}
        for stem in playing:
            rows = out[stem].rows
            estimate = estimates[sep.sources.index(stem)]
            mask = np.minimum(np.abs(_stft(estimate)) / (np.abs(X) + 1e-8), 1.5)
            for b, sel in enumerate(bands):
                target = spectra[stem][:, sel]
                rows["true"][b] += float(power[stem][:, sel].sum())
                rows["missed"][b] += float((np.abs((1 - mask[:, sel]) * target) ** 2).sum())
                for s, spec in spectra.items():
                    if s != stem:
                        rows[f"leak {s}"][b] += float((np.abs(mask[:, sel] * spec[:, sel]) ** 2).sum())
            others_low = sum(float(p[:, low].sum()) for s, p in power.items() if s != stem)
            out[stem].excerpts.append(Excerpt(
                song.name, float(sdr(stems[stem], estimate)),
                _db(float(np.sum(np.square(estimate, dtype=np.float64))),
                    float(np.sum(np.square(stems[stem], dtype=np.float64)))),
                _db(others_low, float(power[stem][:, low].sum()))))
    return out


def table(rows: dict[str, np.ndarray], count: int, stem: str) -> str:
    ref = max(rows["true"].sum(), 1e-20)
    heads = [f"{lo}-{hi} Hz" for lo, hi in itertools.pairwise(BANDS_HZ)]
    out = ["| " + stem + " | " + " | ".join(heads) + " | all bands |", "| --- " * (len(heads) + 2) + "|"]

    def db(x: float) -> str:
        return f"{10 * np.log10(x / ref):.1f}" if x > ref * 1e-12 else "-"

    for name, v in rows.items():
        out.append(f"| {name} | " + " | ".join(db(x) for x in v) + f" | {db(v.sum())} |")
    return "\n".join(out) + f"\n\n{count} excerpts where {stem} plays; dB against the stem's whole true energy."


def _loudness(values_db: list[float]) -> str:
    """The median of estimates' loudness against the truth; an estimate the gate silenced reads -inf, so
    the median (not the mean) and a floor."""
    m = float(np.median(values_db))
    return f"{m:+.1f} dB" if m > LOUDNESS_FLOOR_DB else f"under {LOUDNESS_FLOOR_DB:g} dB (gated off)"


def low_band_table(excerpts: list[Excerpt], stem: str, worst: int = 6) -> str:
    """The excerpts binned by how loud the other stems are under LOW_HZ against the stem, with the
    correlation of that figure with the SDR, and the worst excerpts by name."""
    x = np.array([e.others_low_db for e in excerpts])
    y = np.array([e.sdr for e in excerpts])
    edges = (-np.inf, *LOW_BINS_DB, np.inf)
    out = [(f"| others under {LOW_HZ} Hz against the {stem} stem's own | excerpts | {stem} SDR | "
            "estimate's loudness against the truth, median |"),
           "| --- | --- | --- | --- |"]
    for lo, hi in itertools.pairwise(edges):
        sel = (x > lo) & (x <= hi)
        name = f"<= {hi:g} dB" if lo == -np.inf else f"> {lo:g} dB" if hi == np.inf else f"{lo:g} to {hi:g} dB"
        if sel.any():
            loud = _loudness([e.loudness_db for e, s in zip(excerpts, sel) if s])
            out.append(f"| {name} | {int(sel.sum())} | {y[sel].mean():.2f} | {loud} |")
        else:
            out.append(f"| {name} | 0 | - | - |")
    r = float(np.corrcoef(x, y)[0, 1]) if len(excerpts) > 2 else float("nan")
    out.append(f"| all | {len(excerpts)} | {y.mean():.2f} | {_loudness([e.loudness_db for e in excerpts])} |")
    worst_excerpts = ", ".join(
        f"{e.song} ({e.sdr:.1f} dB, others low {e.others_low_db:+.1f} dB, "
        f"estimate {max(e.loudness_db, LOUDNESS_FLOOR_DB):+.1f} dB)"
        for e in sorted(excerpts, key=lambda e: e.sdr)[:worst])
    lines = "\n".join(out) + (f"\n\nCorrelation of {stem}'s SDR with the others' low band: r = {r:.2f}. "
                              f"Worst excerpts: {worst_excerpts}.")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--stem", action="append", help="stem(s) to analyse (default: bass)")
    ap.add_argument("--set", type=Path, default=ROOT / "data" / "benchmark")
    ap.add_argument("--label", default=None, help="the model's name in the section (default: the --model)")
    ap.add_argument("--write", action="store_true", help="write the section 'leakage' of docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    if not (args.set / "songs").is_dir():
        print(f"leakage: {args.set} holds no songs/ (stemlab make-benchmark --out {args.set})", file=sys.stderr)
        return 2
    parts = []
    for stem, found in leakage(args.model, args.set, args.stem or ["bass"]).items():
        parts.append(table(found.rows, len(found.excerpts), stem))
        print(parts[-1] + "\n")
        if found.excerpts:
            parts.append(low_band_table(found.excerpts, stem))
            print(parts[-1] + "\n")
    if args.write:
        argv_text = " ".join(sys.argv[1:] if argv is None else argv)
        body = ("## Where a stem's error comes from, per band (issue 11)\n\n"
                f"Model `{args.label or args.model}` on `{args.set.name}`. Per band: the stem's true energy, what the "
                "mask lets through of every other source, and what it holds back of the stem (the error is "
                "exactly their sum before the inverse STFT).\n\n" + "\n\n".join(parts) +
                f"\n\nCommand: `python bench/leakage.py {argv_text}`")
        write_section("leakage", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
