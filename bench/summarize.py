#!/usr/bin/env python3
"""Turns the JSON of w4a16_bench_kernels (--benchmark_out=FILE --benchmark_out_format=json) into a
Markdown table: time per call, weight GB/s, % of the measured read bandwidth, the bandwidth
probe, GFLOP/s and the speed-up over the dense 16-bit baseline, with the machine context on top.

    python3 bench/summarize.py results.json
"""
import json
import re
import sys


def main(path):
    with open(path) as f:
        data = json.load(f)
    ctx = data.get("context", {})
    for key in ("w4a16_cpu", "w4a16_isa", "read_bw_1t", "read_bw_2t", "read_probe", "rotation", "load_avg"):
        if key in ctx:
            print(f"- {key}: {ctx[key]}")
    print()
    print("| benchmark | time | weight GB/s | % read bw | read probe GB/s | GFLOP/s | vs dense | plan |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for b in data["benchmarks"]:
        name = re.sub(r"/(min_time:[0-9.]+|real_time)", "", b["name"])
        if b.get("error_occurred"):
            print(f"| {name} | skipped: {b.get('error_message', '')} | | | | | | |")
            continue
        time = f"{b['real_time']:.3g} {b['time_unit']}"
        gbps = b.get("wbytes", 0) / 1e9
        gflops = b.get("flops", 0) / 1e9
        pct = b.get("bw_pct")
        vs = b.get("vs_dense")
        probe = b.get("read_GBps")
        print(f"| {name} | {time} | {gbps:.2f} | {pct:.1f} | {'' if probe is None else f'{probe:.1f}'} | {gflops:.1f} | "
              f"{'' if vs is None else f'{vs:.2f}x'} | {b.get('label', '')} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
