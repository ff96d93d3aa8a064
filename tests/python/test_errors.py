"""Bad input raises a Python exception (never a crash): ValueError for bad arguments and
unsupported requests, w4a16.FormatError (a ValueError) for malformed files, OSError for I/O,
TypeError for an argument of the wrong kind."""

from __future__ import annotations

import faulthandler
import json
import os
import stat
import struct

import numpy as np
import pytest

import w4a16
from conftest import BF16, random_weight, random_x


@pytest.fixture
def qw(rng):
    return w4a16.quantize(random_weight(rng, 70, 200), group_size=64)


@pytest.fixture
def x(rng):
    return random_x(rng, 3, 200, np.float16)


# ---- gemm -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint16, np.int32])
def test_gemm_rejects_non_16_bit_activations(qw, dtype):
    with pytest.raises(ValueError, match="float16 or bfloat16") as e:
        w4a16.gemm(np.ones((3, 200), dtype), qw)
    if dtype == np.float32:
        assert "astype" in str(e.value)  # says how to convert


@pytest.mark.parametrize("shape", [(), (2, 3, 200), (1, 1, 1, 200)])
def test_gemm_rejects_wrong_ndim(qw, shape):
    with pytest.raises(ValueError, match="1-D|2-D"):
        w4a16.gemm(np.ones(shape, np.float16), qw)


@pytest.mark.parametrize("k", [199, 201, 1])
def test_gemm_rejects_k_mismatch(qw, k):
    with pytest.raises(ValueError, match="K="):
        w4a16.gemm(np.ones((3, k), np.float16), qw)
    with pytest.raises(ValueError, match="K="):
        w4a16.gemm(np.ones(k, BF16), w4a16.pack(qw))


@pytest.mark.parametrize("shape", [(3, 71), (4, 70), (70, 3), (210,), (3, 70, 1)])
def test_gemm_rejects_out_of_the_wrong_shape(qw, x, shape):
    with pytest.raises(ValueError, match="out has shape"):
        w4a16.gemm(x, qw, out=np.empty(shape, np.float16))


@pytest.mark.parametrize("dtype", [BF16, np.float32, np.uint16])
def test_gemm_rejects_out_of_another_dtype(qw, x, dtype):
    with pytest.raises(ValueError, match="dtype"):
        w4a16.gemm(x, qw, out=np.empty((3, 70), dtype))


def test_gemm_rejects_non_contiguous_or_read_only_out(qw, x):
    with pytest.raises(ValueError, match="C-contiguous"):
        w4a16.gemm(x, qw, out=np.empty((70, 3), np.float16).T)
    with pytest.raises(ValueError, match="C-contiguous"):
        w4a16.gemm(x, qw, out=np.empty((3, 140), np.float16)[:, ::2])
    ro = np.empty((3, 70), np.float16)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable|read-only"):
        w4a16.gemm(x, qw, out=ro)


def test_gemm_rejects_out_overlapping_x(rng):
    qw = w4a16.quantize(random_weight(rng, 64, 64), group_size=32)
    buf = random_x(rng, 2, 64, np.float16)
    with pytest.raises(ValueError, match="overlap"):
        w4a16.gemm(buf, qw, out=buf)  # y == x
    big = random_x(rng, 1, 96, np.float16)[0]
    with pytest.raises(ValueError, match="overlap"):
        w4a16.gemm(big[:64], qw, out=big[32:])  # partial overlap


@pytest.mark.parametrize("kwargs,match", [
    (dict(strategy="fastest"), "strategy"), (dict(partition="rows"), "partition"),
    (dict(threads=-1), "threads"), (dict(split_k=-2), "split_k"), (dict(strategy=""), "strategy")])
