"""Training batches from generated multitrack sets, or from songs written and rendered while training:
random excerpts, remixing across songs, gains.

Item i of batch k depends only on (seed, k, i), so a resumed run sees exactly the batches it would have
seen, and processes training together (training/run/distributed.py) each draw their own items of one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import soundfile as sf
import torch
from scipy.signal import lfilter, lfilter_zi
from torch.utils.data import IterableDataset

from training.datasets.dataset import MultitrackDataset, SongEntry
from training.errors import TrainingError
from training.run.config import TrainConfig
from training.synthesis.render import _biquad

LOW_SHELF_HZ = (120.0, 350.0)  # the range of a random low shelf's corner (TrainConfig.low_shelf_prob)


@dataclass
class Batch:
    """mixture: (batch, 2, n_samples); stems: (batch, n_sources, 2, n_samples);
    activity: (batch, n_sources, n_frames) 0/1 labels; known: (batch, n_sources) bool, whether the
    source's audio and labels are known for that item; source: the one source an interleaved batch trains."""

    mixture: torch.Tensor
    stems: torch.Tensor
    activity: torch.Tensor
    known: torch.Tensor
    step: int
    source: Optional[int] = None


@dataclass
class LiveSong:
    """A song rendered in memory for on-the-fly training; has the SongEntry fields ExcerptSource reads."""

    song_id: str
    n_samples: int
    stems: tuple[str, ...]
    known: tuple[str, ...]
    audio: dict[str, np.ndarray]          # source -> (2, n_samples) float32, sounding stems only
    labels: dict[str, np.ndarray]         # as labels.npz: note_activity, energy_activity (S, T), ...
    has_mixture_file: bool = False


Song = Union[SongEntry, LiveSong]


def read_range(path: Path, start: int, n: int) -> np.ndarray:
    """(2, n) float32 from an audio file's sample range, zero-padded past its end."""
    out = np.zeros((2, n), dtype=np.float32)
    with sf.SoundFile(str(path)) as f:
        if start < f.frames:
            f.seek(start)
            d = f.read(n, dtype="float32", always_2d=True).T
            if d.shape[0] == 1:
                d = np.repeat(d, 2, axis=0)
            out[:, :d.shape[1]] = d[:2]
    return out


def activity_labels(lab: dict[str, np.ndarray], kind: str, rows: Union[int, slice] = slice(None)) -> np.ndarray:
    """The activity labels a run trains on (TrainConfig.activity_labels: "energy", "note" or "either"),
    for one source's row or for all of them."""
    if kind == "energy":
        return lab["energy_activity"][rows]
    if kind == "note":
        return lab["note_activity"][rows]
    return np.maximum(lab["energy_activity"][rows], lab["note_activity"][rows])


