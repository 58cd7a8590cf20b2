#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs a small program against it
# twice: through find_package(clpar) and through pkg-config.
set -euo pipefail
B="${CLPAR_BUILD_DIR:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cmake --install "$B" --prefix "$T/prefix" >/dev/null
test -x "$T/prefix/bin/clpar-devices" && test -x "$T/prefix/bin/clpar-train"
# the installed tools start without LD_LIBRARY_PATH (their RUNPATH is $ORIGIN/../lib)
env -u LD_LIBRARY_PATH "$T/prefix/bin/clpar-devices" --json >/dev/null
grep -q "usage: clpar-train" <<<"$(env -u LD_LIBRARY_PATH "$T/prefix/bin/clpar-train" --help)"
grep -q "usage: clpar-generate" <<<"$(env -u LD_LIBRARY_PATH "$T/prefix/bin/clpar-generate" --help)"
# the library exports its API and nothing else
so=$(find "$T/prefix" -name 'libclpar.so.0' | head -1)
# read once: grep -q on a pipe would leave nm writing into a closed pipe (SIGPIPE, and with
# pipefail a failure) once the symbol table outgrows the pipe's buffer
syms=$(nm -D --defined-only "$so" | awk '{print $3}')
others=$(grep -v '^clpar_' <<<"$syms" || true)
if [ -n "$others" ]; then echo "libclpar exports non-API symbols: $others" >&2; exit 1; fi
grep -qx 'clpar_version' <<<"$syms"
for internal in clpar_error clpar_cl_error split_size; do
  if grep -qx "$internal" <<<"$syms"; then echo "exports $internal" >&2; exit 1; fi
done
mkdir "$T/src"
cat >"$T/src/main.c" <<'C'
#include <clpar/clpar.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    const char *v;
    if (clpar_version(&v) != CLPAR_VERSION || strcmp(v, CLPAR_VERSION_STRING)) return 2;
    clpar_runtime *rt;
    clpar_status st = clpar_runtime_init(&rt);
    if (st != CLPAR_OK) { printf("%s\n", clpar_last_error()); return 1; }
    printf("devices: %d\n", clpar_runtime_device_count(rt));
    clpar_runtime_free(rt);
    return 0;
}
C
cat >"$T/src/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(clpar REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE clpar::clpar)
C
cmake -S "$T/src" -B "$T/build" -DCMAKE_PREFIX_PATH="$T/prefix" >/dev/null
cmake --build "$T/build" >/dev/null
lib=$(dirname "$(find "$T/prefix" -name 'libclpar.so*' | head -1)")
LD_LIBRARY_PATH="$lib" "$T/build/consumer" | grep -q "devices: [1-9]"
PKG_CONFIG_PATH="$lib/pkgconfig" cc "$T/src/main.c" -o "$T/pc" $(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --cflags --libs clpar) -lOpenCL
LD_LIBRARY_PATH="$lib" "$T/pc" | grep -q "devices: [1-9]"
echo "1 passed, 0 failed"
