#!/usr/bin/env bash
# Trains, or continues, one run on a GPU within a wall-clock budget, and leaves the run folder
# ready to bring back: its latest checkpoint, log.jsonl, best.safetensors and, once the schedule
# ends, final.safetensors. Meant for a leased or pre-emptible GPU machine; the run continues
# anywhere afterwards (`bisenet train --resume`, on any backend).
#
#   scripts/gpu-train.sh MINUTES RUN_DIR [bisenet train options, without --out]
#
# A run folder with a checkpoint resumes with its options until it is done or the budget ends
# (`--time-limit`). A new run without --iters is sized to the budget: it trains for
# $CALIBRATE_MINUTES inside its warm-up (where the learning rate does not depend on the
# schedule's length), the speed measured there sets --iters so that the schedule ends inside
# the budget, and it resumes with that --iters: the same run as `bisenet train ... --iters N`
# from the start (the data order and augmentation depend only on seed and iteration).
#
# Environment: BISENET, the binary (default target/release/bisenet, built with
# `--features wgpu`); BACKEND (default wgpu); CALIBRATE_MINUTES (default 1); RESERVE, the share
# of the budget kept for validation and checkpoints (default 0.15).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,18p' "$0" >&2
  exit 2
fi
minutes=$1 run=$2
shift 2
bisenet=${BISENET:-target/release/bisenet}
backend=${BACKEND:-wgpu}
calibrate=${CALIBRATE_MINUTES:-1}
reserve=${RESERVE:-0.15}
start=$(date +%s)
[[ -x $bisenet ]] || { echo "gpu-train: no binary at $bisenet: build it with cargo build --release --features wgpu, or set BISENET" >&2; exit 1; }

left_minutes() { python3 -c "import time; print(max(0.1, $minutes - (time.time() - $start) / 60))"; }
train() { "$bisenet" train --backend "$backend" --out "$run" "$@"; }

if [[ -f $run/last.json ]]; then
  train --resume --time-limit "$(left_minutes)" "$@"
elif [[ " $* " == *" --iters "* || " $* " == *" --epochs "* ]]; then
  train --time-limit "$(left_minutes)" "$@"
else
  # A schedule far longer than the budget: only its warm-up runs here.
  train --iters 1000000 --time-limit "$calibrate" "$@"
  iters=$(python3 - "$run/log.jsonl" "$(left_minutes)" "$reserve" <<'EOF'
import json, sys
log, left, reserve = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
steps = [json.loads(line) for line in open(log) if '"loss"' in line]
# The second half of the calibration: the first steps compile kernels.
half = steps[len(steps) // 2:]
if len(half) < 2:
    sys.exit(f"gpu-train: only {len(steps)} steps ran in the calibration; give it more minutes")
rate = (half[-1]["iteration"] - half[0]["iteration"]) / (half[-1]["time"] - half[0]["time"])
print(steps[-1]["iteration"] + int(rate * left * 60 * (1 - reserve)))
print(f"gpu-train: {rate:.2f} it/s measured; --iters set to fit {left:.1f} more minutes", file=sys.stderr)
EOF
  )
  train --resume --iters "$iters" --time-limit "$(left_minutes)" "$@"
fi
