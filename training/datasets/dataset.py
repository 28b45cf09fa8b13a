"""The on-disk multitrack format (one folder per song, FLAC stems, labels.npz, song.json, a manifest)
and `MultitrackDataset`, the reader that lists songs and loads excerpts with their activity labels.

Layout of a data set folder::

    DIR/manifest.json                 set-level facts and one entry per finished song
    DIR/songs/<song_id>/<stem>.flac   stereo 44.1 kHz 16-bit FLAC, one per stem that has sound
    DIR/songs/<song_id>/mixture.flac  the mixture (always in partial sets; optional otherwise)
    DIR/songs/<song_id>/labels.npz    sources, note_activity, energy_activity (n_sources, n_frames) uint8,
                                      energy_db (n_sources, n_frames) float16, present, known (n_sources,) uint8
    DIR/songs/<song_id>/song.json     how the song was written and mixed (tempo, key, fonts, FX, ...)
    DIR/songs/<song_id>/song.mid      its notes (the sung line as a track named "vocals:sung")

The mixture is by definition the sum of the stems. A stem missing from a full set's song folder is
silent in that song (`present` 0, `known` 1). In a partial set only the `known` stems are stored
(and labelled); the others are unknown, not silent.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.audio import write_audio, write_text_atomic
from engine.spectral import STFTConfig
from training.errors import DatasetError

FORMAT_NAME = "stemlab-multitrack"
FORMAT_VERSION = 1
SONGS_DIR = "songs"
MIXTURE = "mixture"
FLAC_SUBTYPE = "PCM_16"


@dataclass(frozen=True)
class SongEntry:
    """One song of a data set as listed in the manifest."""

    song_id: str
    path: Path
    duration_s: float
    n_samples: int
    stems: tuple[str, ...]  # stems stored as audio files
    known: tuple[str, ...]  # sources whose audio and labels are known (silent if not stored)
    has_mixture_file: bool
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Excerpt:
    """A stretch of one song.

    stems: {source: (2, n_samples) float32} for every known source (zeros where the source is silent);
    mixture: (2, n_samples) float32, the sum of all stems (read from mixture.flac when stored);
    note_activity, energy_activity: {source: (n_frames,) uint8} with n_frames = n_samples // hop + 1,
    frame t centred on excerpt sample t * hop_length; energy_db: {source: (n_frames,) float32}.
    start_sample is a multiple of hop_length so excerpt frames are song frames.
    """

    song_id: str
    start_sample: int
    sample_rate: int
    stems: dict[str, np.ndarray]
    mixture: np.ndarray
    note_activity: dict[str, np.ndarray]
    energy_activity: dict[str, np.ndarray]
    energy_db: dict[str, np.ndarray]
    present: tuple[str, ...]
    known: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return int(self.mixture.shape[-1])


def _read_range(path: Path, start: int, n: int) -> np.ndarray:
    """(2, n) float32 from a FLAC/WAV frame range; zero-padded past the end of the file."""
    with sf.SoundFile(str(path)) as f:
        if start < f.frames:
            f.seek(start)
            data = f.read(n, dtype="float32", always_2d=True)
        else:
            data = np.zeros((0, f.channels), dtype=np.float32)
    out = np.zeros((2, n), dtype=np.float32)
    if data.shape[0]:
        d = data.T
        if d.shape[0] == 1:
            d = np.repeat(d, 2, axis=0)
        out[:, : d.shape[1]] = d[:2]
    return out


class MultitrackDataset:
    """Reader for a data set folder written by `make-data` (or the benchmark / demo builders).

    >>> ds = MultitrackDataset("data/train")
    >>> len(ds), ds.sources, ds.sample_rate
    >>> ex = ds.load_excerpt(ds.songs[0], start_s=10.0, duration_s=3.0)
    >>> ex.stems["drums"].shape, ex.note_activity["drums"].shape     # (2, 132300), (259,)
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if manifest_path.is_file():
            try:
                self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise DatasetError(f"{manifest_path}: cannot be read ({exc}).") from exc
            if self.manifest.get("format") != FORMAT_NAME:
                raise DatasetError(f"{manifest_path}: not a StemLab multitrack manifest.")
        elif (self.root / SONGS_DIR).is_dir():
            # A set whose manifest was not written yet (interrupted): scan the song folders.
            self.manifest = scan_manifest(self.root)
        else:
            raise DatasetError(f"{self.root}: no manifest.json and no songs/ folder; not a data set.")
        self.sources: tuple[str, ...] = tuple(self.manifest["sources"])
        self.sample_rate: int = int(self.manifest["sample_rate"])
        self.config = STFTConfig(n_fft=int(self.manifest.get("n_fft", 2048)),
                                 hop_length=int(self.manifest.get("hop_length", 512)))
        self.songs: list[SongEntry] = []
        for e in self.manifest["songs"]:
            p = self.root / SONGS_DIR / e["id"]
            self.songs.append(SongEntry(e["id"], p, float(e["duration_s"]), int(e["n_samples"]),
                                        tuple(e["stems"]), tuple(e.get("known", self.sources)),
                                        bool(e.get("mixture_file", False)), e))
        self._by_id = {s.song_id: s for s in self.songs}
        self._labels_cache: dict[str, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.songs)

    def __getitem__(self, i: int) -> SongEntry:
        return self.songs[i]

    @property
    def hours(self) -> float:
        return sum(s.duration_s for s in self.songs) / 3600.0

    def entry(self, song: str | int | SongEntry) -> SongEntry:
        if isinstance(song, SongEntry):
            return song
        if isinstance(song, int):
            return self.songs[song]
        try:
            return self._by_id[song]
        except KeyError:
            raise DatasetError(f"{self.root}: no song {song!r}.") from None

    def labels(self, song: str | int | SongEntry) -> dict[str, np.ndarray]:
        """The song's whole labels.npz: note_activity, energy_activity (n_sources, n_frames) uint8,
        energy_db (n_sources, n_frames) float16, present, known (n_sources,) uint8, sources."""
        e = self.entry(song)
        if e.song_id not in self._labels_cache:
            path = e.path / "labels.npz"
            try:
                with np.load(path, allow_pickle=False) as z:  # data, never pickles
                    lab = {k: z[k] for k in z.files}
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}: cannot be read ({exc}).") from exc
            if tuple(str(s) for s in lab["sources"]) != self.sources:
                raise DatasetError(f"{path}: sources {list(lab['sources'])} differ from the manifest's.")
            if len(self._labels_cache) > 512:
                self._labels_cache.clear()
            self._labels_cache[e.song_id] = lab
        return self._labels_cache[e.song_id]

    def load_excerpt(self, song: str | int | SongEntry, start_s: float, duration_s: float,
                     sources: Sequence[str] | None = None) -> Excerpt:
        """Read duration_s seconds from start_s (snapped down to a hop multiple) of one song.

        Only the needed frame range of each FLAC is decoded. sources limits which stems are read
        (default: every known source); the mixture is always returned.
        """
        e = self.entry(song)
        hop = self.config.hop_length
        start = max(0, math.floor(start_s * self.sample_rate / hop) * hop)
        n = round(duration_s * self.sample_rate)
        return self._load(e, start, n, sources)

    def load_song(self, song: str | int | SongEntry, sources: Sequence[str] | None = None) -> Excerpt:
        e = self.entry(song)
        return self._load(e, 0, e.n_samples, sources)

    def _load(self, e: SongEntry, start: int, n: int, sources: Sequence[str] | None) -> Excerpt:
        wanted = [s for s in (sources if sources is not None else self.sources) if s in e.known]
        stems: dict[str, np.ndarray] = {}
        for s in wanted:
            path = e.path / f"{s}.flac"
            stems[s] = _read_range(path, start, n) if s in e.stems else np.zeros((2, n), dtype=np.float32)
        if e.has_mixture_file:
            mixture = _read_range(e.path / f"{MIXTURE}.flac", start, n)
        else:
            mixture = np.zeros((2, n), dtype=np.float32)
            for s in e.stems:
                mixture += stems[s] if s in stems else _read_range(e.path / f"{s}.flac", start, n)
        lab = self.labels(e)
        f0 = start // self.config.hop_length
        n_frames = self.config.n_frames(n)

        def cut(a: np.ndarray, fill: float = 0) -> np.ndarray:
            seg = a[f0:f0 + n_frames]
            if seg.shape[0] < n_frames:
                seg = np.concatenate([seg, np.full(n_frames - seg.shape[0], fill, dtype=seg.dtype)])
            return seg

        idx = {s: i for i, s in enumerate(self.sources)}
        return Excerpt(
            song_id=e.song_id, start_sample=start, sample_rate=self.sample_rate, stems=stems, mixture=mixture,
            note_activity={s: cut(lab["note_activity"][idx[s]]) for s in wanted},
            energy_activity={s: cut(lab["energy_activity"][idx[s]]) for s in wanted},
            energy_db={s: cut(lab["energy_db"][idx[s]].astype(np.float32), -120.0) for s in wanted},
            present=tuple(s for s in self.sources if lab["present"][idx[s]]),
            known=tuple(wanted),
        )


