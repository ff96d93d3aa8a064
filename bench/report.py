#!/usr/bin/env python3
"""Turns `w4a16 bench --json` runs (docs/bench-json.md, schema w4a16-bench/1 or /2) and a peers
comparison into PNG plots under OUT/img/ and the page OUT/evaluation.md. Every input is optional
(at least one is needed); a section whose data is missing is replaced by a one-line note.

    bench/report.sh --bench out.json [--study study.json] [--peers peers.json] --out docs

--bench: the main run; --study: a run with --study (its `study` object and extra variants);
--peers: {"schema": "w4a16-peers/1", "threads": T, "results": [{"peer", "computes", "m", "k",
"n", "median_ms", "max_rel_err", "w4a16_ms", "ratio_vs_w4a16"}]}.
Run it through bench/report.sh, which installs the pinned matplotlib in build/report-venv.
"""
import argparse
import json
import math
import os
import shlex
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

# The paper's figures (shared/seed/paper-abstract.txt), Ascend 910, decoupled pipeline.
PAPER_SPLITK = "1.01–1.74x over data-parallel when K >> N"
PAPER_VS_FP16 = "at most 1.48x over FP16×FP16 (PyTorch)"
PAPER_BOTTLENECK = "the extra global-memory transfer of the weight, not the dequantization math"
PLOTS = ["speedup_vs_m.png", "roofline_vs_m.png", "splitk_heatmap.png", "breakdown.png", "peers.png"]  # OUT/img/
BENCH_SCHEMAS = ("w4a16-bench/1", "w4a16-bench/2")  # 2 adds the roofline (docs/bench-json.md)
ROOFLINE_TARGET = 1.3  # the time over the roofline a kernel aims for (drawn as a dashed line)
FIG_WIDTH = 13.0  # inches: 1560 px at DPI, the widest a figure gets
DPI = 120
MAX_BARS = 12  # per panel of a small-multiples figure
ABLATIONS = ("decoupled_widen", "int4_stream")  # compute nothing meaningful: never verified
BREAKDOWN_PARTS = [("read_share", "weight read (int4)"), ("math_share", "dequantization math"),
                   ("round_trip_share", "16-bit round trip"), ("gemm_share", "multiply-accumulate (rest)")]


# ---------------------------------------------------------------- inputs and helpers

def load(path, schemas):
    """The JSON at `path`; exits with a message when its schema is not one of `schemas`."""
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") not in schemas:
        sys.exit(f"report.py: {path}: schema is {doc.get('schema')!r}, expected {' or '.join(map(repr, schemas))}")
    return doc


def median(r, variant):
    v = r.get("variants", {}).get(variant) or {}
    return v.get("median_ms")


def ratio(r, slow, fast):
    """Time of `slow` over time of `fast`: > 1 means `fast` is faster. None if either is missing."""
    a, b = median(r, slow), median(r, fast)
    return a / b if a and b else None


def shape(m, k, n):
    return f"{m}×{k}×{n}"


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def vs_roofline(r, variant):
    """The variant's time over its roofline time (schema 2), or None."""
    v = (r.get("variants", {}).get(variant) or {}).get("vs_roofline")
    return v if v else None


def bits_per_weight(r):
    wb = (r.get("variants", {}).get("fused") or {}).get("weight_bytes")
    return 8 * wb / (r["k"] * r["n"]) if wb else None


def fmt(x, spec=".3g", suffix=""):
    return "" if x is None else f"{x:{spec}}{suffix}"


def value_range(xs, spec):
    """'a–b' for the range of xs, or 'a' when both ends print the same."""
    lo, hi = f"{min(xs):{spec}}", f"{max(xs):{spec}}"
    return lo if lo == hi else f"{lo}–{hi}"


def mib(nbytes):
    return f"{nbytes / 2**20:g} MiB" if nbytes else ""


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def skipped(why):
    return [f"_Skipped: {why}._", ""]


