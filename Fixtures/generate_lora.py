#!/usr/bin/env python3
"""Generate ckpt's LoRA-merge fixtures (issue 15; run from anywhere, paths are relative to this file).

    .venv/bin/python Fixtures/generate_lora.py

Every expected value is peft 0.21.2's own `PeftModel.from_pretrained(...).merge_and_unload()` (default
`safe_merge=False`) run for real on the files written here, or torch's own kernels (`B @ A`,
`torch.linalg.norm`), or FastChat 0.2.36's `apply_lora()`; nothing comes from ckpt.

Environment (see lora.md §3): unlike the other generators this one does NOT set `ATEN_CPU_CAPABILITY=default` or
`MKL_CBWR=COMPATIBLE`: peft's arithmetic is reproduced for torch's default kernels (MKL's default code path, ATen's
best capability), 2 threads, which is what a user running peft gets. The capability and MKL version found are
recorded in lora/VERSIONS.json.

Reads Fixtures/tiny-llama/ and Fixtures/tiny-llama-gqa/ (never modified). Rewrites Fixtures/lora/ except README.md.
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "2"
for _var in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS"):
    os.environ.pop(_var, None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import contextlib  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import version as pkg_version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

import peft  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402

transformers.logging.set_verbosity_error()

HERE = Path(__file__).resolve().parent  # Fixtures/
TINY = HERE / "tiny-llama"
TINY_GQA = HERE / "tiny-llama-gqa"
QUANT_BASE = HERE / "quant" / "ct" / "tiny-llama-channel"
OUT = HERE / "lora"
ADAPTERS = OUT / "adapters"
EXPECTED = OUT / "expected"
ERRORS = OUT / "errors"
KERNELS = OUT / "kernels"

THREADS = 2
DIAGNOSTICS = None  # --diagnostics DIR: also write each case's changed tensors there
ST_DTYPE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.int8: "I8", torch.bool: "BOOL"}
DT = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ----------------------------------------------------------------------------------------------
# helpers


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def write_json(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def fresh_dir(p: Path) -> Path:
    if p.exists():
        shutil.rmtree(p)
    p.mkdir(parents=True)
    return p


def rel(p: Path) -> str:
    return Path(os.path.relpath(p, HERE)).as_posix()


def describe(tensors: dict) -> dict:
    return {k: {"dtype": ST_DTYPE[v.dtype], "shape": list(v.shape), "sha256": sha256_bytes(tensor_bytes(v))}
            for k, v in tensors.items()}


def read_folder_tensors(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.glob("*.safetensors")):
        with safe_open(str(p), framework="pt") as f:
            for k in f.keys():
                out[k] = f.get_tensor(k)
    return out


@contextlib.contextmanager
def captured():
    """Collects Python warnings and stdout/stderr of a block (peft and transformers talk)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        log = {"warnings": w, "buf": buf}
        yield log


def warning_lines(log) -> list:
    out = []
    for w in log["warnings"]:
        m = str(w.message).strip().split("\n")[0]
        m = m.replace(str(HERE) + os.sep, "").replace(tempfile.gettempdir(), "<tmp>")
        if "torch_dtype" in m or "deprecated" in m.lower():
            continue
        if m not in out:
            out.append(m)
    return out


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def load_base(path: Path, dtype: torch.dtype) -> LlamaForCausalLM:
    with captured():
        m = LlamaForCausalLM.from_pretrained(str(path), dtype=dtype)
    m.eval()
    return m


def untie(model: LlamaForCausalLM):
    """A tied model made untied: lm_head gets its own copy of the embedding (what ckpt writes, lora.md §6)."""
    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
    model._tied_weights_keys = {} if isinstance(getattr(model, "_tied_weights_keys", None), dict) else []
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()


def state(model) -> dict:
    """The merged model's tensors as save_pretrained writes them (contiguous copies): a tied lm_head, which is the
    embedding tensor itself, is left out."""
    sd = model.state_dict()
    head, emb = sd.get("lm_head.weight"), sd.get("model.embed_tokens.weight")
    tied = head is not None and emb is not None and head.data_ptr() == emb.data_ptr()
    return {k: v.detach().contiguous().clone() for k, v in sd.items() if not (tied and k == "lm_head.weight")}


# ----------------------------------------------------------------------------------------------
# bases


