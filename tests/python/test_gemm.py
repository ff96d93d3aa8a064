"""gemm against the float64 reference of the dequantized weight (bound derived in conftest.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import w4a16
from conftest import ACT_DTYPES, BF16, assert_gemm_close, random_weight, random_x

# Odd shapes on purpose: K = 200 with g = 64 leaves a ragged last group (200 = 3*64 + 8), K = 77
# is odd (a padding nibble per row), N = 70 and 33 are not multiples of any tile.
SHAPES = [(200, 70, 64), (77, 33, 32), (256, 64, 128), (130, 17, 0)]  # (K, N, g); g = 0: per-channel


@pytest.mark.parametrize("act", ["fp16", "bf16"])
@pytest.mark.parametrize("zero", ["sym", "asym", "float"])
@pytest.mark.parametrize("k,n,g", SHAPES)
@pytest.mark.parametrize("m", [1, 3, 17])
def test_gemm_matches_reference(rng, act, zero, k, n, g, m):
    qw = w4a16.quantize(random_weight(rng, n, k), group_size=g, zero=zero)
    x = random_x(rng, m, k, ACT_DTYPES[act])
    y = w4a16.gemm(x, qw)
    assert y.shape == (m, n) and y.dtype == ACT_DTYPES[act]
    assert_gemm_close(y, x, qw)


@pytest.mark.parametrize("scale_dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("source", [np.float32, np.float16, BF16])
def test_scale_dtypes_and_sources(rng, scale_dtype, source):
    qw = w4a16.quantize(random_weight(rng, 40, 96, source), group_size=32, zero="asym", scale_dtype=scale_dtype)
    assert qw.scale_dtype == scale_dtype
    for act in ("fp16", "bf16"):
        x = random_x(rng, 5, 96, ACT_DTYPES[act])
        assert_gemm_close(w4a16.gemm(x, qw), x, qw)


def test_default_scale_dtype_is_the_source_dtype(rng):
    assert w4a16.quantize(random_weight(rng, 4, 64, np.float16), group_size=32).scale_dtype == "fp16"
    assert w4a16.quantize(random_weight(rng, 4, 64, BF16), group_size=32).scale_dtype == "bf16"
    assert w4a16.quantize(random_weight(rng, 4, 64, np.float32), group_size=32).scale_dtype == "fp32"


@pytest.mark.parametrize(
    "strategy,partition,split_k",
    [("fused", "dp", 0), ("fused", "splitk", 2), ("fused", "splitk", 3), ("decoupled", "dp", 0),
     ("decoupled", "splitk", 2), ("dense", "dp", 0), ("dense", "splitk", 4), ("auto", "auto", 0)],
)
@pytest.mark.parametrize("act", ["fp16", "bf16"])
def test_strategies_and_partitions(rng, strategy, partition, split_k, act):
    qw = w4a16.quantize(random_weight(rng, 70, 520), group_size=64, zero="asym",
                        bias=rng.standard_normal(70).astype(np.float32))
    packed = w4a16.pack(qw)
    for m in (1, 17):
        x = random_x(rng, m, 520, ACT_DTYPES[act])
        for threads in (0, 1, 2):
            y = w4a16.gemm(x, packed, strategy=strategy, partition=partition, split_k=split_k, threads=threads)
            assert_gemm_close(y, x, qw, strategy, partition)


def test_plan_reports_the_resolved_options(rng):
    qw = w4a16.quantize(random_weight(rng, 64, 4096), group_size=128)
    p = w4a16.plan(1, qw, "bf16", strategy="fused", partition="splitk", split_k=4, threads=2)
    assert set(p) == {"strategy", "partition", "split_k", "threads", "isa", "kernel", "notes", "vector_threads",
                      "x_format", "workspace_bytes", "predicted_ms", "bound", "breakdown"}
    assert p["strategy"] == "fused" and p["partition"] == "splitk" and p["split_k"] == 4
    assert p["isa"] == w4a16.active_isa()
    assert p["predicted_ms"] > 0 and p["bound"] in {t["name"] for t in p["breakdown"]}
    auto = w4a16.plan(16, w4a16.pack(qw), "fp16")
    # the planner chooses among the W4A16 strategies; the dense baseline is never chosen for a quantized weight
    assert auto["strategy"] in ("fused", "decoupled", "pipelined") and auto["partition"] in ("dp", "splitk")
    assert auto["threads"] >= 1 and isinstance(auto["notes"], str)
    pipelined = w4a16.plan(3, qw, "bf16", strategy="pipelined", threads=2)
    assert pipelined["strategy"] == "pipelined" and pipelined["vector_threads"] == 1


def test_one_row_x_gives_one_row_y(rng):
    qw = w4a16.quantize(random_weight(rng, 33, 77), group_size=32)
    for act in ("fp16", "bf16"):
        x = random_x(rng, 1, 77, ACT_DTYPES[act])[0]
        y = w4a16.gemm(x, qw)
        assert y.shape == (33,) and y.dtype == ACT_DTYPES[act]
        assert_gemm_close(y, x, qw)
        out = np.full(33, np.nan, dtype=ACT_DTYPES[act])
        assert w4a16.gemm(x, qw, out=out) is out
        np.testing.assert_array_equal(out.astype(np.float32), y.astype(np.float32))


@pytest.mark.parametrize("act", ["fp16", "bf16"])
def test_out_is_written_and_returned(rng, act):
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64, zero="float")
    x = random_x(rng, 3, 200, ACT_DTYPES[act])
    out = np.full((3, 70), np.nan, dtype=ACT_DTYPES[act])  # NaN poison: every element must be written
    assert w4a16.gemm(x, qw, out) is out
    assert_gemm_close(out, x, qw)
    np.testing.assert_array_equal(out.astype(np.float32), w4a16.gemm(x, qw).astype(np.float32))


def test_non_contiguous_x_is_copied(rng):
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64)
    x = random_x(rng, 200, 6, np.float16).T  # [6, 200], F-order
    assert not x.flags.c_contiguous
    y = w4a16.gemm(x, qw)
    np.testing.assert_array_equal(y, w4a16.gemm(np.ascontiguousarray(x), qw))
    xb = random_x(rng, 6, 400, BF16)[:, ::2]  # strided bf16 view
    np.testing.assert_array_equal(
        w4a16.gemm(xb, qw).astype(np.float32), w4a16.gemm(np.ascontiguousarray(xb), qw).astype(np.float32))


def test_empty_batch(rng):
    qw = w4a16.quantize(random_weight(rng, 8, 64), group_size=32)
    y = w4a16.gemm(np.zeros((0, 64), np.float16), qw)
    assert y.shape == (0, 8) and y.dtype == np.float16


def test_every_isa_matches_reference(rng, isa_reset):
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64, zero="asym")
    for isa, act in itertools.product(w4a16.supported_isas(), ("fp16", "bf16")):
        w4a16.set_isa(isa)
        assert w4a16.active_isa() == isa
        x = random_x(rng, 3, 200, ACT_DTYPES[act])
        for strategy in ("fused", "decoupled", "dense"):
            assert_gemm_close(w4a16.gemm(x, qw, strategy=strategy), x, qw, strategy, "auto")


def test_quantized_and_packed_weights_agree(rng):
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64)
    x = random_x(rng, 3, 200, np.float16)
    opts = dict(strategy="fused", partition="dp")
    np.testing.assert_array_equal(w4a16.gemm(x, qw, **opts), w4a16.gemm(x, w4a16.pack(qw), **opts))
