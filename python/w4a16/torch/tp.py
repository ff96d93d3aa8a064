"""w4a16.torch.tp: tensor parallelism over torch.distributed, sharded the way vLLM shards a Llama.

    import torch.distributed as dist, w4a16.torch as wt, w4a16.torch.tp as tp
    dist.init_process_group("gloo")                  # torchrun sets rank, world size, address
    wt.replace_linears(model, "model.gguf", threads=1)
    tp.shard(model)                                  # this rank's shards, in place
    model.generate(...)                              # every rank runs it with the same input

Column-parallel (split N: rank r keeps output rows [r N/P, (r+1) N/P)) for q/k/v/gate/up: each
rank computes its heads and its slice of the MLP's intermediate features with no communication.
Row-parallel (split K on group boundaries: rank r keeps input columns [r K/P, (r+1) K/P), the
features its column-parallel producer left on it) for o/down: each rank's product is a partial
sum over its K slice, written in fp32, summed across ranks by one all_reduce, then the bias (once)
and the one rounding to x's dtype. So a layer's result differs from one process only by the
order of the fp32 sums (the partials are not rounded to 16 bits before the reduction). Two
all_reduces per decoder layer, as in vLLM and Megatron. Gather-parallel for the output head
(lm_head, vLLM's ParallelLMHead): column-parallel over the vocabulary, then one all_gather of the
logits, so that each rank reads 1/P of the head instead of all of it (Llama-3-8B's head holds as
many weights as 2.4 of its decoder layers: 55 % of what a token reads in bench/llama3_tp.py's
2-layer model).
A head that is not a w4a16 layer (a GGUF's Q8_0 embedding tied to it, a checkpoint's unquantized
head) stays whole on every rank.

What it needs, checked before anything is changed (ValueError naming the module otherwise):
every planned module is a w4a16.torch.Linear; N (column) or K (row) divisible by the world size;
a row shard's K a multiple of the group size (a group never straddles ranks); column shards of an
attention projection whole heads (the parent's head_dim), and key/value heads divisible by the
world size (no replication of KV heads); no act-order permutation on a row-parallel layer (its
groups follow the permuted order, so a rank's input slice would not be a set of whole groups).
transformers' Llama-family attention infers the head count from the projection's width, so the
sharded model runs unchanged with P-times fewer heads per rank.

The collective goes through torch.distributed with the group given (default: the world), so the
backend is the group's: gloo on CPU here. A row-parallel layer runs eagerly (it calls the op's CPU
kernel for its fp32 partials and is not traced by torch.compile). NCCL and CUDA tensors are for when the CUDA backend has
run on a GPU; nothing here assumes the CPU beyond the op itself.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import w4a16

from . import Linear, _linear_cpu

__all__ = ["COLUMN", "ROW", "GATHER", "LLAMA_PLAN", "LLAMA_MLP_PLAN", "RowParallelLinear", "GatherParallelLinear",
           "shard", "shard_weight", "stats"]

COLUMN = "column"
ROW = "row"
GATHER = "gather"  # column-parallel, then the outputs all_gathered: the output head
STYLES = (COLUMN, ROW, GATHER)

# Module-name suffixes -> how to shard (transformers' Llama, Mistral, Qwen2, SmolLM2 naming).
LLAMA_PLAN = {
    "q_proj": COLUMN,
    "k_proj": COLUMN,
    "v_proj": COLUMN,
    "o_proj": ROW,
    "gate_proj": COLUMN,
    "up_proj": COLUMN,
    "down_proj": ROW,
    "lm_head": GATHER,
}
# The MLP alone: for models whose key/value heads do not divide by the world size (SmolLM2-135M has
# 3): attention stays whole on every rank, the MLP (most of the weights) is split.
LLAMA_MLP_PLAN = {"gate_proj": COLUMN, "up_proj": COLUMN, "down_proj": ROW}


class _Stats:
    """Wall time spent in this process's collectives (and their counts), for reports."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.all_reduce_s = 0.0
        self.all_reduces = 0
        self.all_gather_s = 0.0
        self.all_gathers = 0


stats = _Stats()

