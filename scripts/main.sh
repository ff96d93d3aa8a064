#!/usr/bin/env bash
# The main job: build w4a16 (Release) and run `w4a16 bench`: W4A16 (fused, decoupled) against the
# dense 16-bit baseline on the Llama-3-8B layer shapes at M = 1, 4, 16, 64, 256 (about 2 minutes
# on 2 cores after the build). Extra arguments go to `w4a16 bench` (see `build/w4a16 bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target w4a16_cli >/dev/null
exec build/w4a16 bench "$@"