def families(results):
    """(k, n) -> {m: [results]}, for shapes measured at two or more M with dense and fused."""
    fam = defaultdict(lambda: defaultdict(list))
    for r in results:
        if ratio(r, "dense", "fused"):
            fam[(r["k"], r["n"])][r["m"]].append(r)
    return {kn: ms for kn, ms in sorted(fam.items()) if len(ms) >= 2}


def family_label(kn, by_m, sep="\n"):
    layers = sorted({r.get("layer", "") for rs in by_m.values() for r in rs} - {""})
    names = ", ".join(layers[:2]) + (", …" if len(layers) > 2 else "")
    return f"K={kn[0]} N={kn[1]}" + (f"{sep}{names}" if names else "")


def chunks(items, size):
    """items cut into ceil(len / size) runs of nearly equal length, in order."""
    count = max(1, math.ceil(len(items) / size))
    step = len(items) / count
    return [items[round(i * step):round((i + 1) * step)] for i in range(count)]


def grid(panels, max_cols):
    """(figure rows, columns) for `panels` small multiples."""
    cols = max(1, min(max_cols, panels))
    return math.ceil(panels / cols), cols


def log_axis_labels(axis):
    """Plain numbers (0.1, 0.2, 0.5, 1, 2, 5, ...) on a log axis instead of 10^x."""
    axis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}" if f"{y:.0e}"[0] in "25" else ""))


# ---------------------------------------------------------------- plots (one function each)

