#!/usr/bin/env bash
# The test command, in two tiers (docs/architecture.md, "Test tiers"), each stage in its own build
# directory:
#
#   scripts/test.sh        the newcomer tier: does this clone work?
#     1. normal Release build (CUDA code compiled when nvcc is present; GPU tests skip without a
#        GPU) and the whole ctest suite, which includes the include-direction check and the
#        replay of the fuzz corpus with mutations (*_fuzz_smoke, any compiler);
#     2. the Python package: venv in build/py-venv, `pip install .`, pytest (scripts/test_python.sh);
#        the PyTorch tests (tests/python/test_torch.py) skip, saying why.
#   scripts/test.sh --all  the CI tier (.ci/run): the above, with PyTorch installed in stage 2
#     (W4A16_TORCH=1: torch==2.15.0, ~5 GB with its nvidia-* wheels; only its CPU kernels are used), then
#     3. AddressSanitizer + UndefinedBehaviorSanitizer build (no CUDA, no benchmarks) and the suite;
#     4. ThreadSanitizer build of the concurrency tests (ctest label "concurrency", target
#        concurrency_tests: reentrant gemm, the pipelined strategy,
#        first calls from many threads, ISA cap changed during calls, fork after gemm);
#     5. the libFuzzer targets (clang), W4A16_FUZZ_SECONDS (default 40) each, from the committed
#        corpus; without clang the corpus replay of stages 1 and 3 stands in.
#
# Set W4A16_TEST_TIER=long (either tier) to include the tests labelled "long".
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/test.sh [--all]"
  echo "  (none)  Release build + ctest suite + Python package tests"
  echo "  --all   also ASan+UBSan build + suite, TSan concurrency tests, libFuzzer (what .ci/run runs)"
}
all=0
for arg in "$@"; do
  case "$arg" in
    --all) all=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "scripts/test.sh: unknown argument '$arg'" >&2
      usage >&2
      exit 2
      ;;
  esac
done

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
if [ "$all" = 1 ]; then export W4A16_TORCH=1; fi
scripts/test_python.sh

if [ "$all" = 0 ]; then
  echo "== tests passed ($(date +%T)); scripts/test.sh --all adds ASan+UBSan, TSan and libFuzzer" >&2
  exit 0
fi

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
