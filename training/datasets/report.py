"""Statistics and spectrogram pictures of a generated data set, for docs/DATA.md.

    python -m training.datasets.report data/smoke [--png docs/img/stems_song0.png --song 0]

Pictures are drawn with numpy alone (a tiny PNG writer), so the docs need no plotting library.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.datasets.dataset import MultitrackDataset

_STOPS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                   [250, 193, 39], [252, 255, 164]], dtype=float)  # an inferno-like colour map


def write_png(path: Path, rgb: np.ndarray) -> None:
    """rgb: (height, width, 3) uint8 -> PNG file."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def _colour(v: np.ndarray) -> np.ndarray:
    """v in [0, 1] -> (..., 3) uint8."""
    x = np.clip(v, 0, 1) * (len(_STOPS) - 1)
    i = np.minimum(x.astype(int), len(_STOPS) - 2)
    f = (x - i)[..., None]
    return (_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(np.uint8)


def spectrogram_image(x: np.ndarray, sample_rate: int, height: int = 160, width: int = 900,
                      floor_db: float = -90.0) -> np.ndarray:
    """x: (channels, n) -> (height, width, 3) log-frequency (30 Hz..Nyquist) dB spectrogram picture."""
    mono = np.asarray(x, dtype=np.float64).mean(axis=0)
    n_fft, hop = 2048, 512
    pad = np.pad(mono, (n_fft // 2, n_fft // 2))
    n_frames = 1 + (len(pad) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    win = np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(pad[idx] * win, axis=1)) / (win.sum() / 2)
    db = 20 * np.log10(np.maximum(mag, 1e-9))
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    rows = np.geomspace(30.0, sample_rate / 2, height)[::-1]
    bins = np.clip(np.searchsorted(freqs, rows), 1, len(freqs) - 1)
    cols = np.linspace(0, n_frames - 1, width).astype(int)
    img = db[cols][:, bins].T  # (height, width)
    return _colour((img - floor_db) / -floor_db)


def song_picture(ds: MultitrackDataset, song: int, path: Path, seconds: float | None = None) -> list[str]:
    """Mixture on top, then each source; under each, two label strips: notes (cyan), energy (green)."""
    e = ds.entry(song)
    ex = ds.load_excerpt(e, 0.0, seconds or e.duration_s)
    panels = [np.full((4, 900, 3), 255, dtype=np.uint8)]
    order = ["mixture"] + list(ds.sources)
    for name in order:
        x = ex.mixture if name == "mixture" else ex.stems.get(name)
        if x is None:
            continue
        panels.append(spectrogram_image(x, ds.sample_rate))
        if name != "mixture":
            for lab, colour in ((ex.note_activity[name], (0, 200, 230)), (ex.energy_activity[name], (40, 200, 60))):
                cols = np.linspace(0, len(lab) - 1, 900).astype(int)
                strip = np.full((5, 900, 3), 30, dtype=np.uint8)
                strip[:, lab[cols] > 0] = colour
                panels.append(strip)
        panels.append(np.full((4, 900, 3), 255, dtype=np.uint8))
    write_png(path, np.concatenate(panels, axis=0))
    return order


def statistics(ds: MultitrackDataset) -> dict[str, dict[str, float]]:
    """Per source: share of songs with it, share of time active (energy / notes), stem loudness."""
    out: dict[str, dict[str, float]] = {}
    total_frames = 0
    act_e = np.zeros(len(ds.sources))
    act_n = np.zeros(len(ds.sources))
    present = np.zeros(len(ds.sources))
    lufs: dict[str, list[float]] = {s: [] for s in ds.sources}
    mix_lufs = []
    for e in ds.songs:
        lab = ds.labels(e)
        total_frames += lab["energy_activity"].shape[1]
        act_e += lab["energy_activity"].sum(axis=1)
        act_n += lab["note_activity"].sum(axis=1)
        present += lab["present"]
        meta = json.loads((e.path / "song.json").read_text())
        for s, v in (meta.get("stem_lufs") or {}).items():
            if v is not None:
                lufs[s].append(float(v))
        if meta.get("mixture_lufs") is not None:
            mix_lufs.append(float(meta["mixture_lufs"]))
    for i, s in enumerate(ds.sources):
        v = np.array(lufs[s]) if lufs[s] else np.array([math.nan])
        out[s] = {"songs_with": float(present[i] / max(len(ds), 1)),
                  "active_energy": float(act_e[i] / max(total_frames, 1)),
                  "active_notes": float(act_n[i] / max(total_frames, 1)),
                  "lufs_mean": float(np.mean(v)), "lufs_std": float(np.std(v))}
    out["mixture"] = {"lufs_mean": float(np.mean(mix_lufs)) if mix_lufs else math.nan,
                      "lufs_std": float(np.std(mix_lufs)) if mix_lufs else math.nan}
    return out


def markdown_table(stats: dict[str, dict[str, float]]) -> str:
    lines = ["| stem | songs with it | time active (energy) | time active (notes) | loudness LUFS (mean ± sd) |",
             "|---|---|---|---|---|"]
    for s, d in stats.items():
        if s == "mixture":
            continue
        lines.append(f"| {s} | {d['songs_with']:.0%} | {d['active_energy']:.0%} | {d['active_notes']:.0%} | "
                     f"{d['lufs_mean']:.1f} ± {d['lufs_std']:.1f} |")
    m = stats["mixture"]
    lines.append(f"| mixture | 100% | | | {m['lufs_mean']:.1f} ± {m['lufs_std']:.1f} |")
    return "\n".join(lines)


def variety(ds: MultitrackDataset) -> str:
    """What kinds of songs a set holds (from each song.json): styles, generators, metres, tempi, fonts."""
    from collections import Counter

    metas = []
    for e in ds.songs:
        path = e.path / "song.json"
        if path.is_file():
            metas.append(json.loads(path.read_text()))
    if not metas:
        return "no song.json files (a benchmark or foreign set)"

    def shares(counter: Counter[str]) -> str:
        total = sum(counter.values())
        return ", ".join(f"{k} {v / total:.0%}" for k, v in counter.most_common())

    tempi = np.array([float(m.get("tempo_bpm", 0.0)) for m in metas])
    fonts: Counter[str] = Counter(f for m in metas for f in (m.get("fonts") or {}).values())
    lines = [f"- styles: {shares(Counter(str(m.get('style')) for m in metas))}",
             f"- parts from: {shares(Counter(str(m.get('generator')) for m in metas))}",
             f"- metres: {shares(Counter(str(m.get('metre')) for m in metas))}",
             f"- tempo: {tempi.min():.0f}-{tempi.max():.0f} bpm, median {np.median(tempi):.0f}",
             f"- SoundFonts, over all stems: {shares(fonts)}",
             f"- distinct singer voices: {len({json.dumps(m['voice'], sort_keys=True) for m in metas if m.get('voice')})}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="data-report", description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--png", type=Path, default=None)
    p.add_argument("--song", type=int, default=0)
    p.add_argument("--seconds", type=float, default=None)
    args = p.parse_args(argv)
    ds = MultitrackDataset(args.root)
    print(f"{len(ds)} songs, {ds.hours:.2f} h")
    print(markdown_table(statistics(ds)))
    print(variety(ds))
    if "last_run" in ds.manifest:
        print(json.dumps(ds.manifest["last_run"]))
    if args.png:
        order = song_picture(ds, args.song, args.png, args.seconds)
        print(f"wrote {args.png}: panels {order}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
