#!/usr/bin/env bash
# Train (or resume) a run in the background-friendly way: tcmalloc when present, passive OpenMP.
# Usage: bash scripts/train.sh training/configs/iass_main.json [more stemlab train flags]
set -euo pipefail
cd "$(dirname "$0")/.."
config=$1; shift
export OMP_WAIT_POLICY=PASSIVE
# tcmalloc made training steps 1.65-1.8x faster on these machines (NOTES.md)
for lib in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4; do
  [ -e "$lib" ] && export LD_PRELOAD="$lib" && break
done
exec .venv/bin/stemlab train --config "$config" --resume "$@"
