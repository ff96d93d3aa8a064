#!/usr/bin/env python3
"""Peers of w4a16 side by side: same shapes, same thread count, same quantized weights.

`run.sh` is the entry point (it makes the venv and builds the oneDNN harness). This file has two
roles:

  peers.py main   ...  generate the data, run every peer in its own process, check each output
                       against a float64 product of the same dequantized weights, merge w4a16's
                       times, write peers.json and print the table;
  peers.py worker ...  one Python peer (onnxruntime, numpy, torch, llama.cpp) on one shape,
                       started by `main` with the thread variables already set.

Every timed sample is one sweep over R independent copies of the weight (R large enough that
the copies exceed 4x the L3), divided by R; see README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GROUP = 128
SCHEMA = "w4a16-peers/1"

# name -> (what it computes, class, relative-error tolerance)
#   class "a16": 16-bit activations (the like-for-like peers); "fp32": fp32 activations;
#   "w4a8": activations quantized to 8 bits inside the kernel -- not A16.
PEERS = {
    "onednn-s4-bf16": ("bf16 x int4 (s4, grouped bf16 scales g=128, fpmath bf16), fp32 accumulate, bf16 out", "a16", 1e-2),
    "onednn-u4zp-bf16": ("bf16 x uint4 with grouped int zero points and bf16 scales (g=128, fpmath bf16), fp32 accumulate, bf16 out", "a16", 1e-2),
    "onednn-dense-bf16": ("bf16 x bf16 dense (the same W dequantized, rounded to bf16), fp32 accumulate, bf16 out", "a16", 1e-2),
    "ort-nbits-sym-fp32": ("fp32 x int4 MatMulNBits (block 128, no zero point = 8), accuracy_level 0: fp32-compute, fp32 out", "fp32", 1e-2),
    "ort-nbits-zp-fp32": ("fp32 x int4 MatMulNBits (block 128, 4-bit zero points), accuracy_level 0: fp32-compute, fp32 out", "fp32", 1e-2),
    "ort-nbits-sym-int8act": ("MatMulNBits (block 128, sym) accuracy_level 4: int8-activation (x quantized to int8 per block) -- W4A8, not A16", "w4a8", 5e-2),
    "ort-nbits-zp-int8act": ("MatMulNBits (block 128, zero points) accuracy_level 4: int8-activation (x quantized to int8 per block) -- W4A8, not A16", "w4a8", 5e-2),
    "numpy-fp32": ("fp32 x fp32 dense (numpy matmul -> OpenBLAS sgemv/sgemm, 4 B per weight): sanity line", "fp32", 1e-2),
    "torch-bf16": ("torch F.linear bf16 x bf16 dense (W rounded to bf16)", "a16", 1e-2),
    "torch-fp16": ("torch F.linear fp16 x fp16 dense (W rounded to fp16)", "a16", 1e-2),
    "torch-int4pack-bf16": ("torch._weight_int4pack_mm_for_cpu: bf16 x int4 (g=128, bf16 scale+zero), sym", "a16", 1e-2),
    "llamacpp-q4_0-w4a8": ("llama.cpp (ggml via llama-cpp-python) Q4_0 weights (the same values, scale repeated per 32) x Q8_0 activations -- W4A8: activations quantized to int8", "w4a8", 5e-2),
}
CORE_PEERS = ["onednn-s4-bf16", "onednn-u4zp-bf16", "onednn-dense-bf16", "ort-nbits-sym-fp32", "ort-nbits-zp-fp32",
              "ort-nbits-sym-int8act", "ort-nbits-zp-int8act", "numpy-fp32"]
TORCH_PEERS = ["torch-bf16", "torch-fp16", "torch-int4pack-bf16"]
LLAMA_PEERS = ["llamacpp-q4_0-w4a8"]

DEFAULT_SHAPES = ";".join(f"{m},{k},{n}" for m in (1, 16, 128)
                          for k, n in ((4096, 4096), (4096, 1024), (4096, 14336), (14336, 4096)))


# ----------------------------------------------------------------------------------------------
# data: one quantized weight per (K, N), one activation per (M, K)
# ----------------------------------------------------------------------------------------------

def bf16_bits(a: np.ndarray) -> np.ndarray:
    """fp32 -> raw bf16 bits, round to nearest even (no NaNs here)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_to_f32(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def round_bf16(a: np.ndarray) -> np.ndarray:
    return bf16_to_f32(bf16_bits(a))


def weight_dir(out: Path, k: int, n: int) -> Path:
    return out / "data" / f"K{k}_N{n}"


def make_weight(out: Path, k: int, n: int, seed: int) -> Path:
    """codes 0..15, bf16 scales in [1/256, 1/32) (exact in fp16 too), int zeros 0..15; the dense
    bf16 weight is round_bf16((q - 8) * s)."""
    d = weight_dir(out, k, n)
    if (d / "done").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    g = k // GROUP
    codes = rng.integers(0, 16, size=(n, k), dtype=np.uint8)
    scales = bf16_bits(rng.uniform(1 / 256, 1 / 32, size=(n, g)).astype(np.float32))
    zeros = rng.integers(0, 16, size=(n, g), dtype=np.uint8)
    codes.tofile(d / "codes.u8")
    scales.tofile(d / "scales.bf16")
    zeros.tofile(d / "zeros.u8")
    w = dequant(codes, scales, None)
    bf16_bits(w).tofile(d / "dense.bf16")
    (d / "done").write_text("ok\n")
    return d


def make_x(out: Path, m: int, k: int, seed: int) -> Path:
    """bf16 values with |x| in [1/16, 1): exact in bf16, fp16 and fp32, so every peer sees the same x."""
    p = out / "data" / f"x_M{m}_K{k}.bf16"
    if not p.exists():
        rng = np.random.default_rng(seed)
        mag = rng.uniform(1 / 16, 1, size=(m, k)).astype(np.float32)
        sign = np.where(rng.integers(0, 2, size=(m, k)) == 1, -1.0, 1.0).astype(np.float32)
        bf16_bits(mag * sign).tofile(p)
    return p


def load_weight(d: Path, k: int, n: int):
    g = k // GROUP
    codes = np.fromfile(d / "codes.u8", dtype=np.uint8).reshape(n, k)
    scales = np.fromfile(d / "scales.bf16", dtype=np.uint16).reshape(n, g)
    zeros = np.fromfile(d / "zeros.u8", dtype=np.uint8).reshape(n, g)
    return codes, scales, zeros


def load_x(p: Path, m: int, k: int) -> np.ndarray:
    return bf16_to_f32(np.fromfile(p, dtype=np.uint16).reshape(m, k))


def dequant(codes: np.ndarray, scales_bits: np.ndarray, zeros: np.ndarray | None) -> np.ndarray:
    """(q - z) * s in fp32 (exact: |q - z| <= 15 and s has an 8-bit mantissa); z = 8 when None."""
    n, k = codes.shape
    s = bf16_to_f32(scales_bits)
    q = codes.reshape(n, k // GROUP, GROUP).astype(np.float32)
    z = np.float32(8.0) if zeros is None else zeros.astype(np.float32)[:, :, None]
    return ((q - z) * s[:, :, None]).reshape(n, k)


def peer_weight_variant(peer: str) -> str:
    """Which weight a peer multiplies: 'zp' (asym, the stored zeros) or 'sym' (z = 8)."""
    return "zp" if ("-zp-" in peer or "u4zp" in peer) else "sym"


# ----------------------------------------------------------------------------------------------
# timing helpers shared by the Python workers
# ----------------------------------------------------------------------------------------------

def copies_for(bytes_per_copy: float, rotate_bytes: float) -> int:
    return max(1, math.ceil(rotate_bytes / bytes_per_copy))


def time_sweeps(sweep, copies: int, min_time: float, min_samples: int = 5, max_samples: int = 200):
    sweep()  # warm-up: every copy once
    samples, total = [], 0.0
    while (total < min_time or len(samples) < min_samples) and len(samples) < max_samples:
        t0 = time.perf_counter()
        sweep()
        dt = time.perf_counter() - t0
        total += dt
        samples.append(dt * 1e3 / copies)
    return samples


# ----------------------------------------------------------------------------------------------
# workers (one peer, one shape, own process)
# ----------------------------------------------------------------------------------------------

def worker_ort(a, codes, scales_bits, zeros, x):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m, k, n = a.m, a.k, a.n
    g = k // GROUP
    with_zp = "-zp-" in a.peer
    level = 4 if a.peer.endswith("int8act") else 0
    # B: [N, blocks, 64] uint8, two codes per byte along K, the lower k in the low nibble.
    b = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8).reshape(n, g, GROUP // 2)
    s = bf16_to_f32(scales_bits).astype(np.float32).reshape(n * g)
    zp = None
    if with_zp:
        zz = zeros if g % 2 == 0 else np.concatenate([zeros, np.zeros((n, 1), np.uint8)], axis=1)
        zp = (zz[:, 0::2] | (zz[:, 1::2] << 4)).astype(np.uint8).reshape(-1)
    per_copy = b.nbytes + s.nbytes + (zp.nbytes if zp is not None else 0)
    copies = copies_for(per_copy, a.rotate_bytes)

    # The copies must differ: ORT shares identical prepacked weights (measured: 64 identical copies of
    # a 4096x1024 layer ran at 0.034 ms, 64 distinct ones at 0.059 ms). Copy i is W with its output
    # rows rotated by i, so its output is y0 rotated by i columns (checked below).
    inits, nodes, outs = [], [], []
    for i in range(copies):
        ins = ["x", f"B{i}", f"S{i}"]
        bi = np.roll(b, i, axis=0)
        si = np.roll(s.reshape(n, g), i, axis=0).reshape(-1)
        inits.append(helper.make_tensor(f"B{i}", TensorProto.UINT8, bi.shape, bi.tobytes(), raw=True))
        inits.append(helper.make_tensor(f"S{i}", TensorProto.FLOAT, si.shape, si.tobytes(), raw=True))
        if zp is not None:
            zi = np.roll(zp.reshape(n, -1), i, axis=0).reshape(-1)
            inits.append(helper.make_tensor(f"Z{i}", TensorProto.UINT8, zi.shape, zi.tobytes(), raw=True))
            ins.append(f"Z{i}")
        nodes.append(helper.make_node("MatMulNBits", ins, [f"y{i}"], domain="com.microsoft", K=k, N=n, bits=4,
                                      block_size=GROUP, accuracy_level=level))
        outs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [m, n]))
    graph = helper.make_graph(nodes, "peers", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])], outs,
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Belt and braces: no optimizer may fold copies into one either.
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["ConstantSharing", "CommonSubexpressionElimination"])
    del model, graph, inits
    ys = [np.empty((m, n), np.float32) for _ in range(copies)]
    io = sess.io_binding()
    xo = np.ascontiguousarray(x, dtype=np.float32)
    io.bind_cpu_input("x", xo)
    for i, y in enumerate(ys):
        io.bind_output(f"y{i}", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)

    def sweep():
        sess.run_with_iobinding(io)

    sweep()
    y0 = ys[0].copy()
    spread = float(np.max(np.abs(ys[-1] - np.roll(y0, copies - 1, axis=1))))
    samples = time_sweeps(sweep, copies, a.min_time)
    info = {"copies": copies, "weight_bytes": per_copy, "ort_version": ort.__version__, "accuracy_level": level,
            "copies_agree_max_abs": spread}
    if spread > 1e-3 * float(np.max(np.abs(y0))):
        raise RuntimeError(f"copy {copies - 1} disagrees with copy 0 by {spread}")
    return y0, samples, info


