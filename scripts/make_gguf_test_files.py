#!/usr/bin/env python3
"""Writes the GGUF test files under tests/data/gguf/ with an independent producer: the PyPI `gguf`
package (llama.cpp's gguf-py), pinned, and its own reference dequantization.

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0 numpy
    /tmp/gguf-venv/bin/python scripts/make_gguf_test_files.py [OUT_DIR]

For each FILE.gguf it also writes
    FILE.ref.txt   one line per tensor, in file order: "<name> <ggml type> <element count>"
    FILE.ref.f32   those tensors' elements dequantized by gguf.quants.dequantize, float32
                   little-endian, concatenated in the same order (dims[0] fastest)
so that tests/io/gguf_test.cpp checks the C++ reader against gguf-py without needing Python.

gguf-py 0.19.0 quantizes Q4_0, Q4_1, Q8_0 and BF16 but not Q4_K, so the Q4_K blocks are made
here (a plain min/max quantizer; any valid block works) and only their *dequantization* is
gguf-py's. Two tensors are adversarial on purpose: fp16 scales and mins of unrelated magnitudes,
so that 8*s + m is not representable in fp32 and the importer's inexact path is exercised.
Deterministic: a fixed seed; rerunning gives the same bytes.
"""

import sys
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

QK_K = 256


def pack_q4_k_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """sc, m: [n_blocks, 8] 6-bit -> [n_blocks, 12] bytes (inverse of ggml's get_scale_min_k4)."""
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return out