# The last all_reduce's work object, kept until the next one replaces it (or the interpreter
# clears this module). Why: a gloo worker thread drops its reference to a collective's work after
# wait() has returned, and the holder of the last reference frees the work's tensors, which takes
# the GIL (torch keeps a tensor's Python object alive while C++ holds extra references). On the
# last collective of a script that free can come as the interpreter exits, and a thread taking the
# GIL then aborts the process ("terminate called without an active exception"; 1 run in 15 of the
# two-process test). Holding the work here makes this thread, which has the GIL, free it: one
# partial sum stays alive between layers, not one per layer.
_held_work: list = [None]


def _rows(a: Optional[np.ndarray], r0: int, r1: int) -> Optional[np.ndarray]:
    return None if a is None else np.ascontiguousarray(a[r0:r1])


def _unshardable(n: int, k: int, g: int, has_perm: bool, style: str, world: int) -> Optional[str]:
    """Why a [n, k] weight of group size g cannot be split `style` over `world` ranks, or None."""
    if style not in STYLES:
        return f"style must be one of {', '.join(map(repr, STYLES))}, got {style!r}"
    if style in (COLUMN, GATHER):
        if n % world:
            return f"{style}-parallel needs N divisible by the world size: N={n}, world size {world}"
        return None
    if has_perm:
        return ("row-parallel is not supported with an act-order permutation (perm): its groups follow the "
                "permuted order, so a rank's slice of the input features is not a set of whole groups")
    if k % world or (k // world) % g or (k // world) % 2:
        return (f"row-parallel needs K/world an even multiple of the group size (two codes a byte): K={k}, "
                f"world size {world}, group size {g} (K/world={k / world:g})")
    return None


def shard_weight(qw: w4a16.QuantizedWeight, style: str, rank: int, world: int) -> w4a16.QuantizedWeight:
    """Rank `rank`'s shard of `qw` out of `world`, exactly (codes, scales and zeros sliced, nothing
    requantized). Column and gather: rows [r N/P, (r+1) N/P) with their bias. Row: columns
    [r K/P, (r+1) K/P) and their groups, without the bias (RowParallelLinear adds it after the
    reduction)."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in [0, {world})")
    n, k, g = qw.n, qw.k, qw.group_size
    why = _unshardable(n, k, g, qw.perm is not None, style, world)
    if why:
        raise ValueError(why)
    if style in (COLUMN, GATHER):
        r0, r1 = rank * n // world, (rank + 1) * n // world
        return w4a16.QuantizedWeight.from_arrays(
            _rows(qw.codes, r0, r1), _rows(qw.scales, r0, r1), _rows(qw.zeros, r0, r1), qw.perm,
            _rows(qw.bias, r0, r1), k=k, group_size=g, zero=qw.zero_mode,
        )
    c0, c1 = rank * k // world, (rank + 1) * k // world
    codes = np.ascontiguousarray(qw.codes[:, c0 // 2 : c1 // 2])
    cols = lambda a: None if a is None else np.ascontiguousarray(a[:, c0 // g : c1 // g])  # noqa: E731
    return w4a16.QuantizedWeight.from_arrays(
        codes, cols(qw.scales), cols(qw.zeros), None, None, k=c1 - c0, group_size=g, zero=qw.zero_mode
    )


class RowParallelLinear(nn.Module):
    """A row-parallel shard: y = all_reduce(x_r @ W_r^T in fp32) + bias, rounded once to x's dtype.
    x is this rank's slice of the input features [..., K/P]."""

    def __init__(self, local: Linear, bias: Optional[torch.Tensor], group: Optional[dist.ProcessGroup]) -> None:
        super().__init__()
        self.local = local
        self.register_buffer("bias", bias, persistent=False)
        self.group = group

    @property
    def in_features(self) -> int:
        return self.local.in_features

    @property
    def out_features(self) -> int:
        return self.local.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(x) is not torch.Tensor or not x.is_cpu:
            raise ValueError(f"tp.RowParallelLinear runs eagerly on plain CPU tensors (no torch.compile, no "
                             f"tensor subclass, no CUDA yet), got a {type(x).__name__} on {x.device}")
        y = _linear_cpu(x, self.local.handle, f32_out=True)  # the partial sum over this rank's K slice
        start = time.perf_counter()
        work = dist.all_reduce(y, group=self.group, async_op=True)
        work.wait()
        _held_work[0] = work  # frees the previous one, on this thread (see _held_work)
        stats.all_reduce_s += time.perf_counter() - start
        stats.all_reduces += 1
        if self.bias is not None:
            y += self.bias.float()
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"row-parallel, bias={self.bias is not None}"


class GatherParallelLinear(nn.Module):
    """A gather-parallel shard (the output head): y = all_gather(x @ W_r^T) along the last dim,
    where W_r is this rank's rows [r N/P, (r+1) N/P). Each rank's slice is computed whole, so y is
    what one process gives up to the plan's fp32 summation order."""

    def __init__(self, local: Linear, group: Optional[dist.ProcessGroup]) -> None:
        super().__init__()
        self.local = local
        self.group = group
        self.world = dist.get_world_size(group)

    @property
    def in_features(self) -> int:
        return self.local.in_features

    @property
    def out_features(self) -> int:
        return self.local.out_features * self.world

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(x) is not torch.Tensor or not x.is_cpu:
            raise ValueError(f"tp.GatherParallelLinear runs eagerly on plain CPU tensors (no torch.compile, no "
                             f"tensor subclass, no CUDA yet), got a {type(x).__name__} on {x.device}")
        part = self.local(x).float()  # gloo gathers fp32 on every build; the values are 16-bit exact
        parts = [torch.empty_like(part) for _ in range(self.world)]
        start = time.perf_counter()
        work = dist.all_gather(parts, part, group=self.group, async_op=True)
        work.wait()
        _held_work[0] = work  # as RowParallelLinear: this thread frees the previous one
        stats.all_gather_s += time.perf_counter() - start
        stats.all_gathers += 1
        return torch.cat(parts, dim=-1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"gather-parallel over {self.world} ranks"


def _planned(model: nn.Module, plan: dict[str, str]) -> list[tuple[str, str]]:
    """The modules the plan names, in model order; a gather-planned module that is not a w4a16
    layer (an unquantized or tied head) is left out: it stays whole on every rank."""
    found = [(name, plan[name.rsplit(".", 1)[-1]]) for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] in plan]
    return [(name, style) for name, style in found if style != GATHER or isinstance(model.get_submodule(name), Linear)]


def _check(model: nn.Module, name: str, style: str, module: nn.Module, world: int) -> None:
    if not isinstance(module, Linear):
        raise ValueError(f"{name}: tp.shard shards w4a16.torch.Linear modules (replace_linears first), "
                         f"got {type(module).__name__}")
    packed = module._layer.weight
    n, k, g = packed.n, packed.k, packed.group_size
    has_perm = style == ROW and module.quantized().perm is not None  # only a row split cares
    why = _unshardable(n, k, g, has_perm, style, world)
    if why:
        raise ValueError(f"{name}: {why}")
    if style == COLUMN:
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        head_dim = getattr(parent, "head_dim", None)
        if head_dim and (n // world) % head_dim:
            raise ValueError(f"{name}: {n // head_dim} heads of {head_dim} do not divide by the world size ({world}); "
                             "shard the MLP alone (plan=tp.LLAMA_MLP_PLAN) or use a world size that divides them")


def shard(
    model: nn.Module,
    group: Optional[dist.ProcessGroup] = None,
    *,
    plan: Optional[dict[str, str]] = None,
) -> list[str]:
    """Replaces each w4a16.torch.Linear whose name ends in a key of `plan` (default LLAMA_PLAN) by
    this rank's shard: a w4a16.torch.Linear (column), a RowParallelLinear (row) or a
    GatherParallelLinear (gather; a gather-planned module that is not a w4a16 layer stays whole).
    Every module is checked before any is replaced. Returns the sharded module names. A world of
    one changes nothing."""
    plan = LLAMA_PLAN if plan is None else plan
    for style in plan.values():
        if style not in STYLES:
            raise ValueError(f"plan values must be one of {', '.join(map(repr, STYLES))}, got {style!r}")
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    targets = _planned(model, plan)
    if not targets:
        raise ValueError(f"no module of the model ends in one of {sorted(plan)}")
    for name, style in targets:
        _check(model, name, style, model.get_submodule(name), world)
    if world == 1:
        return [name for name, _ in targets]
    for name, style in targets:
        old: Linear = model.get_submodule(name)
        qw = old.quantized()
        local = Linear(shard_weight(qw, style, rank, world), **old.options())
        if style == ROW:
            bias = None if qw.bias is None else torch.from_numpy(np.asarray(qw.bias, dtype=np.float32))
            new: nn.Module = RowParallelLinear(local, bias, group)
        elif style == GATHER:
            new = GatherParallelLinear(local, group)
        else:
            new = local
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    return [name for name, _ in targets]
