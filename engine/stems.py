"""From the network's ungated stems at the model's rate to the stems a user gets at the song's rate: one
resampling step and one gating step, each done block by block in one fixed partition of the song, so the
in-memory path (Separator.separate, the app's re-gating) and the streaming path (`stemlab separate`
writing files) produce the same samples, bit for bit, at any sample rate.

Order: resample the ungated stems to the song's rate first, then gate them there with the gate envelope
read at the song's sample times. The app keeps ungated stems at the song's rate to re-gate them in
milliseconds; the command line, which streams, takes the same two steps in the same blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Optional

import numpy as np
import soxr

from .gating import gate_envelope
from .spectral import STFTConfig

BLOCK = 1 << 20  # samples per block, at either rate: the one partition both paths use


class BlockResampler:
    """soxr's streaming resampler for one stereo stem, fed blocks of (2, m) at from_rate; emits exactly
    n_out samples at to_rate over the whole stream (trimmed, or padded with zeros at the end)."""

    def __init__(self, from_rate: int, to_rate: int, n_out: int) -> None:
        self.n_out = n_out
        self.emitted = 0
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 2, dtype="float32",
                                                                             quality="HQ")

    def push(self, block: np.ndarray, last: bool) -> np.ndarray:
        """block: (2, m) float32 -> (2, k) float32, the next k output samples (the rest of them when last)."""
        if self._stream is None:
            out = block
        else:
            out = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=last).T
        out = out[:, : max(0, self.n_out - self.emitted)]
        if last and self.emitted + out.shape[-1] < self.n_out:
            out = np.pad(out, ((0, 0), (0, self.n_out - self.emitted - out.shape[-1])))
        self.emitted += out.shape[-1]
        return np.ascontiguousarray(out, dtype=np.float32)


def resample_blocks(blocks: Iterable[np.ndarray], n_in: int, from_rate: int, to_rate: int, n_out: int
                    ) -> Iterator[np.ndarray]:
    """(2, m) blocks covering n_in samples at from_rate, in order -> (2, k) blocks covering n_out at to_rate."""
    rs = BlockResampler(from_rate, to_rate, n_out)
    seen = 0
    for block in blocks:
        seen += block.shape[-1]
        out = rs.push(block, last=seen >= n_in)
        if out.shape[-1]:
            yield out
    if rs.emitted < n_out:  # an empty input: silence of the asked length
        yield np.zeros((2, n_out - rs.emitted), np.float32)


def resample_stems(stems: np.ndarray, from_rate: int, to_rate: int, n_samples: int) -> np.ndarray:
    """(k, 2, n) at from_rate -> (k, 2, n_samples) at to_rate, in BLOCK pieces as the streaming path."""
    n_in = stems.shape[-1]
    if from_rate == to_rate:
        if n_in >= n_samples:
            return stems[..., :n_samples]
        return np.pad(stems, ((0, 0), (0, 0), (0, n_samples - n_in)))
    out = np.empty(stems.shape[:2] + (n_samples,), np.float32)
    for i, stem in enumerate(stems):
        pos = 0
        pieces = (stem[:, a:a + BLOCK] for a in range(0, n_in, BLOCK))
        for piece in resample_blocks(pieces, n_in, from_rate, to_rate, n_samples):
            out[i, :, pos:pos + piece.shape[-1]] = piece
            pos += piece.shape[-1]
    return out


def song_gate_envelope(gate: np.ndarray, config: STFTConfig, model_rate: int, song_rate: int, n_song: int,
                       start: int, stop: int) -> np.ndarray:
    """The gate envelope (..., stop - start) of song samples [start, stop) at song_rate, for frame gates
    (..., n_frames) at the model's frame rate: the model-rate envelope, read linearly between samples."""
    if model_rate == song_rate:
        return gate_envelope(gate, config.hop_length, config.n_fft, n_song, start, stop)
    n_model = int(round(n_song * model_rate / song_rate))
    t = np.arange(start, stop, dtype=np.float64) * (model_rate / song_rate)
    lo = min(int(np.floor(t[0])) if len(t) else 0, max(0, n_model - 1))
    hi = min(n_model, int(np.floor(t[-1])) + 2) if len(t) else lo + 1
    hi = max(hi, lo + 1)
    env = gate_envelope(gate, config.hop_length, config.n_fft, n_model, lo, hi)
    flat = env.reshape(-1, env.shape[-1])
    grid = np.arange(lo, hi, dtype=np.float64)
    out = np.stack([np.interp(t, grid, row) for row in flat]).astype(np.float32)
    return out.reshape(env.shape[:-1] + (stop - start,))