def pack_q4_k_qs(q: np.ndarray) -> np.ndarray:
    """q: [n_blocks, 256] codes -> [n_blocks, 128]: chunk c = sub-block 2c low | sub-block 2c+1 high."""
    q = q.reshape(-1, 4, 2, 32)
    return (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(-1, 128).astype(np.uint8)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """x: [N, K] float32, K % 256 == 0 -> [N, K / 256 * 144] uint8 of block_q4_K."""
    n, k = x.shape
    blocks = x.reshape(-1, 8, 32).astype(np.float64)  # [n_blocks, sub-block, 32]
    lo = np.minimum(blocks.min(axis=-1), 0.0)
    hi = blocks.max(axis=-1)
    scale = (hi - lo) / 15.0
    d = np.float16(scale.max(axis=-1) / 63.0).astype(np.float64)
    dmin = np.float16((-lo).max(axis=-1) / 63.0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dmin[:, None] > 0, np.rint(-lo / dmin[:, None]), 0).clip(0, 63).astype(np.uint8)
        s = d[:, None] * sc
        q = np.where(s[..., None] > 0, np.rint((blocks + (dmin[:, None] * mn)[..., None]) / s[..., None]), 0)
    q = q.clip(0, 15).astype(np.uint8).reshape(-1, QK_K)
    out = np.concatenate(
        [
            d.astype(np.float16).reshape(-1, 1).view(np.uint8),
            dmin.astype(np.float16).reshape(-1, 1).view(np.uint8),
            pack_q4_k_scales(sc, mn),
            pack_q4_k_qs(q),
        ],
        axis=-1,
    )
    return out.reshape(n, k // QK_K * 144)


def random_finite_f16(rng: np.random.Generator, count: int, lo_exp: int, hi_exp: int) -> np.ndarray:
    """fp16 values with random sign, mantissa and an exponent in [lo_exp, hi_exp] (unbiased)."""
    mant = rng.uniform(1.0, 2.0, count)
    exp = rng.integers(lo_exp, hi_exp + 1, count)
    sign = rng.choice([-1.0, 1.0], count)
    return (sign * mant * np.exp2(exp)).astype(np.float16)


def wide_q4_k(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Valid Q4_K blocks with random codes, scales, mins and d, dmin of unrelated magnitudes."""
    nb = n * k // QK_K
    d = random_finite_f16(rng, nb, -20, 10)
    dmin = random_finite_f16(rng, nb, -20, 10)
    rest = rng.integers(0, 256, (nb, 140), dtype=np.uint8)
    out = np.concatenate([d.reshape(-1, 1).view(np.uint8), dmin.reshape(-1, 1).view(np.uint8), rest], axis=-1)
    return out.reshape(n, k // QK_K * 144)


def wide_q4_1(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Valid Q4_1 blocks: d tiny or huge next to m of another magnitude."""
    nb = n * k // 32
    d = random_finite_f16(rng, nb, -24, 8)
    m = random_finite_f16(rng, nb, -10, 14)
    qs = rng.integers(0, 256, (nb, 16), dtype=np.uint8)
    out = np.concatenate([d.reshape(-1, 1).view(np.uint8), m.reshape(-1, 1).view(np.uint8), qs], axis=-1)
    return out.reshape(n, k // 32 * 20)


def write(path: Path, tensors, metadata, alignment=None):
    """tensors: [(name, array, qtype)] (array already in the type's byte/element form)."""
    w = gguf.GGUFWriter(str(path), arch="llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for add in metadata:
        add(w)
    for name, data, qtype in tensors:
        w.add_tensor(name, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ref = path.with_suffix(".ref.f32")
    txt = path.with_suffix(".ref.txt")
    lines = []
    with open(ref, "wb") as f:
        for name, data, qtype in tensors:
            values = gguf.quants.dequantize(data, qtype).astype(np.float32, copy=False).reshape(-1)
            f.write(values.astype("<f4").tobytes())
            lines.append(f"{name} {qtype.name} {values.size}")
    txt.write_text("\n".join(lines) + "\n")


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/gguf"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)

    def weights(n, k, scale=0.05):
        return (rng.standard_normal((n, k)) * scale).astype(np.float32)

    vocab = [f"tok{i}" for i in range(200)] + ["<s>", "</s>", "\u2581the", "caf\u00e9", "\"quoted\"", "back\\slash",
                                                 "tab\tnewline\n", "\U0001f600"]
    metadata = [
        lambda w: w.add_name("w4a16 gguf test"),
        lambda w: w.add_uint8("test.u8", 200),
        lambda w: w.add_int8("test.i8", -100),
        lambda w: w.add_uint16("test.u16", 65535),
        lambda w: w.add_int16("test.i16", -32768),
        lambda w: w.add_uint32("test.u32", 4000000000),
        lambda w: w.add_int32("test.i32", -2000000000),
        lambda w: w.add_uint64("test.u64", 18446744073709551615),
        lambda w: w.add_int64("test.i64", -9223372036854775808),
        lambda w: w.add_float32("test.f32", 0.1),
        lambda w: w.add_float64("test.f64", -2.5e-300),
        lambda w: w.add_bool("test.bool", True),
        lambda w: w.add_string("test.string", "h\u00e9llo \"w\u00f6rld\"\n"),
        lambda w: w.add_array("tokenizer.ggml.tokens", vocab),
        lambda w: w.add_array("tokenizer.ggml.scores", [float(-i) / 4 for i in range(len(vocab))]),
        lambda w: w.add_array("test.int_array", [1, -2, 3, 2147483647]),
        lambda w: w.add_array("test.bool_array", [True, False, True]),
        lambda w: w.add_array("test.nested", [[1, 2], [3, 4, 5]]),
        lambda w: w.add_uint32("llama.block_count", 1),
    ]

    main_tensors = [
        ("blk.0.attn_q.weight", gguf.quants.quantize(weights(16, 128), T.Q4_0), T.Q4_0),
        ("blk.0.attn_k.weight", gguf.quants.quantize(weights(16, 128) + 0.02, T.Q4_1), T.Q4_1),
        ("blk.0.ffn_up.weight", quantize_q4_k(weights(8, 512) - 0.01), T.Q4_K),
        ("blk.0.wide_q4_k.weight", wide_q4_k(rng, 4, 512), T.Q4_K),
        ("blk.0.wide_q4_1.weight", wide_q4_1(rng, 8, 128), T.Q4_1),
        ("token_embd.weight", gguf.quants.quantize(weights(8, 64, 1.0), T.Q8_0), T.Q8_0),
        ("output_norm.weight", weights(1, 16, 1.0).reshape(16), T.F32),
        ("blk.0.attn_norm.weight", weights(1, 32, 1.0).reshape(32).astype(np.float16), T.F16),
        ("blk.0.bf16.weight", gguf.quants.quantize(weights(4, 8, 1.0), T.BF16), T.BF16),
    ]
    write(out / "model.gguf", main_tensors, metadata)

    # A second file with a non-default alignment and tensors whose sizes are not multiples of it.
    aligned_tensors = [
        ("a.weight", gguf.quants.quantize(weights(3, 64), T.Q4_0), T.Q4_0),
        ("b.bias", weights(1, 3, 1.0).reshape(3), T.F32),
        ("c.weight", gguf.quants.quantize(weights(5, 32), T.Q4_1), T.Q4_1),
    ]
    write(out / "aligned64.gguf", aligned_tensors, [lambda w: w.add_name("aligned")], alignment=64)


if __name__ == "__main__":
    main()
