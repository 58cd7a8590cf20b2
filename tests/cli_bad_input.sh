#!/usr/bin/env bash
# Bad input to the tools: each case must exit non-zero (not by a signal) with exactly one
# line on stderr that names the problem, and must not leave a file behind.
. "$(dirname "$0")/harness.sh"

expect_error() { # expect_error WORD-IN-MESSAGE command...
  local want="$1"
  shift
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$T/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -qF -- "$want" "$T/err"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: $* (exit $rc, $lines stderr lines, wanted '$want'):"
    cat "$T/err"
  fi
}

train="$B/clpar-train"
syn=(--data synthetic --steps 2 --quiet)
expect_error "no device 99" "$train" "${syn[@]}" --devices 99
expect_error "empty device spec" "$train" "${syn[@]}" --devices ""
expect_error "--batch 0 is out of range" "$B/clpar-devices" --tune --batch 16,0
expect_error "at most 8 batch sizes" "$B/clpar-devices" --tune --batch 1,2,3,4,5,6,7,8,9
expect_error "--batch expects an integer, got 'x'" "$B/clpar-devices" --tune --batch 16,x
expect_error "device spec '0,,1'" "$train" "${syn[@]}" --devices "0,,1"
expect_error "selects no device" "$train" "${syn[@]}" --devices gpu
expect_error "model size list" "$train" "${syn[@]}" --model "10,,5"
expect_error "model size list" "$train" "${syn[@]}" --model "10"
expect_error "model size list" "$train" "${syn[@]}" --model "ten,5"
expect_error "--model takes 11 inputs" "$train" "${syn[@]}" --model "11,5"
expect_error "--dp 0 is out of range" "$train" "${syn[@]}" --dp 0
expect_error "--dp" "$train" "${syn[@]}" --dp -3
expect_error "--dp 5 is larger than --batch 4" "$train" "${syn[@]}" --dp 5 --batch 4 --devices 0,0,0,0,0
expect_error "device spec names 2" "$train" "${syn[@]}" --dp 3 --devices 0,1
expect_error "--accum 0" "$train" "${syn[@]}" --accum 0
CLPAR_GEMM_PATH=fastest expect_error "CLPAR_GEMM_PATH=fastest" "$train" "${syn[@]}"
CLPAR_GEMM_PATH=fastest expect_error "CLPAR_GEMM_PATH=fastest" "$train" "${syn[@]}" --dry-run
check "--dry-run prints no plan before a bad CLPAR_GEMM_PATH" test ! -s "$T/out"
expect_error "--batch 0" "$train" "${syn[@]}" --batch 0
expect_error "--lr" "$train" "${syn[@]}" --lr -1
expect_error "--lr expects a number" "$train" "${syn[@]}" --lr fast
expect_error "--steps 0" "$train" "${syn[@]}" --steps 0
expect_error "unknown option" "$train" --frobnicate
expect_error "--loss must be" "$train" "${syn[@]}" --loss hinge
expect_error "--optim must be" "$train" "${syn[@]}" --optim lbfgs
expect_error "--grad-reduce must be" "$train" "${syn[@]}" --grad-reduce max
expect_error "cannot allocate" "$train" "${syn[@]}" --model "10,40000000,5"

# parallel layouts
expect_error "--tp 0 is out of range" "$train" "${syn[@]}" --tp 0
expect_error "--tp 7 is larger than layer 0's 5 output features" "$train" "${syn[@]}" --tp 7 --devices 0,0,0,0,0,0,0
expect_error "--pp 3 is larger than the model's 1 layers" "$train" "${syn[@]}" --pp 3 --devices 0,0,0
expect_error "--stages adds up to 3 layers, the model has 2" "$train" "${syn[@]}" --model 10,8,5 --stages 1,2 --devices 0,0
expect_error "--stages '1,x'" "$train" "${syn[@]}" --stages 1,x
expect_error "--stages lists 2 stages but --pp is 3" "$train" "${syn[@]}" --model 10,8,8,5 --stages 2,1 --pp 3
expect_error "--micro-batches 200 is larger than --batch 100" "$train" "${syn[@]}" --micro-batches 200 --batch 100
expect_error "--micro-batches 0" "$train" "${syn[@]}" --micro-batches 0
expect_error "--schedule must be" "$train" "${syn[@]}" --schedule zigzag
expect_error "4 ranks (dp 2 x pp 1 x tp 2) need 4 devices, but the device spec names 3" "$train" "${syn[@]}" --dp 2 --tp 2 --devices 0,1,2
expect_error "$T/no/trace.json" "$train" "${syn[@]}" --trace "$T/no/trace.json"
expect_error "$T/no/tl.svg" "$train" "${syn[@]}" --timeline "$T/no/tl.svg"

