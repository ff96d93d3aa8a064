"""w4a16.torch: the torch op, the nn.Module, its state_dict and replace_linears.

Skipped where torch is not installed (scripts/test_python.sh installs it with W4A16_TORCH=1, which
scripts/test.sh --all sets); test_optional_torch.py checks, torch or not, that `import w4a16`
does not import it. Results
are checked bit for bit against w4a16.gemm (the same kernels through the numpy path) and against
the float64 reference with the bound derived in conftest.py.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import w4a16
from conftest import BF16, assert_gemm_close, random_weight


torch = pytest.importorskip("torch", reason="torch is not installed (scripts/test_python.sh with W4A16_TORCH=1)")
nn = torch.nn
import w4a16.torch as wt  # noqa: E402 - after the importorskip

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def to_numpy(t: "torch.Tensor") -> np.ndarray:
    """A numpy copy of a CPU tensor (bfloat16 as ml_dtypes.bfloat16)."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(BF16).copy()
    return t.numpy().copy()


def random_x(rng, shape, dtype) -> "torch.Tensor":
    """Standard normal activations, never zero (a zero would hide a dropped term)."""
    x = rng.standard_normal(shape).astype(np.float32)
    x[x == 0] = 1.0
    return torch.from_numpy(x).to(dtype)


def quantized(rng, n, k, g, zero, bias):
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    return w4a16.quantize(random_weight(rng, n, k), group_size=g, zero=zero, bias=b)


# ---- the op --------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["fp16", "bf16"])
@pytest.mark.parametrize("zero,bias", [("sym", False), ("asym", True), ("float", False), ("sym", True)])
@pytest.mark.parametrize("k,n,g", [(64, 8, 32), (200, 72, 64)])  # 200 = 3*64 + 8: a ragged last group
@pytest.mark.parametrize("m", [1, 3, 17])
def test_op_matches_gemm_and_reference(rng, act, zero, bias, k, n, g, m):
    qw = quantized(rng, n, k, g, zero, bias)
    lin = wt.Linear(qw)
    x = random_x(rng, (m, k), DTYPES[act])
    y = torch.ops.w4a16.linear(x, lin.handle)
    assert y.shape == (m, n) and y.dtype == x.dtype
    x_np = to_numpy(x)
    expected = w4a16.gemm(x_np, qw)  # the numpy path, the same plan
    np.testing.assert_array_equal(to_numpy(y).view(np.uint16), expected.view(np.uint16))
    assert_gemm_close(to_numpy(y), x_np, qw)
    torch.testing.assert_close(lin(x), y, rtol=0, atol=0)


def test_op_flattens_leading_dims(rng):
    qw = quantized(rng, 72, 200, 64, "asym", True)
    lin = wt.Linear(qw)
    x = random_x(rng, (2, 5, 200), torch.bfloat16)
    y = lin(x)
    assert y.shape == (2, 5, 72)
    flat = lin(x.reshape(10, 200))
    assert torch.equal(y.reshape(10, 72), flat)
    assert lin(x[0, 0]).shape == (72,)
    assert torch.equal(lin(x[0, 0]), flat[0])
    strided = x.transpose(0, 1)  # [5, 2, 200], not contiguous
    assert torch.equal(lin(strided), y.transpose(0, 1))


def test_op_errors(rng):
    """Linear raises ValueError, as every w4a16 entry point; the op's C++ kernel raises torch's
    RuntimeError with the same message (its Python kernel, ValueError)."""
    lin = wt.Linear(quantized(rng, 8, 64, 32, "sym", False))
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        lin(torch.ones(2, 64))  # float32 is refused
    with pytest.raises(ValueError, match="K=64"):
        lin(torch.ones(2, 63, dtype=torch.bfloat16))
    op_error = RuntimeError if wt.KERNEL == "c++" else ValueError
    with pytest.raises(op_error, match="no weight has handle -1"):
        torch.ops.w4a16.linear(torch.ones(2, 64, dtype=torch.bfloat16), -1)
    with pytest.raises(op_error, match=r"got torch.float32; convert it first"):
        torch.ops.w4a16.linear(torch.ones(2, 64), lin.handle)
    with pytest.raises(op_error, match=r"x has shape \(2, 63\) but the weight has K=64"):
        torch.ops.w4a16.linear(torch.ones(2, 63, dtype=torch.float16), lin.handle)
    with pytest.raises(op_error, match=r"x has shape \(63,\) but the weight has K=64"):
        torch.ops.w4a16._linear(torch.ones(63, dtype=torch.float16), lin.handle)
    with pytest.raises(op_error, match=r"x has shape \(\) but"):
        torch.ops.w4a16.linear(torch.tensor(1.0, dtype=torch.float16), lin.handle)


