#!/usr/bin/env python3
"""Writes synthetic inputs for bench/report.py, in the schemas of docs/bench-json.md and of the
peers file: bench.json (main run, suite llama3-8b), study.json (the paper suite with --study) and
peers.json. The numbers come from a toy roofline (a memory bandwidth and a GEMM rate, seeded
noise): they only have to look like a run, never to be quoted.

    python3 bench/tests_report/make_fake.py OUTDIR
"""
import json
import math
import os
import random
import sys

THREADS = 2
READ_GBPS = {"1": 34.5, "2": 62.9}
PEAK_GFLOPS = 435.0  # dense bf16 GEMM, 2 threads
ROOF_GFLOPS = {"bf16_dot": {"1": 562.0, "2": 1149.0}, "fp32_fma": {"1": 278.0, "2": 575.0}}  # KERNEL-NOTES.md
G = 128
DECODER = [("q_proj", 4096, 4096, 1), ("k_proj / v_proj", 4096, 1024, 2), ("o_proj", 4096, 4096, 1),
           ("gate_proj / up_proj", 4096, 14336, 2), ("down_proj", 14336, 4096, 1)]
KN = [("GQA", "k/v 4096->1024", 4096, 1024), ("MLP", "down 14336->4096", 14336, 4096),
      ("TP/8", "k/v 4096->128", 4096, 128), ("TP/8", "down 14336->512", 14336, 512),
      ("small-N", "16384->64", 16384, 64), ("small-N", "28672->128", 28672, 128)]
PAPER_DIMS = [12288, 1792, 7808, 3904, 1536]

rng = random.Random(1234)


def noisy(t):
    return t * rng.uniform(0.97, 1.05)


def int4_bytes(k, n):
    return k * n // 2 + math.ceil(k / G) * n * 2  # codes + one bf16 scale per group (sym)


def variant(ms, weight_bytes, m, k, n, plan, verified=True, **extra):
    bw = READ_GBPS[str(THREADS)]
    gbps = weight_bytes / (ms * 1e6)
    peak = max(rates[str(THREADS)] for rates in ROOF_GFLOPS.values())
    roof = max(weight_bytes / (bw * 1e6), 2 * m * k * n / (peak * 1e6))
    v = {"median_ms": round(ms, 5), "p10_ms": round(ms * 0.98, 5), "p90_ms": round(ms * 1.04, 5),
         "weight_bytes": weight_bytes, "gbps": round(gbps, 2), "pct_bw": round(100 * gbps / bw, 1),
         "gflops": round(2 * m * k * n / (ms * 1e6), 1), "roofline_ms": round(roof, 6),
         "vs_roofline": round(ms / roof, 4), "plan": plan, "verified": verified, "threads": THREADS}
    v.update(extra)
    return v


def result(model, layer, m, k, n, per_layer=1, study=False):
    bw = READ_GBPS[str(THREADS)] * 1e6  # bytes per ms
    flops = 2 * m * k * n / (PEAK_GFLOPS * 1e6)  # ms at the peak rate
    wq, wd = int4_bytes(k, n), 2 * k * n
    dense = noisy(max(wd / (0.9 * bw), flops) + 0.005)
    read = wq / (0.85 * bw)
    tiles = math.ceil(n / 64)
    dp = noisy(max(read * (1.8 if tiles < THREADS else 1.0) * (1 + 4 / tiles), 1.08 * flops) + 0.005)
    splitk = noisy(max(read * 1.03, 1.1 * flops) + 0.005 + m * n * 8 / bw)
    panel = wd / (8 * bw)  # the 16-bit panel written and read back through L2
    decoupled = noisy(max(read + 2.5 * panel + 0.1 * read, 1.04 * flops) + 0.01)
    v = {"dense": variant(dense, wd, m, k, n, "dense dp S=1 threads=2"),
         "fused": variant(min(dp, splitk), wq, m, k, n, "fused auto threads=2"),
         "fused_dp": variant(dp, wq, m, k, n, "fused dp S=1 threads=2"),
         "fused_splitk": variant(splitk, wq, m, k, n, "fused splitk S=2 threads=2", split_k=2),
         "decoupled": variant(decoupled, wq, m, k, n, "decoupled panel=1MiB threads=2")}
    if study:
        v["decoupled_llc"] = variant(decoupled * 1.05, wq, m, k, n, "decoupled panel=16MiB")
        v["decoupled_dram"] = variant(decoupled + 2 * wd / bw, wq, m, k, n, "decoupled panel=256MiB")
        v["decoupled_widen"] = variant(decoupled - 0.1 * read, wq, m, k, n, "widen", verified=False)
        v["int4_stream"] = variant(noisy(read * 0.95), wq, m, k, n, "int4 stream", verified=False)
    ms = {name: x["median_ms"] for name, x in v.items()}
    return {"model": model, "layer": layer, "per_decoder_layer": per_layer, "m": m, "k": k, "n": n,
            "variants": v,
            "speedup": {"fused_vs_dense": round(ms["dense"] / ms["fused"], 3),
                        "decoupled_vs_dense": round(ms["dense"] / ms["decoupled"], 3),
                        "splitk_vs_dp": round(ms["fused_dp"] / ms["fused_splitk"], 3)}}