def make_bases(info: dict):
    """lora/base-f32: tiny-llama in fp32 with attention biases (q, k, v, o; seeded random values) — the base for
    fp32 merges, for lora_bias / bias="all", and (loaded as fp16, as FastChat does) for a cast-then-merge case.
    lora/base-bf16: tiny-llama in bf16."""
    src = load_base(TINY, torch.float32)
    cfg = copy.deepcopy(src.config)
    cfg.attention_bias = True
    torch.manual_seed(20240615)
    with captured():
        m = LlamaForCausalLM(cfg)
    sd = src.state_dict()
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith(".bias") for k in missing), (missing, unexpected)
    g = gen(20240616)
    with torch.no_grad():
        for k in missing:
            p = m.get_parameter(k)
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    m = m.to(torch.float32)
    d = fresh_dir(OUT / "base-f32")
    with captured():
        m.save_pretrained(str(d), max_shard_size="10MB")
    info["bases"]["base-f32"] = {"from": "tiny-llama", "dtype": "float32", "attention_bias": True, "bias_seed": 20240616,
                                 "files": sorted(p.name for p in d.iterdir())}

    b = load_base(TINY, torch.bfloat16)
    d = fresh_dir(OUT / "base-bf16")
    with captured():
        b.save_pretrained(str(d), max_shard_size="10MB")
    info["bases"]["base-bf16"] = {"from": "tiny-llama", "dtype": "bfloat16", "files": sorted(p.name for p in d.iterdir())}


BASES = {"tiny": TINY, "gqa": TINY_GQA, "f32": OUT / "base-f32", "bf16": OUT / "base-bf16", "quant": QUANT_BASE}


# ----------------------------------------------------------------------------------------------
# adapters


def randomize_adapter(pm, seed: int, case: dict):
    """Random non-zero values for every trainable tensor the adapter file will carry."""
    g = gen(seed)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name or "lora_embedding_A" in name:
                fan = p.shape[1]
                p.copy_(torch.randn(p.shape, generator=g) / fan ** 0.5)
            elif "lora_B" in name or "lora_embedding_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * case.get("b_scale", 0.02))
            elif "lora_magnitude_vector" in name:
                p.copy_(p * (1 + 0.2 * torch.randn(p.shape, generator=g)))
            elif "modules_to_save" in name:
                p.copy_(p + 0.02 * torch.randn(p.shape, generator=g).to(p.dtype))
            elif p.requires_grad and name.endswith(".bias"):  # bias="all"/"lora_only": trained base biases
                p.copy_(p + 0.01 * torch.randn(p.shape, generator=g).to(p.dtype))
        if case.get("perturb_embedding_base"):  # saved base_layer embeddings that differ from the base's
            for name, p in pm.named_parameters():
                if name.endswith("embed_tokens.base_layer.weight") or name.endswith("lm_head.base_layer.weight"):
                    p.copy_(p + (0.01 * torch.randn(p.shape, generator=g)).to(p.dtype))


def rewrite_adapter_file(folder: Path, fn):
    """Re-saves adapter_model.safetensors after `fn(dict) -> dict` (dtype casts, renamed keys)."""
    path = folder / "adapter_model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        sd = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    sd = fn(sd)
    save_file(sd, str(path), metadata=meta)


def make_adapter(case: dict, spec: dict, folder: Path, seed: int):
    """Creates an adapter with get_peft_model on the case's base, randomizes it and saves it with peft."""
    base_dtype = DT[spec.get("create_dtype", case["dtype"])]
    base = load_base(BASES[case["base"]], base_dtype)
    if case.get("resize"):
        torch.manual_seed(seed + 7)
        with captured():
            base.resize_token_embeddings(case["resize"])
    if case.get("untie"):
        untie(base)
    cfg = dict(spec["config"])
    cfg.setdefault("task_type", "CAUSAL_LM")
    lc = LoraConfig(**cfg)
    with captured():
        pm = get_peft_model(base, lc)
    randomize_adapter(pm, seed, spec)
    fresh_dir(folder)
    with captured():
        pm.save_pretrained(str(folder), safe_serialization=not spec.get("bin", False),
                           save_embedding_layers=spec.get("save_embedding_layers", "auto"))
    (folder / "README.md").unlink(missing_ok=True)  # peft's model-card boilerplate
    # base_model_name_or_path: a stable relative name instead of this machine's path
    cj = folder / "adapter_config.json"
    c = json.loads(cj.read_text())
    c["base_model_name_or_path"] = rel(BASES[case["base"]])
    for k in ("target_modules", "exclude_modules"):  # peft writes these sets in hash order: sorted, for reproducibility
        if isinstance(c.get(k), list):
            c[k] = sorted(c[k])
    cj.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")
    if spec.get("adapter_dtype"):
        dt = DT[spec["adapter_dtype"]]
        rewrite_adapter_file(folder, lambda sd: {k: v.to(dt) if v.is_floating_point() else v for k, v in sd.items()})
    if spec.get("default_names"):
        def rename(sd):
            out = {}
            for k, v in sd.items():
                k2 = re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", k)
                k2 = re.sub(r"\.(lora_embedding_[AB])$", r".\1.default", k2)
                out[k2] = v
            return out
        rewrite_adapter_file(folder, rename)