def worker_numpy(a, codes, scales_bits, zeros, x):
    w = dequant(codes, scales_bits, None)
    per_copy = w.nbytes
    copies = copies_for(per_copy, a.rotate_bytes)
    ws = [w] + [w.copy() for _ in range(copies - 1)]
    xs = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty((a.m, a.n), np.float32)

    def sweep():
        for wi in ws:
            np.matmul(xs, wi.T, out=y)

    np.matmul(xs, ws[0].T, out=y)
    y0 = y.copy()
    samples = time_sweeps(sweep, copies, a.min_time)
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]["name"] + " " + cfg["Build Dependencies"]["blas"]["version"]
    except Exception:  # noqa: BLE001
        pass
    return y0, samples, {"copies": copies, "weight_bytes": per_copy, "numpy_version": np.__version__, "blas": blas}


def worker_torch(a, codes, scales_bits, zeros, x):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    m, k, n = a.m, a.k, a.n
    g = k // GROUP
    w = torch.from_numpy(dequant(codes, scales_bits, None))
    xt = torch.from_numpy(np.ascontiguousarray(x))
    info = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}
    if a.peer in ("torch-bf16", "torch-fp16"):
        dtp = torch.bfloat16 if a.peer == "torch-bf16" else torch.float16
        wd = w.to(dtp).contiguous()
        per_copy = wd.numel() * 2
        copies = copies_for(per_copy, a.rotate_bytes)
        ws = [wd] + [wd.clone() for _ in range(copies - 1)]
        xd = xt.to(dtp)
        y = torch.empty((m, n), dtype=dtp)

        def call(wi):
            torch.matmul(xd, wi.t(), out=y)
    else:
        # int4pack: dequant = (q - 8) * scale + zero with [K/g, N, 2] bf16 (scale, zero); sym: zero = 0.
        q = torch.from_numpy(codes.astype(np.int32))
        packed = torch._convert_weight_to_int4pack_for_cpu(q, 2)
        sz = torch.empty((g, n, 2), dtype=torch.bfloat16)
        sz[:, :, 0] = torch.from_numpy(bf16_to_f32(scales_bits).T.copy()).to(torch.bfloat16)
        sz[:, :, 1] = 0
        per_copy = packed.numel() * packed.element_size() + sz.numel() * 2
        copies = copies_for(per_copy, a.rotate_bytes)
        ws = [(packed, sz)] + [(packed.clone(), sz.clone()) for _ in range(copies - 1)]
        xd = xt.to(torch.bfloat16)
        y = None

        def call(wi):
            return torch._weight_int4pack_mm_for_cpu(xd, wi[0], GROUP, wi[1])

    with torch.inference_mode():
        out = call(ws[0])
        y0 = (y if out is None else out).float().numpy().copy()

        def sweep():
            for wi in ws:
                call(wi)

        samples = time_sweeps(sweep, copies, a.min_time)
    info.update({"copies": copies, "weight_bytes": per_copy})
    return y0, samples, info