def header(command, suite, study):
    return {"schema": "w4a16-bench/2", "command": command, "date": "2026-11-25T11:30:00Z",
            "machine": {"cpu": "AMD EPYC (fake data)", "isa": "avx512bf16", "threads": THREADS,
                        "l3_bytes": 33554432, "read_gbps": READ_GBPS, "peak_gflops": ROOF_GFLOPS,
                        "peak_instruction": {"bf16_dot": "vdpbf16ps zmm", "fp32_fma": "vfmadd231ps zmm"},
                        "roofline_gflops": {t: max(r[t] for r in ROOF_GFLOPS.values()) for t in ("1", "2")}},
            "config": {"suite": suite, "group_size": G, "zero": "sym", "act": "bf16",
                       "rotation_bytes": 134217728, "min_time_s": 0.1, "study": study}}


def main_run():
    doc = header("w4a16 bench --suite llama3-8b --json bench.json", "llama3-8b", False)
    doc["results"] = [result("Llama-3-8B", layer, m, k, n, per)
                      for m in (1, 4, 16, 64, 256) for layer, k, n, per in DECODER]
    layer_ms = {s: sum(r["per_decoder_layer"] * r["variants"][s]["median_ms"]
                       for r in doc["results"] if r["m"] == 1) for s in ("dense", "fused")}
    doc["totals"] = [{"model": "Llama-3-8B", "decoder_layers": 32,
                      "decoder_layer_ms": {s: round(t, 4) for s, t in layer_ms.items()},
                      "model_ms": {s: round(32 * t, 3) for s, t in layer_ms.items()},
                      "tokens_per_s": {s: round(1000 / (32 * t), 2) for s, t in layer_ms.items()}}]
    doc["study"] = None
    return doc


def study_run():
    doc = header("w4a16 bench --suite paper --study --json study.json", "paper", True)
    rs = [result("Ascend split-K", "M=24", 24, k, n, study=True) for k in PAPER_DIMS for n in PAPER_DIMS]
    rs += [result(model, layer, m, k, n, study=True) for m in (1, 4, 16, 64) for model, layer, k, n in KN]
    doc["results"], doc["totals"] = rs, []
    knn = [r for r in rs if r["k"] > r["n"]]
    sk = sorted(knn, key=lambda r: -r["speedup"]["splitk_vs_dp"])
    breakdown = []
    for r in rs:
        if r["m"] != 1:
            continue
        v = {name: x["median_ms"] for name, x in r["variants"].items()}
        breakdown.append({"m": r["m"], "k": r["k"], "n": r["n"],
                          "read_share": round(v["int4_stream"] / v["decoupled"], 3),
                          "math_share": round((v["decoupled"] - v["decoupled_widen"]) / v["decoupled"], 3),
                          "round_trip_share": round((v["decoupled_widen"] - v["int4_stream"]) / v["decoupled"], 3)})
    doc["study"] = {
        "splitk_vs_dp": {"min": min(r["speedup"]["splitk_vs_dp"] for r in knn),
                         "max": max(r["speedup"]["splitk_vs_dp"] for r in knn),
                         "best": [{"m": r["m"], "k": r["k"], "n": r["n"], "split_k": 2,
                                   "speedup": r["speedup"]["splitk_vs_dp"]} for r in sk[:5]]},
        "w4a16_vs_fp16": {"fused_max": max(r["speedup"]["fused_vs_dense"] for r in rs),
                          "decoupled_max": max(r["speedup"]["decoupled_vs_dense"] for r in rs)},
        "breakdown": breakdown,
        "conclusion": "fake data: the decoupled round trip, not the dequantization math, dominates"}
    return doc


def peers_file(bench):
    out = []
    for r in bench["results"]:
        if r["m"] not in (1, 16) or r["layer"] not in ("q_proj", "gate_proj / up_proj"):
            continue
        w = r["variants"]["fused"]["median_ms"]
        for peer, computes, cls, factor in (("llama.cpp Q4_0", "int4 g32 (own format)", "w4a8", 1.3),
                                            ("torch bf16", "dense bf16 matmul", "a16", r["speedup"]["fused_vs_dense"])):
            ms = noisy(w * factor)
            out.append({"peer": peer, "computes": computes, "class": cls, "m": r["m"], "k": r["k"], "n": r["n"],
                        "median_ms": round(ms, 5), "max_rel_err": 3e-3, "w4a16_ms": w,
                        "ratio_vs_w4a16": round(ms / w, 3)})
    return {"schema": "w4a16-peers/1", "threads": THREADS, "results": out}


def write_all(outdir):
    os.makedirs(outdir, exist_ok=True)
    bench = main_run()
    docs = {"bench.json": bench, "study.json": study_run(), "peers.json": peers_file(bench)}
    for name, doc in docs.items():
        with open(os.path.join(outdir, name), "w") as f:
            json.dump(doc, f, indent=1)
    return {name: os.path.join(outdir, name) for name in docs}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write_all(sys.argv[1])
