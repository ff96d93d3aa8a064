#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, nvcc, CMake and ninja but none of Debian's -dev
# packages and no network, builds the CUDA library, the CUDA tests and the CLI from this tree, runs
# them, benchmarks, and writes what it saw into OUTDIR. Whole run under 6 minutes (each step has its
# own timeout, clipped to what is left of GPU_CHECK_BUDGET_S). docs/cuda.md, "The GPU check script".
#
#   scripts/gpu-deps.sh              # once, on the Debian dev machine: build/gpu-deps (carry it along)
#   scripts/gpu-check.sh OUTDIR      # on the GPU machine, in the repository root
#
# OUTDIR gets: card.txt (nvidia-smi), build.log (configure + build), tests/<name>.json and .txt
# (each tests/cuda/*_test.cpp executable: GoogleTest JSON and output), info.txt (`w4a16 info`),
# bench.json (`w4a16 bench --backend cuda`), peers.json (bench/cuda_peers.py, PyTorch), run.log
# (the bench's and the peers' output) and summary.txt (scripts/gpu_summary.py's tables).
# Exit status 0 when every CUDA test passed and the benchmark ran; the summary is written anyway.
#
# Environment:
#   GPU_CHECK_BUILD_ONLY=1   stop after the build (a rehearsal without a GPU)
#   GPU_CHECK_BUDGET_S=345   the whole run's time limit in seconds
#   GPU_CHECK_BUILD_TIMEOUT_S=300   the build's own limit (raise both for a build on 2 cores)
#   GPU_CHECK_JOBS=N         build jobs (default: nproc)
#   GPU_CHECK_FRESH=1        delete build-gpu first (it is reused otherwise: incremental builds)
#   GPU_CHECK_BUNDLE=auto    pack tests/ into tests.tar.gz when OUTDIR would hold more than 8
#                            files (what the device tool brings back); 1: always, 0: never
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
root="$PWD"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
build="build-gpu"
deps="$root/build/gpu-deps"
budget="${GPU_CHECK_BUDGET_S:-345}"
jobs="${GPU_CHECK_JOBS:-$(nproc)}"
started=$(date +%s)
deadline=$((started + budget))

log() { echo "[gpu-check $(date +%T) +$(($(date +%s) - started))s] $*" >&2; }

# Each step: a line for the summary. Later steps still run when one fails.
steps=()
cuda_tests=()
record() { steps+=("$(printf '  %-36s %s' "$1" "$2")"); }

# run_step NAME CAP RESERVE LOGFILE CMD...: runs CMD under `timeout`, its output appended to LOGFILE.
# The timeout is CAP seconds, or less when fewer are left before the deadline once RESERVE seconds
# (the later steps' minimum) are kept back. Returns CMD's status (124: timed out, 125: not started).
run_step() {
  local name=$1 cap=$2 reserve=$3 logfile=$4
  shift 4
  local left=$((deadline - $(date +%s) - reserve - 5))  # 5: timeout's grace before KILL
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 5 ]; then
    log "$name: skipped, no time left"
    record "$name" "SKIPPED (no time left of the ${budget}s budget)"
    return 125
  fi
  log "$name (timeout ${limit}s)"
  local t0 rc=0
  t0=$(date +%s)
  timeout -k 5 "$limit" "$@" >>"$logfile" 2>&1 || rc=$?
  local took=$(($(date +%s) - t0))
  case $rc in
    0) record "$name" "ok (${took}s)" ;;
    124 | 137) record "$name" "TIMED OUT after ${took}s (limit ${limit}s)"; rc=124 ;;
    *) record "$name" "FAILED, exit $rc (${took}s)" ;;
  esac
  [ $rc -eq 0 ] || log "$name: exit $rc after ${took}s (see $(basename "$logfile"))"
  return $rc
}

# The later steps' minimum shares (seconds): what run_step keeps back for them.
min_build=60 min_tests=20 min_info=5 min_bench=60 min_peers=30 min_summary=10

# --- tools ----------------------------------------------------------------------------------------
# nvcc, cmake and ninja may sit outside PATH: the toolkit's bin folder, or Python packages.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
for tool in cmake ninja; do
  if ! command -v $tool >/dev/null; then
    dir="$(python3 -c "import $tool, os; print(getattr($tool, 'BIN_DIR', '') or os.path.join($tool.__path__[0], 'data', 'bin'))" 2>/dev/null || true)"
    [ -n "$dir" ] && [ -x "$dir/$tool" ] && export PATH="$dir:$PATH"
  fi
