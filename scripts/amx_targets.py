#!/usr/bin/env python3
"""Issue 18's targets from what scripts/amx-check.sh left in OUTDIR, as markdown tables.

    scripts/amx_targets.py OUTDIR        (prints the tables; also writes OUTDIR/targets.md)

Reads OUTDIR/bench-amx.json and OUTDIR/bench-avx512bf16.json (`w4a16 bench --json`, the same shapes
under W4A16_ISA=amx and =avx512bf16; docs/bench-json.md) and, when present, OUTDIR/peers/peers.json
(bench/peers/run.sh, whose w4a16 column is bench-amx.json). Every figure comes from those files;
this script only divides. "w4a16" in A-C is what gemm() runs for the shape: the bench variant of
the strategy the planner chooses (`build/w4a16 plan M K N --threads T` under W4A16_ISA=amx with
OUTDIR's calibration.json and the bench's threads; `fused` where that cannot be asked). A target is "met" or "missed by x%"; a figure a file lacks is "n/a" with
the reason. The targets (issue 18, 2 threads, one run):

  A. w4a16 vs torch bf16 (AMX inside): >= 3x at M = 16, >= 2x at 64 and 128, >= 1.3x at 256
     (4096 x 14336 and 4096 x 4096); and >= oneDNN s4 x bf16 everywhere.
  B. decode M = 1-4: >= 1.2x the AVX-512 path, >= llama.cpp Q4_0, within 1.3x of the memory roofline.
  C. every M of the sweep: <= 1.5x max(memory roofline, tile roofline + dequantization time), the
     tile roofline 2 * ceil(M/16) * 16 * K * N at the bf16_tile peak, the dequantization K * N weights
     at the measured tile_dequant_gweights (docs/model.md).
  D. the dense bf16 AMX entry within 1.2x of torch / oneDNN dense bf16.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

SPEEDUP_VS_TORCH = {16: 3.0, 64: 2.0, 128: 2.0, 256: 1.3}
DECODE_VS_AVX512, DECODE_VS_ROOFLINE, SWEEP_BOUND, DENSE_VS_PEERS = 1.2, 1.3, 1.5, 1.2


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def by_shape(bench) -> dict:
    return {(r["m"], r["k"], r["n"]): r["variants"] for r in (bench or {}).get("results", [])}


def at_threads(rates: dict, threads: int) -> float:
    """The rate for `threads` from a {"1": x, "2": y} map: exact, else the largest count below."""
    best = 0.0
    for t, v in sorted((int(t), float(v)) for t, v in (rates or {}).items()):
        if t <= threads:
            best = v
    return best


def verdict(ok: bool, by: float) -> str:
    return "met" if ok else f"missed by {by:.0%}"


def peer_ms(peers, peer: str, shape) -> tuple[float | None, str]:
    for r in (peers or {}).get("results", []):
        if r["peer"] == peer and (r["m"], r["k"], r["n"]) == shape:
            if r.get("status") == "ok" and r.get("verified", True):
                return r["median_ms"], ""
            return None, r.get("error", r.get("status", "?"))
    return None, "not run"


def planner_choices(out: Path, shapes, threads: int) -> dict:
    """shape -> the bench variant ("fused", "decoupled", "dense") of the planner's choice for it."""
    cli = Path(__file__).resolve().parent.parent / "build" / "w4a16"
    env = dict(os.environ, W4A16_ISA="amx")
    if (out / "calibration.json").exists():
        env["W4A16_CALIBRATION"] = str(out / "calibration.json")
    chosen = {}
    for m, k, n in shapes:
        strategy = "fused"
        if cli.exists():
            run = subprocess.run([str(cli), "plan", str(m), str(k), str(n), "--threads", str(threads)], env=env,
                                 capture_output=True, text=True)
            for line in run.stdout.splitlines():
                if line.startswith("choice: "):
                    strategy = line.split()[1]
        chosen[(m, k, n)] = strategy if strategy in ("fused", "decoupled", "dense") else "fused"
    return chosen


def pick(variants: dict, strategy: str) -> tuple[dict, str]:
    return (variants[strategy], strategy) if strategy in variants else (variants["fused"], "fused")


