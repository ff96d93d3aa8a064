"""Tensor-parallel decode of the Llama-3-8B-shaped model of bench/llama3_decode.sh over
torch.distributed (gloo), against one process given the same cores:

    python bench/llama3_tp.py [--gguf F] [--tokens 32] [--repeats 3]      # runs both, prints the table

runs, with torchrun on this machine,
    one process, 2 threads    (w4a16 threads=2, torch.set_num_threads(2))
    two processes, 1 thread   (each rank holds half of every decoder projection and of the head:
                               tp.shard with tp.LLAMA_PLAN; 32 query and 8 key/value heads split in
                               2, the 128256 x 4096 head's vocabulary split in 2 and its logits
                               all_gathered; --whole-head keeps the head whole on every rank)
and prints decode tok/s (decode steps only, median of --repeats after a warm-up), the share of
the collectives (all_reduce + all_gather) and whether the greedy tokens agree. Each rank loads the
GGUF with transformers and swaps its linear layers for exact w4a16 imports (replace_linears), as
bench/llama3_decode.py's w4a16 peer does.

Run as a rank (what the launcher does): torchrun --nproc-per-node P bench/llama3_tp.py --rank-run ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE]
import llama3_decode_gguf as model_file  # noqa: E402
from llama3_decode_peer import load_transformers, torch_decode  # noqa: E402


def rank_run(args) -> None:
    import torch
    import torch.distributed as dist

    import w4a16.torch as wt
    import w4a16.torch.tp as tp

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # the one-process baseline runs without a process group (gloo's threads idle or not)
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.set_num_threads(args.threads)
    model = load_transformers(args.gguf)
    wt.replace_linears(model, args.gguf, threads=args.threads)
    plan = {k: v for k, v in tp.LLAMA_PLAN.items() if not (args.whole_head and v == tp.GATHER)}
    sharded = tp.shard(model, plan=plan) if world > 1 else []
    prompt = [int(v) for v in args.prompt_ids.split(",")]

    def decode() -> tuple[list[int], list[float]]:
        tokens, times, _ = torch_decode(model, prompt, args.tokens)  # greedy, decode steps timed
        return tokens, times

    tokens, _ = decode()  # warm-up: plans, workspaces, gloo's connections
    speeds, shares = [], []
    for _ in range(args.repeats):
        tp.stats.reset()
        again, times = decode()
        if again != tokens:
            raise SystemExit(f"rank {rank}: greedy tokens changed between runs")
        speeds.append(len(times) / sum(times))
        shares.append((tp.stats.all_reduce_s + tp.stats.all_gather_s) / sum(times))  # the prefill's included
    if rank == 0:
        with open(args.out, "w") as f:
            json.dump({"world": world, "threads": args.threads, "tok_s": statistics.median(speeds),
                       "tok_s_all": speeds, "all_reduce_share": statistics.median(shares),
                       "all_reduces_per_token": tp.stats.all_reduces / (args.tokens + 1),
                       "all_gathers_per_token": tp.stats.all_gathers / (args.tokens + 1),
                       "sharded": len(sharded), "tokens": tokens}, f)
    if world > 1:
        dist.destroy_process_group()


def launch(args, world: int, threads: int, prompt: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}",
               os.path.abspath(__file__), "--rank-run", "--gguf", args.gguf, "--out", out,
               "--threads", str(threads), "--tokens", str(args.tokens), "--repeats", str(args.repeats),
               "--prompt-ids", ",".join(map(str, prompt))] + (["--whole-head"] if args.whole_head else [])
        # The gemm's parts on torch's threads (w4a16.torch's default): OMP_NUM_THREADS threads.
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"llama3_tp: {world} process(es) failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def main() -> None:
    root = os.path.dirname(HERE)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", default=os.path.join(root, "build", "llama3-decode", "llama3-8b-shape-2L-seed0.Q4_0.gguf"),
                    help="written by bench/llama3_decode.sh (default: its 2-layer file)")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="the prompt's ids, as bench/llama3_decode.py draws them")
    ap.add_argument("--prompt", type=int, default=8)
    ap.add_argument("--whole-head", action="store_true", help="TP=2 without splitting the head (every rank computes it)")
    # rank-run options (set by the launcher)
    ap.add_argument("--rank-run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--prompt-ids", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank_run:
        rank_run(args)
        return
    if not os.path.exists(args.gguf):
        raise SystemExit(f"llama3_tp: {args.gguf} not found: run bench/llama3_decode.sh first (it writes the file)")
    prompt = np.random.default_rng([args.seed, 1]).integers(0, model_file.VOCAB, args.prompt).tolist()
    one = launch(args, 1, 2, prompt)
    two = launch(args, 2, 1, prompt)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name:")), "?")
    agree = next((i for i, (a, b) in enumerate(zip(one["tokens"], two["tokens"])) if a != b), len(one["tokens"]))
    print(f"# {name}, {os.cpu_count()} CPUs; {os.path.basename(args.gguf)}; {args.tokens} decode steps, "
          f"median of {args.repeats}")
    print("| run | decode tok/s | ms/token | collectives' share | all_reduces/token | all_gathers/token |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in (("1 process x 2 threads", one), ("2 processes x 1 thread (TP=2)", two)):
        print(f"| {label} | {r['tok_s']:.2f} | {1e3 / r['tok_s']:.1f} | {r['all_reduce_share'] * 100:.0f} % | "
              f"{r['all_reduces_per_token']:.0f} | {r.get('all_gathers_per_token', 0):.0f} |")
    print(f"TP=2 / one process: {two['tok_s'] / one['tok_s']:.2f}x the speed (target: within 1.2x, i.e. >= 0.83x); "
          f"{two['sharded']} layers sharded; greedy tokens agree for {agree} of {len(one['tokens'])}")


if __name__ == "__main__":
    main()