# a GPT on text
gpt=(--data "text:$(dirname "$0")/../README.md" --steps 1 --quiet)
expect_error "embd 32 is not a multiple of heads 3" "$train" "${gpt[@]}" --model gpt:layers=1,heads=3,embd=32,ctx=16
expect_error "give --model gpt:" "$train" "${gpt[@]}" --model 10,5
expect_error "give --data text:FILE" "$train" --model gpt:layers=1,heads=2,embd=16,ctx=8 --steps 1
expect_error "expected gpt:layers=L" "$train" "${gpt[@]}" --model gpt:layers=x
expect_error "--tp 3 is larger than the 2 heads" "$train" "${gpt[@]}" --model gpt:layers=1,heads=2,embd=16,ctx=8 --tp 3 --devices 0,1,2
expect_error "holds no sample of ctx 4000" "$train" --data "text:$(dirname "$0")/harness.sh" --model gpt:layers=1,heads=2,embd=16,ctx=4000 --steps 1
expect_error "$T/none.txt" "$train" --data "text:$T/none.txt" --model gpt:layers=1,heads=2,embd=16,ctx=8 --steps 1

# data sets: missing folder, wrong magic, truncated, counts that disagree
expect_error "$T/nodata" "$train" --data "$T/nodata" --steps 1
mkdir -p "$T/magic" "$T/trunc" "$T/count"
python3 - "$T" <<'PY'
import gzip, struct, sys
t = sys.argv[1]
def write(d, split, n, magic=0x803, labels=None, cut=0, rows=28):
    img = struct.pack(">IIII", magic, n, rows, 28) + bytes(n * rows * 28)
    lab = struct.pack(">II", 0x801, n if labels is None else labels) + bytes(n if labels is None else labels)
    with gzip.open(f"{d}/{split}-images-idx3-ubyte.gz", "wb") as f: f.write(img[:len(img) - cut])
    with gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz", "wb") as f: f.write(lab)
write(f"{t}/magic", "train", 4, magic=0x1234); write(f"{t}/magic", "t10k", 2)
write(f"{t}/trunc", "train", 4, cut=100); write(f"{t}/trunc", "t10k", 2)
write(f"{t}/count", "train", 4, labels=3); write(f"{t}/count", "t10k", 2)
PY
expect_error "bad magic" "$train" --data "$T/magic" --steps 1
expect_error "bytes of pixels" "$train" --data "$T/trunc" --steps 1
expect_error "labels" "$train" --data "$T/count" --steps 1

# safetensors: truncated, bad header, wrong shapes
"$train" "${syn[@]}" --save "$T/good.safetensors" >/dev/null 2>&1 || { echo "FAIL: could not save"; fail=$((fail + 1)); }
head -c 100 "$T/good.safetensors" >"$T/trunc.safetensors"
printf '\x10\x00\x00\x00\x00\x00\x00\x00[not a header!!]' >"$T/header.safetensors"
expect_error "trunc.safetensors" "$train" "${syn[@]}" --init "$T/trunc.safetensors"
expect_error "does not start with '{'" "$train" "${syn[@]}" --init "$T/header.safetensors"
expect_error "0.weight" "$train" "${syn[@]}" --model 10,7,5 --init "$T/good.safetensors"
expect_error "$T/missing.safetensors" "$train" "${syn[@]}" --init "$T/missing.safetensors"
expect_error "$T/no/such/dir" "$train" "${syn[@]}" --save "$T/no/such/dir/m.safetensors"
expect_error "$T/no/log.csv" "$train" "${syn[@]}" --log "$T/no/log.csv"
if ls "$T"/no 2>/dev/null | grep -q .; then echo "FAIL: a file was left"; fail=$((fail + 1)); fi

gen="$B/clpar-generate"
expect_error "--init FILE names the model" "$gen"
expect_error "$T/none.safetensors" "$gen" --init "$T/none.safetensors"
expect_error "names no model" "$gen" --init "$(dirname "$0")/data/gpt_model.safetensors"
expect_error "holds an MLP" "$gen" --init "$T/good.safetensors" --model 10,5
expect_error "--temperature" "$gen" --init "$T/good.safetensors" --temperature -1
expect_error "--prompt is empty" "$gen" --init "$T/good.safetensors" --prompt ""
expect_error "unknown option" "$gen" --bogus

devices="$B/clpar-devices"
expect_error "no device 42" "$devices" --devices 42
expect_error "unknown option" "$devices" --bogus
expect_error "--size" "$devices" --bench --size 3
expect_error "not a multiple of heads 3" "$devices" --bench --model gpt:layers=1,heads=3,embd=8,ctx=4
expect_error "--candidates" "$devices" --tune --candidates 0

finish
