#!/usr/bin/env bash
# Ranks in processes that Slurm's srun starts: a private one-node Slurm (its own munged,
# slurmctld and slurmd on spare ports, all in a scratch folder, stopped on exit) runs
# clpar-train with srun --mpi=pmix (Open MPI) or --mpi=pmi2 (MPICH): data and pipeline
# parallelism across two processes against one process, the rank map, and an uneven split's
# error. Skipped (passes, saying so) without MPI in this build, without Slurm and munge
# (Debian's slurmd, slurmctld, slurm-client, munge), or when not root (slurmd runs jobs as
# root here).
. "$(dirname "$0")/harness.sh"
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

skip() {
  echo "cli_srun: skipped ($*)"
  exit 0
}
grep -q "CLPAR_HAVE_MPI:INTERNAL=ON" "$B/CMakeCache.txt" || skip "no MPI in this build"
for tool in srun sinfo slurmctld slurmd munged mungekey; do
  command -v "$tool" >/dev/null || skip "no $tool"
done
[ "$(id -u)" = 0 ] || skip "not root"
plugin=pmix # Open MPI takes PMIx from Slurm; MPICH's simple PMI speaks PMI-1, which pmi2 serves
grep -q "MPI_C_LIB_NAMES:STRING=.*mpich" "$B/CMakeCache.txt" && plugin=pmi2

# ---- a private Slurm ----
S="$T/slurm"
mkdir -p "$S/state" "$S/spool"
chmod 700 "$T" "$S"
host=$(hostname -s)
port=$((20000 + ($$ % 20000))) # two ports: the controller's and slurmd's
stop_slurm() { # the daemons detach: wait for each to be gone before removing their files
  local pids=()
  for p in "$S"/*.pid; do [ -f "$p" ] && pids+=("$(cat "$p")"); done
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.1
  done
  rm -rf "$T"
}
trap stop_slurm EXIT
mungekey -c -k "$S/munge.key" >/dev/null 2>&1 || skip "mungekey could not make a key"
munged -f --socket="$S/munge.sock" --key-file="$S/munge.key" --pid-file="$S/munged.pid" \
  --log-file="$S/munged.log" --seed-file="$S/munged.seed" || skip "munged did not start"
cpus=$(nproc)
cat >"$S/slurm.conf" <<EOF
ClusterName=clpartest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/munge.sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
export SLURM_CONF="$S/slurm.conf"
slurmctld -i -f "$SLURM_CONF" 2>"$S/ctld.err" || { cat "$S/ctld.err" "$S/slurmctld.log"; bad "slurmctld did not start"; finish; }
slurmd -N "$host" -f "$SLURM_CONF" 2>"$S/d.err" || { cat "$S/d.err" "$S/slurmd.log"; bad "slurmd did not start"; finish; }
for _ in $(seq 60); do
  [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break
  sleep 0.5
done
if [ "$(sinfo -h -o %t 2>/dev/null)" != idle ]; then
  bad "the private Slurm's node never became idle"
  tail -5 "$S/slurmctld.log" "$S/slurmd.log"
  finish
fi
echo "cli_srun: a private Slurm on $host, ports $port-$((port + 1)), srun --mpi=$plugin"

# one single-core device per process, as on a cluster of one GPU per process
export POCL_DEVICES="basic basic"
# as cli_mpi.sh: MPI's allocations live to the process's end, so no leak check in the tasks
run() {
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout 120 srun --mpi="$plugin" --overcommit "$@"
}

mlp=(--data synthetic --model 10,16,12,5 --steps 12 --batch 64 --optim adam)
"$B/clpar-train" "${mlp[@]}" --quiet --dp 2 --devices 0,1 --save "$T/dp2.safetensors" >/dev/null ||
  bad "dp 2 in one process"
run -n 2 "$B/clpar-train" "${mlp[@]}" --dp 2 --devices 0 --save "$T/dp2_srun.safetensors" \
  >"$T/dp2.out" 2>&1 || { bad "dp 2 over 2 srun tasks"; cat "$T/dp2.out"; }
check "dp 2 over 2 srun tasks ends at one process's weights" near "$T/dp2_srun.safetensors" "$T/dp2.safetensors"
check "the rank map names both processes" grep -q "rank 1 (replica 1.*process 1 on $host" "$T/dp2.out"
check "one report" test "$(grep -c '^done:' "$T/dp2.out")" = 1

"$B/clpar-train" "${mlp[@]}" --quiet --pp 2 --micro-batches 4 --devices 0,1 \
  --save "$T/pp.safetensors" >/dev/null || bad "pp 2 in one process"
run -n 2 "$B/clpar-train" "${mlp[@]}" --quiet --pp 2 --micro-batches 4 --devices 0 \
  --save "$T/pp_srun.safetensors" >"$T/pp.out" 2>&1 || { bad "pp 2 over 2 srun tasks"; cat "$T/pp.out"; }
check "pp 2 over 2 srun tasks: bit-identical" same "$T/pp_srun.safetensors" "$T/pp.safetensors"

# 3 ranks do not split over 2 processes: one line, a failing exit, no hang
run -n 2 "$B/clpar-train" "${mlp[@]}" --dp 3 --devices 0 >"$T/uneven.out" 2>&1
check "an uneven split fails" test $? -ne 0
check "and says why" grep -q "do not divide among 2 processes" "$T/uneven.out"
finish
