#!/usr/bin/env bash
# Runs a report script of bench/ with the pinned matplotlib: `bench/report_venv.sh SCRIPT.py ARGS...`.
# Installs it into build/report-venv on first use (PyPI), then reuses it; bench/report.sh and
# bench/model_plot.sh go through here so that both use the same venv and pin.
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
script="$1"
shift
exec "$venv/bin/python" "$root/bench/$script" "$@"
