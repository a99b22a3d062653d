#!/usr/bin/env python3
"""Generate ckpt's delta-weight fixtures (Vicuna-style apply_delta; run from anywhere, paths are
relative to this file).

    .venv/bin/python Fixtures/generate_delta.py

Python is used for fixture generation only. Everything written here is committed; the Swift tests
compare ckpt against it. Expected values come from FastChat's own functions (fschat 0.2.36 installed in
the venv; fschat 0.1.10's apply_delta.py / make_delta.py vendored verbatim in delta/fschat-0.1.10/),
torch and transformers, never from ckpt.

Reads Fixtures/tiny-llama/ (the base; not modified), Fixtures/corpus.txt and, for a byte comparison
only, Fixtures/torch/tiny-llama-bin/ if present. Rewrites Fixtures/delta/ except delta/README.md and
delta/fschat-0.1.10/. See delta/README.md for what each folder is.
"""

import os

# Determinism: single thread everywhere, set before torch is imported (same as generate.py).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["ATEN_CPU_CAPABILITY"] = "default"
os.environ["MKL_CBWR"] = "COMPATIBLE"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import base64  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import version as pkg_version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from huggingface_hub import split_torch_state_dict_into_shards  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402

import fastchat.model.apply_delta as fc_apply  # noqa: E402  (fschat 0.2.36)
import fastchat.model.make_delta as fc_make  # noqa: E402

transformers.logging.set_verbosity_error()
try:
    transformers.utils.logging.disable_progress_bar()
except Exception:  # pragma: no cover
    pass

HERE = Path(__file__).resolve().parent          # Fixtures/
BASE = HERE / "tiny-llama"
CORPUS = HERE / "corpus.txt"
OUT = HERE / "delta"
EXP = OUT / "expected"
FSCHAT_0110 = OUT / "fschat-0.1.10"
TORCH_BASE_BIN = HERE / "torch" / "tiny-llama-bin"   # generate_torch.py's copy (byte comparison only)

MAX_SHARD_SIZE = "150KB"
# sha256 of the vendored fschat 0.1.10 files, as listed in the wheel's RECORD (urlsafe base64, no padding).
# Wheel: fschat-0.1.10-py3-none-any.whl, sha256 a8497fe7013811630402cee1ad50b3644dd511fdb67736f9e65d4584c8a71453
FSCHAT_0110_RECORD = {
    "apply_delta.py": "JiFWKKYK171RLTD1GObsyk8t4kE047TGbjqhF4yGXQ0",
    "make_delta.py": "2xmd9Ms7aqvd9AEBruCqFaoJVrpEjpKGHPaNq9f26Ow",
}

# "Fine-tune" of tiny-llama (delta/target) and of its vocab-1001 variant (v0 target). Token windows are
# drawn from a slice of corpus.txt tokenized as generate.py does (<s> paragraph </s>, 80,266 tokens).
FINETUNE = dict(
    seed=20240620, data_seed=11, token_slice=[20000, 40000], steps=40, batch_size=8, seq_len=64,
    optimizer="AdamW", lr=2e-3, schedule="constant", betas=[0.9, 0.95], eps=1e-8, weight_decay=0.1,
    grad_clip=1.0, train_dtype="float32", attn_implementation="eager", saved_dtype="float16",
    eval="8 fixed windows of seq_len, evenly spaced in the slice",
)
FINETUNE_V0 = dict(FINETUNE, seed=20240621, data_seed=12, token_slice=[40000, 60000], steps=20)

ST_DTYPE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
            torch.uint8: "U8", torch.bool: "BOOL"}


# ----------------------------------------------------------------------------------------------
# helpers


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Contiguous little-endian bytes of a tensor."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


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


def rel(p: Path) -> str:
    """Path relative to Fixtures/ (as recorded in the JSON files)."""
    return Path(os.path.relpath(p, HERE)).as_posix()


