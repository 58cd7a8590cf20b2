#!/usr/bin/env bash
# clpar quick start: installs what is missing (Debian 12), builds, then
#   ./run.sh train [clpar-train options]   trains the default MLP on Fashion-MNIST
#   ./run.sh test                          runs the whole test suite, then again built with
#                                          AddressSanitizer and UndefinedBehaviorSanitizer,
#                                          the MPI and srun tests with MPICH, then each fuzz harness
#                                          briefly
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES="build-essential cmake pkg-config ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd
libclblast-dev libcriterion-dev zlib1g-dev libcjson-dev dataset-fashion-mnist oclgrind fortunes
clang libclang-rt-14-dev openmpi-bin libopenmpi-dev mpich libmpich-dev slurmd slurmctld slurm-client
munge"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "run.sh: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "run.sh: missing packages; install them with:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

cmd="${1:-train}"
[ $# -gt 0 ] && shift
case "$cmd" in
  train)
    exec ./build/clpar-train --mesh auto --epochs 10 "$@" ;;
  test)
    (cd build && ctest --output-on-failure -j"$(nproc)" -LE sanitized_only "$@")
    cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLPAR_SANITIZE=address,undefined >/dev/null
    cmake --build build-sanitize -j"$(nproc)" >/dev/null
    tests/sanitized.sh build-sanitize "$@"
    # the processes' tests again with MPICH in place of Open MPI (the default mpicc)
    cmake -S . -B build-mpich -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLPAR_MPI=ON \
      -DMPI_C_COMPILER=/usr/bin/mpicc.mpich >/dev/null
    cmake --build build-mpich -j"$(nproc)" --target clpar-train clpar-devices clpar_fault_shim \
      >/dev/null
    CLPAR_BUILD_DIR="$PWD/build-mpich" CLPAR_SOURCE_DIR="$PWD" bash tests/cli_mpi.sh
    CLPAR_BUILD_DIR="$PWD/build-mpich" CLPAR_SOURCE_DIR="$PWD" bash tests/cli_srun.sh
    CC=clang cmake -S . -B build-fuzz -DCLPAR_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
    cmake --build build-fuzz -j"$(nproc)" --target fuzz_all >/dev/null
    exec fuzz/run.sh build-fuzz "${CLPAR_FUZZ_RUNS:-20000}" ;;
  *)
    echo "usage: ./run.sh train [clpar-train options] | ./run.sh test [ctest options]" >&2
    exit 2 ;;
esac