def reference_merge(case: dict, adapter_dirs: list, base_dtype=None, tied_as_is=False):
    """peft 0.21.2's merge: base loaded in the case's dtype, adapters loaded with defaults, merge_and_unload()."""
    base = load_base(BASES[case["base"]], base_dtype or DT[case["dtype"]])
    if case.get("resize"):
        with captured():
            base.resize_token_embeddings(case["resize"])
    if case.get("untie") and not tied_as_is:
        untie(base)
    with captured() as log:
        if len(adapter_dirs) == 1:
            pm = PeftModel.from_pretrained(base, str(adapter_dirs[0]))
            merged = pm.merge_and_unload()
        else:
            names = [f"a{i}" for i in range(len(adapter_dirs))]
            pm = PeftModel.from_pretrained(base, str(adapter_dirs[0]), adapter_name=names[0])
            for n, d in zip(names[1:], adapter_dirs[1:]):
                pm.load_adapter(str(d), adapter_name=n)
            merged = pm.merge_and_unload(adapter_names=names)
    return state(merged), warning_lines(log)


# ----------------------------------------------------------------------------------------------
# the cases (bit-exact success cases)

Q_V = ["q_proj", "v_proj"]

CASES = [
    # name, base, dtype (= peft's load dtype = ckpt's --dtype), adapters: [{config, options}]
    dict(name="linear-f16", base="tiny", dtype="f16", note="the FastChat case: fp16 base, fp32 adapter, q/v",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V))]),
    dict(name="all-linear-bf16", base="bf16", dtype="bf16", note="bf16 base, bf16 adapter file, every Linear",
         adapters=[dict(config=dict(r=16, lora_alpha=32, target_modules=LINEAR), adapter_dtype="bf16")]),
    dict(name="linear-f32", base="f32", dtype="f32", note="fp32 base (every B@A rounding shows), fp32 adapter",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=LINEAR))]),
    dict(name="adapter-f16", base="tiny", dtype="f16", note="fp16 adapter file (autocast to fp32 at load)",
         adapters=[dict(config=dict(r=8, lora_alpha=8, target_modules=["q_proj", "k_proj", "down_proj"]),
                        adapter_dtype="f16")]),
    dict(name="cast-f32-to-f16", base="f32", dtype="f16", note="fp32 base merged as fp16 (FastChat loads every base as fp16)",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V))]),
    dict(name="bf16-as-f16", base="bf16", dtype="f16", note="bf16 base merged as fp16",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V))]),
    dict(name="regex", base="tiny", dtype="f16", note="target_modules as a regex (fullmatch)",
         adapters=[dict(config=dict(r=8, lora_alpha=16,
                                    target_modules=r".*\.layers\.1\..*\.(q_proj|o_proj|up_proj)"))]),
    dict(name="exclude", base="tiny", dtype="f16", note="exclude_modules (list) beats target_modules",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=LINEAR,
                                    exclude_modules=["model.layers.0.self_attn.k_proj", "down_proj"]))]),
    dict(name="exclude-regex", base="tiny", dtype="f16", note="exclude_modules as a regex",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V + ["gate_proj"],
                                    exclude_modules=r".*layers\.0\.mlp\..*"))]),
    dict(name="patterns", base="tiny", dtype="f16", note="rank_pattern / alpha_pattern (the first matching key in the file's order wins: peft writes them sorted)",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=LINEAR,
                                    rank_pattern={"q_proj": 4, r"layers\.1\.mlp\.down_proj": 12, "mlp.up_proj": 6,
                                                  "up_proj": 3},
                                    alpha_pattern={"v_proj": 4, r"model\.layers\.0\.self_attn\.o_proj": 5,
                                                   "up_proj": 2}))]),
    dict(name="rslora", base="tiny", dtype="f16", note="use_rslora: alpha/sqrt(r) rounded to fp32",
         adapters=[dict(config=dict(r=8, lora_alpha=16, use_rslora=True, target_modules=LINEAR))]),
    dict(name="rslora-f32", base="f32", dtype="f32", note="use_rslora on an fp32 base, odd alpha",
         adapters=[dict(config=dict(r=6, lora_alpha=7, use_rslora=True, target_modules=Q_V + ["down_proj"]))]),
    dict(name="layers", base="tiny", dtype="f16", note="layers_to_transform + layers_pattern",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=LINEAR, layers_to_transform=[1],
                                    layers_pattern="layers"))]),
    dict(name="lora-bias", base="f32", dtype="f16", note="lora_bias: lora_B.bias added into the base bias",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj"], lora_bias=True))]),
    dict(name="lora-bias-f32", base="f32", dtype="f32", note="lora_bias on an fp32 merge",
         adapters=[dict(config=dict(r=8, lora_alpha=12, target_modules=["q_proj", "o_proj"], lora_bias=True))]),
    dict(name="bias-all", base="f32", dtype="f32", note='bias="all": trained biases of every module replace the base\'s',
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V, bias="all"))]),
    dict(name="bias-lora-only", base="f32", dtype="f16", note='bias="lora_only": biases of targeted modules only',
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V, bias="lora_only"))]),
    dict(name="modules-to-save", base="tiny", dtype="f16", note="modules_to_save: lm_head and a norm replaced whole",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V, modules_to_save=["lm_head", "model.norm"]))]),
    dict(name="embedding", base="tiny", dtype="f16",
         note="embedding LoRA (lora_embedding_A/B, two roundings) + lm_head Linear LoRA, saved base_layer perturbed",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=["embed_tokens", "lm_head", "q_proj"]),
                        save_embedding_layers=True, perturb_embedding_base=True)]),
    dict(name="embedding-f32", base="f32", dtype="f32", note="embedding LoRA on an fp32 base",
         adapters=[dict(config=dict(r=4, lora_alpha=8, target_modules=["embed_tokens"]), b_scale=0.05,
                        save_embedding_layers=False)]),
    dict(name="dora-f16", base="tiny", dtype="f16", note="DoRA (norm per output row; down_proj has 172 inputs)",
         adapters=[dict(config=dict(r=8, lora_alpha=16, use_dora=True, target_modules=["q_proj", "v_proj", "down_proj"]))]),
    dict(name="dora-f32", base="f32", dtype="f32", note="DoRA on an fp32 base",
         adapters=[dict(config=dict(r=8, lora_alpha=16, use_dora=True, target_modules=LINEAR))]),
    dict(name="dora-bf16", base="bf16", dtype="bf16", note="DoRA on a bf16 base, bf16 adapter file",
         adapters=[dict(config=dict(r=4, lora_alpha=8, use_dora=True, target_modules=["o_proj", "up_proj"]),
                        adapter_dtype="bf16")]),
    dict(name="stacked", base="tiny", dtype="f16", note="two adapters merged in sequence (each rounds to fp16)",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V)),
                   dict(config=dict(r=4, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "k_proj", "down_proj"]))]),
    dict(name="stacked-f32", base="f32", dtype="f32", note="two adapters in sequence on fp32",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=LINEAR)),
                   dict(config=dict(r=8, lora_alpha=8, target_modules=["v_proj", "up_proj"]), adapter_dtype="bf16")]),
    dict(name="legacy-bin", base="tiny", dtype="f16", note="adapter_model.bin (torch.save), read by the allow-list unpickler",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V + ["gate_proj"]), bin=True)]),
    dict(name="default-names", base="tiny", dtype="f16", note="tensor names carrying .default.",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V + ["embed_tokens"]), default_names=True,
                        save_embedding_layers=False)]),
    dict(name="r256-f16", base="tiny", dtype="f16", note="r = 256 (> 192): MKL sums k in two blocks of 128",
         adapters=[dict(config=dict(r=256, lora_alpha=512, target_modules=["q_proj", "down_proj"]), b_scale=0.01,
                        adapter_dtype="f16")]),
    dict(name="r256-f32", base="f32", dtype="f32", note="r = 256 on fp32 (bf16 adapter file, widened exactly)",
         adapters=[dict(config=dict(r=256, lora_alpha=256, target_modules=["q_proj", "down_proj"]), b_scale=0.01,
                        adapter_dtype="bf16")]),
    dict(name="r400-f32", base="f32", dtype="f32", note="r = 400 (> 384): blocks 192 + 192 + 16",
         adapters=[dict(config=dict(r=400, lora_alpha=400, target_modules=["q_proj"], layers_to_transform=[0]),
                        b_scale=0.01, adapter_dtype="bf16")]),
    dict(name="resized-vocab", base="tiny", dtype="f16", resize=1003,
         note="vocab resized to 1003: embed_tokens LoRA with saved base_layer (1003 rows), lm_head in modules_to_save",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V + ["embed_tokens"], modules_to_save=["lm_head"]),
                        save_embedding_layers=True, perturb_embedding_base=True)]),
    dict(name="tied", base="gqa", dtype="f16", untie=True,
         note="tied base (tiny-llama-gqa); adapter targets embed_tokens and lm_head: ckpt unties (lm_head.weight written)",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=["embed_tokens", "lm_head", "q_proj"]),
                        save_embedding_layers=False)]),
    dict(name="tied-untouched", base="gqa", dtype="f16", note="tied base, adapter leaves the embeddings alone: stays tied",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))]),
    dict(name="partial-match", base="tiny", dtype="f16",
         note="one target name matches nothing (peft merges silently; ckpt warns, error under strict)",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=["q_proj", "nonexistent_proj"]))]),
    dict(name="bias-ignored", base="f32", dtype="f32",
         note="lora_B.bias in the file without lora_bias (mergekit's extract_lora does this): peft ignores it; ckpt warns",
         adapters=[dict(config=dict(r=8, lora_alpha=16, target_modules=Q_V))], add_stray_bias=True),
]


