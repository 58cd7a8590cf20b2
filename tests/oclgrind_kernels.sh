#!/usr/bin/env bash
# clpar's kernels under Oclgrind, a simulator that checks every memory access: the kernel
# tests (element-wise, losses, optimizers; the transformer's; clpar's GEMMs in every
# configuration of test_gemm) run on Oclgrind alone, and a layer's forward and backward
# through each GEMM path (clpar's kernels, CLBlast's direct and indirect), all at small, odd
# sizes, with the data-race detector, the uninitialized-read
# checker and API checks on; they fail on any error Oclgrind reports (out-of-bounds access,
# race, uninitialized value, invalid API use) as well as on their own assertions. The
# uninitialized-read checker cannot follow LLVM's `freeze` instruction, which optimized
# builds emit, so the kernels are built with -cl-opt-disable; the kernel tests also run once
# optimized, as every device builds them, for races and bounds.
. "$(dirname "$0")/harness.sh"
export OCL_ICD_VENDORS="$T/icd" OCLGRIND_DATA_RACES=1 OCLGRIND_CHECK_API=1
mkdir -p "$OCL_ICD_VENDORS"
echo /usr/lib/oclgrind/liboclgrind-rt-icd.so >"$OCL_ICD_VENDORS/oclgrind.icd"
# under NAME COMMAND...: the command passes and Oclgrind reports nothing
under() {
  local name="$1"
  shift
  "$@" >"$T/out" 2>&1
  check "$name passes on Oclgrind" test $? -eq 0
  if grep -E "Invalid (read|write)|data race|ninitiali|Oclgrind|OCLGRIND" "$T/out" >"$T/err"; then
    fail=$((fail + 1))
    echo "FAIL: Oclgrind reports errors in $name:"
    head -20 "$T/err"
  else
    pass=$((pass + 1))
  fi
}
for t in test_kernels test_transformer_ops; do
  under "$t (optimized)" "$B/tests/$t" --jobs 1
  OCLGRIND_UNINITIALIZED=1 OCLGRIND_BUILD_OPTIONS=-cl-opt-disable \
    under "$t (all checks)" "$B/tests/$t" --jobs 1
done
# (its products wider than one launch and larger sizes would take the simulator minutes)
export CLPAR_TEST_GEMM_QUICK=1
under "test_gemm (optimized)" "$B/tests/test_gemm" --jobs 1 --filter 'gemm/clpar_kernels*'
OCLGRIND_UNINITIALIZED=1 OCLGRIND_BUILD_OPTIONS=-cl-opt-disable \
  under "test_gemm (all checks)" "$B/tests/test_gemm" --jobs 1 --filter 'gemm/clpar_kernels*'
for path in clpar direct indirect; do
  OCLGRIND_UNINITIALIZED=1 OCLGRIND_BUILD_OPTIONS=-cl-opt-disable CLPAR_GEMM_PATH=$path \
    under "a layer through the $path GEMM" "$B/tests/test_model" --jobs 1 \
    --filter 'linear/forward_backward_against_reference'
done
finish
