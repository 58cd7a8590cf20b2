#!/usr/bin/env bash
# The planner through the tools: clpar-devices --plan (text and JSON), clpar-train --mesh auto
# and --dry-run, --balance; and the run's outputs: --log, --trace (with its per-layer GEMM
# report), --timeline, the round trips per step.
. "$(dirname "$0")/harness.sh"
export XDG_CACHE_HOME="$T/cache"

"$B/clpar-devices" --plan --model 10,16,16,5 --batch 64 >"$T/plan.txt" 2>&1
check "plan runs" test $? -eq 0
check "plan lists meshes" grep -q "feasible meshes" "$T/plan.txt"
check "plan gives command lines" grep -q "clpar-train --model 10,16,16,5 --batch 64 --devices" "$T/plan.txt"
check "measurements are cached" test -s "$T/cache/clpar/measurements.tsv"
"$B/clpar-devices" --plan --model 10,16,16,5 --batch 64 >"$T/again.txt" 2>&1
check "the second plan uses the cache" grep -q "(cached)" "$T/again.txt"
"$B/clpar-devices" --tune --devices 0 --model 10,16,16,5 --batch 64 --candidates 1 >/dev/null 2>&1
"$B/clpar-devices" --plan --model 10,16,16,5 --batch 64 --devices 0 >"$T/retuned.txt" 2>&1
check "a new GEMM tuning makes the plan measure again" \
  sh -c 'grep -q "measuring device 0" "$1" && ! grep -q "(cached)" "$1"' _ "$T/retuned.txt"
"$B/clpar-devices" --plan --model 10,16,16,5 --batch 64 --json >"$T/plan.json"
check "plan --json is JSON with plans" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['plans'] and d['plans'][0]['step_ms'] > 0" "$T/plan.json"
"$B/clpar-devices" --plan --batch 64 2>"$T/err" >/dev/null
check "plan without a model is refused" grep -q "needs --model" "$T/err"

"$B/clpar-train" --data synthetic --mesh auto --steps 3 >"$T/auto.txt" 2>&1
check "--mesh auto trains" grep -q "^done:" "$T/auto.txt"
check "--mesh auto says what it chose" grep -q "mesh auto: dp" "$T/auto.txt"

# per-GEMM accounting: the peak and every product of a step, with the layer's shapes
"$B/clpar-devices" --bench --size 32 --model 10,16,5 --batch 8 --devices 0 --json >"$T/bench.json"
check "--bench --model reports the peak and each GEMM of the step" python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d['peak_gflops'] > 0 and d['sgemm_gflops'] > 0
got = [(p['layer'], p['gemm'], p['m'], p['n'], p['k']) for p in d['products']]
assert got == [(0, 'forward', 8, 16, 10), (0, 'weight grad', 16, 10, 8), (1, 'forward', 8, 5, 16),
               (1, 'input grad', 8, 16, 5), (1, 'weight grad', 5, 16, 8)], got
assert all(p['gflops'] > 0 and abs(p['share_of_peak'] - p['gflops'] / d['peak_gflops']) < 1e-3
           for p in d['products'])" "$T/bench.json"
# a GPT's: the products of its linear maps and head (2 blocks: 2 per step each, the head 1),
# then its other kernels with their calls per step; a table line per row and a step's sum
g=gpt:layers=2,heads=2,embd=16,ctx=8,vocab=40
"$B/clpar-devices" --bench --size 32 --model $g --batch 3 --devices 0 --json >"$T/gbench.json"
check "--bench --model gpt:... reports each product and kernel of the step" python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))[0]
got = [(p['module'], p['gemm'], p['m'], p['n'], p['k'], p['per_step']) for p in d['products']]
want = []
for name, i, o, per in [('attn.c_attn', 16, 48, 2), ('attn.c_proj', 16, 16, 2),
                        ('mlp.c_fc', 16, 64, 2), ('mlp.c_proj', 64, 16, 2),
                        ('head (x wte^T)', 16, 40, 1)]:
    want += [(name, 'forward', 24, o, i, per), (name, 'input grad', 24, i, o, per),
             (name, 'weight grad', o, i, 24, per)]
