#!/usr/bin/env python3
"""Summarizes what scripts/gpu-check.sh wrote into OUTDIR, as plain text on stdout.

    python3 scripts/gpu_summary.py OUTDIR [--section tests|bench|all]

Reads, each only when present (a missing or malformed file is reported, never fatal):
  OUTDIR/tests/<name>.json   GoogleTest's --gtest_output=json reports (<name>.txt: the test's output)
  OUTDIR/bench.json          `w4a16 bench --backend cuda --json`:
                             {"gpu", "copy_gbps", "rows": [{"shape", "m", "k", "n", "variant",
                              "split_k", "ms", "gbps"}]}
  OUTDIR/peers.json          bench/cuda_peers.py: {"torch", "rows": [{"shape", "m", "k", "n",
                              "variant": "tinygemm-bf16", "ms", "gbps"}], "error"?}
Prints the pass/fail counts per test executable (failing tests with the first line of each
message), then one table per shape: M, the milliseconds of each variant, fused-auto's speed-up over
cuBLAS fp16, fused-auto's time over tinygemm's, and fused-auto's GB/s as a share of the copy rate.
Standard library only: it runs under whatever python3 the GPU machine has.
"""
import argparse
import json
import math
import os
import sys

VARIANTS = ["fused-dp", "fused-splitk", "fused-auto", "decoupled", "cublas-fp16", "cublas-bf16", "tinygemm-bf16"]


def load_json(path):
    """(data, problem): data is None when the file is absent or unreadable."""
    if not os.path.exists(path):
        return None, "absent"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), None
    except (OSError, ValueError) as e:
        return None, f"unreadable ({e.__class__.__name__}: {e})"


