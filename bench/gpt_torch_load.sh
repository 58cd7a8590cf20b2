#!/usr/bin/env bash
# A GPT trained and saved by clpar-train loads into nanoGPT's PyTorch module with
# load_state_dict and gives the validation loss clpar reported (Debian's python3-torch).
#   bench/gpt_torch_load.sh [BUILD_DIR] [STEPS]
set -euo pipefail
B="${1:-build}"
steps="${2:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat /usr/share/games/fortunes/{fortunes,literature,riddles} 2>/dev/null | head -c 200000 >"$tmp/corpus.txt"
"$B/clpar-train" --data "text:$tmp/corpus.txt" --model gpt:layers=2,heads=4,embd=64,ctx=32 \
  --batch 16 --steps "$steps" --optim adamw --lr 3e-3 --quiet --save "$tmp/gpt.safetensors" \
  | tee "$tmp/out.txt" | grep "^done:"
clpar=$(sed -n 's/^done:.*test loss \([0-9.]*\).*/\1/p' "$tmp/out.txt")
/usr/bin/python3 "$here/gpt_torch_load.py" "$tmp/gpt.safetensors" "$tmp/corpus.txt" | tee "$tmp/torch.txt"
torch=$(sed -n 's/^pytorch validation loss \([0-9.]*\).*/\1/p' "$tmp/torch.txt")
awk -v a="$clpar" -v b="$torch" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d;
  printf "clpar %s, PyTorch %s: %.2e relative\n", a, b, d; exit !(d < 1e-4) }'
