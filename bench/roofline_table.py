#!/usr/bin/env python3
"""Markdown tables of `w4a16 bench --json` runs (schema w4a16-bench/2, docs/bench-json.md) by
layer shape and M: fused/roofline, dense/roofline and fused's speed-up over dense, one table per
file (e.g. one run on 1 thread and one on 2). docs/results.md quotes its output.

    python3 bench/roofline_table.py run-2t.json [run-1t.json ...]
"""
import json
import sys


def table(path):
    with open(path) as f:
        run = json.load(f)
    if run.get("schema") != "w4a16-bench/2":
        sys.exit(f"{path}: schema {run.get('schema')!r}, need w4a16-bench/2 (the roofline fields)")
    machine = run["machine"]
    by_shape = {}
    for r in run["results"]:
        by_shape.setdefault((r["k"], r["n"]), {})[r["m"]] = r["variants"]
    ms = sorted({m for rows in by_shape.values() for m in rows})
    out = [
        f"`{run['command']}` — {machine['cpu']}, {machine['threads']} thread(s), "
        f"streaming read {' / '.join(f'{v:.1f}' for v in machine['read_gbps'].values())} GB/s, "
        f"compute peak {' / '.join(f'{v:.0f}' for v in machine['roofline_gflops'].values())} GFLOP/s "
        f"({' / '.join(machine['read_gbps'])} threads)",
        "",
        "| K×N | row | " + " | ".join(f"M={m}" for m in ms) + " |",
        "|---|---|" + "---|" * len(ms),
    ]
    for (k, n), rows in sorted(by_shape.items()):
        for label, cell in (
            ("fused/roof", lambda v: v["fused"]["vs_roofline"]),
            ("dense/roof", lambda v: v["dense"]["vs_roofline"]),
            ("fused vs dense", lambda v: v["dense"]["median_ms"] / v["fused"]["median_ms"]),
        ):
            cells = []
            for m in ms:
                v = rows.get(m)
                cells.append(f"{cell(v):.2f}" if v and "fused" in v and "dense" in v else "")
            out.append(f"| {k}×{n} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("\n\n".join(table(p) for p in sys.argv[1:]))


if __name__ == "__main__":
    main()