def test_the_op_runs_its_cpp_kernel_where_the_package_was_built_with_torch():
    """scripts/test_python.sh builds the package against the venv's torch when W4A16_TORCH=1 and
    sets W4A16_REQUIRE_TORCH_KERNEL=1: there the Python kernel must not stand in silently."""
    if os.environ.get("W4A16_REQUIRE_TORCH_KERNEL") == "1":
        assert wt.KERNEL == "c++", wt.KERNEL_NOTE
    assert wt.KERNEL in ("c++", "python") and wt.KERNEL_NOTE


def test_without_the_cpp_kernel_the_python_kernel_serves_the_op_and_the_module():
    """A process where w4a16._torch_ops cannot be imported (as where the package was built without
    torch): the Python kernel is registered for both ops, says why, and gives the same bits."""
    script = """
import sys
sys.modules["w4a16._torch_ops"] = None  # makes `from .. import _torch_ops` raise ImportError
import ml_dtypes, numpy as np, torch, w4a16, w4a16.torch as wt
assert wt.KERNEL == "python" and "not available" in wt.KERNEL_NOTE, wt.KERNEL_NOTE
rng = np.random.default_rng(3)
lin = wt.Linear(w4a16.quantize(rng.standard_normal((24, 96)).astype(np.float32), group_size=32, zero="asym"))
x = torch.from_numpy(rng.standard_normal((2, 3, 96)).astype(np.float32)).bfloat16()
expected = torch.from_numpy(w4a16.gemm(x.reshape(6, 96).view(torch.int16).numpy().view(ml_dtypes.bfloat16), lin.packed)
                            .view(np.int16)).view(torch.bfloat16).reshape(2, 3, 24)
for y in (lin(x), torch.ops.w4a16.linear(x, lin.handle), torch.ops.w4a16._linear(x, lin.handle)):
    assert torch.equal(y, expected)
try:
    lin(x.float())
except ValueError as e:
    assert "float16 or bfloat16" in str(e)
else:
    raise AssertionError("float32 was accepted")
print("ok")
"""
    import subprocess, sys  # noqa: E401, PLC0415

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("threads", [1, 2])
def test_cpp_kernel_is_bit_identical_to_the_python_kernel(rng, dtype, threads):
    """The twin test of the op's two CPU kernels (w4a16._torch_ops and _linear_cpu) over the
    shapes a model passes: one row, a batch, leading dims, a transposed view, one vector, none."""
    if wt.KERNEL != "c++":
        pytest.skip(wt.KERNEL_NOTE)
    lin = wt.Linear(quantized(rng, 72, 200, 64, "asym", True), threads=threads)
    x3 = random_x(rng, (5, 2, 200), dtype)
    for x in (random_x(rng, (1, 200), dtype), random_x(rng, (17, 200), dtype), x3, x3.transpose(0, 1),
              random_x(rng, (200,), dtype), random_x(rng, (0, 200), dtype)):
        expected = wt._linear_cpu(x, lin.handle)
        for op in (torch.ops.w4a16.linear.default, torch.ops.w4a16._linear.default):
            y = op(x, lin.handle)
            assert y.shape == (*x.shape[:-1], 72) and y.dtype == dtype and y.is_contiguous()
            assert torch.equal(y.view(torch.int16), expected.view(torch.int16)), (op, tuple(x.shape))


@pytest.mark.parametrize("torch_threads", [1, 2])
@pytest.mark.parametrize("options", [dict(threads=0), dict(threads=3), dict(partition="splitk", split_k=3, threads=2),
                                     dict(strategy="decoupled", threads=0)])
