#!/usr/bin/env python3
"""Generate ckpt's test fixtures (run from anywhere; paths are relative to this file).

    .venv/bin/python Fixtures/generate.py          # what `make fixtures` runs

Python is used for fixture generation only. Everything written here is committed and the
Swift tests compare ckpt against it. Nothing here may be computed with ckpt itself.

Outputs (all under Fixtures/):
  tokenizer/tokenizer.model              SentencePiece BPE, LLaMA settings, trained on corpus.txt
  tiny-llama/, tiny-llama-gqa/           tiny trained LlamaForCausalLM, sharded fp16 safetensors
  expected/<model>/manifest.json         ckpt-manifest/1: file and per-tensor sha256
  expected/<model>/state_dict_order.json tensor names in model.state_dict() order (as saved)
  expected/<model>/forward.json          fp32 reference forward pass / greedy decode (extra)
  expected/tokenizer/encodings.json      SentencePiece reference encodings (extra)
  safetensors/writer/*.safetensors       files written by the safetensors library
  safetensors/malformed/*                hand-built invalid files + expected.json
  VERSIONS.json                          tool versions, seeds, hyper-parameters, losses
"""

import os

# Determinism: single thread everywhere, set before torch is imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
# Portability across x86 machines (best effort): ATen's vectorised CPU kernels differ per ISA
# (AVX512 vs AVX2 runs were seen to train different weights), so force the generic kernels;
# MKL_CBWR=COMPATIBLE pins MKL to its reproducible code path. About 2x slower, still ~1.5 min.
os.environ["ATEN_CPU_CAPABILITY"] = "default"
os.environ["MKL_CBWR"] = "COMPATIBLE"
# Forced, not defaulted: offline mode changes what tokenizer_config.json records
# ("local_files_only": true), so it must be the same on every run.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import copy  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
try:
    transformers.utils.logging.disable_progress_bar()
except Exception:  # pragma: no cover
    pass

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.txt"

SEED = 20240601            # model init seeds derive from this (see MODELS)
DATA_SEED = 7              # batch sampling
MAX_SHARD_SIZE = "150KB"   # decimal: 150,000 bytes -> 4 shards (tiny-llama), 3 shards (tiny-llama-gqa)

TOKENIZER_SETTINGS = dict(
    model_type="bpe",
    vocab_size=1000,
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=True,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
    allow_whitespace_only_pieces=True,
    character_coverage=0.99995,
    num_threads=1,
    # determinism / LLaMA defaults made explicit
    input_sentence_size=0,          # use every sentence, no sampling
    shuffle_input_sentence=False,
    max_sentencepiece_length=16,
    split_by_whitespace=True,
    split_by_unicode_script=True,
    split_by_number=True,
    treat_whitespace_as_suffix=False,
    max_sentence_length=4192,
    minloglevel=2,
)

TRAIN = dict(
    steps=600,
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
    eval_batches="32 fixed windows of seq_len from the held-out last 5% of the token stream",
    train_dtype="float32",
    attn_implementation="eager",
    saved_dtype="float16",
)

MODELS = {
    "tiny-llama": dict(
        init_seed=SEED + 1,
        config=dict(
            vocab_size=1000, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=False, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
        ),
    ),
    "tiny-llama-gqa": dict(
        init_seed=SEED + 2,
        config=dict(
            vocab_size=1000, hidden_size=96, intermediate_size=172, num_hidden_layers=2,
            num_attention_heads=6, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=500000.0,
            tie_word_embeddings=True, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
        ),
    ),
}

# Files hashed into manifest.json["files"] (whichever exist).
MANIFEST_FILE_SUFFIXES = (".safetensors", ".bin", ".index.json")
MANIFEST_FILE_NAMES = {
    "config.json", "generation_config.json", "tokenizer.model", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
}

# Text samples for the tokenizer reference and the forward-pass reference.
TOKENIZER_SAMPLES = [
    "",
    " ",
    "  ",
    "Hello world",
    "Return the number of items in the container.",
    "I believe the meaning of life is",
    "Simply put, the theory of relativity states that ",
    "  two leading spaces, and   three inside",
    "digits 0123456789 and 3.14159, 2024-06-01",
    "tab\tseparated\tvalues",
    "line one\nline two\n",
    "café naïve résumé Zürich",
    "中文：你好，世界。",
    "안녕하세요",
    "emoji 🤖🦙🚀🎉",
    "<s> literal special tokens </s> <unk>",
    "\u0001 control \u007f",
    "▁ already escaped ▁▁",
]
FORWARD_PROMPT = "Return a new list containing all items from the"
GREEDY_TOKENS = 16


