"""One peer of bench/llama3_decode.py, run in its own process (each peer needs its own packages
and thread environment): loads the GGUF file, checks it, times greedy decoding at each thread
count, and writes a JSON result (and its first-step logits, for the cross-peer check).

    python bench/llama3_decode_peer.py PEER --gguf F --threads 1,2 --prompt-ids 1,2,... --tokens 32
                                       --repeats 3 --json OUT.json --logits OUT.npy

PEER: bf16 | w4a16 | torchao | llamacpp. Only the packages of the chosen peer are imported:
torch + transformers (+ w4a16 / torchao) for the first three, llama_cpp for the last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

# A w4a16 model's first-step logits must match the bf16 model's: the same dequantized Q4_0
# weights, but bf16 rounds each to 8 significant bits where w4a16 keeps them exact. This random
# model amplifies small weight differences about tenfold by the logits, so the relative RMS
# difference is 1.5 % here at 2 layers, 2.0 % at 4 (llama.cpp's int8 activations: 2.9 % at 2;
# torchao's g = 128 re-quantization: 43 %); a wrong q/k order or a wrong layer is near 100 %.
W4A16_MAX_REL_RMS = 0.05

# torch's intra-op threads in every row (llama3_decode.py --torch-threads); 0: the row's thread count.
TORCH_THREADS = int(os.environ.get("W4A16_TORCH_THREADS", "0"))


def rel_rms(a: np.ndarray, ref: np.ndarray) -> float:
    a, ref = a.astype(np.float64), ref.astype(np.float64)
    return float(np.sqrt(np.mean((a - ref) ** 2) / np.mean(ref**2)))


# ---- transformers peers (bf16, w4a16, torchao) --------------------------------------------------


def load_transformers(gguf_path: str):
    import torch
    import transformers

    folder, name = os.path.split(os.path.abspath(gguf_path))
    # transformers dequantizes every GGUF tensor to float, un-permutes q/k, then casts to bf16.
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.bfloat16, local_files_only=True
    )
    return model.eval()


def torch_prefill(model, prompt: list[int]):
    import torch

    with torch.inference_mode():
        out = model(torch.tensor([prompt]), use_cache=True)
    return out.past_key_values, out.logits[0, -1].float().numpy()


def torch_decode(model, prompt: list[int], steps: int) -> tuple[list[int], list[float], np.ndarray]:
    """Greedy: prefill the prompt (untimed), then `steps` one-token forward passes, each timed
    with its argmax. Returns the generated tokens (1 + steps), the step times and the first-step
    logits (the prefill's last position)."""
    import torch

    past, logits = torch_prefill(model, prompt)
    token = int(np.argmax(logits))
    tokens, times = [token], []
    with torch.inference_mode():
        for _ in range(steps):
            t0 = time.perf_counter()
            out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
            token = int(out.logits[0, -1].argmax())
            times.append(time.perf_counter() - t0)
            past = out.past_key_values
            tokens.append(token)
    return tokens, times, logits


def linear_bytes_torch(model) -> dict:
    """Bytes of the weights a decode step streams, in the peer's own format: every linear layer
    (the lm_head included), not the embedding (one row a token), norms or the KV cache."""
    import torch

    total, kinds = 0, set()
    entry_bytes = None  # w4a16: (scale, zero) bytes per group, read from one layer
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight
            if hasattr(w, "qdata"):  # torchao's Int4OpaqueTensor: packed codes + scales/zeros
                total += w.qdata.nbytes + w.scale_and_zero.nbytes
                kinds.add("torchao int4 " + type(w).__name__)
            else:
                total += w.nbytes
                kinds.add(f"dense {w.dtype}")
        elif type(module).__name__ == "Linear" and hasattr(module, "packed"):  # w4a16.torch.Linear
            p = module.packed
            if entry_bytes is None:
                sample = module.quantized()
                entry_bytes = sample.scales.itemsize + (0 if sample.zeros is None else sample.zeros.itemsize)
            groups = -(-p.k // p.group_size)
            total += p.n * -(-p.k // 2) + p.n * groups * entry_bytes  # codes [N, K/2] + scales (+ zeros)
            kinds.add(f"w4a16 g={p.group_size}")
    return {"bytes": total, "format": ", ".join(sorted(kinds))}


def run_transformers(args, peer: str) -> dict:
    import torch

    result: dict = {"peer": peer, "torch": torch.__version__}
    t0 = time.perf_counter()
    model = load_transformers(args.gguf)
    result["load_s"] = time.perf_counter() - t0
    prompt = args.prompt_ids
    if peer == "w4a16":
        import w4a16.torch

        _, ref = torch_prefill(model, prompt)  # the bf16 model's logits, before the swap
        # The gemm's parts on torch's threads (the default) or w4a16's pool (llama3_decode.py --w4a16-pool).
        w4a16.torch.use_torch_threads(os.environ.get("W4A16_TORCH_POOL", "1") != "0")
        replaced = w4a16.torch.replace_linears(model, args.gguf, threads=max(args.threads))
        result["replaced_layers"] = len(replaced)
        _, logits = torch_prefill(model, prompt)
        err = rel_rms(logits, ref)
        result["check"] = {"against": "bf16 transformers, same process", "rel_rms": err,
                           "limit": W4A16_MAX_REL_RMS, "same_argmax": int(logits.argmax()) == int(ref.argmax())}
        if not err < W4A16_MAX_REL_RMS:
            result["error"] = f"first-step logits differ from bf16: rel RMS {err:.3g} >= {W4A16_MAX_REL_RMS}"
            return result
        result["w4a16"] = getattr(w4a16, "__version__", "?")
    elif peer == "torchao":
        import torchao
        from torchao.quantization import quantize_
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

        _, ref = torch_prefill(model, prompt)
        # torchao 0.18's CPU int4 weight-only path (Int4OpaqueTensor, aten's
        # _weight_int4pack_mm_for_cpu): it re-quantizes the dequantized 4-bit weights with its own
        # asymmetric RTN, g = 128 or the largest of 64, 32 that divides every layer's K (SmolLM2's
        # K = 576 is not a multiple of 128), so its weights differ a little from the file's.
        ks = [m.in_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
        group = next(g for g in (128, 64, 32) if all(k % g == 0 for k in ks))
        quantize_(model, PrototypeInt4WeightOnlyConfig(group_size=group))
        result["torchao_group_size"] = group
        _, logits = torch_prefill(model, prompt)
        result["check"] = {"against": "bf16 transformers, same process (re-quantized: not exact)",
                           "rel_rms": rel_rms(logits, ref), "same_argmax": int(logits.argmax()) == int(ref.argmax())}
        result["torchao"] = torchao.__version__
    result.update(linear_bytes_torch(model))
    runs = []
    for t in args.threads:
        torch.set_num_threads(TORCH_THREADS or t)
        if peer == "w4a16":
            for module in model.modules():
                if hasattr(module, "packed"):
                    module.threads = t
        runs.append(time_runs(lambda: torch_decode(model, prompt, args.tokens), t, args.repeats))
    if peer == "w4a16":
        result["outside_linears"] = time_outside_linears(model, prompt, args)
    result["runs"] = runs
    np.save(args.logits, runs[0].pop("logits"))
    for r in runs[1:]:
        r.pop("logits")
    return result


def time_outside_linears(model, prompt: list[int], args) -> list[dict]:
    """The model's time per token besides its linear layers (attention, norms, embedding, residuals,
    generate's own work): the same decode with every linear layer and the head swapped for a stub
    that returns a cached zero tensor of the output's shape. The work outside the linears does not
    depend on the values (attention's cost is set by the sequence length), so total - this = the
    linears' time. Run last: it replaces the model's layers."""
    import torch

    class Stub(torch.nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n, self.out = n, {}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = (*x.shape[:-1], self.n)
            if shape not in self.out:
                self.out[shape] = torch.zeros(shape, dtype=x.dtype)
            return self.out[shape]

    targets = [(name, m) for name, m in model.named_modules() if hasattr(m, "out_features")]
    for name, m in targets:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, Stub(m.out_features))
    runs = []
    for t in args.threads:
        torch.set_num_threads(TORCH_THREADS or t)
        run = time_runs(lambda: torch_decode(model, prompt, args.tokens), t, args.repeats)
        runs.append({"threads": t, "tok_s": run["tok_s"], "stubbed_layers": len(targets)})
    return runs


# ---- llama.cpp ----------------------------------------------------------------------------------


def run_llamacpp(args) -> dict:
    import llama_cpp
    from llama_cpp import Llama

    result: dict = {"peer": "llamacpp", "llama_cpp_python": llama_cpp.__version__}
    prompt = args.prompt_ids
    n_vocab = None
    runs = []
    for t in args.threads:
        t0 = time.perf_counter()
        # n_batch >= the prompt: one prefill call. Weights are mmap'd and, for Q4_0 on x86, moved
        # into the CPU backend's repacked layout, as llama.cpp loads any model.
        llm = Llama(model_path=args.gguf, n_ctx=len(prompt) + args.tokens + 16, n_batch=64,
                    n_threads=t, n_threads_batch=t, verbose=False)
        result.setdefault("load_s", time.perf_counter() - t0)
        n_vocab = llm.n_vocab()

        def last_logits() -> np.ndarray:
            ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
            return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()

        def decode():
            llm.reset()
            llm.eval(prompt)
            first = last_logits()
            token = int(first.argmax())
            tokens, times = [token], []
            for _ in range(args.tokens):
                t1 = time.perf_counter()
                llm.eval([token])
                token = int(last_logits().argmax())
                times.append(time.perf_counter() - t1)
                tokens.append(token)
            return tokens, times, first

        runs.append(time_runs(decode, t, args.repeats))
        del llm
    result["n_vocab"] = n_vocab
    result["format"] = "ggml's types as stored in the file (activations quantized to 8 bits: W4A8)"
    result["runs"] = runs
    np.save(args.logits, runs[0].pop("logits"))
    for r in runs[1:]:
        r.pop("logits")
    return result


# ---- timing -------------------------------------------------------------------------------------


def time_runs(decode, threads: int, repeats: int) -> dict:
    """One untimed warm-up decode, then `repeats` decodes; a repeat's speed is its steps over the
    sum of its step times (the decode phase only: the prefill is outside)."""
    tokens, _, logits = decode()
    speeds = []
    for _ in range(repeats):
        again, times, _ = decode()
        if again != tokens:
            raise RuntimeError(f"greedy tokens changed between runs at {threads} threads: {tokens} vs {again}")
        speeds.append(len(times) / sum(times))
    print(f"llama3_decode: {threads} thread(s): {statistics.median(speeds):.2f} tok/s "
          f"(repeats {', '.join(f'{s:.2f}' for s in speeds)})", file=sys.stderr)
    return {"threads": threads, "tok_s": statistics.median(speeds), "tok_s_all": speeds,
            "tokens": tokens, "logits": logits}


def main() -> None:
    ap = argparse.ArgumentParser(description="One peer of bench/llama3_decode.py.")
    ap.add_argument("peer", choices=["bf16", "w4a16", "torchao", "llamacpp"])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    ap.add_argument("--prompt-ids", type=lambda s: [int(v) for v in s.split(",")], required=True)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", required=True)
    ap.add_argument("--logits", required=True)
    args = ap.parse_args()
    try:
        result = run_llamacpp(args) if args.peer == "llamacpp" else run_transformers(args, args.peer)
    except Exception as e:  # reported in the table, not a crash of the whole benchmark
        result = {"peer": args.peer, "error": f"{type(e).__name__}: {e}"}
        import traceback

        traceback.print_exc()
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
