#!/usr/bin/env bash
# clpar's kernels under Oclgrind, a simulator that checks every memory access: the kernel
# tests (element-wise, losses, optimizers; the transformer's) run on Oclgrind alone with its
# data-race detector on, and fail on any error Oclgrind reports (out-of-bounds access, race,
# invalid API use) as well as on their own assertions. (Debian's Oclgrind cannot run its
# uninitialized-read plugin on these kernels: it stops at LLVM's `freeze` instruction.)
. "$(dirname "$0")/harness.sh"
export OCL_ICD_VENDORS="$T/icd" OCLGRIND_DATA_RACES=1 OCLGRIND_CHECK_API=1
mkdir -p "$OCL_ICD_VENDORS"
echo /usr/lib/oclgrind/liboclgrind-rt-icd.so >"$OCL_ICD_VENDORS/oclgrind.icd"
for t in test_kernels test_transformer_ops; do
  "$B/tests/$t" --jobs 1 >"$T/$t.out" 2>&1
  check "$t passes on Oclgrind" test $? -eq 0
  if grep -E "Invalid (read|write)|data race|Oclgrind|OCLGRIND" "$T/$t.out" >"$T/$t.err"; then
    fail=$((fail + 1))
    echo "FAIL: Oclgrind reports errors in $t:"
    head -20 "$T/$t.err"
  else
    pass=$((pass + 1))
  fi
done
finish
