"""Writes a Llama-3-8B-shaped llama GGUF file with random Q4_0 weights and N decoder layers, for
bench/llama3_decode.py (which imports write_model; run alone: python bench/llama3_decode_gguf.py
OUT.gguf [--layers 2] [--seed 0]).

The shapes are Llama-3-8B's (its config.json): hidden 4096, 32 heads of 128, 8 KV heads,
intermediate 14336, vocab 128256, rope theta 500000, RMS eps 1e-5; only the number of layers is
smaller, so every linear layer streams what it would in the real model. Weights are normal
(std 0.02, seeded per tensor), norms are 1. Every matrix is Q4_0, written by gguf-py's own
quantizer (gguf.quants.quantize), the embedding and output included: what llama-quantize --pure
makes, and what both readers handle (transformers dequantizes Q4_0; llama.cpp's get_rows reads it).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gguf
from gguf import GGMLQuantizationType

# Llama-3-8B (meta-llama/Meta-Llama-3-8B config.json); n_layers is the benchmark's choice.
HIDDEN = 4096
HEADS = 32
KV_HEADS = 8
HEAD_DIM = HIDDEN // HEADS  # 128
INTERMEDIATE = 14336
VOCAB = 128256
ROPE_THETA = 500000.0
RMS_EPS = 1e-5
CONTEXT = 8192
WEIGHT_STD = 0.02

# GGUF name -> [rows, cols] of each block's matrices (ggml's ne is the reverse: cols first).
BLOCK_MATRICES = {
    "attn_q": (HEADS * HEAD_DIM, HIDDEN),
    "attn_k": (KV_HEADS * HEAD_DIM, HIDDEN),
    "attn_v": (KV_HEADS * HEAD_DIM, HIDDEN),
    "attn_output": (HIDDEN, HEADS * HEAD_DIM),
    "ffn_gate": (INTERMEDIATE, HIDDEN),
    "ffn_up": (INTERMEDIATE, HIDDEN),
    "ffn_down": (HIDDEN, INTERMEDIATE),
}
TOP_MATRICES = {"token_embd": (VOCAB, HIDDEN), "output": (VOCAB, HIDDEN)}
ROWS_PER_CHUNK = 8192  # random fp32 rows made and quantized at a time: 128 MiB at K = 4096


def permute_like_llama_cpp(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders W_q / W_k rows so
    that RoPE rotates adjacent pairs (ggml's NORM mode): per head, Hugging Face row j * D/2 + i
    becomes GGUF row 2i + j. Both readers undo it (transformers' GGUF loader, w4a16's
    replace_linears), so writing it keeps their q/k in the order their RoPE expects. With random
    weights only agreement between the readers depends on it, not the speed."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def random_q4_0(rows: int, cols: int, seed: list[int], heads: int = 0) -> np.ndarray:
    """[rows, cols] N(0, WEIGHT_STD) weights, Q4_0-quantized: uint8 [rows, cols / 32 * 18] (per 32
    weights one fp16 scale + 16 bytes of codes, ggml's block_q4_0). In chunks of rows to bound
    memory (the 128256 x 4096 matrices would be 2 GiB of fp32 at once); heads > 0 permutes the
    rows as llama.cpp does for q/k, which mixes rows within a head only, so per-head chunks work."""
    rng = np.random.default_rng(seed)
    step = ROWS_PER_CHUNK if heads == 0 else rows // heads * max(1, ROWS_PER_CHUNK // (rows // heads))
    parts = []
    for start in range(0, rows, step):
        w = rng.standard_normal((min(step, rows - start), cols), dtype=np.float32) * np.float32(WEIGHT_STD)
        if heads:
            w = permute_like_llama_cpp(w, w.shape[0] // (rows // heads))
        parts.append(gguf.quants.quantize(w, GGMLQuantizationType.Q4_0))
    return np.concatenate(parts)


def add_metadata(writer: gguf.GGUFWriter, n_layers: int) -> None:
    writer.add_name(f"llama3-8b-shape-{n_layers}-layers-random")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(VOCAB)
    # No tokenizer: tokenizer.ggml.model = "none" is llama.cpp's vocabulary-less type
    # (LLAMA_VOCAB_TYPE_NONE): llama_vocab::load then makes llama.vocab_size dummy tokens, so the
    # logits have the full vocabulary and no token list, merges or byte tokens are needed (the
    # "gpt2" type would want merges and a byte-level "\n", "llama" the <0xNN> byte tokens).
    # transformers builds the model's config from llama.* alone (vocab_size included) and reads
    # tokenizer.* only for a tokenizer, which the benchmark does not load: it feeds token ids.
    writer.add_tokenizer_model("none")


def write_model(path: str, n_layers: int, seed: int = 0, log=print) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    add_metadata(writer, n_layers)
    t0 = time.perf_counter()
    ones = np.ones(HIDDEN, dtype=np.float32)  # norms are F32 in llama.cpp's files
    index = 0

    def matrix(name: str, shape: tuple[int, int], heads: int = 0) -> None:
        nonlocal index
        q = random_q4_0(*shape, seed=[seed, index], heads=heads)
        writer.add_tensor(name, q, raw_dtype=GGMLQuantizationType.Q4_0)
        index += 1

    matrix("token_embd.weight", TOP_MATRICES["token_embd"])
    for i in range(n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        for m, shape in BLOCK_MATRICES.items():
            heads = {"attn_q": HEADS, "attn_k": KV_HEADS}.get(m, 0)
            matrix(f"blk.{i}.{m}.weight", shape, heads)
        log(f"llama3_decode: layer {i} quantized ({time.perf_counter() - t0:.0f} s)")
    writer.add_tensor("output_norm.weight", ones)
    matrix("output.weight", TOP_MATRICES["output"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    log(f"llama3_decode: wrote {path} ({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description="Writes a Llama-3-8B-shaped GGUF file of random Q4_0 weights.")
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    write_model(args.out, args.layers, args.seed)


if __name__ == "__main__":
    main()
