#!/usr/bin/env python3
"""Draws the split-K / data-parallel speed-up that `w4a16 model --json` predicts as a heatmap over
(M, K/N), and beside it, when a second JSON is given, the same heatmap of measured data:

    bench/model_plot.sh MODEL.json [--measured CPU.json] [--out docs/img/model_splitk.png]

MODEL.json: `w4a16 model --json` output (schema w4a16-model/1, docs/model.md): each of its
`results` has m, k, n and splitk_speedup (data-parallel time / best split-K time).
CPU.json (optional): measured data with the same axes, either
  - `w4a16 bench --json` (w4a16-bench/1 or /2): speed-up = fused_dp / fused_splitk median time,
    as bench/report.py's split-K heatmap computes it, or
  - any JSON whose `results` carry m, k, n and splitk_speedup (w4a16-model/1 included).
Cells are K/N rounded to the nearest power of 2 by M, the geometric mean of the shapes in each cell
(the axes of bench/report.py's splitk_heatmap.png, so the two can be read side by side). Both panels
share one colour scale, symmetric in log around 1 (blue: split-K faster).

Run it through bench/model_plot.sh, which uses the report venv (build/report-venv, pinned
matplotlib) that bench/report.sh makes.
"""
import argparse
import json
import math
import os
import sys
from collections import defaultdict

# The heatmap of bench/report.py (the same axes, cells and colours); importing it selects Agg.
from report import DPI, draw_splitk, splitk_colorbar, splitk_grid, splitk_reach

import matplotlib.pyplot as plt  # noqa: E402  (after report selected the backend)

MODEL_SCHEMA = "w4a16-model/1"
BENCH_SCHEMAS = ("w4a16-bench/1", "w4a16-bench/2")
PAPER_SPLITK = (1.01, 1.74)  # the paper's split-K range for K >> N (shared/seed/paper-abstract.txt)


def load(path):
    with open(path) as f:
        return json.load(f)


def bench_speedup(r):
    """fused_dp / fused_splitk median time of a w4a16-bench result, or None."""
    v = r.get("variants", {})
    dp, sk = (v.get("fused_dp") or {}).get("median_ms"), (v.get("fused_splitk") or {}).get("median_ms")
    return dp / sk if dp and sk else None


def cells_of(doc, path):
    """(round(log2 K/N), M) -> list of speed-ups."""
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        sys.exit(f"model_plot.py: {path}: no 'results' list")
    bench = doc.get("schema") in BENCH_SCHEMAS
    cells = defaultdict(list)
    for r in doc["results"]:
        try:
            m, k, n = int(r["m"]), int(r["k"]), int(r["n"])
        except (KeyError, TypeError, ValueError):
            sys.exit(f"model_plot.py: {path}: a result lacks integer m, k, n")
        s = bench_speedup(r) if bench else r.get("splitk_speedup")
        if s and s > 0 and k > 0 and n > 0:
            cells[(round(math.log2(k / n)), m)].append(float(s))
    if not cells:
        sys.exit(f"model_plot.py: {path}: no split-K speed-ups to draw")
    return cells


def model_title(doc):
    d = doc.get("device", {})
    cal = doc.get("calibration", {})
    pred = doc.get("predicted", {})
    hit = cal.get("value")
    line1 = f"predicted: {d.get('name', '?')}, decoupled W4A16"
    line2 = f"workspace L2 hit {hit:.3f} ({cal.get('origin', '?')})" if isinstance(hit, (int, float)) else ""
    if "splitk_min" in pred:
        line2 += (f"\nK≥2N: {pred['splitk_min']:.2f}–{pred['splitk_max']:.2f}x"
                  f" (paper {PAPER_SPLITK[0]:.2f}–{PAPER_SPLITK[1]:.2f}x)")
    return f"{line1}\n{line2}"


def measured_title(doc, path):
    if doc.get("schema") in BENCH_SCHEMAS:
        machine = doc.get("machine", {})
        cpu = machine.get("cpu") or machine.get("brand") or "CPU"
        return f"measured: {cpu}\nfused split-K vs fused data-parallel"
    if doc.get("schema") == MODEL_SCHEMA:
        return "second model: " + model_title(doc)
    return f"measured: {os.path.basename(path)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="`w4a16 model --json` output")
    ap.add_argument("--measured", help="optional JSON of measured split-K speed-ups (same axes)")
    ap.add_argument("--out", default="docs/img/model_splitk.png", help="PNG to write")
    a = ap.parse_args()

    model = load(a.model)
    if model.get("schema") != MODEL_SCHEMA:
        sys.exit(f"model_plot.py: {a.model}: schema is {model.get('schema')!r}, expected {MODEL_SCHEMA!r}")
    panels = [(splitk_grid(cells_of(model, a.model)), model_title(model))]
    if a.measured:
        measured = load(a.measured)
        panels.append((splitk_grid(cells_of(measured, a.measured)), measured_title(measured, a.measured)))

    reach = splitk_reach([g for g, _ in panels])
    width = sum(1.0 + 0.75 * len(xs) for (xs, _, _), _ in panels) + 1.5
    height = 1.8 + 0.5 * max(len(ys) for (_, ys, _), _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False)
    im = None
    for ax, ((xs, ys, grid), title) in zip(axes[0], panels):
        im = draw_splitk(ax, xs, ys, grid, reach, title)
    splitk_colorbar(fig, im, list(axes[0]), reach, "split-K / data-parallel speed-up (x)")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
