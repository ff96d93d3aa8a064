#!/usr/bin/env bash
# Copies the header-only dependencies and the GoogleTest sources from this (Debian) machine into
# build/gpu-deps/, for a machine that has a compiler, CMake and ninja but none of Debian's -dev
# packages (the GPU machine of scripts/gpu-check.sh). build/ is git-ignored, so the folder travels
# only when named: carry `build/gpu-deps`. Configure with -DW4A16_DEPS_DIR=$PWD/build/gpu-deps
# (cmake/deps.cmake reads this layout):
#   build/gpu-deps/nlohmann_json/include/nlohmann/   nlohmann-json3-dev
#   build/gpu-deps/CLI11/include/CLI/                libcli11-dev
#   build/gpu-deps/fmt/include/fmt/                  libfmt-dev (used header-only)
#   build/gpu-deps/googletest/                       googletest (CMake source tree; gtest only, no gmock)
#   build/gpu-deps/VERSIONS                          what was copied, from which Debian package
#   build/gpu-deps/*/COPYRIGHT.debian                each package's licence (Debian's copyright file)
# Idempotent: the folder is rebuilt from scratch each time (a second or so).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/gpu-deps
src_json=/usr/include/nlohmann
src_cli=/usr/include/CLI
src_fmt=/usr/include/fmt
src_gtest=/usr/src/googletest

missing=()
[ -f "$src_json/json.hpp" ] || missing+=(nlohmann-json3-dev)
[ -f "$src_cli/CLI.hpp" ] || missing+=(libcli11-dev)
[ -f "$src_fmt/format.h" ] || missing+=(libfmt-dev)
[ -f "$src_gtest/googletest/CMakeLists.txt" ] || missing+=(googletest)
if [ ${#missing[@]} -gt 0 ]; then
  echo "gpu-deps: missing ${missing[*]} (scripts/deps.sh installs them)" >&2
  exit 1
fi

tmp="$dest.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/nlohmann_json/include" "$tmp/CLI11/include" "$tmp/fmt/include" "$tmp/googletest/googletest"
cp -R "$src_json" "$tmp/nlohmann_json/include/"
cp -R "$src_cli" "$tmp/CLI11/include/"
cp -R "$src_fmt" "$tmp/fmt/include/"
# GoogleTest: the distribution's top-level CMakeLists.txt (it sets GOOGLETEST_VERSION and the
# BUILD_GMOCK / INSTALL_GTEST options) and what building gtest needs; no gmock, docs, samples or tests.
cp "$src_gtest/CMakeLists.txt" "$tmp/googletest/"
for part in CMakeLists.txt cmake include src; do
  cp -R "$src_gtest/googletest/$part" "$tmp/googletest/googletest/"
done

# The licences travel with the code (Debian's copyright file of each package).
copy_copyright() {
  if [ -f "/usr/share/doc/$1/copyright" ]; then cp "/usr/share/doc/$1/copyright" "$2/COPYRIGHT.debian"; fi
}
copy_copyright nlohmann-json3-dev "$tmp/nlohmann_json"
copy_copyright libcli11-dev "$tmp/CLI11"
copy_copyright libfmt-dev "$tmp/fmt"
copy_copyright googletest "$tmp/googletest"

package_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
{
  echo "# Copied by scripts/gpu-deps.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(hostname)"
  echo "nlohmann_json $(package_version nlohmann-json3-dev) $src_json"
  echo "CLI11 $(package_version libcli11-dev) $src_cli"
  echo "fmt $(package_version libfmt-dev) $src_fmt"
  echo "googletest $(package_version googletest) $src_gtest"
} >"$tmp/VERSIONS"

mkdir -p build
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "gpu-deps: $(du -sh "$dest" | cut -f1) in $dest" >&2
