#!/usr/bin/env bash
# The README's quick start as a user runs it: `./run.sh train` (set-up, build, then 10 epochs
# of the default model on every device found, mesh chosen by the planner), timed whole and
# for its training alone (clpar-train's own "done: ... in S s" line).
#   bench/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s.%N)
./run.sh train | tee "$log"
end=$(date +%s.%N)
awk -v whole="$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" '
  /^done:/ { for (i = 1; i <= NF; i++) if ($i == "in") train = $(i + 1) }
  END {
    printf "quick start: %.0f s in all, %.0f s of it training (10 epochs)\n", whole, train
  }' "$log"
