#!/usr/bin/env bash
# Runs the test suite of a build made with -DCLPAR_SANITIZE=address,undefined (run.sh test
# does) and fails on any sanitizer finding. Findings are written to files rather than judged
# by exit status, because many checks expect a tool to fail, and criterion's forked test
# processes do not pass a leak report on. Usage: tests/sanitized.sh BUILD [ctest options]
set -uo pipefail
build="$(cd "${1:?usage: tests/sanitized.sh BUILD [ctest options]}" && pwd)"
shift
src="$(cd "$(dirname "$0")/.." && pwd)"
logs="$build/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
# verify_asan_link_order=0: the kill test preloads a library, and oclgrind preloads its own
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:verify_asan_link_order=0:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$src/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
# the tests labelled plain_only (Oclgrind's) run in the plain build alone (tests/CMakeLists.txt)
(cd "$build" && ctest --output-on-failure -j"$(nproc)" -LE plain_only "$@")
rc=$?
found=$(find "$logs" -type f | wc -l)
if [ "$found" -gt 0 ]; then
  echo "sanitizers: $found report(s):" >&2
  for f in "$logs"/*; do echo "== $f" >&2; head -60 "$f" >&2; done
  exit 1
fi
echo "sanitizers: no findings"
exit "$rc"