# ----------------------------------------------------------------------------------------------
# helpers


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a tensor as safetensors stores them."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def sha256_file(p: Path) -> str:
    return sha256_bytes(p.read_bytes())


def write_json(path: Path, obj, sort_keys=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, indent=2, sort_keys=sort_keys, ensure_ascii=False)
        f.write("\n")


def fresh_dir(p: Path) -> Path:
    if p.exists():
        shutil.rmtree(p)
    p.mkdir(parents=True)
    return p


def set_determinism(seed: int):
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # can only be set once, before any parallel work
    torch.use_deterministic_algorithms(True)


def read_safetensors_header(path: Path):
    """Parse a safetensors file by hand: returns (header_len, header_dict, data_start, raw bytes)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    return n, header, 8 + n, raw


# ----------------------------------------------------------------------------------------------
# 1. tokenizer


def corpus_sentences(text: str):
    # Same lines SentencePiece's file reader would see (it skips empty lines).
    return [line for line in text.split("\n") if line]


def train_tokenizer(text: str, out_dir: Path) -> Path:
    fresh_dir(out_dir)
    buf = io.BytesIO()
    # A sentence iterator (instead of input=<path>) keeps the absolute corpus path out of the
    # model's TrainerSpec, so tokenizer.model does not depend on where the repo is checked out.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_sentences(text)),
        model_writer=buf,
        **TOKENIZER_SETTINGS,
    )
    path = out_dir / "tokenizer.model"
    path.write_bytes(buf.getvalue())
    return path


def tokenizer_reference(sp: spm.SentencePieceProcessor, hf_tok, out: Path):
    samples = []
    for s in TOKENIZER_SAMPLES:
        ids = sp.encode(s)
        hf_ids = hf_tok.encode(s, add_special_tokens=False)
        samples.append({
            "text": s,
            "ids": ids,
            "pieces": [sp.id_to_piece(i) for i in ids],
            "decoded": sp.decode(ids),
            "hf_ids_match": hf_ids == ids,
        })
    pieces = []
    for i in range(sp.get_piece_size()):
        kind = ("unknown" if sp.is_unknown(i) else "control" if sp.is_control(i)
                else "byte" if sp.is_byte(i) else "unused" if sp.is_unused(i) else "normal")
        pieces.append([sp.id_to_piece(i), sp.get_score(i), kind])
    write_json(out, {
        "note": "SentencePiece 0.2.3 encode() of each text, without BOS/EOS. "
                "'pieces' lists [piece, score, type] for every id of tokenizer/tokenizer.model.",
        "tokenizer_sha256": sha256_file(HERE / "tokenizer" / "tokenizer.model"),
        "vocab_size": sp.get_piece_size(),
        "samples": samples,
        "pieces": pieces,
    }, sort_keys=False)
    return all(x["hf_ids_match"] for x in samples)


# ----------------------------------------------------------------------------------------------
# 2. models


def token_stream(sp, text: str):
    ids = []
    for para in text.split("\n\n"):
        para = para.strip("\n")
        if para:
            ids += [sp.bos_id()] + sp.encode(para) + [sp.eos_id()]
    return torch.tensor(ids, dtype=torch.long)


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


def train_model(name: str, spec: dict, stream: torch.Tensor):
    set_determinism(spec["init_seed"])
    cfg = LlamaConfig(**spec["config"], attn_implementation=TRAIN["attn_implementation"])
    model = LlamaForCausalLM(cfg)
    model.train()

    T, B = TRAIN["seq_len"], TRAIN["batch_size"]
    split = int(len(stream) * 0.95)
    train_ids, held = stream[:split], stream[split:]
    stride = max(T, (len(held) - T) // 32)
    eval_batch = torch.stack([held[i * stride:i * stride + T] for i in range(32)])
    gen = torch.Generator().manual_seed(DATA_SEED)

    opt = torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], betas=tuple(TRAIN["betas"]),
                            eps=TRAIN["eps"], weight_decay=TRAIN["weight_decay"])
    first_batch_loss = None
    init_eval = eval_loss(model, eval_batch)
    losses = []
    t0 = time.time()
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
        if first_batch_loss is None:
            first_batch_loss = losses[0]
    final_eval = eval_loss(model, eval_batch)
    secs = time.time() - t0
    model.eval()
    model = model.to(torch.float16)
    fp16_eval = eval_loss(copy.deepcopy(model).float(), eval_batch)  # fp16 weights, fp32 compute
    stats = {
        "initial_train_batch_loss": round(first_batch_loss, 4),
        "final_train_loss_mean_last_50_steps": round(sum(losses[-50:]) / 50, 4),
        "initial_eval_loss": round(init_eval, 4),
        "final_eval_loss": round(final_eval, 4),
        "final_eval_loss_fp16_weights": round(fp16_eval, 4),
    }
    print(f"  {name}: eval loss {init_eval:.3f} -> {final_eval:.3f} "
          f"(fp16 weights {fp16_eval:.3f}), {secs:.1f}s", flush=True)
    return model, stats


def save_model(model, hf_tok, tok_model: Path, out: Path):
    fresh_dir(out)
    model.save_pretrained(out, safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
    hf_tok.save_pretrained(out)
    shutil.copyfile(tok_model, out / "tokenizer.model")


@torch.no_grad()
def forward_reference(folder: Path, sp, out: Path):
    """Reference numbers for ckpt verify: the saved fp16 weights loaded by transformers in float32, fp32 compute.

    Loaded from the saved folder, not converted from the in-memory fp16 model: `.half()` also rounds the
    rotary_emb.inv_freq buffer to fp16, which moves the logits by ~2e-4 from what transformers computes for the
    saved checkpoint (it recomputes inv_freq in float32 on load)."""
    m = LlamaForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="eager").eval()
    ids = [sp.bos_id()] + sp.encode(FORWARD_PROMPT)
    x = torch.tensor([ids])
    logits = m(input_ids=x).logits[0]            # [T, V]
    lp = torch.log_softmax(logits, dim=-1)
    nll = -lp[:-1].gather(1, x[0, 1:, None]).squeeze(1)
    last = logits[-1]
    top = torch.topk(last, 10)
    seq = list(ids)
    for _ in range(GREEDY_TOKENS):              # greedy, full recompute (no cache subtleties)
        nxt = int(m(input_ids=torch.tensor([seq])).logits[0, -1].argmax())
        seq.append(nxt)
    write_json(out, {
        "note": "fp16 weights from the safetensors files, widened to fp32; fp32 compute "
                "(transformers eager attention). Tolerances are the consumer's choice.",
        "prompt": FORWARD_PROMPT,
        "input_ids": ids,
        "argmax_per_position": logits.argmax(-1).tolist(),
        "mean_nll": round(float(nll.mean()), 6),
        "last_logits_top10": [[int(i), round(float(v), 6)] for v, i in zip(top.values, top.indices)],
        "last_logits": [round(float(v), 6) for v in last],
        "greedy_ids": seq[len(ids):],
        "greedy_text": sp.decode(seq[len(ids):]),
    }, sort_keys=False)


def dtype_bytes_check(info, nbytes):
    sizes = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "BOOL": 1}
    n = 1
    for d in info["shape"]:
        n *= d
    assert n * sizes[info["dtype"]] == nbytes, info


def model_manifest(folder: Path, model16, out_dir: Path):
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.name.endswith(MANIFEST_FILE_SUFFIXES) or p.name in MANIFEST_FILE_NAMES):
            files[p.name] = sha256_file(p)
    tensors = {}
    sd = model16.state_dict()
    for p in sorted(folder.glob("*.safetensors")):
        n, header, start, raw = read_safetensors_header(p)
        assert header.get("__metadata__") == {"format": "pt"}, header.get("__metadata__")
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            data = raw[start + b:start + e]
            dtype_bytes_check(info, len(data))
            h = sha256_bytes(data)
            # cross-check with torch's view of the same tensor
            t = sd[name]
            assert h == sha256_bytes(tensor_bytes(t)), name
            with safe_open(str(p), framework="pt") as f:
                assert torch.equal(f.get_tensor(name), t), name
            assert name not in tensors, f"duplicate tensor {name}"
            tensors[name] = {"dtype": info["dtype"], "shape": info["shape"], "sha256": h}
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(tensors)
    write_json(out_dir / "manifest.json", {"format": "ckpt-manifest/1", "files": files, "tensors": tensors})
    order = [k for k in sd.keys() if k in tensors]
    assert set(order) == set(tensors)
    write_json(out_dir / "state_dict_order.json", order, sort_keys=False)
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    return shards, index["metadata"]


# ----------------------------------------------------------------------------------------------
# 3. safetensors writer references


def bits_tensor(bits, int_dtype, view_dtype, shape=None):
    t = torch.tensor(bits, dtype=int_dtype).view(view_dtype)
    return t.reshape(shape) if shape is not None else t


def u2i(bits, width):
    """unsigned bit pattern -> signed int of the same width (torch has no uint16/32/64 tensors from lists)."""
    return [b - (1 << width) if b >= 1 << (width - 1) else b for b in bits]


def all_dtypes_tensors():
    f64 = u2i([
        0x0000000000000000, 0x8000000000000000,  # +0, -0
        0x3FF0000000000000, 0xBFF8000000000000,  # 1, -1.5
        0x7FF0000000000000, 0xFFF0000000000000,  # +inf, -inf
        0x7FF8000000000000, 0x0000000000000001,  # NaN, min subnormal
        0x000FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF,  # max subnormal, max finite
    ], 64)
    f32 = u2i([
        0x00000000, 0x80000000, 0x3F800000, 0xC0490FDB,  # +0 -0 1 -pi
        0x7F800000, 0xFF800000, 0x7FC00000, 0x00000001,  # +inf -inf NaN min-subnormal
        0x807FFFFF, 0x7F7FFFFF, 0x00800000, 0x3EAAAAAB,  # -max-subnormal, max, min normal, 1/3
    ], 32)
    f16 = u2i([
        0x0000, 0x8000, 0x3C00, 0xC248,  # +0 -0 1 -3.140625
        0x7C00, 0xFC00, 0x7E00, 0x0001,  # +inf -inf NaN min subnormal
        0x83FF, 0x7BFF, 0x0400, 0x3555,  # -max subnormal, 65504, min normal, ~1/3
    ], 16)
    bf16 = u2i([
        0x0000, 0x8000, 0x3F80, 0xC049,  # +0 -0 1 -3.140625
        0x7F80, 0xFF80, 0x7FC0, 0x0001,  # +inf -inf NaN min subnormal
        0x807F, 0x7F7F, 0x0080, 0x3EAB,  # -max subnormal, max, min normal, ~1/3
    ], 16)
    t = {}
    # dtype coverage with special float values
    t["f64"] = bits_tensor(f64, torch.int64, torch.float64)
    t["f32"] = bits_tensor(f32, torch.int32, torch.float32, (3, 4))
    t["f16"] = bits_tensor(f16, torch.int16, torch.float16, (2, 6))
    t["bf16"] = bits_tensor(bf16, torch.int16, torch.bfloat16, (4, 3))
    t["i64"] = torch.tensor([0, 1, -1, 2**63 - 1, -2**63, 1234567890123], dtype=torch.int64)
    t["i32"] = torch.tensor([0, 1, -1, 2**31 - 1, -2**31, 123456], dtype=torch.int32)
    t["i16"] = torch.tensor([0, 1, -1, 32767, -32768, 1234], dtype=torch.int16)
    t["i8"] = torch.tensor([0, 1, -1, 127, -128, 42, -42], dtype=torch.int8)
    t["u8"] = torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.uint8)
    t["bool"] = torch.tensor([True, False, True, True, False], dtype=torch.bool)
    # sort exercises: name order vs dtype order
    t["b"] = torch.arange(3, dtype=torch.uint8)
    t["a"] = torch.tensor([0.5, -2.0], dtype=torch.float32)
    t["aa"] = torch.tensor([7.0], dtype=torch.float32)
    t["model.layers.10.x"] = torch.tensor([10.0, 10.5], dtype=torch.float16)
    t["model.layers.2.x"] = torch.tensor([2.0, 2.5], dtype=torch.float16)
    # same name prefix across dtypes: dtype order must win over name order
    t["w.0"] = torch.tensor([1, 0], dtype=torch.bool)
    t["w.1"] = torch.tensor([1, 2], dtype=torch.uint8)
    t["w.2"] = torch.tensor([-1, -2], dtype=torch.int8)
    t["w.3"] = torch.tensor([-3, 4], dtype=torch.int16)
    t["w.4"] = torch.tensor([1.0, -1.0], dtype=torch.float16)
    t["w.5"] = torch.tensor([1.0, -1.0], dtype=torch.bfloat16)
    t["w.6"] = torch.tensor([5, -6], dtype=torch.int32)
    t["w.7"] = torch.tensor([0.25, -0.25], dtype=torch.float32)
    t["w.8"] = torch.tensor([0.125, -0.125], dtype=torch.float64)
    t["w.9"] = torch.tensor([7, -8], dtype=torch.int64)
    # shapes
    t["scalar"] = torch.tensor(3.5, dtype=torch.float32)
    t["empty"] = torch.zeros((0, 3), dtype=torch.float32)
    t["empty2"] = torch.zeros((0, 3), dtype=torch.float32)  # shares the offset of "empty"
    t["cube"] = torch.arange(24, dtype=torch.int32).reshape(2, 3, 4) - 12
    # names
    t["caf\u00e9.\u4e2d"] = torch.tensor([1.0, 2.0], dtype=torch.float16)
    t['q"b\\t\tc\u0001'] = torch.tensor([9, 8, 7], dtype=torch.uint8)
    return t


def save_with_sorted_metadata(tensors, path: Path, metadata: dict):
    """safetensors (Rust) serialises __metadata__ from a HashMap: its key order is random per call.
    Retry until the keys come out sorted, so the committed reference is the canonical order."""
    want = sorted(metadata)
    for attempt in range(1, 1001):
        save_file(tensors, str(path), metadata=metadata)
        _, header, _, raw = read_safetensors_header(path)
        got = list(json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"])
        if got == want:
            return attempt
    raise RuntimeError("could not obtain sorted metadata order")


ST_DTYPE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
            torch.uint8: "U8", torch.bool: "BOOL"}


def writer_references(out: Path):
    """Files written by safetensors.torch.save_file, plus expected.json describing the inputs
    (tensors in the insertion order given to save_file, data as hex) so ckpt's writer can be fed
    the same tensors and compared byte for byte."""
    fresh_dir(out)
    jobs = []  # (file name, tensors dict, metadata or None)
    jobs.append(("all_dtypes.safetensors", all_dtypes_tensors(), {"format": "pt"}))
    jobs.append(("metadata.safetensors",
                 {"weight": torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float16),
                  "bias": torch.tensor([0.25, -0.75], dtype=torch.float32)},
                 {"format": "pt", "note": "\u00fcn\u00ef \"quoted\" \\ tab\t"}))
    jobs.append(("empty.safetensors", {}, {"format": "pt"}))
    jobs.append(("empty_nometa.safetensors", {}, None))

    # pad0..pad7: unpadded header JSON length = k (mod 8)
    def unpadded_len(name):
        hdr = {"__metadata__": {"format": "pt"},
               name: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
        return len(json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    base = unpadded_len("p0")
    for k in range(8):
        name = "p" + "x" * ((k - base) % 8) + str(k)  # "p" + filler + residue digit
        jobs.append((f"pad{k}.safetensors",
                     {name: torch.tensor([float(k), -float(k)], dtype=torch.float32)}, {"format": "pt"}))

    expected = {}
    for fname, tensors, metadata in jobs:
        path = out / fname
        retried = metadata is not None and len(metadata) > 1
        if retried:
            save_with_sorted_metadata(tensors, path, metadata)
        elif metadata is not None:
            save_file(tensors, str(path), metadata=metadata)
        else:
            save_file(tensors, str(path))
        n, header, start, raw = read_safetensors_header(path)
        unpadded = len(raw[8:8 + n].rstrip(b" "))
        assert n % 8 == 0 and n - unpadded < 8
        # everything reloads bit-exactly
        with safe_open(str(path), framework="pt") as f:
            assert set(f.keys()) == set(tensors), fname
            assert f.metadata() == metadata, fname
            for k, v in tensors.items():
                got = f.get_tensor(k)
                assert got.dtype == v.dtype and tuple(got.shape) == tuple(v.shape), (fname, k)
                assert tensor_bytes(got) == tensor_bytes(v), (fname, k)
        order = sorted((k for k in header if k != "__metadata__"),
                       key=lambda k: header[k]["data_offsets"])
        expected[fname] = {
            "metadata": metadata,
            "inputs": [{"name": k, "dtype": ST_DTYPE[v.dtype], "shape": list(v.shape),
                        "hex": tensor_bytes(v).hex()} for k, v in tensors.items()],
            "written_order": order,
            "header_len": n,
            "unpadded_header_len": unpadded,
            "file_size": len(raw),
            "sha256": sha256_bytes(raw),
        }
        if retried:
            expected[fname]["note"] = ("safetensors serialises __metadata__ from a Rust HashMap: key "
                                       "order is random per call; generate.py retried save_file "
                                       "until the keys came out sorted (canonical order)")

    for k in range(8):
        assert expected[f"pad{k}.safetensors"]["unpadded_header_len"] % 8 == k
    hdr = read_safetensors_header(out / "all_dtypes.safetensors")[1]
    assert hdr["empty"]["data_offsets"] == hdr["empty2"]["data_offsets"]
    write_json(out / "expected.json", {
        "note": "Inputs given to safetensors.torch.save_file in insertion order ('inputs', raw "
                "little-endian bytes as hex) and facts about the file written. ckpt's writer, fed "
                "the same tensors and metadata, must reproduce each file byte for byte.",
        "files": expected,
    })
    return {k: {"sha256": v["sha256"], "header_len": v["header_len"],
                "unpadded_header_len": v["unpadded_header_len"]} for k, v in expected.items()}


# ----------------------------------------------------------------------------------------------
# 4. malformed corpus


def st(header, data: bytes = b"", pad: bool = True, n_override=None) -> bytes:
    """Assemble safetensors bytes from a header (dict -> compact JSON, or raw str/bytes)."""
    if isinstance(header, (dict, list)):
        h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    elif isinstance(header, str):
        h = header.encode("utf-8")
    else:
        h = header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if n_override is None else n_override
    return struct.pack("<Q", n) + h + data


F32_2 = struct.pack("<2f", 1.0, -2.0)          # 8 bytes
F16_2 = struct.pack("<2e", 0.5, 3.0)           # 4 bytes
VALID_HDR = {"__metadata__": {"format": "pt"},
             "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]}}
VALID = st(VALID_HDR, F32_2 + F16_2)
VALID_HDR_JSON = json.dumps(VALID_HDR, separators=(",", ":"))


def hdr_with(**tensors):
    h = {"__metadata__": {"format": "pt"}}
    h.update(tensors)
    return h


def malformed_cases():
    """(file name, bytes, error code or None, offending tensor or None, description)."""
    A = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    B = {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]}
    data = F32_2 + F16_2
    lfs = ("version https://git-lfs.github.com/spec/v1\n"
           "oid sha256:" + hashlib.sha256(b"ckpt fixture").hexdigest() + "\n"
           "size 123456\n").encode()
    cases = [
        ("valid.safetensors", VALID, None, None, "the base file every case derives from"),
        ("valid_leading_space.safetensors",
         st("   " + VALID_HDR_JSON, data), None, None,
         "spaces before the JSON object (valid since safetensors PR #686) and padding after"),
        ("valid_unpadded.safetensors", st(VALID_HDR_JSON, data, pad=False), None, None,
         "header length not a multiple of 8 (no padding): valid, data section misaligned"),
        ("empty_file.safetensors", b"", "safetensors.headerTooSmall", None, "0-byte file"),
        ("short_7_bytes.safetensors", VALID[:7], "safetensors.headerTooSmall", None, "7 bytes"),
        ("header_len_ffffffffffff.safetensors",
         struct.pack("<Q", 0xFFFFFFFFFFFF) + VALID[8:], "safetensors.headerTooLarge", None,
         "length field 0xFFFFFFFFFFFF"),
        ("header_len_100000001.safetensors",
         struct.pack("<Q", 100_000_001) + VALID[8:], "safetensors.headerTooLarge", None,
         "length field 100,000,001 (cap is 100,000,000)"),
        ("header_len_past_eof.safetensors",
         struct.pack("<Q", 4096) + VALID[8:], "safetensors.invalidHeaderLength", None,
         "length 4096 within the cap, but 8+N is past EOF"),
        ("truncated_in_header.safetensors", VALID[:40], "safetensors.invalidHeaderLength", None,
         "valid file cut inside its header"),
        ("invalid_utf8.safetensors",
         st(VALID_HDR_JSON.replace('"b":', '"b\udcff":').encode("utf-8", "surrogateescape"), data),
         "safetensors.invalidUTF8", None, "byte 0xFF inside a tensor name"),
        ("not_json.safetensors", st("this is not json", b""), "safetensors.invalidJSON", None, "plain text header"),
        ("trailing_garbage.safetensors", st(VALID_HDR_JSON + "x", data), "safetensors.invalidJSON", None,
         "'x' after the JSON object (before the space padding)"),
        ("json_array.safetensors", st("[" + VALID_HDR_JSON + "]", data), "safetensors.invalidJSON", None,
         "a JSON array instead of an object"),
        ("nul_padding.safetensors",
         st(VALID_HDR_JSON.encode() + b"\0" * ((8 - len(VALID_HDR_JSON) % 8) % 8 or 8), data, pad=False),
         "safetensors.invalidJSON", None, "header padded with NUL bytes instead of spaces"),
        ("unknown_dtype.safetensors",
         st(hdr_with(a=A, b={"dtype": "Q8", "shape": [2], "data_offsets": [8, 12]}), data),
         "safetensors.unknownDType", "b", 'dtype "Q8"'),
        ("missing_data_offsets.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [2]}), F32_2), "safetensors.missingField", "b",
         "tensor without data_offsets"),
        ("shape_negative.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [-1], "data_offsets": [8, 12]}), data),
         "safetensors.invalidField", "b", "shape [-1]"),
        ("shape_float.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [1.5], "data_offsets": [8, 12]}), data),
         "safetensors.invalidField", "b", "shape [1.5]"),
        ("offsets_string.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [2], "data_offsets": "8,12"}), data),
         "safetensors.invalidField", "b", "data_offsets is a string"),
        ("metadata_non_string.safetensors",
         st({"__metadata__": {"format": "pt", "n": 1}, "a": A, "b": B}, data),
         "safetensors.invalidMetadata", None, '__metadata__ value 1 (integer)'),
        ("duplicate_identical.safetensors",
         st('{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            '"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},'
            '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data),
         "safetensors.duplicateTensor", "a", "tensor 'a' listed twice with identical entries"),
        ("duplicate_different.safetensors",
         st('{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            '"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},'
            '"a":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}', data + F32_2),
         "safetensors.duplicateTensor", "a", "tensor 'a' listed twice with different ranges"),
        ("offsets_overlap.safetensors",
         st(hdr_with(a={"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     b={"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}), F32_2 + F32_2[:4]),
         "safetensors.invalidOffset", "b", "b [4,12] overlaps a [0,8]"),
        ("offsets_hole.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [2], "data_offsets": [12, 16]}), F32_2 + b"\0" * 4 + F16_2),
         "safetensors.invalidOffset", "b", "4-byte hole between a [0,8] and b [12,16]"),
        ("offsets_not_from_zero.safetensors",
         st(hdr_with(a={"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                     b={"dtype": "F16", "shape": [2], "data_offsets": [12, 16]}), b"\0" * 4 + data),
         "safetensors.invalidOffset", "a", "first tensor starts at 4"),
        ("offsets_end_before_begin.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [2], "data_offsets": [8, 4]}), F32_2),
         "safetensors.invalidOffset", "b", "b data_offsets [8,4]"),
        ("offsets_unsorted_header.safetensors",
         st('{"__metadata__":{"format":"pt"},"z":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},'
            '"y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            '"x":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}', data + b"\0" * 4 + F32_2),
         "safetensors.invalidOffset", "x", "header order z,y,x; in data_offsets order y,z ok then x has a hole"),
        ("size_mismatch.safetensors",
         st(hdr_with(a={"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, b=B), data),
         "safetensors.tensorSizeMismatch", "a", "F32[3] needs 12 bytes, offsets give 8"),
        ("size_mismatch_dtype.safetensors",
         st(hdr_with(a=A, b={"dtype": "F32", "shape": [2], "data_offsets": [8, 12]}), data),
         "safetensors.tensorSizeMismatch", "b", "F32[2] needs 8 bytes, offsets give 4"),
        ("size_overflow.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [4294967296, 4294967296, 2],
                             "data_offsets": [8, 12]}), data),
         "safetensors.sizeOverflow", "b", "element count 2^65 overflows u64"),
        ("size_overflow_u64max.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [18446744073709551615, 2],
                             "data_offsets": [8, 12]}), data),
         "safetensors.sizeOverflow", "b", "shape [u64::MAX, 2]"),
        ("trailing_bytes.safetensors", VALID + b"PK\x03\x04 polyglot", "safetensors.incompleteBuffer", None,
         "bytes after the last tensor"),
        ("offsets_past_eof.safetensors",
         st(hdr_with(a=A, b={"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}), data),
         "safetensors.incompleteBuffer", None, "b ends at 16 but the data section holds 12 bytes"),
        ("truncated_in_data.safetensors", VALID[:-3], "safetensors.incompleteBuffer", None,
         "valid file cut inside its data section"),
        ("model-00002-of-00003.safetensors", lfs, "format.gitLFSPointer", None,
         "git-lfs pointer text named like a shard"),
    ]
    return cases


def python_verdict(path: Path) -> str:
    try:
        with safe_open(str(path), framework="pt") as f:
            for k in f.keys():
                f.get_tensor(k)
        return "accepted"
    except Exception as e:  # noqa: BLE001
        return str(e)


def malformed_corpus(out: Path):
    fresh_dir(out)
    expected = {}
    for name, data, code, tensor, desc in malformed_cases():
        assert len(data) < 1024, name
        p = out / name
        p.write_bytes(data)
        expected[name] = {"error": code, "tensor": tensor, "python": python_verdict(p),
                          "description": desc}
    # the valid ones must really be valid
    for name, v in expected.items():
        if v["error"] is None:
            assert v["python"] == "accepted", (name, v)
    write_json(out / "expected.json", expected)
    return expected


# ----------------------------------------------------------------------------------------------


def main():
    t_start = time.time()
    set_determinism(SEED)
    text = CORPUS.read_text(encoding="utf-8")

    print("tokenizer ...", flush=True)
    tok_path = train_tokenizer(text, HERE / "tokenizer")
    sp = spm.SentencePieceProcessor(model_file=str(tok_path))
    hf_tok = LlamaTokenizer.from_pretrained(str(HERE / "tokenizer"), add_bos_token=True,
                                            add_eos_token=False)
    hf_matches = tokenizer_reference(sp, hf_tok, HERE / "expected" / "tokenizer" / "encodings.json")
    # whole-corpus agreement between sentencepiece and transformers' tokenizers backend
    lines = corpus_sentences(text)
    mismatched = sum(sp.encode(s) != hf_tok.encode(s, add_special_tokens=False) for s in lines)
    stream = token_stream(sp, text)
    print(f"  corpus: {len(text.encode())} bytes, {len(stream)} tokens; "
          f"HF/SP mismatching lines: {mismatched}/{len(lines)}", flush=True)

    models_info = {}
    for name, spec in MODELS.items():
        print(f"model {name} ...", flush=True)
        model16, stats = train_model(name, spec, stream)
        folder = HERE / name
        save_model(model16, hf_tok, tok_path, folder)
        shards, index_meta = model_manifest(folder, model16, fresh_dir(HERE / "expected" / name))
        forward_reference(folder, sp, HERE / "expected" / name / "forward.json")
        models_info[name] = {
            "init_seed": spec["init_seed"],
            "config": spec["config"],
            "training": stats,
            "max_shard_size": MAX_SHARD_SIZE,
            "shards": shards,
            "index_metadata": index_meta,
            "folder_bytes": sum(p.stat().st_size for p in folder.iterdir()),
        }

    print("safetensors writer references ...", flush=True)
    writer_facts = writer_references(HERE / "safetensors" / "writer")
    print("safetensors malformed corpus ...", flush=True)
    malformed = malformed_corpus(HERE / "safetensors" / "malformed")
    accepted = sorted(k for k, v in malformed.items() if v["python"] == "accepted" and v["error"])

    versions = {
        "generator": "Fixtures/generate.py",
        "python": platform.python_version(),
        "platform": platform.machine(),
        "cpu_env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS")},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "sentencepiece": spm.__version__,
        "numpy": np.__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "seeds": {"global": SEED, "data": DATA_SEED,
                  **{f"init_{k}": v["init_seed"] for k, v in MODELS.items()}},
        "corpus": {"file": "corpus.txt", "bytes": len(text.encode()),
                   "sha256": sha256_bytes(text.encode()), "tokens": len(stream)},
        "tokenizer": {"settings": TOKENIZER_SETTINGS, "sha256": sha256_file(tok_path),
                      "hf_sp_mismatching_corpus_lines": mismatched,
                      "hf_sp_samples_match": hf_matches},
        "training": TRAIN,
        "max_shard_size": MAX_SHARD_SIZE,
        "models": models_info,
        "writer_references": writer_facts,
        "malformed_accepted_by_python": accepted,
    }
    write_json(HERE / "VERSIONS.json", versions)
    __import__("subprocess").run([sys.executable, str(HERE / "generate_torch.py")], check=True)  # torch/, meta/
    print(f"done in {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
