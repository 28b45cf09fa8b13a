"""Separation speed and memory: IASS (default size) against Open-Unmix's model class, same run.

Each case runs in its own process so peak memory is its own. Random weights: speed does not
depend on them. Usage: python bench/speed.py [--seconds 240] [--long 600] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, peak_rss_mb, synthetic_song, write_section  # noqa: E402

SR = 44100


def iass_separator(precision: str):
    import torch

    from engine.model import IASSUNet
    from engine.modelcard import ModelCard
    from engine.separator import Separator

    torch.manual_seed(0)
    net = IASSUNet()
    card = ModelCard(name="iass-default-random", sources=list(net.sources), sample_rate=SR, n_fft=2048,
                     hop_length=512, max_bin=net.n_bins, architecture=net.architecture(), weights="-",
                     trained=False)
    return Separator(net, card, device="cpu", precision=precision), sum(p.numel() for p in net.parameters())


def run_case(case: str, seconds: float) -> dict:
    import torch

    base = peak_rss_mb()
    song = synthetic_song(seconds, SR)
    out: dict = {"case": case, "seconds": seconds}
    if case.startswith("iass"):
        precision = "fp32" if case.endswith("fp32") else "auto"
        sep, n_params = iass_separator(precision)
        keep = case.startswith("iass-app")
        sep.separate(song[:, :SR * 5], SR)  # warm-up: first-call allocations and kernel selection
        t0 = time.perf_counter()
        if keep:
            result = sep.separate(song, SR, keep_for_regate=True)
        else:  # the command line's path: streamed into WAV files
            import tempfile

            from engine.audio import Audio
            from engine.export import separate_to_folder

            with tempfile.TemporaryDirectory(dir=os.environ.get("STEMLAB_BENCH_TMP")) as tmp:
                separate_to_folder(sep, Audio(song, SR), Path(tmp))
        out["wall_s"] = time.perf_counter() - t0
        out["params_m"] = n_params / 1e6
        out["precision"] = sep.precision
        if keep:
            from engine.gating import GatingSettings

            times = []
            for thr in (0.3, 0.6, 0.45):
                t1 = time.perf_counter()
                result.regate(GatingSettings(threshold=thr))
                times.append(time.perf_counter() - t1)
            out["regate_all_s"] = min(times)
            t1 = time.perf_counter()
            result.regate(GatingSettings(threshold=0.2), sources=["drums"])
            out["regate_one_s"] = time.perf_counter() - t1
    else:
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # openunmix only imports it
        from openunmix.model import OpenUnmix
        from openunmix.model import Separator as UMXSeparator

        niter = int(case.split("niter")[1])
        torch.manual_seed(0)
        targets = {t: OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=512, max_bin=1487)
                   for t in ("vocals", "drums", "bass", "other")}
        umx = UMXSeparator(targets, niter=niter, sample_rate=SR, n_fft=4096, n_hop=1024).eval()
        umx.freeze()
        out["params_m"] = sum(p.numel() for p in umx.parameters()) / 1e6
        x = torch.from_numpy(song)[None]
        with torch.inference_mode():
            umx(x[..., :SR * 5])
            t0 = time.perf_counter()
            umx(x)
        out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    out["baseline_rss_mb"] = base
    return out


def spawn(case: str, seconds: float) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    res = subprocess.run([sys.executable, __file__, "--one", case, "--seconds", str(seconds)],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"case": case, "seconds": seconds, "error": res.stderr.strip().splitlines()[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--seconds", type=float, default=240.0)
    ap.add_argument("--long", type=float, default=600.0)
    ap.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_case(args.one, args.seconds)))
        return
    cases = [("iass-cli", args.seconds), ("iass-cli-fp32", args.seconds), ("umx-niter0", args.seconds),
             ("umx-niter1", args.seconds), ("iass-app", args.seconds), ("iass-cli", args.long)]
    rows = []
    for case, secs in cases:
        r = spawn(case, secs)
        rows.append(r)
        print(json.dumps(r), flush=True)
    lines = [
        f"Song: synthetic stereo 44.1 kHz. Machine: {machine()}. Random weights (speed does not depend on them).",
        "Each row is its own process; peak memory is that process's peak resident set (VmHWM), imports included.",
        "",
        "| case | song | params | wall time | x real time | peak memory | re-gate all stems | re-gate one stem |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "iass-cli": "IASS, CLI path (streamed to WAV files)",
        "iass-cli-fp32": "IASS, CLI path, fp32 forced",
        "iass-app": "IASS, app path (keeps ungated stems for re-gating)",
        "umx-niter0": "Open-Unmix model class, 4 targets, no Wiener",
        "umx-niter1": "Open-Unmix model class, 4 targets, 1 Wiener iteration (its default)",
    }
    for r in rows:
        if "error" in r:
            lines.append(f"| {names.get(r['case'], r['case'])} | {r['seconds'] / 60:.0f} min | | failed: {r['error']} | | | | |")
            continue
        label = names.get(r["case"], r["case"]) + (f" ({r['precision']})" if "precision" in r else "")
        regate_all = f"{r['regate_all_s'] * 1000:.0f} ms" if "regate_all_s" in r else ""
        regate_one = f"{r['regate_one_s'] * 1000:.0f} ms" if "regate_one_s" in r else ""
        lines.append(f"| {label} | {r['seconds'] / 60:.0f} min | {r['params_m']:.1f} M | {r['wall_s']:.1f} s | "
                     f"{r['seconds'] / r['wall_s']:.1f}x | {r['peak_rss_mb']:.0f} MB | {regate_all} | {regate_one} |")
    lines += ["", f"Command: `python bench/speed.py --seconds {args.seconds:.0f} --long {args.long:.0f} --write`"]
    lines += ["", "Targets (issue 2): a 4-minute song in under 20 s and faster than Open-Unmix; peak memory under "
              "2 GB for a 10-minute song; re-gating a 4-minute song under 1 s."]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("speed", "## Separation speed and memory (issue 2)\n\n" + table)


if __name__ == "__main__":
    main()
