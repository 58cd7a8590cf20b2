#!/usr/bin/env bash
# Quality: the GPT of bench/gpt.sh trained on Debian's fortunes for STEPS steps by clpar (one
# PoCL device) and by PyTorch (CPU, OpenBLAS, 2 threads), the same model, batch, AdamW as
# nanoGPT configures it (lr 1e-3, weight decay 0.1 on matrices), warm-up, cosine decay and
# clipping; their validation losses side by side, and a sample of clpar's model's text.
#   bench/gpt_quality.sh [BUILD_DIR] [STEPS]
set -euo pipefail
B="${1:-build}"
S="${2:-600}"
corpus=$(mktemp)
model=$(mktemp --suffix=.safetensors)
trap 'rm -f "$corpus" "$model"' EXIT
find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort |
  xargs cat >"$corpus"
"$B/clpar-train" --data "text:$corpus" --model gpt:layers=4,heads=4,embd=256,ctx=128 --batch 8 \
  --steps "$S" --optim adamw --lr 1e-3 --weight-decay 0.1 --warmup 50 --lr-min 1e-4 --clip 1 \
  --devices 0 --save "$model" | grep -E "^(done|epoch)"
/usr/bin/python3 "$(dirname "$0")/torch_gpt.py" "$corpus" 4 4 256 128 8 "$((S - 2))" 2 \
  1e-3 0.1 50 1e-4 1
echo "--- clpar's model continues 'Q: ' ---"
"$B/clpar-generate" --init "$model" --prompt "Q: " --tokens 400 --temperature 0.8 --top-k 40 --seed 1
