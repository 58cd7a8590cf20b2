#!/usr/bin/env bash
# Data parallelism across processes (issue 12's benchmark): two processes under mpirun with one
# single-core PoCL `basic` device each, against one process with one such device, on
# 784,512,512,10 with batch 256 (Fashion-MNIST); the GPT of bench/gpt.sh too with `gpt`.
# Medians of ROUNDS (3) alternating runs, of whole runs' rates and of each run's median step
# (from --log), and of each round's own ratio; bytes sent between processes per step,
# measured beside predicted. Processes
# on one host sum through shared memory; CLPAR_SHARED_MEMORY=off measures the messages that
# hosts would exchange. mlp-zero: the MLP with the two processes' replicas under --zero 1
# (each updates half of the parameters). With mlp, also the ceiling two processes could reach
# here: two independent runs of half the batch on the two cores at once.
#   bench/mpi.sh [BUILD_DIR] [mlp|mlp-zero|gpt|all] [STEPS] [ROUNDS]
set -euo pipefail
B="${1:-build}"
WHAT="${2:-mlp}"
STEPS="${3:-60}"
ROUNDS="${4:-3}"
source "$(dirname "$0")/steal.sh"
export POCL_DEVICES=basic
rate() { sed -n 's/.*(\([0-9.]*\) samples\/s).*/\1/p' <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
mpi() { mpirun --allow-run-as-root --oversubscribe -q "$@"; }

# The median of a --log file's per-step rates: the steady state, which one slow step (the
# first, or one the shared machine interrupts) does not move.
step_rate() { awk -F, 'NR > 1 { print $4 }' "$1" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# bench LABEL ARGS...: one process, dp 1, against two processes, dp 2 (with $TWO too), ROUNDS
# times each, alternating; each run's steal beside it, and the medians again over the pairs
# that no steal disturbed (bench/steal.sh)
TWO=()
bench() {
  local label="$1" one=() two=() sone=() stwo=() qone=() qtwo=() pairs=() out="" t s1 s2 r1 r2 q1 q2
  shift
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
  echo "$label:"
  for i in $(seq "$ROUNDS"); do
    t=$(cpu_ticks)
    out=$("$B/clpar-train" "$@" --dp 1 --devices 0 --quiet --log "$LOG")
    s1=$(steal_since "$t") r1=$(rate "$out") q1=$(step_rate "$LOG")
    t=$(cpu_ticks)
    out=$(mpi -np 2 "$B/clpar-train" "$@" --dp 2 "${TWO[@]}" --devices 0 --quiet --log "$LOG")
    s2=$(steal_since "$t") r2=$(rate "$out") q2=$(step_rate "$LOG")
    echo "  round $i: 1 process $r1 samples/s (median step $q1; steal $s1%), 2 processes $r2 (median step $q2; steal $s2%): $(ratio "$q1" "$q2")x"
    one+=("$r1") two+=("$r2") sone+=("$q1") stwo+=("$q2") pairs+=("$(ratio "$q1" "$q2")")
    if quiet "$s1" && quiet "$s2"; then qone+=("$q1") qtwo+=("$q2"); fi
  done
  local a b sa sb
  a=$(median "${one[@]}")
  b=$(median "${two[@]}")
  sa=$(median "${sone[@]}")
  sb=$(median "${stwo[@]}")
  echo "  whole runs: 1 process ${a} samples/s, 2 processes ${b} samples/s: $(ratio "$a" "$b")x"
  echo "  median step: 1 process ${sa} samples/s, 2 processes ${sb} samples/s: $(ratio "$sa" "$sb")x"
  # each round's two runs are minutes apart at most: their ratio is what drift moves least
  echo "  the rounds' own ratios (median steps): $(printf '%sx ' "${pairs[@]}")- median $(median "${pairs[@]}")x"
  if [ "${#qone[@]}" -gt 0 ]; then
    sa=$(median "${qone[@]}")
    sb=$(median "${qtwo[@]}")
    echo "  median step, the ${#qone[@]} rounds under ${STEAL_QUIET}% steal: $(ratio "$sa" "$sb")x ($sa against $sb samples/s)"
  else
    echo "  no round ran under ${STEAL_QUIET}% steal"
  fi
  grep "between processes" <<<"$out" | sed 's/^/  /'
}

# The ceiling of two processes on this machine: two independent runs of half the batch each,
# one on each core at once, summed, against one run of the whole batch alone (each a median
# step). No reduction, so what data parallelism cannot win back: the fixed costs of a step
# that half a batch does not halve, and what the two cores share (caches, memory). And the
# same two runs as if in step, each step taking the slower of their two: what waiting for
# each other every step costs on a machine whose cores slow down in turns (no reduction yet).
#   lockstep A.csv B.csv ROWS: samples/s of the median of the two runs' steps, each the slower
#   of the pair (as step_rate, a median step)
lockstep() {
  paste -d, "$1" "$2" | awk -F, -v rows="$3" 'NR > 1 {
    a = rows / $4; b = rows / $8; print 2 * rows / (a > b ? a : b) }' | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }'
}
ceiling() {
  local half=() lock=() ra rb r1 rl i
  for i in $(seq "$ROUNDS"); do
    taskset -c 0 "$B/clpar-train" "$@" --batch 128 --devices 0 --quiet --log "$LOG.a" >/dev/null &
    taskset -c 1 "$B/clpar-train" "$@" --batch 128 --devices 0 --quiet --log "$LOG.b" >/dev/null
    wait
    ra=$(step_rate "$LOG.a") rb=$(step_rate "$LOG.b")
    "$B/clpar-train" "$@" --batch 256 --devices 0 --quiet --log "$LOG" >/dev/null
    r1=$(step_rate "$LOG")
    half+=("$(awk -v a="$ra" -v b="$rb" -v c="$r1" 'BEGIN { printf "%.2f", (a + b) / c }')")
    rl=$(lockstep "$LOG.a" "$LOG.b" 128)
    lock+=("$(awk -v a="$rl" -v c="$r1" 'BEGIN { printf "%.2f", a / c }')")
    echo "  ceiling round $i: two half batches at once $ra + $rb samples/s, the whole batch alone $r1: ${half[-1]}x; in step $rl samples/s: ${lock[-1]}x"
  done
  echo "  the ceiling of two processes here: median $(median "${half[@]}")x; in step (each step the slower of the two, no reduction) $(median "${lock[@]}")x"
  rm -f "$LOG.a" "$LOG.b"
}

if [ "$WHAT" = mlp ] || [ "$WHAT" = all ]; then
  bench "MLP 784,512,512,10 batch 256" --model 784,512,512,10 --batch 256 --steps "$STEPS"
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    ceiling --model 784,512,512,10 --steps "$STEPS"
  fi
fi
if [ "$WHAT" = mlp-zero ] || [ "$WHAT" = all ]; then
  TWO=(--zero 1)
  bench "MLP 784,512,512,10 batch 256, dp 2 with --zero 1" --model 784,512,512,10 --batch 256 \
    --steps "$STEPS"
  TWO=()
fi
if [ "$WHAT" = gpt ] || [ "$WHAT" = all ]; then
  f=/usr/share/games/fortunes/fortunes
  bench "GPT 4x4x256 ctx 128 batch 8" --data "text:$f" --model gpt:layers=4,heads=4,embd=256,ctx=128 \
    --batch 8 --steps "$((STEPS / 6 > 3 ? STEPS / 6 : 3))"
fi
