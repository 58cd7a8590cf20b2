#!/usr/bin/env bash
# A GPT of 4 layers, 4 heads, 256 features, context 128 on a real corpus (Debian's fortunes,
# all files concatenated), batch 8, AdamW lr 1e-3: clpar's tokens per second on one PoCL
# device beside PyTorch's (Debian's python3-torch with OpenBLAS, at 1 and 2 threads, the
# better one counted), same model, optimizer, batch and number of steps, in one run.
#   bench/gpt.sh [BUILD_DIR] [STEPS]
set -euo pipefail
B="${1:-build}"
S="${2:-40}"
corpus=$(mktemp)
log=$(mktemp)
trap 'rm -f "$corpus" "$log"' EXIT
find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' 2>/dev/null |
  sort | xargs cat >"$corpus" || true
[ -s "$corpus" ] || { echo "bench/gpt.sh: install Debian's fortunes package" >&2; exit 1; }
"$B/clpar-train" --data "text:$corpus" --model gpt:layers=4,heads=4,embd=256,ctx=128 --batch 8 \
  --steps "$S" --optim adamw --lr 1e-3 --weight-decay 0 --devices 0 | tee "$log"
clpar=$(awk '/^done:/ { gsub("[(]", ""); for (i = 1; i <= NF; i++) if ($i == "samples/s),") print $(i - 1) * 128 }' "$log")
best=0
for t in 1 2; do
  out=$(/usr/bin/python3 "$(dirname "$0")/torch_gpt.py" "$corpus" 4 4 256 128 8 "$S" "$t")
  echo "$out"
  tps=$(echo "$out" | awk '{ print $4 }')
  best=$(awk -v a="$best" -v b="$tps" 'BEGIN { print (b > a ? b : a) }')
done
awk -v c="$clpar" -v t="$best" 'BEGIN {
  printf "clpar: %.0f tokens/s; torch (best threads): %.0f tokens/s; clpar / torch: %.2f\n", c, t, c / t }'