def worker_llama(a, codes, scales_bits, zeros, x):
    from ggml_q4 import run_q4_0  # bench/peers/ggml_q4.py (ctypes over llama-cpp-python's ggml)

    return run_q4_0(a, codes, bf16_to_f32(scales_bits), x, copies_for, time_sweeps)


def worker_main(a) -> int:
    d = Path(a.data)
    codes, scales_bits, zeros = load_weight(d, a.k, a.n)
    x = load_x(Path(a.x), a.m, a.k)
    fn = {"ort": worker_ort, "numpy": worker_numpy, "torch": worker_torch, "llamacpp": worker_llama}[a.peer.split("-")[0]]
    try:
        y0, samples, info = fn(a, codes, scales_bits, zeros, x)
    except Exception as e:  # noqa: BLE001 -- reported as the row's status
        print(json.dumps({"status": "error", "error": f"{type(e).__name__}: {e}"}))
        return 1
    np.ascontiguousarray(y0, dtype=np.float32).tofile(a.y_out)
    print(json.dumps({"status": "ok", "samples_ms": samples, **info}))
    return 0


# ----------------------------------------------------------------------------------------------
# main: orchestrate, check, merge, report
# ----------------------------------------------------------------------------------------------

def parse_shapes(s: str):
    shapes = []
    for part in s.replace(" ", "").split(";"):
        if not part:
            continue
        m, k, n = (int(v) for v in part.split(","))
        if k % GROUP:
            raise SystemExit(f"peers: K={k} is not a multiple of {GROUP}")
        shapes.append((m, k, n))
    return shapes