# ----------------------------------------------------------------------------------------------
# Writing


def make_set_folder(out: str | Path) -> Path:
    """Create (or reuse) a set's folder and its songs/ folder, or raise DataGenerationError saying why not:
    a file in the way, no permission, no space."""
    from training.errors import DataGenerationError

    out_dir = Path(out)
    for p in (out_dir, *out_dir.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise DataGenerationError(f"{out_dir}: {p} is a file, not a folder; choose another --out")
            break
    try:
        (out_dir / SONGS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataGenerationError(f"{out_dir}: cannot make the folder ({exc.strerror or exc})") from exc
    return out_dir


def write_song_folder(final_dir: Path, stems: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                      sources: Sequence[str], sample_rate: int, meta: dict[str, Any],
                      keep: Sequence[str] | None = None, store_mixture: bool = False,
                      midi_writer: Any | None = None) -> dict[str, Any]:
    """Write one song atomically: into a hidden temporary folder beside final_dir, then rename.

    stems: {source: (2, n)} for stems with sound; keep: the known sources to store (default all,
    a partial set passes a subset and then always stores the mixture). Returns the manifest entry.
    """
    final_dir = Path(final_dir)
    tmp = final_dir.parent / f".{final_dir.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        known = list(sources) if keep is None else [s for s in sources if s in keep]
        n = int(next(iter(stems.values())).shape[-1]) if stems else int(meta.get("n_samples", 0))
        stored = []
        for s in known:
            if s in stems:
                write_audio(tmp / f"{s}.flac", stems[s], sample_rate, subtype=FLAC_SUBTYPE)
                stored.append(s)
        mixture_file = store_mixture or keep is not None
        if mixture_file:
            mix = np.zeros((2, n), dtype=np.float32)
            for x in stems.values():
                mix += x
            write_audio(tmp / f"{MIXTURE}.flac", mix, sample_rate, subtype=FLAC_SUBTYPE)
        lab = dict(labels)
        known_mask = np.array([s in known for s in sources], dtype=np.uint8)
        if keep is not None:  # unknown sources carry no labels
            for k in ("note_activity", "energy_activity"):
                lab[k] = lab[k] * known_mask[:, None]
        arrays: dict[str, Any] = {"sources": np.array(list(sources)), "known": known_mask, **lab}
        np.savez_compressed(tmp / "labels.npz", **arrays)
        if midi_writer is not None:
            midi_writer(tmp / "song.mid")
        entry = {"id": final_dir.name, "duration_s": round(n / sample_rate, 4), "n_samples": n,
                 "stems": stored, "known": known, "mixture_file": mixture_file,
                 "present": [s for s, p in zip(sources, labels["present"]) if p]}
        meta = dict(meta)
        meta["entry"] = entry
        write_text_atomic(tmp / "song.json", json.dumps(meta, indent=1, default=_json_default))
        if final_dir.exists():
            shutil.rmtree(final_dir)
        tmp.rename(final_dir)
        return entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return repr(o)


def scan_manifest(root: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the manifest from the finished song folders (song.json holds each entry)."""
    from engine.model import DEFAULT_SOURCES

    songs = []
    sample_rate = 44100
    for d in sorted((Path(root) / SONGS_DIR).glob("*")):
        if d.name.startswith(".") or not (d / "song.json").is_file():
            continue
        try:
            meta = json.loads((d / "song.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        entry = dict(meta["entry"])
        entry["id"] = d.name
        sample_rate = int(meta.get("sample_rate", sample_rate))
        for k in ("seed", "index", "generator", "style", "metre", "tempo_bpm", "fonts", "mixture_lufs"):
            if k in meta:
                entry[k] = meta[k]
        songs.append(entry)
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "sample_rate": sample_rate,
        "sources": list(DEFAULT_SOURCES), "n_fft": STFTConfig().n_fft, "hop_length": STFTConfig().hop_length,
        "n_songs": len(songs), "hours": round(sum(s["duration_s"] for s in songs) / 3600.0, 4),
    }
    if extra:
        manifest.update(extra)
    manifest["songs"] = songs
    return manifest


def write_manifest(root: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    m = scan_manifest(root, extra)
    write_text_atomic(Path(root) / "manifest.json", json.dumps(m, indent=1, default=_json_default))
    return m
