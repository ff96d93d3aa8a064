"""What the PyTorch layers cost on top of the kernel at decode (M = 1): the median time per call of

    ptr     w4a16._ext._gemm_ptr(addresses...)   into a preallocated out: the C++ gemm call from
                                                  Python, the floor (the op's own entry)
    numpy   w4a16.gemm(x, packed, out, threads=1) on numpy arrays (the Python API; buffer protocol)
    dlpack  w4a16.gemm(x, packed, out, threads=1) on torch tensors (through DLPack, ~2 us a tensor)
    op      torch.ops.w4a16.linear(x, handle)     (the dispatcher, the Python autograd kernel that
                                                  register_autograd adds, the CPU kernel: C++ where
                                                  w4a16._torch_ops was built, else Python)
    op-inf  the same under torch.inference_mode() (no autograd kernel)
    module  w4a16.torch.Linear(x)                 (nn.Module.__call__; in plain eager w4a16::_linear,
                                                  the op without autograd, or the Python kernel)
    dense   torch.nn.functional.linear(x, W_bf16) (torch's own bf16 matmul of the same shape, for scale)

for the shapes of SmolLM2-135M (576x576, 1536x576) and a Llama-3-8B-sized 4096x4096, on one thread
(torch.set_num_threads(1) and w4a16 threads=1). Outputs are checked bit-equal across the four
w4a16 paths before anything is timed. The weights stay in cache on purpose: the subject is the
per-call overhead, not the kernel's bandwidth (bench/kernels_bench.cpp measures that). The same
calls from C++ and C, and the kernels' own time, are in build/bench/w4a16_bench_call_overhead.

    build/py-venv/bin/python bench/torch_overhead.py [--calls 2000] [--rounds 15]

Each round times `calls` back-to-back calls of every variant in turn (interleaved, so a noisy
neighbour hits all of them alike); the table gives the median over rounds of the per-call time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import ml_dtypes
import numpy as np
import torch

import w4a16
import w4a16.torch as wt

SHAPES = [(576, 576), (1536, 576), (4096, 4096)]  # (N, K)


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def variants(n: int, k: int, rng: np.random.Generator):
    w = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32))
    lin = wt.Linear(w4a16.quantize(w, group_size=128, zero="sym"), threads=1)
    packed, handle = lin.packed, lin.handle
    x = torch.from_numpy(rng.standard_normal((1, k)).astype(np.float32)).bfloat16()
    out = torch.empty(1, n, dtype=torch.bfloat16)
    x_np = x.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    out_np = np.empty((1, n), dtype=ml_dtypes.bfloat16)
    w_dense = w.bfloat16()
    op = torch.ops.w4a16.linear.default
    gemm_ptr = w4a16._ext._gemm_ptr
    x_ptr, out_ptr = x.data_ptr(), out.data_ptr()
    calls = {
        "ptr": lambda: gemm_ptr(x_ptr, True, 1, k, packed, out_ptr, False, "auto", "auto", 0, 1),
        "numpy": lambda: w4a16.gemm(x_np, packed, out_np, threads=1),
        "dlpack": lambda: w4a16.gemm(x, packed, out, threads=1),
        "op": lambda: op(x, handle),
        "op-inf": lambda: op(x, handle),  # timed inside inference_mode (main)
        "module": lambda: lin(x),
        "dense": lambda: torch.nn.functional.linear(x, w_dense),
    }
    # Verify before timing: the w4a16 paths give the same bits.
    calls["ptr"]()
    reference = out.clone()
    out.fill_(float("nan"))  # poisoned: a path that writes nothing fails the comparison
    out_np[...] = np.nan
    calls["numpy"]()
    if not np.array_equal(out_np.view(np.int16), reference.view(torch.int16).numpy()):
        raise SystemExit(f"numpy differs from the ptr call for N={n} K={k}")
    for name in ("dlpack", "op", "op-inf", "module"):
        if not torch.equal(calls[name]().view(torch.int16), reference.view(torch.int16)):
            raise SystemExit(f"{name} differs from the ptr call for N={n} K={k}")
    return calls


def time_per_call_us(fn, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per variant per round")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    print(f"# {cpu_name()}, w4a16 ISA {w4a16.active_isa()}, torch {torch.__version__}, 1 thread, M = 1, bf16")
    print(f"# {wt.KERNEL_NOTE}")
    print(f"# median over {args.rounds} rounds of {args.calls} calls; microseconds per call")
    names = ["ptr", "numpy", "dlpack", "op", "op-inf", "module", "dense"]
    over_names = ("numpy", "op", "op-inf", "module")
    print("| N x K | " + " | ".join(names) + " | " + " | ".join(f"{name} - ptr" for name in over_names) + " |")
    print("|---|" + "---:|" * (len(names) + len(over_names)))
    for n, k in SHAPES:
        calls = variants(n, k, rng)
        for fn in calls.values():  # warm up: plans cached, pages touched
            for _ in range(50):
                fn()
        samples = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                with torch.inference_mode(name == "op-inf"):
                    samples[name].append(time_per_call_us(calls[name], args.calls))
        med = {name: statistics.median(samples[name]) for name in names}
        cells = " | ".join(f"{med[name]:.2f}" for name in names)
        over = " | ".join(f"{med[name] - med['ptr']:+.2f}" for name in over_names)
        print(f"| {n} x {k} | {cells} | {over} |")


if __name__ == "__main__":
    main()
