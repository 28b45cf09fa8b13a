#!/usr/bin/env bash
# Sets up StemLab on a fresh Debian machine: system libraries, a virtual environment, the project.
# Idempotent: a second run only checks. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libsndfile1 libportaudio2                       # audio files, playback
  fluidsynth libfluidsynth3 fluid-soundfont-gm    # SoundFont synthesis for the training data
  timgm6mb-soundfont openttd-openmsx mma          # the public benchmark's font and songs; grooves
  espeak-ng sox                                   # the synthetic singer; audio checks
  xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1
  libdbus-1-3 libtcmalloc-minimal4
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # optional extra training fonts: installed when this Debian has them
  for extra in fluidr3mono-gm-soundfont musescore-general-soundfont opl3-soundfont avldrums.lv2-soundfont; do
    apt-cache show "$extra" >/dev/null 2>&1 && missing+=("$extra")
  done
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# openunmix and museval are checked as installed, not imported: their packages import torchaudio and
# ffmpeg-needing musdb, which StemLab stands in for at import time (training/run/models.py, training/evaluation/evaluate.py).
# the stemlab.commands entry points are checked too: an install from before they existed lacks them
if ! .venv/bin/python -c "import engine, app, training, torch, PySide6, matplotlib, librosa, importlib.metadata as m; [m.version(p) for p in ('openunmix', 'museval', 'pyworld')]; assert m.entry_points(group='stemlab.commands')" >/dev/null 2>&1; then
  .venv/bin/pip install -q --upgrade pip
  # The CPU build of torch first (a file on this disk here); pyproject accepts a range for GPU users.
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[app,training,dev]"
  # openunmix's own requirements pull a CUDA torchaudio; its model needs only torch (NOTES.md).
  .venv/bin/pip install -q --no-deps "openunmix==1.3.0"
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
