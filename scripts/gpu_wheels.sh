#!/usr/bin/env bash
# Fetch, here, the wheels the GPU machine lacks (Python 3.12, x86-64) into .whl, which the device call
# carries and scripts/gpu_burst.sh installs there. Usage: bash scripts/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PIP=.venv/bin/pip
[ -x "$PIP" ] || PIP="python3 -m pip"
$PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "soundfile==0.14.0" "soxr==1.1.0" "cffi" "pycparser"
ls -l .whl