def run_case(case: dict, info: dict):
    name = case["name"]
    dirs = []
    for i, spec in enumerate(case["adapters"]):
        d = ADAPTERS / (name if len(case["adapters"]) == 1 else f"{name}-{i + 1}")
        make_adapter(case, spec, d, seed=20240700 + 97 * len(info["cases"]) + i)
        dirs.append(d)
    if case.get("add_stray_bias"):
        def add_bias(sd):
            g = gen(5)
            for k in list(sd):
                if k.endswith("lora_B.weight"):
                    sd[k.replace("lora_B.weight", "lora_B.bias")] = torch.randn(sd[k].shape[0], generator=g) * 0.01
            return sd
        rewrite_adapter_file(dirs[0], add_bias)
    merged, warns = reference_merge(case, dirs)
    base = load_base(BASES[case["base"]], DT[case["dtype"]])
    if case.get("untie"):
        untie(base)
    base_sd = state(base)
    changed = sorted(k for k in merged if k not in base_sd or merged[k].shape != base_sd[k].shape
                     or tensor_bytes(merged[k]) != tensor_bytes(base_sd[k]))
    assert changed, name
    for k, v in merged.items():
        assert v.dtype == DT[case["dtype"]], (name, k, v.dtype)
    entry = {
        "base": rel(BASES[case["base"]]),
        "dtype": {"f16": "F16", "bf16": "BF16", "f32": "F32"}[case["dtype"]],
        "adapters": [rel(d) for d in dirs],
        "note": case["note"],
        "peft_warnings": warns,
        "tensors": describe(merged),
        "changed": changed,
    }
    if case.get("untie"):
        entry["untied"] = True
        # What plain peft does with the tied model: merges into the one shared tensor.
        tied, _ = reference_merge(case, dirs, tied_as_is=True)
        e = tied["model.embed_tokens.weight"]
        entry["peft_on_tied_model"] = {
            "lm_head_is_embed_tokens": "lm_head.weight" not in tied,  # state() drops a head that shares the tensor
            "embed_tokens_differs_from_untied_reference_elements":
                int((e.view(torch.int16) != merged["model.embed_tokens.weight"].view(torch.int16)).sum()),
        }
    if case.get("resize"):
        entry["resized_vocab"] = case["resize"]
    if len(dirs) > 1:
        # Sequential merges (merge, unload, load the next) give the same bytes as merge_and_unload([a, b]).
        seq_base = load_base(BASES[case["base"]], DT[case["dtype"]])
        m = seq_base
        for d in dirs:
            with captured():
                m = PeftModel.from_pretrained(m, str(d)).merge_and_unload()
        seq = state(m)
        assert all(tensor_bytes(seq[k]) == tensor_bytes(merged[k]) for k in merged), name
        entry["sequential_equals_multi_adapter_merge"] = True
    write_json(EXPECTED / f"{name}.json", entry)
    # The changed tensors themselves, for diagnostics only (not committed): `--diagnostics DIR`.
    if DIAGNOSTICS:
        DIAGNOSTICS.mkdir(parents=True, exist_ok=True)
        save_file({k: merged[k] for k in changed}, str(DIAGNOSTICS / f"{name}.safetensors"), metadata={"format": "pt"})
    info["cases"][name] = {"changed_tensors": len(changed),
                           "changed_elements": sum(merged[k].numel() for k in changed),
                           "peft_warnings": warns}
    return dirs, merged


