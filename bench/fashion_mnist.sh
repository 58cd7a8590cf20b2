#!/usr/bin/env bash
# Fashion-MNIST, 784,256,128,10, Adam lr 1e-3, batch 128: clpar's test accuracy and samples
# per second on one device beside PyTorch's (Debian's python3-torch on OpenBLAS, as PyTorch
# users have it: libopenblas0-pthread, required; at 1 and 2 threads, the faster counted),
# same model, optimizer, batch and epochs, one after the other in this script.
#   bench/fashion_mnist.sh [BUILD_DIR] [EPOCHS]
set -euo pipefail
B="${1:-build}"
E="${2:-10}"
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*) ;;
  *)
    echo "bench/fashion_mnist.sh: PyTorch would run on $blas, not OpenBLAS; install" \
      "libopenblas0-pthread (apt-get install libopenblas0-pthread)" >&2
    exit 1 ;;
esac
clpar_log=$(mktemp)
trap 'rm -f "$clpar_log"' EXIT
"$B/clpar-train" --model 784,256,128,10 --optim adam --lr 1e-3 --batch 128 --epochs "$E" \
  --devices 0 | tee "$clpar_log"
# training samples per second as clpar-train reports them (its training steps alone)
clpar=$(awk '/^epoch [0-9]+:/ { gsub(",", ""); acc = $(NF - 2) }
  /^done:/ { gsub("[(]", ""); for (i = 1; i <= NF; i++) if ($i == "samples/s),") sps = $(i - 1) }
  END { printf "%s %s", sps, acc }' "$clpar_log")
best=0
for threads in 1 2; do
  out=$(/usr/bin/python3 "$(dirname "$0")/torch_mlp.py" "$E" "$threads")
  echo "$out" | tail -1
  sps=$(echo "$out" | awk '/^torch epoch/ { t += $4; n++ } END { printf "%.1f", 60000 * n / t }')
  echo "torch, $threads thread(s): $sps samples/s"
  best=$(awk -v a="$best" -v b="$sps" 'BEGIN { print (b > a ? b : a) }')
done
read -r csps acc <<<"$clpar"
awk -v c="$csps" -v t="$best" -v acc="$acc" -v E="$E" 'BEGIN {
  printf "clpar: %.0f samples/s, test accuracy %.4f after %d epochs\n", c, acc, E
  printf "torch (OpenBLAS, best threads): %.0f samples/s; clpar / torch: %.2f\n", t, c / t }'