def apply_song_gates(stems: np.ndarray, gate: np.ndarray, config: STFTConfig, model_rate: int,
                     song_rate: int) -> None:
    """Multiply stems (k, 2, n_song) at song_rate in place by the envelopes of gate (k, n_frames), one
    stem and one BLOCK at a time, exactly as gate_song_blocks does for a stream (no song-length temporary)."""
    n = stems.shape[-1]
    for i in range(stems.shape[0]):
        for a in range(0, n, BLOCK):
            b = min(n, a + BLOCK)
            stems[i, :, a:b] *= song_gate_envelope(gate[i], config, model_rate, song_rate, n, a, b)[None, :]


def gate_song_blocks(blocks: Iterable[np.ndarray], gate: np.ndarray, config: STFTConfig, model_rate: int,
                     song_rate: int, n_song: int) -> Iterator[np.ndarray]:
    """A stem's (2, m) blocks at song_rate covering n_song samples, in order, of any sizes -> the same
    samples gated by gate (n_frames,), re-cut into the BLOCK partition apply_song_gates uses."""
    pending: list[np.ndarray] = []
    held = 0
    pos = 0
    for block in blocks:
        pending.append(block)
        held += block.shape[-1]
        while held >= BLOCK or (held and pos + held >= n_song):
            joined = np.concatenate(pending, axis=-1) if len(pending) > 1 else pending[0]
            size = min(BLOCK, joined.shape[-1])
            piece = joined[:, :size] * song_gate_envelope(gate, config, model_rate, song_rate, n_song, pos,
                                                          pos + size)[None, :]
            yield piece.astype(np.float32, copy=False)
            rest = joined[:, size:]
            pending = [rest] if rest.shape[-1] else []
            held -= size
            pos += size


def gated_stems(ungated: np.ndarray, gate: np.ndarray, index: Sequence[int], config: STFTConfig, model_rate: int,
                song_rate: int, dtype: Any = np.float32, after_stem: Optional[Callable[[], None]] = None
                ) -> np.ndarray:
    """Stems `index` of ungated (n_sources, 2, n_song) gated by gate (n_sources, n_frames), written one stem
    and one BLOCK at a time into a new (len(index), 2, n_song) array of `dtype`. Each block is gated in
    float32 exactly as apply_song_gates does and only then stored, so a float16 result is the float32
    stems rounded once, and a float32 result equals apply_song_gates bit for bit. after_stem runs after
    each stem (the caller drops the pages of an on-disk ungated copy there)."""
    n = ungated.shape[-1]
    out = np.empty((len(index), 2, n), dtype)
    for j, i in enumerate(index):
        for a in range(0, n, BLOCK):
            b = min(n, a + BLOCK)
            env = song_gate_envelope(gate[i], config, model_rate, song_rate, n, a, b)[None, :]
            out[j, :, a:b] = np.asarray(ungated[i, :, a:b], np.float32) * env
        if after_stem is not None:
            after_stem()
    return out


def gated_block(ungated: np.ndarray, gate: np.ndarray, i: int, start: int, stop: int, config: STFTConfig,
                model_rate: int, song_rate: int) -> np.ndarray:
    """Samples [start, stop) of stem i gated, (2, stop - start) float32, from the ungated stems."""
    n = ungated.shape[-1]
    env = song_gate_envelope(gate[i], config, model_rate, song_rate, n, start, stop)[None, :]
    return np.asarray(ungated[i, :, start:stop], np.float32) * env
