#!/usr/bin/env bash
# Every fault of tests/fault_sweep.sh's run, not a sample: each OpenCL/CLBlast call, each
# allocation and each file write of clpar's code failed in turn (one run per fault), with a
# line per fault in FAULT_LOG and a summary per kind. Slow (about 2 s per fault; the run makes
# about 2,850 OpenCL calls, 260 allocations and 75 writes).
#   bench/fault_sweep.sh [BUILD_DIR] [KINDS] [STRIDE] [START]  KINDS default "alloc write cl"
# With a build made with -DCLPAR_SANITIZE=address,undefined, run it through tests/sanitized.sh's
# settings to also catch leaks on the error paths: bench/fault_sweep.sh build-sanitize.
set -uo pipefail
B="$(cd "${1:-build}" && pwd)"
export CLPAR_BUILD_DIR="$B"
export POCL_DEVICES="${POCL_DEVICES:-pthread pthread pthread pthread}" POCL_MAX_PTHREAD_COUNT=1
export FAULT_KINDS="${2:-alloc write cl}" FAULT_STRIDE="${3:-1}" FAULT_START="${4:-1}"
export FAULT_LOG="${FAULT_LOG:-/tmp/clpar-fault-sweep.log}"
: >"$FAULT_LOG"
if grep -q "CLPAR_SANITIZE:STRING=." "$B/CMakeCache.txt" 2>/dev/null; then
  logs="$B/sanitizer-logs-faults"
  rm -rf "$logs" && mkdir -p "$logs"
  export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:verify_asan_link_order=0"
  export LSAN_OPTIONS="suppressions=$(dirname "$0")/../tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
fi
# every check's failure (and the summaries) also kept beside the log
bash "$(dirname "$0")/../tests/fault_sweep.sh" | tee "$FAULT_LOG.checks" | tail -12
rc=${PIPESTATUS[0]}
echo "outcomes (from $FAULT_LOG):"
sed 's/^\([a-z]*\):[0-9]* (\([A-Za-z_]*\)) exit \([0-9]*\).*/\1 \2 exit \3/' "$FAULT_LOG" | sort | uniq -c
if [ -n "${logs:-}" ]; then echo "sanitizer reports: $(find "$logs" -type f | wc -l)"; fi
exit "$rc"
