# Shared by bench/tune.sh and bench/gemm_ab.sh (sourced): the training run they compare,
# from WHAT (mlp or gpt) into model, batch and run (clpar-train's options), the scratch
# folder tmp (removed at exit) with a corpus in it when a GPT needs one; exits naming the
# script on bad input.
#   mlp: the default model 784,256,128,10 at batch 128 on Fashion-MNIST (the default data)
#   gpt: the GPT of bench/gpt.sh (4 layers, 4 heads, 256 features, context 128, batch 8) on
#        Debian's fortunes, all files concatenated
name=$(basename "$0")
# the runs' clpar caches go to folders of their own under tmp; PoCL's compiled kernels stay
# shared (the user's)
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocl}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$WHAT" = gpt ]; then
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' 2>/dev/null |
    sort | xargs cat >"$tmp/corpus" || true
  [ -s "$tmp/corpus" ] || { echo "bench/$name: install Debian's fortunes package" >&2; exit 1; }
  model=gpt:layers=4,heads=4,embd=256,ctx=128 batch=8
  run=(--data "text:$tmp/corpus" --optim adamw --lr 1e-3 --weight-decay 0)
elif [ "$WHAT" = mlp ]; then
  model=784,256,128,10 batch=128
  run=(--optim adam --lr 1e-3)
else
  echo "bench/$name: expected mlp or gpt, got '$WHAT'" >&2
  exit 1
fi

# alternate ROUNDS A B: the run ROUNDS times under each of the cache folders $tmp/A and
# $tmp/B in turn (S steps on device 0), each run's samples/s, then the best of each and B/A
alternate() {
  local rounds="$1" a="$2" b="$3" best_a=0 best_b=0 out v
  for _ in $(seq "$rounds"); do
    for c in "$a" "$b"; do
      out=$(XDG_CACHE_HOME="$tmp/$c" "$B/clpar-train" "${run[@]}" --model "$model" \
        --batch "$batch" --steps "$S" --devices 0 --quiet)
      v=$(sed -n 's/.*(\([0-9.]*\) samples\/s).*/\1/p' <<<"$out")
      echo "$c: $v samples/s"
      if [ "$c" = "$a" ]; then
        best_a=$(awk -v x="$best_a" -v y="$v" 'BEGIN { print (y > x ? y : x) }')
      else
        best_b=$(awk -v x="$best_b" -v y="$v" 'BEGIN { print (y > x ? y : x) }')
      fi
    done
  done
  awk -v a="$best_a" -v b="$best_b" -v na="$a" -v nb="$b" 'BEGIN {
    printf "%s: %s samples/s; %s: %s samples/s; %s / %s: %.2f\n", na, a, nb, b, nb, na, b / a }'
}
