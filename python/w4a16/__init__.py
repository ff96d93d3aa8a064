"""w4a16: weight-only INT4 quantized matrix multiplication (4-bit weights, 16-bit activations).

    import numpy as np, w4a16
    qw = w4a16.quantize(w, group_size=128, zero="sym")   # w: [N, K] float32/float16/bfloat16
    w4a16.save("layer.safetensors", {"model.layers.0.mlp.up_proj": qw})
    lin = w4a16.Linear.from_file("layer.safetensors", "model.layers.0.mlp.up_proj")
    y = lin(x)                                          # x: [M, K] float16 or bfloat16 -> y [M, N]

Shapes are M x K x N: y[M, N] = x[M, K] @ dequant(W)^T (+ bias), W stored [N, K] like
torch.nn.Linear. Arrays are numpy arrays (ml_dtypes.bfloat16 for bf16) or anything with
__dlpack__ on the CPU (PyTorch tensors, without a copy). docs/python.md has the rules.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _ext
from ._ext import (
    FormatError,
    PackedWeight,
    QuantizedWeight,
    __version__,
    active_isa,
    convert,
    layers,
    load,
    pack,
    quantize,
    save,
    set_isa,
    set_worker_spin_us,
    supported_isas,
    worker_spin_us,
)

__all__ = [
    "FormatError",
    "Linear",
    "PackedWeight",
    "QuantizedWeight",
    "__version__",
    "active_isa",
    "convert",
    "gemm",
    "layers",
    "load",
    "pack",
    "plan",
    "quantize",
    "save",
    "set_isa",
    "set_worker_spin_us",
    "supported_isas",
    "worker_spin_us",
]

for _cls in (QuantizedWeight, PackedWeight):
    try:
        _cls.__module__ = "w4a16"
    except (AttributeError, TypeError):  # pragma: no cover - cosmetic only
        pass


def _weight(w: Any) -> Any:
    return w.weight if isinstance(w, Linear) else w


def _new_output_like(x: Any, n: int) -> Any:
    """A new output for a non-numpy x (a torch tensor): the same framework and dtype, so that a
    torch caller gets a tensor back. None means "let the module allocate a numpy array"."""
    new_empty = getattr(x, "new_empty", None)
    if new_empty is None or not hasattr(x, "__dlpack__") or getattr(x, "ndim", 0) not in (1, 2):
        return None
    shape = (n,) if x.ndim == 1 else (x.shape[0], n)
    return new_empty(shape)


def gemm(
    x: Any,
    w: Union[QuantizedWeight, PackedWeight, "Linear"],
    out: Any = None,
    strategy: str = "auto",
    partition: str = "auto",
    split_k: int = 0,
    threads: int = 0,
) -> Any:
    """y = x @ dequant(W)^T (+ bias), accumulated in fp32, rounded once to x's dtype.

    x: [M, K] (or [K], giving [N]) float16 or bfloat16. w: QuantizedWeight (packed on every
    call), PackedWeight or Linear. out: optional C-contiguous writable array of y's shape and
    x's dtype, not overlapping x; returned. Without out, the result is a new numpy array
    (a new tensor when x is a torch tensor). The GIL is released while the kernels run.
    """
    w = _weight(w)
    if out is None and not _is_numpy(x) and isinstance(w, (QuantizedWeight, PackedWeight)):
        out = _new_output_like(x, w.n)
    return _ext.gemm(x, w, out, strategy, partition, split_k, threads)


def _is_numpy(x: Any) -> bool:
    return type(x).__module__ == "numpy"


def plan(
    m: int,
    w: Union[QuantizedWeight, PackedWeight, "Linear"],
    dtype: str = "bf16",
    strategy: str = "auto",
    partition: str = "auto",
    split_k: int = 0,
    threads: int = 0,
) -> dict:
    """What gemm() would do for M rows: the planner's choice (docs/model.md) as a dict with
    strategy, partition, split_k, threads, vector_threads (pipelined), isa, kernel, x_format,
    workspace_bytes, predicted_ms, bound, breakdown (a list of {name, ms, overlapped}) and notes.
    dtype is the activation dtype, fp16 or bf16."""
    return _ext.plan(m, _weight(w), dtype, strategy, partition, split_k, threads)


class Linear:
    """A quantized linear layer: packed once, called many times. y = layer(x) computes
    x @ dequant(W)^T + bias like torch.nn.Linear, with W [out_features, in_features]."""

    __slots__ = ("_packed", "strategy", "partition", "split_k", "threads")

    def __init__(
        self,
        weight: Union[QuantizedWeight, PackedWeight],
        *,
        strategy: str = "auto",
        partition: str = "auto",
        split_k: int = 0,
        threads: int = 0,
    ) -> None:
        if isinstance(weight, QuantizedWeight):
            weight = pack(weight)
        if not isinstance(weight, PackedWeight):
            raise TypeError(f"Linear needs a QuantizedWeight or PackedWeight, got {type(weight).__name__}")
        self._packed = weight
        self.strategy = strategy
        self.partition = partition
        self.split_k = split_k
        self.threads = threads

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], layer: str, **options: Any) -> "Linear":
        """Loads one quantized layer (module or tensor name) of a w4a16 safetensors file."""
        return cls(load(path, layer), **options)

    @property
    def weight(self) -> PackedWeight:
        return self._packed

    @property
    def in_features(self) -> int:
        return self._packed.k

    @property
    def out_features(self) -> int:
        return self._packed.n

    @property
    def group_size(self) -> int:
        return self._packed.group_size

    def __call__(self, x: Any, out: Optional[Any] = None) -> Any:
        return gemm(x, self._packed, out, self.strategy, self.partition, self.split_k, self.threads)

    def plan(self, m: int, dtype: str = "bf16") -> dict:
        return plan(m, self._packed, dtype, self.strategy, self.partition, self.split_k, self.threads)

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"group_size={self.group_size})"
        )

