#!/usr/bin/env bash
# Runs every fuzz harness of a build made with CC=clang -DCLPAR_FUZZ=ON for RUNS executions
# each (default 1,000,000) from the committed seeds (new inputs go to a scratch folder, so
# the seeds stay as committed), and fails on the first crash, leak, hang or sanitizer report.
# A crash input is left as crash-* in the current folder: add it to tests/data/fuzz/ (the
# regression inputs test_fuzz_regressions replays) once fixed.
#   fuzz/run.sh BUILD [RUNS] [TARGETS...]   (TARGETS: fuzz/targets.cmake's by default)
set -uo pipefail
build="${1:?usage: fuzz/run.sh BUILD [RUNS] [TARGETS...]}"
runs="${2:-1000000}"
shift $(($# < 2 ? $# : 2))
here="$(cd "$(dirname "$0")" && pwd)"
# by default every harness fuzz/targets.cmake names
targets="${*:-$(sed -n 's/^set(CLPAR_FUZZ_TARGETS \(.*\))$/\1/p' "$here/targets.cmake")}"
[ -n "$targets" ] || { echo "fuzz/run.sh: no targets in $here/targets.cmake" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export LSAN_OPTIONS="suppressions=$here/../tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in $targets; do
  mkdir -p "$scratch/$t"
  start=$(date +%s)
  "$build/fuzz/fuzz_$t" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=1 \
    -print_final_stats=1 "$scratch/$t" "$here/corpus/$t" >"$scratch/$t.log" 2>&1
  rc=$?
  done_line=$(grep -a "stat::number_of_executed_units" "$scratch/$t.log" | awk '{print $2}')
  echo "fuzz_$t: ${done_line:-?} executions in $(($(date +%s) - start)) s, corpus $(ls "$scratch/$t" | wc -l) new inputs, exit $rc"
  if [ $rc -ne 0 ]; then
    status=1
    grep -a -A25 "ERROR\|==.*==" "$scratch/$t.log" | head -40
  fi
done
exit $status
