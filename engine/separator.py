"""The engine's facade: `Separator.load(...).separate(audio, sample_rate, progress=..., cancel=...)`.

One chunked pass runs the network and renders every source's masked (ungated) stem with the
mixture's phase. Gating is then applied as a per-sample envelope (see gating.gate_envelope), so a
new threshold or filter length re-renders a stem in milliseconds without the network. With Wiener
refinement the sources interact, so the masks are kept and a second chunked pass renders them.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .audio import SILENCE_PEAK, Audio, resample, to_stereo
from .chunking import chunked_apply
from .device import cpu_has_fast_bf16, describe, pick_device
from .errors import AudioLoadError, SeparationError
from .gating import GatingSettings, GatingSpec, gates, settings_for
from .modelcard import ModelCard, load_model
from .progress import Progress, ProgressCallback, check_cancel
from .spectral import STFTConfig, istft, stft
from .stems import BLOCK, apply_song_gates, gated_block, gated_stems, resample_blocks, resample_stems
from .wiener import wiener_refine

# Bins above the model's band get the mean mask of its top bins, so stems stay full band.
HIGH_BAND_REFERENCE_BINS = 32


def apply_masks(masks: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """Masked estimates with the mixture's phase.

    masks: (n_sources, channels, max_bin, n_frames) real; spec: (channels, n_bins, n_frames) complex.
    Returns (n_sources, channels, n_bins, n_frames) complex. Bins above the model's band take the
    mean mask of its top bins, so stems stay full band. Multiplies real views: a real mask times a
    complex spectrogram would first be promoted to a complex copy.
    """
    max_bin, n_bins = masks.shape[-2], spec.shape[-2]
    spec_r = torch.view_as_real(spec)  # (channels, n_bins, n_frames, 2)
    out = torch.empty((masks.shape[0],) + tuple(spec_r.shape), dtype=spec_r.dtype, device=spec.device)
    low = min(max_bin, n_bins)
    torch.mul(masks[:, :, :low, :, None], spec_r[None, :, :low], out=out[:, :, :low])
    if low < n_bins:
        high = masks[:, :, -HIGH_BAND_REFERENCE_BINS:].mean(dim=2, keepdim=True)
        torch.mul(high[..., None], spec_r[None, :, low:], out=out[:, :, low:])
    return torch.view_as_complex(out)


@dataclass
class SeparationResult:
    """Stems plus what is needed to re-gate them without the network.

    stems: (n_sources, 2, n_samples) gated stems at `sample_rate` (the song's own rate): float32, or
        float16 when the separation was asked to hold them compactly (stems_dtype; the app, for a long
        song), in which case full_stem and block_reader re-derive them in float32 from `ungated`.
    ungated: (n_sources, 2, n_samples) float32 masked stems before gating, or None when the
        separation was asked not to keep them (the CLI, to save memory).
    activity: (n_sources, n_frames) activity probabilities at `frame_rate`.
    masks: (n_sources, 2, max_bin, n_frames) float16 ungated masks, kept only for Wiener re-rendering.
    mixture: (2, n_model_samples) float32 stereo input at the model's rate (for Wiener re-rendering).
    """

    sources: list[str]
    sample_rate: int
    stems: np.ndarray
    activity: np.ndarray
    model_sample_rate: int
    stft_config: STFTConfig
    gating: GatingSpec
    ungated: Optional[np.ndarray] = None
    masks: Optional[np.ndarray] = None
    mixture: Optional[np.ndarray] = None
    wiener: bool = False
    device: str = "cpu"
    model_name: str = ""
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def frame_rate(self) -> float:
        return self.model_sample_rate / self.stft_config.hop_length

    @property
    def n_frames(self) -> int:
        return int(self.activity.shape[-1])

    @property
    def n_samples(self) -> int:
        return int(self.stems.shape[-1])

    def frame_times(self) -> np.ndarray:
        """Centre time in seconds of each activity frame."""
        return np.arange(self.n_frames) / self.frame_rate

    def stem(self, source: str) -> np.ndarray:
        return self.stems[self.sources.index(source)]

    @property
    def compact(self) -> bool:
        """True when `stems` is held in less than float32 and re-derived from `ungated` for export."""
        return self.stems.dtype != np.float32 and self.ungated is not None and not self.wiener

    def full_stem(self, source: str) -> np.ndarray:
        """The gated stem (2, n_samples) in float32, for export: `stems`' own row when it is float32, else
        re-derived from the ungated stem and the current gating in the blocks of apply_gates, so it is the
        float32 stem bit for bit."""
        i = self.sources.index(source)
        if not self.compact:
            return np.asarray(self.stems[i], np.float32)
        assert self.ungated is not None
        out = gated_stems(self.ungated, self.gates(), [i], self.stft_config, self.model_sample_rate,
                          self.sample_rate)[0]
        release_pages(self.ungated)
        return out

    def block_reader(self) -> Optional[Callable[[int, int, int], np.ndarray]]:
        """For compact stems, read(i, start, stop) -> stem i's gated samples [start, stop) in float32 at the
        current gating (an offline remix in full precision); None when `stems` is float32 already."""
        if not self.compact:
            return None
        ungated, gate = self.ungated, self.gates()
        assert ungated is not None

        def read(i: int, start: int, stop: int) -> np.ndarray:
            return gated_block(ungated, gate, i, start, stop, self.stft_config, self.model_sample_rate,
                               self.sample_rate)

        return read

    def gates(self, gating: Optional[GatingSpec] = None) -> np.ndarray:
        """(n_sources, n_frames) gates for `gating` (default: the current setting)."""
        return gates(self.activity, self.sources, self.gating if gating is None else gating)

    def apply_gates(self, stems: np.ndarray, gate: np.ndarray) -> None:
        """Multiply stems (k, 2, n_samples) at the song's rate in place by gate (k, n_frames)'s envelope
        (the one gating step the streaming export takes too: engine.stems)."""
        apply_song_gates(stems, gate, self.stft_config, self.model_sample_rate, self.sample_rate)

    def regate(self, gating: GatingSpec, sources: Optional[Sequence[str]] = None, wiener: Optional[bool] = None,
               progress: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None) -> np.ndarray:
        """Re-render the stems of `sources` (default all) with new gating, without the network.

        Updates `stems` and `gating` in place once the whole render finished (a cancel leaves the
        result as it was) and returns the new stems (len(sources), 2, n_samples).
        """
        names = list(self.sources) if sources is None else list(sources)
        idx = [self.sources.index(s) for s in names]
        use_wiener = self.wiener if wiener is None else wiener
        t0 = time.perf_counter()
        gate = self.gates(gating)
        if use_wiener:
            if self.masks is None or self.mixture is None:
                raise SeparationError("This separation did not keep its masks; separate again with Wiener on.")
            new = render_wiener(self.mixture, self.masks, gate, self.stft_config, idx, progress=progress,
                                cancel=cancel)
            new = resample_stems(new, self.model_sample_rate, self.sample_rate, self.n_samples)
        else:
            if self.ungated is None:
                raise SeparationError("This separation did not keep its ungated stems, so it cannot be re-gated.")
            if self.stems.dtype != np.float32:  # compact stems: gated a block at a time, no float32 copy
                ungated = self.ungated
                new = gated_stems(ungated, gate, idx, self.stft_config, self.model_sample_rate,
                                  self.sample_rate, self.stems.dtype, after_stem=lambda: release_pages(ungated))
            else:
                new = self.ungated[idx]  # fancy indexing: a copy, gated in place below
                release_pages(self.ungated)
                self.apply_gates(new, gate[idx])
        self.stems[idx] = new
        if sources is None or set(names) == set(self.sources):
            self.gating = gating
        else:  # the others keep the gating they were rendered with: `gating` says what `stems` hold (full_stem)
            merged = {s: settings_for(self.gating, s) for s in self.sources}
            merged.update({s: settings_for(gating, s) for s in names})
            self.gating = merged
        self.wiener = use_wiener
        self.timings["last_regate_s"] = time.perf_counter() - t0
        return new


def render_wiener(mixture: np.ndarray, masks: np.ndarray, gate: np.ndarray, config: STFTConfig,
                  source_index: Sequence[int], *, device: Union[str, torch.device] = "cpu",
                  chunk_frames: int = 512, overlap_frames: int = 32,
                  progress: Optional[ProgressCallback] = None,
                  cancel: Optional[threading.Event] = None) -> np.ndarray:
    """Gated, Wiener-refined stems from cached masks, through the one chunked path.

    mixture: (2, n_samples); masks: (n_sources, 2, max_bin, n_frames); gate: (n_sources, n_frames).
    Returns (len(source_index), 2, n_samples) float32.
    """
    hop = config.hop_length
    n_frames = masks.shape[-1]
    idx = list(source_index)

    def fn(piece: torch.Tensor, start: int) -> torch.Tensor:
        f0 = start // hop
        spec = stft(piece, config)  # (2, n_bins, chunk_frames + 1)
        t = spec.shape[-1]
        m = np.zeros(masks.shape[:3] + (t,), dtype=np.float32)
        g = np.zeros((masks.shape[0], t), dtype=np.float32)
        avail = max(0, min(t, n_frames - f0))
        m[..., :avail] = masks[..., f0:f0 + avail]
        g[:, :avail] = gate[:, f0:f0 + avail]
        if 0 < avail < t:  # frames past the song's end still overlap its last samples: hold the last frame
            m[..., avail:] = m[..., avail - 1:avail]
            g[:, avail:] = g[:, avail - 1:avail]
        mt = torch.from_numpy(m).to(piece.device) * torch.from_numpy(g).to(piece.device)[:, None, None, :]
        est = wiener_refine(apply_masks(mt, spec), spec)[idx]
        return istft(est, config, piece.shape[-1])

    (out,) = chunked_apply(mixture, fn, chunk_samples=chunk_frames * hop, overlap_samples=overlap_frames * hop,
                           device=device, progress=progress, cancel=cancel, stage="render")
    assert out is not None
    return out


class Separator:
    """A loaded model ready to separate songs; the one entry point for the GUI, the CLI and tests."""

    def __init__(self, net: nn.Module, card: ModelCard, device: Union[str, torch.device] = "auto",
                 precision: str = "auto", chunk_seconds: float = 12.0, overlap_seconds: float = 1.0,
                 channels_last: Optional[bool] = None) -> None:
        """net: the IASS U-Net, or any network mapping magnitudes (1, 2, max_bin, n_frames) to masks
        (1, S, 2, max_bin, n_frames) and activity logits (1, S, n_frames) or None (training's Open-Unmix
        baseline: no activity head, so every source counts as playing and gating passes it). The net is
        put in eval mode on `device`; channels_last (default: on a CPU) converts its weights, which a
        caller validating the model it trains sets as its training does."""
        self.card = card
        self.device = device if isinstance(device, torch.device) else pick_device(str(device))
        self.stft_config = STFTConfig(card.n_fft, card.hop_length)
        hop = card.hop_length
        # Chunks are whole multiples of the network's time unit so every chunk has one shape.
        unit = hop * 2 ** int(getattr(net, "depth", 0))
        self.chunk_samples = max(unit, int(round(chunk_seconds * card.sample_rate / unit)) * unit)
        overlap = max(hop, int(round(overlap_seconds * card.sample_rate / hop)) * hop)
        self.overlap_samples = min(self.chunk_samples // 2, overlap)
        if precision == "auto":
            fast = (self.device.type == "cpu" and cpu_has_fast_bf16()) or self.device.type == "cuda"
            precision = "bf16" if fast else "fp32"
        if precision not in ("fp32", "bf16"):
            raise SeparationError(f"precision must be auto, fp32 or bf16, not {precision!r}")
        self.precision = precision
        net = net.to(self.device).eval()
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net = net

    @classmethod
    def load(cls, model: Union[str, Path] = "bundled", device: str = "auto", precision: str = "auto",
             allow_untrained: bool = False, **kwargs: Any) -> "Separator":
        """Load a model card + weights ("bundled" = the model shipped in resources/)."""
        net, card = load_model(model, allow_untrained=allow_untrained)
        return cls(net, card, device=device, precision=precision, **kwargs)

    @property
    def sources(self) -> list[str]:
        return list(self.card.sources)

    @property
    def sample_rate(self) -> int:
        return self.card.sample_rate

    @property
    def device_description(self) -> str:
        return describe(self.device)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def _network(self, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mag: (2, max_bin, n_frames) -> masks (S, 2, max_bin, n_frames) float32, probabilities (S, n_frames)."""
        with self._autocast():
            x = mag[None].contiguous(memory_format=torch.channels_last) if self.channels_last else mag[None]
            masks, logits = self.net(x)
        if logits is None:
            return masks[0].float(), torch.ones(masks.shape[1], masks.shape[-1], device=masks.device)
        return masks[0].float(), torch.sigmoid(logits[0].float())

    def prepare(self, audio: Union[Audio, np.ndarray], sample_rate: Optional[int] = None
                ) -> tuple[np.ndarray, int, int, list[str]]:
        """Validate a song and bring it to the model: (mixture (2, n) at the model's rate, the song's
        rate, the song's length in samples, notes on what was done to it)."""
        notes: list[str] = []
        if isinstance(audio, Audio):
            samples, rate = audio.samples, audio.sample_rate
            notes.extend(audio.notes)
        else:
            if sample_rate is None:
                raise SeparationError("separate() needs the sample rate of a raw array")
            samples, rate = np.asarray(audio, dtype=np.float32), int(sample_rate)
            if samples.ndim == 1:
                samples = samples[None]
        if samples.ndim != 2 or samples.shape[-1] == 0:
            raise AudioLoadError("The audio is empty.")
        if not all_finite(samples):
            raise AudioLoadError("The audio holds NaN or infinite samples.")
        stereo = to_stereo(np.asarray(samples, dtype=np.float32), notes)
        mixture = resample(stereo, rate, self.sample_rate)
        if rate != self.sample_rate:
            notes.append(f"resampled from {rate} Hz to the model's {self.sample_rate} Hz and back")
        if is_silent(mixture):
            notes.append("the song is digital silence: every stem is silent and no instrument is active "
                         "(the network was not run)")
        return mixture, rate, stereo.shape[-1], notes

    def network_pass(self, mixture: np.ndarray, *, keep_masks: bool = False,
                     stem_sink: Optional[Callable[[np.ndarray, int], None]] = None,
                     progress: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None
                     ) -> tuple[Optional[np.ndarray], np.ndarray, Optional[np.ndarray]]:
        """The network over the whole song, chunk by chunk.

        mixture: (2, n) at the model's rate. Returns ungated stems (S, 2, n) (None when they went to
        stem_sink(values (S, 2, m), first_sample) instead, which may receive up to one hop past n),
        activity probabilities (S, n_frames), and, with keep_masks, masks (S, 2, max_bin, n_frames) float16.
        """
        config = self.stft_config
        hop = config.hop_length
        n_src, max_bin = len(self.sources), self.card.max_bin
        n_model = mixture.shape[-1]
        n_frames = config.n_frames(n_model)
        frames_per_chunk = self.chunk_samples // hop
        if is_silent(mixture):
            return self._silent_pass(n_model, n_frames, keep_masks, stem_sink, progress, cancel)

        def fn(piece: torch.Tensor, start: int) -> list[torch.Tensor]:
            spec = stft(piece, config)  # (2, n_bins, frames_per_chunk + 1)
            masks, prob = self._network(spec[:, :max_bin].abs())
            # One source at a time keeps the complex intermediates small (memory, not speed).
            stems = torch.stack([istft(apply_masks(masks[j:j + 1], spec)[0], config, piece.shape[-1])
                                 for j in range(n_src)])
            outs = [stems, prob[:, :frames_per_chunk]]
            if keep_masks:
                outs.append(masks[..., :frames_per_chunk].half())
            return outs

        # length: the frame-rate outputs must cover every STFT frame of the whole song.
        outs = chunked_apply(mixture, fn, chunk_samples=self.chunk_samples, overlap_samples=self.overlap_samples,
                             length=n_frames * hop, strides=[1, hop, hop] if keep_masks else [1, hop],
                             out_dtypes=[np.float32, np.float32, np.float16],
                             sinks=[stem_sink, None, None] if keep_masks else [stem_sink, None],
                             device=self.device, progress=progress, cancel=cancel, stage="separate")
        ungated = None if outs[0] is None else outs[0][..., :n_model]
        activity = outs[1]
        assert activity is not None
        return ungated, activity, (outs[2] if keep_masks else None)

    def _silent_pass(self, n_model: int, n_frames: int, keep_masks: bool,
                     stem_sink: Optional[Callable[[np.ndarray, int], None]], progress: Optional[ProgressCallback],
                     cancel: Optional[threading.Event]
                     ) -> tuple[Optional[np.ndarray], np.ndarray, Optional[np.ndarray]]:
        """network_pass for digital silence: silent stems and no activity, without the network (whose
        activity head would report whatever its biases say about an all-zero input)."""
        check_cancel(cancel)
        n_src = len(self.sources)
        activity = np.zeros((n_src, n_frames), np.float32)
        masks = np.zeros((n_src, 2, self.card.max_bin, n_frames), np.float16) if keep_masks else None
        ungated = None
        if stem_sink is None:
            ungated = np.zeros((n_src, 2, n_model), np.float32)
        else:
            block = np.zeros((n_src, 2, min(n_model, self.chunk_samples)), np.float32)
            for first in range(0, n_model, block.shape[-1]):
                stem_sink(block[..., :min(block.shape[-1], n_model - first)], first)
        if progress is not None:
            progress(Progress("separate", 1, 1, 0.0))
        return ungated, activity, masks

    def separate(self, audio: Union[Audio, np.ndarray], sample_rate: Optional[int] = None, *,
                 gating: GatingSpec = GatingSettings(), wiener: bool = False, keep_for_regate: bool = True,
                 keep_masks: bool = False, cache_dir: Optional[Union[str, Path]] = None,
                 stems_dtype: Any = np.float32, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[threading.Event] = None) -> SeparationResult:
        """Separate a song into the model's sources.

        audio: an Audio, or a (channels, n_samples) / (n_samples,) float array with sample_rate.
        keep_for_regate=False gates the stems in place and drops what re-gating needs (half the
        memory); with cache_dir, what re-gating needs is kept in an unlinked file there instead of in
        memory (a long song in the app), and without Wiener the network's stems stream straight into that
        file rather than into a song-sized array; stems_dtype (float16) holds the gated stems compactly when
        the ungated ones are kept and Wiener is off (export re-derives them in float32: full_stem);
        keep_masks keeps the masks without Wiener (validation scores them). Progress reports
        stage "separate" (and "render" with Wiener); cancel raises SeparationCancelled between chunks.
        """
        t0 = time.perf_counter()
        mixture, rate, n_song, notes = self.prepare(audio, sample_rate)
        t1 = time.perf_counter()
        compact = keep_for_regate and not wiener and np.dtype(stems_dtype) != np.float32
        if cache_dir is not None and keep_for_regate and not wiener:
            ungated, activity, masks = self._pass_to_disk(mixture, rate, n_song, cache_dir, keep_masks,
                                                          progress, cancel)
        else:
            model_stems, activity, masks = self.network_pass(mixture, keep_masks=wiener or keep_masks,
                                                              progress=progress, cancel=cancel)
            assert model_stems is not None
            ungated = resample_stems(model_stems, self.sample_rate, rate, n_song)
        t2 = time.perf_counter()
        result = SeparationResult(
            sources=self.sources, sample_rate=rate, stems=ungated, activity=activity,
            model_sample_rate=self.sample_rate, stft_config=self.stft_config, gating=gating, ungated=None,
            masks=masks if keep_for_regate else None, mixture=mixture if (wiener and keep_for_regate) else None,
            wiener=wiener, device=self.device_description, model_name=self.card.name, notes=notes)
        gate = result.gates()
        if wiener:
            assert masks is not None
            stems = render_wiener(mixture, masks, gate, self.stft_config, range(len(self.sources)),
                                  device=self.device, progress=progress, cancel=cancel)
            result.stems = resample_stems(stems, self.sample_rate, rate, n_song)
            if keep_for_regate:
                result.ungated = ungated if cache_dir is None else on_disk(ungated, cache_dir)
        elif keep_for_regate:
            result.ungated = ungated  # on disk already with cache_dir (_pass_to_disk)
            if compact or cache_dir is not None:  # gated a block at a time from the ungated copy
                result.stems = gated_stems(ungated, gate, range(len(self.sources)), self.stft_config,
                                           self.sample_rate, rate, stems_dtype,
                                           after_stem=lambda: release_pages(ungated))
            else:
                result.stems = ungated.copy()
                result.apply_gates(result.stems, gate)
        else:
            result.apply_gates(ungated, gate)  # in place: the CLI keeps one copy of the stems
        t3 = time.perf_counter()
        result.timings = {"prepare_s": t1 - t0, "network_s": t2 - t1, "gating_s": t3 - t2, "total_s": t3 - t0}
        return result


    def _pass_to_disk(self, mixture: np.ndarray, rate: int, n_song: int, folder: Union[str, Path], keep_masks: bool,
                      progress: Optional[ProgressCallback], cancel: Optional[threading.Event]
                      ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """network_pass with its ungated stems written straight into an unlinked file in `folder` (at the
        song's rate: resampled there from a second unlinked file when the rates differ), so no song-sized
        array of stems is ever held in memory. Returns the read-only mapping (S, 2, n_song) float32, the
        activity and the masks; the samples are those of the in-memory path, bit for bit (engine.stems)."""
        n_src, n_model = len(self.sources), mixture.shape[-1]
        with _unlinked_file(folder, (n_src, 2, n_model)) as (fd, model_map):
            def sink(values: np.ndarray, first: int) -> None:
                m = max(0, min(values.shape[-1], n_model - first))
                for j in range(n_src):
                    for c in range(2):
                        row = np.ascontiguousarray(values[j, c, :m], np.float32)
                        os.pwrite(fd, row.tobytes(), ((j * 2 + c) * n_model + first) * 4)

            _, activity, masks = self.network_pass(mixture, keep_masks=keep_masks, stem_sink=sink,
                                                   progress=progress, cancel=cancel)
            if rate == self.sample_rate and n_song == n_model:
                return model_map(), activity, masks
            source = model_map()
            with _unlinked_file(folder, (n_src, 2, n_song)) as (out_fd, song_map):
                for j in range(n_src):  # resample_stems' blocks, read from the file
                    pieces = (np.asarray(source[j, :, a:a + BLOCK]) for a in range(0, n_model, BLOCK))
                    pos = 0
                    for piece in resample_blocks(pieces, n_model, self.sample_rate, rate, n_song):
                        for c in range(2):
                            row = np.ascontiguousarray(piece[c], np.float32)
                            os.pwrite(out_fd, row.tobytes(), ((j * 2 + c) * n_song + pos) * 4)
                        pos += piece.shape[-1]
                        release_pages(source)
                return song_map(), activity, masks


@contextlib.contextmanager
def _unlinked_file(folder: Union[str, Path], shape: tuple[int, ...]
                   ) -> Iterator[tuple[int, Callable[[], np.ndarray]]]:
    """A float32 file of `shape` in `folder`, sized but unwritten and unlinked at once (no file outlives the
    process, a crash mid-pass included): yields its descriptor and a function that maps it read-only (the
    mapping keeps the data once the descriptor is closed on leaving)."""
    fd, name = tempfile.mkstemp(prefix=".stemlab-regate-", suffix=".f32", dir=str(folder))
    os.unlink(name)

    def mapping() -> np.ndarray:
        with open(fd, "rb", closefd=False) as fh:
            return np.memmap(fh, dtype=np.float32, mode="r", shape=shape)

    try:
        os.ftruncate(fd, int(np.prod(shape)) * 4)
        yield fd, mapping
    finally:
        os.close(fd)


def on_disk(array: np.ndarray, folder: Union[str, Path]) -> np.ndarray:
    """A read-only copy of `array` (n_sources, channels, n) mapped from a file in `folder` that is unlinked
    at once: its pages are clean file pages the system may drop and read back, not the process's own
    memory, and no file outlives the process (a crash included). Written a block at a time."""
    fd, name = tempfile.mkstemp(prefix=".stemlab-regate-", suffix=".f32", dir=str(folder))
    try:
        with os.fdopen(fd, "wb") as fh:
            n = array.shape[-1]
            for index in np.ndindex(*array.shape[:-1]):  # row by row: a view (of a longer buffer) is not copied whole
                row = array[index]
                for a in range(0, n, 1 << 20):
                    fh.write(np.ascontiguousarray(row[a:a + (1 << 20)], dtype=np.float32).tobytes())
        return np.memmap(name, dtype=np.float32, mode="r", shape=array.shape)
    finally:
        os.unlink(name)  # the mapping keeps the data; the name goes now


def release_pages(array: Optional[np.ndarray]) -> None:
    """Drop from this process's resident set the pages of an on_disk copy it has read: they stay in the
    system's page cache and are read back on the next touch, but a read of the whole copy (re-gating,
    pictures, a saved session) no longer adds its size to the process's resident memory. Anything
    other than an on_disk memmap is left alone."""
    mapping = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def all_finite(samples: np.ndarray, block: int = 1 << 20) -> bool:
    """np.isfinite(samples).all() a block at a time (no song-sized boolean temporary)."""
    return all(bool(np.isfinite(samples[..., a:a + block]).all()) for a in range(0, samples.shape[-1], block))


def is_silent(samples: np.ndarray) -> bool:
    """True for digital silence (peak below SILENCE_PEAK); no song-sized temporary is made."""
    return samples.size == 0 or max(float(samples.max()), -float(samples.min())) < SILENCE_PEAK


def describe_gating(spec: GatingSpec, sources: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-source gating settings as plain data (for separation.json and sessions)."""
    out = {}
    for s in sources:
        g = settings_for(spec, s)
        out[s] = {"mode": g.mode, "threshold": g.threshold, "median_frames": g.median_frames}
    return out
