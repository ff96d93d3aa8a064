"""llama.cpp's Q4_0 matmul through the ggml libraries that llama-cpp-python installs (ctypes).

What it computes: y = x * W^T with W in Q4_0 (blocks of 32 weights, one fp16 scale, codes 0..15,
value (q - 8) * d) and x converted by ggml to Q8_0 (int8, one scale per 32) inside mul_mat: that
is W4A8, not W4A16. W is the same sym g=128 weight as the other peers: each 128-group's bf16
scale is repeated over its four 32-blocks (exact in fp16), so the dequantized weights are equal.

The weights are allocated in the CPU backend's extra buffer type when it has one (CPU_REPACK:
llama.cpp repacks Q4_0 into interleaved blocks for its AVX2/AVX-512 GEMV/GEMM, as llama.cpp does
when it loads a model), otherwise in the plain CPU buffer; `info["buffer"]` says which.
"""

from __future__ import annotations

import ctypes as C
import glob
from pathlib import Path

import numpy as np

GGML_TYPE_F32 = 0
GGML_TYPE_Q4_0 = 2
GGML_BACKEND_DEVICE_TYPE_CPU = 0


class InitParams(C.Structure):
    _fields_ = [("mem_size", C.c_size_t), ("mem_buffer", C.c_void_p), ("no_alloc", C.c_bool)]


def _libs():
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")  # located, not imported: only its lib/ is needed
    if spec is None or not spec.origin:
        raise RuntimeError("llama-cpp-python is not installed (run.sh --with-llama-cpp installs it)")
    libdir = Path(spec.origin).resolve().parent / "lib"
    found = {}
    for name in ("ggml-base", "ggml", "ggml-cpu"):
        cands = sorted(glob.glob(str(libdir / f"lib{name}.so*")))
        if not cands:
            raise RuntimeError(f"lib{name}.so not found in {libdir}")
        found[name] = C.CDLL(cands[0], mode=C.RTLD_GLOBAL)
    return found, libdir


def _bind(libs):
    base, g, cpu = libs["ggml-base"], libs["ggml"], libs["ggml-cpu"]
    vp, sz, i64, i32 = C.c_void_p, C.c_size_t, C.c_int64, C.c_int

    def f(lib, name, res, *args):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, list(args)
        return fn

    return {
        "init": f(base, "ggml_init", vp, InitParams),
        "free": f(base, "ggml_free", None, vp),
        "tensor_overhead": f(base, "ggml_tensor_overhead", sz),
        "graph_overhead_custom": f(base, "ggml_graph_overhead_custom", sz, sz, C.c_bool),
        "new_tensor_2d": f(base, "ggml_new_tensor_2d", vp, vp, i32, i64, i64),
        "mul_mat": f(base, "ggml_mul_mat", vp, vp, vp, vp),
        "set_output": f(base, "ggml_set_output", None, vp),
        "new_graph_custom": f(base, "ggml_new_graph_custom", vp, vp, sz, C.c_bool),
        "build_forward_expand": f(base, "ggml_build_forward_expand", None, vp, vp),
        "nbytes": f(base, "ggml_nbytes", sz, vp),
        "tensor_set": f(base, "ggml_backend_tensor_set", None, vp, vp, sz, sz),
        "tensor_get": f(base, "ggml_backend_tensor_get", None, vp, vp, sz, sz),
        "buft_name": f(base, "ggml_backend_buft_name", C.c_char_p, vp),
        "alloc_ctx_tensors_from_buft": f(base, "ggml_backend_alloc_ctx_tensors_from_buft", vp, vp, vp),
        "gallocr_new": f(base, "ggml_gallocr_new", vp, vp),
        "gallocr_alloc_graph": f(base, "ggml_gallocr_alloc_graph", C.c_bool, vp, vp),
        "graph_compute": f(base, "ggml_backend_graph_compute", i32, vp, vp),
        "dev_by_type": f(g, "ggml_backend_dev_by_type", vp, i32),
        "dev_backend_reg": f(base, "ggml_backend_dev_backend_reg", vp, vp),
        "reg_get_proc_address": f(base, "ggml_backend_reg_get_proc_address", vp, vp, C.c_char_p),
        "cpu_init": f(cpu, "ggml_backend_cpu_init", vp),
        "cpu_set_n_threads": f(cpu, "ggml_backend_cpu_set_n_threads", None, vp, i32),
        "cpu_buffer_type": f(base, "ggml_backend_cpu_buffer_type", vp),
    }


def q4_0_blocks(codes: np.ndarray, scales_f32: np.ndarray) -> np.ndarray:
    """[N, K] codes + [N, K/128] scales -> the Q4_0 bytes of an [N, K] tensor (18 B per 32)."""
    n, k = codes.shape
    nb = k // 32
    d = np.repeat(scales_f32, 4, axis=1).astype(np.float16)  # [N, K/32], exact (checked by the caller's reference)
    c = codes.reshape(n, nb, 32)
    qs = (c[:, :, :16] | (c[:, :, 16:] << 4)).astype(np.uint8)  # element j low nibble, j+16 high nibble
    blk = np.empty((n, nb, 18), np.uint8)
    blk[:, :, 0:2] = d.view(np.uint8).reshape(n, nb, 2)
    blk[:, :, 2:] = qs
    return blk.reshape(-1)