def test_on_torch_threads_the_cpp_kernel_gives_the_bits_of_w4a16s_pool(rng, torch_threads, options):
    """use_torch_threads(True) (the default) runs the gemm's parts on torch's intra-op threads:
    torch.set_num_threads sets how many, the Linear's threads caps them; the bits are those of the
    same layer on w4a16's pool and of the Python kernel, whatever the thread counts."""
    if wt.KERNEL != "c++":
        assert wt.use_torch_threads(True) is False
        pytest.skip(wt.KERNEL_NOTE)
    lin = wt.Linear(quantized(rng, 300, 512, 64, "float", True), **options)
    x = random_x(rng, (3, 512), torch.bfloat16)
    expected = wt._linear_cpu(x, lin.handle)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(torch_threads)
        assert wt.use_torch_threads(False) is True  # the default, returned as the previous setting
        on_pool = lin(x)
        assert wt.use_torch_threads(True) is False
        on_torch = lin(x)
        op = torch.ops.w4a16.linear(x, lin.handle)
    finally:
        wt.use_torch_threads(True)
        torch.set_num_threads(before)
    for y in (on_pool, on_torch, op):
        assert torch.equal(y.view(torch.int16), expected.view(torch.int16))


def test_opcheck(rng):
    lin = wt.Linear(quantized(rng, 72, 200, 64, "asym", True))
    for shape, dtype in (((3, 200), torch.bfloat16), ((2, 3, 200), torch.float16), ((1, 200), torch.bfloat16)):
        torch.library.opcheck(torch.ops.w4a16.linear.default, (random_x(rng, shape, dtype), lin.handle))
        # _linear has no autograd formula by design (Linear calls it only when no gradient is wanted)
        torch.library.opcheck(torch.ops.w4a16._linear.default, (random_x(rng, shape, dtype), lin.handle),
                              test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))


def test_module_skips_the_dispatcher_only_where_nothing_would_see_the_op(rng):
    """Eager Linear calls the op's kernel directly (bench/torch_overhead.py: the dispatcher is
    ~2.7 us a call); a dispatch mode, the profiler and make_fx must still see w4a16::linear, with
    the same bits."""
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.utils._python_dispatch import TorchDispatchMode

    lin = wt.Linear(quantized(rng, 72, 200, 64, "asym", True))
    x = random_x(rng, (3, 200), torch.bfloat16)
    expected = torch.ops.w4a16.linear(x, lin.handle)
    assert torch.equal(lin(x), expected)

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    with Seen() as seen:
        assert torch.equal(lin(x), expected)
    assert "w4a16.linear.default" in seen.ops

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        assert torch.equal(lin(x), expected)
    assert any(e.name == "w4a16::linear" for e in prof.events())

    graph = make_fx(lin)(x)
    assert any(n.target is torch.ops.w4a16.linear.default for n in graph.graph.nodes)
    assert torch.equal(graph(x), expected)


@pytest.mark.parametrize("act", ["fp16", "bf16"])
def test_gradient_reaches_x_and_not_the_weight(rng, act):
    """x's gradient is dy @ W (W dequantized); the INT4 weight is frozen. Bound: the fp32 product
    (K terms, relative error <= K * 2^-24 of sum |dy||W|) rounded once to x's dtype (2^-8 relative
    for bf16, 2^-11 for fp16)."""
    qw = quantized(rng, 72, 200, 64, "asym", True)
    lin = wt.Linear(qw)
    x = random_x(rng, (3, 200), DTYPES[act]).requires_grad_()
    dy = random_x(rng, (3, 72), DTYPES[act])
    lin(x).backward(dy)
    w = torch.from_numpy(qw.dequantize()).double()
    exact = dy.double() @ w
    rounding = 2.0**-8 if act == "bf16" else 2.0**-11
    bound = rounding * exact.abs() + 200 * 2.0**-24 * (dy.double().abs() @ w.abs())
    assert x.grad is not None and x.grad.dtype == x.dtype
    assert torch.all((x.grad.double() - exact).abs() <= bound)
    assert list(lin.parameters()) == []  # nothing of the weight trains


def test_deleted_linear_frees_its_handle(rng):
    lin = wt.Linear(quantized(rng, 8, 64, 32, "sym", False))
    handle = lin.handle
    assert handle in wt._WEIGHTS
    x = torch.ones(1, 64, dtype=torch.bfloat16)
    assert torch.ops.w4a16.linear(x, handle).shape == (1, 8)
    del lin
    assert handle not in wt._WEIGHTS
    with pytest.raises((RuntimeError, ValueError), match=f"no weight has handle {handle}"):
        torch.ops.w4a16.linear(x, handle)  # both kernels forgot it