def set_determinism(seed: int):
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.use_deterministic_algorithms(True)


def torch_load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(str(path), weights_only=True, map_location="cpu")


def read_tensors(folder: Path) -> dict:
    """All tensors of a checkpoint folder (*.safetensors or pytorch_model*.bin), as stored."""
    out = {}
    sts = sorted(folder.glob("*.safetensors"))
    bins = sorted(folder.glob("pytorch_model*.bin"))
    assert bool(sts) != bool(bins), folder
    for p in sts:
        with safe_open(str(p), framework="pt") as f:
            for k in f.keys():
                assert k not in out, k
                out[k] = f.get_tensor(k)
    for p in bins:
        sd = torch_load(p)
        for k, v in sd.items():
            assert k not in out, k
            out[k] = v
    return out


def manifest(tensors: dict) -> dict:
    return {"format": "ckpt-manifest/1", "files": {},
            "tensors": {k: {"dtype": ST_DTYPE[v.dtype], "shape": list(v.shape),
                            "sha256": sha256_bytes(tensor_bytes(v))} for k, v in tensors.items()}}


def assert_same_tensors(a: dict, b: dict, what: str):
    assert set(a) == set(b), (what, sorted(set(a) ^ set(b)))
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (what, k, a[k].dtype, b[k].dtype)
        assert tensor_bytes(a[k]) == tensor_bytes(b[k]), (what, k)


