#!/usr/bin/env bash
# What clpar-devices --tune buys: tunes device 0 for a model in a fresh cache folder (PoCL's
# compiled kernels still shared), prints the tuning, then trains the same run with the
# default GEMM configuration and with the tuned one, alternating, twice each, and reports
# samples/s of each (best of two) and their ratio.
#   bench/tune.sh [BUILD_DIR] [mlp|gpt] [CANDIDATES] [STEPS]
# mlp: the default model 784,256,128,10 at batch 128 on synthetic data; gpt: the GPT of
# bench/gpt.sh (4 layers, 4 heads, 256 features, context 128, batch 8) on Debian's fortunes.
set -euo pipefail
B="${1:-build}"
WHAT="${2:-gpt}"
N="${3:-12}"
S="${4:-12}"
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocl}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/default" "$tmp/tuned"
if [ "$WHAT" = gpt ]; then
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' 2>/dev/null |
    sort | xargs cat >"$tmp/corpus" || true
  [ -s "$tmp/corpus" ] || { echo "bench/tune.sh: install Debian's fortunes package" >&2; exit 1; }
  model=gpt:layers=4,heads=4,embd=256,ctx=128 batch=8
  run=(--data "text:$tmp/corpus" --optim adamw --lr 1e-3 --weight-decay 0)
elif [ "$WHAT" = mlp ]; then
  model=784,256,128,10 batch=128
  run=(--data synthetic --optim adam --lr 1e-3)
else
  echo "bench/tune.sh: expected mlp or gpt, got '$WHAT'" >&2
  exit 1
fi
XDG_CACHE_HOME="$tmp/tuned" "$B/clpar-devices" --tune --devices 0 --model "$model" \
  --batch "$batch" --candidates "$N" | grep -v '^  *[0-9.]* ms  '
rate() { sed -n 's/.*(\([0-9.]*\) samples\/s).*/\1/p' <<<"$1"; }
best_default=0 best_tuned=0
for r in 1 2; do
  for c in default tuned; do
    out=$(XDG_CACHE_HOME="$tmp/$c" "$B/clpar-train" "${run[@]}" --model "$model" \
      --batch "$batch" --steps "$S" --devices 0 --quiet)
    v=$(rate "$out")
    echo "$c: $v samples/s"
    if [ "$c" = default ]; then
      best_default=$(awk -v a="$best_default" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
    else
      best_tuned=$(awk -v a="$best_tuned" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
    fi
  done
done
awk -v d="$best_default" -v t="$best_tuned" 'BEGIN {
  printf "default: %s samples/s; tuned: %s samples/s; tuned / default: %.2f\n", d, t, t / d }'