def l3_bytes() -> int:
    try:
        for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
            if (idx / "level").read_text().strip() == "3":
                s = (idx / "size").read_text().strip()
                mult = {"K": 1024, "M": 1024 ** 2}.get(s[-1], 1)
                return int(s.rstrip("KM")) * mult
    except OSError:
        pass
    return 32 * 1024 ** 2


def machine_info(threads: int) -> dict:
    cpu = "?"
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "?":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = "avx512bf16" if "avx512_bf16" in flags else "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "?"
    return {"cpu": cpu, "isa": isa, "amx": "amx_bf16" in flags, "cpus": os.cpu_count(), "threads": threads,
            "l3_bytes": l3_bytes(),
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_start": list(os.getloadavg())}


def pct(v, q):
    s = sorted(v)
    if not s:
        return None
    i = (len(s) - 1) * q
    lo, hi = math.floor(i), math.ceil(i)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


def check(y: np.ndarray, x: np.ndarray, w_cols: np.ndarray, rows, cols) -> float:
    """max |y - ref| / max |ref| over the sample (rows x cols); ref is a float64 product of x and the
    same dequantized weights (w_cols = the fp32 rows of W for the sampled output columns)."""
    ref = x[rows].astype(np.float64) @ w_cols.astype(np.float64).T
    got = y[np.ix_(rows, cols)].astype(np.float64)
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[v] = str(threads)
    return env


def pin_prefix(threads: int) -> list:
    """Below the machine's CPU count, also pin every peer (and w4a16) to the first T CPUs."""
    n = os.cpu_count() or threads
    if threads < n and shutil.which("taskset"):
        return ["taskset", "-c", f"0-{threads - 1}"]
    return []


def cpu_busy_s() -> float:
    """CPU-seconds all CPUs spent busy since boot (/proc/stat: everything but idle and iowait)."""
    f = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(f[:8]) - f[3] - f[4]) / hz


