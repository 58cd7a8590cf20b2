# Shared by the shell tests (sourced): the build folder B, a scratch folder T removed on
# exit, pass/fail counters, check DESCRIPTION COMMAND... (passes when the command exits 0)
# and finish (prints the counts, fails when any check failed).
set -u
# PoCL keeps compiled kernels under $XDG_CACHE_HOME/pocl: tests that point XDG_CACHE_HOME at a
# scratch folder for clpar's own cache keep PoCL's, or every CLBlast kernel compiles again.
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocl}"
mkdir -p "$POCL_CACHE_DIR"
B="${CLPAR_BUILD_DIR:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() {
  local what="$1"
  shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
# whole FILE: a safetensors file whose header parses and whose tensors fill it exactly
whole() {
  python3 - "$1" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
end = max([v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"] + [0])
assert 8 + n + end == len(b), "torn"
PY
}
# relative L2 distance between the models in two safetensors files
rel_l2() {
  python3 - "$1" "$2" <<'PY'
import json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__" or k.startswith("optim."):
            continue
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys()
num = sum((x - y) ** 2 for k in a for x, y in zip(a[k], b[k]))
den = sum(y * y for k in b for y in b[k])
print(math.sqrt(num / den))
PY
}
# near A B: the models in A and B agree within 1e-5 (relative L2); same A B: bit for bit
near() {
  local d
  d=$(rel_l2 "$1" "$2") && python3 -c "import sys; sys.exit(0 if float('$d') <= 1e-5 else 1)" ||
    { echo "  distance $d"; return 1; }
}
same() { [ "$(rel_l2 "$1" "$2")" = "0.0" ]; }
finish() {
  echo "$(basename "$0" .sh): $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
