"""w4a16.torch.tp: shards are exact slices, their errors name the module, and 2 processes over gloo
(row-parallel all_reduces, the gathered head) give the logits and greedy tokens of one
(tp_worker.py under torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import w4a16
from conftest import random_weight

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/test_python.sh with W4A16_TORCH=1)")
import w4a16.torch as wt  # noqa: E402 - after the importorskip
import w4a16.torch.tp as tp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("zero", ["sym", "asym", "float"])
def test_shards_are_exact_slices(rng, zero):
    """Column shards' outputs are the full layer's output columns, bit for bit; the row shards'
    fp32 partials sum to the full product up to fp32 reassociation."""
    n, k, g, world = 96, 256, 32, 2
    bias = rng.standard_normal(n).astype(np.float32)
    qw = w4a16.quantize(random_weight(rng, n, k), group_size=g, zero=zero, bias=bias)
    x = rng.standard_normal((3, k)).astype(np.float32)
    xt = torch.from_numpy(x).bfloat16()
    full = wt.Linear(qw)(xt)
    for style in (tp.COLUMN, tp.GATHER):  # the same slices; gather only adds the all_gather
        cols = [wt.Linear(tp.shard_weight(qw, style, r, world))(xt) for r in range(world)]
        assert torch.equal(torch.cat(cols, dim=1), full)
    w = qw.dequantize().astype(np.float64)
    xd = xt.double().numpy()
    partials = []
    for r in range(world):
        shard = tp.shard_weight(qw, tp.ROW, r, world)
        assert shard.k == k // world and shard.bias is None
        np.testing.assert_array_equal(shard.dequantize(), w[:, r * k // world : (r + 1) * k // world])
        local = wt.Linear(shard)  # held: the handle lives as long as the module
        partials.append(wt._linear_cpu(xt[:, r * k // world : (r + 1) * k // world], local.handle, True))
    summed = (partials[0] + partials[1]).double().numpy()
    exact = xd @ w.T
    assert np.max(np.abs(summed - exact)) <= k * 2.0**-23 * np.max(np.abs(xd) @ np.abs(w).T)


def test_shard_errors_name_the_problem(rng):
    qw = w4a16.quantize(random_weight(rng, 6, 96), group_size=32)
    with pytest.raises(ValueError, match="N divisible"):
        tp.shard_weight(qw, tp.COLUMN, 0, 4)
    with pytest.raises(ValueError, match="multiple of the group size"):
        tp.shard_weight(qw, tp.ROW, 0, 2)  # 48 is not a multiple of 32
    with pytest.raises(ValueError, match="style"):
        tp.shard_weight(qw, "diagonal", 0, 2)
    perm = rng.permutation(64).astype(np.int32)
    q = w4a16.quantize(random_weight(rng, 8, 64), group_size=32)
    permuted = w4a16.QuantizedWeight.from_arrays(q.codes, q.scales, None, perm, None, k=64, group_size=32)
    with pytest.raises(ValueError, match="act-order"):
        tp.shard_weight(permuted, tp.ROW, 0, 2)
    assert tp.shard_weight(permuted, tp.COLUMN, 1, 2).n == 4  # splitting N keeps the permutation


def _torchrun(nproc: int, out: str, weights: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", W4A16_WAIT_POLICY="passive")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           os.path.join(HERE, "tp_worker.py"), "--out", out, "--weights", weights]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_two_processes_give_the_logits_and_tokens_of_one(tmp_path):
    """Tolerance: the row-parallel layers sum their fp32 partials in another order than one
    process's kernel (~1e-7 relative), and the bf16 roundings after them can move a value by one
    bf16 step (2^-8); over 2 layers the logits then agree to a relative RMS << 1e-2. Tokens: the
    same greedy tokens up to the first step whose top two logits are within 0.05 in the one-process
    run (a tie that such a difference may break); none after it is compared."""
    pytest.importorskip("transformers", reason="transformers is not installed (W4A16_TORCH=1)")
    import tp_worker  # noqa: PLC0415 - tests/python is on sys.path (conftest)

    weights = str(tmp_path / "tiny.safetensors")
    tp_worker.write_weights(tp_worker.tiny_llama(), weights)
    _torchrun(1, str(tmp_path / "one.pt"), weights)
    _torchrun(2, str(tmp_path / "two.pt"), weights)
    one = torch.load(tmp_path / "one.pt")
    two = torch.load(tmp_path / "two.pt")
    assert one["world"] == 1 and two["world"] == 2
    assert torch.equal(torch.load(tmp_path / "two.pt.rank1")["logits"], two["logits"])  # the same sums on both ranks
    # 7 projections x 2 layers and the head; o and down row-parallel, the head gathered
    assert len(two["sharded"]) == 15 and len(two["row_parallel"]) == 4 and two["gathered"] == ["lm_head"]
    diff = two["logits"] - one["logits"]
    rel_rms = diff.pow(2).mean().sqrt() / one["logits"].pow(2).mean().sqrt()
    assert rel_rms < 1e-2, f"relative RMS {rel_rms:.3g}"
    for step, (a, b) in enumerate(zip(one["tokens"][6:].tolist(), two["tokens"][6:].tolist())):
        if one["margins"][step] < 0.05:
            break
        assert a == b, f"token {step}: {a} (one process) vs {b} (two); margin {one['margins'][step]:.3f}"


def test_shard_checks_every_module_before_changing_any(rng):
    """In a group of one (nothing is split), shard still checks the plan's modules: an nn.Linear in
    the plan is named, and the model is left as it was."""
    import torch.distributed as dist  # noqa: PLC0415

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj = wt.Linear(w4a16.quantize(random_weight(rng, 64, 64), group_size=32))
            self.o_proj = torch.nn.Linear(64, 64)

    model = Block()
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:0", rank=0, world_size=1)
    try:
        with pytest.raises(ValueError, match="o_proj: tp.shard shards w4a16.torch.Linear"):
            tp.shard(model)
        assert isinstance(model.q_proj, wt.Linear) and isinstance(model.o_proj, torch.nn.Linear)
        with pytest.raises(ValueError, match="plan values"):
            tp.shard(model, plan={"q_proj": "diagonal"})
        with pytest.raises(ValueError, match="no module"):
            tp.shard(model, plan={"gate_proj": tp.COLUMN})
        assert tp.shard(model, plan={"q_proj": tp.COLUMN}) == ["q_proj"]
        # A head planned for gathering that is not a w4a16 layer (unquantized, or tied to a GGUF's
        # Q8_0 embedding) stays whole on every rank: not an error, not in the list.
        model.lm_head = torch.nn.Linear(64, 32)
        assert tp.shard(model, plan={"q_proj": tp.COLUMN, "lm_head": tp.GATHER}) == ["q_proj"]
    finally:
        dist.destroy_process_group()
    row = tp.RowParallelLinear(wt.Linear(w4a16.quantize(random_weight(rng, 8, 64), group_size=32)), None, None)
    with pytest.raises(ValueError, match="plain CPU tensors"):
        row(torch.empty(2, 64, dtype=torch.bfloat16, device="meta"))
