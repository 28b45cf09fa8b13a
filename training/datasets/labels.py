"""Activity labels per stem per STFT frame: from the notes (what was played) and from the rendered
stem's energy (what can be heard), at the model's frame rate (frame t centred on sample t * hop_length).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from engine.metrics import DEFAULT_CONFIG, ENERGY_THRESHOLD_DB, SILENCE_DB, frame_energy_db
from engine.spectral import STFTConfig

# Drum notes are written as short ticks; a hit sounds longer than that, so note labels hold it this long.
MIN_NOTE_S = {"drums": 0.15}


def note_activity(intervals: Iterable[tuple[float, float]], n_frames: int, sample_rate: int,
                  config: STFTConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Notes (start_s, end_s) -> (n_frames,) uint8: 1 where any note sounds at the frame centre.

    The frame nearest each onset is always active, so even a note shorter than a hop is labelled.
    """
    out = np.zeros(n_frames, dtype=np.uint8)
    hop = config.hop_length
    for start_s, end_s in intervals:
        s0 = start_s * sample_rate
        s1 = max(end_s * sample_rate, s0 + 1)
        f0 = int(np.ceil(s0 / hop))
        f1 = int(np.ceil(s1 / hop))  # first frame centred at or after the note end
        onset = round(s0 / hop)
        if onset < n_frames:
            out[max(onset, 0)] = 1
        if f1 > f0 and f0 < n_frames:
            out[max(f0, 0):min(f1, n_frames)] = 1
    return out


def song_labels(note_intervals: Mapping[str, Sequence[tuple[float, float]]], stems: Mapping[str, np.ndarray],
                sources: Sequence[str], n_samples: int, sample_rate: int,
                config: STFTConfig = DEFAULT_CONFIG, threshold_db: float = ENERGY_THRESHOLD_DB
                ) -> dict[str, np.ndarray]:
    """Both kinds of labels for a song.

    Returns note_activity, energy_activity: (n_sources, n_frames) uint8; energy_db: (n_sources, n_frames)
    float16; present: (n_sources,) uint8 (the stem has sound in this song).
    """
    n_frames = config.n_frames(n_samples)
    n_src = len(sources)
    notes = np.zeros((n_src, n_frames), dtype=np.uint8)
    energy = np.zeros((n_src, n_frames), dtype=np.uint8)
    edb = np.full((n_src, n_frames), SILENCE_DB, dtype=np.float32)
    present = np.zeros(n_src, dtype=np.uint8)
    for i, s in enumerate(sources):
        if s in note_intervals:
            least = MIN_NOTE_S.get(s, 0.0)
            iv = [(a, max(b, a + least)) for a, b in note_intervals[s]]
            notes[i] = note_activity(iv, n_frames, sample_rate, config)
        x: np.ndarray | None = stems.get(s)
        if x is not None:
            edb[i] = frame_energy_db(x, config)
            energy[i] = edb[i] > threshold_db
            present[i] = 1
    return {"note_activity": notes, "energy_activity": energy, "energy_db": edb.astype(np.float16),
            "present": present}
