#!/usr/bin/env bash
# Draws docs/img/model_splitk.png from `w4a16 model --json` output (see bench/model_plot.py):
#   bench/model_plot.sh model.json [--measured cpu.json] [--out docs/img/model_splitk.png]
# Uses the report venv (build/report-venv, pinned matplotlib) that bench/report.sh makes, making it
# the same way on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/build/report-venv"
matplotlib_version=3.11.2  # the same pin as bench/report.sh
stamp="$venv/.matplotlib-$matplotlib_version"
if [ ! -e "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$matplotlib_version"
  touch "$stamp"
fi
exec "$venv/bin/python" "$root/bench/model_plot.py" "$@"
