#!/usr/bin/env bash
# Fault injection through tests/fault_shim.c: a short run on a mesh of four ranks (dp 2 x pp 2)
# that checkpoints every step and saves its model, with its Nth OpenCL call, Nth allocation or
# Nth file write failing. Every run must end either at exit 0 with the model an undisturbed run
# saves (a failure clpar may pass over, such as a cache it could not write) or at exit 1 with
# one line on stderr naming the problem; never a crash, a hang or a torn file: the checkpoint
# there before the run is still whole (the old one, or a new whole one), no temporary file is
# left, and every OpenCL event and buffer it made is released (the shim counts them;
# LeakSanitizer cannot, the OpenCL runtime keeps them reachable).
#   FAULT_STRIDE=K  every Kth N of each kind (ctest: a dozen spread over the run;
#                   bench/fault_sweep.sh: 1), from FAULT_START (default 1)
#   FAULT_KINDS     "cl alloc write" by default; FAULT_LOG=FILE gets a line per fault
# Prints a summary line per kind.
. "$(dirname "$0")/harness.sh"
stride="${FAULT_STRIDE:-0}"
first="${FAULT_START:-1}"
kinds="${FAULT_KINDS:-cl alloc write}"
shim="$B/tests/libclpar_fault_shim.so"
run=("$B/clpar-train" --data synthetic --model 10,16,12,5 --steps 3 --batch 32 --dp 2 --pp 2
  --micro-batches 2 --devices 0,1,2,3 --checkpoint "$T/run/ck.safetensors" --checkpoint-every 1
  --save "$T/run/model.safetensors" --quiet)

mkdir -p "$T/run"
LD_PRELOAD="$shim" CLPAR_FAULT_REPORT="$T/counts" "${run[@]}" >/dev/null 2>"$T/err"
check "the undisturbed run trains" test $? -eq 0
# no_cl_leak REPORT: every OpenCL event and buffer clpar made was released once
no_cl_leak() { grep -q "^live_events 0$" "$1" && grep -q "^live_buffers 0$" "$1"; }
check "the undisturbed run releases every event and buffer" no_cl_leak "$T/counts"
cp "$T/run/model.safetensors" "$T/expected.safetensors"
cp "$T/run/ck.safetensors" "$T/previous.safetensors"
check "the undisturbed checkpoint is whole" whole "$T/previous.safetensors"

# trial FAULT: one run with CLPAR_FAULT=FAULT, judged; counts into tried/ignored/refused
trial() {
  rm -rf "$T/run" && mkdir "$T/run"
  cp "$T/previous.safetensors" "$T/run/ck.safetensors"
  timeout 60 env LD_PRELOAD="$shim" CLPAR_FAULT="$1" CLPAR_FAULT_REPORT="$T/report" \
    "${run[@]}" >/dev/null 2>"$T/err"
  local rc=$?
  tried=$((tried + 1))
  local what="$1 ($(awk '$1 == "injected" { print $4 }' "$T/report" 2>/dev/null))"
  [ -n "${FAULT_LOG:-}" ] && echo "$what exit $rc: $(head -1 "$T/err")" >>"$FAULT_LOG"
  if [ $rc -eq 0 ]; then
    ignored=$((ignored + 1))
    check "$what passed over: the same model" cmp -s "$T/run/model.safetensors" "$T/expected.safetensors"
  elif [ $rc -eq 1 ]; then
    refused=$((refused + 1))
    check "$what: one line on stderr" test "$(wc -l <"$T/err")" -eq 1
    check "$what: an error message" grep -q "^clpar-train: error: ." "$T/err"
  else
    check "$what: exit 1 or 0, not $rc ($(head -c 300 "$T/err"))" false
  fi
  check "$what: the checkpoint is whole" whole "$T/run/ck.safetensors"
  check "$what: every event and buffer released ($(grep live_ "$T/report" | tr '\n' ' '))" \
    no_cl_leak "$T/report"
  check "$what: no temporary file left" test "$(ls "$T/run" | grep -cv '^ck.safetensors$\|^model.safetensors$')" -eq 0
}

for kind in $kinds; do
  total=$(awk -v k="$kind" '$1 == k { print $2 }' "$T/counts")
  check "the run makes $kind calls" test "${total:-0}" -gt 0
  step=$stride
  [ "$step" -gt 0 ] || step=$(((total + 11) / 12)) # a dozen, spread over the run
  tried=0 ignored=0 refused=0
  for ((n = first; n <= total; n += step)); do
    trial "$kind:$n"
  done
  echo "$kind: $total calls, $tried faults injected: $refused refused with an error, $ignored passed over"
done

# every allocation of building the mesh, wherever the sample falls (a failed one there once
# crashed clpar_mesh_free): counted by the function that makes it, so code elsewhere does
# not move them
LD_PRELOAD="$shim" CLPAR_FAULT="alloc:0@clpar_mesh_init_world" CLPAR_FAULT_REPORT="$T/counts" \
  "${run[@]}" >/dev/null 2>&1
total=$(awk '$1 == "in" { print $3 }' "$T/counts")
check "building the mesh allocates" test "${total:-0}" -gt 0
tried=0 ignored=0 refused=0
for ((n = 1; n <= total; n++)); do
  trial "alloc:$n@clpar_mesh_init_world"
done
echo "allocations in clpar_mesh_init_world: $total, $tried faults injected: $refused refused with an error, $ignored passed over"
finish
