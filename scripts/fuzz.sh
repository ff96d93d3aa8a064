#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS (default 60) from its committed corpus, with ASan and
# UBSan, a 2 GiB RSS limit (a header bomb that costs more is a failure) and a 10 s per-input limit.
# New inputs go to build-fuzz/new-corpus/<target>; the committed corpus is not modified (grow and
# minimize it by hand: see fuzz/README.md). Needs clang with libFuzzer; says so and exits 0 without it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! command -v clang++ >/dev/null || ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long){return 0;}' |
  clang++ -x c++ -fsanitize=fuzzer - -o /tmp/w4a16-fuzz-probe 2>/dev/null; then
  echo "fuzz: clang with libFuzzer not found: the corpus replay tests (ctest) stand in" >&2
  exit 0
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DW4A16_CUDA=OFF -DW4A16_BUILD_TESTS=OFF -DW4A16_BUILD_EXAMPLES=OFF -DW4A16_BUILD_BENCHMARKS=OFF >/dev/null
targets=(safetensors gguf quant_config)
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/%/_fuzz}"
for target in "${targets[@]}"; do
  new="build-fuzz/new-corpus/$target"
  mkdir -p "$new"
  echo "fuzz: $target for ${seconds} s" >&2
  log="build-fuzz/$target.log"
  status=0
  build-fuzz/fuzz/"${target}_fuzz" -dict="fuzz/$target.dict" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="build-fuzz/$target-" "$new" "fuzz/corpus/$target" \
    >"$log" 2>&1 || status=$?
  grep -E "^(INFO: seed corpus|#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" >&2 || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target failed (status $status; input saved as build-fuzz/$target-*)" >&2
    exit 1
  fi
done
