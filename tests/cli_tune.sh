#!/usr/bin/env bash
# GEMM tuning through the tools: clpar-devices --tune checks and times configurations, keeps
# the fastest in the cache, and clpar-train then trains with it to the same result; a
# damaged cache entry is ignored.
. "$(dirname "$0")/harness.sh"
loss() { sed -n 's/^done:.*test loss \([0-9.]*\).*/\1/p' "$1"; }
# same_loss A B: both runs ended at the same test loss, to the printed 4 decimals give or take
# one (other kernels round differently)
same_loss() {
  local a b
  a=$(loss "$1") b=$(loss "$2")
  [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d * d <= 4e-8) }'
}
train=("$B/clpar-train" --data synthetic --model 10,24,16,5 --batch 16 --steps 6 --devices 0 --quiet)

XDG_CACHE_HOME="$T/plain" "${train[@]}" >"$T/plain.txt" 2>&1
check "untuned training runs" grep -q "^done:" "$T/plain.txt"

XDG_CACHE_HOME="$T/tuned" "$B/clpar-devices" --tune --devices 0 --model 10,24,16,5 --batch 16 \
  --candidates 2 >"$T/tune.txt" 2>&1
check "tune runs" test $? -eq 0
check "tune times every configuration" test "$(grep -c ' ms  ' "$T/tune.txt")" -eq 2
check "tune reports the best" grep -q "best .* ms (.*x the untuned" "$T/tune.txt"
check "tune saves it" grep -q "saved for later runs" "$T/tune.txt"
check "the best is cached" test "$(wc -l <"$T/tuned/clpar/gemm.tsv")" -eq 1
XDG_CACHE_HOME="$T/tuned" "${train[@]}" >"$T/tuned.txt" 2>&1
check "tuned training runs" grep -q "^done:" "$T/tuned.txt"
check "tuned training ends where untuned does" same_loss "$T/tuned.txt" "$T/plain.txt"

# a direct configuration of the grid, written by hand, is applied and trains the same
key=$(cut -f1 "$T/tuned/clpar/gemm.tsv")
mkdir -p "$T/hand/clpar"
printf '%s\tdirect WGD=16 MDIMCD=4 NDIMCD=4 MDIMAD=4 NDIMBD=4 KWID=2 VWMD=2 VWND=2 PADA=1 PADB=1\n' \
  "$key" >"$T/hand/clpar/gemm.tsv"
XDG_CACHE_HOME="$T/hand" "${train[@]}" >"$T/hand.txt" 2>&1
check "a hand-written configuration trains the same" same_loss "$T/hand.txt" "$T/plain.txt"
# routes written by hand: one product on another parameter set of clpar's kernels, one on
# CLBlast; the run trains the same and --trace names them
printf '%s\tclpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 | NT 16x24x10 clpar MT=1 NT=1 MX=1 NX=1 VW=4 WG=1 RD=1 PH=0 | TN 16x24x16 clblast\n' \
  "$key" >"$T/hand/clpar/gemm.tsv"
XDG_CACHE_HOME="$T/hand" "${train[@]:0:${#train[@]}-1}" --trace "$T/trace.json" >"$T/routed.txt" 2>&1
check "a tuning with routes trains the same" same_loss "$T/routed.txt" "$T/plain.txt"
check "--trace names the routed products" \
  grep -q "layer 0 forward .* routed: clpar MT=1 NT=1 MX=1 NX=1 VW=4 WG=1 RD=1 PH=0 TB=0$" "$T/routed.txt"
check "--trace names a product routed to CLBlast" \
  grep -q "layer 1 weight grad .* routed: CLBlast$" "$T/routed.txt"
check "--trace routes nothing else" test "$(grep -c "routed:" "$T/routed.txt")" -eq 2
# two replicas, each device warmed up with the routed kernels before their threads run
dp2=(--data synthetic --model 10,24,16,5 --batch 32 --steps 6 --devices 0,1 --dp 2 --quiet)
XDG_CACHE_HOME="$T/plain" "$B/clpar-train" "${dp2[@]}" >"$T/plain_dp2.txt" 2>&1
XDG_CACHE_HOME="$T/hand" "$B/clpar-train" "${dp2[@]}" >"$T/routed_dp2.txt" 2>&1
check "routes train two replicas the same" same_loss "$T/routed_dp2.txt" "$T/plain_dp2.txt"
printf '%s\tdirect WGD=0 MDIMCD=4\n%s\tbogus\n' "$key" "$key" >"$T/hand/clpar/gemm.tsv"
XDG_CACHE_HOME="$T/hand" "${train[@]}" >"$T/bad.txt" 2>&1
check "damaged cache entries are ignored" same_loss "$T/bad.txt" "$T/plain.txt"

# a GPT's products (15 distinct at this size); the MLP's routes stay (another model's shapes)
XDG_CACHE_HOME="$T/tuned" "$B/clpar-devices" --tune --devices 0 --batch 2 --candidates 1 \
  --model gpt:layers=1,heads=2,embd=8,ctx=4 >"$T/tune_gpt.txt" 2>&1
check "tune takes a GPT" grep -q "gpt:layers=1,heads=2,embd=8,ctx=4 at batch 2 (15 products)" \
  "$T/tune_gpt.txt"
check "a second tuning appends its line" test "$(wc -l <"$T/tuned/clpar/gemm.tsv")" -eq 2
# several batches at once: each batch's products, a shape once
XDG_CACHE_HOME="$T/tuned" "$B/clpar-devices" --tune --devices 0 --batch 2,4,2 --candidates 1 \
  --model 10,24,16,5 >"$T/tune_two.txt" 2>&1
check "tune takes several batches" grep -q "10,24,16,5 at batch 2,4,2 (16 products)" "$T/tune_two.txt"

finish
