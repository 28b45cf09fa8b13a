"""bench/leakage.py's low-band table: the excerpts land in their bins, and r is the correlation."""

from __future__ import annotations

import numpy as np

from bench.leakage import Excerpt, low_band_table


def test_the_low_band_table_bins_the_excerpts_and_names_the_worst() -> None:
    others = [-3.0, 2.0, 6.0, 10.0, 12.0]
    sdrs = [6.0, 4.0, 1.0, -4.0, -6.0]
    excerpts = [Excerpt(f"song{i}", s, 1.0 + i, o) for i, (s, o) in enumerate(zip(sdrs, others))]
    text = low_band_table(excerpts, "bass", worst=2)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["<= 0 dB"].startswith("| <= 0 dB | 1 | 6.00 | +1.0 dB")
    assert rows["0 to 4 dB"].startswith("| 0 to 4 dB | 1 | 4.00")
    assert rows["> 8 dB"].startswith("| > 8 dB | 2 | -5.00 | +4.5 dB")
    assert rows["all"].startswith("| all | 5 | 0.20 | +3.0 dB")
    silenced = low_band_table([Excerpt("a", -1.0, -200.0, 3.0), Excerpt("b", 0.0, -150.0, 2.0),
                               Excerpt("c", 1.0, -2.0, 1.0)], "guitar")
    assert "| 0 to 4 dB | 3 | 0.00 | under -60 dB (gated off) |" in silenced
    assert f"r = {np.corrcoef(others, sdrs)[0, 1]:.2f}" in text
    assert "Worst excerpts: song4 (-6.0 dB" in text and "song3 (-4.0 dB" in text and "song2 (" not in text
