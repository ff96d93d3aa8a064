#!/usr/bin/env bash
# Makes docs/evaluation.md and docs/img/*.png from bench JSON files (see bench/report.py):
#   bench/report.sh --bench out.json [--study study.json] [--peers peers.json] --out docs
# Installs the pinned matplotlib into build/report-venv on first use (PyPI), then reuses it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/build/report-venv"
matplotlib_version=3.11.2
stamp="$venv/.matplotlib-$matplotlib_version"
if [ ! -e "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$matplotlib_version"
  touch "$stamp"
fi
exec "$venv/bin/python" "$root/bench/report.py" "$@"
