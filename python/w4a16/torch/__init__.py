"""w4a16.torch: the W4A16 CPU kernels as a PyTorch op and nn.Module (needs torch; `import w4a16`
does not import this module).

    import torch, w4a16.torch
    lin = w4a16.torch.Linear.from_linear(nn_linear, group_size=128, zero="sym")   # RTN
    y = lin(x)                                   # x [..., K] bf16/fp16 CPU tensor -> y [..., N]
    y = torch.ops.w4a16.linear(x, lin.handle)    # the op itself
    w4a16.torch.replace_linears(model, "model.gguf")   # or a w4a16 file, a GPTQ/AWQ/CT directory

The op. `w4a16::linear(Tensor x, int weight) -> Tensor` is defined through torch.library with a
fake (meta) kernel, so torch.compile(fullgraph=True) traces it as one node and
torch.library.opcheck passes, and a CPU kernel: C++ (w4a16._torch_ops, torch's stable ABI; built
with the package where torch was importable) or else the Python _linear_cpu below; KERNEL says
which. The packed weight is a C++ object (w4a16.PackedWeight), not a tensor, so the op takes an
opaque handle: an int that Linear registers when it is made and unregisters when it is collected,
both in _WEIGHTS (for the Python and fake kernels) and in w4a16._ext's registry (for the C++
kernel). An int is a plain schema argument: dynamo bakes it into the graph as a constant (one per
module) and the fake kernel reads N without touching data. Bias, if any, is part of the weight
(added in fp32 before the one rounding, in the bias' own dtype), so the op has no bias argument.
The weight is frozen; x gets its gradient (dy @ W, W dequantized for the backward call), so
adapters trained over a w4a16 layer get theirs. `w4a16::_linear` is the same op without the
autograd formula, which Linear calls when no gradient is wanted (the formula's Python kernel
costs ~3.5 us a call).

Tensor parallelism over torch.distributed: w4a16.torch.tp (column- and row-parallel shards).

Threads: with the C++ kernel (KERNEL == "c++") the gemm runs its parallel parts on torch's own
intra-op threads, so torch.set_num_threads(t) sets both and one pool serves the model (two pools
whose idle threads spin on the same cores slow each other down); a Linear's threads= (0 = the
planner's choice up to torch's thread count) caps it. use_torch_threads(False) puts them back on w4a16's own pool, where threads= (0 =
the planner's choice, up to every CPU) alone decides, as it does under the Python kernel.
docs/threads.md has the measurements.

State dict of a Linear (all CPU tensors; docs/python.md, "PyTorch"):
    layout  int64 [3]            (N, K, group_size)
    codes   uint8 [N, ceil(K/2)] low nibble = even k
    scales  [N, groups]          float16 / bfloat16 / float32: the scale dtype
    zeros   [N, groups]          absent (sym), uint8 (asym) or the scale dtype (float zero)
    perm    int32 [K]            act-order permutation, absent when there is none
    bias    [N]                  in its own dtype, absent when there is none
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import tempfile
import weakref
from typing import Any, Optional, Union

import ml_dtypes
import numpy as np
import torch
from torch import _C, nn

import w4a16

from .. import _ext

__all__ = ["Linear", "replace_linears", "gguf_module_name", "use_torch_threads"]

# ---- The op and its weight table ----------------------------------------------------------------

# handle -> the plain-Python w4a16.Linear (packed weight + gemm options) that the op runs.
_WEIGHTS: dict[int, w4a16.Linear] = {}
_next_handle = itertools.count(1)

_lib = torch.library.Library("w4a16", "DEF")
_lib.define("linear(Tensor x, int weight) -> Tensor")
# The same op without the autograd formula: Linear's call when no gradient is wanted, so that it
# skips the Python autograd kernel that register_autograd puts in front of `linear` (~3.5 us).
_lib.define("_linear(Tensor x, int weight) -> Tensor")


def _publish(handle: int, layer: w4a16.Linear) -> None:
    """Makes `handle` name `layer` for both kernels: the C++ one reads _ext's registry (which waits
    for calls using the old entry), the Python one _WEIGHTS, which also keeps the weight alive."""
    _ext._register_linear(handle, layer._packed, layer.strategy, layer.partition, layer.split_k, layer.threads)
    _WEIGHTS[handle] = layer  # releases the old weight only after the registry stopped naming it


def _forget(handle: int) -> None:
    _ext._unregister_linear(handle)
    _WEIGHTS.pop(handle, None)


def _weight_of(handle: int) -> w4a16.Linear:
    layer = _WEIGHTS.get(handle)
    if layer is None:
        raise ValueError(f"w4a16::linear: no weight has handle {handle} (its Linear was deleted?)")
    return layer


def _check_input(x: torch.Tensor, layer: w4a16.Linear) -> None:
    """What the C++ side checks, said before tracing reaches it (the fake kernel runs no C++)."""
    if x.dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(
            f"w4a16::linear: x must be float16 or bfloat16 (activations are 16-bit), got {x.dtype}; "
            "convert it first, e.g. x.bfloat16() or model.to(torch.bfloat16)"
        )
    if x.dim() == 0 or x.shape[-1] != layer.in_features:
        raise ValueError(
            f"w4a16::linear: x has shape {tuple(x.shape)} but the weight has K={layer.in_features} "
            "(x must be [..., K])"
        )


_ACT_DTYPES = (torch.bfloat16, torch.float16)


def _linear_cpu(x: torch.Tensor, weight: int, f32_out: bool = False) -> torch.Tensor:
    # At decode this function is most of the op's cost over the kernel (bench/torch_overhead.py):
    # each attribute and call here is counted, so the checks run once and the messages only on a
    # failure.
    layer = _WEIGHTS.get(weight)
    if layer is None:
        layer = _weight_of(weight)  # raises, naming the handle
    packed = layer._packed
    k, n = packed.k, packed.n
    shape = x.shape
    if x.dtype not in _ACT_DTYPES or len(shape) == 0 or shape[-1] != k:
        _check_input(x, layer)  # raises with the message
    x2 = x if len(shape) == 2 else x.reshape(-1, k)  # [M, K]; a view when it can be
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    m = x2.shape[0]
    out = x2.new_empty((m, n), dtype=torch.float32) if f32_out else x2.new_empty((m, n))  # [M, N], CPU
    if m > 0:
        # By address, not DLPack (~2 us a tensor): x2 is a contiguous [M, K] CPU tensor of a
        # 16-bit dtype (checked above; the op is registered for CPU only), out a fresh one.
        _ext._gemm_ptr(
            x2.data_ptr(),
            x.dtype == torch.bfloat16,
            m,
            k,
            packed,
            out.data_ptr(),
            f32_out,
            layer.strategy,
            layer.partition,
            layer.split_k,
            layer.threads,
        )
    return out if len(shape) == 2 else out.view(*shape[:-1], n)


def _linear_fake(x: torch.Tensor, weight: int) -> torch.Tensor:
    layer = _weight_of(weight)
    _check_input(x, layer)
    return x.new_empty((*x.shape[:-1], layer.out_features))


# The CPU kernel: C++ (w4a16._torch_ops, built with the package where torch was importable; it
# registers itself for both ops on import) or, failing that, _linear_cpu above.
try:
    from .. import _torch_ops  # imported for its registration (and use_torch_threads)
except ImportError as _error:
    KERNEL = "python"
    KERNEL_NOTE = f"the C++ kernel is not available ({_error}); the op runs its Python kernel"
    _lib.impl("linear", _linear_cpu, "CPU")
    _lib.impl("_linear", _linear_cpu, "CPU")
else:
    KERNEL = "c++"
    KERNEL_NOTE = "the op runs its C++ kernel (w4a16._torch_ops)"


def use_torch_threads(flag: bool = True) -> bool:
    """Where the C++ kernel runs a gemm's parallel parts: on torch's intra-op threads (True, the
    default: torch.set_num_threads sets how many, a Linear's threads caps them) or on w4a16's own
    pool (False: the Linear's threads alone). Returns the previous setting. The Python kernel
    (KERNEL == "python") always uses w4a16's pool; there this returns False and changes nothing."""
    if KERNEL != "c++":
        return False
    return _torch_ops.use_torch_threads(bool(flag))


torch.library.register_fake("w4a16::linear", _linear_fake, lib=_lib)
torch.library.register_fake("w4a16::_linear", _linear_fake, lib=_lib)


# Gradients: the weight is frozen (INT4 codes have none); x's is dy @ W with W dequantized to fp32
# for the call (N*K*4 bytes, freed after), so adapters trained over a w4a16 layer (LoRA) get their
# gradients through it. Without this torch would warn and silently give x no gradient.
def _linear_setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - torch's signature
    ctx.weight = inputs[1]


def _linear_backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN201
    w = torch.from_numpy(_weight_of(ctx.weight)._packed.unpack().dequantize())  # [N, K] fp32
    return (grad.float() @ w).to(grad.dtype), None


torch.library.register_autograd("w4a16::linear", _linear_backward, setup_context=_linear_setup_context, lib=_lib)

_linear_op = torch.ops.w4a16.linear.default
# Linear's call where _plain_eager holds: the C++ kernel of `_linear` through the dispatcher, by
# the overload's C++ callable (`_op`: one Python frame less, ~0.2 us); None with the Python kernel.
_no_grad_kernel = getattr(torch.ops.w4a16._linear.default, "_op", torch.ops.w4a16._linear.default) if KERNEL == "c++" else None

# _plain_eager's checks, bound once (attribute lookups are a tenth of their cost).
_Tensor = torch.Tensor
_is_compiling = torch.compiler.is_compiling
_dispatch_modes = _C._len_torch_dispatch_stack
_function_mode_on = _C._is_torch_function_mode_enabled
_profiler_on = torch.autograd._profiler_enabled
_tracing_state = _C._get_tracing_state


def _plain_eager(x: torch.Tensor) -> bool:
    """Whether nothing but this call would see the op: a plain CPU tensor that needs no gradient,
    with no compiler, tracer, torch-function or dispatch mode, or profiler active. Then Linear runs
    the op's CPU kernel without the autograd kernel (`_linear`; or the Python kernel without the
    dispatcher, ~2.7 us a call at decode: bench/torch_overhead.py); otherwise it calls the op, so
    that torch.compile, export, make_fx, FlopCounterMode and the profiler see `w4a16::linear`."""
    return (
        type(x) is _Tensor
        and x.is_cpu
        and not x.requires_grad
        and not _is_compiling()
        and _dispatch_modes() == 0
        and not _function_mode_on()
        and not _profiler_on()
        and _tracing_state() is None
    )


# ---- The module ---------------------------------------------------------------------------------

_STATE_KEYS = ("layout", "codes", "scales", "zeros", "perm", "bias")
_REQUIRED_KEYS = ("layout", "codes", "scales")


def _tensor(a: Optional[np.ndarray]) -> Optional[torch.Tensor]:
    """A torch copy of a read-only numpy view (ml_dtypes.bfloat16 becomes torch.bfloat16)."""
    if a is None:
        return None
    if a.dtype == np.dtype(ml_dtypes.bfloat16):
        return torch.from_numpy(a.view(np.uint16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def weight_state(qw: w4a16.QuantizedWeight) -> dict[str, torch.Tensor]:
    """The state_dict entries of a weight (module docstring); absent entries are left out."""
    state = {
        "layout": torch.tensor([qw.n, qw.k, qw.group_size], dtype=torch.int64),
        "codes": _tensor(qw.codes),
        "scales": _tensor(qw.scales),
        "zeros": _tensor(qw.zeros),
        "perm": _tensor(qw.perm),
        "bias": _tensor(qw.bias),
    }
    return {k: v for k, v in state.items() if v is not None}


def weight_from_state(state: dict[str, torch.Tensor]) -> w4a16.QuantizedWeight:
    """The inverse of weight_state: the zero mode follows from zeros (absent: sym; uint8: asym;
    a float dtype: float zero); the C++ constructor validates everything else."""
    layout = state["layout"]
    if layout.shape != (3,):
        raise ValueError(f"layout must be int64 [3] (N, K, group_size), got shape {tuple(layout.shape)}")
    n, k, group_size = (int(v) for v in layout.tolist())
    codes = state["codes"].detach().cpu()
    if codes.dim() != 2 or codes.shape[0] != n:
        raise ValueError(f"codes has shape {tuple(codes.shape)} but layout says N={n}")
    zeros = state.get("zeros")
    zero = "sym" if zeros is None else ("asym" if zeros.dtype == torch.uint8 else "float")
    cpu = lambda t: None if t is None else t.detach().cpu()  # noqa: E731
    return w4a16.QuantizedWeight.from_arrays(
        codes, cpu(state["scales"]), cpu(zeros), cpu(state.get("perm")), cpu(state.get("bias")),
        k=k, group_size=group_size, zero=zero,
    )


class Linear(nn.Module):
    """A W4A16 linear layer: y = x @ dequant(W)^T (+ bias) for x [..., in_features] bf16/fp16 on
    the CPU, through torch.ops.w4a16.linear. Holds the packed weight (no nn.Parameter); its
    state_dict is the QuantizedWeight's buffers (module docstring). Options are gemm's."""

    def __init__(
        self,
        weight: Union[w4a16.QuantizedWeight, w4a16.PackedWeight],
        *,
        strategy: str = "auto",
        partition: str = "auto",
        split_k: int = 0,
        threads: int = 0,
    ) -> None:
        super().__init__()
        self._layer = w4a16.Linear(weight, strategy=strategy, partition=partition, split_k=split_k, threads=threads)
        self.handle = next(_next_handle)
        _publish(self.handle, self._layer)
        weakref.finalize(self, _forget, self.handle)

    # -- makers
    @classmethod
    def from_linear(
        cls, linear: nn.Linear, group_size: int = 128, zero: str = "sym", scale_dtype: Optional[str] = None, **options: Any
    ) -> "Linear":
        """RTN-quantizes an nn.Linear's weight (w4a16.quantize; its bias is kept in its dtype)."""
        weight = linear.weight.detach().cpu()
        bias = None if linear.bias is None else linear.bias.detach().cpu()
        return cls(w4a16.quantize(weight, group_size, zero, scale_dtype, bias), **options)

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], layer: str, **options: Any) -> "Linear":
        """One layer (module or tensor name) of a w4a16 safetensors file."""
        return cls(w4a16.load(path, layer), **options)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], prefix: str = "", **options: Any) -> "Linear":
        return cls(weight_from_state({k: state[prefix + k] for k in _STATE_KEYS if prefix + k in state}), **options)

    # -- what it holds
    @property
    def packed(self) -> w4a16.PackedWeight:
        return self._layer.weight

    def quantized(self) -> w4a16.QuantizedWeight:
        """The QuantizedWeight, unpacked bit for bit (a copy)."""
        return self._layer.weight.unpack()

    @property
    def in_features(self) -> int:
        return self._layer.in_features

    @property
    def out_features(self) -> int:
        return self._layer.out_features

    @property
    def group_size(self) -> int:
        return self._layer.group_size

    @property
    def threads(self) -> int:
        return self._layer.threads

    @threads.setter
    def threads(self, value: int) -> None:
        layer = w4a16.Linear(self._layer.weight, **{**self.options(), "threads": value})
        _publish(self.handle, layer)  # checks the value (ValueError) before anything changes
        self._layer = layer

    def plan(self, m: int, dtype: str = "bf16") -> dict:
        return self._layer.plan(m, dtype)

    def options(self) -> dict[str, Any]:
        """The gemm options this layer runs with (the keyword arguments of the constructor)."""
        layer = self._layer
        return dict(strategy=layer.strategy, partition=layer.partition, split_k=layer.split_k, threads=layer.threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _plain_eager(x):
            return _linear_op(x, self.handle)
        if _no_grad_kernel is None:
            return _linear_cpu(x, self.handle)  # the op's Python kernel, without the dispatcher
        try:
            return _no_grad_kernel(x, self.handle)
        except RuntimeError:
            _check_input(x, self._layer)  # the ValueError that every other w4a16 entry point raises
            raise

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"

    # -- state_dict: the weight's buffers as tensors
    def _save_to_state_dict(self, destination, prefix, keep_vars):  # noqa: ANN001 - nn.Module's hook
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, value in weight_state(self.quantized()).items():
            destination[prefix + name] = value

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # noqa: ANN001, E501
        state = {k: state_dict[prefix + k] for k in _STATE_KEYS if prefix + k in state_dict}
        missing = [prefix + k for k in _REQUIRED_KEYS if k not in state]
        missing_keys.extend(missing)
        if strict:
            unexpected_keys.extend(
                key for key in state_dict if key.startswith(prefix) and key[len(prefix):] not in _STATE_KEYS
            )
        if missing:
            return
        try:
            qw = weight_from_state(state)
        except ValueError as e:
            error_msgs.append(f"w4a16 weight {prefix!r}: {e}")
            return
        if (qw.n, qw.k) != (self.out_features, self.in_features):
            error_msgs.append(
                f"size mismatch for {prefix}codes: the checkpoint's weight is [{qw.n}, {qw.k}], this Linear is "
                f"[{self.out_features}, {self.in_features}] (out_features, in_features)"
            )
            return
        self._layer = w4a16.Linear(qw, **self.options())
        _publish(self.handle, self._layer)  # compiled graphs hold the handle, so they see the new weight


# ---- replace_linears ----------------------------------------------------------------------------

# llama.cpp's tensor names of the llama architecture -> Hugging Face module names (transformers'
# LlamaForCausalLM; the same names in Mistral/Qwen2/SmolLM2 and most llama-like models).
GGUF_LLAMA_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_LLAMA_TOP_NAMES = {"output": "lm_head", "token_embd": "model.embed_tokens"}


def gguf_module_name(name: str) -> Optional[str]:
    """The Hugging Face module of a llama GGUF tensor or layer name (blk.3.attn_q[.weight] ->
    model.layers.3.self_attn.q_proj), or None when the name is not in the map."""
    name = name.removesuffix(".weight")
    if name in GGUF_LLAMA_TOP_NAMES:
        return GGUF_LLAMA_TOP_NAMES[name]
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in GGUF_LLAMA_BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{GGUF_LLAMA_BLOCK_NAMES[parts[2]]}"
    return None


def _safetensors_metadata(path: str) -> dict:
    """The __metadata__ of a safetensors file: an 8-byte little-endian header size, then JSON."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size)).get("__metadata__", {})


def unpermute_gguf_rows(qw: w4a16.QuantizedWeight, heads: int) -> w4a16.QuantizedWeight:
    """Undoes llama.cpp's q/k row permutation, exactly (rows of codes, scales, zeros and bias are
    reordered; nothing is requantized).

    llama.cpp's converter stores W_q and W_k so that RoPE rotates adjacent pairs (ggml's NORM
    mode): per head of D rows, GGUF row 2i + j is Hugging Face row j * D/2 + i (i < D/2, j < 2),
    i.e. gguf = hf.reshape(heads, 2, D/2, K).swapaxes(1, 2). Hugging Face's rotate-half wants the
    original order back: hf row (h, j, i) <- gguf row (h, i, j)."""
    if heads <= 0 or qw.n % (2 * heads):
        raise ValueError(f"cannot un-permute {qw.n} rows over {heads} heads (rows must be heads x an even head size)")
    rows = np.arange(qw.n).reshape(heads, qw.n // heads // 2, 2).swapaxes(1, 2).reshape(-1)  # [N] gguf row of hf row
    take = lambda a: None if a is None else np.ascontiguousarray(a[rows])  # noqa: E731
    return w4a16.QuantizedWeight.from_arrays(
        take(qw.codes), take(qw.scales), take(qw.zeros), qw.perm, take(qw.bias),
        k=qw.k, group_size=qw.group_size, zero=qw.zero_mode,
    )


class _Source:
    """A w4a16 file to read layers from, and how its names and rows map to a transformers model."""

    def __init__(self, path: str, gguf: Optional[dict]) -> None:
        self.path = path
        self.gguf = gguf  # the GGUF metadata (JSON in the converted file), None for other sources

    def module_name(self, layer: str) -> Optional[str]:
        return gguf_module_name(layer) if self.gguf is not None else layer.removesuffix(".weight")

    def load(self, layer: str, module_name: str) -> w4a16.QuantizedWeight:
        qw = w4a16.load(self.path, layer)
        if self.gguf is not None and module_name.endswith(("self_attn.q_proj", "self_attn.k_proj")):
            arch = self.gguf.get("general.architecture", "llama")
            heads = self.gguf.get(f"{arch}.attention.head_count")
            if heads is None:
                raise ValueError(f"{module_name}: the GGUF file has no {arch}.attention.head_count, needed to un-permute q/k")
            if module_name.endswith("k_proj"):
                heads = self.gguf.get(f"{arch}.attention.head_count_kv", heads)
            qw = unpermute_gguf_rows(qw, int(heads))
        return qw


def _is_gguf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


def _open_source(source: Union[str, os.PathLike], scratch: str) -> _Source:
    path = os.fspath(source)
    if not os.path.isdir(path) and not _is_gguf(path):
        return _Source(path, None)  # a w4a16 safetensors file
    converted = os.path.join(scratch, "converted.w4a16.safetensors")
    report = w4a16.convert(path, converted)
    if report["source_format"] != "gguf":
        return _Source(converted, None)
    gguf = json.loads(_safetensors_metadata(converted).get("gguf", "{}"))
    arch = gguf.get("general.architecture", "llama")
    if arch != "llama":
        raise ValueError(
            f"{path}: GGUF architecture {arch!r}; replace_linears knows llama's tensor names and q/k row order only"
        )
    return _Source(converted, gguf)


def replace_linears(
    model: nn.Module, source: Union[str, os.PathLike], *, strict: bool = True, **options: Any
) -> list[str]:
    """Swaps each nn.Linear of `model` that `source` quantizes for a w4a16.torch.Linear holding that
    layer exactly; returns the replaced module names. `source` is a w4a16 safetensors file, a GPTQ /
    AWQ / compressed-tensors checkpoint directory, or a llama GGUF file (the last three through
    w4a16.convert into a temporary file first; convert is exact).

    Names: a w4a16 file and a GPTQ/AWQ/CT checkpoint use the model's own module names; a GGUF file's
    (blk.N.attn_q, ...) go through the llama map (gguf_module_name), and its q/k rows are
    un-permuted for Hugging Face's RoPE. Layers the source leaves unquantized stay as they are; a
    quantized embedding (token_embd) is left to the model. The model's bias is kept (in its dtype)
    when the source has none. Errors (ValueError naming the module, nothing replaced): a layer
    whose shape differs from the module's, or (strict) a quantized layer with no nn.Linear in the
    model. options: gemm's (strategy, partition, split_k, threads)."""
    modules = dict(model.named_modules())
    with tempfile.TemporaryDirectory(prefix="w4a16-") as scratch:
        src = _open_source(source, scratch)
        replacements: list[tuple[str, Linear]] = []
        for layer in w4a16.layers(src.path):
            name = src.module_name(layer)
            module = modules.get(name) if name is not None else None
            if isinstance(module, nn.Embedding):
                continue
            if not isinstance(module, nn.Linear):
                if strict:
                    what = "no module" if module is None else f"a {type(module).__name__}, not an nn.Linear"
                    raise ValueError(
                        f"replace_linears: source layer {layer!r} maps to module {name!r}, but the model has {what}"
                    )
                continue
            qw = src.load(layer, name)
            if (qw.n, qw.k) != (module.out_features, module.in_features):
                raise ValueError(
                    f"replace_linears: module {name!r} is nn.Linear(in_features={module.in_features}, "
                    f"out_features={module.out_features}) but source layer {layer!r} is [{qw.n}, {qw.k}] "
                    "(out_features, in_features)"
                )
            if qw.bias is None and module.bias is not None:
                qw = w4a16.QuantizedWeight.from_arrays(
                    qw.codes, qw.scales, qw.zeros, qw.perm, module.bias.detach().cpu(),
                    k=qw.k, group_size=qw.group_size, zero=qw.zero_mode,
                )
            replacements.append((name, Linear(qw, **options)))
    for name, new in replacements:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
    return [name for name, _ in replacements]

