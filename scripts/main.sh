#!/usr/bin/env bash
# The main job: build w4a16 (Release) and run the demo on a Llama-3-8B MLP-shaped layer.
# Extra arguments go to `w4a16 demo` (see `build/w4a16 demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target w4a16_cli >/dev/null
exec build/w4a16 demo "$@"