done
generator="Ninja"
command -v ninja >/dev/null || generator="Unix Makefiles"
# The last version number on the first line of `TOOL --version` that holds one (nvcc: 13.0.88).
version_of() {
  local text
  text="$("$@" 2>&1)" || { echo absent; return; }
  text="$(grep -Em1 '[0-9]+\.[0-9]+' <<<"$text" || true)"
  text="$(grep -Eo '[0-9]+\.[0-9]+(\.[0-9]+)?' <<<"$text" | tail -1 || true)"
  echo "${text:-?}"
}
toolchain="cmake $(version_of cmake --version), $generator, nvcc $(version_of nvcc --version), c++ $(version_of c++ --version), python3 $(version_of python3 --version)"
log "OUTDIR $out; $toolchain; $jobs jobs; budget ${budget}s"

rm -rf "$out/tests" "$out/tests.tar.gz"
mkdir -p "$out/tests"
: >"$out/build.log"
: >"$out/card.txt"
: >"$out/run.log"

# --- the card -------------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  run_step "card (nvidia-smi)" 20 0 "$out/card.txt" \
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
else
  echo "nvidia-smi: not found on this machine" >"$out/card.txt"
  record "card (nvidia-smi)" "SKIPPED (nvidia-smi not found)"
fi

# --- configure and build --------------------------------------------------------------------------
build_ok=0
if [ ! -f "$deps/VERSIONS" ]; then
  echo "build/gpu-deps is missing: run scripts/gpu-deps.sh on the dev machine and carry build/gpu-deps" \
    | tee -a "$out/build.log" >&2
  record "configure" "FAILED (build/gpu-deps is missing)"
