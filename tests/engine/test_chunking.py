import threading

import numpy as np
import pytest
import torch

from engine.chunking import chunk_starts, chunked_apply, fade_window
from engine.errors import SeparationCancelled, SeparationError
from engine.progress import Progress


@pytest.mark.parametrize("n", [1, 100, 4095, 4096, 4097, 10000, 50001])
def test_identity_through_chunker_returns_input(n: int) -> None:
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    (y,) = chunked_apply(x, lambda c, s: c, chunk_samples=4096, overlap_samples=512)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_frame_rate_output_with_stride() -> None:
    x = np.random.default_rng(0).standard_normal((2, 20480)).astype(np.float32)
    # fn returns the chunk's start-relative frame index plus the global offset: overlap-add must give i.
    def fn(chunk: torch.Tensor, start: int):
        frames = torch.arange(chunk.shape[-1] // 64, dtype=torch.float32) + start // 64
        return [chunk, frames[None]]
    y, idx = chunked_apply(x, fn, chunk_samples=2048, overlap_samples=256, strides=[1, 64])
    np.testing.assert_allclose(y, x, atol=1e-6)
    np.testing.assert_allclose(idx[0], np.arange(20480 // 64), atol=1e-3)


def test_fades_sum_to_one() -> None:
    w = fade_window(100, 20, True, True)
    # this chunk's fade-out and the next chunk's fade-in share the same samples
    np.testing.assert_allclose(w[-20:] + w[:20], 1.0, atol=1e-6)
    assert w[20:-20].min() == 1.0


def test_chunk_starts_cover_everything() -> None:
    for n in (1, 999, 1000, 1001, 5000):
        starts = chunk_starts(n, 1000, 100)
        assert starts[0] == 0 and starts[-1] + 1000 >= n


def test_progress_and_cancel() -> None:
    x = np.zeros((2, 10000), np.float32)
    seen: list[Progress] = []
    chunked_apply(x, lambda c, s: c, chunk_samples=1000, overlap_samples=100, progress=seen.append)
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == len(chunk_starts(10000, 1000, 100)) == 11
    cancel = threading.Event()

    def fn(c: torch.Tensor, s: int) -> torch.Tensor:
        if s > 2000:
            cancel.set()
        return c
    with pytest.raises(SeparationCancelled):
        chunked_apply(x, fn, chunk_samples=1000, overlap_samples=100, cancel=cancel)


def test_wrong_output_length_is_an_error() -> None:
    with pytest.raises(ValueError):
        chunked_apply(np.zeros((2, 3000), np.float32), lambda c, s: c[:, :10], chunk_samples=1000,
                      overlap_samples=100)


def test_failed_allocation_becomes_a_clear_error() -> None:
    def greedy(chunk: torch.Tensor, start: int) -> torch.Tensor:
        return chunk + torch.empty(2 ** 50, device=chunk.device)[: chunk.shape[-1]]  # a real 4-PB allocation

    with pytest.raises(SeparationError, match="Not enough memory"):
        chunked_apply(np.zeros((2, 3000), np.float32), greedy, chunk_samples=1000, overlap_samples=100)


def test_other_runtime_errors_pass_through() -> None:
    def broken(chunk: torch.Tensor, start: int) -> torch.Tensor:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        chunked_apply(np.zeros((2, 3000), np.float32), broken, chunk_samples=1000, overlap_samples=100)


@pytest.mark.parametrize("n", [100, 4096, 10000, 50001])
def test_sink_receives_the_same_output_in_order(n: int) -> None:
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    got: list[tuple[int, np.ndarray]] = []
    whole, none = chunked_apply(x, lambda c, s: [c * 2, c], chunk_samples=4096, overlap_samples=512, strides=[1, 1],
                                sinks=[None, lambda v, first: got.append((first, v.copy()))])
    assert none is None
    np.testing.assert_allclose(whole, 2 * x, atol=1e-5)
    firsts = [f for f, _ in got]
    assert firsts == sorted(firsts) and firsts[0] == 0
    streamed = np.concatenate([v for _, v in got], axis=-1)
    np.testing.assert_allclose(streamed, x, atol=1e-6)



def test_the_output_is_normalised_block_by_block_with_the_same_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """finish() divides out the window sums a block at a time (no song-length temporaries): the samples
    are those of one whole-array division, bit for bit, and still fn's output."""
    import engine.chunking

    n = 20000
    x = np.random.default_rng(1).standard_normal((2, n)).astype(np.float32)

    def fn(chunk: torch.Tensor, start: int) -> list[torch.Tensor]:
        frames = torch.arange(chunk.shape[-1] // 64, dtype=torch.float32) + start // 64
        return [chunk * 3, frames[None]]

    def run() -> list:
        return chunked_apply(x, fn, chunk_samples=2048, overlap_samples=256, strides=[1, 64])

    y, idx = run()
    monkeypatch.setattr(engine.chunking, "FINISH_BLOCK", 37)
    y37, idx37 = run()
    np.testing.assert_array_equal(y37, y)
    np.testing.assert_array_equal(idx37, idx)
    np.testing.assert_allclose(y37, 3 * x, atol=1e-5)
    np.testing.assert_allclose(idx37[0], np.arange(idx37.shape[-1]), atol=1e-3)
