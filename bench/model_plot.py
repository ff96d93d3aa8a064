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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

MODEL_SCHEMA = "w4a16-model/1"
BENCH_SCHEMAS = ("w4a16-bench/1", "w4a16-bench/2")
PAPER_SPLITK = (1.01, 1.74)  # the paper's split-K range for K >> N (shared/seed/paper-abstract.txt)
DPI = 120


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


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def grid_of(cells):
    xs = sorted({b for b, _ in cells})
    ys = sorted({m for _, m in cells})
    grid = [[gmean(cells[(b, m)]) if (b, m) in cells else math.nan for b in xs] for m in ys]
    return xs, ys, grid


def draw(ax, xs, ys, grid, norm, reach, title):
    im = ax.imshow(grid, cmap="RdBu", norm=norm, aspect="auto", origin="lower")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if not math.isnan(v):
                dark = abs(math.log(v)) > 0.6 * math.log(reach)
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [f"{2.0 ** b:g}" if b >= 0 else f"1/{2 ** -b}" for b in xs], fontsize=8)
    ax.set_yticks(range(len(ys)), [str(m) for m in ys], fontsize=8)
    ax.set_xlabel("K / N (nearest power of 2)")
    ax.set_ylabel("M")
    ax.set_title(title, fontsize=9)
    return im


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
    panels = [(grid_of(cells_of(model, a.model)), model_title(model))]
    if a.measured:
        measured = load(a.measured)
        panels.append((grid_of(cells_of(measured, a.measured)), measured_title(measured, a.measured)))

    vals = [v for (_, _, g), _ in panels for row in g for v in row if not math.isnan(v)]
    reach = max(max(vals), 1 / min(vals), 1.05)  # symmetric in log around 1: 1/reach .. reach
    norm = LogNorm(1 / reach, reach)
    width = sum(1.0 + 0.75 * len(xs) for (xs, _, _), _ in panels) + 1.5
    height = 1.8 + 0.5 * max(len(ys) for (_, ys, _), _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False)
    im = None
    for ax, ((xs, ys, grid), title) in zip(axes[0], panels):
        im = draw(ax, xs, ys, grid, norm, reach, title)
    bar = fig.colorbar(im, ax=list(axes[0]), label="split-K / data-parallel speed-up (x)")
    bar.minorticks_off()
    ticks = [reach ** e for e in (-1, -0.5, 0, 0.5, 1)]
    bar.set_ticks(ticks, labels=[f"{t:.2f}" for t in ticks])
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
