"""QuantizedWeight views, dequantize, pack, save/load, Linear."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import w4a16
from conftest import ACT_DTYPES, BF16, assert_gemm_close, random_weight, random_x


def test_attributes_and_view_shapes(rng):
    bias = rng.standard_normal(70).astype(np.float16)
    qw = w4a16.quantize(random_weight(rng, 70, 77), group_size=32, zero="asym", scale_dtype="bf16", bias=bias)
    assert (qw.n, qw.k, qw.group_size, qw.groups) == (70, 77, 32, 3)
    assert (qw.zero_mode, qw.scale_dtype) == ("asym", "bf16")
    assert qw.codes.shape == (70, 39) and qw.codes.dtype == np.uint8
    assert qw.scales.shape == (70, 3) and qw.scales.dtype == BF16
    assert qw.zeros.shape == (70, 3) and qw.zeros.dtype == np.uint8 and qw.zeros.max() <= 16
    assert qw.perm is None
    assert qw.bias.dtype == np.float16
    np.testing.assert_array_equal(qw.bias, bias)
    assert "n=70" in repr(qw) and "asym" in repr(qw)


@pytest.mark.parametrize("zero,scale_dtype,zeros_dtype", [
    ("sym", "fp16", None), ("asym", "fp32", np.uint8), ("float", "fp16", np.float16), ("float", "bf16", BF16)])
def test_zero_modes(rng, zero, scale_dtype, zeros_dtype):
    qw = w4a16.quantize(random_weight(rng, 8, 64), group_size=16, zero=zero, scale_dtype=scale_dtype)
    assert qw.zero_mode == zero
    assert qw.scales.dtype == ACT_DTYPES.get(scale_dtype, np.dtype(np.float32))
    if zeros_dtype is None:
        assert qw.zeros is None
    else:
        assert qw.zeros.dtype == zeros_dtype and qw.zeros.shape == (8, 4)


def test_dequantize_follows_the_documented_formula(rng):
    for zero in ("sym", "asym", "float"):
        # fp16 scales: (q - z) * s is exact in fp32; the float mode's addition rounds once.
        qw = w4a16.quantize(random_weight(rng, 9, 75), group_size=16, zero=zero, scale_dtype="fp16")
        codes = np.empty((9, 76), np.float64)
        codes[:, 0::2] = qw.codes & 0x0F
        codes[:, 1::2] = qw.codes >> 4
        q = codes[:, :75]
        s = np.repeat(qw.scales.astype(np.float64), 16, axis=1)[:, :75]
        if zero == "sym":
            want = (q - 8) * s
        elif zero == "asym":
            want = (q - np.repeat(qw.zeros.astype(np.float64), 16, axis=1)[:, :75]) * s
        else:
            want = (q - 8) * s + np.repeat(qw.zeros.astype(np.float64), 16, axis=1)[:, :75]
        got = qw.dequantize()
        assert got.dtype == np.float32 and got.shape == (9, 75)
        np.testing.assert_allclose(got, want, rtol=0 if zero != "float" else 2.0**-24, atol=0)


def test_quantization_error_is_small(rng):
    w = random_weight(rng, 64, 256)
    qw = w4a16.quantize(w, group_size=32, zero="asym", scale_dtype="fp32")
    rel = np.linalg.norm(qw.dequantize() - w) / np.linalg.norm(w)
    assert rel < 0.12  # 4-bit RTN over 32-wide groups of N(0,1): about 0.08


def test_views_are_read_only_and_not_copies(rng):
    qw = w4a16.quantize(random_weight(rng, 16, 64), group_size=32, zero="float", scale_dtype="bf16",
                        bias=np.ones(16, np.float32))
    for name in ("codes", "scales", "zeros", "bias"):
        a = getattr(qw, name)
        assert not a.flags.writeable, name
        with pytest.raises(ValueError):
            a[0] = 0
        assert np.shares_memory(a, getattr(qw, name)), f"{name} is a copy"


def test_views_keep_the_weight_alive(rng):
    qw = w4a16.quantize(random_weight(rng, 16, 64), group_size=32, zero="asym", scale_dtype="bf16")
    codes, scales, zeros = qw.codes, qw.scales, qw.zeros
    want = (codes.copy(), scales.astype(np.float32), zeros.copy())
    ref = weakref.ref(qw)
    del qw
    gc.collect()
    assert ref() is not None  # the views own a reference
    junk = [np.full(1024, 0xAB, np.uint8) for _ in range(100)]  # reuse freed memory, if any was freed
    np.testing.assert_array_equal(codes, want[0])
    np.testing.assert_array_equal(scales.astype(np.float32), want[1])
    np.testing.assert_array_equal(zeros, want[2])
    del codes, scales, zeros, junk
    gc.collect()
    assert ref() is None


def test_pack_and_unpack_round_trip(rng):
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64, zero="asym", bias=np.arange(70, dtype=np.float32))
    packed = w4a16.pack(qw)
    assert (packed.n, packed.k, packed.group_size, packed.is_quantized) == (70, 200, 64, True)
    back = packed.unpack()
    for name in ("codes", "scales", "zeros", "bias"):
        np.testing.assert_array_equal(getattr(back, name), getattr(qw, name))


def test_save_load_round_trip(rng, tmp_path):
    path = tmp_path / "model.safetensors"
    a = w4a16.quantize(random_weight(rng, 70, 200), group_size=64, zero="asym", scale_dtype="bf16",
                       bias=rng.standard_normal(70).astype(np.float32))
    b = w4a16.quantize(random_weight(rng, 33, 77), group_size=32, zero="float", scale_dtype="fp16")
    w4a16.save(path, {"model.layers.0.mlp.up_proj": a, "model.layers.0.mlp.down_proj.weight": b})
    assert w4a16.layers(path) == ["model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"]
    assert w4a16.layers(str(path)) == w4a16.layers(path)
    for name, want in (("model.layers.0.mlp.up_proj", a), ("model.layers.0.mlp.down_proj", b)):
        for spelling in (name, name + ".weight"):
            got = w4a16.load(path, spelling)
            assert (got.n, got.k, got.group_size, got.zero_mode, got.scale_dtype) == (
                want.n, want.k, want.group_size, want.zero_mode, want.scale_dtype)
            for field in ("codes", "scales", "zeros", "bias"):
                x, y = getattr(got, field), getattr(want, field)
                assert (x is None) == (y is None)
                if x is not None:
                    assert x.dtype == y.dtype
                    np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8))


@pytest.mark.parametrize("act", ["fp16", "bf16"])
def test_linear(rng, tmp_path, act):
    bias = rng.standard_normal(70).astype(np.float32)
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64, bias=bias)
    w4a16.save(tmp_path / "l.safetensors", {"proj": qw})
    for layer in (w4a16.Linear(qw), w4a16.Linear(w4a16.pack(qw)), w4a16.Linear.from_file(tmp_path / "l.safetensors", "proj")):
        assert (layer.in_features, layer.out_features, layer.group_size) == (200, 70, 64)
        assert isinstance(layer.weight, w4a16.PackedWeight)
        for m in (1, 3, 17):
            x = random_x(rng, m, 200, ACT_DTYPES[act])
            assert_gemm_close(layer(x), x, qw)
            np.testing.assert_array_equal(w4a16.gemm(x, layer).astype(np.float32), layer(x).astype(np.float32))
        assert layer.plan(1, act)["isa"] == w4a16.active_isa()
        assert "in_features=200" in repr(layer)


def test_linear_options_are_used(rng):
    qw = w4a16.quantize(random_weight(rng, 64, 1024), group_size=128)
    layer = w4a16.Linear(qw, strategy="decoupled", partition="splitk", split_k=2, threads=2)
    p = layer.plan(1)
    assert (p["strategy"], p["partition"], p["split_k"]) == ("decoupled", "splitk", 2)
    x = random_x(rng, 1, 1024, np.float16)
    assert_gemm_close(layer(x), x, qw, "decoupled", "splitk")


def test_linear_rejects_other_types():
    with pytest.raises(TypeError):
        w4a16.Linear(np.zeros((4, 4), np.float32))


def test_version_and_isa():
    assert w4a16.__version__.count(".") == 2
    assert w4a16.active_isa() in w4a16.supported_isas()


def _views_equal(a, b):
    for name in ("codes", "scales", "zeros", "perm", "bias"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x.view(np.uint8), y.view(np.uint8)), name


@pytest.mark.parametrize("zero,scale_dtype", [("sym", "fp16"), ("asym", "bf16"), ("float", "fp32"), ("float", "bf16")])
def test_from_arrays_inverts_the_views(rng, zero, scale_dtype):
    bias = rng.standard_normal(33).astype(BF16)
    qw = w4a16.quantize(random_weight(rng, 33, 77), group_size=32, zero=zero, scale_dtype=scale_dtype, bias=bias)
    perm = rng.permutation(77).astype(np.int32)
    for p in (None, perm):
        made = w4a16.QuantizedWeight.from_arrays(qw.codes, qw.scales, qw.zeros, p, qw.bias, k=77, group_size=32, zero=zero)
        assert (made.n, made.k, made.group_size, made.zero_mode, made.scale_dtype) == (33, 77, 32, zero, scale_dtype)
        if p is None:
            _views_equal(made, qw)
            np.testing.assert_array_equal(made.dequantize(), qw.dequantize())
        else:
            np.testing.assert_array_equal(made.perm, perm)
            np.testing.assert_array_equal(made.dequantize()[:, perm], qw.dequantize())  # stored column k is x[perm[k]]