def test_the_op_follows_a_linears_new_weight_and_options(rng):
    """load_state_dict and the threads setter republish the handle to both kernels."""
    lin = wt.Linear(quantized(rng, 72, 200, 64, "asym", True), threads=1)
    other = wt.Linear(quantized(rng, 72, 200, 64, "sym", False))
    x = random_x(rng, (3, 200), torch.bfloat16)
    lin.load_state_dict(other.state_dict())
    assert torch.equal(torch.ops.w4a16.linear(x, lin.handle), other(x))
    lin.threads = 2
    assert lin.threads == 2 and torch.equal(torch.ops.w4a16.linear(x, lin.handle), other(x))
    with pytest.raises(ValueError, match="threads must be >= 0"):
        lin.threads = -1


# ---- the module ----------------------------------------------------------------------------------


def test_from_linear_is_quantize(rng):
    dense = nn.Linear(200, 72, bias=True)
    lin = wt.Linear.from_linear(dense, group_size=64, zero="asym")
    qw = w4a16.quantize(dense.weight.detach(), group_size=64, zero="asym", bias=dense.bias.detach())
    got = lin.quantized()
    for name in ("codes", "scales", "zeros", "bias"):
        np.testing.assert_array_equal(getattr(got, name), getattr(qw, name))
    assert (lin.in_features, lin.out_features, lin.group_size) == (200, 72, 64)
    assert "in_features=200" in repr(lin)


@pytest.mark.parametrize("zero,bias,perm", [("sym", False, False), ("asym", True, False), ("float", True, True)])
def test_state_dict_round_trip(rng, tmp_path, zero, bias, perm):
    qw = quantized(rng, 72, 200, 64, zero, bias)
    if perm:  # an act-order weight, made through from_arrays (the RTN quantizer makes none)
        qw = w4a16.QuantizedWeight.from_arrays(
            qw.codes, qw.scales, qw.zeros, rng.permutation(200).astype(np.int32), qw.bias,
            k=qw.k, group_size=qw.group_size, zero=qw.zero_mode,
        )
    lin = wt.Linear(qw, threads=1)
    state = lin.state_dict()
    expected = {"layout", "codes", "scales"} | ({"zeros"} if zero != "sym" else set()) | ({"bias"} if bias else set())
    assert set(state) == expected | ({"perm"} if perm else set())
    assert state["layout"].tolist() == [72, 200, 64] and state["codes"].dtype == torch.uint8
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)  # weights_only: plain tensors

    other = wt.Linear(quantized(rng, 72, 200, 32, "sym", False))
    other.load_state_dict(loaded)
    x = random_x(rng, (3, 200), torch.bfloat16)
    assert torch.equal(other(x), lin(x))
    assert torch.equal(wt.Linear.from_state_dict(loaded)(x), lin(x))
    for name in ("codes", "scales", "zeros", "perm", "bias"):
        a, b = getattr(other.quantized(), name), getattr(qw, name)
        assert (a is None and b is None) or np.array_equal(a.view(np.uint8), b.view(np.uint8)), name


def test_state_dict_in_a_model_and_errors(rng):
    model = nn.Sequential(wt.Linear(quantized(rng, 8, 64, 32, "sym", False)), nn.ReLU())
    state = model.state_dict()
    assert set(state) == {"0.layout", "0.codes", "0.scales"}
    fresh = nn.Sequential(wt.Linear(quantized(rng, 8, 64, 64, "asym", True)), nn.ReLU())
    fresh.load_state_dict(state)
    assert fresh[0].group_size == 32 and fresh[0].quantized().bias is None
    with pytest.raises(RuntimeError, match="0.codes"):
        fresh.load_state_dict({k: v for k, v in state.items() if k != "0.codes"})
    with pytest.raises(RuntimeError, match="size mismatch"):
        nn.Sequential(wt.Linear(quantized(rng, 16, 64, 32, "sym", False))).load_state_dict(state)
    bad = dict(state, **{"0.scales": state["0.scales"].clone().fill_(float("nan"))})
    with pytest.raises(RuntimeError, match="finite|NaN|nan"):
        fresh.load_state_dict(bad)


# ---- torch.compile -------------------------------------------------------------------------------


