#!/usr/bin/env bash
# Fashion-MNIST, 784,256,128,10, Adam lr 1e-3, batch 128, 10 epochs: clpar's test accuracy,
# and its time per epoch beside PyTorch's (Debian's python3-torch, CPU) on the same machine,
# run one after the other in this script.
#   bench/fashion_mnist.sh [BUILD_DIR] [EPOCHS]
set -euo pipefail
B="${1:-build}"
E="${2:-10}"
clpar_log=$(mktemp)
torch_log=$(mktemp)
trap 'rm -f "$clpar_log" "$torch_log"' EXIT
"$B/clpar-train" --model 784,256,128,10 --optim adam --lr 1e-3 --batch 128 --epochs "$E" \
  --devices 0 | tee "$clpar_log"
/usr/bin/python3 "$(dirname "$0")/torch_mlp.py" "$E" | tee "$torch_log"
awk -v E="$E" '
  FNR == 1 { file++ }
  file == 1 && /^epoch [0-9]+:/ { gsub(",", ""); c += $(NF - 1); acc = $(NF - 2) }
  file == 2 && /^torch epoch/ { t += $4 }
  END {
    printf "clpar: test accuracy %.4f after %d epochs, %.2f s per epoch\n", acc, E, c / E
    printf "torch: %.2f s per epoch\n", t / E
    printf "time per epoch, clpar / torch: %.2f\n", c / t
  }' "$clpar_log" "$torch_log"
