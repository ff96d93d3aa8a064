# Type stubs of the w4a16 package (the public API; docs/python.md describes it).
import os
from typing import Any, Callable, Literal, Mapping, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__all__ = [
    "FormatError",
    "Linear",
    "PackedWeight",
    "QuantizedWeight",
    "__version__",
    "active_isa",
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

__version__: str

_Path = Union[str, os.PathLike[str]]
# A CPU array: numpy (float16, float32, ml_dtypes.bfloat16, ...) or any object with __dlpack__.
_Array = Any
_ZeroMode = Literal["sym", "asym", "float"]
_DType = Literal["fp16", "f16", "float16", "bf16", "bfloat16", "fp32", "f32", "float32"]
_Strategy = Literal["auto", "fused", "decoupled", "pipelined", "dense"]
_Partition = Literal["auto", "dp", "splitk"]
_Isa = Literal["", "scalar", "avx2", "avx512", "avx512bf16"]

class FormatError(ValueError):
    """A file or tensor does not follow the w4a16 format."""

class QuantizedWeight:
    """One INT4-quantized linear layer [N, K]. Immutable; its array views are read-only and keep
    the weight alive."""
    @property
    def n(self) -> int: ...
    @property
    def k(self) -> int: ...
    @property
    def group_size(self) -> int: ...
    @property
    def groups(self) -> int: ...
    @property
    def zero_mode(self) -> Literal["sym", "asym", "float"]: ...
    @property
    def scale_dtype(self) -> Literal["fp16", "bf16", "fp32"]: ...
    @property
    def codes(self) -> npt.NDArray[np.uint8]:
        """[N, ceil(K/2)] uint8; low nibble = even k."""
    @property
    def scales(self) -> np.ndarray:
        """[N, groups] float16, ml_dtypes.bfloat16 or float32 (the scale dtype)."""
    @property
    def zeros(self) -> Optional[np.ndarray]:
        """None (sym), [N, groups] uint8 (asym) or the scale dtype (float)."""
    @property
    def perm(self) -> Optional[npt.NDArray[np.int32]]:
        """[K] act-order permutation, or None."""
    @property
    def bias(self) -> Optional[np.ndarray]:
        """[N] in the bias' own dtype, or None."""
    def dequantize(self) -> npt.NDArray[np.float32]:
        """W as float32 [N, K], in input-feature order."""
    @staticmethod
    def from_arrays(
        codes: Any,
        scales: Any,
        zeros: Any = None,
        perm: Any = None,
        bias: Any = None,
        *,
        k: int,
        group_size: int,
        zero: Literal["sym", "asym", "float"] = "sym",
    ) -> "QuantizedWeight":
        """A weight from its buffers (the inverse of the views; copied and validated): codes
        [N, ceil(K/2)] uint8, scales [N, groups] (fp16/bf16/fp32: the scale dtype), zeros None /
        uint8 / the scale dtype, perm [K] int32 or None, bias [N] or None."""

class PackedWeight:
    """A weight in the CPU kernels' layout: pack once, gemm many times."""
    @property
    def n(self) -> int: ...
    @property
    def k(self) -> int: ...
    @property
    def group_size(self) -> int: ...
    @property
    def is_quantized(self) -> bool: ...
    def unpack(self) -> QuantizedWeight: ...

class Plan(TypedDict):  # stub-only: plan() returns a dict with these keys
    strategy: str
    partition: str
    split_k: int
    threads: int
    isa: str
    kernel: str
    notes: str

def quantize(
    w: _Array,
    group_size: int = 128,
    zero: _ZeroMode = "sym",
    scale_dtype: Optional[_DType] = None,
    bias: Optional[_Array] = None,
) -> QuantizedWeight:
    """RTN-quantizes w [N, K] (float32, float16 or bfloat16); group_size 0 = per-channel;
    scale_dtype defaults to w's dtype; bias is [N]."""

def load(path: _Path, layer: str) -> QuantizedWeight:
    """One quantized layer (module or tensor name) of a w4a16 safetensors file."""

def layers(path: _Path) -> list[str]:
    """The quantized layers (module names) of a w4a16 safetensors file, in file order."""

def save(path: _Path, layers: Mapping[str, QuantizedWeight]) -> None:
    """Writes layers to a new safetensors file (replacing it)."""

def convert(
    src: _Path,
    dst: _Path,
    progress: Optional[Callable[[int, int, str, str], None]] = None,
) -> dict[str, Any]:
    """A GPTQ / AWQ / compressed-tensors checkpoint directory or a GGUF file into one w4a16 file.

    Returns {'source_format', 'quantized_layers', 'copied_tensors', 'dequantized_tensors',
    'raw_tensors', 'layers_by_kind', 'warnings'}. Raises ValueError for what it cannot convert
    exactly (naming the variant and tensor), w4a16.FormatError for a malformed source, OSError
    when a file cannot be read or written.
    """

def pack(w: QuantizedWeight) -> PackedWeight: ...
def gemm(
    x: _Array,
    w: Union[QuantizedWeight, PackedWeight, Linear],
    out: Optional[_Array] = None,
    strategy: _Strategy = "auto",
    partition: _Partition = "auto",
    split_k: int = 0,
    threads: int = 0,
) -> Any:
    """y = x @ dequant(W)^T (+ bias); x [M, K] or [K] float16/bfloat16; returns out, or a new
    array of x's dtype ([M, N], or [N] for a 1-D x)."""

def plan(
    m: int,
    w: Union[QuantizedWeight, PackedWeight, Linear],
    dtype: Literal["fp16", "bf16"] = "bf16",
    strategy: _Strategy = "auto",
    partition: _Partition = "auto",
    split_k: int = 0,
    threads: int = 0,
) -> Plan: ...
def set_isa(name: _Isa) -> None:
    """Caps the kernels' instruction set ("" resets to W4A16_ISA / the CPU's best)."""

def set_worker_spin_us(microseconds: int) -> None:
    """How long w4a16's worker threads spin for the next call before sleeping (0 = passive)."""

def worker_spin_us() -> int: ...
def active_isa() -> str: ...
def supported_isas() -> list[str]: ...

class Linear:
    """A quantized linear layer: y = layer(x) = x @ dequant(W)^T + bias."""

    strategy: _Strategy
    partition: _Partition
    split_k: int
    threads: int
    def __init__(
        self,
        weight: Union[QuantizedWeight, PackedWeight],
        *,
        strategy: _Strategy = "auto",
        partition: _Partition = "auto",
        split_k: int = 0,
        threads: int = 0,
    ) -> None: ...
    @classmethod
    def from_file(cls, path: _Path, layer: str, **options: Any) -> Linear: ...
    @property
    def weight(self) -> PackedWeight: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...
    @property
    def group_size(self) -> int: ...
    def __call__(self, x: _Array, out: Optional[_Array] = None) -> Any: ...
    def plan(self, m: int, dtype: Literal["fp16", "bf16"] = "bf16") -> Plan: ...