# ----------------------------------------------------------------------------------------------
# error cases (issue 15 §3): adapter folders and the named error ckpt must report


def peft_behaviour(base_key: str, dtype: str, dirs: list) -> str:
    case = dict(base=base_key, dtype=dtype)
    try:
        merged, warns = reference_merge(case, dirs)
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().split("\n")[0][:200].replace(str(HERE) + os.sep, "")
        return f"raises {type(e).__name__}: {msg}"
    base = state(load_base(BASES[base_key], DT[dtype]))
    nonfinite = sum(int((~torch.isfinite(v.float())).sum()) for v in merged.values() if v.is_floating_point())
    changed = sum(1 for k in merged if k in base and tensor_bytes(merged[k]) != tensor_bytes(base[k]))
    s = f"merges silently ({changed} tensors changed"
    if nonfinite:
        s += f", {nonfinite} non-finite elements written"
    s += ")"
    if warns:
        s += "; warns: " + " | ".join(w[:120] for w in warns)
    return s


def make_error_cases(info: dict):
    fresh_dir(ERRORS)
    expected = {}
    base_spec = dict(config=dict(r=2, lora_alpha=4, target_modules=Q_V))
    tiny_case = dict(base="tiny", dtype="f16")

    def valid(name, spec=base_spec, case=tiny_case, seed=1):
        d = ERRORS / name
        make_adapter(case, spec, d, seed=20240800 + seed)
        return d

    def edit_config(d, **changes):
        p = d / "adapter_config.json"
        c = json.loads(p.read_text())
        for k, v in changes.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        p.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")

    def edit_tensors(d, fn):
        rewrite_adapter_file(d, fn)

    def record(name, code, d, base="tiny", note="", tensor=None, options=None, peft=True):
        e = {"adapters": [rel(d)], "base": rel(BASES[base]), "code": code, "note": note}
        if tensor:
            e["tensor"] = tensor
        if options:
            e["options"] = options
        if peft:
            e["peft_0_21_2"] = peft_behaviour(base, "f16" if base != "quant" else "f16", [d]) if base != "quant" \
                else "not loadable by transformers as a float model (compressed-tensors)"
        expected[name] = e

    d = valid("no-match")
    edit_config(d, target_modules=["nonexistent_proj"])
    record("no-match", "lora.noTargetMatched", d, note="no base module matches target_modules")

    d = valid("absent-module")
    def add_layer7(sd):
        for k in list(sd):
            if ".layers.1.self_attn.q_proj." in k:
                sd[k.replace(".layers.1.", ".layers.7.")] = sd[k].clone()
        return sd
    edit_tensors(d, add_layer7)
    record("absent-module", "lora.tensorForAbsentModule", d, tensor="base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight",
           note="tensors for layers.7 of a 2-layer base")

    d = valid("untargeted")
    def add_k(sd):
        for k in list(sd):
            if ".layers.0.self_attn.q_proj." in k:
                sd[k.replace("q_proj", "k_proj")] = sd[k].clone()
        return sd
    edit_tensors(d, add_k)
    record("untargeted", "lora.tensorForUntargetedModule", d, tensor="base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
           note="k_proj tensors while the config targets q_proj and v_proj")

    d = valid("missing-b")
    edit_tensors(d, lambda sd: {k: v for k, v in sd.items() if k != "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"})
    record("missing-b", "lora.missingTensor", d, tensor="base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight",
           note="a targeted module without lora_B")

    d = valid("missing-module")
    edit_tensors(d, lambda sd: {k: v for k, v in sd.items() if ".layers.0.self_attn.q_proj." not in k})
    record("missing-module", "lora.missingTensor", d, tensor="base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
           note="a targeted module with no tensors at all (peft merges its init values)")

    d = valid("rank-mismatch")
    edit_config(d, r=16)
    record("rank-mismatch", "lora.rankMismatch", d, tensor="base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
           note="config r=16, tensors r=2")

    d = valid("rank-pattern-mismatch")
    edit_config(d, rank_pattern={"v_proj": 4})
    record("rank-pattern-mismatch", "lora.rankMismatch", d,
           tensor="base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", note="rank_pattern says 4, tensors r=2")

    d = valid("shape-mismatch")
    edit_tensors(d, lambda sd: {k: (v[:, :63].contiguous() if k == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" else v)
                                for k, v in sd.items()})
    record("shape-mismatch", "lora.shapeMismatch", d, tensor="base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
           note="lora_A [2, 63] for a 64-input q_proj")

    d = valid("b-shape-mismatch")
    edit_tensors(d, lambda sd: {k: (v[:60].contiguous() if k == "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight" else v)
                                for k, v in sd.items()})
    record("b-shape-mismatch", "lora.shapeMismatch", d, tensor="base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
           note="lora_B [60, 2] for a 64-output q_proj")

    d = valid("peft-type")
    edit_config(d, peft_type="LOHA")
    record("peft-type", "lora.unsupportedPeftType", d, note="peft_type LOHA", peft=False)

    for init in ["pissa", "pissa_niter_4", "olora", "corda", "loftq", "lora_ga"]:
        n = f"init-{init.replace('_', '-')}"
        d = valid(n)
        edit_config(d, init_lora_weights=init)
        record(n, "lora.baseRewritingInit", d, note=f"init_lora_weights={init!r} rewrites the base at load", peft=(init == "pissa"))

    for field, value in [("layer_replication", [[0, 2]]), ("alora_invocation_tokens", [5, 6]), ("use_qalora", True),
                         ("target_parameters", ["mlp.experts.gate_up_proj"]), ("trainable_token_indices", [1, 2]),
                         ("megatron_config", {"tensor_model_parallel_size": 1})]:
        n = f"option-{field.replace('_', '-')}"
        d = valid(n)
        edit_config(d, **{field: value})
        record(n, "lora.unmergeableOption", d, note=f"{field} set", peft=False)

    d = valid("fan-in-fan-out")
    edit_config(d, fan_in_fan_out=True)
    record("fan-in-fan-out", "lora.fanInFanOut", d, note="fan_in_fan_out (GPT-2 Conv1D layout)")

    d = valid("nonfinite")
    def nan(sd):
        k = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"
        sd[k] = sd[k].clone()
        sd[k][3, 1] = float("nan")
        sd[k][5, 0] = float("inf")
        return sd
    edit_tensors(d, nan)
    record("nonfinite", "lora.nonFinite", d, tensor="base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
           note="NaN and Inf in lora_B (a warning with allowNonfinite)")

    d = valid("rank-zero")
    edit_config(d, r=0)
    record("rank-zero", "lora.invalidRank", d, note="r = 0", peft=False)

    d = valid("lora-bias-no-base-bias", spec=dict(config=dict(r=2, lora_alpha=4, target_modules=Q_V, lora_bias=True)))
    record("lora-bias-no-base-bias", "lora.biasWithoutBaseBias", d, tensor="base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias",
           note="lora_bias on a base whose q_proj has no bias")

    d = valid("unprefixed")
    edit_tensors(d, lambda sd: {k.removeprefix("base_model.model."): v for k, v in sd.items()})
    record("unprefixed", "lora.unexpectedTensorName", d, tensor="model.layers.0.self_attn.q_proj.lora_A.weight",
           note="keys without base_model.model. (peft ignores them and merges init values)")

    d = valid("other-adapter-name")
    edit_tensors(d, lambda sd: {re.sub(r"\.(lora_[AB])\.weight$", r".\1.other.weight", k): v for k, v in sd.items()})
    record("other-adapter-name", "lora.unexpectedTensorName", d, tensor="base_model.model.model.layers.0.self_attn.q_proj.lora_A.other.weight",
           note="keys carrying an adapter name other than default (peft ignores them)")

    d = valid("dora-embedding", spec=dict(config=dict(r=2, lora_alpha=4, use_dora=True, target_modules=["embed_tokens"]),
                                          save_embedding_layers=False))
    record("dora-embedding", "lora.unsupportedFeature", d, note="DoRA on an embedding")

    d = valid("string-target-with-layers")
    edit_config(d, target_modules=r".*\.q_proj", layers_to_transform=[0])
    record("string-target-with-layers", "lora.invalidConfig", d, note="a regex target with layers_to_transform", peft=False)

    d = valid("norm-target")
    edit_config(d, target_modules=["q_proj", "input_layernorm"])
    record("norm-target", "lora.unsupportedModule", d, note="target_modules matches an RMSNorm", peft=True)

    d = valid("quantized-base")
    record("quantized-base", "lora.quantizedBase", d, base="quant", note="a compressed-tensors int8 base")

    d = valid("no-config")
    (d / "adapter_config.json").unlink()
    record("no-config", "lora.missingConfig", d, note="no adapter_config.json", peft=False)

    d = valid("no-weights")
    (d / "adapter_model.safetensors").unlink()
    record("no-weights", "lora.noWeights", d, note="no adapter_model.safetensors / .bin", peft=False)

    d = valid("resized-without-base-layer", spec=dict(config=dict(r=2, lora_alpha=4, target_modules=["embed_tokens"]),
                                                      save_embedding_layers=False),
              case=dict(base="tiny", dtype="f16", resize=1003))
    record("resized-without-base-layer", "lora.shapeMismatch", d, tensor="base_model.model.model.embed_tokens.lora_embedding_A",
           note="lora_embedding_A for 1003 tokens, no saved embedding: the grown rows are unknown", peft=False)

    d1 = valid("dora-after-other-1", seed=4)
    d2 = valid("dora-after-other-2", spec=dict(config=dict(r=2, lora_alpha=4, use_dora=True, target_modules=["q_proj"])), seed=3)
    expected["dora-after-other"] = {
        "adapters": [rel(d1), rel(d2)], "base": rel(TINY), "code": "lora.unsupportedFeature",
        "note": "a DoRA adapter after another adapter on the same tensor (peft 0.21.2 unmerges and re-merges the "
                "earlier adapters to take the norm on the unmerged weight: a replay ckpt does not reproduce)"}

    write_json(ERRORS / "expected.json", expected)
    info["error_cases"] = sorted(expected)


# ----------------------------------------------------------------------------------------------
# kernel vectors: torch's own B @ A and linalg.norm on random inputs (every block rule, every norm tail)


def make_kernel_vectors(info: dict):
    fresh_dir(KERNELS)
    g = gen(20240901)
    tensors = {}
    # [16, r] @ [r, 12]: both sides >= 12, where torch's mm runs MKL's blocked sgemm (below that, on this machine,
    # another kernel with another summation order answers; see lora/README.md). B and A hold fp16-representable
    # values (stored as F16 to keep the file small; they widen exactly), P is torch's fp32 result.
    ranks = [1, 3, 8, 16, 64, 191, 192, 193, 200, 256, 257, 383, 384, 385, 577]
    for r in ranks:
        n, m = 16, 12
        B = torch.randn(n, r, generator=g).half()
        A = (torch.randn(r, m, generator=g) * torch.exp2(torch.randint(-4, 5, (r, 1), generator=g).float())).half()
        tensors[f"r{r}.B"] = B
        tensors[f"r{r}.A"] = A
        tensors[f"r{r}.P"] = (B.float() @ A.float()).contiguous()
    lengths = list(range(1, 41)) + [64, 96, 172, 176, 1000, 1003]
    for n in lengths:
        V = torch.randn(4, n, generator=g) * (10.0 ** torch.randn(4, 1, generator=g))
        tensors[f"n{n}.V"] = V
        tensors[f"n{n}.norm"] = torch.linalg.norm(V, dim=1).contiguous()
    save_file(tensors, str(KERNELS / "vectors.safetensors"), metadata={"format": "pt"})
    info["kernel_vectors"] = {"ranks": ranks, "product_shape": "[16, r] @ [r, 12]", "norm_lengths": lengths,
                              "norm_rows": 4, "seed": 20240901}


# ----------------------------------------------------------------------------------------------
# FastChat's apply_lora on the fp16 case


def run_fastchat(info: dict, adapter_dir: Path, expected_tensors: dict):
    import fastchat.model.apply_lora as fc
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "out"
        with captured():
            fc.apply_lora(str(TINY), str(target), str(adapter_dir))
        tensors = read_folder_tensors(target)
        files = {p.name: sha256_bytes(p.read_bytes()) for p in sorted(target.iterdir()) if p.is_file()}
    desc = describe(tensors)
    mismatched = sorted(k for k in desc if desc[k] != expected_tensors.get(k))
    missing = sorted(k for k in expected_tensors if k not in desc)
    out = {"adapter": rel(adapter_dir), "base": rel(TINY), "call": "fastchat.model.apply_lora.apply_lora(base, target, lora)",
           "files": files, "tensors": desc,
           "tensors_differing_from_peft_reference": mismatched, "tensors_missing": missing}
    write_json(OUT / "fastchat_apply_lora.json", out)
    info["fastchat_apply_lora"] = {"equals_peft_reference": not mismatched and not missing}
    assert not mismatched and not missing, (mismatched, missing)


# ----------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_flags() -> list:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                fl = line.split(":", 1)[1].split()
                return sorted(f for f in fl if f.startswith("avx") or f in ("fma", "f16c"))
    except OSError:
        pass
    return []


def main():
    global DIAGNOSTICS
    if "--diagnostics" in sys.argv:
        DIAGNOSTICS = Path(sys.argv[sys.argv.index("--diagnostics") + 1]).resolve()
    torch.set_num_threads(THREADS)
    torch.manual_seed(20240614)
    OUT.mkdir(exist_ok=True)
    fresh_dir(ADAPTERS)
    fresh_dir(EXPECTED)
    mkl = re.search(r"Math Kernel Library Version ([^\s]+)", torch.__config__.show())
    info = {
        "generator": "Fixtures/generate_lora.py",
        "python": platform.python_version(), "platform": platform.machine(),
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "safetensors": pkg_version("safetensors"), "numpy": np.__version__, "fschat": pkg_version("fschat"),
        "cpu_env": {
            "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"], "MKL_NUM_THREADS": os.environ["MKL_NUM_THREADS"],
            "torch_num_threads": torch.get_num_threads(),
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY", "(unset: ATen's best)"),
            "MKL_CBWR": os.environ.get("MKL_CBWR", "(unset: MKL's default code path)"),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl": mkl.group(1) if mkl else None,
            "cpu": cpu_model(), "cpu_flags": cpu_flags(),
        },
        "bases": {}, "cases": {},
    }
    make_bases(info)
    results = {}
    for case in CASES:
        dirs, merged = run_case(case, info)
        results[case["name"]] = (dirs, merged)
        print(f"{case['name']}: {info['cases'][case['name']]['changed_tensors']} tensors changed", flush=True)
    run_fastchat(info, results["linear-f16"][0][0], describe(results["linear-f16"][1]))
    make_error_cases(info)
    make_kernel_vectors(info)
    for p in OUT.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)  # safetensors writes 0600 files
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    info["lora_folder_bytes_before_versions"] = total
    write_json(OUT / "VERSIONS.json", info)
    print(f"done: {len(CASES)} cases, {len(info['error_cases'])} error cases, Fixtures/lora = {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