def children_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(max_wait: float, limit: float = 0.1) -> float:
    """Waits (at most max_wait s) until the machine's busy CPUs over 2 s fall below `limit`; returns the last reading."""
    t_end = time.time() + max_wait
    while True:
        b0, t0 = cpu_busy_s(), time.time()
        time.sleep(2)
        load = (cpu_busy_s() - b0) / (time.time() - t0)
        if load < limit or time.time() >= t_end:
            return load


def run_peer_measured(a, peer, m, k, n, wdir, xpath, ypath: Path, rotate_bytes) -> dict:
    """run_peer, plus `other_cpu`: the average number of CPUs that processes other than the peer kept
    busy while it ran. Above --max-other-cpu the peer is re-run (after waiting for a quiet
    machine), up to --retries times; the least disturbed successful run is kept (its output is
    moved to ypath)."""
    runs = []
    for attempt in range(a.retries + 1):
        yp = ypath.with_name(f"{ypath.name}.{attempt}")
        b0, c0, t0 = cpu_busy_s(), children_cpu_s(), time.time()
        r = run_peer(a, peer, m, k, n, wdir, xpath, yp, rotate_bytes)
        wall = max(time.time() - t0, 1e-6)
        r["other_cpu"] = max(0.0, ((cpu_busy_s() - b0) - (children_cpu_s() - c0)) / wall)
        runs.append((r, yp))
        if r.get("status") != "ok" or r["other_cpu"] <= a.max_other_cpu or attempt == a.retries:
            break
        print(f"    other processes kept {r['other_cpu']:.2f} CPUs busy: waiting for a quiet machine, then again",
              file=sys.stderr, flush=True)
        wait_quiet(a.quiet_wait)
    best, yp = min(runs, key=lambda ry: (ry[0].get("status") != "ok", ry[0]["other_cpu"]))
    best["attempts"] = len(runs)
    if yp.exists():
        yp.replace(ypath)
    for _, other in runs:
        if other.exists():
            other.unlink()
    return best


