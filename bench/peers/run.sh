#!/usr/bin/env bash
# Peers of w4a16 side by side: oneDNN (int4 and dense bf16), onnxruntime MatMulNBits, numpy
# fp32, and optionally PyTorch and llama.cpp, on the same shapes, weights and thread count, with
# w4a16's own times (a `w4a16 bench --json` file) and the ratio to them in one table.
# See bench/peers/README.md.
#
#   bench/peers/run.sh [--shapes "M,K,N;..."] [--threads T] [--with-torch] [--with-llama-cpp]
#                      [--w4a16 FILE] [--min-time S] [--only PEER,PEER] [--no-w4a16] [--out DIR]
#                      [--max-other-cpu X]   (re-run a peer when other processes kept > X CPUs busy)
#                      [--llama-cpp-amx off|on]  (build llama.cpp without / with its AMX backend; off
#                                                 by default: the pinned one crashes on AMX CPUs)
#
# Writes build/peers/peers.json (or DIR/peers.json) and prints the table. Installs its PyPI packages into
# build/peers-venv (pinned: bench/peers/requirements*.txt); nothing outside build/ is touched.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${W4A16_BUILD_DIR:-$root/build}"
venv="$build/peers-venv"
out="$build/peers"

shapes="1,4096,4096;1,4096,1024;1,4096,14336;1,14336,4096;16,4096,4096;16,4096,1024;16,4096,14336;16,14336,4096;128,4096,4096;128,4096,1024;128,4096,14336;128,14336,4096"
threads=2
with_torch=0
with_llama=0
w4a16_json=""
no_w4a16=0
min_time=1.0
only=""
max_other=0.2
llama_amx=off

orig_args="$*"
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shapes) shapes="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --with-torch) with_torch=1; shift ;;
    --with-llama-cpp) with_llama=1; shift ;;
    --w4a16) w4a16_json="$2"; shift 2 ;;
    --no-w4a16) no_w4a16=1; shift ;;
    --min-time) min_time="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --max-other-cpu) max_other="$2"; shift 2 ;;
    --llama-cpp-amx) llama_amx="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --threads must be a positive integer" >&2; exit 2; }
[[ "$llama_amx" == off || "$llama_amx" == on ]] || { echo "run.sh: --llama-cpp-amx must be off or on" >&2; exit 2; }
command -v python3 >/dev/null || { echo "run.sh: python3 is required" >&2; exit 1; }
command -v g++ >/dev/null || { echo "run.sh: g++ is required (the oneDNN harness)" >&2; exit 1; }
mkdir -p "$out" "$build/peers"

# --- venv with pinned packages (re-installed only when a requirements file changes) ----------
reqs=("$here/requirements.txt")
[[ $with_torch == 1 ]] && reqs+=("$here/requirements-torch.txt")
[[ $with_llama == 1 ]] && reqs+=("$here/requirements-llama-cpp.txt")
if [[ ! -x "$venv/bin/python" ]]; then
  echo "run.sh: creating $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check pip==26.0.1
fi
# llama.cpp's build: only the ggml/llama libraries; -march=native (GGML_NATIVE) as upstream. With
# --llama-cpp-amx off, GCC's -mno-amx-* (which win over -march=native whatever their order) leave
# __AMX_INT8__ undefined, so ggml compiles neither its AMX backend (ggml-cpu/amx/) nor its AMX
# buffer type: on an AMX CPU the pinned version's AMX buffer code crashes from M = 16 (SIGILL /
# SIGSEGV in ggml_backend_amx_buffer_set_tensor), and its AVX-512 (VNNI) kernels run instead.
# The library itself says which it is (ggml_cpu_has_amx_int8: peers.json's llama_cpp_build).
llama_cmake="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF"
if [[ "$llama_amx" == off ]]; then
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  llama_cmake+=" '-DCMAKE_C_FLAGS=$no_amx' '-DCMAKE_CXX_FLAGS=$no_amx'"
fi
for req in "${reqs[@]}"; do
  stamp="$venv/.stamp-$(basename "$req")"
  sum="$(sha256sum "$req" | cut -d' ' -f1)"
  [[ "$req" == *llama-cpp* ]] && sum+=" amx=$llama_amx"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$sum" ]]; then
    echo "run.sh: pip install -r $(basename "$req")" >&2
    if [[ "$req" == *llama-cpp* ]]; then
      # Built again whenever the flags change: no wheel cache (it would hand back the other build).
      echo "run.sh: building llama.cpp with its AMX backend $llama_amx (CMAKE_ARGS=$llama_cmake)" >&2
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" CMAKE_ARGS="$llama_cmake" \
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir --force-reinstall --no-deps \
        -r "$req"
    else
      "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    fi
    echo "$sum" > "$stamp"
  fi
