"""The GIL is released while gemm runs: concurrent calls from Python threads give correct results.
(Only correctness is asserted; whether the calls overlapped in time is not.)"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import w4a16
from conftest import ACT_DTYPES, assert_gemm_close, random_weight, random_x


def test_concurrent_gemm_from_python_threads(rng):
    qw = w4a16.quantize(random_weight(rng, 256, 1024), group_size=128, zero="asym")
    layer = w4a16.Linear(qw)
    inputs = [random_x(rng, m, 1024, ACT_DTYPES[act]) for m, act in ((1, "bf16"), (7, "fp16"), (17, "bf16"), (3, "fp16"))]
    results: dict[int, list] = {i: [] for i in range(len(inputs))}
    errors: list[BaseException] = []
    start = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        try:
            start.wait()
            for rep in range(20):
                out = np.full((inputs[i].shape[0], 256), np.nan, dtype=inputs[i].dtype) if rep % 2 else None
                results[i].append(layer(inputs[i], out=out))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for i, x in enumerate(inputs):
        assert len(results[i]) == 20
        for y in results[i]:
            assert_gemm_close(y, x, qw)


def test_quantize_pack_and_load_from_threads(rng, tmp_path):
    weights = [random_weight(rng, 64, 256) for _ in range(4)]
    out: list = [None] * 4

    def work(i: int) -> None:
        qw = w4a16.quantize(weights[i], group_size=64)
        path = tmp_path / f"w{i}.safetensors"
        w4a16.save(path, {f"l{i}": qw})
        out[i] = (qw, w4a16.pack(w4a16.load(path, f"l{i}")))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for qw, packed in out:
        np.testing.assert_array_equal(packed.unpack().codes, qw.codes)


def test_wait_policy_is_set_checked_and_gemm_stays_correct(rng):
    # Passive workers (set_worker_spin_us(0)) sleep between calls and leave the cores to Python;
    # the results are the same either way (docs/threads.md).
    before = w4a16.worker_spin_us()
    qw = w4a16.quantize(random_weight(rng, 200, 640), group_size=64, zero="sym")
    x = random_x(rng, 3, 640, ACT_DTYPES["bf16"])
    try:
        for spin in (0, 300):
            w4a16.set_worker_spin_us(spin)
            assert w4a16.worker_spin_us() == spin
            assert_gemm_close(w4a16.gemm(x, qw, threads=2), x, qw)
        for bad in (-1, 100001):
            with pytest.raises(ValueError, match="microseconds"):
                w4a16.set_worker_spin_us(bad)
    finally:
        w4a16.set_worker_spin_us(before)