def run_peer(a, peer, m, k, n, wdir, xpath, ypath, rotate_bytes) -> dict:
    common = ["--m", str(m), "--k", str(k), "--n", str(n), "--threads", str(a.threads),
              "--rotate-bytes", str(rotate_bytes), "--min-time", str(a.min_time)]
    if peer.startswith("onednn-"):
        variant = {"onednn-s4-bf16": "s4", "onednn-u4zp-bf16": "u4zp", "onednn-dense-bf16": "dense"}[peer]
        cmd = [a.harness, "--variant", variant, "--data", str(wdir), "--x", str(xpath), "--y-out", str(ypath)] + common
    else:
        cmd = [sys.executable, __file__, "worker", "--peer", peer, "--data", str(wdir), "--x", str(xpath),
               "--y-out", str(ypath)] + common
    env = thread_env(a.threads)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        p = subprocess.run(pin_prefix(a.threads) + cmd, capture_output=True, text=True, env=env, timeout=a.peer_timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {a.peer_timeout} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        # A peer killed by a signal (llama.cpp's AMX buffer code on AMX CPUs: SIGILL / SIGSEGV) says which.
        how = f"killed by {signal.Signals(-p.returncode).name}" if p.returncode < 0 else f"exit {p.returncode}"
        return {"status": "error", "error": f"{how}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def load_w4a16(path: Path) -> dict:
    """(m, k, n) -> {'fused': ms, 'dense': ms, ...} from a w4a16-bench/1 or /2 file (2 adds the
    roofline fields, which this reader does not need)."""
    doc = json.loads(path.read_text())
    if doc.get("schema") not in ("w4a16-bench/1", "w4a16-bench/2"):
        print(f"peers: warning: {path} has schema {doc.get('schema')!r}, expected 'w4a16-bench/1' or "
              "'w4a16-bench/2'", file=sys.stderr)
    table = {}
    for r in doc.get("results", []):
        key = (int(r["m"]), int(r["k"]), int(r["n"]))
        table[key] = {name: v for name, v in r.get("variants", {}).items() if isinstance(v, dict) and "median_ms" in v}
    return {"results": table, "config": doc.get("config", {}), "machine": doc.get("machine", {}),
            "command": doc.get("command"), "date": doc.get("date")}


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def print_table(doc: dict, have_w4a16: bool, note: str):
    res = doc["results"]
    head = ["M", "K", "N", "peer", "class", "median ms", "p10-p90 ms", "GB/s", "max rel err", "ok", "other CPU"]
    if have_w4a16:
        head += ["w4a16 ms", "peer/w4a16"]
    rows = []
    for r in res:
        t = r.get("median_ms")
        peer = r["peer"] + (f" ({r['build']})" if r.get("build") else "")
        row = [str(r["m"]), str(r["k"]), str(r["n"]), peer, r.get("class", ""),
               fmt_ms(t) if r["status"] == "ok" else r["status"],
               f"{fmt_ms(r.get('p10_ms'))}-{fmt_ms(r.get('p90_ms'))}" if t else "-",
               f"{r['gbps']:.1f}" if r.get("gbps") else "-",
               f"{r['max_rel_err']:.1e}" if r.get("max_rel_err") is not None else "-",
               "yes" if r.get("verified") else ("WRONG" if r.get("max_rel_err") is not None else "-"),
               (f"{r['other_cpu']:.2f}" + ("!" if r.get("contended") else "")) if r.get("other_cpu") is not None else "-"]
        if have_w4a16:
            row += [fmt_ms(r.get("w4a16_ms")),
                    f"{r['ratio_vs_w4a16']:.2f}x" if r.get("ratio_vs_w4a16") is not None else "-"]
        rows.append(row)
    widths = [max(len(h), *(len(x[i]) for x in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) if i not in (3, 4) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    print(line(head))
    print("  ".join("-" * w for w in widths))
    last = None
    for r, cells in zip(res, rows):
        key = (r["m"], r["k"], r["n"])
        if last is not None and key != last:
            print()
        last = key
        print(line(cells))
    if note:
        print("\n" + note)
    print("other CPU: CPUs kept busy by other processes while the peer ran ('!': above the limit even after retries)")
    errs = [r for r in res if r["status"] != "ok"]
    for r in errs:
        print(f"  {r['peer']} {r['m']}x{r['k']}x{r['n']}: {r['status']}: {r.get('error', '')}")


def main_cmd(a) -> int:
    out = Path(a.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    shapes = parse_shapes(a.shapes)
    peers = list(CORE_PEERS)
    if a.with_torch:
        peers += TORCH_PEERS
    if a.with_llama_cpp:
        peers += LLAMA_PEERS
    if a.only:
        want = set(a.only.split(","))
        peers = [p for p in peers if p in want]
    rotate_bytes = 4 * l3_bytes()
    machine = machine_info(a.threads)

    w4a16 = None
    note = ""
    if a.w4a16 and Path(a.w4a16).exists():
        w4a16 = load_w4a16(Path(a.w4a16))
        note = f"w4a16 times: {a.w4a16} (variant 'fused' = the automatic plan)"
    else:
        note = "no w4a16 bench JSON (" + (a.w4a16_note or "not given") + "): peer table without ratios"

    results = []
    llama_build = None
    if any(p in LLAMA_PEERS for p in peers):
        # Asked in a child: loading ggml here would keep its threads and buffers in this process.
        probe = subprocess.run([sys.executable, "-c", "import json, ggml_q4; print(json.dumps(ggml_q4.build_info()))"],
                               capture_output=True, text=True, cwd=str(Path(__file__).resolve().parent))
        try:
            llama_build = json.loads(probe.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            llama_build = {"error": " | ".join((probe.stderr or "no output").strip().splitlines()[-2:])}
        if "amx_backend" in llama_build:
            cpu_amx = machine.get("amx", False)
            llama_build["label"] = ("AMX backend on" if llama_build["amx_backend"] else
                                    "AMX backend off" if cpu_amx else "no AMX backend: the CPU has none")
    versions = {}
    from importlib.metadata import version
    for pkg in ("onednn", "onednn-devel", "onnxruntime", "onnx", "numpy", "torch", "llama_cpp_python"):
        try:
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 -- not installed
            pass
    doc = {"schema": SCHEMA, "command": a.command or " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "complete": False, "machine": machine, "threads": a.threads, "rotation_bytes": rotate_bytes,
           "min_time_s": a.min_time, "max_other_cpu": a.max_other_cpu,
           "versions": versions, "w4a16_source": (a.w4a16 if w4a16 is not None else None),
           "w4a16_machine": (w4a16["machine"] if w4a16 is not None else None), "llama_cpp_build": llama_build,
           "results": results}

    def write_doc(complete: bool):
        """peers.json after every row (complete: false until the end), so an interrupted run keeps its rows."""
        doc["complete"] = complete
        tmp = out / "peers.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(out / "peers.json")

    t_start = time.time()
    kn_seen = {}
    for m, k, n in shapes:
        if (k, n) not in kn_seen:
            kn_seen[(k, n)] = make_weight(out, k, n, seed=1000 + len(kn_seen))
        wdir = kn_seen[(k, n)]
        xpath = make_x(out, m, k, seed=7 * m + k)
        codes, scales_bits, zeros = load_weight(wdir, k, n)
        x = load_x(xpath, m, k)
        rng = np.random.default_rng(m * 31 + n)
        rows = np.unique(np.concatenate([[0, m - 1], rng.integers(0, m, size=min(m, 14))]))
        cols = np.unique(np.concatenate([[0, n - 1], rng.integers(0, n, size=min(n, 510))]))
        w_sym = dequant(codes[cols], scales_bits[cols], None)
        w_zp = dequant(codes[cols], scales_bits[cols], zeros[cols])
        del codes, scales_bits, zeros
        for peer in peers:
            computes, klass, tol = PEERS[peer]
            ypath = out / "data" / f"y_{peer}.f32"
            if ypath.exists():
                ypath.unlink()
            t0 = time.time()
            r = run_peer_measured(a, peer, m, k, n, wdir, xpath, ypath, rotate_bytes)
            row = {"peer": peer, "computes": computes, "class": klass, "m": m, "k": k, "n": n,
                   "status": r.get("status", "error"), "other_cpu": r.pop("other_cpu"), "attempts": r.pop("attempts")}
            if peer in LLAMA_PEERS and llama_build and "label" in llama_build:
                row["build"] = llama_build["label"]  # shown beside the peer's name in the table
            if row["other_cpu"] > a.max_other_cpu:
                row["contended"] = True
            if row["status"] == "ok":
                samples = r.pop("samples_ms")
                y = np.fromfile(ypath, dtype=np.float32).reshape(m, n)
                w_sample = w_zp if peer_weight_variant(peer) == "zp" else w_sym
                err = check(y, x, w_sample, rows, cols)
                med = statistics.median(samples)
                wb = r.get("weight_bytes")
                row.update({
                    "median_ms": med, "p10_ms": pct(samples, 0.10), "p90_ms": pct(samples, 0.90),
                    "samples": len(samples), "max_rel_err": err, "verified": err <= tol, "tolerance": tol,
                    "weight_bytes": wb, "gbps": (wb / (med * 1e-3) / 1e9) if wb else None,
                    "gflops": 2.0 * m * k * n / (med * 1e-3) / 1e9,
                })
                if err > tol:
                    row["note"] = f"WRONG: max_rel_err {err:.2e} > {tol:.0e}; the time is of a wrong result"
                row["detail"] = r
            else:
                row["error"] = r.get("error", "?")
            if w4a16 is not None:
                v = w4a16["results"].get((m, k, n), {})
                wf = v.get("fused", {}).get("median_ms")
                row["w4a16_ms"] = wf
                row["ratio_vs_w4a16"] = (row["median_ms"] / wf) if (wf and row.get("median_ms")) else None
            results.append(row)
            write_doc(False)
            status = f"{row['median_ms']:.4g} ms err {row['max_rel_err']:.1e}" if row["status"] == "ok" else row.get("error", "")
            print(f"[{time.time() - t_start:6.0f}s] {m}x{k}x{n} {peer}: {status} ({time.time() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
        # w4a16's own rows, side by side
        if w4a16 is not None:
            for vname, label in (("fused", "w4a16-fused"), ("dense", "w4a16-dense")):
                v = w4a16["results"].get((m, k, n), {}).get(vname)
                if not v:
                    continue
                act = w4a16["config"].get("act", "bf16")
                comp = (f"w4a16 {vname}: {act} x int4 (g={w4a16['config'].get('group_size', GROUP)}, "
                        f"{w4a16['config'].get('zero', 'sym')}), fp32 accumulate" if vname == "fused"
                        else f"w4a16 dense: {act} x {act} dense (W dequantized once), fp32 accumulate")
                results.append({"peer": label, "computes": comp, "class": "a16", "m": m, "k": k, "n": n, "status": "ok",
                                "median_ms": v["median_ms"], "p10_ms": v.get("p10_ms"), "p90_ms": v.get("p90_ms"),
                                "max_rel_err": None, "verified": bool(v.get("verified", False)),
                                "weight_bytes": v.get("weight_bytes"), "gbps": v.get("gbps"),
                                "w4a16_ms": w4a16["results"][(m, k, n)].get("fused", {}).get("median_ms"),
                                "ratio_vs_w4a16": (v["median_ms"] / w4a16["results"][(m, k, n)]["fused"]["median_ms"])
                                if w4a16["results"][(m, k, n)].get("fused") else None,
                                "source": "w4a16 bench JSON"})

    machine["loadavg_end"] = list(os.getloadavg())
    write_doc(True)
    print_table(doc, w4a16 is not None, note)
    print(f"\nwrote {out / 'peers.json'}  (load average {machine['loadavg_start'][0]:.2f} at start, "
          f"{machine['loadavg_end'][0]:.2f} at end)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mp = sub.add_parser("main")
    mp.add_argument("--shapes", default=DEFAULT_SHAPES)
    mp.add_argument("--threads", type=int, default=2)
    mp.add_argument("--out", default="build/peers")
    mp.add_argument("--harness", default="build/peers/onednn_matmul")
    mp.add_argument("--w4a16", default=None)
    mp.add_argument("--w4a16-note", default=None)
    mp.add_argument("--with-torch", action="store_true")
    mp.add_argument("--with-llama-cpp", action="store_true")
    mp.add_argument("--only", default=None, help="comma-separated peer names")
    mp.add_argument("--min-time", type=float, default=1.0)
    mp.add_argument("--peer-timeout", type=int, default=600)
    mp.add_argument("--max-other-cpu", type=float, default=0.2,
                    help="re-run a peer when other processes kept more CPUs than this busy during it")
    mp.add_argument("--retries", type=int, default=2)
    mp.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for a quiet machine before a retry")
    mp.add_argument("--command", default=None)
    wp = sub.add_parser("worker")
    wp.add_argument("--peer", required=True)
    wp.add_argument("--data", required=True)
    wp.add_argument("--x", required=True)
    wp.add_argument("--y-out", required=True)
    for f in ("--m", "--k", "--n", "--threads"):
        wp.add_argument(f, type=int, required=True)
    wp.add_argument("--rotate-bytes", type=float, required=True)
    wp.add_argument("--min-time", type=float, default=1.0)
    qp = sub.add_parser("quiet", help="wait until other processes leave the CPUs idle (or the time is up)")
    qp.add_argument("--max-wait", type=float, default=300.0)
    a = ap.parse_args()
    if a.cmd == "quiet":
        t0 = time.time()
        load = wait_quiet(a.max_wait)
        print(f"peers: machine {'quiet' if load < 0.1 else 'still busy'} ({load:.2f} CPUs busy) after "
              f"{time.time() - t0:.0f} s", file=sys.stderr)
        return 0
    return main_cmd(a) if a.cmd == "main" else worker_main(a)


if __name__ == "__main__":
    sys.exit(main())
