#!/usr/bin/env bash
# Ranks in several processes under mpirun: data parallelism across 2 and 4 processes (alone,
# with pipeline stages inside each process, with ZeRO-1, a GPT with clipping; through shared
# memory and by messages), pipeline stages across processes (GPipe and 1F1B, beside data and
# tensor parallelism, replicas cut between processes, a GPT's tied token table),
# tensor-parallel groups across processes (an MLP, a GPT), each against the same mesh in one
# process; checkpoints resumed with another number of processes; bad input seen by one
# process; a process killed mid-run. Skipped (passes, saying so) where clpar was built without
# MPI or mpirun is missing.
. "$(dirname "$0")/harness.sh"
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# Open MPI's mpirun, or MPICH's when clpar was built against MPICH (its Hydra launcher takes
# -genvlist where mpirun takes -x, and needs no flags to run as root or oversubscribed)
mpi_launcher=mpirun
grep -q "MPI_C_LIB_NAMES:STRING=.*mpich" "$B/CMakeCache.txt" && mpi_launcher=mpiexec.mpich
if ! command -v "$mpi_launcher" >/dev/null || ! grep -q "CLPAR_HAVE_MPI:INTERNAL=ON" "$B/CMakeCache.txt"; then
  echo "cli_mpi: skipped (no MPI in this build or no $mpi_launcher)"
  exit 0