@pytest.mark.slow
def test_compile_fullgraph(rng):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available")

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = wt.Linear(quantized(rng, 72, 64, 32, "asym", True))
            self.down = wt.Linear(quantized(rng, 64, 72, 8, "sym", False))

        def forward(self, x):
            return x + self.down(torch.nn.functional.silu(self.up(x)))

    block = Block()
    x = random_x(rng, (2, 3, 64), torch.bfloat16)
    eager = block(x)
    torch._dynamo.reset()
    try:
        compiled = torch.compile(block, fullgraph=True)
        got = compiled(x)
    except Exception as e:  # noqa: BLE001 - a machine without a working inductor toolchain
        if "C compiler" in str(e) or "CalledProcessError" in type(e).__name__:
            pytest.skip(f"torch.compile cannot build here: {e}")
        raise
    torch.testing.assert_close(got, eager, rtol=2**-7, atol=2**-7)  # inductor may fuse the bf16 epilogue
    explain = torch._dynamo.explain(block)(x)
    assert explain.graph_break_count == 0 and explain.graph_count == 1


def test_export(rng):
    lin = wt.Linear(quantized(rng, 72, 200, 64, "asym", True))
    model = nn.Sequential(lin)
    x = random_x(rng, (3, 200), torch.bfloat16)
    exported = torch.export.export(model, (x,))
    targets = [node.target for node in exported.graph.nodes if node.op == "call_function"]
    assert targets == [torch.ops.w4a16.linear.default]
    assert torch.equal(exported.module()(x), lin(x))


# ---- replace_linears -----------------------------------------------------------------------------

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN = 64, 4, 2, 16, 96


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(HIDDEN, HEADS * HEAD_DIM, bias=False)
        self.k_proj = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.v_proj = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.o_proj = nn.Linear(HEADS * HEAD_DIM, HIDDEN, bias=False)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(HIDDEN, FFN, bias=False)
        self.up_proj = nn.Linear(HIDDEN, FFN, bias=False)
        self.down_proj = nn.Linear(FFN, HIDDEN, bias=True)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = Attention()
        self.mlp = Mlp()


class Inner(nn.Module):
    def __init__(self, n_layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(10, HIDDEN)
        self.layers = nn.ModuleList([Layer() for _ in range(n_layers)])


class TinyLlama(nn.Module):
    """Module names as transformers' LlamaForCausalLM (model.layers.N.self_attn.q_proj, ...)."""

    def __init__(self, n_layers=2):
        super().__init__()
        self.model = Inner(n_layers)
        self.lm_head = nn.Linear(HIDDEN, 10, bias=False)


def test_replace_linears_from_a_w4a16_file(rng, tmp_path):
    model = TinyLlama().to(torch.bfloat16)
    wanted = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "lm_head"]
    layers = {}
    for name in wanted:
        m = model.get_submodule(name)
        layers[name] = w4a16.quantize(m.weight.detach(), group_size=32, zero="asym")  # no bias in the file
    path = tmp_path / "m.safetensors"
    w4a16.save(path, layers)
    down_bias = model.model.layers[1].mlp.down_proj.bias.detach().clone()

    assert wt.replace_linears(model, path, threads=1) == wanted
    for name in wanted:
        assert isinstance(model.get_submodule(name), wt.Linear), name
    assert isinstance(model.model.layers[0].self_attn.k_proj, nn.Linear)  # not in the file: unchanged
    x = random_x(rng, (3, HIDDEN), torch.bfloat16)
    q = model.model.layers[0].self_attn.q_proj
    np.testing.assert_array_equal(to_numpy(q(x)).view(np.uint16),
                                  w4a16.gemm(to_numpy(x), layers[wanted[0]]).view(np.uint16))
    down = model.model.layers[1].mlp.down_proj  # the model's bias was kept, in its dtype
    assert torch.equal(wt._tensor(down.quantized().bias), down_bias)
    xf = random_x(rng, (3, FFN), torch.bfloat16)
    assert_gemm_close(to_numpy(down(xf)), to_numpy(xf), down.quantized())


def _words(nibbles: np.ndarray, axis: int) -> np.ndarray:
    """Packs 4-bit values 8 to an int32 word along `axis`, value i of each eight in bits 4i..4i+3."""
    v = np.moveaxis(nibbles.astype(np.uint32), axis, -1)
    v = v.reshape(*v.shape[:-1], -1, 8) << (4 * np.arange(8, dtype=np.uint32))
    return np.moveaxis(np.bitwise_or.reduce(v, axis=-1), -1, axis).view(np.int32)


