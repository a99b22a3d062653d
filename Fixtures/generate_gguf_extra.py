#!/usr/bin/env python3
"""Extra GGUF export cases for ckpt (issue 14), from llama.cpp's own code at the pinned commit.

    .venv/bin/python Fixtures/generate_gguf_extra.py [--sdist llama_cpp_python-0.3.36.tar.gz]

1. For hub-style model ids and folder names, what gguf-py's `Metadata.get_model_id_components` and
   `Metadata.id_to_title` return -> Fixtures/families/expected/gguf_names.json.
2. convert_hf_to_gguf.py on Fixtures/tiny-llama-json (a LLaMA whose only tokenizer is a SentencePiece-style
   tokenizer.json: gguf-py's LlamaHfVocab path) in f16 and q8_0 -> Fixtures/families/gguf/tiny-llama-json-<type>.json
   (the same dump as Fixtures/quant/gguf).
Both from the llama-cpp-python 0.3.36 sdist (llama.cpp 0c1e57098). Nothing here is computed with ckpt.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate_quant  # noqa: E402

IDS = [
    "tiny-llama", "mistral-v01", "llama32-tied", "qwen25-tied", "Meta-Llama-3-8B", "Meta-Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3", "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen2-7B", "vicuna-7b-v1.5", "lmsys/vicuna-13b-v1.5-16k", "bloom-7b1", "Mixtral-8x7B-Instruct-v0.1",
    "llama3b", "TinyLlama-1.1B-Chat-v1.0", "phi-2", "gemma-2b-it", "falcon-40b", "model-q8_0", "llama-2-7b-chat-f16",
    "my_model", "llama-7b", "some model name", "./local", "org/name-v2-small", "codellama-34b-instruct",
    "Llama-2-70b-hf", "deepseek-coder-6.7b-base", "x-xl", "a-b-c", "v1", "Vicuna-7B-v1.5",
]
PARAMS = [0, 227_000, 7_000_000_000]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdist", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lcpp = generate_quant.get_llama_cpp(args.sdist, Path(tmp))
        sys.path.insert(0, str(lcpp / "gguf-py"))
        from gguf.metadata import Metadata
        cases = []
        for i in IDS:
            for p in PARAMS:
                name, org, basename, finetune, version, size = Metadata.get_model_id_components(i, p)
                cases.append({"id": i, "total_params": p, "name": name, "organization": org, "basename": basename,
                              "finetune": finetune, "version": version, "size_label": size,
                              "title": Metadata.id_to_title(name) if name else None})
        for outtype in ["f16", "q8_0"]:
            dest = Path(tmp) / f"tiny-llama-json-{outtype}.gguf"
            generate_quant.run_convert(lcpp, "tiny-llama-json", outtype, dest)
            d = generate_quant.describe_gguf(dest)
            (HERE / "families" / "gguf" / f"tiny-llama-json-{outtype}.json").write_text(json.dumps(d, indent=2) + "\n")
            print(f"tiny-llama-json {outtype}: {d['file']['sha256']}")
    out = HERE / "families" / "expected" / "gguf_names.json"
    out.write_text(json.dumps({"source": "gguf-py Metadata at llama.cpp 0c1e57098 (llama-cpp-python 0.3.36 sdist)",
                               "cases": cases}, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases -> {out}")


if __name__ == "__main__":
    main()