fi
echo "cli_mpi: processes started by $mpi_launcher"
# one single-core device per process, as on a cluster of one GPU per process
export POCL_DEVICES="basic basic"
# Open MPI leaves its components' allocations to the end of the process (thousands, in
# unloaded modules no suppression can name): in the sanitized build the processes mpirun
# starts keep every check but the leak check.
mpi() {
  local args=()
  if [ "$mpi_launcher" = mpirun ]; then
    args=(--allow-run-as-root --oversubscribe -q "$@")
  else
    while [ $# -gt 0 ]; do
      if [ "$1" = -x ]; then args+=(-genvlist "$2") && shift; else args+=("$1"); fi
      shift
    done
  fi
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 120 ${SMALL_SHM:+unshare -m \
    sh -c 'mount -t tmpfs -o size=24m tmpfs /dev/shm && exec "$@"' sh} "$mpi_launcher" "${args[@]}"
}

check "--help says how to run over processes" bash -c "'$B/clpar-train' --help | grep -q 'mpirun -np P clpar-train'"
loud=(--data synthetic --model 10,16,12,5 --steps 12 --batch 64 --optim adam)
mlp=("${loud[@]}" --quiet)
"$B/clpar-train" "${mlp[@]}" --dp 2 --devices 0,1 --save "$T/dp2.safetensors" >/dev/null ||
  bad "dp 2 in one process"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 2 --devices 0 --save "$T/dp2_np2.safetensors" \
  >"$T/np2.out" 2>&1 || { bad "dp 2 over 2 processes"; cat "$T/np2.out"; }
check "dp 2 over 2 processes ends at one process's weights" near "$T/dp2_np2.safetensors" "$T/dp2.safetensors"
# processes on one host sum through shared memory; CLPAR_SHARED_MEMORY=off takes the messages
# that processes on different hosts exchange: the same sums, bit for bit
check "processes on one host sum through shared memory" grep -q "all through shared memory" "$T/np2.out"
# a replica alone in its process on a CPU device: its gradients are summed where it keeps them
check "in place, with no copies" grep -q "shared memory (one host), summed in place (no copies)" "$T/np2.out"
CLPAR_SHARED_MEMORY=off mpi -np 2 -x CLPAR_SHARED_MEMORY "$B/clpar-train" "${mlp[@]}" --dp 2 \
  --devices 0 --save "$T/dp2_msg.safetensors" >"$T/msg.out" 2>&1 || { bad "dp 2 by messages"; cat "$T/msg.out"; }
check "and by messages with CLPAR_SHARED_MEMORY=off" bash -c "grep -q 'bytes sent per step' '$T/msg.out' && ! grep -q 'shared memory' '$T/msg.out'"
check "the same weights either way" same "$T/dp2_msg.safetensors" "$T/dp2_np2.safetensors"
# a /dev/shm too small for a model's shared window (a container's, say; SMALL_SHM: 24 MiB of
# its own) takes the messages, where Open MPI would wait forever in the window it cannot make
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  wide=(--data synthetic --model 10,1536,1536,5 --steps 2 --batch 16 --quiet) # a 29 MB window
  "$B/clpar-train" "${wide[@]}" --dp 2 --devices 0,1 --save "$T/wide.safetensors" >/dev/null ||
    bad "a wide dp 2 in one process"
  SMALL_SHM=1 mpi -np 2 "$B/clpar-train" "${wide[@]}" --dp 2 --devices 0 \
    --save "$T/wide_np2.safetensors" >"$T/wide.out" 2>&1 || { bad "a wide dp 2 in a small /dev/shm"; cat "$T/wide.out"; }
  check "a window /dev/shm has no room for: messages" bash -c "grep -q 'bytes sent per step' '$T/wide.out' && ! grep -q 'shared memory' '$T/wide.out'"
  check "and one process's weights" near "$T/wide_np2.safetensors" "$T/wide.safetensors"
  SMALL_SHM=1 mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 2 --devices 0 >"$T/narrow.out" 2>&1 ||
    bad "dp 2 in a small /dev/shm"
  check "one it has room for: shared memory" grep -q "all through shared memory" "$T/narrow.out"
else
  echo "cli_mpi: the small /dev/shm skipped (needs root and unshare -m)"
fi

"$B/clpar-train" "${mlp[@]}" --dp 4 --pp 2 --devices 0,1,0,1,0,1,0,1 \
  --save "$T/dp4pp2.safetensors" >/dev/null || bad "dp 4 x pp 2 in one process"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 4 --pp 2 --devices 0,1,0,1 \
  --save "$T/dp4pp2_np2.safetensors" >/dev/null 2>&1 || bad "dp 4 x pp 2 over 2 processes"
check "dp 4 x pp 2 over 2 processes: within 1e-5" near "$T/dp4pp2_np2.safetensors" "$T/dp4pp2.safetensors"
# ZeRO-1 across processes: each replica updates its slice, the slices gathered over MPI
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 4 --pp 2 --devices 0,1,0,1 --zero 1 \
  --save "$T/zero_np2.safetensors" >/dev/null 2>&1 || bad "ZeRO-1, dp 4 x pp 2 over 2 processes"
check "ZeRO-1 over 2 processes: within 1e-5 of unsharded in one" near "$T/zero_np2.safetensors" "$T/dp4pp2.safetensors"
CLPAR_SHARED_MEMORY=off mpi -np 2 -x CLPAR_SHARED_MEMORY "$B/clpar-train" "${mlp[@]}" --dp 4 --pp 2 \
  --devices 0,1,0,1 --zero 1 --save "$T/zero_msg.safetensors" >/dev/null 2>&1 || bad "ZeRO-1 by messages"
check "ZeRO-1 by messages: the same weights as through shared memory" same "$T/zero_msg.safetensors" "$T/zero_np2.safetensors"
# ZeRO-1 with a replica per process: gradients summed and updated slices gathered where the
# CPU devices keep them (shared memory), or by messages; the same bits as in one process
"$B/clpar-train" "${mlp[@]}" --dp 2 --zero 1 --devices 0,1 --save "$T/z2.safetensors" >/dev/null ||
  bad "ZeRO-1, dp 2 in one process"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 2 --zero 1 --devices 0 --save "$T/z2_np2.safetensors" \
  >"$T/z2.out" 2>&1 || bad "ZeRO-1, dp 2 over 2 processes"
check "ZeRO-1, a replica per process: bit-identical" same "$T/z2_np2.safetensors" "$T/z2.safetensors"
check "its slices gathered through shared memory too, summed in place" \
  grep -q "all through shared memory (one host), summed in place" "$T/z2.out"
CLPAR_SHARED_MEMORY=off mpi -np 2 -x CLPAR_SHARED_MEMORY "$B/clpar-train" "${mlp[@]}" --dp 2 --zero 1 \
  --devices 0 --save "$T/z2_msg.safetensors" >/dev/null 2>&1 || bad "ZeRO-1, dp 2 by messages"
check "and by messages: the same bits" same "$T/z2_msg.safetensors" "$T/z2.safetensors"
# the copies a GPU makes instead (CLPAR_IN_PLACE=off): read into the shared memory, written
# back from it, slices gathered through it
CLPAR_IN_PLACE=off mpi -np 2 -x CLPAR_IN_PLACE "$B/clpar-train" "${mlp[@]}" --dp 2 --zero 1 \
  --devices 0 --save "$T/z2_copy.safetensors" >"$T/z2_copy.out" 2>&1 || bad "ZeRO-1, dp 2 copying"
check "copying through shared memory: the same bits" same "$T/z2_copy.safetensors" "$T/z2.safetensors"
check "and nothing summed in place" bash -c "grep -q 'all through shared memory' '$T/z2_copy.out' && ! grep -q 'in place' '$T/z2_copy.out'"
# one replica per process: the processes' sum is the ranks' sum in order, bit for bit
mpi -np 4 "$B/clpar-train" "${mlp[@]}" --dp 4 --pp 2 --devices 0,1 --save "$T/dp4pp2_np4.safetensors" \
  >"$T/np4.out" 2>&1 || bad "dp 4 x pp 2 over 4 processes"
check "dp 4 x pp 2 over 4 processes: bit-identical" same "$T/dp4pp2_np4.safetensors" "$T/dp4pp2.safetensors"
# the map is printed once, by process 0, with every rank
mpi -np 2 "$B/clpar-train" "${loud[@]}" --dp 2 --devices 0 --steps 2 >"$T/map.out" 2>&1
check "the rank map names both processes" grep -q "rank 1 (replica 1.*process 1 on" "$T/map.out"
check "one report" test "$(grep -c '^done:' "$T/map.out")" = 1
# 445 parameters: each process sends 2 (P - 1) / P of their 1,780 bytes per step
check "bytes sent between processes as predicted" \
  grep -q "between processes: 1780 bytes sent per step by process 0 (predicted .* = 1780)" "$T/map.out"

# pipeline stages across processes: hand-offs by MPI, bit for bit as in one process
"$B/clpar-train" "${mlp[@]}" --pp 2 --micro-batches 4 --schedule 1f1b --devices 0,1 \
  --save "$T/pp.safetensors" >/dev/null || bad "pp 2 in one process"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --pp 2 --micro-batches 4 --schedule 1f1b --devices 0 \
  --save "$T/pp_np2.safetensors" >"$T/pp.out" 2>&1 || { bad "pp 2 over 2 processes"; cat "$T/pp.out"; }
check "pp 2 (1F1B) over 2 processes: bit-identical" same "$T/pp_np2.safetensors" "$T/pp.safetensors"
"$B/clpar-train" "${mlp[@]}" --tp 2 --pp 2 --devices 0,1,0,1 --save "$T/tppp.safetensors" >/dev/null ||
  bad "tp 2 x pp 2 in one process"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --tp 2 --pp 2 --devices 0,1 --save "$T/tppp_np2.safetensors" \
  >/dev/null 2>&1 || bad "tp 2 x pp 2 over 2 processes"
check "tp 2 x pp 2 over 2 processes (a tensor-parallel group each): bit-identical" \
  same "$T/tppp_np2.safetensors" "$T/tppp.safetensors"
# 3 replicas of 2 stages over 2 processes: replica 1's stages in different processes
"$B/clpar-train" "${mlp[@]}" --dp 3 --pp 2 --devices 0,1,0,1,0,1 --save "$T/dp3pp2.safetensors" \
  >/dev/null || bad "dp 3 x pp 2 in one process"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 3 --pp 2 --devices 0,1,0 \
  --save "$T/dp3pp2_np2.safetensors" >/dev/null 2>&1 || bad "dp 3 x pp 2 over 2 processes"
check "dp 3 x pp 2 over 2 processes: within 1e-5" near "$T/dp3pp2_np2.safetensors" "$T/dp3pp2.safetensors"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 3 --pp 2 --devices 0,1,0 --zero 1 \
  --save "$T/dp3pp2_zero.safetensors" >/dev/null 2>&1 || bad "ZeRO-1, dp 3 x pp 2 over 2 processes"
check "ZeRO-1 with a replica cut between processes: within 1e-5" \
  near "$T/dp3pp2_zero.safetensors" "$T/dp3pp2.safetensors"

# the planner under mpirun measures the link and plans meshes spread over the processes
mpi -np 2 "$B/clpar-devices" --plan --model 10,16,5 --batch 64 --devices 0 --top 2 >"$T/plan.out" 2>&1
check "the planner measures the link" grep -q "^link between processes 0 (.*) and 1 (.*): .* GB/s" "$T/plan.out"
check "and counts the processes on the host" grep -q "each, 2 on a host at most (sharing its cores)" "$T/plan.out"
check "and prints mpirun command lines" grep -q "mpirun -np 2 clpar-train --model 10,16,5 --batch 64 --devices 0 --dp 2 " "$T/plan.out"
check "with the bytes sent between processes" grep -q "between processes: 0.00 MB sent per process" "$T/plan.out"

# a GPT with clipping; a 2-process checkpoint resumed in 1 process and the reverse
head -c 20000 /usr/share/games/fortunes/fortunes >"$T/text.txt" 2>/dev/null ||
  python3 -c "print('the quick brown fox jumps over the lazy dog. ' * 500)" >"$T/text.txt"
gpt=(--data "text:$T/text.txt" --model gpt:layers=1,heads=2,embd=32,ctx=16 --batch 8 --clip 1.0 --quiet)
"$B/clpar-train" "${gpt[@]}" --steps 4 --dp 2 --devices 0,1 --checkpoint "$T/g1.safetensors" >/dev/null ||
  bad "GPT dp 2 in one process"
mpi -np 2 "$B/clpar-train" "${gpt[@]}" --steps 4 --dp 2 --devices 0 \
  --checkpoint "$T/g2.safetensors" >/dev/null 2>&1 || bad "GPT dp 2 over 2 processes"
check "GPT checkpoint over 2 processes: within 1e-5" near "$T/g2.safetensors" "$T/g1.safetensors"
"$B/clpar-train" --resume "$T/g2.safetensors" --steps 8 --dp 2 --devices 0,1 --quiet \
  --save "$T/r1.safetensors" >/dev/null || bad "resume a 2-process checkpoint in one process"
mpi -np 2 "$B/clpar-train" --resume "$T/g1.safetensors" --steps 8 --dp 2 --devices 0 --quiet \
  --save "$T/r2.safetensors" >/dev/null 2>&1 || bad "resume a 1-process checkpoint in 2 processes"
check "resumed across process counts: within 1e-5" near "$T/r2.safetensors" "$T/r1.safetensors"
# a GPT's two stages in two processes: its token table's two copies summed across them
"$B/clpar-train" "${gpt[@]}" --steps 4 --pp 2 --devices 0,1 --checkpoint "$T/gp1.safetensors" \
  >/dev/null || bad "GPT pp 2 in one process"
mpi -np 2 "$B/clpar-train" "${gpt[@]}" --steps 4 --pp 2 --devices 0 \
  --checkpoint "$T/gp2.safetensors" >/dev/null 2>&1 || bad "GPT pp 2 over 2 processes"
check "GPT pp 2 over 2 processes: bit-identical checkpoint" same "$T/gp2.safetensors" "$T/gp1.safetensors"
# a GPT's attention heads and MLP split over two processes
"$B/clpar-train" "${gpt[@]}" --steps 4 --tp 2 --devices 0,1 --save "$T/gt1.safetensors" \
  >/dev/null || bad "GPT tp 2 in one process"
mpi -np 2 "$B/clpar-train" "${gpt[@]}" --steps 4 --tp 2 --devices 0 --save "$T/gt2.safetensors" \
  >/dev/null 2>&1 || bad "GPT tp 2 over 2 processes"
check "GPT tp 2 over 2 processes: bit-identical" same "$T/gt2.safetensors" "$T/gt1.safetensors"
# ZeRO-1 with a pipelined GPT: the tied table's copies summed before the reduce-scatter
"$B/clpar-train" "${gpt[@]}" --steps 4 --dp 2 --pp 2 --devices 0,1,0,1 --save "$T/gz1.safetensors" \
  >/dev/null || bad "GPT dp 2 x pp 2 in one process"
mpi -np 4 "$B/clpar-train" "${gpt[@]}" --steps 4 --dp 2 --pp 2 --devices 0 --zero 1 \
  --save "$T/gz2.safetensors" >/dev/null 2>&1 || bad "GPT dp 2 x pp 2, ZeRO-1, over 4 processes"
check "GPT dp 2 x pp 2 with ZeRO-1 over 4 processes (its copies in two): within 1e-5" \
  near "$T/gz2.safetensors" "$T/gz1.safetensors"

# bad input seen by one process only (its data file is missing): one message, from process 0
mpi -np 1 "$B/clpar-train" "${gpt[@]}" --steps 4 --dp 2 --devices 0 : \
  -np 1 "$B/clpar-train" --data "text:$T/missing.txt" "${gpt[@]:2}" --steps 4 --dp 2 \
  --devices 0 >"$T/bad.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "a process with missing data: exit $rc"
check "one error line naming the process and the file" \
  test "$(grep -c "clpar-train: error: process 1 (.*missing.txt" "$T/bad.out")" = 1
check "and no other error line" test "$(grep -c "clpar-train: error" "$T/bad.out")" = 1
# a failure of one process while the mesh's links are built (its hand-off's host memory),
# after the processes have agreed to build: all stop, one message, no hang
mpi -np 1 "$B/clpar-train" "${mlp[@]}" --pp 2 --devices 0 : -np 1 env \
  LD_PRELOAD="$B/tests/libclpar_fault_shim.so" CLPAR_FAULT="alloc:1@clpar_channel_init" \
  "$B/clpar-train" "${mlp[@]}" --pp 2 --devices 0 >"$T/fault.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "a process failing to build its links: exit $rc"
check "one line naming the failing process" \
  test "$(grep -c "clpar-train: error: process 1 (.*): out of host memory" "$T/fault.out")" = 1
# a step that fails in one process (an OpenCL call the fault injector fails mid-run): that
# process says why and ends the others, which wait for it in the reduction
mpi -np 1 "$B/clpar-train" "${mlp[@]}" --dp 2 --steps 40 --devices 0 : -np 1 env \
  LD_PRELOAD="$B/tests/libclpar_fault_shim.so" CLPAR_FAULT="cl:400" \
  "$B/clpar-train" "${mlp[@]}" --dp 2 --steps 40 --devices 0 >"$T/step.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "a step failing in one process: exit $rc"
named() { grep -q "clpar-train: error: process 1 (.*): .*CL_OUT_OF_RESOURCES" "$1" || { cat "$1"; false; }; }
check "the failing process names itself and the call" named "$T/step.out"
mpi -np 2 "$B/clpar-train" "${mlp[@]}" --dp 3 --devices 0 >"$T/dp3.out" 2>&1
check "--dp 3 over 2 processes is refused" grep -q "error: the mesh's 3 ranks (--dp 3 x --pp 1 x --tp 1) do not divide among 2 processes" "$T/dp3.out"
# tensor-parallel groups across processes: their all-reduces and all-gathers by MPI
"$B/clpar-train" "${mlp[@]}" --dp 2 --tp 2 --devices 0,1,0,1 --save "$T/dptp.safetensors" \
  >/dev/null || bad "dp 2 x tp 2 in one process"
mpi -np 4 "$B/clpar-train" "${mlp[@]}" --dp 2 --tp 2 --devices 0 --save "$T/dptp_np4.safetensors" \
  >"$T/tp.out" 2>&1 || { bad "dp 2 x tp 2 over 4 processes"; cat "$T/tp.out"; }
check "dp 2 x tp 2 over 4 processes (a shard each): bit-identical" \
  same "$T/dptp_np4.safetensors" "$T/dptp.safetensors"
# --balance auto: each process measures its own devices, every process learns all speeds
mpi -np 2 "$B/clpar-train" "${loud[@]}" --dp 2 --balance auto --devices 0 \
  --save "$T/balance.safetensors" >"$T/balance.out" 2>&1 || { bad "--balance auto over 2 processes"; cat "$T/balance.out"; }
check "--balance auto prints both processes' ranks" grep -q "^balance: rank 1 (process 1) runs" "$T/balance.out"
check "and (equal devices) trains as dp 2 does" near "$T/balance.safetensors" "$T/dp2.safetensors"
# --mesh auto plans for both processes (one device each: a replica each), as one run
mpi -np 2 "$B/clpar-train" "${loud[@]}" --mesh auto --devices 0 \
  --save "$T/auto.safetensors" >"$T/auto.out" 2>&1 || { bad "--mesh auto over 2 processes"; cat "$T/auto.out"; }
check "--mesh auto over 2 processes chose dp 2" grep -q "^mesh auto: dp 2 x pp 1 x tp 1" "$T/auto.out"
check "and trained as dp 2 does" near "$T/auto.safetensors" "$T/dp2.safetensors"

# a process killed mid-run: the others stop within 60 s, the checkpoint stays whole
mpi -np 2 "$B/clpar-train" --data synthetic --model 10,64,64,5 --dp 2 --devices 0 --steps 1000000 \
  --quiet --checkpoint "$T/k.safetensors" --checkpoint-every 20 >"$T/kill.out" 2>&1 &
launcher=$!
for _ in $(seq 100); do [ -s "$T/k.safetensors" ] && break; sleep 0.2; done
victim=$(pgrep -f "^$B/clpar-train --data synthetic --model 10,64,64,5" | tail -1)
t0=$(date +%s)
kill -9 "$victim" 2>/dev/null
wait "$launcher"
rc=$?
took=$(($(date +%s) - t0))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le 60 ] && ok ||
  bad "after a SIGKILL the run ended with exit $rc after $took s"
check "the checkpoint is whole after the kill" whole "$T/k.safetensors"
finish
