#!/usr/bin/env bash
# Resource limits through clpar-train: a model larger than a device's memory, a batch larger
# than the data, a mesh larger than the devices, and a full disk while saving and
# checkpointing (a 64 KiB tmpfs): each a one-line error and exit 1, nothing torn, nothing left
# behind, the file already at the path untouched.
. "$(dirname "$0")/harness.sh"
train="$B/clpar-train"
# refused DESCRIPTION PATTERN ARGS...: exit 1 with one line on stderr matching PATTERN
refused() {
  local what="$1" pattern="$2"
  shift 2
  "$train" "$@" >/dev/null 2>"$T/err"
  local rc=$?
  check "$what: exit 1 (got $rc)" test $rc -eq 1
  check "$what: one line naming it ($(head -c 200 "$T/err"))" \
    bash -c "[ \$(wc -l <'$T/err') -eq 1 ] && grep -q '$pattern' '$T/err'"
}

# sizes from device 0's own limits (PoCL's depend on the host's free memory): hidden layers of
# h x h parameters whose one buffer exceeds the largest allocation, and whose four (Adam:
# parameters, gradients, two moments) each fit it but together exceed the memory
read -r big fits < <("$B/clpar-devices" --json --devices 0 | python3 -c "
import json, math, sys
d = json.load(sys.stdin)[0]
mem, most = d['global_mem_bytes'], d['max_alloc_bytes']
assert 4 * 0.95 * most > mem, 'this device cannot hold 4 buffers of its largest allocation'
print(math.isqrt(2 * most // 4) + 1, math.isqrt(int(0.95 * most) // 4))")
refused "parameters beyond a device's largest buffer" "cannot allocate .* bytes for the parameters" \
  --data synthetic --model "10,$big,$big,5" --steps 1 --devices 0
refused "a model beyond a device's memory" "cannot allocate .* bytes.*already in use" \
  --data synthetic --model "10,$fits,$fits,5" --steps 1 --devices 0 --optim adam
refused "a batch larger than the data" "batch 5000 is larger than the .* training samples" \
  --data synthetic --batch 5000 --steps 1
refused "a mesh larger than the devices" "8 ranks .* need 8 devices" \
  --data synthetic --dp 8 --devices 0,1,2,3 --steps 1

# a full disk: a tmpfs of 64 KiB (needs mount rights; the fault sweep's write faults cover
# the same path everywhere)
small="$T/small"
mkdir -p "$small"
if mount -t tmpfs -o size=64k tmpfs "$small" 2>/dev/null; then
  trap 'umount "$small" 2>/dev/null; rm -rf "$T"' EXIT
  printf 'the previous model\n' >"$small/model.safetensors"
  refused "--save on a full disk" "model.safetensors.tmp.*: write failed: No space left on device" \
    --data synthetic --model 10,4096,5 --steps 2 --save "$small/model.safetensors"
  check "the previous model is untouched" grep -q "the previous model" "$small/model.safetensors"
  refused "--checkpoint on a full disk" "ck.safetensors.tmp.*: write failed: No space left on device" \
    --data synthetic --model 10,4096,5 --steps 2 --checkpoint "$small/ck.safetensors"
  check "nothing is left on the full disk" test "$(ls "$small")" = "model.safetensors"
  check "the disk has room again" test "$(du -k "$small" | cut -f1)" -le 4
else
  echo "full disk: skipped (no right to mount a tmpfs here)"
fi
finish
