#!/usr/bin/env bash
# tests/kill_random.sh with 100 trials (or TRIALS): SIGKILLs at random moments and in random
# checkpoint writes of a dp 2 x pp 2 run, each checkpoint whole and each resume bit-identical.
#   bench/kill_random.sh [BUILD_DIR] [TRIALS] [SEED]
set -uo pipefail
export CLPAR_BUILD_DIR="$(cd "${1:-build}" && pwd)"
export POCL_DEVICES="${POCL_DEVICES:-pthread pthread pthread pthread}" POCL_MAX_PTHREAD_COUNT=1
export KILL_TRIALS="${2:-100}" KILL_SEED="${3:-7}"
bash "$(dirname "$0")/../tests/kill_random.sh" 2>&1 | grep -v "Killed"