want += [('layer norms', w, 24, 16, 0, 5) for w in ('forward', 'input grad', 'weight grad')]
want += [('GELU', w, 24, 64, 0, 2) for w in ('forward', 'input grad')]
want += [('attention', w, 3, 8, 0, 2) for w in ('forward', 'input grad')]
want += [('cross-entropy', w, 24, 40, 0, 1) for w in ('forward', 'input grad')]
assert got == want, got
assert all(p['ms'] > 0 for p in d['products'])
assert all((p['gflops'] > 0) == (p['k'] > 0) for p in d['products'])" "$T/gbench.json"
"$B/clpar-devices" --bench --size 32 --model $g --batch 3 --devices 0 >"$T/gbench.txt"
check "and as a table, with one step's sum" bash -c "grep -c 'per step$' '$T/gbench.txt' | grep -qx 24 &&
  grep -q 'one step, from these calls alone: GEMMs [0-9.]* ms, other kernels [0-9.]* ms' '$T/gbench.txt'"

# a GPT: planned, chosen and balanced from its own measurement
gpt=(--data "text:$(dirname "$0")/../README.md" --model gpt:layers=2,heads=2,embd=16,ctx=8 --batch 8)
"$B/clpar-devices" --plan --model gpt:layers=2,heads=2,embd=16,ctx=8 --batch 8 --devices 0,1,2,3 --top 20 >"$T/gplan.txt" 2>&1
check "plan measures a GPT" grep -q "measuring device 0 on gpt:layers=2" "$T/gplan.txt"
check "a GPT's plans include pipelines cut between blocks" grep -q "pp 2 .*--stages" "$T/gplan.txt"
"$B/clpar-train" "${gpt[@]}" --mesh auto --steps 2 >"$T/gauto.txt" 2>&1
check "--mesh auto trains a GPT" grep -q "^done:" "$T/gauto.txt"
check "--mesh auto chose a GPT's mesh" grep -q "mesh auto: dp" "$T/gauto.txt"
"$B/clpar-train" "${gpt[@]}" --pp 2 --devices 0,1 --balance auto --steps 2 >"$T/gbal.txt" 2>&1
check "--balance auto trains a GPT" grep -q "^done:" "$T/gbal.txt"
check "--balance auto reports a GPT's stages" grep -q "^  stage 1: layers" "$T/gbal.txt"
"$B/clpar-train" "${gpt[@]}" --pp 2 --devices 0,1 --steps 2 >"$T/gpp.txt" 2>&1
check "equal speeds cut a GPT where no speeds do" \
  diff <(grep "^  stage .*: layers" "$T/gbal.txt" | cut -d, -f1) <(grep "^  stage .*: layers" "$T/gpp.txt" | cut -d, -f1)

"$B/clpar-train" --data synthetic --model 10,16,16,5 --dp 2 --tp 2 --devices 0,1,2,3 --dry-run >"$T/dry.txt" 2>&1
check "--dry-run prints the rank map" grep -q "rank 3 -> device 3" "$T/dry.txt"
check "--dry-run does not train" bash -c "! grep -q '^done:' '$T/dry.txt'"
# 600 x 400 panels of clpar's kernels beside 64 rows: (448 + 64) 600 floats and the warm-up's
# 64 Ki (test_mesh checks the devices hold what is predicted); CLBlast's path takes none
"$B/clpar-train" --data synthetic --model 10,600,400,5 --batch 64 --devices 0 --dry-run >"$T/dryw.txt" 2>&1
check "--dry-run predicts the GEMM workspace" grep -q "activations, 1.42 GEMM workspace" "$T/dryw.txt"
CLPAR_GEMM_PATH=auto "$B/clpar-train" --data synthetic --model 10,600,400,5 --batch 64 --devices 0 \
  --dry-run >"$T/dryw.txt" 2>&1
