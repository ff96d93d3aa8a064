"""Arrays through DLPack: any object with __dlpack__ (numpy's own, a minimal wrapper, PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

import w4a16
from conftest import assert_gemm_close, random_weight, random_x


class DLPackOnly:
    """Exposes nothing but the DLPack protocol of a numpy array (no buffer, no __array__)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, *args, **kwargs):
        return self._array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_numpy_arrays_implement_dlpack():
    assert hasattr(np.zeros(1), "__dlpack__")


def test_dlpack_only_objects(rng):
    w = random_weight(rng, 70, 200)
    qw = w4a16.quantize(DLPackOnly(w), group_size=64)
    np.testing.assert_array_equal(qw.codes, w4a16.quantize(w, group_size=64).codes)
    x = random_x(rng, 3, 200, np.float16)
    out = np.full((3, 70), np.nan, np.float16)
    y = w4a16.gemm(DLPackOnly(x), qw, out=DLPackOnly(out))
    assert isinstance(y, DLPackOnly)
    assert_gemm_close(out, x, qw)  # written in place: no copy of out
    y2 = w4a16.gemm(DLPackOnly(x), qw)  # no out: a numpy result
    assert isinstance(y2, np.ndarray) and y2.dtype == np.float16
    np.testing.assert_array_equal(y2, out)


def test_torch_tensors_without_copy(rng):
    torch = pytest.importorskip("torch")
    w = torch.from_numpy(random_weight(rng, 70, 200))
    qw = w4a16.quantize(w.to(torch.bfloat16), group_size=64, bias=torch.zeros(70))
    assert qw.scale_dtype == "bf16"
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.randn(3, 200).to(dtype)
        out = torch.full((3, 70), float("nan"), dtype=dtype)
        assert w4a16.gemm(x, qw, out=out) is out
        y = w4a16.gemm(x, qw)
        assert isinstance(y, torch.Tensor) and y.dtype == dtype and tuple(y.shape) == (3, 70)
        assert torch.equal(y, out)
        ref = x.double() @ torch.from_numpy(qw.dequantize()).double().T
        assert torch.allclose(y.double(), ref, rtol=2**-6, atol=1e-2)
        y1 = w4a16.Linear(qw)(x[0])
        assert tuple(y1.shape) == (70,)
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        w4a16.gemm(torch.randn(3, 200), qw)
    xt = torch.randn(200, 3).to(torch.float16).T  # non-contiguous: copied via .contiguous()
    assert w4a16.gemm(xt, qw).shape == (3, 70)


def test_non_contiguous_dlpack_objects_are_refused_not_misread(rng):
    qw = w4a16.quantize(random_weight(rng, 70, 200), group_size=64)
    x = random_x(rng, 200, 3, np.float16).T  # strided: a DLPack-only object cannot be copied for us
    with pytest.raises(ValueError, match="not C-contiguous"):
        w4a16.gemm(DLPackOnly(x), qw)
    with pytest.raises(ValueError, match="not C-contiguous"):
        w4a16.gemm(random_x(rng, 3, 200, np.float16), qw, out=DLPackOnly(np.empty((70, 3), np.float16).T))
