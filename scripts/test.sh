#!/usr/bin/env bash
# The test command: builds and runs the whole suite twice — a normal Release build (with the
# CUDA code compiled when nvcc is present; GPU tests skip without a GPU) and an
# AddressSanitizer + UndefinedBehaviorSanitizer build (no CUDA, no benchmarks).
# Set W4A16_TEST_TIER=long to include the tests labelled "long".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs="$(nproc)"
label_args=(-LE long)
[ "${W4A16_TEST_TIER:-}" = "long" ] && label_args=()

echo "== normal build" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DW4A16_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" "${label_args[@]}"

echo "== sanitizer build (ASan + UBSan)" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DW4A16_SANITIZE=ON -DW4A16_CUDA=OFF \
  -DW4A16_BUILD_BENCHMARKS=OFF -DW4A16_BUILD_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" "${label_args[@]}"
echo "== all tests passed" >&2
