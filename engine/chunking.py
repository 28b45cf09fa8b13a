"""The one chunked overlap-add path every long-signal computation in StemLab goes through.

Fixed-size chunks with sin^2 cross-fades, the running sums kept on the host (numpy), the work done
on the model's device. A chunk function may return several outputs at different rates (stems at
the sample rate, activity at the frame rate): each is overlap-added with the same window sampled at
its own stride, so memory stays bounded by the chunk size plus the outputs themselves.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

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


def chunked_apply(
    audio: np.ndarray,
    fn: ChunkFn,
    *,
    chunk_samples: int,
    overlap_samples: int,
    strides: Union[int, Sequence[int]] = 1,
    out_dtypes: Union[type, Sequence[type]] = np.float32,
    device: Union[torch.device, str] = "cpu",
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[threading.Event] = None,
    stage: str = "separate",
) -> list[np.ndarray]:
    """Apply `fn` to overlapping fixed-size chunks of `audio` and overlap-add its outputs.

    audio: (channels, n_samples) float32 on the host. fn returns one tensor per entry of `strides`,
    output k shaped (..., chunk_samples // strides[k]). Returns a list with output k shaped
    (..., ceil(n_samples / strides[k])) in out_dtypes[k]. A chunk past the end is zero-padded so
    fn always sees the same shape, short inputs included. Cancel is checked before every chunk.
    """
    stride_list = [strides] if isinstance(strides, int) else list(strides)
    dtype_list = list(out_dtypes) if isinstance(out_dtypes, (list, tuple)) else [out_dtypes] * len(stride_list)
    if any(chunk_samples % s or overlap_samples % s for s in stride_list):
        raise ValueError("chunk_samples and overlap_samples must be multiples of every stride")
    if not 0 <= overlap_samples < chunk_samples:
        raise ValueError("overlap must be non-negative and shorter than a chunk")
    n_samples = audio.shape[-1]
    starts = chunk_starts(n_samples, chunk_samples, overlap_samples)
    dev = torch.device(device)
    outs: list[Optional[np.ndarray]] = [None] * len(stride_list)
    weights = [np.zeros(-(-n_samples // s), dtype=np.float32) for s in stride_list]
    t0 = time.perf_counter()
    if progress is not None:
        progress(Progress(stage, 0, len(starts), 0.0))
    for k, start in enumerate(starts):
        check_cancel(cancel)
        piece = audio[:, start:start + chunk_samples]
        if piece.shape[-1] < chunk_samples:
            piece = np.pad(piece, ((0, 0), (0, chunk_samples - piece.shape[-1])))
        with torch.inference_mode():
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
            n_out = weights[j].shape[0]
            if outs[j] is None:
                outs[j] = np.zeros(res.shape[:-1] + (n_out,), dtype=dtype_list[j])
            o0 = start // stride
            n_keep = min(chunk_out, n_out - o0)
            w = fade_window(chunk_out, overlap_samples // stride, fade_in=k > 0,
                            fade_out=k < len(starts) - 1)[:n_keep]
            target = outs[j]
            assert target is not None
            target[..., o0:o0 + n_keep] += res[..., :n_keep] * w
            weights[j][o0:o0 + n_keep] += w
        if progress is not None:
            progress(Progress(stage, k + 1, len(starts), time.perf_counter() - t0))
    result: list[np.ndarray] = []
    for out, weight in zip(outs, weights):
        assert out is not None
        # Every output step must be covered by some chunk with a non-zero weight.
        assert float(weight.min()) > 0.0, "overlap-add window sum is zero somewhere"
        if float(np.abs(weight - 1.0).max()) > 1e-5:
            out /= weight.astype(out.dtype)
        result.append(out)
    return result
