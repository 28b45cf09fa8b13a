"""SDR of the bundled model on the demo song, against its true stems (resources/demo/stems/).

    python bench/demo_song.py [--model CARD]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Separator, load_audio  # noqa: E402
from engine.metrics import sdr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="bundled")
    args = ap.parse_args()
    sep = Separator.load(args.model)
    result = sep.separate(load_audio(ROOT / "resources" / "demo" / "demo.ogg"))
    scores = {}
    for i, s in enumerate(sep.sources):
        ref = load_audio(ROOT / "resources" / "demo" / "stems" / f"{s}.ogg").samples
        n = min(ref.shape[-1], result.stems.shape[-1])
        scores[s] = sdr(ref[:, :n], result.stems[i][:, :n])
    print(f"{sep.card.name} on the demo song, gated, SDR in dB: "
          + ", ".join(f"{s} {v:.2f}" for s, v in scores.items()) + f"; mean {np.mean(list(scores.values())):.2f}")


if __name__ == "__main__":
    main()
