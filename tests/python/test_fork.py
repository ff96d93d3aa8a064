"""gemm in processes forked by multiprocessing (Linux's default start method before Python 3.14).

The library's thread pool does not survive fork(): its workers exist only in the parent. The
child must rebuild it and run gemm at full thread count (docs/guarantees.md); before the fix a
child forked after a parallel gemm hung forever in its next one. The pool below gives each task
60 s, far more than a gemm of this size needs: a hang fails the test instead of blocking it.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import w4a16
from conftest import assert_gemm_close, random_weight, random_x

_layer = None
_x = None


def _child_gemm(seed: int) -> np.ndarray:
    return w4a16.gemm(_x, _layer, threads=2)


@pytest.mark.skipif(not hasattr(mp, "get_context") or "fork" not in mp.get_all_start_methods(),
                    reason="this platform has no fork start method")
def test_gemm_in_forked_children_after_a_parallel_gemm_in_the_parent(rng):
    global _layer, _x
    qw = w4a16.quantize(random_weight(rng, 260, 2048), group_size=128, zero="asym")
    _layer = w4a16.Linear(qw)
    _x = random_x(rng, 3, 2048, np.float16)
    expected = w4a16.gemm(_x, _layer, threads=2)  # the parent's pool now has live workers
    assert_gemm_close(expected, _x, qw)
    with mp.get_context("fork").Pool(2) as pool:
        results = [pool.apply_async(_child_gemm, (i,)) for i in range(4)]
        for r in results:
            np.testing.assert_array_equal(r.get(timeout=60), expected)
    np.testing.assert_array_equal(w4a16.gemm(_x, _layer, threads=2), expected)
