"""The one chunked overlap-add path every long-signal computation in StemLab goes through.

Fixed-size chunks with sin^2 cross-fades, the running sums kept on the host (numpy), the work done
on the model's device. A chunk function may return several outputs at different rates (stems at
the sample rate, activity at the frame rate): each is overlap-added with the same window sampled at
its own stride, so memory stays bounded by the chunk size plus the outputs themselves.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from .errors import SeparationError, is_out_of_memory
from .progress import Progress, ProgressCallback, check_cancel

# fn(chunk, start_sample) -> tensor(s) shaped (..., chunk_samples // stride); chunk is (channels, chunk_samples)
ChunkFn = Callable[[torch.Tensor, int], Union[torch.Tensor, Sequence[torch.Tensor]]]


def fade_window(length: int, fade: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """A chunk's weight: 1 in the middle, sin^2 ramps over `fade` steps at the ends it shares.

    A fade-out ramp and the next chunk's fade-in ramp sum to exactly one.
    """
    w = np.ones(length, dtype=np.float32)
    if fade > 0:
        ramp = (np.sin(0.5 * np.pi * (np.arange(fade, dtype=np.float64) + 0.5) / fade) ** 2).astype(np.float32)
        if fade_in:
            w[:fade] = ramp
        if fade_out:
            w[-fade:] = ramp[::-1]
    return w


def chunk_starts(n_samples: int, chunk_samples: int, overlap_samples: int) -> list[int]:
    """Start sample of every chunk: consecutive chunks share overlap_samples; the last reaches the end."""
    step = chunk_samples - overlap_samples
    return list(range(0, max(1, n_samples - overlap_samples), step)) or [0]


Sink = Callable[[np.ndarray, int], None]  # sink(values (..., m), first_step): a finished stretch


FINISH_BLOCK = 1 << 18  # output steps normalised at a time


class _Accumulator:
    """Overlap-adds one output; either into a whole-length array or, with a sink, through a
    chunk-sized rolling buffer that hands finished stretches on (memory independent of length)."""

    def __init__(self, n_out: int, dtype: type, sink: Optional[Sink]) -> None:
        self.n_out, self.dtype, self.sink = n_out, dtype, sink
        self.out: Optional[np.ndarray] = None
        self.weight = np.zeros(n_out if sink is None else 0, dtype=np.float32)
        self.p0 = 0  # sink mode: first step held in the rolling buffer

    def add(self, part: np.ndarray, w: np.ndarray, o0: int) -> None:
        n = part.shape[-1]
        if self.sink is None:
            if self.out is None:
                self.out = np.zeros(part.shape[:-1] + (self.n_out,), dtype=self.dtype)
            self.out[..., o0:o0 + n] += part
            self.weight[o0:o0 + n] += w
            return
        if self.out is None:
            self.out, self.weight, self.p0 = part.astype(self.dtype), w.copy(), o0
            return
        # Everything before o0 is final: no later chunk starts before this one.
        self._emit(o0 - self.p0)
        held = self.out.shape[-1]
        buf: np.ndarray = np.zeros(part.shape[:-1] + (n,), dtype=self.dtype)
        wbuf = np.zeros(n, dtype=np.float32)
        buf[..., :held] = self.out
        wbuf[:held] = self.weight
        buf += part
        wbuf += w
        self.out, self.weight, self.p0 = buf, wbuf, o0

    def _emit(self, m: int) -> None:
        assert self.out is not None and self.sink is not None
        if m <= 0:
            return
        values, weight = self.out[..., :m], self.weight[:m]
        assert float(weight.min()) > 0.0, "overlap-add window sum is zero somewhere"
        if float(np.abs(weight - 1.0).max()) > 1e-5:
            values = values / weight.astype(values.dtype)
        self.sink(values, self.p0)
        self.out, self.weight, self.p0 = self.out[..., m:], self.weight[m:], self.p0 + m

    def finish(self) -> Optional[np.ndarray]:
        assert self.out is not None
        if self.sink is not None:
            self._emit(self.out.shape[-1])
            return None
        # Every output step must be covered by some chunk with a non-zero weight.
        assert float(self.weight.min()) > 0.0, "overlap-add window sum is zero somewhere"
        # Block by block: song-length temporaries of the weight (|w - 1|, w cast) would add a few hundred
        # MB to a long song's peak, beside the song-length output.
        blocks = range(0, self.n_out, FINISH_BLOCK)
        if any(float(np.abs(self.weight[a:a + FINISH_BLOCK] - 1.0).max()) > 1e-5 for a in blocks):
            for a in blocks:
                self.out[..., a:a + FINISH_BLOCK] /= self.weight[a:a + FINISH_BLOCK].astype(self.out.dtype)
        return self.out


@contextlib.contextmanager
def out_of_memory_as_error(device: torch.device) -> Iterator[None]:
    """Torch's out-of-memory failures (GPU, or a CPU allocation) -> SeparationError with advice."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if is_out_of_memory(exc):
            raise SeparationError(_oom_message(device)) from exc
        raise


