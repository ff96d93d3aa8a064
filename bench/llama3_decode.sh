#!/usr/bin/env bash
# Decode speed of a Llama-3-8B-shaped model (random Q4_0, 2-4 layers): transformers + w4a16,
# transformers bf16, transformers + torchao int4 and llama.cpp on one GGUF file, 1 and 2 threads.
# See bench/README.md ("Decode on a Llama-3-8B-shaped model") and bench/llama3_decode.py.
#
#   bench/llama3_decode.sh [--torch-python PY] [--llama-python PY] [--no-llama-cpp] [--no-torchao]
#                          [llama3_decode.py options: --layers 2 --tokens 32 --threads 1,2 --repeats 3 ...]
#
# The torch interpreter defaults to build/py-venv (scripts/test.sh --all makes it with torch and
# transformers); gguf and w4a16 must be importable there. Installs, pinned and only when missing or
# changed: torchao into build/llama3-torchao (a PYTHONPATH folder, --no-deps), llama-cpp-python into
# build/llama-venv (a 5- to 10-minute build on 2 cores), unless build/peers-venv already has it
# (bench/peers/run.sh --with-llama-cpp) or --llama-python names an interpreter that has it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${W4A16_BUILD_DIR:-$root/build}"
torch_python="$build/py-venv/bin/python"
llama_python=""
with_llama=1
with_torchao=1
pass=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --torch-python) torch_python="$2"; shift 2 ;;
    --llama-python) llama_python="$2"; shift 2 ;;
    --no-llama-cpp) with_llama=0; shift ;;
    --no-torchao) with_torchao=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exec "$torch_python" "$here/llama3_decode.py" --help ;;
    *) pass+=("$1"); shift ;;
  esac
done

"$torch_python" -c "import torch, transformers, gguf, w4a16.torch" 2>/dev/null || {
  echo "llama3_decode.sh: $torch_python cannot import torch, transformers, gguf and w4a16.torch" >&2
  echo "  (scripts/test.sh --all makes build/py-venv with them; or pass --torch-python PY)" >&2
  exit 1
}
args=(--torch-python "$torch_python")

# A folder of packages kept current by a stamp: the sha256 of the requirements file it came from.
stamped() { [[ -f "$1" && "$(cat "$1")" == "$(sha256sum "$2" | cut -d' ' -f1)" ]]; }

if [[ $with_torchao == 1 ]]; then
  req="$here/llama3_decode.requirements-torchao.txt"
  dir="$build/llama3-torchao"
  if ! stamped "$dir/.stamp" "$req"; then
    echo "llama3_decode.sh: pip install --no-deps --target $dir -r $(basename "$req")" >&2
    rm -rf "$dir"
    "$torch_python" -m pip install -q --disable-pip-version-check --no-deps --target "$dir" -r "$req"
    sha256sum "$req" | cut -d' ' -f1 > "$dir/.stamp"
  fi
  args+=(--torchao-path "$dir")
fi

if [[ $with_llama == 1 ]]; then
  req="$here/peers/requirements-llama-cpp.txt"
  if [[ -z "$llama_python" ]] && stamped "$build/peers-venv/.stamp-$(basename "$req")" "$req"; then
    llama_python="$build/peers-venv/bin/python"
  fi
  if [[ -z "$llama_python" ]]; then
    venv="$build/llama-venv"
    if ! stamped "$venv/.stamp" "$req"; then
      echo "llama3_decode.sh: building llama-cpp-python into $venv (about 10 minutes on 2 cores)" >&2
      [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
      "$venv/bin/python" -m pip install -q --disable-pip-version-check pip==26.0.1
      # The same build as bench/peers/run.sh: the libraries only; GGML_NATIVE stays on as upstream.
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF" \
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
      sha256sum "$req" | cut -d' ' -f1 > "$venv/.stamp"
    fi
    llama_python="$venv/bin/python"
  fi
  args+=(--llama-python "$llama_python")
fi

exec "$torch_python" "$here/llama3_decode.py" "${args[@]}" "${pass[@]}"
