#!/usr/bin/env bash
# The test command. Five stages, each in its own build directory:
#   1. normal Release build (CUDA code compiled when nvcc is present; GPU tests skip without a GPU)
#      and the whole suite;
#   1b. the Python package: venv in build/py-venv, `pip install .`, pytest (scripts/test_python.sh);
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build (no CUDA, no benchmarks) and the suite;
#   3. ThreadSanitizer build of the concurrency tests (ctest label "concurrency", target
#      concurrency_tests: reentrant gemm, the pipelined strategy,
#      first calls from many threads, ISA cap changed during calls, fork after gemm);
#   4. the libFuzzer targets (clang), W4A16_FUZZ_SECONDS (default 40) each, from the committed
#      corpus; without clang the corpus replay in stages 1-2 stands in (safetensors_fuzz_smoke).
# Set W4A16_TEST_TIER=long to include the tests labelled "long".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs="$(nproc)"
label_args=(-LE long)
[ "${W4A16_TEST_TIER:-}" = "long" ] && label_args=()
stage() { echo "== $1 ($(date +%T))" >&2; }
# The sanitizer builds at -O1 with line tables only (-g1): what ASan recommends, and on 2 cores the
# whole ASan tree compiles in about 9 minutes instead of 19 at RelWithDebInfo's -O2 -g (with the
# CLI, the measurement engine and the tests at -O0: CMakeLists). Stack traces keep file:line.
sanitizer_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")

stage "normal build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DW4A16_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" "${label_args[@]}"

stage "Python package"
scripts/test_python.sh

stage "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo "${sanitizer_flags[@]}" -DW4A16_SANITIZE=ON -DW4A16_CUDA=OFF \
  -DW4A16_BUILD_BENCHMARKS=OFF -DW4A16_BUILD_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" "${label_args[@]}"

stage "ThreadSanitizer build (concurrency tests)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo "${sanitizer_flags[@]}" -DW4A16_TSAN=ON -DW4A16_CUDA=OFF \
  -DW4A16_BUILD_BENCHMARKS=OFF -DW4A16_BUILD_EXAMPLES=OFF -DW4A16_BUILD_FUZZERS=OFF -DW4A16_BUILD_TESTS=ON >/dev/null
cmake --build build-tsan -j"$jobs" --target concurrency_tests
# die_after_fork=0: the fork tests start threads in forked children on purpose.
TSAN_OPTIONS=die_after_fork=0:halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -L concurrency

stage "fuzzing (libFuzzer)"
scripts/fuzz.sh "${W4A16_FUZZ_SECONDS:-40}"
echo "== all tests passed ($(date +%T))" >&2