else
  # A build folder from another checkout path, generator or dependency folder cannot be reused.
  if [ -f "$build/CMakeCache.txt" ]; then
    cache_home="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")"
    cache_generator="$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build/CMakeCache.txt")"
    if [ "$cache_home" != "$root" ] || [ "$cache_generator" != "$generator" ] || [ "${GPU_CHECK_FRESH:-0}" = 1 ]; then
      log "removing $build (made for ${cache_home:-?} with ${cache_generator:-?}, or GPU_CHECK_FRESH=1)"
      rm -rf "$build"
    fi
  elif [ "${GPU_CHECK_FRESH:-0}" = 1 ]; then
    rm -rf "$build"
  fi
  configure=(cmake -S . -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE=Release -DW4A16_DEPS_DIR="$deps"
    -DW4A16_CUDA=ON -DW4A16_CUDA_ARCHITECTURES=90 -DW4A16_BUILD_TESTS=ON -DW4A16_BUILD_BENCHMARKS=OFF
    -DW4A16_BUILD_EXAMPLES=OFF -DW4A16_BUILD_FUZZERS=OFF -DW4A16_BUILD_PYTHON=OFF
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
  echo "== $toolchain" >>"$out/build.log"
  echo "== ${configure[*]}" >>"$out/build.log"
  if run_step "configure" 90 $((min_build + min_tests + min_info + min_bench + min_peers + min_summary)) \
      "$out/build.log" "${configure[@]}"; then
    # The CUDA tests: every tests/cuda/*_test.cpp, target name = file name.
    cuda_tests=()
    for source in tests/cuda/*_test.cpp; do
      [ -e "$source" ] && cuda_tests+=("$(basename "$source" .cpp)")
    done
    log "targets: w4a16_cli ${cuda_tests[*]}"
    echo "== cmake --build $build -j$jobs --target w4a16_cli ${cuda_tests[*]}" >>"$out/build.log"
    build_t0=$(date +%s)
    if run_step "build" "${GPU_CHECK_BUILD_TIMEOUT_S:-300}" $((min_tests + min_info + min_bench + min_peers + min_summary)) "$out/build.log" \
        cmake --build "$build" -j"$jobs" --target w4a16_cli "${cuda_tests[@]}"; then
      build_ok=1
    else
      tail -n 30 "$out/build.log" >&2
    fi
    build_seconds=$(($(date +%s) - build_t0))
  fi
fi

# --- tests, info, bench, peers --------------------------------------------------------------------
tests_ok=0
bench_ok=0
if [ "${GPU_CHECK_BUILD_ONLY:-0}" = 1 ]; then
  log "GPU_CHECK_BUILD_ONLY=1: stopping after the build"
  record "tests, info, bench, peers" "SKIPPED (GPU_CHECK_BUILD_ONLY=1)"
elif [ $build_ok = 1 ]; then
  tests_ok=1
  [ ${#cuda_tests[@]} -gt 0 ] || { tests_ok=0; record "tests" "FAILED (no tests/cuda/*_test.cpp)"; }
  for name in "${cuda_tests[@]}"; do
    exe="$build/tests/$name"
    [ -x "$exe" ] || exe="$(find "$build" -type f -name "$name" -perm -u+x 2>/dev/null | head -1 || true)"
    if [ -z "$exe" ]; then
      record "test $name" "FAILED (executable not found)"
      tests_ok=0
      continue
    fi
    run_step "test $name" 90 $((min_info + min_bench + min_peers + min_summary)) "$out/tests/$name.txt" \
      "$exe" --gtest_output="json:$out/tests/$name.json" || tests_ok=0
  done

  run_step "info" 20 $((min_bench + min_peers + min_summary)) "$out/info.txt" "$build/w4a16" info || true

  rm -f "$out/bench.json" "$out/peers.json"
  echo "== $build/w4a16 bench --backend cuda --json $out/bench.json" >>"$out/run.log"
  if run_step "bench (w4a16 bench --backend cuda)" 150 $((min_peers + min_summary)) "$out/run.log" \
      "$build/w4a16" bench --backend cuda --json "$out/bench.json"; then
    if [ -s "$out/bench.json" ]; then
      bench_ok=1
    else
      record "bench" "FAILED (exit 0 but no bench.json)"
    fi
  fi
else
  record "tests, info, bench" "SKIPPED (the build failed)"
fi

# The PyTorch peer needs nothing that was built: it runs even when the build failed.
if [ "${GPU_CHECK_BUILD_ONLY:-0}" != 1 ]; then
  if [ -f bench/cuda_peers.py ]; then
    echo "== python3 bench/cuda_peers.py --json $out/peers.json" >>"$out/run.log"
    run_step "peers (bench/cuda_peers.py)" 90 $min_summary "$out/run.log" \
      env PYTHONUNBUFFERED=1 python3 bench/cuda_peers.py --json "$out/peers.json" || true
  else
    record "peers (bench/cuda_peers.py)" "SKIPPED (bench/cuda_peers.py is not in this tree)"
  fi
fi

# --- summary --------------------------------------------------------------------------------------
status=0
if [ "${GPU_CHECK_BUILD_ONLY:-0}" = 1 ]; then
  [ $build_ok = 1 ] || status=1
else
  [ $tests_ok = 1 ] && [ $bench_ok = 1 ] || status=1
fi
revision="?" changed="?"
if git rev-parse --git-dir >/dev/null 2>&1; then  # the GPU machine's copy may have no .git
  revision="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  changed="$(git status --porcelain 2>/dev/null | wc -l)" || changed="?"
fi
{
  echo "w4a16 GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $revision with $changed changed files"
  echo "card: $(grep -v '^name' "$out/card.txt" 2>/dev/null | head -1 || true)"
  echo "toolchain: $toolchain; $jobs jobs"
  echo "build: ${build_seconds:+${build_seconds}s }$([ $build_ok = 1 ] && echo ok || echo FAILED)" \
    "(targets w4a16_cli ${cuda_tests[*]:-})"
  echo "steps:"
  printf '%s\n' "${steps[@]}"
  echo "total: $(($(date +%s) - started))s of the ${budget}s budget"
  if [ $status = 0 ]; then
    echo "result: PASS"
  elif [ "${GPU_CHECK_BUILD_ONLY:-0}" = 1 ]; then
    echo "result: FAIL (build)"
  else
    echo "result: FAIL ($([ $tests_ok = 1 ] || echo 'tests ')$([ $bench_ok = 1 ] || echo 'bench'))"
  fi
  # What went wrong, where the reader of this file alone would otherwise not see it.
  if [ "${build_ok}" != 1 ] && [ -s "$out/build.log" ]; then
    echo
    echo "== build.log: the first errors"
    { grep -E -m 20 'error|Error|FAILED' "$out/build.log" || tail -n 20 "$out/build.log"; } | cut -c1-300
  fi
  if [ "${GPU_CHECK_BUILD_ONLY:-0}" != 1 ] && [ "$bench_ok" != 1 ] && [ -s "$out/run.log" ]; then
    echo
    echo "== run.log: the last lines (the benchmark's and the peers' output)"
    tail -n 20 "$out/run.log" | cut -c1-300
  fi
  echo
} >"$out/summary.txt"
timeout 20 python3 scripts/gpu_summary.py "$out" >>"$out/summary.txt" 2>&1 \
  || echo "(scripts/gpu_summary.py failed: exit $?)" >>"$out/summary.txt"

bundle="${GPU_CHECK_BUNDLE:-auto}"
files=$(find "$out" -type f | wc -l)
if [ -d "$out/tests" ] && { [ "$bundle" = 1 ] || { [ "$bundle" = auto ] && [ "$files" -gt 8 ]; }; }; then
  tar -C "$out" -czf "$out/tests.tar.gz" tests && rm -rf "$out/tests"
  log "packed tests/ into tests.tar.gz ($files files in OUTDIR otherwise)"
fi

cat "$out/summary.txt"
log "done: exit $status"
exit $status
