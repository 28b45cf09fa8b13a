"""Writing a separation to disk: one file per stem, activity.csv and separation.json, each atomically."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .audio import write_audio, write_text_atomic
from .errors import AudioWriteError
from .progress import Progress, ProgressCallback, check_cancel
from .separator import SeparationResult, describe_gating


def activity_csv(result: SeparationResult) -> str:
    """Per frame: time in seconds and each source's activity probability."""
    buf = io.StringIO()
    buf.write("time_s," + ",".join(result.sources) + "\n")
    table = np.concatenate([result.frame_times()[:, None], result.activity.T], axis=1)
    np.savetxt(buf, table, fmt=["%.4f"] + ["%.4f"] * len(result.sources), delimiter=",")
    return buf.getvalue()


def export_separation(result: SeparationResult, out_dir: Path, *, fmt: str = "wav", subtype: Optional[str] = None,
                      sources: Optional[Sequence[str]] = None, info: Optional[dict[str, Any]] = None,
                      progress: Optional[ProgressCallback] = None,
                      cancel: Optional[threading.Event] = None) -> list[Path]:
    """Write `<source>.<fmt>` for each source, activity.csv and separation.json into out_dir.

    Returns the paths written. Each file is atomic; a failure raises AudioWriteError.
    """
    if fmt not in ("wav", "flac"):
        raise AudioWriteError(f"Unknown output format {fmt!r}: use wav or flac.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioWriteError(f"{out_dir}: cannot create the output folder ({exc.strerror}).") from exc
    names = list(result.sources) if sources is None else list(sources)
    written: list[Path] = []
    for k, name in enumerate(names):
        check_cancel(cancel)
        written.append(write_audio(out_dir / f"{name}.{fmt}", result.stem(name), result.sample_rate, subtype))
        if progress is not None:
            progress(Progress("export", k + 1, len(names) + 2))
    written.append(write_text_atomic(out_dir / "activity.csv", activity_csv(result)))
    meta = {
        "model": result.model_name,
        "sources": result.sources,
        "sample_rate": result.sample_rate,
        "model_sample_rate": result.model_sample_rate,
        "duration_s": round(result.n_samples / result.sample_rate, 3),
        "n_fft": result.stft_config.n_fft,
        "hop_length": result.stft_config.hop_length,
        "frame_rate": result.frame_rate,
        "gating": describe_gating(result.gating, result.sources),
        "wiener": result.wiener,
        "device": result.device,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "notes": result.notes,
        "files": [p.name for p in written],
    }
    meta.update(info or {})
    written.append(write_text_atomic(out_dir / "separation.json", json.dumps(meta, indent=2) + "\n"))
    if progress is not None:
        progress(Progress("export", len(names) + 2, len(names) + 2))
    return written