def _oom_message(device: torch.device) -> str:
    if device.type in ("cuda", "mps"):
        return (f"The {device.type.upper()} device ran out of memory while separating. Close other programs using it, "
                "or separate on the CPU (--device cpu).")
    return "Not enough memory to separate this song. Close other programs or try a shorter song."


def chunked_apply(
    audio: np.ndarray,
    fn: ChunkFn,
    *,
    chunk_samples: int,
    overlap_samples: int,
    strides: Union[int, Sequence[int]] = 1,
    out_dtypes: Union[type, Sequence[type]] = np.float32,
    sinks: Optional[Sequence[Optional[Sink]]] = None,
    device: Union[torch.device, str] = "cpu",
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[threading.Event] = None,
    stage: str = "separate",
    length: Optional[int] = None,
) -> list[Optional[np.ndarray]]:
    """Apply `fn` to overlapping fixed-size chunks of `audio` and overlap-add its outputs.

    audio: (channels, n_samples) float32 on the host. fn returns one tensor per entry of `strides`,
    output k shaped (..., chunk_samples // strides[k]). Returns a list with output k shaped
    (..., ceil(n_samples / strides[k])) in out_dtypes[k], or None for an output given a sink: its
    finished stretches go to sinks[k](values, first_step) in order instead. A chunk past the end is
    zero-padded so fn always sees the same shape, short inputs included. `length` (>= n_samples)
    treats the input as zero-padded to that many samples without copying it. Cancel is checked
    before every chunk.
    """
    stride_list = [strides] if isinstance(strides, int) else list(strides)
    dtype_list: list[type] = (list(out_dtypes) if isinstance(out_dtypes, (list, tuple))
                              else [out_dtypes] * len(stride_list))  # type: ignore[list-item]
    sink_list = list(sinks) if sinks is not None else [None] * len(stride_list)
    if any(chunk_samples % s or overlap_samples % s for s in stride_list):
        raise ValueError("chunk_samples and overlap_samples must be multiples of every stride")
    if not 0 <= overlap_samples < chunk_samples:
        raise ValueError("overlap must be non-negative and shorter than a chunk")
    n_samples = audio.shape[-1] if length is None else max(int(length), audio.shape[-1])
    starts = chunk_starts(n_samples, chunk_samples, overlap_samples)
    dev = torch.device(device)
    accs = [_Accumulator(-(-n_samples // s), d, k) for s, d, k in zip(stride_list, dtype_list, sink_list)]
    t0 = time.perf_counter()
    if progress is not None:
        progress(Progress(stage, 0, len(starts), 0.0))
    for k, start in enumerate(starts):
        check_cancel(cancel)
        piece = audio[:, start:start + chunk_samples]
        if piece.shape[-1] < chunk_samples:
            piece = np.pad(piece, ((0, 0), (0, chunk_samples - piece.shape[-1])))
        with torch.inference_mode(), out_of_memory_as_error(dev):
            results = fn(torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32)).to(dev), start)
            if isinstance(results, torch.Tensor):
                results = [results]
            arrays = [r.detach().cpu().numpy() for r in results]
        if len(arrays) != len(stride_list):
            raise ValueError(f"chunk function returned {len(arrays)} outputs, expected {len(stride_list)}")
        for j, (res, stride) in enumerate(zip(arrays, stride_list)):
            chunk_out = chunk_samples // stride
            if res.shape[-1] != chunk_out:
                raise ValueError(f"output {j} has {res.shape[-1]} steps per chunk, expected {chunk_out}")
            o0 = start // stride
            n_keep = min(chunk_out, accs[j].n_out - o0)
            w = fade_window(chunk_out, overlap_samples // stride, fade_in=k > 0,
                            fade_out=k < len(starts) - 1)[:n_keep]
            part = res[..., :n_keep]
            np.multiply(part, w, out=part)  # in place: no chunk-sized temporary per output
            accs[j].add(part, w, o0)
        if progress is not None:
            progress(Progress(stage, k + 1, len(starts), time.perf_counter() - t0))
    return [acc.finish() for acc in accs]
