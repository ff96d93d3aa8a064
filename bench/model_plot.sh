#!/usr/bin/env bash
# Draws docs/img/model_splitk.png from `w4a16 model --json` output (see bench/model_plot.py):
#   bench/model_plot.sh model.json [--measured cpu.json] [--out docs/img/model_splitk.png]
# The pinned matplotlib comes from build/report-venv (bench/report_venv.sh makes it on first use).
exec "$(dirname "$0")/report_venv.sh" model_plot.py "$@"