def quiet(fn, *args):
    """Run a FastChat function with its prints / tqdm bars captured; re-raise with the log on failure."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001
            e.fastchat_log = buf.getvalue()
            raise


def verdict(fn, *args, scrub=()) -> str:
    """'accepted' or '<ExceptionType>: <first line>' of what a FastChat call raises."""
    try:
        quiet(fn, *args)
        return "accepted"
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().split("\n")[0]
        for s in scrub:
            msg = msg.replace(str(s), "<tmp>")
        msg = msg.replace(str(HERE) + os.sep, "")
        return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def folder_listing(folder: Path) -> dict:
    return {p.name: {"size": p.stat().st_size, "sha256": sha256_bytes(p.read_bytes())}
            for p in sorted(folder.iterdir()) if p.is_file()}


def copy_files(src: Path, dst: Path, names):
    for n in names:
        shutil.copyfile(src / n, dst / n)


def load_fschat_0110(name: str):
    """Import fschat 0.1.10's fastchat/model/<name>.py (vendored verbatim) under a private module name."""
    path = FSCHAT_0110 / f"{name}.py"
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    assert digest == FSCHAT_0110_RECORD[f"{name}.py"], f"{path} differs from the fschat 0.1.10 wheel"
    spec = importlib.util.spec_from_file_location(f"fschat_0_1_10_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def shim_make_delta_args(mod):
    """SHIM (both fschat versions): make_delta() reads the module-global `args` that only its
    `if __name__ == "__main__":` block defines (`args.hub_repo_id`), so calling the function raises
    NameError. Provide it: hub_repo_id=None = no push_to_hub. Arithmetic untouched."""
    mod.args = argparse.Namespace(hub_repo_id=None)


# ----------------------------------------------------------------------------------------------
# transformers-4.28-era file formats (published Vicuna deltas). transformers 5 can no longer write a
# slow (SentencePiece) tokenizer's files nor a `torch_dtype` config, so these are written by hand in
# the layout transformers 4.28's save_pretrained produced (json.dumps(indent=2, sort_keys=True) + "\n").


def config_428(vocab_size: int) -> dict:
    c = json.loads((BASE / "config.json").read_text())
    return {
        "_name_or_path": "tiny-vicuna",
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": c["hidden_act"],
        "hidden_size": c["hidden_size"],
        "initializer_range": c["initializer_range"],
        "intermediate_size": c["intermediate_size"],
        "max_position_embeddings": c["max_position_embeddings"],
        "model_type": "llama",
        "num_attention_heads": c["num_attention_heads"],
        "num_hidden_layers": c["num_hidden_layers"],
        "pad_token_id": 0,
        "rms_norm_eps": c["rms_norm_eps"],
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.28.0.dev0",
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def _added(content):
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_slow_tokenizer(out: Path):
    """tokenizer.model (the base's: 1000 pieces) + tokenizer_config.json + special_tokens_map.json as
    transformers 4.28's LlamaTokenizer.save_pretrained wrote them. No pad token, no added_tokens.json."""
    shutil.copyfile(BASE / "tokenizer.model", out / "tokenizer.model")
    tok = lambda s: {"__type": "AddedToken", **_added(s)}  # noqa: E731
    write_json(out / "tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False, "bos_token": tok("<s>"),
        "clean_up_tokenization_spaces": False, "eos_token": tok("</s>"), "model_max_length": 2048,
        "pad_token": None, "padding_side": "right", "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer", "unk_token": tok("<unk>"),
    })
    write_json(out / "special_tokens_map.json",
               {"bos_token": _added("<s>"), "eos_token": _added("</s>"), "unk_token": _added("<unk>")})


def write_bin_shards(out: Path, sd: "collections.OrderedDict", index_style: str):
    """HF-sharded pytorch_model-0000k-of-0000N.bin: huggingface_hub's greedy split at 150KB in state-dict
    order, each shard an OrderedDict saved with torch.save. index_style 'hf5' = {"metadata":
    {"total_parameters", "total_size"}, ...} (as generate_torch.py / transformers 5), '428' =
    {"metadata": {"total_size"}, ...} (transformers 4.28)."""
    split = split_torch_state_dict_into_shards(sd, filename_pattern="pytorch_model{suffix}.bin",
                                               max_shard_size=MAX_SHARD_SIZE)
    for fname, names in split.filename_to_tensors.items():
        torch.save(collections.OrderedDict((n, sd[n]) for n in names), str(out / fname))
    meta = {"total_size": split.metadata["total_size"]}
    if index_style == "hf5":
        meta["total_parameters"] = sum(t.numel() for t in sd.values())
    write_json(out / "pytorch_model.bin.index.json", {"metadata": meta, "weight_map": split.tensor_to_filename})
    return split


def state_dict_order() -> list:
    return json.loads((HERE / "expected" / "tiny-llama" / "state_dict_order.json").read_text())


def norm_stats(t: dict) -> dict:
    norms = {k: v.float() for k, v in t.items() if k.endswith("norm.weight")}
    return {"mean": round(float(torch.cat(list(norms.values())).mean()), 4),
            "min": round(float(min(v.min() for v in norms.values())), 4),
            "max": round(float(max(v.max() for v in norms.values())), 4)}


# ----------------------------------------------------------------------------------------------
# fine-tuning


def token_stream(sp, text: str):
    ids = []
    for para in text.split("\n\n"):
        para = para.strip("\n")
        if para:
            ids += [sp.bos_id()] + sp.encode(para) + [sp.eos_id()]
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def eval_loss(model, batch) -> float:
    model.eval()
    loss = model(input_ids=batch, labels=batch).loss.item()
    model.train()
    return loss


def finetune(model, stream, spec) -> dict:
    set_determinism(spec["seed"])
    a, b = spec["token_slice"]
    ids = stream[a:b]
    T, B = spec["seq_len"], spec["batch_size"]
    stride = (len(ids) - T) // 8
    eval_batch = torch.stack([ids[i * stride:i * stride + T] for i in range(8)])
    gen = torch.Generator().manual_seed(spec["data_seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"],
                            weight_decay=spec["weight_decay"])
    model.train()
    before = eval_loss(model, eval_batch)
    for _ in range(spec["steps"]):
        ix = torch.randint(0, len(ids) - T, (B,), generator=gen)
        batch = torch.stack([ids[i:i + T] for i in ix.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec["grad_clip"])
        opt.step()
    after = eval_loss(model, eval_batch)
    model.eval()
    return {"eval_loss_before": round(before, 4), "eval_loss_after": round(after, 4)}


def changed_fraction(a: dict, b: dict) -> dict:
    """Per tensor: fraction of elements whose fp16 bits differ between a and b (same names)."""
    out = {}
    for k in a:
        x, y = a[k], b[k]
        if x.shape != y.shape:
            n = min(x.shape[0], y.shape[0])
            x, y = x[:n], y[:n]
        out[k] = round(float((x.view(torch.int16) != y.view(torch.int16)).float().mean()), 4)
    return out


# ----------------------------------------------------------------------------------------------


def main():
    t0 = time.time()
    set_determinism(FINETUNE["seed"])
    for p in list(OUT.iterdir()) if OUT.exists() else []:
        if p.name not in ("README.md", "fschat-0.1.10"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    OUT.mkdir(exist_ok=True)
    EXP.mkdir()
    tmp_root = Path(tempfile.mkdtemp(prefix="ckpt-delta-"))
    fs0110_apply = load_fschat_0110("apply_delta")
    fs0110_make = load_fschat_0110("make_delta")
    shim_make_delta_args(fc_make)
    shim_make_delta_args(fs0110_make)
    info = {"fastchat_runs": {}}

    base16 = read_tensors(BASE)
    order = state_dict_order()
    assert set(order) == set(base16)
    sp = spm.SentencePieceProcessor(model_file=str(BASE / "tokenizer.model"))
    stream = token_stream(sp, CORPUS.read_text(encoding="utf-8"))

    # 1. target: tiny-llama fine-tuned a little ------------------------------------------------
    print("target ...", flush=True)
    model = LlamaForCausalLM.from_pretrained(str(BASE), dtype=torch.float32, attn_implementation="eager")
    info["finetune"] = finetune(model, stream, FINETUNE)
    target_dir = fresh_dir(OUT / "target")
    model.to(torch.float16).save_pretrained(str(target_dir), max_shard_size=MAX_SHARD_SIZE)
    copy_files(BASE, target_dir, ["tokenizer.model", "tokenizer.json", "tokenizer_config.json"])
    target16 = read_tensors(target_dir)
    frac = changed_fraction(target16, base16)
    assert all(v > 0 for v in frac.values()), frac
    info["finetune"]["changed_fraction_vs_base_fp16"] = frac
    del model

    # 2. delta-st: FastChat's make_delta ------------------------------------------------------
    print("delta-st (fastchat make_delta) ...", flush=True)
    delta_st = OUT / "delta-st"
    quiet(fc_make.make_delta, str(BASE), str(target_dir), str(delta_st))
    delta16 = read_tensors(delta_st)
    assert set(delta16) == set(base16)
    for k in delta16:   # FastChat's arithmetic is fp16 in-place subtraction
        assert delta16[k].dtype == torch.float16
        assert tensor_bytes(delta16[k]) == tensor_bytes(target16[k] - base16[k]), k
    write_json(EXP / "delta_manifest.json", manifest(delta16))
    info["fastchat_runs"]["make_delta"] = {"fschat": "0.2.36", "base": rel(BASE), "target": rel(target_dir),
                                           "output": rel(delta_st), "files": folder_listing(delta_st)}

    # 3. delta-bin: the same tensors as published Vicuna deltas were stored -------------------------
    print("delta-bin ...", flush=True)
    delta_bin = fresh_dir(OUT / "delta-bin")
    sd = collections.OrderedDict((k, delta16[k].clone()) for k in order)
    write_bin_shards(delta_bin, sd, "428")
    write_json(delta_bin / "config.json", config_428(1000))
    write_slow_tokenizer(delta_bin)
    assert_same_tensors(read_tensors(delta_bin), delta16, "delta-bin")

    # 5. base-bin ------------------------------------------------------------------------------
    print("base-bin ...", flush=True)
    base_bin = fresh_dir(OUT / "base-bin")
    write_bin_shards(base_bin, collections.OrderedDict((k, base16[k].clone()) for k in order), "hf5")
    copy_files(BASE, base_bin, ["config.json", "generation_config.json", "tokenizer.json",
                                "tokenizer_config.json", "tokenizer.model"])
    assert_same_tensors(read_tensors(base_bin), base16, "base-bin")
    if TORCH_BASE_BIN.is_dir():
        same = {p.name: (TORCH_BASE_BIN / p.name).is_file()
                and (TORCH_BASE_BIN / p.name).read_bytes() == p.read_bytes() for p in sorted(base_bin.iterdir())}
        info["base_bin_identical_to_torch_tiny_llama_bin"] = same

    # 8. delta-inv-freq: delta-bin + transformers-4.28 rotary_emb.inv_freq buffers ----------------
    print("delta-inv-freq ...", flush=True)
    delta_inv = fresh_dir(OUT / "delta-inv-freq")
    cfg = json.loads((BASE / "config.json").read_text())
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))   # LlamaRotaryEmbedding, 4.28
    sd_inv = collections.OrderedDict()
    for k in order:   # 4.28 state_dict order: q, k, v, o, rotary_emb.inv_freq, mlp..., norms
        sd_inv[k] = delta16[k].clone()
        if k.endswith("self_attn.o_proj.weight"):
            sd_inv[k.replace("o_proj.weight", "rotary_emb.inv_freq")] = inv_freq.clone()
    write_bin_shards(delta_inv, sd_inv, "428")
    write_json(delta_inv / "config.json", config_428(1000))
    write_slow_tokenizer(delta_inv)
    info["inv_freq"] = [float(x) for x in inv_freq]

    # 4. applied: FastChat's apply_delta (base = tiny-llama, delta = delta-st) ----------------------
    print("applied (fastchat apply_delta) ...", flush=True)
    applied_dir = OUT / "applied"
    quiet(fc_apply.apply_delta, str(BASE), str(applied_dir), str(delta_st))
    applied = read_tensors(applied_dir)
    assert set(applied) == set(base16)
    for k in applied:
        assert applied[k].dtype == torch.float16
        assert tensor_bytes(applied[k]) == tensor_bytes(base16[k] + delta16[k]), k
    write_json(EXP / "applied_manifest.json", manifest(applied))
    files_dir = fresh_dir(EXP / "applied_files")
    side = [p.name for p in sorted(applied_dir.iterdir()) if p.suffix != ".safetensors" and not p.name.endswith(".index.json")]
    copy_files(applied_dir, files_dir, side)
    info["fastchat_runs"]["apply_delta"] = {"fschat": "0.2.36", "base": rel(BASE), "delta": rel(delta_st),
                                            "output": rel(applied_dir), "files": folder_listing(applied_dir)}
    info["applied_vs_target_changed_fraction"] = changed_fraction(applied, target16)

    # 5./8. FastChat on every format combination: identical tensors -------------------------------
    print("format combinations ...", flush=True)
    combos = {}
    for b in (BASE, base_bin):
        for d in (delta_st, delta_bin, delta_inv):
            if (b, d) == (BASE, delta_st):
                continue
            out = tmp_root / f"combo-{b.name}-{d.name}"
            quiet(fc_apply.apply_delta, str(b), str(out), str(d))
            assert_same_tensors(read_tensors(out), applied, f"{b.name} x {d.name}")
            combos[f"{rel(b)} + {rel(d)}"] = {
                "tensors_identical_to_applied": True,
                "files_byte_identical_to_applied": {
                    f: (applied_dir / f).is_file() and (applied_dir / f).read_bytes() == (out / f).read_bytes()
                    for f in sorted(os.listdir(out))}}
            shutil.rmtree(out)
    info["fastchat_runs"]["format_combinations"] = combos

    # 6. mixed dtypes: f32 base x bf16 delta ---------------------------------------------------
    print("base-f32, delta-bf16 ...", flush=True)
    base_f32 = fresh_dir(OUT / "base-f32")
    m = LlamaForCausalLM.from_pretrained(str(BASE), dtype=torch.float32)
    m.save_pretrained(str(base_f32), max_shard_size=MAX_SHARD_SIZE)
    copy_files(BASE, base_f32, ["tokenizer.model", "tokenizer.json", "tokenizer_config.json"])
    b32 = read_tensors(base_f32)
    assert_same_tensors(b32, {k: v.float() for k, v in base16.items()}, "base-f32")
    delta_bf16 = fresh_dir(OUT / "delta-bf16")
    m = LlamaForCausalLM.from_pretrained(str(delta_st), dtype=torch.bfloat16)
    m.save_pretrained(str(delta_bf16))
    copy_files(delta_st, delta_bf16, ["tokenizer.json", "tokenizer_config.json"])
    dbf = read_tensors(delta_bf16)
    assert_same_tensors(dbf, {k: v.to(torch.bfloat16) for k, v in delta16.items()}, "delta-bf16")
    del m
    out = tmp_root / "applied-f32-bf16"
    quiet(fc_apply.apply_delta, str(base_f32), str(out), str(delta_bf16))
    mixed = read_tensors(out)
    for k in mixed:
        assert mixed[k].dtype == torch.float16
        assert tensor_bytes(mixed[k]) == tensor_bytes(b32[k].half() + dbf[k].half()), k
    write_json(EXP / "applied_f32base_bf16delta_manifest.json", manifest(mixed))
    info["fastchat_runs"]["apply_delta_f32base_bf16delta"] = {
        "fschat": "0.2.36", "base": rel(base_f32), "delta": rel(delta_bf16), "files": folder_listing(out),
        "changed_fraction_vs_applied": changed_fraction(mixed, applied),
        # cast fp16 -> bf16 when writing delta-bf16 (lossy) vs bf16 -> fp16 when FastChat loads it (exact here:
        # every bf16 value obtained by rounding an fp16 value is itself an fp16 value)
        "delta_f16_to_bf16_rounded_elements": int(sum(int((v.to(torch.bfloat16).float() != v.float()).sum())
                                                      for v in delta16.values())),
        "delta_elements": sum(v.numel() for v in delta16.values()),
        "bf16_to_f16_inexact_elements": int(sum(int((v.half().float() != v.float()).sum()) for v in dbf.values())),
    }
    shutil.rmtree(out)

    # 7. v0 (fschat 0.1.10): vocab 1001 with a zero-padded base ---------------------------------
    print("delta-v0 (fschat 0.1.10 make_delta / apply_delta) ...", flush=True)
    m = LlamaForCausalLM.from_pretrained(str(BASE), dtype=torch.float32, attn_implementation="eager")
    # FastChat v0 training added "[PAD]" and initialised the new rows with the mean of the old ones
    # (smart_tokenizer_and_embedding_resize, from Alpaca); the pad id never occurs in the data.
    m.resize_token_embeddings(1001, mean_resizing=False)
    with torch.no_grad():
        for w in (m.get_input_embeddings().weight, m.get_output_embeddings().weight):
            w[-1:] = w[:-1].mean(dim=0, keepdim=True)
    info["finetune_v0"] = finetune(m, stream, FINETUNE_V0)
    target_v0 = fresh_dir(tmp_root / "target-v0")
    m.to(torch.float16).save_pretrained(str(target_v0), max_shard_size=MAX_SHARD_SIZE)
    copy_files(BASE, target_v0, ["tokenizer.model", "tokenizer.json", "tokenizer_config.json"])
    del m
    raw_v0 = tmp_root / "delta-v0-raw"
    quiet(fs0110_make.make_delta, str(BASE), str(target_v0), str(raw_v0))
    dv0 = read_tensors(raw_v0)
    tv0 = read_tensors(target_v0)
    for k in dv0:
        pb = base16[k]
        if k in ("model.embed_tokens.weight", "lm_head.weight"):
            pb = torch.cat([pb, torch.zeros_like(pb[:1])])
        assert tensor_bytes(dv0[k]) == tensor_bytes(tv0[k] - pb), k
    tok = AutoTokenizer.from_pretrained(str(raw_v0))
    assert len(tok) == 1000 and tok.pad_token is None, (len(tok), tok.pad_token)
    delta_v0 = fresh_dir(OUT / "delta-v0")
    write_bin_shards(delta_v0, collections.OrderedDict((k, dv0[k].clone()) for k in order), "428")
    write_json(delta_v0 / "config.json", config_428(1001))
    write_slow_tokenizer(delta_v0)
    assert_same_tensors(read_tensors(delta_v0), dv0, "delta-v0")
    out = tmp_root / "applied-v0"
    quiet(fs0110_apply.apply_delta, str(BASE), str(out), str(delta_v0))
    av0 = read_tensors(out)
    for k in av0:
        pb = base16[k]
        if k in ("model.embed_tokens.weight", "lm_head.weight"):
            pb = torch.cat([pb, torch.zeros_like(pb[:1])])
            assert tensor_bytes(av0[k][1000]) == tensor_bytes(dv0[k][1000]), k   # zero row + delta row
        assert av0[k].dtype == torch.float16
        assert tensor_bytes(av0[k]) == tensor_bytes(pb + dv0[k]), k
    write_json(EXP / "applied_v0_manifest.json", manifest(av0))
    v0_files = fresh_dir(EXP / "applied_v0_files")
    copy_files(out, v0_files, [p.name for p in sorted(out.iterdir())
                               if p.suffix != ".safetensors" and not p.name.endswith(".index.json")])
    info["fastchat_runs"]["apply_delta_v0"] = {
        "fschat": "0.1.10 (vendored)", "base": rel(BASE), "delta": rel(delta_v0), "files": folder_listing(out),
        "changed_fraction_vs_target_v0": changed_fraction(av0, tv0)}
    shutil.rmtree(out)
    info["fastchat_runs"]["apply_delta_v0_with_fschat_0_2_36"] = verdict(
        fc_apply.apply_delta, str(BASE), str(tmp_root / "x"), str(delta_v0), scrub=[tmp_root])
    shutil.rmtree(tmp_root / "x", ignore_errors=True)

    # 9. error cases --------------------------------------------------------------------------
    print("errors ...", flush=True)
    errs_dir = fresh_dir(OUT / "errors")
    bin_index = json.loads((delta_bin / "pytorch_model.bin.index.json").read_text())
    bin_shards = {f: torch_load(delta_bin / f) for f in sorted(set(bin_index["weight_map"].values()))}

    def variant(case: str, tensor: str, edit):
        """delta-bin with one defect: only the shard holding `tensor` is rewritten, the others are
        byte-for-byte copies; index (total_size, weight_map) updated; same config and tokenizer."""
        d = fresh_dir(errs_dir / case)
        shard = bin_index["weight_map"][tensor]
        index = json.loads(json.dumps(bin_index))
        for f, sd_ in bin_shards.items():
            if f != shard:
                shutil.copyfile(delta_bin / f, d / f)
                continue
            new = collections.OrderedDict()
            for k, v in sd_.items():
                if k != tensor:
                    new[k] = v
                    continue
                nv = edit(v)
                index["metadata"]["total_size"] -= v.numel() * v.element_size()
                if nv is None:
                    del index["weight_map"][k]
                else:
                    new[k] = nv
                    index["metadata"]["total_size"] += nv.numel() * nv.element_size()
            torch.save(new, str(d / f))
        write_json(d / "pytorch_model.bin.index.json", index)
        copy_files(delta_bin, d, ["config.json", "tokenizer.model", "tokenizer_config.json",
                                  "special_tokens_map.json"])
        return d

    errors = {}

    def add(case, base, delta, code, tensor, desc):
        errors[case] = {"base": rel(base), "delta": rel(delta), "error": code, "tensor": tensor,
                        "description": desc,
                        "fastchat": verdict(fc_apply.apply_delta, str(base), str(tmp_root / case), str(delta),
                                            scrub=[tmp_root])}
        shutil.rmtree(tmp_root / case, ignore_errors=True)

    t = "model.layers.1.mlp.up_proj.weight"
    d = variant("missing_tensor", t, lambda v: None)
    add("missing_tensor", BASE, d, "delta.missingTensor", t,
        f"delta-bin without {t} (its shard rewritten, index updated): a base weight has no delta. FastChat "
        "does not notice: from_pretrained initialises the missing weight randomly and `assert name in "
        "delta.state_dict()` checks the instantiated model, not the checkpoint (output = base + random init)")
    t = "model.layers.1.mlp.down_proj.weight"
    d = variant("shape_mismatch", t, lambda v: v.t().contiguous())
    add("shape_mismatch", BASE, d, "delta.shapeMismatch", t,
        f"delta-bin with {t} stored transposed: [172, 64] instead of the base's [64, 172] "
        "(same element count and byte size; only the shape differs)")
    t = "model.norm.weight"
    d = variant("non_float", t, lambda v: torch.round(v.float() * 4096).to(torch.int32))
    add("non_float", BASE, d, "delta.nonFloat", t,
        f"delta-bin with {t} stored as I32 [64] (round(delta * 4096)); every other tensor is F16. FastChat "
        "does not notice: from_pretrained(torch_dtype=float16) converts the integers to fp16")
    tn, dn = norm_stats(target16), norm_stats(delta16)
    add("delta_is_weights", BASE, target_dir, "sanity.deltaLooksLikeWeights", None,
        "the 'delta' is the fine-tuned model itself (delta/target), not a difference: its RMSNorm weights "
        f"have mean {tn['mean']} (min {tn['min']}, max {tn['max']}); a real delta's are near 0 (delta-st: "
        f"mean {dn['mean']}, min {dn['min']}, max {dn['max']}). A warning unless --strict; FastChat applies it "
        "silently (the result is base + weights)")
    bn = norm_stats(base16)
    add("base_is_delta", delta_st, delta_st, "sanity.baseLooksLikeDelta", None,
        "the 'base' is a delta (delta/delta-st): its RMSNorm weights have mean "
        f"{dn['mean']} (min {dn['min']}, max {dn['max']}), where real weights are O(1) (tiny-llama: mean "
        f"{bn['mean']}, min {bn['min']}, max {bn['max']})")
    write_json(EXP / "errors.json", errors)

    # provenance ----------------------------------------------------------------------------
    shutil.rmtree(tmp_root)
    info.update({
        "generator": "Fixtures/generate_delta.py",
        "python": platform.python_version(),
        "cpu_env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS")},
        "versions": {p: pkg_version(p) for p in ("torch", "transformers", "safetensors", "sentencepiece",
                                                 "tokenizers", "huggingface_hub", "fschat", "accelerate",
                                                 "numpy")},
        "fschat_0_1_10": {"wheel": "fschat-0.1.10-py3-none-any.whl",
                          "wheel_sha256": "a8497fe7013811630402cee1ad50b3644dd511fdb67736f9e65d4584c8a71453",
                          "record_sha256": FSCHAT_0110_RECORD},
        "finetune_settings": FINETUNE,
        "finetune_v0_settings": FINETUNE_V0,
        "max_shard_size": MAX_SHARD_SIZE,
    })
    write_json(OUT / "VERSIONS.json", info)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
