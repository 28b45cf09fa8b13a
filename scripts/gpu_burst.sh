#!/usr/bin/env bash
# One command for a lent GPU machine (or, with --device cpu, a dry run here): resume the long run's
# committed state, train for a wall-clock budget on songs rendered there in code, evaluate on the carried
# set, time the engine on a 4-minute song, and write what to bring home into OUT (training/run/burst.py).
#   bash scripts/gpu_burst.sh OUT --minutes 8
#   bash scripts/gpu_burst.sh OUT --minutes 1 --device cpu --timing-s 30
# The GPU machine has python3 with torch, numpy, scipy and safetensors; soundfile and soxr travel as
# wheels in .whl (docs/TRAINING.md says how to fetch them) and are installed into /tmp/site.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: bash scripts/gpu_burst.sh OUT --minutes M [--device auto|cpu|cuda] [--workers N] [--batch-size B] [--fresh]" >&2
  exit 2
fi
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! "$PY" -c "import soundfile, soxr" 2>/dev/null; then
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "gpu_burst: this Python lacks soundfile and soxr; fetch their wheels first: bash scripts/gpu_wheels.sh" >&2
    exit 2
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
exec "$PY" -m training.run.burst run "$@"
