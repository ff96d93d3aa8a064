"""w4a16.convert from Python: the gguf-py test file (tests/data/gguf/model.gguf) into a w4a16 file."""

from __future__ import annotations

import os

import numpy as np
import pytest

import w4a16

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "gguf")


def test_convert_gguf_reports_layers_and_calls_progress(tmp_path):
    out = tmp_path / "model.w4a16.safetensors"
    seen = []
    report = w4a16.convert(os.path.join(DATA, "model.gguf"), out, progress=lambda i, n, name, what: seen.append((i, n)))
    assert report["source_format"] == "gguf"
    assert report["quantized_layers"] == len(w4a16.layers(out)) > 0
    assert sum(report["layers_by_kind"].values()) == report["quantized_layers"]
    assert [i for i, _ in seen] == list(range(1, len(seen) + 1))
    assert all(n == len(seen) for _, n in seen)
    layer = w4a16.Linear.from_file(out, w4a16.layers(out)[0])
    x = np.ones((2, layer.in_features), dtype=np.float16)
    assert layer(x).shape == (2, layer.out_features)


def test_convert_errors(tmp_path):
    with pytest.raises(OSError):
        w4a16.convert(tmp_path / "missing", tmp_path / "o.safetensors")
    (tmp_path / "x.bin").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="neither"):
        w4a16.convert(tmp_path / "x.bin", tmp_path / "o.safetensors")

    def fail(*_):
        raise KeyError("stop")

    with pytest.raises(KeyError):
        w4a16.convert(os.path.join(DATA, "model.gguf"), tmp_path / "o.safetensors", progress=fail)
    assert not (tmp_path / "o.safetensors").exists()