class ExcerptSource:
    """Reads excerpts of stems and their labels from one or more generated sets."""

    def __init__(self, roots: Sequence[str], cfg: TrainConfig, allow_empty: bool = False) -> None:
        self.cfg = cfg
        self.sets = []
        for root in roots:
            if not Path(root).exists():
                raise TrainingError(f"{root}: no such data set; make one with `stemlab make-data --out {root}`")
            self.sets.append(MultitrackDataset(root))
        self.sources = list(cfg.sources)
        # each stem's lowest random gain in dB (the highest is +gain_db for all)
        self.gain_low_db = np.array([-cfg.gain_db - (cfg.quiet_db if s in cfg.quiet_sources else 0.0)
                                     for s in self.sources])
        for ds in self.sets:
            if list(ds.sources) != self.sources:
                raise TrainingError(f"{ds.root}: its sources {list(ds.sources)} differ from the run's {self.sources}")
            if ds.sample_rate != cfg.sample_rate or ds.config.hop_length != cfg.hop_length:
                raise TrainingError(f"{ds.root}: sample rate / hop length differ from the run's")
        self.songs: list[tuple[Optional[MultitrackDataset], Song]] = [
            (ds, e) for ds in self.sets for e in ds.songs if e.n_samples > cfg.excerpt_samples]
        if not self.songs and not allow_empty:
            raise TrainingError("the training sets hold no song longer than one excerpt")
        self._index()

    def _index(self) -> None:
        # songs whose every source is known (for simultaneous batches and remixing)
        self.full = [i for i, (_, e) in enumerate(self.songs) if set(e.known) >= set(self.sources)]
        self.by_source = {j: [i for i, (_, e) in enumerate(self.songs) if s in e.known]
                          for j, s in enumerate(self.sources)}

    def labels(self, ds: Optional[MultitrackDataset], e: Song, source: str, f0: int, n_frames: int) -> np.ndarray:
        if isinstance(e, LiveSong):
            lab = e.labels
        else:
            assert ds is not None
            lab = ds.labels(e)
        a = activity_labels(lab, self.cfg.activity_labels, self.sources.index(source))
        seg = np.zeros(n_frames, dtype=np.float32)
        part = a[f0:f0 + n_frames]
        seg[:part.shape[0]] = part
        return seg

    def stem(self, ds: Optional[MultitrackDataset], e: Song, source: str, start: int, n: int) -> np.ndarray:
        if source not in e.stems:
            return np.zeros((2, n), dtype=np.float32)  # known and silent in this song
        if isinstance(e, LiveSong):
            out = np.zeros((2, n), dtype=np.float32)
            part = e.audio[source][:, start:start + n]
            out[:, :part.shape[1]] = part
            return out
        return read_range(e.path / f"{source}.flac", start, n)

    def mixture(self, ds: Optional[MultitrackDataset], e: Song, start: int, n: int) -> np.ndarray:
        """The song's whole mixture (independent databases store it; full sets sum their stems)."""
        if isinstance(e, SongEntry) and e.has_mixture_file:
            return read_range(e.path / "mixture.flac", start, n)
        mixture = np.zeros((2, n), dtype=np.float32)
        for other in e.stems:
            mixture += self.stem(ds, e, other, start, n)
        return mixture

    def random_start(self, e: Song, rng: np.random.Generator) -> int:
        hop = self.cfg.hop_length
        last = max(0, e.n_samples - self.cfg.excerpt_samples)
        return int(rng.integers(0, last // hop + 1)) * hop

    def item(self, rng: np.random.Generator, source: Optional[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One training item: mixture (2, n), stems (S, 2, n), labels (S, T), known (S,)."""
        cfg = self.cfg
        n, hop = cfg.excerpt_samples, cfg.hop_length
        n_frames = n // hop + 1
        n_src = len(self.sources)
        stems = np.zeros((n_src, 2, n), dtype=np.float32)
        labels = np.zeros((n_src, n_frames), dtype=np.float32)
        known = np.zeros(n_src, dtype=bool)
        if source is None:
            if not self.full:
                raise TrainingError("simultaneous training needs songs with every stem; the sets are partial")
            ds, e = self.songs[self.full[int(rng.integers(len(self.full)))]]
            start = self.random_start(e, rng)
            for j, s in enumerate(self.sources):
                ds_j, e_j, start_j = ds, e, start
                if rng.random() < cfg.remix_prob:
                    ds_j, e_j = self.songs[self.full[int(rng.integers(len(self.full)))]]
                    start_j = self.random_start(e_j, rng)
                stems[j] = self.stem(ds_j, e_j, s, start_j, n)
                labels[j] = self.labels(ds_j, e_j, s, start_j // hop, n_frames)
                known[j] = True
            if cfg.low_shelf_prob > 0:  # draws nothing when off, so runs without it see the batches they saw
                self.low_shelves(stems, rng)
            gains = 10.0 ** (rng.uniform(self.gain_low_db, cfg.gain_db) / 20.0)
            stems *= gains[:, None, None].astype(np.float32)
            swap = rng.random(n_src) < cfg.swap_prob
            stems[swap] = stems[swap][:, ::-1]
            mixture = stems.sum(axis=0)
        else:
            pool = self.by_source[source]
            if not pool:
                raise TrainingError(f"no song in the training sets knows the {self.sources[source]} stem")
            ds, e = self.songs[pool[int(rng.integers(len(pool)))]]
            start = self.random_start(e, rng)
            s = self.sources[source]
            mixture = self.mixture(ds, e, start, n)
            stems[source] = self.stem(ds, e, s, start, n)
            labels[source] = self.labels(ds, e, s, start // hop, n_frames)
            known[source] = True
            g = np.float32(10.0 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20.0))
            mixture = mixture * g
            stems *= g
            if rng.random() < cfg.swap_prob:
                mixture, stems = mixture[::-1].copy(), stems[:, ::-1].copy()
        # Keep the mixture's peak under full scale, as a real file would be.
        peak = float(np.abs(mixture).max())
        if peak > 1.0:
            mixture, stems = mixture / peak, stems / peak
        return mixture, stems, labels, known

    def low_shelves(self, stems: np.ndarray, rng: np.random.Generator) -> None:
        """Give each stem (S, 2, n), with probability low_shelf_prob, a random low shelf, in place."""
        cfg = self.cfg
        lo, hi = np.log(LOW_SHELF_HZ[0]), np.log(LOW_SHELF_HZ[1])
        for j in range(stems.shape[0]):
            on = rng.random() < cfg.low_shelf_prob
            f0, gain_db = float(np.exp(rng.uniform(lo, hi))), float(rng.uniform(-cfg.low_shelf_db, cfg.low_shelf_db))
            if not on or not stems[j].any():
                continue
            b, a = _biquad("lowshelf", f0, cfg.sample_rate, gain_db=gain_db)
            # start the filter settled on the excerpt's first sample: the excerpt is cut from inside a song
            zi = lfilter_zi(b, a)[None, :] * stems[j][:, :1]
            stems[j] = lfilter(b, a, stems[j], axis=-1, zi=zi)[0].astype(np.float32)

    def batch(self, step: int, source: Optional[int], shard: Optional[range] = None) -> Batch:
        """Step `step`'s batch, or the items `shard` of it (one rank's share; default all of them)."""
        shard = range(self.cfg.batch_size) if shard is None else shard
        items = [self.item(np.random.default_rng([self.cfg.seed, step, k]), source) for k in shard]
        return Batch(
            mixture=torch.from_numpy(np.stack([i[0] for i in items])),
            stems=torch.from_numpy(np.stack([i[1] for i in items])),
            activity=torch.from_numpy(np.stack([i[2] for i in items])),
            known=torch.from_numpy(np.stack([i[3] for i in items])),
            step=step, source=source,
        )


class FlySource(ExcerptSource):
    """Excerpts from songs written and rendered while training, next to (or instead of) rendered sets.

    A window of cfg.fly_songs songs slides one song every cfg.fly_steps_per_song steps; song i is
    composed from song_seed(cfg.fly_seed, i) and rendered in memory (in the data-loader worker), so
    batch k still depends only on (seed, k) and a resumed run renders the same songs.
    """

    def __init__(self, roots: Sequence[str], cfg: TrainConfig) -> None:
        super().__init__(roots, cfg, allow_empty=True)
        self.static = list(self.songs)
        self.cache: dict[int, LiveSong] = {}
        self.first: Optional[int] = None
        self._renderer: Any = None

    def window(self, step: int) -> range:
        first = step // max(1, self.cfg.fly_steps_per_song)
        return range(first, first + self.cfg.fly_songs)

    def live_song(self, i: int) -> LiveSong:
        if i not in self.cache:
            from training.datasets.make_data import SYNTH_SHARE, render_labelled_song, song_id, song_seed
            from training.synthesis import render

            if self._renderer is None:
                self._renderer = render.FluidRenderer(render.resolve_fonts(self.cfg.fly_fonts or None))
            rendered, lab = render_labelled_song(song_seed(self.cfg.fly_seed, i), self._renderer,
                                                 self.cfg.fly_max_song_s, synth_share=SYNTH_SHARE)
            audio = {s: np.ascontiguousarray(x, dtype=np.float32) for s, x in rendered.stems.items()}
            self.cache[i] = LiveSong(song_id(i), int(rendered.n_samples), tuple(s for s in self.sources if s in audio),
                                     tuple(self.sources), audio, lab)
        return self.cache[i]

    def slide(self, step: int) -> None:
        """Make the songs list the static songs plus the window of live songs for this step."""
        w = self.window(step)
        if self.first == w.start:
            return
        for i in [k for k in self.cache if k not in w]:
            del self.cache[i]
        live = [self.live_song(i) for i in w]
        self.songs = self.static + [(None, e) for e in live if e.n_samples > self.cfg.excerpt_samples]
        if not self.songs:
            raise TrainingError("the on-the-fly songs are shorter than one excerpt; raise fly_max_song_s")
        self._index()
        self.first = w.start

    def item(self, rng: np.random.Generator, source: Optional[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.first is None:
            self.slide(0)
        return super().item(rng, source)

    def batch(self, step: int, source: Optional[int], shard: Optional[range] = None) -> Batch:
        self.slide(step)
        return super().batch(step, source, shard)


def make_source(cfg: TrainConfig) -> ExcerptSource:
    """The training batches' source: rendered sets, plus songs rendered on the fly when fly_songs > 0."""
    if cfg.fly_songs > 0:
        return FlySource(cfg.train_sets, cfg)
    if not cfg.train_sets:
        raise TrainingError("no training data: give train_sets, or fly_songs > 0 to render songs while training")
    return ExcerptSource(cfg.train_sets, cfg)


def source_for_step(cfg: TrainConfig, step: int) -> Optional[int]:
    """None for simultaneous batches; the source in turn for interleaved ones."""
    if cfg.procedure == "simultaneous":
        return None
    return step % len(cfg.sources)


class BatchStream(IterableDataset):
    """Batches (or one rank's shares of them) for steps start, start+1, ..., each a pure function of the
    seed and the step."""

    def __init__(self, source: ExcerptSource, start_step: int, shard: Optional[range] = None) -> None:
        super().__init__()
        self.source = source
        self.start_step = start_step
        self.shard = shard

    def __iter__(self) -> Iterator[Batch]:
        step = self.start_step
        while True:
            yield self.source.batch(step, source_for_step(self.source.cfg, step), self.shard)
            step += 1


def collate_identity(batch: Batch) -> Batch:
    return batch


def estimate_source_energy(source: ExcerptSource, n_items: int = 64, seed: int = 12345) -> np.ndarray:
    """Mean energy (mean square) of each source over random excerpts of the training sets: (S,)."""
    rng = np.random.default_rng(seed)
    sums = np.zeros(len(source.sources))
    counts = np.zeros(len(source.sources))
    for k in range(n_items):
        src = None if source.full else k % len(source.sources)
        _, stems, _, known = source.item(rng, src)
        sums += np.where(known, (stems ** 2).mean(axis=(1, 2)), 0.0)
        counts += known
    return sums / np.maximum(counts, 1)
