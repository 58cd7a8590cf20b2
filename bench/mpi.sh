#!/usr/bin/env bash
# Data parallelism across processes (issue 12's benchmark): two processes under mpirun with one
# single-core PoCL `basic` device each, against one process with one such device, on
# 784,512,512,10 with batch 256 (Fashion-MNIST); the GPT of bench/gpt.sh too with `gpt`.
# Medians of three alternating runs; bytes sent between processes per step, measured beside
# predicted.
#   bench/mpi.sh [BUILD_DIR] [mlp|gpt|all] [STEPS]
set -euo pipefail
B="${1:-build}"
WHAT="${2:-mlp}"
STEPS="${3:-60}"
export POCL_DEVICES=basic
rate() { sed -n 's/.*(\([0-9.]*\) samples\/s).*/\1/p' <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
mpi() { mpirun --allow-run-as-root --oversubscribe -q "$@"; }

# bench LABEL ARGS...: one process, dp 1, against two processes, dp 2
bench() {
  local label="$1" one=() two=() out=""
  shift
  for _ in 1 2 3; do
    out=$("$B/clpar-train" "$@" --dp 1 --devices 0 --quiet)
    one+=("$(rate "$out")")
    out=$(mpi -np 2 "$B/clpar-train" "$@" --dp 2 --devices 0 --quiet)
    two+=("$(rate "$out")")
  done
  local a b
  a=$(median "${one[@]}")
  b=$(median "${two[@]}")
  echo "$label: 1 process ${a} samples/s, 2 processes ${b} samples/s: $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')x (runs: ${one[*]} / ${two[*]})"
  grep "between processes" <<<"$out" | sed 's/^/  /'
}

if [ "$WHAT" = mlp ] || [ "$WHAT" = all ]; then
  bench "MLP 784,512,512,10 batch 256" --model 784,512,512,10 --batch 256 --steps "$STEPS"
fi
if [ "$WHAT" = gpt ] || [ "$WHAT" = all ]; then
  f=/usr/share/games/fortunes/fortunes
  bench "GPT 4x4x256 ctx 128 batch 8" --data "text:$f" --model gpt:layers=4,heads=4,embd=256,ctx=128 \
    --batch 8 --steps "$((STEPS / 6 > 3 ? STEPS / 6 : 3))"
fi
