#!/usr/bin/env bash
# The team's long training run (iass-main), kept going across sessions.
#   nohup bash scripts/long_run.sh > logs/long_run.log 2>&1 &   # unpack if needed, train in segments
#   bash scripts/long_run.sh stop                                # SIGINT, wait, pack, append the log
# It trains at nice 10 in segments of SEGMENT steps (default 500) and keeps each segment's weight
# average as runs/iass-main/ema-STEP.pt for evaluation; a file logs/STOP ends it after the segment.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=training/configs/iass_main.json
RUN=runs/iass-main
STATE=resources/training/iass-main.resume.pt
LOG=resources/training/iass-main.log.jsonl
SEGMENT=${SEGMENT:-500}
PY=.venv/bin/python
mkdir -p logs

step_of() { "$PY" -c "import torch, sys; print(torch.load(sys.argv[1], map_location='cpu', weights_only=False)['step'])" "$1"; }

if [ "${1:-}" = stop ]; then
  touch logs/STOP
  pkill -INT -f "stemlab train --config $CONFIG" || true
  while pgrep -f "scripts/long_run.sh$" >/dev/null || pgrep -f "stemlab train --config $CONFIG" >/dev/null; do sleep 2; done
  rm -f logs/STOP
  "$PY" -m training.run.resume_pack pack "$RUN" "$STATE"
  # append this session's log lines: those past the last step the committed log holds
  "$PY" - "$RUN/log.jsonl" "$LOG" <<'PYEOF'
import json, sys
new, old = sys.argv[1], sys.argv[2]
last = max((json.loads(l).get("step", 0) for l in open(old) if l.strip()), default=0)
with open(old, "a") as out:
    for line in open(new):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", 0) > last:
            out.write(json.dumps(rec) + "\n")
PYEOF
  echo "long run: packed at step $(step_of "$STATE") into $STATE"
  exit 0
fi

[ -e "$RUN/checkpoint.pt" ] || "$PY" -m training.run.resume_pack unpack "$STATE" "$RUN"
rm -f logs/STOP
while [ ! -e logs/STOP ]; do
  step=$(step_of "$RUN/checkpoint.pt")
  target=$(( (step / SEGMENT + 1) * SEGMENT ))
  nice -n 10 bash scripts/train.sh "$CONFIG" --max-steps "$target" --quiet || break
  [ "$(step_of "$RUN/checkpoint.pt")" -ge "$target" ] || break   # stopped inside the segment
  [ -e "$RUN/ema.pt" ] && cp "$RUN/ema.pt" "$RUN/ema-$target.pt"
done
echo "long run: stopped at step $(step_of "$RUN/checkpoint.pt")"
