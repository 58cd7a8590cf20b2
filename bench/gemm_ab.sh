#!/usr/bin/env bash
# Two GEMM configurations of device 0 against each other on the same training run: each is
# written as the device's tuning in a cache folder of its own (PoCL's compiled kernels still
# shared), then the run trains under A, B, A, B, ... and the best samples/s of each and their
# ratio are reported, with the device's GEMM report (clpar-devices --bench) under each.
#   bench/gemm_ab.sh [BUILD_DIR] [mlp|gpt] [STEPS] [ROUNDS] [CONFIG_A] [CONFIG_B]
# mlp and gpt: the runs of bench/workload.sh.
# The configurations are cache lines (clpar_gemm_tuning_format); by default clpar's default
# parameters without and with TB (NT products of 64 rows or more as W^T times the NN kernel).
set -euo pipefail
B="${1:-build}"
WHAT="${2:-mlp}"
S="${3:-200}"
R="${4:-3}"
A="${5:-clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 TB=0}"
C="${6:-clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 TB=64}"
. "$(dirname "$0")/workload.sh"
# the cache's key for device 0: platform|name|version (tabs and newlines as spaces)
key=$("$B/clpar-devices" --json --devices 0 | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]
print("|".join(d[k] for k in ("platform", "name", "opencl_version")).replace("\t", " "))')
for c in A B; do
  mkdir -p "$tmp/$c/clpar"
  line=$([ $c = A ] && echo "$A" || echo "$C")
  printf '%s\t%s\n' "$key" "$line" >"$tmp/$c/clpar/gemm.tsv"
  echo "$c: $line"
done
for c in A B; do
  echo "== GEMMs under $c"
  XDG_CACHE_HOME="$tmp/$c" "$B/clpar-devices" --bench --devices 0 \
    $([ "$WHAT" = mlp ] && echo "--model $model --batch $batch") | grep "GFLOP/s" || true
done
alternate "$R" A B