def _checkpoint_dir(path, quantization_config: dict, tensors: dict) -> None:
    from safetensors.numpy import save_file  # noqa: PLC0415 - a test requirement

    path.mkdir()
    (path / "config.json").write_text(json.dumps({"quantization_config": quantization_config}))
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path / "model.safetensors"))


@pytest.mark.parametrize("kind", ["gptq_act_order", "awq"])
def test_replace_linears_from_a_checkpoint_directory(rng, tmp_path, kind):
    """A GPTQ v1 (act-order, asym, with a bias) or AWQ GEMM checkpoint written here from its spec
    (../shared/FORMATS.md) with random codes: each replaced layer dequantizes to the weight
    computed from the spec in numpy, bit for bit, and runs within the gemm bound of it."""
    g = 32
    model = TinyLlama().to(torch.bfloat16)
    wanted = {"model.layers.0.self_attn.q_proj": (HEADS * HEAD_DIM, HIDDEN), "model.layers.1.mlp.down_proj": (HIDDEN, FFN)}
    tensors, expected_w, expected_b = {}, {}, {}
    for name, (n, k) in wanted.items():
        groups = k // g
        q = rng.integers(0, 16, (k, n))  # [K, N] as both formats store it
        z = rng.integers(1, 16, (groups, n))
        s = (rng.uniform(0.5, 2.0, (groups, n)) * 2.0**-6).astype(np.float16)
        if kind == "awq":
            order = np.array([0, 2, 4, 6, 1, 3, 5, 7])
            interleave = lambda a: a.reshape(a.shape[0], -1, 8)[:, :, order].reshape(a.shape)  # noqa: E731
            tensors[name + ".qweight"] = _words(interleave(q), 1)
            tensors[name + ".qzeros"] = _words(interleave(z), 1)
            g_idx = np.arange(k) // g
        else:
            tensors[name + ".qweight"] = _words(q, 0)
            tensors[name + ".qzeros"] = _words(z - 1, 1)  # v1 stores z - 1
            g_idx = np.empty(k, dtype=np.int32)
            g_idx[rng.permutation(k)] = np.arange(k) // g  # act-order: groups scattered over K
            tensors[name + ".g_idx"] = g_idx.astype(np.int32)
            bias = rng.standard_normal(n).astype(np.float16)
            tensors[name + ".bias"] = bias
            expected_b[name] = bias
        tensors[name + ".scales"] = s
        w = (q - z[g_idx]).astype(np.float32) * s[g_idx].astype(np.float32)  # [K, N]
        expected_w[name] = w.T
    config = (
        {"quant_method": "awq", "bits": 4, "group_size": g, "zero_point": True, "version": "gemm"}
        if kind == "awq"
        else {"quant_method": "gptq", "bits": 4, "group_size": g, "desc_act": True, "sym": False}
    )
    _checkpoint_dir(tmp_path / "ckpt", config, tensors)

    assert sorted(wt.replace_linears(model, tmp_path / "ckpt", threads=1)) == sorted(wanted)
    for name, (n, k) in wanted.items():
        layer = model.get_submodule(name)
        qw = layer.quantized()
        assert (qw.perm is not None) == (kind != "awq"), name
        np.testing.assert_array_equal(qw.dequantize(), expected_w[name])
        if name in expected_b:
            np.testing.assert_array_equal(np.asarray(qw.bias, dtype=np.float16), expected_b[name])
        x = random_x(rng, (3, k), torch.bfloat16)
        assert_gemm_close(to_numpy(layer(x)), to_numpy(x), qw)


def test_replace_linears_errors_name_the_module(rng, tmp_path):
    path = tmp_path / "bad.safetensors"
    w4a16.save(path, {"model.layers.0.self_attn.k_proj": w4a16.quantize(random_weight(rng, 16, HIDDEN), group_size=32)})
    model = TinyLlama()
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.k_proj.*out_features=32"):
        wt.replace_linears(model, path)
    assert isinstance(model.model.layers[0].self_attn.k_proj, nn.Linear)  # nothing replaced
    w4a16.save(path, {"model.layers.7.mlp.up_proj": w4a16.quantize(random_weight(rng, FFN, HIDDEN), group_size=32)})
    with pytest.raises(ValueError, match=r"model\.layers\.7\.mlp\.up_proj.*no module"):
        wt.replace_linears(model, path)
    assert wt.replace_linears(model, path, strict=False) == []


