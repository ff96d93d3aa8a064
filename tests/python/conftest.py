"""Shared helpers of the Python suite: random weights and the float64 reference with its bound.

The error bound (the same derivation as tests/cpu/kernel_check.hpp):
  * The kernels accumulate in fp32 with per-group accumulators. Any order of n fp32 additions of
    terms t_i errs by at most gamma_n * sum|t_i|, gamma_n = n*u / (1 - n*u), u = 2^-24 (Higham,
    Thm 4.4). With n = K' + groups + 4 additions along any path (K padded to 8 per group, group
    epilogues, split-K reduction, bias) and |t_i| <= |x| * (8*s + |zero term|), the fp32 result is
    within e = gamma_n * (|x| @ A^T + |bias|) of the exact one, A[n, k] = 8*s + |coef| of k's group.
  * Strategies that hold 16-bit weights (dense, decoupled) round each weight once more:
    + u_w * (|x| @ |W|^T), u_w = 2^-8 (bf16) or 2^-11 (fp16).
  * The one rounding to the 16-bit output then adds at most one output ulp of the larger result,
    2^-7 (bf16) or 2^-10 (fp16) relative, plus the smallest subnormal step.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import w4a16

BF16 = np.dtype(ml_dtypes.bfloat16)
ACT_DTYPES = {"fp16": np.dtype(np.float16), "bf16": BF16}

U32 = 2.0**-24
WEIGHT_ROUNDING = {"bf16": 2.0**-8, "fp16": 2.0**-11}
OUTPUT_ULP = {"bf16": 2.0**-7, "fp16": 2.0**-10}
OUTPUT_MIN_STEP = {"bf16": 2.0**-133, "fp16": 2.0**-24}


def act_name(dtype) -> str:
    return "bf16" if np.dtype(dtype) == BF16 else "fp16"


def random_weight(rng, n, k, dtype=np.float32):
    return rng.standard_normal((n, k)).astype(dtype)


def random_x(rng, m, k, dtype):
    return rng.standard_normal((m, k)).astype(np.float32).astype(dtype)


def _group_terms(qw: w4a16.QuantizedWeight) -> np.ndarray:
    """A[n, k] = 8*s + |coef| of column k's group, in input-feature order (float64 [N, K])."""
    s = np.abs(qw.scales.astype(np.float64))  # [N, G]
    if qw.zero_mode == "asym":
        coef = np.abs((8.0 - qw.zeros.astype(np.float64)) * s)
    elif qw.zero_mode == "float":
        coef = np.abs(qw.zeros.astype(np.float64))
    else:
        coef = np.zeros_like(s)
    per_group = 8.0 * s + coef
    stored = np.repeat(per_group, qw.group_size, axis=1)[:, : qw.k]  # [N, K] stored column order
    if qw.perm is None:
        return stored
    original = np.empty_like(stored)
    original[:, qw.perm] = stored
    return original


def reference(x, qw: w4a16.QuantizedWeight):
    """y = x @ dequant(W)^T + bias in float64; x is [M, K] or [K]."""
    x64 = np.atleast_2d(np.asarray(x).astype(np.float64))
    y = x64 @ qw.dequantize().astype(np.float64).T
    if qw.bias is not None:
        y += qw.bias.astype(np.float64)
    return y


def tolerance(x, qw: w4a16.QuantizedWeight, act: str, strategy: str):
    """The elementwise bound |y - reference| <= tol described at the top of this file."""
    xa = np.abs(np.atleast_2d(np.asarray(x).astype(np.float64)))
    groups = -(-qw.k // qw.group_size)
    k_padded = groups * (-(-qw.group_size // 8) * 8)
    n_add = k_padded + groups + 4
    gamma = n_add * U32 / (1.0 - n_add * U32)
    bias = np.zeros(qw.n) if qw.bias is None else np.abs(qw.bias.astype(np.float64))
    e = gamma * (xa @ _group_terms(qw).T + bias)
    if strategy != "fused":
        e += WEIGHT_ROUNDING[act] * (xa @ np.abs(qw.dequantize().astype(np.float64)).T)
    ref = reference(x, qw)
    return e + OUTPUT_ULP[act] * (np.abs(ref) + e) + OUTPUT_MIN_STEP[act]


def assert_gemm_close(y, x, qw, strategy="auto", partition="auto"):
    """Checks y = gemm(x, qw) against the float64 reference with the derived bound."""
    act = act_name(np.asarray(x).dtype)
    if strategy == "auto" or partition == "auto":
        strategy = w4a16.plan(np.atleast_2d(x).shape[0], qw, act, strategy, partition)["strategy"]
    y64 = np.atleast_2d(np.asarray(y).astype(np.float64))
    ref = reference(x, qw)
    tol = tolerance(x, qw, act, strategy)
    bad = ~(np.abs(y64 - ref) <= tol)  # also catches NaN
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        pytest.fail(
            f"{bad.sum()} of {bad.size} outside the bound; first {i}: got {y64[i]}, reference {ref[i]}, bound {tol[i]}"
        )


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture
def isa_reset():
    yield
    w4a16.set_isa("")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes seconds (torch.compile); deselect with -m 'not slow'")
