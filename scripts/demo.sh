#!/usr/bin/env bash
# Sets everything up, then opens the demo song in the app; without a display, separates it on the
# command line into out/demo/. Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/stemlab gui resources/demo/demo.ogg
fi
echo "No display: separating the demo song on the command line."
exec .venv/bin/stemlab separate resources/demo/demo.ogg --out out/demo