def test_gemm_rejects_bad_options(qw, x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        w4a16.gemm(x, qw, **kwargs)


def test_gemm_rejects_non_arrays_and_non_weights(qw, x):
    with pytest.raises(ValueError, match="array"):
        w4a16.gemm("not an array", qw)
    with pytest.raises(ValueError, match="array"):
        w4a16.gemm(x, qw, out=[[0.0] * 70] * 3)
    with pytest.raises(TypeError, match="QuantizedWeight"):
        w4a16.gemm(x, np.ones((70, 200), np.float16))
    with pytest.raises(TypeError):
        w4a16.gemm(x, qw, threads="two")


def test_plan_rejects_bad_arguments(qw):
    with pytest.raises(ValueError, match="m must be"):
        w4a16.plan(0, qw)
    with pytest.raises(ValueError, match="fp32"):
        w4a16.plan(1, qw, "fp32")
    with pytest.raises(ValueError, match="dtype"):
        w4a16.plan(1, qw, "int4")
    with pytest.raises(ValueError, match="threads"):
        w4a16.plan(1, qw, threads=-4)



def test_sizes_and_counts_past_the_limits_raise_value_error(qw, x):
    # plan(2**62, w) returned a workspace of 0 and M = 2**63 - 1 "internal"; a thread count of
    # 2**31 - 1 made the planner list that many candidates (docs/guarantees.md).
    with pytest.raises(ValueError, match="limit"):
        w4a16.plan(2**62, qw)
    with pytest.raises(ValueError, match="limit"):
        w4a16.plan(2**63 - 1, qw)
    with pytest.raises(ValueError, match="threads"):
        w4a16.plan(1, qw, threads=2**31 - 1)
    with pytest.raises(ValueError, match="threads"):
        w4a16.gemm(x, qw, threads=100000)
    with pytest.raises(ValueError, match="split"):
        w4a16.gemm(x, qw, split_k=2**31 - 1)

# ---- quantize -------------------------------------------------------------------------------------

def test_quantize_rejects_bad_weights(rng):
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        w4a16.quantize(np.ones((4, 64), np.float64))
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        w4a16.quantize(np.ones((4, 64), np.int32))
    with pytest.raises(ValueError, match="2-D"):
        w4a16.quantize(np.ones(64, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        w4a16.quantize(np.ones((2, 4, 64), np.float32))
    w = random_weight(rng, 4, 64)
    w[2, 17] = np.nan
    with pytest.raises(ValueError, match="row 2 column 17"):
        w4a16.quantize(w)
    w[2, 17] = np.inf
    with pytest.raises(ValueError, match="not finite"):
        w4a16.quantize(w)


def test_quantize_rejects_bad_options(rng):
    w = random_weight(rng, 4, 64)
    with pytest.raises(ValueError, match="group size"):
        w4a16.quantize(w, group_size=-1)
    with pytest.raises(ValueError, match="zero mode"):
        w4a16.quantize(w, zero="none")
    with pytest.raises(ValueError, match="dtype"):
        w4a16.quantize(w, scale_dtype="fp8")
    with pytest.raises(ValueError, match="bias"):
        w4a16.quantize(w, bias=np.ones(5, np.float32))
    with pytest.raises(ValueError, match="bias"):
        w4a16.quantize(w, bias=np.ones((4, 1), np.float32))
    with pytest.raises(ValueError, match="bias"):
        w4a16.quantize(w, bias=np.ones(4, np.int64))


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="ISA"):
        w4a16.set_isa("neon")


# ---- files ----------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(OSError, match="cannot open"):
        w4a16.load(tmp_path / "missing.safetensors", "x")
    with pytest.raises(OSError):
        w4a16.layers(tmp_path / "missing.safetensors")
    with pytest.raises(OSError):
        w4a16.Linear.from_file(tmp_path / "missing.safetensors", "x")


def test_missing_layer(qw, tmp_path):
    path = tmp_path / "m.safetensors"
    w4a16.save(path, {"a.proj": qw})
    with pytest.raises(ValueError, match="no quantized layer 'b.proj'"):
        w4a16.load(path, "b.proj")


def test_save_errors(qw, tmp_path):
    with pytest.raises(OSError):
        w4a16.save(tmp_path / "no" / "such" / "dir.safetensors", {"a": qw})
    with pytest.raises(TypeError, match="QuantizedWeight"):
        w4a16.save(tmp_path / "m.safetensors", {"a": w4a16.pack(qw)})
    with pytest.raises(TypeError):
        w4a16.save(tmp_path / "m.safetensors", {1: qw})


def test_load_of_a_fifo_raises_at_once(tmp_path):
    """A FIFO nobody writes to is refused before open() can wait for a writer (it waited forever)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    faulthandler.dump_traceback_later(20, exit=True)  # a regression fails the run instead of hanging it
    try:
        for call in (lambda: w4a16.load(fifo, "x"), lambda: w4a16.layers(fifo),
                     lambda: w4a16.convert(fifo, tmp_path / "out.safetensors")):
            with pytest.raises(OSError, match="it is a FIFO, not a regular file"):
                call()
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_save_never_replaces_a_fifo_or_a_character_device(qw, tmp_path):
    """save() writes a device or FIFO in place, never renaming a regular file over it."""
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    w4a16.save(null, {"a.proj": qw})
    assert null.is_symlink() and os.readlink(null) == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="a FIFO with no reader"):
        w4a16.save(fifo, {"a.proj": qw})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # With a reader, the file goes through the FIFO (it fits in the pipe's buffer) and loads back.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        w4a16.save(fifo, {"a.proj": qw})
        received = b""
        while chunk := os.read(reader, 1 << 16):
            received += chunk
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(received)
    assert np.array_equal(w4a16.load(copy, "a.proj").codes, qw.codes)


def _safetensors(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("content", [
    b"",                                          # empty
    b"\x07\x00\x00",                              # shorter than the 8-byte header length
    struct.pack("<Q", 1 << 40) + b"{}",           # header length beyond the file
    struct.pack("<Q", 5) + b"{nope",              # not JSON
    _safetensors({"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 8]}}, b"1234"),  # past the end
    _safetensors({"t": {"dtype": "Q9", "shape": [4], "data_offsets": [0, 4]}}, b"1234"),  # unknown dtype
])
def test_malformed_files_raise_format_error(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(w4a16.FormatError):
        w4a16.layers(path)
    with pytest.raises(w4a16.FormatError):
        w4a16.load(path, "t")


def test_tampered_layer_metadata_raises_format_error(qw, tmp_path):
    path = tmp_path / "m.safetensors"
    w4a16.save(path, {"a.proj": qw})
    raw = bytearray(path.read_bytes())
    n = struct.unpack("<Q", raw[:8])[0]
    header = raw[8:8 + n].decode()
    assert '\\"zero_mode\\":\\"sym\\"' in header
    raw[8:8 + n] = header.replace('\\"zero_mode\\":\\"sym\\"', '\\"zero_mode\\":\\"xyz\\"').encode()
    path.write_bytes(bytes(raw))
    with pytest.raises(w4a16.FormatError, match="zero_mode"):
        w4a16.load(path, "a.proj")
    assert issubclass(w4a16.FormatError, ValueError)


def test_quantized_weight_has_no_python_constructor():
    with pytest.raises(TypeError):
        w4a16.QuantizedWeight()


def test_from_arrays_errors(rng):
    qw = w4a16.quantize(random_weight(rng, 8, 64), group_size=32, zero="asym")
    make = w4a16.QuantizedWeight.from_arrays
    ok = dict(k=64, group_size=32, zero="asym")
    with pytest.raises(ValueError, match="codes has shape"):
        make(qw.codes[:, :31], qw.scales, qw.zeros, **ok)
    with pytest.raises(ValueError, match="codes must be uint8"):
        make(qw.codes.astype(np.int8), qw.scales, qw.zeros, **ok)
    with pytest.raises(ValueError, match="scales has shape"):
        make(qw.codes, qw.scales[:, :1], qw.zeros, **ok)
    with pytest.raises(ValueError, match="zeros are required"):
        make(qw.codes, qw.scales, None, **ok)
    with pytest.raises(ValueError, match="None in sym mode"):
        make(qw.codes, qw.scales, qw.zeros, k=64, group_size=32, zero="sym")
    with pytest.raises(ValueError, match=r"outside \[0, 16\]"):
        make(qw.codes, qw.scales, np.full_like(qw.zeros, 17), **ok)
    with pytest.raises(ValueError, match="not a permutation"):
        make(qw.codes, qw.scales, qw.zeros, np.zeros(64, np.int32), **ok)
    with pytest.raises(ValueError, match="perm must be int32"):
        make(qw.codes, qw.scales, qw.zeros, np.arange(64), **ok)
    with pytest.raises(ValueError, match="bias has shape"):
        make(qw.codes, qw.scales, qw.zeros, None, np.zeros(7, np.float32), **ok)
    with pytest.raises(ValueError, match="finite"):
        make(qw.codes, np.full_like(qw.scales, np.nan), qw.zeros, **ok)
    with pytest.raises(ValueError, match="group"):
        make(qw.codes, qw.scales, qw.zeros, k=64, group_size=0, zero="asym")