def plot_speedup_vs_m(fams, path):
    cols = min(4, len(fams))
    rows = math.ceil(len(fams) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(FIG_WIDTH / 4 * cols, 2.9 * rows), sharey=True, squeeze=False)
    for ax, (kn, by_m) in zip(axes.flat, fams.items()):
        ms = sorted(by_m)
        for num, label, marker in (("fused", "fused / dense", "o"), ("decoupled", "decoupled / dense", "s")):
            pts = [(m, gmean(s)) for m in ms if (s := [x for r in by_m[m] if (x := ratio(r, "dense", num))])]
            if pts:
                ax.plot(*zip(*pts), marker=marker, label=label)
        bpw = [b for m in ms for r in by_m[m] if (b := bits_per_weight(r))]
        if bpw:
            ax.axhline(16 / gmean(bpw), color="gray", linestyle="--", label="ideal 16 / bits per weight")
        ax.axhline(1, color="black", linewidth=0.6)
        ax.set_xscale("log", base=2)
        ax.set_title(family_label(kn, by_m), fontsize=8)
        ax.set_xlabel("M", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(fams):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("speed-up over dense (x)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_roofline_vs_m(fams, path):
    """Two panels (fused, dense): time / roofline time vs M, one line per K×N shape."""
    legend_rows = math.ceil((len(fams) + 2) / 3)
    fig, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH, 4.6 + 0.25 * legend_rows), sharey=True)
    colors = plt.get_cmap("tab10" if len(fams) <= 10 else "tab20").colors
    values = []
    for ax, (variant, title) in zip(axes, (("fused", "fused W4A16 (int4 weight bytes)"),
                                           ("dense", "dense 16-bit baseline (16-bit weight bytes)"))):
        for i, (kn, by_m) in enumerate(fams.items()):
            pts = [(m, gmean(s)) for m in sorted(by_m) if (s := [x for r in by_m[m] if (x := vs_roofline(r, variant))])]
            if pts:
                values += [y for _, y in pts]
                ax.plot(*zip(*pts), marker="o", markersize=4, color=colors[i % len(colors)],
                        label=family_label(kn, by_m, sep=": "))
        ax.axhline(1.0, color="black", linewidth=1.0, label="roofline (1.0)")
        ax.axhline(ROOFLINE_TARGET, color="black", linewidth=1.0, linestyle="--",
                   label=f"target ({ROOFLINE_TARGET:g})")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlabel("M (rows of x)", fontsize=10)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(True, which="major", alpha=0.3)
    if values and max(values) / min(min(values), 1.0) > 8:  # spans a decade or so: log scale
        axes[0].set_yscale("log")
        log_axis_labels(axes[0].yaxis)
    axes[0].set_ylim(bottom=min(0.9, 0.9 * min(values, default=1.0)))
    axes[0].set_ylabel("time / roofline time", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, (0.25 * legend_rows + 0.15) / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def splitk_cells(results):
    """(round(log2 K/N), M) -> split-K / data-parallel speed-ups of the shapes in that cell."""
    cells = defaultdict(list)
    for r in results:
        s = ratio(r, "fused_dp", "fused_splitk")
        if s:
            cells[(round(math.log2(r["k"] / r["n"])), r["m"])].append(s)
    return cells


def splitk_grid(cells):
    """Rows by M, columns by round(log2 K/N): the geometric mean of each cell (nan where empty)."""
    xs = sorted({b for b, _ in cells})
    ys = sorted({m for _, m in cells})
    grid = [[gmean(cells[(b, m)]) if (b, m) in cells else math.nan for b in xs] for m in ys]
    return xs, ys, grid


def splitk_reach(grids):
    """The colour scale's reach, symmetric in log around 1 (1/reach .. reach) over every grid."""
    vals = [v for _, _, g in grids for row in g for v in row if not math.isnan(v)]
    return max(max(vals), 1 / min(vals), 1.05)


def draw_splitk(ax, xs, ys, grid, reach, title):
    """One split-K heatmap panel, each cell labelled with its value; returns the image."""
    im = ax.imshow(grid, cmap="RdBu", norm=LogNorm(1 / reach, reach), aspect="auto", origin="lower")
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


def splitk_colorbar(fig, im, axes, reach, label):
    bar = fig.colorbar(im, ax=axes, label=label)
    bar.minorticks_off()
    ticks = [reach ** e for e in (-1, -0.5, 0, 0.5, 1)]
    bar.set_ticks(ticks, labels=[f"{t:.2f}" for t in ticks])


def plot_splitk_heatmap(cells, path):
    xs, ys, grid = splitk_grid(cells)
    reach = splitk_reach([(xs, ys, grid)])
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(xs), 1.2 + 0.5 * len(ys)))
    im = draw_splitk(ax, xs, ys, grid, reach, "split-K / data-parallel speed-up (geometric mean per cell)")
    splitk_colorbar(fig, im, ax, reach, "speed-up (x)")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_breakdown(breakdown, path):
    """Small multiples: one panel per M (cut into panels of at most MAX_BARS shapes), one
    horizontal stacked bar per K×N: the shares of the decoupled time (panel through DRAM)."""
    by_m = defaultdict(list)
    for b in breakdown:
        by_m[b["m"]].append(b)
    panels = []  # (title, [entries])
    for m in sorted(by_m):
        parts = chunks(sorted(by_m[m], key=lambda b: (b["k"], b["n"])), MAX_BARS)
        for i, part in enumerate(parts):
            panels.append((f"M = {m}" + (f" ({i + 1}/{len(parts)})" if len(parts) > 1 else ""), part))
    rows, cols = grid(len(panels), 4)
    bars = max(len(p) for _, p in panels)
    fig, axes = plt.subplots(rows, cols, figsize=(FIG_WIDTH, rows * (0.28 * bars + 1.3) + 0.6), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, (title, part) in zip(axes.flat, panels):
        ys = range(len(part))
        left = [0.0] * len(part)
        for (key, name), color in zip(BREAKDOWN_PARTS, colors):
            vals = [100 * b.get(key, 0.0) for b in part]
            ax.barh(ys, vals, left=left, color=color, label=name, height=0.75)
            left = [a + v for a, v in zip(left, vals)]
        ax.set_yticks(ys, [f"{b['k']}×{b['n']}" for b in part], fontsize=9)
        ax.set_ylim(bars - 0.5, -0.5)  # first shape on top, same bar height in every panel
        ax.set_xlim(0, 100)
        ax.set_xticks(range(0, 101, 25))
        ax.tick_params(axis="x", labelsize=9)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel("share of the decoupled time (%)", fontsize=9)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


PEER_CLASS_COLORS = {"a16": "tab:blue", "w4a8": "tab:green", "fp32": "tab:gray"}
W4A16_COLOR = "tab:orange"


def plot_peers(peers, path):
    """Small multiples: one panel per M×K×N, one horizontal bar per peer (same order in every
    panel), log-scale time; w4a16 in orange."""
    shapes = sorted({(p["m"], p["k"], p["n"]) for p in peers})
    ms = {(p["peer"], (p["m"], p["k"], p["n"])): p["median_ms"] for p in peers if p.get("median_ms")}
    classes = {p["peer"]: p.get("class", "") for p in peers}
    names = sorted({p["peer"] for p in peers}, key=lambda n: (not n.startswith("w4a16"), classes[n], n))
    if not any(n.startswith("w4a16") for n in names):  # the w4a16 time each row was compared with
        names.insert(0, "w4a16")
        ms.update({("w4a16", (p["m"], p["k"], p["n"])): p["w4a16_ms"] for p in peers if p.get("w4a16_ms")})
    rows, cols = grid(len(shapes), 4)
    fig, axes = plt.subplots(rows, cols, figsize=(FIG_WIDTH, rows * (0.2 * len(names) + 1.0) + 0.7),
                             sharey=True, squeeze=False)
    for ax, s in zip(axes.flat, shapes):
        vals = [ms.get((n, s)) for n in names]
        colors = [W4A16_COLOR if n.startswith("w4a16") else PEER_CLASS_COLORS.get(classes.get(n), "tab:purple")
                  for n in names]
        ys = range(len(names))
        ax.barh(ys, [v or 0 for v in vals], color=colors, height=0.75)
        ax.set_xscale("log")
        present = [v for v in vals if v]
        if present:
            ax.set_xlim(min(present) / 1.6, max(present) * 2.5)  # room for the labels at the bar ends
        for y, v in zip(ys, vals):
            if v:
                ax.text(v * 1.08, y, f"{v:.3g}", va="center", fontsize=7)
        log_axis_labels(ax.xaxis)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_title(f"M={s[0]}  K={s[1]} N={s[2]}", fontsize=10)
        ax.grid(True, axis="x", which="major", alpha=0.3)
    axes[0, 0].set_yticks(range(len(names)), names, fontsize=9)
    axes[0, 0].set_ylim(len(names) - 0.5, -0.5)
    for ax in axes.flat[len(shapes):]:
        ax.set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel("median time per call (ms, log)", fontsize=9)
    legend = [plt.Rectangle((0, 0), 1, 1, color=W4A16_COLOR, label="w4a16")]
    legend += [plt.Rectangle((0, 0), 1, 1, color=c, label=f"class {k}") for k, c in PEER_CLASS_COLORS.items()
               if k in classes.values()]
    fig.legend(handles=legend, loc="upper center", ncol=len(legend), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


# ---------------------------------------------------------------- markdown sections

def section_machine(runs, peers):
    out = ["## Machine and configuration", ""]
    if not runs:
        return out + skipped("no bench run given (pass `--bench` or `--study`)")
    rows = []
    for name, doc in runs:
        mach, cfg = doc.get("machine", {}), doc.get("config", {})
        read = sorted(mach.get("read_gbps", {}).items(), key=lambda tv: int(tv[0]))
        rows.append([name, doc.get("date", ""), mach.get("cpu", ""), mach.get("isa", ""), mach.get("threads", ""),
                     mib(mach.get("l3_bytes")), ", ".join(f"{v:.1f} GB/s ({t}T)" for t, v in read),
                     compute_peaks(mach), cfg.get("suite", ""), cfg.get("group_size", ""), cfg.get("zero", ""),
                     cfg.get("act", ""), mib(cfg.get("rotation_bytes")), cfg.get("min_time_s", "")])
    out += table(["run", "date", "cpu", "isa", "threads", "L3", "read bandwidth", "compute peak (GFLOP/s)", "suite",
                  "g", "zero", "act", "rotation", "min time (s)"], rows)
    if peers:
        out += ["", f"Peers ran with {peers.get('threads', '?')} threads."]
    return out + [""]


def compute_peaks(mach):
    """'vdpbf16ps zmm 86 / 164, vfmadd231ps zmm 176 / 334 (1T / 2T)' from a schema-2 machine."""
    peaks, names = mach.get("peak_gflops") or {}, mach.get("peak_instruction") or {}
    threads = sorted({t for rates in peaks.values() for t in rates}, key=int)
    if not threads:
        return "not measured (schema 1)"
    parts = [f"{names.get(key, key)} " + " / ".join(fmt(rates.get(t), ".0f") or "–" for t in threads)
             for key, rates in peaks.items()]
    return ", ".join(parts) + " (" + " / ".join(f"{t}T" for t in threads) + ")"


def section_commands(runs, peers, report_cmd):
    cmds = [doc["command"] for _, doc in runs if doc.get("command")]
    if peers and peers.get("command"):
        cmds.append(peers["command"])
    return ["## Commands", "", "```sh"] + cmds + [report_cmd, "```", ""]


def section_speedup(results, img):
    out = ["## Speed-up over the dense 16-bit baseline vs M", ""]
    fams = families(results)
    if not fams:
        return out + skipped("no shape measured with dense and fused at two or more M")
    plot_speedup_vs_m(fams, os.path.join(img, "speedup_vs_m.png"))
    bpw = [b for r in results if (b := bits_per_weight(r))]
    ideal = f" (here b = {value_range(bpw, '.3f')}, ideal {value_range([16 / b for b in bpw], '.2f')}x)" if bpw else ""
    return out + ["![speed-up vs M](img/speedup_vs_m.png)", "",
                  "Dense time over fused (and over decoupled) time, per K×N shape family; geometric mean where a "
                  "shape appears in several layers. The dashed line is the memory-bound ideal 16 / b, "
                  f"b = 8 · weight_bytes(fused) / (K·N) bits per weight{ideal}.", ""]


def section_roofline(results, img):
    out = ["## Distance to the roofline vs M", ""]
    fams = {kn: by_m for kn, by_m in families(results).items()
            if any(vs_roofline(r, "fused") for rs in by_m.values() for r in rs)}
    if not fams:
        return out + skipped("no shape with `vs_roofline` at two or more M (a `w4a16-bench/2` run is needed)")
    plot_roofline_vs_m(fams, os.path.join(img, "roofline_vs_m.png"))
    return out + ["![time over roofline time vs M](img/roofline_vs_m.png)", "",
                  "Median time over the roofline time max(weight bytes / read bandwidth, 2·M·K·N / compute peak), "
                  "for the variant's thread count; the weight bytes are the int4 bytes for fused and the 16-bit "
                  "weight for dense, the compute peak is the larger of the measured `vdpbf16ps` and fp32 FMA peaks "
                  f"(docs/bench-json.md). 1.0 is on the roofline; the dashed line is the {ROOFLINE_TARGET:g}x "
                  "target. Geometric mean where a shape appears in several layers.", ""]


def section_main_table(results):
    out = ["## Main numbers", ""]
    if not results:
        return out + skipped("no bench results given")
    rows = []
    for r in results:
        variants = r.get("variants", {})
        fused, splitk = variants.get("fused") or {}, variants.get("fused_splitk") or {}
        unverified = [k for k, v in variants.items() if v.get("verified") is False and k not in ABLATIONS]
        split_s = f" (S={splitk['split_k']})" if "split_k" in splitk else ""
        rows.append([r.get("model", ""), r.get("layer", ""), shape(r["m"], r["k"], r["n"]),
                     fmt(median(r, "dense")), fmt(median(r, "fused")), fmt(median(r, "decoupled")),
                     fmt(ratio(r, "dense", "fused"), ".2f", "x"), fmt(ratio(r, "dense", "decoupled"), ".2f", "x"),
                     fmt(ratio(r, "fused_dp", "fused_splitk"), ".2f", "x") + split_s,
                     fmt(fused.get("gbps"), ".1f"), fmt(fused.get("pct_bw"), ".0f", "%"),
                     fmt(vs_roofline(r, "fused"), ".2f", "x"), fmt(vs_roofline(r, "dense"), ".2f", "x"),
                     "no: " + ", ".join(unverified) if unverified else "yes"])
    out += table(["model", "layer", "M×K×N", "dense ms", "fused ms", "decoupled ms", "fused vs dense",
                  "decoupled vs dense", "split-K vs dp", "fused GB/s", "fused % read bw", "fused / roofline",
                  "dense / roofline", "verified"], rows)
    return out + ["", "Times are medians per call (ms); a `vs` column is the second variant's time over the first's "
                  "(> 1: the first is faster); a `/ roofline` column is the time over the roofline time (1.00x: on "
                  "the roofline; empty for `w4a16-bench/1` runs).", ""]


def section_totals(runs):
    totals = [t for _, doc in runs for t in doc.get("totals") or []]
    out = ["## Whole-model decode (M = 1, linear layers only)", ""]
    if not totals:
        return out + skipped("no `totals` in the bench runs (suites with models only)")
    rows = []
    for t in totals:
        for s in sorted(t.get("model_ms", {})):
            rows.append([t["model"], t.get("decoder_layers", ""), s, fmt(t.get("decoder_layer_ms", {}).get(s)),
                         fmt(t["model_ms"][s]), fmt(t.get("tokens_per_s", {}).get(s), ".1f")])
    header = ["model", "decoder layers", "variant", "decoder layer ms", "model ms", "tokens/s (bound)"]
    return out + table(header, rows) + [""]


def section_splitk(results, img):
    out = ["## Split-K vs data-parallel", ""]
    cells = splitk_cells(results)
    if not cells:
        return out + skipped("no result with both `fused_splitk` and `fused_dp`")
    plot_splitk_heatmap(cells, os.path.join(img, "splitk_heatmap.png"))
    return out + ["![split-K heat map](img/splitk_heatmap.png)", "",
                  "`fused_dp` time over `fused_splitk` time (> 1: split-K wins), shapes binned by K/N to the nearest "
                  f"power of 2. The paper: {PAPER_SPLITK}.", ""]


def section_breakdown(study, img):
    out = ["## Bottleneck breakdown", ""]
    breakdown = (study or {}).get("breakdown") or []
    if not breakdown:
        return out + skipped("no study breakdown (pass `--study` with a `w4a16 bench --study` run)")
    plot_breakdown(breakdown, os.path.join(img, "breakdown.png"))
    rows = [[shape(b["m"], b["k"], b["n"])] + [fmt(b.get(k) and 100 * b[k], ".0f", "%") for k, _ in BREAKDOWN_PARTS]
            for b in breakdown]
    return out + ["![bottleneck breakdown](img/breakdown.png)", ""] + \
        table(["M×K×N"] + [name for _, name in BREAKDOWN_PARTS], rows) + [""]


def section_study(study):
    out = ["## The study next to the paper", ""]
    if not study:
        return out + skipped("no study (pass `--study` with a `w4a16 bench --study` run)")
    sk, vs, bd = study.get("splitk_vs_dp") or {}, study.get("w4a16_vs_fp16") or {}, study.get("breakdown") or []
    best = "; ".join(f"{shape(b['m'], b['k'], b['n'])} S={b.get('split_k', '?')}: {b['speedup']:.2f}x"
                     for b in sorted(sk.get("best", []), key=lambda b: -b["speedup"])[:3])
    ours_sk = f"{fmt(sk.get('min'), '.2f')}–{fmt(sk.get('max'), '.2f')}x" + (f" (best: {best})" if best else "")
    ours_vs = (f"fused up to {fmt(vs.get('fused_max'), '.2f', 'x')}, "
               f"decoupled up to {fmt(vs.get('decoupled_max'), '.2f', 'x')}")
    if bd:
        mean = {k: 100 * sum(b.get(k, 0) for b in bd) / len(bd) for k, _ in BREAKDOWN_PARTS}
        ours_bd = ", ".join(f"{name} {mean[k]:.0f}%" for k, name in BREAKDOWN_PARTS) + \
            f" of the decoupled time (mean over {len(bd)} shapes)"
    else:
        ours_bd = "no breakdown in the study"
    rows = [["split-K over data-parallel", PAPER_SPLITK, ours_sk],
            ["W4A16 over the 16-bit baseline", PAPER_VS_FP16, ours_vs],
            ["bottleneck", PAPER_BOTTLENECK, ours_bd],
            ["conclusion", "", study.get("conclusion", "")]]
    return out + table(["finding", "paper (Ascend 910)", "this run (CPU)"], rows) + [""]


def section_peers(peers, img):
    out = ["## Peers", ""]
    rs = (peers or {}).get("results") or []
    if not rs:
        return out + skipped("no peers results (pass `--peers`)")
    plot_peers(rs, os.path.join(img, "peers.png"))
    rows = [[p["peer"], p.get("computes", ""), shape(p["m"], p["k"], p["n"]), fmt(p["median_ms"]),
             fmt(p.get("max_rel_err"), ".1e"), fmt(p.get("w4a16_ms")), fmt(p.get("ratio_vs_w4a16"), ".2f", "x")]
            for p in sorted(rs, key=lambda p: (p["m"], p["k"], p["n"], p["peer"]))]
    return out + ["![peers](img/peers.png)", ""] + \
        table(["peer", "computes", "M×K×N", "peer ms", "max rel err", "w4a16 ms", "ratio_vs_w4a16"], rows) + [""]


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", help="main `w4a16 bench --json` run")
    ap.add_argument("--study", help="`w4a16 bench --study --json` run")
    ap.add_argument("--peers", help="peers comparison (w4a16-peers/1)")
    ap.add_argument("--out", default="docs", help="writes OUT/evaluation.md and OUT/img/*.png (default: docs)")
    args = ap.parse_args(argv)
    if not (args.bench or args.study or args.peers):
        ap.error("give at least one of --bench, --study, --peers")

    runs = [(name, load(path, BENCH_SCHEMAS)) for name, path in (("main", args.bench), ("study", args.study)) if path]
    peers = load(args.peers, ("w4a16-peers/1",)) if args.peers else None
    study = next((doc["study"] for _, doc in reversed(runs) if doc.get("study")), None)
    seen, results = set(), []  # main run first; a shape both runs measured is taken from the main run
    for _, doc in runs:
        for r in doc.get("results") or []:
            if (key := (r["m"], r["k"], r["n"], r.get("model"), r.get("layer"))) not in seen:
                seen.add(key)
                results.append(r)

    img = os.path.join(args.out, "img")
    os.makedirs(img, exist_ok=True)
    for png in PLOTS:  # a plot whose data is missing this time must not survive from an earlier run
        if os.path.exists(os.path.join(img, png)):
            os.remove(os.path.join(img, png))
    report_cmd = "bench/report.sh " + " ".join(
        f"--{k} {shlex.quote(v)}" for k, v in vars(args).items() if v is not None)
    lines = ["# Evaluation", "",
             "Generated by `bench/report.py` from " + ", ".join(
                 f"`{os.path.basename(p)}` ({k})" for k, p in vars(args).items() if p and k != "out") +
             "; every number below comes from the commands listed, on the machine listed.", ""]
    lines += section_machine(runs, peers)
    lines += section_commands(runs, peers, report_cmd)
    lines += section_speedup(results, img)
    lines += section_roofline(results, img)
    lines += section_main_table(results)
    lines += section_totals(runs)
    lines += section_splitk(results, img)
    lines += section_breakdown(study, img)
    lines += section_study(study)
    lines += section_peers(peers, img)
    with open(os.path.join(args.out, "evaluation.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