done

# --- the oneDNN harness -------------------------------------------------------------------------
harness="$build/peers/onednn_matmul"
vlib="$(cd "$venv/lib" && pwd)"
if [[ ! -x "$harness" || "$here/onednn_matmul.cpp" -nt "$harness" || "$venv/.stamp-requirements.txt" -nt "$harness" ]]; then
  [[ -f "$venv/include/oneapi/dnnl/dnnl.hpp" ]] || { echo "run.sh: onednn-devel headers missing in $venv/include" >&2; exit 1; }
  echo "run.sh: building $harness" >&2
  # onednn-devel ships headers and libdnnl.so but no CMake config: a plain g++ line. The rpath
  # (not runpath) lets libdnnl find its TBB/SYCL dependencies in the same folder.
  g++ -O2 -std=c++17 -Wall -Wextra "$here/onednn_matmul.cpp" -I"$venv/include" -L"$vlib" -ldnnl -ltbb \
      -Wl,--disable-new-dtags,-rpath,"$vlib" -o "$harness"
fi
# The PyPI runtime's OpenCL ICD file names a placeholder path; point the loader at the CPU runtime.
export OCL_ICD_FILENAMES="$vlib/libintelocl.so"

# --- w4a16's own times --------------------------------------------------------------------------
pin=()
if [[ "$threads" -lt "$(nproc)" ]] && command -v taskset >/dev/null; then pin=(taskset -c "0-$((threads - 1))"); fi
w4a16_note=""
w4a16_help=""
[[ -x "$build/w4a16" ]] && w4a16_help="$("$build/w4a16" --help 2>/dev/null || true)"
if [[ $no_w4a16 == 1 ]]; then
  w4a16_json=""; w4a16_note="not requested: --no-w4a16"
elif [[ -n "$w4a16_json" ]]; then
  [[ -f "$w4a16_json" ]] || { echo "run.sh: --w4a16 $w4a16_json: no such file" >&2; exit 2; }
elif grep -qE "^[[:space:]]+bench([[:space:]]|$)" <<<"$w4a16_help"; then
  w4a16_json="$out/w4a16.json"
  "$venv/bin/python" "$here/peers.py" quiet --max-wait 300   # other processes distort every timing
  echo "run.sh: ${pin[*]:+${pin[*]} }$build/w4a16 bench --shapes \"$shapes\" --threads $threads --json $w4a16_json" >&2
  if ! "${pin[@]}" "$build/w4a16" bench --shapes "$shapes" --threads "$threads" --json "$w4a16_json" >&2; then
    w4a16_note="build/w4a16 bench failed"; w4a16_json=""
  fi
else
  w4a16_note="$build/w4a16 is missing or has no 'bench' command yet"
fi

# --- the peers ----------------------------------------------------------------------------------
args=(main --shapes "$shapes" --threads "$threads" --out "$out" --harness "$harness" --min-time "$min_time"
      --max-other-cpu "$max_other"
      --command "bench/peers/run.sh${orig_args:+ $orig_args}")
[[ -n "$w4a16_json" ]] && args+=(--w4a16 "$w4a16_json")
[[ -n "$w4a16_note" ]] && args+=("--w4a16-note=$w4a16_note")
[[ $with_torch == 1 ]] && args+=(--with-torch)
[[ $with_llama == 1 ]] && args+=(--with-llama-cpp)
[[ -n "$only" ]] && args+=(--only "$only")
exec "$venv/bin/python" "$here/peers.py" "${args[@]}"
