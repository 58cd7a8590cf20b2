#!/usr/bin/env bash
# Scaling on two single-core PoCL devices (the `basic` driver: each device runs in the host
# thread that drives it; `pthread` devices of one process share one worker pool in PoCL 3.1,
# so they are measured too, for the record). For each strategy: throughput of two ranks over
# one device on the same model and batch, medians of three alternating runs, with the CPU time
# the hypervisor stole during each (bench/steal.sh).
#   bench/scaling.sh [BUILD_DIR] [dp|tp|pp|gpt|all]
# gpt: the GPT of bench/gpt.sh (4 layers, 4 heads, 256 features, context 128) on Debian's
# fortunes, --tp 2 and --pp 2 --micro-batches 8 against one device.
set -euo pipefail
B="${1:-build}"
WHAT="${2:-all}"
source "$(dirname "$0")/steal.sh"

rate() { sed -n 's/.*(\([0-9.]*\) samples\/s).*/\1/p' <<<"$1"; }
# a run that fails (PoCL 3.1 aborted some before the work-around in ops/gemm.c; see README) is
# retried, up to three times, and the retries are counted
retries=0
train() {
  local out
  for attempt in 1 2 3; do
    if out=$("$@" 2>&1); then
      printf '%s' "$out"
      return 0
    fi
    retries=$((retries + 1))
  done
  echo "failed three times: $*" >&2
  return 1
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# compare LABEL ENV-ASSIGNMENTS... -- ONE-DEVICE-ARGS... -- TWO-RANK-ARGS...
compare() {
  local label="$1"
  shift
  local envs=() one=() two=() a=() b=() out=""
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  while [ "$1" != "--" ]; do a+=("$1"); shift; done
  shift
  b=("$@")
  local t s1 s2 steals=()
  for i in 1 2 3; do
    t=$(cpu_ticks)
    o=$(train env "${envs[@]}" "$B/clpar-train" "${a[@]}" --quiet)
    s1=$(steal_since "$t") t=$(cpu_ticks)
    out=$(train env "${envs[@]}" "$B/clpar-train" "${b[@]}" --quiet)
    s2=$(steal_since "$t")
    one+=("$(rate "$o")")
    two+=("$(rate "$out")")
    steals+=("$s1/$s2%")
  done
  local m1 m2
  m1=$(median "${one[@]}")
  m2=$(median "${two[@]}")
  printf '%s\n  one device %.0f samples/s, two ranks %.0f samples/s: %sx (CPU stolen, one/two: %s)\n' \
    "$label" "$m1" "$m2" "$(ratio "$m2" "$m1")" "${steals[*]}"
  grep -E "hidden|tensor parallel|pipeline|stage" <<<"$out" | sed 's/^/  /' || true
  [ "$retries" -eq 0 ] || echo "  ($retries runs so far aborted by PoCL and were retried)"
}

if [ "$WHAT" = dp ] || [ "$WHAT" = all ]; then
  m=(--model 784,512,512,10 --batch 256 --steps 60)
  compare "dp 2, 784,512,512,10, batch 256 (basic devices)" "POCL_DEVICES=basic basic" -- "${m[@]}" --devices 0 -- "${m[@]}" --devices 0,1 --dp 2
  compare "dp 2, same (pthread devices, POCL_MAX_PTHREAD_COUNT=1)" "POCL_DEVICES=pthread pthread" POCL_MAX_PTHREAD_COUNT=1 -- "${m[@]}" --devices 0 -- "${m[@]}" --devices 0,1 --dp 2
fi
if [ "$WHAT" = tp ] || [ "$WHAT" = all ]; then
  m=(--model 784,2048,2048,10 --batch 128 --steps 10)
  compare "tp 2, 784,2048,2048,10, batch 128 (basic devices)" "POCL_DEVICES=basic basic" -- "${m[@]}" --devices 0 -- "${m[@]}" --devices 0,1 --tp 2
fi
if [ "$WHAT" = pp ] || [ "$WHAT" = all ]; then
  m=(--model 784,784,784,784,784,10 --batch 256 --steps 30)
  for s in 1f1b gpipe; do
    compare "pp 2 --micro-batches 8 --schedule $s, 784,784,784,784,784,10, batch 256 (basic devices)" "POCL_DEVICES=basic basic" -- "${m[@]}" --devices 0 -- "${m[@]}" --devices 0,1 --pp 2 --micro-batches 8 --schedule $s
  done
  compare "the same pipeline against one device accumulating the same 8 micro-batches" "POCL_DEVICES=basic basic" -- "${m[@]}" --devices 0 --accum 8 -- "${m[@]}" --devices 0,1 --pp 2 --micro-batches 8
fi
if [ "$WHAT" = gpt ] || [ "$WHAT" = all ]; then
  corpus=$(mktemp)
  # 400 KB of it, so that each run's evaluation of the held-out 10% stays short
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort |
    xargs cat 2>/dev/null | head -c 400000 >"$corpus" || true
  m=(--data "text:$corpus" --model gpt:layers=4,heads=4,embd=256,ctx=128 --batch 16 --steps 12)
  compare "GPT tp 2, 4 layers, 4 heads, 256 features, ctx 128, batch 16 (basic devices)" "POCL_DEVICES=basic basic" -- "${m[@]}" --devices 0 -- "${m[@]}" --devices 0,1 --tp 2
  compare "GPT pp 2 --micro-batches 8, same (basic devices)" "POCL_DEVICES=basic basic" -- "${m[@]}" --devices 0 -- "${m[@]}" --devices 0,1 --pp 2 --micro-batches 8
  rm -f "$corpus"
fi