def llama_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf's q/k row order: per head, rows (j, i) -> (i, j)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_gguf_module_names():
    assert wt.gguf_module_name("blk.12.attn_q.weight") == "model.layers.12.self_attn.q_proj"
    assert wt.gguf_module_name("blk.0.ffn_down") == "model.layers.0.mlp.down_proj"
    assert wt.gguf_module_name("output") == "lm_head"
    assert wt.gguf_module_name("blk.0.attn_norm") is None


def test_replace_linears_from_gguf(rng, tmp_path):
    """A llama GGUF written with gguf-py (the producer of tests/data/gguf): q/k rows permuted the
    way llama.cpp's converter does, so the imported q_proj/k_proj must equal the HF-order weights."""
    gguf = pytest.importorskip("gguf", reason="the gguf package (gguf==0.19.0) is not installed")
    T = gguf.GGMLQuantizationType
    model = TinyLlama(n_layers=1).to(torch.bfloat16)
    hf = {}  # module name -> HF-order weight [N, K] float32
    writer = gguf.GGUFWriter(str(tmp_path / "m.gguf"), arch="llama")
    writer.add_uint32("llama.block_count", 1)
    writer.add_uint32("llama.attention.head_count", HEADS)
    writer.add_uint32("llama.attention.head_count_kv", KV_HEADS)
    for gguf_name, heads in (("attn_q", HEADS), ("attn_k", KV_HEADS), ("attn_v", None), ("ffn_up", None)):
        name = wt.gguf_module_name(f"blk.0.{gguf_name}")
        w = (rng.standard_normal(tuple(model.get_submodule(name).weight.shape)) * 0.05).astype(np.float32)
        stored = llama_permute(w, heads) if heads else w
        data = gguf.quants.quantize(stored, T.Q4_0)
        writer.add_tensor(f"blk.0.{gguf_name}.weight", data, raw_dtype=T.Q4_0)
        ggml_values = gguf.quants.dequantize(data, T.Q4_0).reshape(stored.shape).astype(np.float32)
        # the exact values in HF order: undo the permutation of gguf-py's own dequantization
        hf[name] = unpermute(ggml_values, heads) if heads else ggml_values
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    replaced = wt.replace_linears(model, tmp_path / "m.gguf", threads=1)
    assert sorted(replaced) == sorted(hf)
    for name, w in hf.items():
        lin = model.get_submodule(name)
        np.testing.assert_array_equal(lin.quantized().dequantize(), w, err_msg=name)  # Q4_0 imports exactly
        x = random_x(rng, (1, 2, HIDDEN), torch.bfloat16)
        assert_gemm_close(to_numpy(lin(x))[0], to_numpy(x)[0], lin.quantized())

    small = TinyLlama(n_layers=1)
    small.model.layers[0].self_attn.k_proj = nn.Linear(HIDDEN, 16, bias=False)
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.k_proj"):
        wt.replace_linears(small, tmp_path / "m.gguf")


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of llama_permute, written independently: row (h, i, j) -> (h, j, i)."""
    d = w.shape[0] // heads
    out = np.empty_like(w)
    for h in range(heads):
        for i in range(d // 2):
            for j in range(2):
                out[h * d + j * (d // 2) + i] = w[h * d + 2 * i + j]
    return out


def test_unpermute_inverts_llama_permute(rng):
    w = rng.standard_normal((32, 8))
    assert np.array_equal(unpermute(llama_permute(w, 2), 2), w)
    qw = w4a16.quantize(w.astype(np.float32), group_size=8)
    got = wt.unpermute_gguf_rows(w4a16.quantize(llama_permute(w, 2).astype(np.float32), group_size=8), 2)
    np.testing.assert_array_equal(got.codes, qw.codes)
    np.testing.assert_array_equal(got.scales, qw.scales)


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__file__), "..", "data", "gguf", "model.gguf")),
                    reason="tests/data/gguf/model.gguf is missing")
def test_replace_linears_gguf_without_head_count(tmp_path):
    """tests/data/gguf/model.gguf has no head counts: q/k cannot be un-permuted, a clear error."""
    model = TinyLlama(n_layers=1)
    model.model.layers[0].self_attn.q_proj = nn.Linear(128, 16, bias=False)
    with pytest.raises(ValueError, match="head_count"):
        wt.replace_linears(model, os.path.join(os.path.dirname(__file__), "..", "data", "gguf", "model.gguf"),
                           strict=False)

