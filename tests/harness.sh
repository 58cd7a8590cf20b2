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
# the Python checks below read safetensors through tests/data/safetensors_file.py
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/data${PYTHONPATH:+:$PYTHONPATH}"
# whole FILE: a safetensors file whose header parses and whose tensors fill it exactly
whole() {
  python3 - "$1" <<'PY'
import sys
import safetensors_file as st
h, p = st.read(sys.argv[1])
end = max([h[k]["data_offsets"][1] for k in st.names(h)] + [0])
assert end == len(p), "torn"
PY
}
# relative L2 distance between the models (not the optimizers) in two safetensors files
rel_l2() {
  python3 - "$1" "$2" <<'PY'
import math, sys
import safetensors_file as st
a, b = st.floats(sys.argv[1], optimizer=False), st.floats(sys.argv[2], optimizer=False)
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