def ms(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def target_a(amx, peers, chosen) -> str:
    rows = []
    for (m, k, n), v in sorted(amx.items()):
        if m not in SPEEDUP_VS_TORCH or k != 4096 or n not in (4096, 14336):
            continue
        f, strategy = pick(v, chosen[(m, k, n)])
        fused = f["median_ms"]
        torch, why_t = peer_ms(peers, "torch-bf16", (m, k, n))
        s4, why_s = peer_ms(peers, "onednn-s4-bf16", (m, k, n))
        want = SPEEDUP_VS_TORCH[m]
        vs_torch = f"{torch / fused:.2f}x ({verdict(torch / fused >= want, 1 - torch / fused / want)})" if torch \
            else f"n/a ({why_t})"
        vs_s4 = f"{s4 / fused:.2f}x ({verdict(s4 >= fused, 1 - s4 / fused)})" if s4 else f"n/a ({why_s})"
        rows.append([f"{m}x{k}x{n}", f"{ms(fused)} ({strategy})", ms(torch), f">= {want}x", vs_torch, ms(s4), vs_s4])
    return table(["M×K×N", "w4a16 ms (planner's strategy)", "torch bf16 ms", "target", "speed-up vs torch",
                  "oneDNN s4×bf16 ms", "speed-up vs oneDNN s4"], rows)


def target_b(amx, avx, peers, chosen) -> str:
    rows = []
    for (m, k, n), v in sorted(amx.items()):
        if m > 4:
            continue
        f, _ = pick(v, chosen[(m, k, n)])
        base = avx.get((m, k, n), {}).get("fused", {}).get("median_ms")
        llama, why_l = peer_ms(peers, "llamacpp-q4_0-w4a8", (m, k, n))
        vs_avx = f"{base / f['median_ms']:.2f}x ({verdict(base / f['median_ms'] >= DECODE_VS_AVX512, 1 - base / f['median_ms'] / DECODE_VS_AVX512)})" \
            if base else "n/a (no avx512bf16 run)"
        vs_llama = f"{llama / f['median_ms']:.2f}x ({verdict(llama >= f['median_ms'], 1 - llama / f['median_ms'])})" \
            if llama else f"n/a ({why_l})"
        roof = f.get("vs_roofline") or 0
        vs_roof = f"{roof:.2f}x ({verdict(roof <= DECODE_VS_ROOFLINE, roof / DECODE_VS_ROOFLINE - 1)})" if roof else "n/a"
        rows.append([f"{m}x{k}x{n}", ms(f["median_ms"]), ms(base), vs_avx, ms(llama), vs_llama, vs_roof,
                     f["plan"].split(" ")[0] + " " + next((w for w in f["plan"].split() if "__" in w), "")])
    return table(["M×K×N", "amx ms", "avx512bf16 ms", "vs AVX-512 (>= 1.2x)", "llama.cpp Q4_0 ms",
                  "vs llama.cpp (>= 1x)", "over memory roofline (<= 1.3x)", "plan"], rows)


def target_c(amx, machine, chosen) -> str:
    peak, rate = machine.get("peak_gflops", {}).get("bf16_tile"), machine.get("tile_dequant_gweights")
    rows = []
    for (m, k, n), v in sorted(amx.items()):
        if n != 14336:
            continue
        f, strategy = pick(v, chosen[(m, k, n)])
        threads = f["threads"]
        read = at_threads(machine.get("read_gbps", {}), min(threads, 2))
        memory = f["weight_bytes"] / (read * 1e6) if read else 0.0
        if peak and rate:
            tile = 2.0 * math.ceil(m / 16) * 16 * k * n / (at_threads(peak, threads) * 1e6)
            dequant = k * n / (at_threads(rate, threads) * 1e6)
            bound = max(memory, tile + dequant)
            ratio = f["median_ms"] / bound
            rows.append([str(m), f"{ms(f['median_ms'])} ({strategy})", ms(memory), ms(tile), ms(dequant), ms(bound),
                         f"{ratio:.2f}x ({verdict(ratio <= SWEEP_BOUND, ratio / SWEEP_BOUND - 1)})"])
        else:
            rows.append([str(m), f"{ms(f['median_ms'])} ({strategy})", ms(memory), "n/a", "n/a", ms(memory),
                         "n/a (no bf16_tile peak / tile_dequant_gweights: AMX not offered)"])
    return table(["M (×4096×14336)", "w4a16 ms (strategy)", "memory ms", "tile ms", "dequant ms", "bound ms",
                  "over the bound (<= 1.5x)"], rows)


def target_d(amx, peers) -> str:
    rows = []
    for (m, k, n), v in sorted(amx.items()):
        if m not in SPEEDUP_VS_TORCH or k != 4096:
            continue
        d = v["dense"]
        torch, _ = peer_ms(peers, "torch-bf16", (m, k, n))
        onednn, _ = peer_ms(peers, "onednn-dense-bf16", (m, k, n))
        best = min([t for t in (torch, onednn) if t] or [0])
        ratio = d["median_ms"] / best if best else None
        rows.append([f"{m}x{k}x{n}", ms(d["median_ms"]), ms(torch), ms(onednn),
                     f"{ratio:.2f}x ({verdict(ratio <= DENSE_VS_PEERS, ratio / DENSE_VS_PEERS - 1)})" if ratio else "n/a",
                     next((w for w in d["plan"].split() if "__" in w), d["plan"])])
    return table(["M×K×N", "w4a16 dense (amx) ms", "torch bf16 ms", "oneDNN dense bf16 ms",
                  "over the faster peer (<= 1.2x)", "kernel"], rows)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[1])
    amx_doc, avx_doc = load(out / "bench-amx.json"), load(out / "bench-avx512bf16.json")
    if amx_doc is None:
        print(f"amx_targets: {out / 'bench-amx.json'} is missing", file=sys.stderr)
        return 1
    peers = load(out / "peers" / "peers.json")
    amx, avx = by_shape(amx_doc), by_shape(avx_doc)
    chosen = planner_choices(out, amx.keys(), int(amx_doc["machine"].get("threads", 0)))
    m = amx_doc["machine"]
    text = "\n\n".join([
        f"Issue 18 targets: {m.get('cpu')} ({m.get('isa')} in force), {amx_doc.get('date')}; "
        f"peers: {'peers/peers.json of ' + peers['date'] if peers else 'not run'}"
        + (f"; llama.cpp build: {peers['llama_cpp_build'].get('label', peers['llama_cpp_build'])}"
           if peers and peers.get("llama_cpp_build") else ""),
        "A. w4a16 (the planner's strategy) vs torch bf16 and oneDNN s4 × bf16\n\n" + target_a(amx, peers, chosen),
        "B. Decode (M = 1-4)\n\n" + target_b(amx, avx, peers, chosen),
        "C. Every M vs max(memory roofline, tile roofline + dequantization)\n\n" + target_c(amx, m, chosen),
        "D. The dense bf16 baseline vs torch / oneDNN\n\n" + target_d(amx, peers),
    ]) + "\n"
    (out / "targets.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
