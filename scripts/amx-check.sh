#!/usr/bin/env bash
# The AMX check: on a CPU with AMX-BF16 (Intel Xeon, Sapphire Rapids or later), builds this tree,
# runs the kernel tests with the amx table in force, calibrates (the tile peak) and benchmarks the
# amx kernels against the avx512bf16 ones and the bf16 baseline on the shapes of issue 18, and
# writes what it saw into OUTDIR. docs/kernels.md, "The matrix unit".
#
#   scripts/amx-check.sh OUTDIR
#
# OUTDIR gets: lscpu.txt, info.txt (`w4a16 info`), build.log, tests.txt (registry_test, amx_test,
# kernels_test, planner_test), tests-asan.txt (registry_test and amx_test under ASan + UBSan, built
# in build-asan as scripts/test.sh --all does), calibration.json (`w4a16 calibrate`, not the user's cache file),
# bench-amx.json / bench-avx512bf16.json (`w4a16 bench --threads 2`, the same shapes under
# W4A16_ISA=amx and W4A16_ISA=avx512bf16, one after the other, nothing else running), peers/
# (bench/peers/run.sh --with-torch --with-llama-cpp: oneDNN s4 x bf16 and dense bf16, torch bf16,
# llama.cpp Q4_0 built without its AMX backend, beside bench-amx.json), targets.md (issue 18's
# targets from those files: scripts/amx_targets.py) and run.log.
# Exit status 0 when every test passed and every benchmark ran.
#
# Environment:
#   AMX_CHECK_FORCE=1     run on a CPU without AMX too (a rehearsal: the amx table is not offered,
#                         amx_test runs the emulated loops, both benchmarks run avx512bf16)
#   AMX_CHECK_SHAPES=...  `w4a16 bench --shapes` (default: M = 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64,
#                         96, 128, 192, 256 on 4096 x 14336 and M = 16, 64, 128, 256 on 4096 x 4096)
#   AMX_CHECK_PEERS=0     skip the peers (they install torch and build llama.cpp: ~15 minutes)
#   AMX_CHECK_ASAN=0      skip the ASan + UBSan build and its tests (~10 minutes on 2 cores)
#   AMX_CHECK_JOBS=N      build jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"
jobs="${AMX_CHECK_JOBS:-$(nproc)}"
default_shapes=""
for m in 1 2 3 4 6 8 12 16 24 32 48 64 96 128 192 256; do default_shapes+="$m,4096,14336;"; done
for m in 16 64 128 256; do default_shapes+="$m,4096,4096;"; done
shapes="${AMX_CHECK_SHAPES:-${default_shapes%;}}"
# The peers on the shapes the targets name (decode and M = 16 .. 256).
peer_shapes="1,4096,14336;2,4096,14336;3,4096,14336;4,4096,14336;16,4096,14336;64,4096,14336;128,4096,14336;256,4096,14336;16,4096,4096;64,4096,4096;128,4096,4096;256,4096,4096"
started=$(date +%s)
log() { echo "[amx-check $(date +%T) +$(($(date +%s) - started))s] $*" | tee -a "$out/run.log" >&2; }

lscpu >"$out/lscpu.txt"
if ! grep -qw amx_bf16 "$out/lscpu.txt" && [ "${AMX_CHECK_FORCE:-0}" != 1 ]; then
  log "this CPU has no amx_bf16 (lscpu); AMX_CHECK_FORCE=1 rehearses the run anyway"
  exit 3
fi

log "packages (scripts/deps.sh: a fresh machine lacks the build's Debian packages)"
scripts/deps.sh >"$out/build.log" 2>&1
log "build (Release, build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DW4A16_BUILD_TESTS=ON >>"$out/build.log" 2>&1
cmake --build build -j"$jobs" --target w4a16_cli registry_test amx_test kernels_test planner_test >>"$out/build.log" 2>&1
build/w4a16 info >"$out/info.txt" 2>&1
log "$(grep -E '^  (amx|kernels):' "$out/info.txt" | tr -s ' ' | tr '\n' ';')"

status=0
: >"$out/tests.txt"
for t in registry_test amx_test kernels_test planner_test; do
  log "test $t"
  if ! build/tests/$t >>"$out/tests.txt" 2>&1; then
    log "FAILED: $t"
    status=1
  fi
done

if [ "${AMX_CHECK_ASAN:-1}" != 0 ]; then
  log "ASan + UBSan build (build-asan) and the AMX tests in it"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DW4A16_SANITIZE=ON -DW4A16_CUDA=OFF -DW4A16_BUILD_BENCHMARKS=OFF \
    -DW4A16_BUILD_TESTS=ON >>"$out/build.log" 2>&1
  cmake --build build-asan -j"$jobs" --target registry_test amx_test >>"$out/build.log" 2>&1
  : >"$out/tests-asan.txt"
  for t in registry_test amx_test; do
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      build-asan/tests/$t >>"$out/tests-asan.txt" 2>&1; then
      log "FAILED: $t under ASan (tests-asan.txt)"
      status=1
    fi
  done
fi

log "calibrate (into OUTDIR, not the user's cache)"
W4A16_CALIBRATION="$out/calibration.json" build/w4a16 calibrate >>"$out/run.log" 2>&1 || status=1

for isa in amx avx512bf16; do
  log "bench under W4A16_ISA=$isa"
  if ! W4A16_CALIBRATION="$out/calibration.json" W4A16_ISA=$isa build/w4a16 bench --shapes "$shapes" --threads 2 \
    --json "$out/bench-$isa.json" >>"$out/run.log" 2>&1; then
    log "FAILED: bench under $isa"
    status=1
  fi
done

if [ "${AMX_CHECK_PEERS:-1}" != 0 ]; then
  log "peers (torch, oneDNN, llama.cpp without its AMX backend) beside bench-amx.json"
  if ! bench/peers/run.sh --with-torch --with-llama-cpp --threads 2 --shapes "$peer_shapes" --w4a16 "$out/bench-amx.json" \
    --only onednn-s4-bf16,onednn-dense-bf16,torch-bf16,llamacpp-q4_0-w4a8 --out "$out/peers" >"$out/peers.log" 2>&1; then
    log "FAILED: peers (peers.log)"
    status=1
  fi
fi
python3 scripts/amx_targets.py "$out" >/dev/null || status=1
log "done, status $status"
exit $status
