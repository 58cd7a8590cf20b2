#!/usr/bin/env bash
# What clpar-devices --tune buys: tunes device 0 for a model in a fresh cache folder (PoCL's
# compiled kernels still shared), prints the tuning, then trains the same run with the
# default GEMM configuration and with the tuned one, alternating, twice each, and reports
# samples/s of each (best of two) and their ratio.
#   bench/tune.sh [BUILD_DIR] [mlp|gpt] [CANDIDATES] [STEPS]
# mlp and gpt: the runs of bench/workload.sh.
set -euo pipefail
B="${1:-build}"
WHAT="${2:-gpt}"
N="${3:-12}"
S="${4:-12}"
. "$(dirname "$0")/workload.sh"
mkdir -p "$tmp/default" "$tmp/tuned"
XDG_CACHE_HOME="$tmp/tuned" "$B/clpar-devices" --tune --devices 0 --model "$model" \
  --batch "$batch" --candidates "$N" | grep -v '^  *[0-9.]* ms  '
alternate 2 default tuned