def number(value):
    """A float, or None for anything that is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def first_line(text, width=160):
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def tail(path, lines=6):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()[-lines:]
    except OSError:
        return []


# --- tests ----------------------------------------------------------------------------------------

def gtest_counts(report):
    """(passed, failed, skipped, disabled, [(test, first message line)]) of one gtest JSON report."""
    passed = failed = skipped = 0
    failures = []
    for suite in report.get("testsuites") or []:
        for test in suite.get("testsuite") or []:
            if test.get("status") == "NOTRUN":
                continue  # disabled (counted from the report's own total below) or filtered out
            name = f"{suite.get('name', '?')}.{test.get('name', '?')}"
            messages = [f.get("failure", "") for f in test.get("failures") or []]
            if messages:
                failed += 1
                failures.append((name, first_line(messages[0])))
            elif test.get("result") == "SKIPPED":
                skipped += 1
            else:
                passed += 1
    disabled = report.get("disabled", 0) if isinstance(report.get("disabled"), int) else 0
    return passed, failed, skipped, disabled, failures


def tests_section(outdir):
    out = ["== Tests (tests/cuda, GoogleTest JSON in tests/)"]
    folder = os.path.join(outdir, "tests")
    names = set()
    if os.path.isdir(folder):
        names = {os.path.splitext(f)[0] for f in os.listdir(folder) if f.endswith((".json", ".txt"))}
    if not names:
        out.append("  no test reports")
        return out
    totals = [0, 0, 0, 0]
    width = max(len(n) for n in names)
    for name in sorted(names):
        report, problem = load_json(os.path.join(folder, name + ".json"))
        if report is None or not isinstance(report, dict):
            out.append(f"  {name:<{width}}  NO REPORT: json {problem or 'not an object'} "
                       "(the test crashed, timed out or did not start)")
            out.extend(f"  {'':<{width}}  | {line}" for line in tail(os.path.join(folder, name + ".txt")))
            totals[1] += 1
            continue
        passed, failed, skipped, disabled, failures = gtest_counts(report)
        for i, v in enumerate((passed, failed, skipped, disabled)):
            totals[i] += v
        verdict = "FAIL" if failed else "ok"
        out.append(f"  {name:<{width}}  {verdict:<4}  passed {passed:4}  failed {failed:3}  "
                   f"skipped {skipped:3}  disabled {disabled:3}")
        for test, message in failures[:20]:
            out.append(f"  {'':<{width}}    FAILED {test}: {message}")
        if len(failures) > 20:
            out.append(f"  {'':<{width}}    ... and {len(failures) - 20} more")
    out.append(f"  total: passed {totals[0]}, failed {totals[1]} (executables without a report count as one), "
               f"skipped {totals[2]}, disabled {totals[3]}")
    if totals[2]:
        out.append("  WARNING: skipped tests; on the GPU machine that usually means no usable GPU was seen")
    return out


# --- bench ----------------------------------------------------------------------------------------

def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.4f}" if v < 10 else f"{v:.2f}"


def fmt_ratio(v, suffix):
    return "-" if v is None else f"{v:.2f}{suffix}"


def rows_of(data):
    rows = data.get("rows") if isinstance(data, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def bench_section(outdir):
    out = ["== Benchmark (bench.json: w4a16 bench --backend cuda; peers.json: bench/cuda_peers.py)"]
    bench, bench_problem = load_json(os.path.join(outdir, "bench.json"))
    peers, peers_problem = load_json(os.path.join(outdir, "peers.json"))
    if bench is not None and not isinstance(bench, dict):
        bench, bench_problem = None, "not a JSON object"
    if peers is not None and not isinstance(peers, dict):
        peers, peers_problem = None, "not a JSON object"

    copy_gbps = None
    if bench is None:
        out.append(f"  bench.json: {bench_problem}")
    else:
        copy_gbps = number(bench.get("copy_gbps"))
        out.append(f"  gpu: {bench.get('gpu') or '?'}   copy: "
                   + (f"{copy_gbps:.0f} GB/s" if copy_gbps else "? GB/s"))
    if peers is None:
        out.append(f"  peers.json: {peers_problem}")
    else:
        out.append(f"  torch: {peers.get('torch') or '?'}"
                   + (f"   peers error: {first_line(peers['error'], 300)}" if peers.get("error") else ""))

    # (shape, m) -> variant -> row; shapes in order of first appearance, bench rows first.
    table, shape_order, shape_kn = {}, [], {}
    for source in (rows_of(bench), rows_of(peers)):
        for r in source:
            # Joined on (K, N), not the "shape" text: the bench writes "KxN", the peer "NxK".
            k, n = r.get("k"), r.get("n")
            shape = f"{k}x{n}" if k is not None and n is not None else str(r.get("shape", "?"))
            m, variant = r.get("m"), str(r.get("variant", "?"))
            if shape not in shape_order:
                shape_order.append(shape)
                shape_kn[shape] = (r.get("k", "?"), r.get("n", "?"))
            cell = table.setdefault((shape, m), {})
            cell.setdefault(variant, r)  # the first row of a variant wins
    if not table:
        out.append("  no rows")
        return out

    speedups, tinyratios = [], []
    for shape in shape_order:
        keys = sorted((key for key in table if key[0] == shape),
                      key=lambda key: (number(key[1]) is None, number(key[1]) or 0))
        present = {v for key in keys for v in table[key]}
        variants = [v for v in VARIANTS if v in present] + sorted(present - set(VARIANTS))
        k, n = shape_kn[shape]
        out.append("")
        out.append(f"  {shape} (K x N; K={k}, N={n}; milliseconds per call)")
        header = ["M"] + variants + ["auto sk", "auto/cuBLAS16", "auto/tinygemm", "auto %copy"]
        lines = []
        for key in keys:
            cell = table[key]
            ms = {v: number(cell[v].get("ms")) for v in cell}
            auto = ms.get("fused-auto")
            fp16 = ms.get("cublas-fp16")
            tiny = ms.get("tinygemm-bf16")
            speedup = fp16 / auto if auto and fp16 else None
            tinyratio = auto / tiny if auto and tiny else None
            if speedup:
                speedups.append(speedup)
            if tinyratio:
                tinyratios.append(tinyratio)
            auto_row = cell.get("fused-auto", {})
            auto_gbps = number(auto_row.get("gbps"))
            share = 100 * auto_gbps / copy_gbps if auto_gbps and copy_gbps else None
            split_k = auto_row.get("split_k")
            lines.append([str(key[1])] + [fmt_ms(ms.get(v)) for v in variants]
                         + [str(split_k) if split_k is not None else "-", fmt_ratio(speedup, "x"),
                            fmt_ratio(tinyratio, ""), fmt_ratio(share, "%")])
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        out.append("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths)))
        out.extend("  " + "  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)

    out.append("")
    out.append("  auto sk:       the split-K factor fused-auto chose")
    out.append("  auto/cuBLAS16: cuBLAS fp16 time / fused-auto time (above 1: fused-auto is faster)")
    out.append("  auto/tinygemm: fused-auto time / tinygemm time (below 1: fused-auto is faster)")
    out.append("  auto %copy:    fused-auto GB/s as a share of copy_gbps (the card's measured copy rate)")
    if speedups:
        out.append(f"  geometric mean over {len(speedups)} rows: fused-auto {geomean(speedups):.2f}x cuBLAS fp16")
    if tinyratios:
        out.append(f"  geometric mean over {len(tinyratios)} rows: fused-auto / tinygemm {geomean(tinyratios):.2f}")
    return out


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--section", choices=["tests", "bench", "all"], default="all")
    args = parser.parse_args()
    lines = []
    if args.section in ("tests", "all"):
        lines += tests_section(args.outdir)
    if args.section == "all":
        lines.append("")
    if args.section in ("bench", "all"):
        lines += bench_section(args.outdir)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