def build_info() -> dict:
    """How the installed ggml was compiled, as the library itself reports it: its AMX backend is in
    only where ggml_cpu_has_amx_int8() says so (run.sh --llama-cpp-amx off compiles it out)."""
    libs, libdir = _libs()
    has_amx = libs["ggml-cpu"].ggml_cpu_has_amx_int8
    has_amx.restype, has_amx.argtypes = C.c_int, []
    return {"amx_backend": bool(has_amx()), "ggml_lib_dir": str(libdir)}


def run_q4_0(a, codes, scales_f32, x, copies_for, time_sweeps):
    libs, libdir = _libs()
    L = _bind(libs)
    m, k, n = a.m, a.k, a.n
    wbytes = q4_0_blocks(codes, scales_f32)
    copies = copies_for(wbytes.nbytes, a.rotate_bytes)

    backend = L["cpu_init"]()
    L["cpu_set_n_threads"](backend, a.threads)

    # The weight buffer type: the CPU device's first extra buffer type (CPU_REPACK) if any.
    buft = L["cpu_buffer_type"]()
    buffer_name = L["buft_name"](buft).decode()
    dev = L["dev_by_type"](GGML_BACKEND_DEVICE_TYPE_CPU)
    if dev:
        reg = L["dev_backend_reg"](dev)
        addr = L["reg_get_proc_address"](reg, b"ggml_backend_dev_get_extra_bufts")
        if addr:
            get_extra = C.CFUNCTYPE(C.POINTER(C.c_void_p), C.c_void_p)(addr)
            arr = get_extra(dev)
            if arr and arr[0]:
                buft = arr[0]
                buffer_name = L["buft_name"](buft).decode()

    ov = L["tensor_overhead"]()
    wctx = L["init"](InitParams(ov * (copies + 4), None, True))
    ws = [L["new_tensor_2d"](wctx, GGML_TYPE_Q4_0, k, n) for _ in range(copies)]
    if not L["alloc_ctx_tensors_from_buft"](wctx, buft):
        raise RuntimeError(f"could not allocate the Q4_0 weights in {buffer_name}")
    buf = wbytes.ctypes.data_as(C.c_void_p)
    for t in ws:
        L["tensor_set"](t, buf, 0, wbytes.nbytes)  # CPU_REPACK converts here

    xctx = L["init"](InitParams(ov * 4, None, True))
    xt = L["new_tensor_2d"](xctx, GGML_TYPE_F32, k, m)
    if not L["alloc_ctx_tensors_from_buft"](xctx, L["cpu_buffer_type"]()):
        raise RuntimeError("could not allocate x")
    xf = np.ascontiguousarray(x, dtype=np.float32)
    L["tensor_set"](xt, xf.ctypes.data_as(C.c_void_p), 0, xf.nbytes)

    # A graph of one node per copy and two leaves (the copy's weight, x): sized for them, since the
    # default graph (2048 nodes) overflows on small weights, which rotate through many copies.
    graph_size = 2 * copies + 16
    gctx = L["init"](InitParams(ov * (copies + 16) + L["graph_overhead_custom"](graph_size, False), None, True))
    graph = L["new_graph_custom"](gctx, graph_size, False)
    ys = []
    for t in ws:
        y = L["mul_mat"](gctx, t, xt)  # [ne0 = N, ne1 = M]
        ys.append(y)
        L["build_forward_expand"](graph, y)
    L["set_output"](ys[0])
    galloc = L["gallocr_new"](L["cpu_buffer_type"]())
    if not L["gallocr_alloc_graph"](galloc, graph):
        raise RuntimeError("ggml_gallocr_alloc_graph failed")

    def sweep():
        st = L["graph_compute"](backend, graph)
        if st != 0:
            raise RuntimeError(f"ggml_backend_graph_compute returned {st}")

    sweep()
    y0 = np.empty((m, n), np.float32)
    L["tensor_get"](ys[0], y0.ctypes.data_as(C.c_void_p), 0, y0.nbytes)
    samples = time_sweeps(sweep, copies, a.min_time)
    version = "?"
    try:
        from importlib.metadata import version as _v

        version = _v("llama_cpp_python")
    except Exception:  # noqa: BLE001
        pass
    info = {"copies": copies, "weight_bytes": int(wbytes.nbytes), "buffer": buffer_name,
            "llama_cpp_python_version": version, "ggml_lib_dir": str(libdir), "graph_nodes_per_sweep": copies}
    # (contexts, buffers and the backend live until the worker process exits)
    return y0, samples, info
