"""One rank of tests/python/test_torch_tp.py, run by torchrun (1 or 2 processes, gloo on loopback).

A tiny random transformers Llama (2 layers, 4 heads, 2 key/value heads, hidden 128, intermediate
256; seeded, so every rank builds the same model), its linear layers and head replaced by RTN w4a16 layers
from one w4a16 file (g = 32, asym: zeros and a bias on o_proj exercise the row shard's parts),
then tp.shard over the world. Writes each rank's first-step logits and greedy tokens to --out
(rank 0) and --out.rank<r> (the others).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/python/tp_worker.py --out r.pt --weights w.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.distributed as dist
import transformers

import w4a16
import w4a16.torch as wt
import w4a16.torch.tp as tp


def tiny_llama() -> transformers.LlamaForCausalLM:
    config = transformers.LlamaConfig(
        vocab_size=96, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, attention_bias=False, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # weights large enough that the logits separate the tokens
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.25)
    return model


def write_weights(model: torch.nn.Module, path: str) -> None:
    """RTN-quantizes every decoder linear and the head into one w4a16 file (what replace_linears
    reads)."""
    rng = np.random.default_rng(1)
    layers = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and (".layers." in name or name == "lm_head"):
            w = mod.weight.detach().float().numpy()
            bias = rng.standard_normal(w.shape[0]).astype(np.float32) if name.endswith("o_proj") else None
            layers[name] = w4a16.quantize(w, group_size=32, zero="asym", bias=bias)
    w4a16.save(path, layers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", required=True, help="w4a16 file: written by the test before the run")
    ap.add_argument("--tokens", type=int, default=12)
    args = ap.parse_args()
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    model = tiny_llama().to(torch.bfloat16)
    wt.replace_linears(model, args.weights, threads=1)
    sharded = tp.shard(model)
    prompt = torch.tensor([[1, 17, 42, 5, 63, 8]])
    with torch.inference_mode():
        logits = model(prompt).logits[0].float()
        out = model.generate(prompt, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False,
                             output_scores=True, return_dict_in_generate=True)
    tokens = out.sequences[0]
    top2 = [s[0].float().topk(2).values for s in out.scores]
    margins = torch.stack([t[0] - t[1] for t in top2])  # per step: how far the choice was from a tie
    # Every rank writes its own answer (the test checks that the reduction left the same sums on
    # all), so no collective runs after generate: the last one a script runs can abort it at exit
    # (see RowParallelLinear's buffer).
    rank = dist.get_rank()
    torch.save({"logits": logits, "tokens": tokens, "margins": margins, "sharded": sharded,
                "row_parallel": [n for n, m in model.named_modules() if isinstance(m, tp.RowParallelLinear)],
                "gathered": [n for n, m in model.named_modules() if isinstance(m, tp.GatherParallelLinear)],
                "world": dist.get_world_size()}, args.out if rank == 0 else f"{args.out}.rank{rank}")
    dist.destroy_process_group()

if __name__ == "__main__":
    main()
