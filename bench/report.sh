#!/usr/bin/env bash
# Makes docs/evaluation.md and docs/img/*.png from bench JSON files (see bench/report.py):
#   bench/report.sh --bench out.json [--study study.json] [--peers peers.json] --out docs
# The pinned matplotlib comes from build/report-venv (bench/report_venv.sh makes it on first use).
exec "$(dirname "$0")/report_venv.sh" report.py "$@"
