#!/usr/bin/env bash
# Data-parallel scaling on two single-core PoCL devices: training throughput of --dp 2 over
# one such device, MLP 784,512,512,10, batch 256, Fashion-MNIST; and the fraction of the
# gradient reduction hidden behind backward. Runs alternate, three of each, medians reported.
#   bench/dp_scaling.sh [BUILD_DIR]
set -euo pipefail
B="${1:-build}"
STEPS="${STEPS:-100}"
common=(--model 784,512,512,10 --batch 256 --steps "$STEPS" --quiet)

rate() { sed -n 's/.*(\([0-9.]*\) samples\/s).*/\1/p' <<<"$1"; }
hidden() { sed -n 's/.*, \([0-9]*\)% hidden.*/\1/p' <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

run_pair() { # label, then environment assignments
  local label="$1"
  shift
  local one=() two=() hid=()
  for i in 1 2 3; do
    o=$(env "$@" "$B/clpar-train" "${common[@]}" --devices 0)
    t=$(env "$@" "$B/clpar-train" "${common[@]}" --devices 0,1 --dp 2)
    one+=("$(rate "$o")")
    two+=("$(rate "$t")")
    hid+=("$(hidden "$t")")
  done
  local m1 m2
  m1=$(median "${one[@]}")
  m2=$(median "${two[@]}")
  printf '%-44s 1 device %7.0f samples/s   dp 2 %7.0f samples/s   speed-up %.2fx   reduction hidden %s%%\n' \
    "$label" "$m1" "$m2" "$(awk -v a="$m2" -v b="$m1" 'BEGIN { print a / b }')" "$(median "${hid[@]}")"
}

run_pair "POCL_DEVICES='basic basic'" POCL_DEVICES="basic basic"
run_pair "POCL_DEVICES='pthread pthread' MAX_PTHREAD=1" POCL_DEVICES="pthread pthread" POCL_MAX_PTHREAD_COUNT=1