check "--dry-run predicts no workspace on CLBlast's path" grep -q "0.00 GEMM workspace" "$T/dryw.txt"
# what --dry-run predicts for each rank is what the run then holds (its rank map's memory)
mem() { sed -n 's/^  rank \([0-9]*\) .*[:,] \([0-9.]*\) MiB\( predicted\)\? (.*/\1 \2/p' "$1"; }
for mesh in "--dp 2 --tp 2" "--pp 2 --tp 2 --micro-batches 4"; do
  # shellcheck disable=SC2086
  "$B/clpar-train" --data synthetic --model 10,600,400,5 --batch 64 $mesh --devices 0,1,2,3 \
    --dry-run >"$T/pred.txt" 2>&1
  # shellcheck disable=SC2086
  "$B/clpar-train" --data synthetic --model 10,600,400,5 --batch 64 $mesh --devices 0,1,2,3 \
    --steps 2 >"$T/held.txt" 2>&1
  mem "$T/pred.txt" >"$T/pred.mem"
  mem "$T/held.txt" >"$T/held.mem"
  check "$mesh: four ranks' memory predicted" test "$(wc -l <"$T/pred.mem")" -eq 4
  check "$mesh: each rank holds the memory --dry-run predicted" diff "$T/pred.mem" "$T/held.mem"
done
"$B/clpar-train" --data synthetic --model 10,16,16,5 --dp 3 --tp 2 --devices 0,1,2,3 --dry-run >/dev/null 2>"$T/err"
check "--dry-run refuses a mesh larger than the spec" grep -q "6 ranks" "$T/err"

"$B/clpar-train" --data synthetic --model 10,16,16,5 --dp 2 --tp 2 --devices 0,1,2,3 --balance auto --steps 3 >"$T/bal.txt" 2>&1
check "--balance auto measures every rank" grep -q "balance: rank 3 on device 3" "$T/bal.txt"
check "--balance auto trains" grep -q "^done:" "$T/bal.txt"
"$B/clpar-train" --data synthetic --balance fastest 2>"$T/err" >/dev/null
check "--balance takes auto or equal" grep -q "must be auto or equal" "$T/err"

"$B/clpar-train" --data synthetic --model 10,16,16,5 --pp 2 --micro-batches 4 --devices 0,1 \
  --steps 12 --batch 100 --log "$T/log.csv" --trace "$T/t.json" --timeline "$T/t.svg" >"$T/out.txt" 2>&1
check "--log has a header and one row per step" python3 -c "
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ['step', 'epoch', 'loss', 'samples_per_sec'], rows[0]
assert [int(r[0]) for r in rows[1:]] == list(range(1, 13)), rows
assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows[1:])" "$T/log.csv"
check "--trace is Chrome trace JSON with both stages' work" python3 -c "
import json, sys
ev = json.load(open(sys.argv[1]))['traceEvents']
work = [e for e in ev if e['ph'] == 'X' and e['cat'] in ('forward', 'backward')]
assert {e['pid'] for e in work} == {0, 1}, 'both ranks'
assert any(e['cat'] == 'copy' for e in ev if e['ph'] == 'X'), 'hand-off copies'" "$T/t.json"
check "--timeline is an SVG picture" grep -q "<svg" "$T/t.svg"
check "the run reports the bubble and activation memory" grep -q "bubble .* ideal" "$T/out.txt"
check "the run reports its launches and host waits per step" \
  grep -q "^round trips: [0-9.]* kernel launches and [0-9.]* host waits per step" "$T/out.txt"
check "--trace reports each layer's products per step, their sizes and GFLOP/s" python3 -c "
import re, sys
t = open(sys.argv[1]).read()
rows = re.findall(r'layer (\d) (forward|input grad|weight grad) +(\d+) x +(\d+) x +(\d+): +([\d.]+) ms +([\d.]+) GFLOP/s', t)
assert len(rows) == 8, rows
sizes = [10, 16, 16, 5]
for l, what, m, n, k, ms, gf in rows:
    i, o = sizes[int(l)], sizes[int(l) + 1]
    want = {'forward': (100, o, i), 'input grad': (100, i, o), 'weight grad': (o, i, 100)}[what]
    assert (int(m), int(n), int(k)) == want, (l, what, m, n, k)
    rate = 2 * int(m) * int(n) * int(k) / (float(ms) * 1e6)
    assert abs(rate - float(gf)) <= rate * 0.0006 / float(ms) + 0.01, (rate, gf)" "$T/out.txt"

finish
