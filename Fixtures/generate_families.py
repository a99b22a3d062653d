#!/usr/bin/env python3
"""Model-family fixtures for ckpt (issue 14): LLaMA-3/3.1/3.2, Mistral v0.1-v0.3, Qwen2/2.5.

    .venv/bin/python Fixtures/generate_families.py [--sdist llama_cpp_python-0.3.36.tar.gz] [--skip-gguf]

Python is used for fixture generation only; every output is committed. Expected values come from the reference
tools (transformers, tokenizers, sentencepiece, llama.cpp's convert_hf_to_gguf.py at the commit vendored in the
llama-cpp-python 0.3.36 sdist, gguf-py), never from ckpt. Rewrites Fixtures/families/ except README.md:

  <model>/                         tiny checkpoint as the hub ships it: hand-written hub (transformers-4) config.json
                                   (llama31-tf5: the transformers-5 spelling), bf16 model.safetensors, tokenizer files
  expected/<model>.json            prompts (text, ids), greedy continuations, margins, facts (schema in README.md)
  expected/<model>.logits.safetensors  fp32 logits of every prompt position: prompt0, prompt1, prompt2 [n, vocab]
  gguf/<model>-<type>.json         gguf-py view of convert_hf_to_gguf.py's output for f32, f16, bf16, q8_0
  gguf/<model>-q8_0.gguf           the q8_0 files themselves
  VERSIONS.json                    tool versions, sdist hash, llama.cpp commit, seeds, converter patch and log

Reuses generate_quant.py (sdist download/check, converter run, GGUF dump) and generate_tokenizers.py (trainer and
the LLaMA-3 / Qwen2 regexes), both imported, not copied.
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["ATEN_CPU_CAPABILITY"] = "default"
os.environ["MKL_CBWR"] = "COMPATIBLE"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["TQDM_DISABLE"] = "1"

import argparse  # noqa: E402
import ast  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate_quant as gq  # noqa: E402  (sets the same environment, deterministic torch, 1 thread)
import generate_tokenizers as gt  # noqa: E402

import gguf  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import sentencepiece as spm  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import AddedToken, Tokenizer, processors  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

OUT = HERE / "families"
EXP = OUT / "expected"
GG = OUT / "gguf"
SPM_MODEL = HERE / "tokenizer" / "tokenizer.model"

GGUF_TYPES = ["f32", "f16", "bf16", "q8_0"]
GGUF_KEEP = {"q8_0"}
MIN_MARGIN = 1e-3
N_NEW = 12
TOKENIZER_SEED = None  # tokenizers' BpeTrainer is deterministic (no seed)
BASE_SEED = 20240614
DATA_SEED = 7  # batch sampling (the same batches for every model sharing a tokenizer)
CORPUS = HERE / "corpus.txt"  # the tiny-llama training corpus (Fixtures/make_corpus.py)

# Training (the tiny-llama recipe of generate.py, fp32 eager on CPU, one thread), so that `ckpt verify`'s perplexity
# on its built-in English text is far below vocab_size / 4. The text is Verification.builtInText
# (Sources/CkptKit/Ops/Verify.swift), copied here; perplexity is computed as verify does (the folder's tokenizer with
# its default special tokens, exp(mean NLL of the next-token predictions)).
TRAIN = dict(
    steps=400,
    batch_size=16,
    seq_len=64,
    optimizer="AdamW",
    lr=3e-3,
    min_lr=3e-4,
    warmup_steps=30,
    schedule="linear warmup, cosine decay to min_lr",
    betas=[0.9, 0.95],
    eps=1e-8,
    weight_decay=0.01,
    grad_clip=1.0,
    data="Fixtures/corpus.txt split at blank lines; each paragraph = [bos] + ids + [eos] with the folder's "
         "tokenizer (no special tokens inside; Qwen2: no bos); the stream is concatenated, last 5% held out",
    eval_batches="32 fixed windows of seq_len from the held-out last 5% of the token stream",
    train_dtype="float32",
    attn_implementation="eager",
    init="init_weights (N(0, 1/fan_in) matrices, RMSNorm 1 + 0.1 N(0,1), Qwen2 biases N(0, 0.25)), then trained",
    saved_dtype="bfloat16",
    data_seed=DATA_SEED,
)
VERIFY_TEXT = ("Return a new list containing all items from the iterable in ascending order. "
               "A custom key function can be supplied to customize the sort order, and the reverse flag can be set to "
               "request the result in descending order.")

# ---------------------------------------------------------------------------------------------------------------
# prompts (the same texts for every model; ids come from each folder's own tokenizer). The models are trained on
# paragraphs ending in eos, so a finished sentence is continued with eos: each prompt is the first candidate of its
# slot (a base text + an unfinished ending, shortest ending first) whose greedy continuation has no eos id and a
# min margin >= PICK_MARGIN for every supported model (pick_prompts).

PROMPT_BASES = [
    "Return the value of the given object",
    "The caf\u00e9 is na\u00efve \u2014 \u6771\u4eac \U0001f680",
    "Return a new list of the items in the sequence. If the argument is not given, the default value is used instead",
]
PROMPT_ENDINGS = [": 1, 2, 3, 4, 5, 6, 7, 8,", " in [1, 2, 3, 4, 5, 6,", ": 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
                  " = [0, 1, 2, 3, 4, 5, 6, 7,", " (1, 2, 3, 4, 5, 6, 7, 8,", ": 0, 0, 0, 0, 0, 0, 0, 0,",
                  " in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", ": [1, 2], [3, 4], [5, 6],", ": a, b, c, d, e, f, g, h,",
                  " = (0, 1, 2, 3, 4, 5,", ": 10, 20, 30, 40, 50,", " [1, 2, 3,", ", 1, 2, 3, 4, 5, 6, 7, 8,",
                  ": x, y, z, x, y, z,", " (a, b, c, d, e, f,",
                  ": 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,",
                  ": 2, 2, 2, 2, 2, 2, 2, 2,", " in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
                  " [1, 2, 3, 4, 5, 6, 7, 8, 9",
                  " (1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", ": 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,",
                  ": 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,", " to", " with", " and the", " in the", " is"]
PROMPT_ENDINGS += [f"{pre}{opn}{', '.join(str(a + d * i) for i in range(n))},"
                   for a in (0, 1, 2, 3, 5, 10) for n in (4, 6, 8, 10, 12, 16) for d in (0, 1, 2)
                   for pre, opn in ((":", " "), (" in", " ["), (" =", " ("), ("", " ["))]
PROMPT_ENDINGS = sorted(dict.fromkeys(PROMPT_ENDINGS), key=len)  # shortest first (stable): small logits files
PROMPT_CANDIDATES = [[b + e for e in PROMPT_ENDINGS] for b in PROMPT_BASES]
PICK_MARGIN = 2 * 1e-3
PPL_TARGET_FRACTION = 8  # verify fails above vocab_size / 4; the generator asserts / 8
PROMPTS = None  # set by pick_prompts

LLAMA31_CHAT_TEMPLATE = (
    "{{- bos_token }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
    "'<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n")
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# ---------------------------------------------------------------------------------------------------------------
# tiny model specs: hub (transformers-4) config.json, written by hand


def llama_cfg(**over):
    c = {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": None, "eos_token_id": None, "hidden_act": "silu", "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 176, "max_position_embeddings": 8192,
        "mlp_bias": False, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
        "num_key_value_heads": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": None,
    }
    c.update(over)
    return dict(sorted(c.items()))


def mistral_cfg(**over):
    c = {
        "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 176, "max_position_embeddings": 32768,
        "model_type": "mistral", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": 1000,
    }
    c.update(over)
    return dict(sorted(c.items()))


def qwen2_cfg(**over):
    c = {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": None,
        "eos_token_id": None, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
        "intermediate_size": 176, "max_position_embeddings": 32768, "max_window_layers": 2,
        "model_type": "qwen2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.37.2", "use_cache": True,
        "use_sliding_window": False, "vocab_size": None,
    }
    c.update(over)
    return dict(sorted(c.items()))


LLAMA31_SCALING = {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"}
LLAMA32_SCALING = {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"}

# name -> (tokenizer kind, config builder taking the tokenizer facts, seed offset)
SUPPORTED = ["llama3", "llama31", "llama32-tied", "llama31-tf5", "mistral-v01", "mistral-v03", "mistral-swa8",
             "mistral-headdim", "qwen2", "qwen25-tied"]
REFUSED = ["gemma", "phi3"]


def model_configs(tok: dict) -> dict:
    l3, qw = tok["llama3"], tok["qwen2"]
    return {
        "llama3": llama_cfg(bos_token_id=l3["bos"], eos_token_id=l3["end_of_text"], vocab_size=l3["size"],
                            transformers_version="4.40.0.dev0"),
        "llama31": llama_cfg(bos_token_id=l3["bos"], eos_token_id=[l3["end_of_text"], l3["eom"], l3["eot"]],
                             vocab_size=l3["size"], max_position_embeddings=131072,
                             rope_scaling=dict(LLAMA31_SCALING)),
        "llama32-tied": llama_cfg(bos_token_id=l3["bos"], eos_token_id=l3["end_of_text"], vocab_size=l3["size"],
                                  max_position_embeddings=131072, rope_scaling=dict(LLAMA32_SCALING),
                                  tie_word_embeddings=True, head_dim=16, transformers_version="4.45.0.dev0"),
        "mistral-v01": mistral_cfg(),
        "mistral-v03": mistral_cfg(rope_theta=1000000.0, sliding_window=None, vocab_size=tok["spm"]["size"] + 24,
                                   transformers_version="4.42.0.dev0"),
        "mistral-swa8": mistral_cfg(sliding_window=8),
        "mistral-headdim": mistral_cfg(head_dim=32, rope_theta=1000000.0, sliding_window=None,
                                       max_position_embeddings=1024000, transformers_version="4.43.0.dev0"),
        "qwen2": qwen2_cfg(bos_token_id=qw["endoftext"], eos_token_id=qw["endoftext"], vocab_size=qw["padded"]),
        "qwen25-tied": qwen2_cfg(bos_token_id=qw["endoftext"], eos_token_id=qw["endoftext"],
                                 vocab_size=qw["padded"], tie_word_embeddings=True, max_window_layers=2,
                                 transformers_version="4.43.1"),
    }


def refused_configs() -> dict:
    return {
        "gemma": {
            "architectures": ["GemmaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": 2, "eos_token_id": 1, "head_dim": 16, "hidden_act": "gelu",
            "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64, "initializer_range": 0.02,
            "intermediate_size": 176, "max_position_embeddings": 8192, "model_type": "gemma",
            "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 1, "pad_token_id": 0,
            "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
            "transformers_version": "4.38.0.dev0", "use_cache": True, "vocab_size": 1000,
        },
        "phi3": {
            "architectures": ["Phi3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": 1, "embd_pdrop": 0.0, "eos_token_id": 1000, "hidden_act": "silu", "hidden_size": 64,
            "initializer_range": 0.02, "intermediate_size": 176, "max_position_embeddings": 4096,
            "model_type": "phi3", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 4,
            "original_max_position_embeddings": 4096, "pad_token_id": 1000, "resid_pdrop": 0.0,
            "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0, "sliding_window": 2047,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.2",
            "use_cache": True, "vocab_size": 1064,
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# helpers


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def fresh(p: Path) -> Path:
    if p.exists():
        shutil.rmtree(p)
    p.mkdir(parents=True)
    return p


def added_decoder_entry(content: str, special: bool) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
            "special": special}


# ---------------------------------------------------------------------------------------------------------------
# tokenizers


def train_tokenizers(work: Path) -> dict:
    """LLaMA-3 and Qwen2 style byte-level BPEs (~1000 merges-vocab) and the tiny SentencePiece model's HF files."""
    whole = (HERE / "tokenizers" / "corpus.txt").read_text(encoding="utf-8")
    lines = gt.corpus_lines(whole)
    facts = {}

    # LLaMA-3: Split(LLaMA-3 regex) + ByteLevel(use_regex false), ignore_merges, 256 specials, BOS template
    t = gt.train_bytelevel(lines, gt.LLAMA3_PATTERN, 1000, qwen=False)
    t.add_special_tokens([AddedToken(c, special=True, normalized=False) for c in gt.LLAMA31_SPECIALS])
    bos = t.token_to_id("<|begin_of_text|>")
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    p = work / "llama3.tokenizer.json"
    t.save(str(p))
    facts["llama3"] = {"path": p, "size": t.get_vocab_size(with_added_tokens=True), "bos": bos,
                       "end_of_text": t.token_to_id("<|end_of_text|>"), "eom": t.token_to_id("<|eom_id|>"),
                       "eot": t.token_to_id("<|eot_id|>"),
                       "model_vocab": t.get_vocab_size(with_added_tokens=False)}

    # Qwen2: NFC, single digits, no BOS, 3 special + 2 non-special added tokens
    t = gt.train_bytelevel(lines, gt.QWEN2_PATTERN, 1000, qwen=True)
    t.add_special_tokens([AddedToken(c, special=True, normalized=False)
                          for c in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    t.add_tokens([AddedToken("<tool_call>", special=False, normalized=False),
                  AddedToken("</tool_call>", special=False, normalized=False)])
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    p = work / "qwen2.tokenizer.json"
    t.save(str(p))
    size = t.get_vocab_size(with_added_tokens=True)
    facts["qwen2"] = {"path": p, "size": size, "padded": ((size + 63) // 64) * 64,
                      "endoftext": t.token_to_id("<|endoftext|>"), "im_start": t.token_to_id("<|im_start|>"),
                      "im_end": t.token_to_id("<|im_end|>"),
                      "model_vocab": t.get_vocab_size(with_added_tokens=False)}
    if facts["qwen2"]["padded"] == size:
        facts["qwen2"]["padded"] += 64

    # SentencePiece (Fixtures/tokenizer/tokenizer.model, BPE with byte_fallback) -> tokenizer.json as transformers
    # converts it (LlamaTokenizer from tokenizer.model, save_pretrained)
    sp = spm.SentencePieceProcessor(model_file=str(SPM_MODEL))
    d = fresh(work / "spm")
    shutil.copyfile(SPM_MODEL, d / "tokenizer.model")
    tk = transformers.LlamaTokenizer.from_pretrained(str(d), add_bos_token=True, add_eos_token=False, legacy=True)
    tk.save_pretrained(str(d))
    facts["spm"] = {"path": d / "tokenizer.json", "size": sp.get_piece_size()}
    return facts


def llama3_tokenizer_config(tok: dict, instruct: bool) -> dict:
    path = tok["path"]
    j = json.loads(path.read_text(encoding="utf-8"))
    dec = {str(a["id"]): added_decoder_entry(a["content"], a["special"]) for a in j["added_tokens"]}
    c = {
        "added_tokens_decoder": dec,
        "bos_token": "<|begin_of_text|>",
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|eot_id|>" if instruct else "<|end_of_text|>",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072 if instruct else 1000000000000000019884624838656,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    if instruct:
        c["chat_template"] = LLAMA31_CHAT_TEMPLATE
    return dict(sorted(c.items()))


def qwen2_tokenizer_config(tok: dict, instruct: bool) -> dict:
    j = json.loads(tok["path"].read_text(encoding="utf-8"))
    dec = {str(a["id"]): added_decoder_entry(a["content"], a["special"]) for a in j["added_tokens"]}
    c = {
        "add_prefix_space": False,
        "added_tokens_decoder": dec,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": QWEN2_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>" if instruct else "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 131072 if instruct else 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    return dict(sorted(c.items()))


def mistral_tokenizer_config() -> dict:
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {"0": added_decoder_entry("<unk>", True), "1": added_decoder_entry("<s>", True),
                                 "2": added_decoder_entry("</s>", True)},
        "additional_special_tokens": [],
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": True,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": None,
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }


def install_tokenizer(name: str, folder: Path, tok: dict) -> None:
    if name.startswith("llama"):
        shutil.copyfile(tok["llama3"]["path"], folder / "tokenizer.json")
        write_json(folder / "tokenizer_config.json", llama3_tokenizer_config(tok["llama3"], name != "llama3"))
    elif name.startswith("qwen"):
        shutil.copyfile(tok["qwen2"]["path"], folder / "tokenizer.json")
        write_json(folder / "tokenizer_config.json", qwen2_tokenizer_config(tok["qwen2"], name == "qwen25-tied"))
    elif name.startswith("mistral"):
        shutil.copyfile(SPM_MODEL, folder / "tokenizer.model")
        shutil.copyfile(tok["spm"]["path"], folder / "tokenizer.json")
        write_json(folder / "tokenizer_config.json", mistral_tokenizer_config())


# ---------------------------------------------------------------------------------------------------------------
# weights


def init_weights(model, seed: int, bias_std: float = 0.5) -> None:
    """Own initialisation (independent of transformers' init order): every matrix N(0, 1/fan_in) (rows of the
    embedding N(0, 1/hidden)), so activations keep unit scale and the logits have std ~ 1; RMSNorm weights
    1 + 0.1 N(0,1); biases N(0, bias_std^2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif n.endswith(".bias"):
                p.copy_(bias_std * torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                fan_in = p.shape[1]
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                raise AssertionError(n)


def token_stream(kind: str, tok: dict) -> torch.Tensor:
    """Fixtures/corpus.txt as one token stream: per paragraph [bos] + ids + [eos], with the reference library of the
    folder's tokenizer (tokenizers' tokenizer.json without the post-processor; sentencepiece for the SPM folders)."""
    text = CORPUS.read_text(encoding="utf-8")
    if kind == "spm":
        sp = spm.SentencePieceProcessor(model_file=str(SPM_MODEL))
        enc, bos, eos = sp.encode, [sp.bos_id()], [sp.eos_id()]
    else:
        t = Tokenizer.from_file(str(tok[kind]["path"]))
        enc = lambda para: t.encode(para, add_special_tokens=False).ids  # noqa: E731
        bos = [tok[kind]["bos"]] if kind == "llama3" else []
        eos = [tok[kind]["end_of_text"] if kind == "llama3" else tok[kind]["endoftext"]]
    ids = []
    for para in text.split("\n\n"):
        para = para.strip("\n")
        if para:
            ids += bos + enc(para) + eos
    return torch.tensor(ids, dtype=torch.long)


def tokenizer_kind(name: str) -> str:
    return "llama3" if name.startswith("llama") else "qwen2" if name.startswith("qwen") else "spm"


def lr_at(step: int) -> float:
    t = TRAIN
    if step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    p = (step - t["warmup_steps"]) / max(1, t["steps"] - t["warmup_steps"])
    return t["min_lr"] + 0.5 * (t["lr"] - t["min_lr"]) * (1 + math.cos(math.pi * p))


@torch.no_grad()
def eval_loss(model, batch) -> float:
    model.eval()
    loss = model(input_ids=batch, labels=batch).loss.item()
    model.train()
    return loss


def train_model(name: str, model, stream: torch.Tensor) -> dict:
    """generate.py's train_model recipe (TRAIN) on an initialised fp32 model; returns the loss statistics."""
    model.train()
    T, B = TRAIN["seq_len"], TRAIN["batch_size"]
    split = int(len(stream) * 0.95)
    train_ids, held = stream[:split], stream[split:]
    stride = max(T, (len(held) - T) // 32)
    eval_batch = torch.stack([held[i * stride:i * stride + T] for i in range(32)])
    gen = torch.Generator().manual_seed(DATA_SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], betas=tuple(TRAIN["betas"]),
                            eps=TRAIN["eps"], weight_decay=TRAIN["weight_decay"])
    init_eval = eval_loss(model, eval_batch)
    losses = []
    for step in range(TRAIN["steps"]):
        ix = torch.randint(0, len(train_ids) - T, (B,), generator=gen)
        batch = torch.stack([train_ids[i:i + T] for i in ix.tolist()])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        losses.append(loss.item())
    final_eval = eval_loss(model, eval_batch)
    model.eval()
    return {
        "stream_tokens": len(stream), "train_tokens": split, "steps": TRAIN["steps"],
        "initial_train_batch_loss": round(losses[0], 4),
        "final_train_loss_mean_last_50_steps": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "initial_eval_loss": round(init_eval, 4),
        "final_eval_loss": round(final_eval, 4),
    }


def verify_text_perplexity(model, hf_tok) -> dict:
    """`ckpt verify`'s perplexity: the built-in text with the tokenizer's default special tokens, exp(mean NLL)."""
    ids = hf_tok(VERIFY_TEXT)["input_ids"]
    with torch.no_grad():
        lg = model(torch.tensor([ids])).logits[0].float()
    nll = torch.nn.functional.cross_entropy(lg[:-1], torch.tensor(ids[1:]), reduction="mean")
    vocab = model.config.vocab_size
    return {"text": "Verification.builtInText (Sources/CkptKit/Ops/Verify.swift)", "n_tokens": len(ids),
            "perplexity": float(torch.exp(nll)), "vocab_size": vocab,
            "verify_limit(vocab_size/4)": vocab / 4}


def build_folder(name: str, cfg: dict, seed: int, folder: Path, stream=None):
    fresh(folder)
    write_json(folder / "config.json", cfg)
    conf = AutoConfig.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_config(conf, dtype=torch.float32, attn_implementation="eager")
    init_weights(model, seed)
    stats = train_model(name, model, stream) if stream is not None else None
    model = model.to(torch.bfloat16)
    model.save_pretrained(str(folder))
    for extra in ("generation_config.json",):
        (folder / extra).unlink(missing_ok=True)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"], list(folder.iterdir())
    write_json(folder / "config.json", cfg)  # the hub spelling, overwriting transformers 5's
    return stats


# ---------------------------------------------------------------------------------------------------------------
# expectations


def load_fp32(folder: Path, **kw):
    m = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="eager", **kw)
    m.eval()
    return m


def eos_ids(folder: Path) -> set:
    c = json.loads((folder / "config.json").read_text())
    e = c.get("eos_token_id")
    return set(e if isinstance(e, list) else [e]) - {None}


def greedy(model, ids: list) -> dict:
    inp = torch.tensor([ids])
    gc = transformers.GenerationConfig(do_sample=False, max_new_tokens=N_NEW, min_new_tokens=0, eos_token_id=None,
                                       pad_token_id=0, bos_token_id=None, num_beams=1)
    with torch.no_grad():
        out = model.generate(inp, attention_mask=torch.ones_like(inp), generation_config=gc,
                             output_logits=True, return_dict_in_generate=True)
    new = out.sequences[0, len(ids):].tolist()
    assert len(new) == N_NEW, new
    margins = []
    for step, lg in enumerate(out.logits):
        v = lg[0].float()
        top = torch.topk(v, 2)
        assert int(top.indices[0]) == new[step]
        margins.append(float(top.values[0] - top.values[1]))
    # the same tokens from full (cache-free) forwards of the whole sequence
    with torch.no_grad():
        full = model(out.sequences).logits[0]
    assert full[len(ids) - 1: len(ids) - 1 + N_NEW].argmax(-1).tolist() == new
    return {"ids": new, "margins": margins}


def expectations(name: str, folder: Path) -> tuple:
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = load_fp32(folder)
    vocab = model.config.vocab_size
    stops = eos_ids(folder)
    prompts, logits = [], {}
    all_margins = []
    for i, text in enumerate(PROMPTS):
        ids = tok(text)["input_ids"]
        with torch.no_grad():
            lg = model(torch.tensor([ids])).logits[0].float().contiguous()
        assert lg.shape == (len(ids), vocab)
        logits[f"prompt{i}"] = lg
        g = greedy(model, ids)
        all_margins += g["margins"]
        prompts.append({
            "text": text, "ids": ids, "n_tokens": len(ids),
            "greedy": {"new_ids": g["ids"], "min_margin": min(g["margins"]),
                       "eos_in_continuation": any(t in stops for t in g["ids"])},
            "logits": {"tensor": f"prompt{i}", "std": float(lg.std()), "max_abs": float(lg.abs().max()),
                       "last_argmax": int(lg[-1].argmax())},
        })
    return prompts, logits, min(all_margins), model, tok


def rope_facts(model) -> dict:
    re_ = model.model.rotary_emb
    inv = re_.inv_freq.float()
    return {"inv_freq": [float(x) for x in inv], "attention_scaling": float(re_.attention_scaling),
            "rope_type": str(getattr(re_, "rope_type", None))}


def make_model(name: str, cfg: dict, tok: dict, seeds: dict, streams: dict) -> dict:
    """Initialise (seed BASE_SEED + 100 * index), train on the tokenizer's corpus stream, save bf16 + tokenizer."""
    folder = OUT / name
    seed = BASE_SEED + 100 * SUPPORTED.index(name)
    kind = tokenizer_kind(name)
    if kind not in streams:
        streams[kind] = token_stream(kind, tok)
    stats = build_folder(name, cfg, seed, folder, streams[kind])
    install_tokenizer(name, folder, tok)
    seeds[name] = seed
    return stats


def pick_prompts(names: list) -> tuple:
    """The first candidate per slot whose cache-free greedy continuation (fp32, N_NEW tokens) has no eos id (config
    or tokenizer) and a min margin >= PICK_MARGIN for every model; slot 0 also needs its third new token to differ
    from the first two (a test stops generation at it)."""
    models = {}
    for n in names:
        hf_tok = AutoTokenizer.from_pretrained(str(OUT / n))
        models[n] = (load_fp32(OUT / n), hf_tok, eos_ids(OUT / n) | ({hf_tok.eos_token_id} - {None}))
    chosen, tried = [], []
    for slot, cands in enumerate(PROMPT_CANDIDATES):
        for text in cands:
            ok = True
            for n, (model, hf_tok, stops) in models.items():
                seq = hf_tok(text)["input_ids"]
                n0 = len(seq)
                with torch.no_grad():
                    for _ in range(N_NEW):
                        v = model(torch.tensor([seq])).logits[0, -1].float()
                        top = torch.topk(v, 2)
                        seq.append(int(top.indices[0]))
                        if float(top.values[0] - top.values[1]) < PICK_MARGIN or seq[-1] in stops:
                            ok = False
                            break
                if ok and slot == 0 and seq[n0 + 2] in seq[n0:n0 + 2]:
                    ok = False
                if not ok:
                    tried.append({"slot": slot, "text": text, "rejected_by": n, "at_step": len(seq) - 1 - n0})
                    break
            if ok:
                chosen.append(text)
                break
        else:
            raise SystemExit(f"no prompt candidate for slot {slot}")
    return chosen, tried


def finish_expectations(name, folder, cfg, prompts, logits, min_margin, model, hf_tok, seed, stats) -> dict:
    assert min_margin >= MIN_MARGIN and not any(p["greedy"]["eos_in_continuation"] for p in prompts), name
    st = safetensors.safe_open(str(folder / "model.safetensors"), framework="pt")
    tensors = {k: {"dtype": str(st.get_slice(k).get_dtype()), "shape": list(st.get_slice(k).get_shape())}
               for k in st.keys()}
    c = model.config
    ppl = verify_text_perplexity(model, hf_tok)
    assert ppl["perplexity"] <= c.vocab_size / PPL_TARGET_FRACTION, (name, ppl)
    exp = {
        "model": name,
        "folder": f"Fixtures/families/{name}",
        "seed": seed,
        "reference": {"library": f"transformers {transformers.__version__}, torch {torch.__version__}",
                      "load": "AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, "
                              "attn_implementation='eager')",
                      "tokenizer": "AutoTokenizer.from_pretrained(folder); tok(text)['input_ids'] "
                                   "(default special tokens)",
                      "greedy": f"generate(do_sample=False, max_new_tokens={N_NEW}, eos_token_id=None) in fp32; "
                                "margin = top-1 minus top-2 logit of each step"},
        "config": {
            "architecture": cfg["architectures"][0], "model_type": cfg["model_type"],
            "vocab_size": c.vocab_size, "tokenizer_size": len(hf_tok),
            "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
            "head_dim": getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads,
            "intermediate_size": c.intermediate_size, "rms_norm_eps": c.rms_norm_eps,
            "tie_word_embeddings": bool(c.tie_word_embeddings),
            "sliding_window_effective": getattr(c, "sliding_window", None)
            if cfg["model_type"] != "qwen2" or cfg.get("use_sliding_window") else None,
            "rope_parameters_as_loaded": {k: v for k, v in (c.rope_parameters or {}).items()},
        },
        "rope": rope_facts(model),
        "tensors": {"count": len(tensors), "names": tensors},
        "training": stats,
        "verify_text_perplexity": ppl["perplexity"],
        "verify_text": {k: v for k, v in ppl.items() if k != "perplexity"},
        "prompts": prompts,
        "min_greedy_margin": min_margin,
    }
    save_file(logits, str(EXP / f"{name}.logits.safetensors"), metadata={"format": "pt"})
    return exp


# ---------------------------------------------------------------------------------------------------------------
# GGUF (llama.cpp's converter, with the tiny tokenizers' chkhsh digests registered)


def chktxt_of(lcpp: Path) -> str:
    src = (lcpp / "conversion" / "base.py").read_text(encoding="utf-8")
    m = re.search(r"^\s*chktxt = (.+)$", src, re.M)
    return ast.literal_eval(m.group(1))


def chkhsh_of(folder: Path, chktxt: str) -> str:
    tok = AutoTokenizer.from_pretrained(str(folder))
    return sha256(str(tok.encode(chktxt)).encode())


def patch_converter(lcpp: Path, digests: dict) -> dict:
    """Register the tiny tokenizers' digests in the (temporary) copy of conversion/base.py."""
    p = lcpp / "conversion" / "base.py"
    src = p.read_text(encoding="utf-8")
    anchor = "        res = None\n\n        # NOTE: if you get an error here"
    assert src.count(anchor) == 1
    lines = "".join(f'        if chkhsh == "{h}":\n            # ckpt tiny fixture tokenizer\n'
                    f'            res = "{res}"\n' for h, res in digests.items())
    src = src.replace(anchor, "        res = None\n" + lines + anchor[len("        res = None\n"):])
    p.write_text(src, encoding="utf-8")
    return {"file": "conversion/base.py", "function": "TextModel.get_vocab_base_pre",
            "inserted_after": "res = None", "digests": digests}


def gguf_section(lcpp: Path, work: Path, notes: dict) -> dict:
    fresh(GG)
    logs, summary = {}, {}
    for name in SUPPORTED:
        for outtype in GGUF_TYPES:
            keep = outtype in GGUF_KEEP
            dest = (GG if keep else work) / f"{name}-{outtype}.gguf"
            logs[f"{name}-{outtype}"] = gq.run_convert(lcpp, f"families/{name}", outtype, dest)
            desc = gq.describe_gguf(dest)
            desc["file"]["committed"] = keep
            write_json(GG / f"{name}-{outtype}.json", desc)
            check = tensor_check(name, dest, outtype)
            if outtype == "f32":
                summary[name] = gguf_summary(dest, desc)
                summary[name]["tensor_check"] = {}
            summary[name]["tensor_check"][outtype] = check
            print(f"  gguf {name}-{outtype}: {desc['kv_count']} KV, {desc['tensor_count']} tensors", flush=True)
    notes["convert_log"] = logs
    return summary


def tensor_check(name: str, path: Path, outtype: str) -> str:
    """Every converted tensor against the bf16 source as gguf-py casts it: q/k rows permuted for llama-arch files
    (LlamaModel.permute), untouched for qwen2; F32 for norms/biases/1-D, the outtype otherwise (Q8_0 -> F16 where a
    row is not a multiple of 32). rope_freqs.weight is generated, checked against the summary only."""
    folder = OUT / name
    cfg = AutoConfig.from_pretrained(str(folder))
    r = gguf.GGUFReader(str(path))
    arch = gguf.MODEL_ARCH.QWEN2 if cfg.model_type == "qwen2" else gguf.MODEL_ARCH.LLAMA
    nmap = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    src = safetensors.torch.load_file(str(folder / "model.safetensors"))
    hf_of = {nmap.get_name(k, try_suffixes=(".weight", ".bias")): k for k in src}
    seen, fallback = set(), []
    for t in r.tensors:
        if t.name == "rope_freqs.weight":
            assert arch == gguf.MODEL_ARCH.LLAMA and t.tensor_type == gguf.GGMLQuantizationType.F32
            continue
        hf = hf_of[t.name]
        seen.add(hf)
        w = src[hf].float().numpy()
        if arch == gguf.MODEL_ARCH.LLAMA and hf.endswith(("q_proj.weight", "k_proj.weight")):
            heads = cfg.num_attention_heads if "q_proj" in hf else cfg.num_key_value_heads
            w = gq.permute_qk(w, heads, heads)
        tt = t.tensor_type
        if w.ndim <= 1 or t.name.endswith("_norm.weight") or not t.name.endswith(".weight"):
            assert tt == gguf.GGMLQuantizationType.F32, (t.name, tt)
        want = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}[outtype]
        if w.ndim == 2 and tt.name != want:
            assert outtype == "q8_0" and tt == gguf.GGMLQuantizationType.F16 and w.shape[1] % 32, (t.name, tt)
            fallback.append(t.name)
        if tt == gguf.GGMLQuantizationType.F32:
            ok = np.array_equal(np.asarray(t.data).reshape(w.shape), w)
        elif tt == gguf.GGMLQuantizationType.F16:
            ok = bytes(t.data) == w.astype(np.float16).tobytes()
        else:
            ok = bytes(t.data) == gguf.quants.quantize(w.astype(np.float32), tt).tobytes()
        assert ok, (name, outtype, t.name)
    assert seen == set(src), set(src) - seen
    return ("all tensors equal the source as gguf-py casts it (q/k permuted)" if arch == gguf.MODEL_ARCH.LLAMA
            else "all tensors equal the source as gguf-py casts it (q/k/v weights and biases not permuted)") + (
        f"; F16 fallback for {len(fallback)} tensors (row length not a multiple of 32)" if fallback else "")


def gguf_summary(path: Path, desc: dict) -> dict:
    r = gguf.GGUFReader(str(path))
    meta = {m["key"]: m for m in desc["metadata"]}
    s = {
        "arch": meta["general.architecture"]["value"],
        "kv_count": desc["kv_count"], "tensor_count": desc["tensor_count"],
        "general": {k: m["value"] for k, m in meta.items() if k.startswith("general.")},
        "keys": [m["key"] for m in desc["metadata"]],
        "tokenizer.ggml.pre": meta.get("tokenizer.ggml.pre", {}).get("value"),
    }
    for t in r.tensors:
        if t.name == "rope_freqs.weight":
            s["rope_freqs"] = [float(x) for x in np.asarray(t.data, dtype=np.float32)]
    toks = r.fields["tokenizer.ggml.tokens"]
    types = r.fields["tokenizer.ggml.token_type"]
    tlist = [str(bytes(toks.parts[i]), "utf-8") for i in toks.data]
    ty = [int(types.parts[i][0]) for i in types.data]
    sc = None
    if "tokenizer.ggml.scores" in r.fields:
        f = r.fields["tokenizer.ggml.scores"]
        sc = [float(f.parts[i][0]) for i in f.data]
    s["n_tokens"] = len(tlist)
    interesting = [i for i, t in enumerate(ty) if t != 1]
    s["non_normal_tokens"] = [{"id": i, "token": tlist[i], "type": ty[i],
                               **({"score": sc[i]} if sc is not None else {})}
                              for i in interesting if not (tlist[i].startswith("<0x") and ty[i] == 6)]
    if len(s["non_normal_tokens"]) > 40:
        nn = s["non_normal_tokens"]
        s["non_normal_tokens"] = nn[:12] + [{"elided": len(nn) - 24}] + nn[-12:]
    for k in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
              "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
              "tokenizer.ggml.add_sep_token", "tokenizer.ggml.add_space_prefix"):
        if k in meta:
            s[k] = meta[k]["value"]
    for m in desc["metadata"]:
        k = m["key"]
        if k.split(".", 1)[0] in ("llama", "qwen2"):
            s[k] = m["value"]
    return s


# ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    global PROMPTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", type=Path, default=None,
                    help=f"llama_cpp_python-{gq.LLAMA_CPP_PYTHON_VERSION}.tar.gz (default: pip download it)")
    ap.add_argument("--skip-gguf", action="store_true", help="models and expectations only (development)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    for p in OUT.iterdir():
        if p.name not in ("README.md",):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    EXP.mkdir()
    seeds, notes = {}, {}
    with tempfile.TemporaryDirectory(prefix="ckpt-families-") as tmp:
        work = Path(tmp)
        tok = train_tokenizers(work)
        cfgs = model_configs(tok)
        print(f"tokenizers: llama3 {tok['llama3']['size']}, qwen2 {tok['qwen2']['size']} "
              f"(vocab_size {tok['qwen2']['padded']}), spm {tok['spm']['size']}", flush=True)
        exps, stats, streams = {}, {}, {}
        trained = [n for n in SUPPORTED if n != "llama31-tf5"]
        for name in trained:
            stats[name] = make_model(name, cfgs[name], tok, seeds, streams)
            print(f"{name}: eval loss {stats[name]['initial_eval_loss']:.3f} -> {stats[name]['final_eval_loss']:.3f}",
                  flush=True)
        PROMPTS, rejected = pick_prompts(trained)
        print(f"prompts: {PROMPTS} ({len(rejected)} candidates rejected)", flush=True)
        for name in trained:
            prompts, logits, mm, model, hf_tok = expectations(name, OUT / name)
            exps[name] = finish_expectations(name, OUT / name, cfgs[name], prompts, logits, mm, model, hf_tok,
                                             seeds[name], stats[name])
            print(f"{name}: min margin {exps[name]['min_greedy_margin']:.4f}, verify-text perplexity "
                  f"{exps[name]['verify_text_perplexity']:.1f} (vocab {exps[name]['config']['vocab_size']}), "
                  f"logit std {exps[name]['prompts'][2]['logits']['std']:.3f}", flush=True)

        # llama31-tf5: llama31's weights and tokenizer, config.json as transformers 5 writes it
        src, dst = OUT / "llama31", fresh(OUT / "llama31-tf5")
        for f in sorted(src.iterdir()):
            if f.name != "config.json":
                shutil.copyfile(f, dst / f.name)
        AutoConfig.from_pretrained(str(src)).save_pretrained(str(dst))
        prompts, logits, mm, model, hf_tok = expectations("llama31-tf5", dst)
        ref = safetensors.torch.load_file(str(EXP / "llama31.logits.safetensors"))
        e = finish_expectations("llama31-tf5", dst, json.loads((src / "config.json").read_text()), prompts, logits,
                                mm, model, hf_tok, seeds["llama31"], stats["llama31"])
        e["same_as_llama31"] = {
            "logits_bit_identical": all(torch.equal(ref[k], logits[k]) for k in ref),
            "greedy_identical": [p["greedy"]["new_ids"] for p in prompts]
            == [p["greedy"]["new_ids"] for p in exps["llama31"]["prompts"]]}
        assert all(e["same_as_llama31"].values()), e["same_as_llama31"]
        exps["llama31-tf5"] = e

        # mistral-swa8: the window changes the 80-token prompt's logits from position 8 on
        f = OUT / "mistral-swa8"
        nowin = load_fp32(f, sliding_window=None)
        win = safetensors.torch.load_file(str(EXP / "mistral-swa8.logits.safetensors"))
        sw = {}
        for i, p in enumerate(exps["mistral-swa8"]["prompts"]):
            with torch.no_grad():
                lg = nowin(torch.tensor([p["ids"]])).logits[0].float()
            d = (lg - win[f"prompt{i}"]).abs().max(-1).values
            sw[f"prompt{i}"] = {"n_tokens": len(p["ids"]), "max_abs_delta_positions_lt_8": float(d[:8].max()),
                                "max_abs_delta_positions_ge_8": float(d[8:].max()) if len(d) > 8 else None,
                                "first_position_with_delta": next((j for j, x in enumerate(d.tolist()) if x > 0),
                                                                  None)}
        assert (sw["prompt2"]["max_abs_delta_positions_lt_8"] == 0.0
                and sw["prompt2"]["max_abs_delta_positions_ge_8"] > 0.01), sw
        exps["mistral-swa8"]["sliding_window_check"] = {
            "what": "max |logits(sliding_window=8) - logits(sliding_window=None)| per prompt, transformers fp32 eager",
            **sw}

        for name in REFUSED:
            cfg = refused_configs()[name]
            build_folder(name, cfg, BASE_SEED + 5000 + REFUSED.index(name), OUT / name)
            seeds[name] = BASE_SEED + 5000 + REFUSED.index(name)

        # tokenizer sanity: AutoTokenizer agrees with the raw reference library on every prompt
        tok_checks = {}
        for name in SUPPORTED:
            f = OUT / name
            ids = [p["ids"] for p in exps[name]["prompts"]]
            if (f / "tokenizer.model").exists():
                sp = spm.SentencePieceProcessor(model_file=str(f / "tokenizer.model"))
                raw = [[1] + sp.encode(t) for t in PROMPTS]
                what = "sentencepiece encode with BOS (1) prepended"
            else:
                rt = Tokenizer.from_file(str(f / "tokenizer.json"))
                raw = [rt.encode(t).ids for t in PROMPTS]
                what = "tokenizers Tokenizer.from_file(tokenizer.json).encode(text) (post-processor on)"
            tok_checks[name] = {"reference": what, "equal": raw == ids}
            assert raw == ids, (name, raw, ids)
            exps[name]["tokenizer_check"] = tok_checks[name]

        versions = {
            "generator": "Fixtures/generate_families.py",
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "sentencepiece": spm.__version__, "safetensors": safetensors.__version__,
            "gguf (PyPI; reader)": gq._dist_version("gguf"), "numpy": np.__version__,
            "seeds": {"models": seeds, "data": DATA_SEED,
                      "rule": f"init {BASE_SEED} + 100*index in SUPPORTED (refused folders: {BASE_SEED} + 5000 + "
                              f"index); batches torch.Generator().manual_seed(data)"},
            "training": TRAIN,
            "corpus": {"file": "Fixtures/corpus.txt", "sha256": sha256(CORPUS.read_bytes()),
                       "stream_tokens": {k: len(v) for k, v in sorted(streams.items())}},
            "prompts": {"rule": f"per slot the first candidate (base + ending) whose cache-free fp32 greedy "
                                f"continuation of {N_NEW} tokens has no eos id and every margin >= {PICK_MARGIN} for "
                                f"every trained model; the final greedy (generate) must keep margin >= {MIN_MARGIN}",
                        "bases": PROMPT_BASES, "endings": PROMPT_ENDINGS, "chosen": PROMPTS,
                        "candidates_rejected_per_slot": [sum(r["slot"] == i for r in rejected)
                                                         for i in range(len(PROMPT_BASES))]},
            "tokenizers_trained": {
                "corpus": "Fixtures/tokenizers/corpus.txt (lines)",
                "llama3": {"trainer": "generate_tokenizers.train_bytelevel(lines, LLAMA3_PATTERN, 1000, qwen=False)"
                           " + the 256 LLaMA-3.1 specials + TemplateProcessing BOS",
                           "size": tok["llama3"]["size"], "model_vocab": tok["llama3"]["model_vocab"]},
                "qwen2": {"trainer": "generate_tokenizers.train_bytelevel(lines, QWEN2_PATTERN, 1000, qwen=True) + "
                          "<|endoftext|>, <|im_start|>, <|im_end|> (special), <tool_call>, </tool_call>",
                          "size": tok["qwen2"]["size"], "model_vocab": tok["qwen2"]["model_vocab"]},
                "spm": {"source": "Fixtures/tokenizer/tokenizer.model", "size": tok["spm"]["size"],
                        "tokenizer.json": "transformers LlamaTokenizer.from_pretrained(tokenizer.model, legacy=True)"
                                          ".save_pretrained"},
            },
        }

        if not args.skip_gguf:
            lcpp = gq.get_llama_cpp(args.sdist, work)
            chktxt = chktxt_of(lcpp)
            digests = {chkhsh_of(OUT / "llama3", chktxt): "llama-bpe", chkhsh_of(OUT / "qwen2", chktxt): "qwen2"}
            for name in SUPPORTED:
                if name.startswith(("llama", "qwen")):
                    h = chkhsh_of(OUT / name, chktxt)
                    assert h in digests and digests[h] == ("qwen2" if name.startswith("qwen") else "llama-bpe")
            versions["converter_patch"] = patch_converter(lcpp, digests)
            versions["llama-cpp-python sdist"] = {
                "version": gq.LLAMA_CPP_PYTHON_VERSION, "sha256": gq.LLAMA_CPP_PYTHON_SDIST_SHA256,
                "llama.cpp commit": gq.LLAMA_CPP_COMMIT, "vendored gguf-py version": gq.vendored_gguf_version(lcpp)}
            summary = gguf_section(lcpp, work, notes)
            versions["convert_hf_to_gguf warnings"] = notes["convert_log"]
            for name in SUPPORTED:
                exps[name]["gguf"] = summary[name]
                if "rope_freqs" in summary[name]:
                    # llama.cpp divides theta^(-2i/d) by rope_freqs[i]; transformers' scaled inv_freq should match
                    rp = exps[name]["config"]["rope_parameters_as_loaded"]
                    d = exps[name]["config"]["head_dim"]
                    base = 1.0 / (rp["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
                    tf = torch.tensor(exps[name]["rope"]["inv_freq"])
                    rf = torch.tensor(summary[name]["rope_freqs"])
                    summary[name]["rope_freqs_vs_transformers"] = {
                        "max_rel_diff(theta^(-2i/d)/rope_freqs, transformers inv_freq)":
                            float(((base / rf - tf).abs() / tf).max())}

        for name in SUPPORTED:
            write_json(EXP / f"{name}.json", exps[name])
        write_json(OUT / "VERSIONS.json", versions)
    print("done", flush=True)


if __name__ == "__main__":
    main()
