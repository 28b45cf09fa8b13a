#!/usr/bin/env bash
# Sets everything up, then opens the demo song in the app; without a display, separates it on the
# command line into out/demo/. Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
# a display that no server answers counts as none (app/cli.py's display_problem decides, as `stemlab gui` does)
if .venv/bin/python -c "import sys; from app.cli import display_problem; sys.exit(1 if display_problem() else 0)"; then
  exec .venv/bin/stemlab gui resources/demo/demo.ogg
fi
echo "No display: separating the demo song on the command line."
exec .venv/bin/stemlab separate resources/demo/demo.ogg --out out/demo
