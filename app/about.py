"""The About box's text: the model and its measured quality as one small table of rounded figures.

A model card's metrics are nested JSON (per-source SDR of several variants, activity scores, sample
counts, per-epoch lists); printed whole they made a dialog taller than the screen. This picks the
per-source figures worth reading, rounds them, and lists the rest only as a few rounded scalars.
"""

from __future__ import annotations

import html
import math
from typing import Any, Callable, Optional, Sequence

MAX_SCALAR_LINES = 6  # cards without per-source tables: at most this many "name: value" lines
MAX_NOTES_CHARS = 300


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _per_source(value: Any, sources: Sequence[str]) -> Optional[list[Optional[float]]]:
    """A {source: number} dict, or a list with one number per source, as a list in source order."""
    if isinstance(value, dict) and any(s in value for s in sources):
        return [_number(value.get(s)) for s in sources]
    if isinstance(value, list) and len(value) == len(sources) and any(_number(v) is not None for v in value):
        return [_number(v) for v in value]
    return None


def _activity(metrics: dict[str, Any], key: str) -> Callable[[Sequence[str]], Any]:
    return lambda sources: {s: _get(metrics, "activity", s, key) for s in sources}


# (column heading, unit, where the per-source values are, where their mean is)
def _columns(metrics: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    return [
        ("SDR", "dB", _get(metrics, "sdr", "gated", "per_source"), _get(metrics, "sdr", "gated", "mean")),
        (
            "SDR ungated",
            "dB",
            _get(metrics, "sdr", "ungated", "per_source"),
            _get(metrics, "sdr", "ungated", "mean"),
        ),
        (
            "SDR (validation)",
            "dB",
            _get(metrics, "validation", "val_sdr_gated"),
            _get(metrics, "validation", "val_sdr_gated_mean"),
        ),
        ("Activity F1", "", _activity(metrics, "f1"), None),
    ]


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def quality_html(metrics: Any, sources: Sequence[str]) -> str:
    """The card's metrics as a compact HTML table (rows: sources, then the mean), 2 decimals."""
    if not isinstance(metrics, dict) or not metrics:
        return "<p>The model card lists no measured quality.</p>"
    sources = list(sources)
    cols = []
    for title, unit, where, mean in _columns(metrics):
        values = _per_source(where(sources) if callable(where) else where, sources)
        if values is None or all(v is None for v in values):
            continue
        if title == "SDR (validation)" and any(c[0] == "SDR" for c in cols):
            continue  # the benchmark's figures supersede the validation set's
        m = _number(mean)
        if m is None:  # the card gives no mean: the plain mean over the sources
            known = [v for v in values if v is not None]
            m = sum(known) / len(known) if known else None
        cols.append((title, unit, values, m))
    out = []
    where_measured = []
    if isinstance(metrics.get("set"), str):
        where_measured.append(html.escape(metrics["set"]))
    n = _number(metrics.get("n_excerpts"))
    if n is not None:
        where_measured.append(f"{int(n)} excerpts")
    caption = f" ({', '.join(where_measured)})" if where_measured else ""
    if cols:
        head = "".join(
            f"<th align='right'>&nbsp;{html.escape(t)}{f' ({u})' if u else ''}</th>" for t, u, _, _ in cols
        )
        rows = []
        for i, s in enumerate(sources):
            cells = "".join(f"<td align='right'>{_fmt(v[i])}</td>" for _, _, v, _ in cols)
            rows.append(f"<tr><td>{html.escape(s)}</td>{cells}</tr>")
        if any(m is not None for *_, m in cols):
            cells = "".join(f"<td align='right'><b>{_fmt(m)}</b></td>" for *_, m in cols)
            rows.append(f"<tr><td><b>mean</b></td>{cells}</tr>")
        out.append(
            f"<p><b>Measured quality</b>{caption}:</p>"
            f"<table cellspacing='0' cellpadding='2'><tr><th align='left'>Source</th>{head}</tr>"
            + "".join(rows)
            + "</table>"
        )
        bounds = []
        for key, label in (("mixture", "the mix itself"), ("oracle_irm", "an ideal ratio mask")):
            m = _number(_get(metrics, "sdr", key, "mean"))
            if m is not None:
                bounds.append(f"{label} {m:.2f} dB")
        if bounds:
            out.append(f"<p>Mean SDR for comparison: {'; '.join(bounds)}.</p>")
        return "".join(out)
    # no per-source table: a few top-level figures, rounded
    lines = []
    for key, value in metrics.items():
        v = _number(value)
        if v is not None:
            lines.append(f"{html.escape(str(key))}: {v:.2f}")
        if len(lines) >= MAX_SCALAR_LINES:
            break
    if not lines:
        return "<p>The model card's metrics hold no figures to show here.</p>"
    return f"<p><b>Measured quality</b>{caption}:<br>" + "<br>".join(lines) + "</p>"


def about_html(card: Any = None, device: str = "", model_error: str = "") -> str:
    """The About box: what StemLab is, then the model (or why there is none) and its quality."""
    parts = [
        "<h3>StemLab</h3>",
        "<p>Instrument-activity-aware source separation: see, hear and reshape a song's instruments.</p>",
    ]
    if card is None:
        parts.append(f"<p><b>No model loaded.</b> {html.escape(model_error)}</p>")
        return "".join(parts)
    untrained = ", untrained" if not card.trained else ""
    parts.append(
        f"<p><b>Model:</b> {html.escape(card.name)} (version {html.escape(str(card.version))}{untrained})"
        f"<br><b>Sources:</b> {html.escape(', '.join(card.sources))}"
        f"<br><b>Runs on:</b> {html.escape(device)}"
        f"<br><b>Audio:</b> {card.sample_rate} Hz, n_fft {card.n_fft}, hop {card.hop_length}</p>"
    )
    parts.append(quality_html(card.metrics, card.sources))
    notes = str(card.notes or "").strip()
    if notes:
        if len(notes) > MAX_NOTES_CHARS:
            notes = notes[: MAX_NOTES_CHARS - 1].rstrip() + "…"
        parts.append(f"<p>{html.escape(notes)}</p>")
    return "".join(parts)
