#!/usr/bin/env python3
"""PyTorch's int4 weight-only matmul ("tinygemm") as a GPU peer of w4a16's CUDA kernels.

What it measures
----------------
`torch._weight_int4pack_mm(x, W_packed, group_size, scales_and_zeros)`: bf16 activations
x [M, K], int4 weights W [N, K] (N = out_features, K = in_features) quantized group-wise along
K (g = 128) with a bf16 scale AND a bf16 zero per group, bf16 output y [M, N] = x W^T. This is
the kernel gpt-fast / torchao's int4 weight-only path use on NVIDIA GPUs. For each shape the
weight is packed once by `torch._convert_weight_to_int4pack(..., innerKTiles=8)` and copied
R times, R * (bytes of one copy) >= 2 x the H200's 60 MB L2, and consecutive calls use
consecutive copies, so every call streams its weight from HBM. Times are CUDA-event times of
back-to-back calls, median of several repetitions, in ms per call: "ms" replays a CUDA graph of
the calls (kernel time without Python dispatch; the eager loop is the fallback when capture
fails), "ms_eager" is a plain Python loop of the same calls (includes launch overhead, which
dominates at small shapes). gbps = (N*K/2 + scale/zero bytes + x bytes + y bytes) / time.

Dequantization convention (verified in the PyTorch sources, not guessed)
-------------------------------------------------------------------------
    w[n, k] = (q[n, k] - 8) * scale[k // g, n] + zero[k // g, n]      q in 0..15

with scales_and_zeros a contiguous bf16 tensor [K/g, N, 2], [..., 0] = scale, [..., 1] = zero.
  * aten/src/ATen/native/cuda/int4mm.cu (pytorch/pytorch): `convert_i4x8_to_bf16x2x4` builds
    bf16(128 + q) with the magic 0x4300 and adds the bias -136 (0xC308), i.e. yields q - 8
    ("dequantized as truly int4 [-8, 7] range; dequant = (bf16(int4_value) * bf16_scale) +
    bf16_zero"), then `__hfma2(v, scale, zero)` with (scale, zero) loaded as one bf16x2 at
    qScaleAndZeros[(k / g) * n + n_index][0..1]; the host checks qScaleAndZeros.dim() == 3,
    size(1) == n, size(2) == 2. (A comment in BLayout_TC_int4::load, "v_reconstructed =
    (bf16(B_int4_val) * scale) - zero", is stale: the code adds the zero and subtracts 8.) Dequantized weights are rounded to bf16 before the bf16
    mma (fp32 accumulation); the output is rounded to bf16.
  * aten/src/ATen/native/cpu/int4mm_kernel.cpp: the CPU kernel uses the same convention
    (lut -8..7, fmadd(q, scale, zero); the AVX2 path folds it as zero' = zero - 8 * scale).
  * The test helper `_group_quantize_tensor` (test/test_linalg.py's int4 mm tests, and torchao's
    copies) quantizes q = round((w - min) / scale) in 0..15 and stores zero = min + 8 * scale,
    consistent with it.
  * Numerically: `--cpu-check` below, run with torch 2.11.0 (CPU ops), matches (q-8)*s+z to
    ~2e-3 of max|y| (bf16 output rounding) and misses q*s+z by ~0.5.

Packing forms (signatures: native_functions.yaml, via pytorch/pytorch PRs #129940, #139611)
------------------------------------------------------------------------------------------
    _convert_weight_to_int4pack(Tensor self, int innerKTiles) -> Tensor
    _weight_int4pack_mm(Tensor self, Tensor mat2, int qGroupSize, Tensor qScaleAndZeros) -> Tensor
  * PyTorch >= 2.5 (PR #129940): `self` is uint8 [N, K/2], two codes per byte, the even-k code
    in the HIGH nibble: byte[n, j] = (q[n, 2j] << 4) | q[n, 2j + 1] (int4mm.cu's
    matrix_to_m16n8k16_Bint4_layout comment: "v[0]H ... when using uint8 weight as input").
  * PyTorch < 2.5: `self` is int32 [N, K] holding 0..15.
  Either way the result is int32 [N/8, K/(innerKTiles*16), 32, innerKTiles/2] (2.11's
  torch/_meta_registrations.py: meta__convert_weight_to_int4pack requires uint8); innerKTiles in
  {2, 4, 8} (8 here, as gpt-fast), K % (innerKTiles*16) == 0, qGroupSize in {32, 64, 128, 256}.
  Since 2.6 (PR #139611) the CPU versions are separate ops, `_convert_weight_to_int4pack_for_cpu`
  (int32 [N, K] -> uint8 [N, K/2]) and `_weight_int4pack_mm_for_cpu`, same convention.
The script does not trust any of this blindly: it probes the forms on a small shape against its
own float reference and uses the first one that matches (JSON "pack_form", "pack_probe"); every
shape is checked again before it is timed ("max_rel_err" = max|y - ref| / max|ref|, fails above
2 %; the reference dequantizes in float32 -- exact up to fp32 rounding, where tinygemm rounds
each dequantized weight to bf16 -- and accumulates in float64).

Usage
-----
    python3 bench/cuda_peers.py --json OUT.json [--shapes default|NxK,NxK...] [--ms 1,2,...]
                                [--budget-s 80]
    python3 bench/cuda_peers.py --cpu-check     # convention check with the CPU ops, no GPU

The JSON is always written (with "error" when nothing could be measured, e.g. no CUDA device);
the exit status is 0 unless the arguments are wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

GROUP = 128
INNER_K_TILES = 8
L2_BYTES = 60 * 1000 * 1000            # H200 L2: 60 MB
ROTATE_BYTES = 2 * L2_BYTES
CHECK_M = 16                           # the M of the per-shape correctness check
REL_TOL = 0.02                         # max|y - ref| / max|ref|
REPS = 7                               # timed repetitions (median)
TARGET_REP_S = 2e-3                    # aim for about 2 ms of GPU time per repetition
MAX_CALLS = 2000                       # calls per repetition, at most
VARIANT = "tinygemm-bf16"
DEVICE = "cuda"

# (N, K): y[M, N] = x[M, K] W^T
DEFAULT_SHAPES = [
    (4096, 4096), (14336, 4096), (4096, 14336), (28672, 8192), (8192, 28672),
    (512, 14336), (1024, 14336), (512, 28672), (1024, 28672),
]
DEFAULT_MS = [1, 2, 4, 8, 16, 32, 64, 128]

PACK_FORMS = [
    # name, what the conversion takes
    ("uint8[N,K/2] even-k in high nibble", "u8_hi"),     # PyTorch >= 2.5
    ("int32[N,K]", "i32"),                               # PyTorch < 2.5
    ("uint8[N,K/2] even-k in low nibble", "u8_lo"),      # not expected; diagnostic fallback
]


# ----------------------------------------------------------------------------------------------
# arguments
# ----------------------------------------------------------------------------------------------

def parse_shapes(text: str) -> list[tuple[int, int]]:
    if text.strip().lower() == "default":
        return list(DEFAULT_SHAPES)
    shapes = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == "default":
            shapes.extend(DEFAULT_SHAPES)
            continue
        n_s, sep, k_s = part.partition("x")
        if not sep:
            raise argparse.ArgumentTypeError(f"shape {part!r} is not NxK")
        n, k = int(n_s), int(k_s)
        if n <= 0 or k <= 0 or n % 8 or k % (INNER_K_TILES * 16) or k % GROUP:
            raise argparse.ArgumentTypeError(
                f"shape {part!r}: tinygemm needs N % 8 == 0 and K % {max(GROUP, INNER_K_TILES * 16)} == 0")
        shapes.append((n, k))
    if not shapes:
        raise argparse.ArgumentTypeError("no shapes")
    return shapes


def parse_ms(text: str) -> list[int]:
    ms = [int(t) for t in text.replace(";", ",").split(",") if t.strip()]
    if not ms or any(m <= 0 for m in ms):
        raise argparse.ArgumentTypeError(f"bad --ms {text!r}")
    return ms


# ----------------------------------------------------------------------------------------------
# data, packing, reference (device-agnostic: the CPU check uses the same functions)
# ----------------------------------------------------------------------------------------------

def make_weight(torch, n: int, k: int, device, gen):
    """codes 0..15 (uint8 [N, K]); scales in [1/256, 1/32) and zeros in +-4 scales, both bf16,
    as the [K/g, N, 2] scales_and_zeros tensor tinygemm takes."""
    g = k // GROUP
    q = torch.randint(0, 16, (n, k), dtype=torch.uint8, device=device, generator=gen)
    scale = torch.rand((g, n), device=device, generator=gen) * (1 / 32 - 1 / 256) + 1 / 256
    zero = (torch.rand((g, n), device=device, generator=gen) * 2 - 1) * 4 * scale
    sz = torch.stack([scale, zero], dim=-1).to(torch.bfloat16).contiguous()
    return q, sz


def dequant_f32(torch, q, sz):
    """w[n, k] = (q[n, k] - 8) * scale[k // g, n] + zero[k // g, n], float32 [N, K]."""
    scale = sz[..., 0].float().t().repeat_interleave(GROUP, dim=1)    # [N, K]
    zero = sz[..., 1].float().t().repeat_interleave(GROUP, dim=1)
    return (q.float() - 8.0) * scale + zero


def reference(torch, x, q, sz):
    """x @ dequant(W)^T: dequantized in float32 (exact here), accumulated in float64."""
    w = dequant_f32(torch, q, sz)
    ref = x.double() @ w.double().t()
    del w
    return ref


def rel_err(torch, y, ref) -> float:
    denom = ref.abs().max().item()
    err = (y.double() - ref).abs().max().item()
    if not math.isfinite(err):
        return float("inf")
    return err / denom if denom > 0 else err


def pack_input(torch, q, form: str):
    """The tensor `_convert_weight_to_int4pack` takes in the given form."""
    if form == "i32":
        return q.to(torch.int32).contiguous()
    even, odd = q[:, 0::2].to(torch.int32), q[:, 1::2].to(torch.int32)
    if form == "u8_hi":
        return ((even << 4) | odd).to(torch.uint8).contiguous()
    if form == "u8_lo":
        return ((odd << 4) | even).to(torch.uint8).contiguous()
    raise ValueError(form)


def pack(torch, q, form: str):
    return torch._convert_weight_to_int4pack(pack_input(torch, q, form), INNER_K_TILES)


def tinygemm(torch, x, wp, sz):
    return torch._weight_int4pack_mm(x, wp, GROUP, sz)


def probe_pack_forms(torch, device, gen):
    """Try each packing form on a small shape; the first whose product matches the reference
    wins. Returns (form key or None, form name, probe records)."""
    n, k, m = 256, 1024, CHECK_M
    q, sz = make_weight(torch, n, k, device, gen)
    x = torch.randn((m, k), device=device, generator=gen).to(torch.bfloat16)
    ref = reference(torch, x, q, sz)
    records, ran = [], None
    for name, key in PACK_FORMS:
        rec = {"form": name}
        try:
            wp = pack(torch, q, key)
            y = tinygemm(torch, x, wp, sz)
            torch.cuda.synchronize()
            err = rel_err(torch, y, ref)
            rec.update({"ran": True, "max_rel_err": err, "packed_shape": list(wp.shape),
                        "packed_dtype": str(wp.dtype).replace("torch.", "")})
            # diagnostic: would another zero convention have matched?
            if err > REL_TOL:
                alt = {}
                s = sz[..., 0].float().t().repeat_interleave(GROUP, dim=1)
                z = sz[..., 1].float().t().repeat_interleave(GROUP, dim=1)
                for label, w in (("q*s+z", q.float() * s + z), ("(q-8)*s-z", (q.float() - 8) * s - z),
                                 ("q*s-z", q.float() * s - z)):
                    alt[label] = rel_err(torch, y, x.double() @ w.double().t())
                rec["other_conventions_rel_err"] = alt
            records.append(rec)
            if ran is None:
                ran = (key, name)
            if err <= REL_TOL:
                return key, name, records
        except Exception as e:  # noqa: BLE001 -- a form this torch does not take
            rec.update({"ran": False, "error": f"{type(e).__name__}: {str(e)[:300]}"})
            records.append(rec)
            try:
                torch.cuda.synchronize()
            except Exception:  # noqa: BLE001
                pass
    if ran is not None:  # a form ran but did not match: time nothing, mark the checks failed
        return ran[0], ran[1] + " (did not match the reference)", records
    return None, "none", records


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------

def event_time_s(torch, launch, reps: int) -> list[float]:
    """Seconds per repetition of `launch()`, measured with CUDA events."""
    out = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        launch()
        end.record()
        end.synchronize()
        out.append(start.elapsed_time(end) * 1e-3)
    return out


def time_point(torch, x, copies):
    """(ms per call, ms per call eager, how "ms" was timed, calls per repetition)."""
    r = len(copies)

    def sweep(n_calls):
        for i in range(n_calls):
            wp, sz = copies[i % r]
            tinygemm(torch, x, wp, sz)

    sweep(r)                                          # warm-up: every copy once
    torch.cuda.synchronize()
    est = min(event_time_s(torch, lambda: sweep(r), 2)) / r
    n_calls = r * max(1, math.ceil(TARGET_REP_S / max(est, 1e-7) / r))
    n_calls = max(r, min(n_calls, r * max(1, MAX_CALLS // r)))

    eager = statistics.median(event_time_s(torch, lambda: sweep(n_calls), REPS)) / n_calls

    graph_t, how = None, "eager"
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            sweep(n_calls)
        graph.replay()                                # warm replay
        torch.cuda.synchronize()
        graph_t = statistics.median(event_time_s(torch, graph.replay, REPS)) / n_calls
        how = "cuda_graph"
        del graph
    except Exception as e:  # noqa: BLE001 -- capture not supported here: eager numbers only
        how = f"eager (graph capture failed: {type(e).__name__}: {str(e)[:120]})"
        try:
            torch.cuda.synchronize()
        except Exception:  # noqa: BLE001
            pass
    ms = (graph_t if graph_t is not None else eager) * 1e3
    return ms, eager * 1e3, how, n_calls


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def run_shape(torch, n, k, ms_list, form, gen, result):
    device = DEVICE
    q, sz = make_weight(torch, n, k, device, gen)
    wp = pack(torch, q, form)
    torch.cuda.synchronize()
    w_bytes = wp.numel() * wp.element_size()          # = N*K/2
    sz_bytes = sz.numel() * sz.element_size()         # = K/g * N * 2 * 2
    per_copy = w_bytes + sz_bytes
    r = max(1, math.ceil(ROTATE_BYTES / per_copy))

    xc = torch.randn((CHECK_M, k), device=device, generator=gen).to(torch.bfloat16)
    err = rel_err(torch, tinygemm(torch, xc, wp, sz), reference(torch, xc, q, sz))
    del q, xc
    base = {"shape": f"{n}x{k}", "k": k, "n": n, "variant": VARIANT, "max_rel_err": err,
            "check_m": CHECK_M, "rotations": r, "weight_bytes": w_bytes, "scale_zero_bytes": sz_bytes}
    if not (err <= REL_TOL):
        for m in ms_list:
            result["rows"].append({**base, "m": m, "status": "check_failed", "ms": None, "gbps": None})
        print(f"{n}x{k}: check failed, max_rel_err {err:.3g} > {REL_TOL}; not timed", flush=True)
        return

    copies = [(wp, sz)] + [(wp.clone(), sz.clone()) for _ in range(r - 1)]
    for m in ms_list:
        x = torch.randn((m, k), device=device, generator=gen).to(torch.bfloat16)
        ms, ms_eager, how, calls = time_point(torch, x, copies)
        moved = w_bytes + sz_bytes + m * k * 2 + m * n * 2
        row = {**base, "m": m, "status": "ok", "ms": ms, "gbps": moved / (ms * 1e-3) / 1e9,
               "ms_eager": ms_eager, "gbps_eager": moved / (ms_eager * 1e-3) / 1e9,
               "timing": how, "calls_per_rep": calls, "reps": REPS}
        result["rows"].append(row)
    print(f"{n}x{k}: check ok (max_rel_err {err:.2e}), R = {r} copies, {len(ms_list)} M timed", flush=True)
    del copies, wp, sz


def print_table(result):
    rows = result["rows"]
    if not rows:
        return
    print()
    print(f"{'shape NxK':>14} {'M':>4} {'us':>9} {'GB/s':>8} {'us eager':>9} {'rel err':>9}  status")
    for r in rows:
        ms = f"{r['ms'] * 1e3:9.2f}" if r.get("ms") is not None else f"{'-':>9}"
        gb = f"{r['gbps']:8.1f}" if r.get("gbps") is not None else f"{'-':>8}"
        me = f"{r['ms_eager'] * 1e3:9.2f}" if r.get("ms_eager") is not None else f"{'-':>9}"
        print(f"{r['shape']:>14} {r['m']:>4} {ms} {gb} {me} {r['max_rel_err']:9.2e}  {r['status']}")
    for s in result["skipped"]:
        print(f"skipped {s['shape']}: {s['reason']}")


def run(args, result) -> None:
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        result["error"] = f"torch not importable: {type(e).__name__}: {e}"
        return
    result["torch"] = torch.__version__
    result["torch_cuda"] = getattr(torch.version, "cuda", None)
    if not torch.cuda.is_available():
        result["error"] = "no CUDA device"
        return
    for name in ("_convert_weight_to_int4pack", "_weight_int4pack_mm"):
        if not hasattr(torch, name):
            result["error"] = f"torch.{name} does not exist in torch {torch.__version__}"
            return
    torch.cuda.init()
    result["device"] = torch.cuda.get_device_name(0)
    props = torch.cuda.get_device_properties(0)
    result["device_l2_bytes"] = getattr(props, "L2_cache_size", None)
    result["group_size"] = GROUP
    result["inner_k_tiles"] = INNER_K_TILES
    result["rotate_bytes"] = ROTATE_BYTES
    gen = torch.Generator(device=DEVICE)
    gen.manual_seed(args.seed)

    t0 = time.monotonic()
    with torch.inference_mode():
        form, form_name, probe = probe_pack_forms(torch, DEVICE, gen)
        result["pack_form"] = form_name
        result["pack_probe"] = probe
        if form is None:
            result["error"] = "no packing form worked: " + "; ".join(
                f"{p['form']}: {p.get('error', p.get('max_rel_err'))}" for p in probe)
            for n, k in args.shapes:
                result["skipped"].append({"shape": f"{n}x{k}", "reason": "no packing form worked"})
            return
        print(f"torch {torch.__version__} on {result['device']}: pack form {form_name}", flush=True)
        failures = []
        for i, (n, k) in enumerate(args.shapes):
            elapsed = time.monotonic() - t0
            if elapsed > args.budget_s:
                for n2, k2 in args.shapes[i:]:
                    result["skipped"].append({"shape": f"{n2}x{k2}",
                                              "reason": f"budget: {elapsed:.1f} s > {args.budget_s} s"})
                break
            try:
                run_shape(torch, n, k, args.ms, form, gen, result)
            except Exception as e:  # noqa: BLE001 -- one shape failing must not stop the rest
                msg = f"{type(e).__name__}: {str(e)[:300]}"
                failures.append(msg)
                result["skipped"].append({"shape": f"{n}x{k}", "reason": "error: " + msg})
                print(f"{n}x{k}: {msg}", flush=True)
            finally:
                torch.cuda.empty_cache()
        result["elapsed_s"] = round(time.monotonic() - t0, 2)
        if not result["rows"] and failures:
            result["error"] = "every shape failed: " + failures[0]


def cpu_check() -> int:
    """The dequantization convention and scales_and_zeros layout against torch's CPU ops
    (`_convert_weight_to_int4pack_for_cpu`: int32 [N, K] -> uint8 [N, K/2]; since 2.6). The CPU
    packer's byte layout is its own (blocked per BLOCK_N), so the CUDA form's nibble order is
    not checked here: the GPU run probes it."""
    import torch
    print(f"torch {torch.__version__}")
    if not hasattr(torch, "_weight_int4pack_mm_for_cpu"):
        print("torch._weight_int4pack_mm_for_cpu not available; nothing checked")
        return 0
    gen = torch.Generator().manual_seed(0)
    bad = 0
    with torch.inference_mode():
        for n, k, m in ((64, 256, 1), (128, 1024, 5), (256, 512, 16)):
            q, sz = make_weight(torch, n, k, "cpu", gen)
            x = torch.randn((m, k), generator=gen).to(torch.bfloat16)
            wp = torch._convert_weight_to_int4pack_for_cpu(q.to(torch.int32).contiguous(), INNER_K_TILES)
            y = torch._weight_int4pack_mm_for_cpu(x, wp, GROUP, sz)
            err = rel_err(torch, y, reference(torch, x, q, sz))
            s = sz[..., 0].float().t().repeat_interleave(GROUP, dim=1)
            z = sz[..., 1].float().t().repeat_interleave(GROUP, dim=1)
            alt = rel_err(torch, y, x.double() @ (q.float() * s + z).double().t())
            ok = err <= REL_TOL
            bad += not ok
            print(f"N={n} K={k} M={m}: packed {tuple(wp.shape)} {wp.dtype}; rel err vs (q-8)*s+z: "
                  f"{err:.2e} ({'ok' if ok else 'FAIL'}); vs q*s+z: {alt:.2e}")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="output JSON file")
    ap.add_argument("--shapes", type=parse_shapes, default=list(DEFAULT_SHAPES),
                    help="'default' or NxK,NxK,... (N = out_features, K = in_features)")
    ap.add_argument("--ms", type=parse_ms, default=list(DEFAULT_MS), help="M values, comma-separated")
    ap.add_argument("--budget-s", type=float, default=80.0,
                    help="no new shape is started after this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu-check", action="store_true",
                    help="check the dequantization convention with torch's CPU int4 ops and exit")
    args = ap.parse_args(argv)
    if args.cpu_check:
        return cpu_check()
    if not args.json:
        ap.error("--json OUT.json is required")

    result = {"torch": None, "device": None, "pack_form": None, "variant": VARIANT,
              "rows": [], "skipped": []}
    try:
        run(args, result)
    except Exception as e:  # noqa: BLE001 -- the JSON is written whatever happens
        result["error"] = f"{type(e).__name__}: {str(e)[:500]}"
    finally:
        if result.get("error") and result["rows"]:
            result["partial_error"] = result.pop("error")
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    print_table(result)
    if result.get("error"):
        print(f"error: {result['error']}")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
