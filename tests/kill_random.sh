#!/usr/bin/env bash
# SIGKILLs at random moments of a run on a mesh of four ranks (dp 2 x pp 2) that checkpoints
# every step: half the trials after a random delay, half in the middle of a random write of a
# checkpoint file (tests/kill_shim.c). Each time the checkpoint on disk must be whole (or
# absent, when killed before the first commit), and resuming from it must end bit-identical
# to an uninterrupted run. KILL_TRIALS (default 10; bench/kill_random.sh runs 100) and
# KILL_SEED set the trials.
. "$(dirname "$0")/harness.sh"
RANDOM=${KILL_SEED:-7}
trials=${KILL_TRIALS:-10}
mesh=(--dp 2 --pp 2 --micro-batches 2 --devices 0,1,2,3)
run=(--data synthetic --model 10,16,12,5 --steps 40 --batch 32 "${mesh[@]}" --optim adam --quiet)

start=$(date +%s%N)
"$B/clpar-train" "${run[@]}" --checkpoint "$T/full-ck.safetensors" --checkpoint-every 1 \
  --save "$T/full.safetensors" >/dev/null 2>&1
check "the uninterrupted run trains" test $? -eq 0
ms=$((($(date +%s%N) - start) / 1000000))
killed=0 resumed=0 absent=0
for ((i = 1; i <= trials; i++)); do
  rm -f "$T"/ck.safetensors*
  if ((i % 2)); then
    delay=$((RANDOM % ms))
    "$B/clpar-train" "${run[@]}" --checkpoint "$T/ck.safetensors" --checkpoint-every 1 \
      >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v d=$delay 'BEGIN { printf "%.3f", d / 1000 }')"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    how="after ${delay} ms"
  else
    nth=$((1 + RANDOM % (40 * 25))) # some 25 writes per checkpoint
    (LD_PRELOAD="$B/tests/libclpar_kill_shim.so" CLPAR_TEST_KILL_AT_WRITE="$nth:ck.safetensors.tmp" \
      exec "$B/clpar-train" "${run[@]}" --checkpoint "$T/ck.safetensors" --checkpoint-every 1 \
      >/dev/null 2>&1)
    rc=$?
    how="in checkpoint write $nth"
  fi
  [ $rc -eq 137 ] && killed=$((killed + 1))
  if [ ! -e "$T/ck.safetensors" ]; then
    absent=$((absent + 1))
    continue
  fi
  check "killed $how: the checkpoint is whole" whole "$T/ck.safetensors"
  rm -f "$T/resumed.safetensors"
  "$B/clpar-train" --resume "$T/ck.safetensors" "${mesh[@]}" --save "$T/resumed.safetensors" \
    --quiet >/dev/null 2>&1
  check "killed $how: the resumed run ends bit-identical" \
    cmp -s "$T/resumed.safetensors" "$T/full.safetensors"
  resumed=$((resumed + 1))
done
echo "kill trials: $trials ($killed killed before the end), $resumed resumed, $absent before the first checkpoint"
finish
