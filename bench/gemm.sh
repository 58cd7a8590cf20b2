#!/usr/bin/env bash
# clpar's GEMM kernels against CLBlast's on one device, per product of a model's training
# step (forward, input gradient, weight gradient of each layer), in one run: clpar-devices
# --bench with CLPAR_GEMM_PATH=clpar, then direct (CLBlast's direct kernel with clpar's PoCL
# parameters, what clpar ran before its own kernels) and auto (CLBlast's own choice).
#   bench/gemm.sh [BUILD_DIR] [SIZES] [BATCH] [DEVICE]
set -euo pipefail
B="${1:-build}"
M="${2:-784,256,128,10}"
N="${3:-128}"
D="${4:-0}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for path in clpar direct auto; do
  CLPAR_GEMM_PATH=$path "$B/clpar-devices" --bench --model "$M" --batch "$N" --devices "$D" \
    >"$out/$path"
  echo "== $path"
  grep -E "^index|^ *[0-9]+ |GFLOP/s" "$out/$path"
done
# per product: GFLOP/s of each path and clpar's over the better of CLBlast's two
for path in clpar direct auto; do
  grep "GFLOP/s" "$out/$path" | sed 's/ GFLOP\/s.*//; s/.* //' >"$out/$path.gf"
done
grep "GFLOP/s" "$out/clpar" | sed 's/:.*//' |
  paste -d'|' - "$out/clpar.gf" "$out/direct.gf" "$out/auto.gf" |
  awk -F'|' '{ best = $3 > $4 ? $3 : $4
    printf "%-44s clpar %7.2f  CLBlast %7.2f GFLOP/s  clpar/CLBlast %6.2f\n", $1, $2, best,
      (best > 0 ? $2 / best : 0) }'
