#!/usr/bin/env python3
"""Generate ckpt's quantization fixtures under Fixtures/quant/ (paths relative to this file).

    .venv/bin/python Fixtures/generate_quant.py [--sdist llama_cpp_python-0.3.36.tar.gz]

Python is used for fixture generation only; every output is committed. Expected values come from the
reference tools (compressed-tensors, llama.cpp's convert_hf_to_gguf.py + gguf-py, ggml's C reader,
torch), never from ckpt.

Reads (never modifies) Fixtures/tiny-llama/ and Fixtures/tiny-llama-gqa/ and
Fixtures/expected/<model>/forward.json (prompt ids). Rewrites Fixtures/quant/ except README.md:

  ct/<model>-<channel|group32>/          compressed-tensors int8 weight-only pack-quantized checkpoints
  ct/<model>-<scheme>/expected/          quality.json (error metrics), load.json (transformers load-back)
  ct/library_behaviour.json              what compressed-tensors does with in_features 172 at group 32
  gguf/<model>-<type>.gguf               written by llama.cpp's convert_hf_to_gguf.py (kept: both q8_0, tiny-llama f16)
  gguf/<model>-<type>.json               GGUFReader view (metadata, tensor infos, hashes) for f16, q8_0, bf16 and
                                         f32 of both models, including the conversions whose .gguf is not kept
  gguf/<model>-q8_0.quality.json         Q8_0 error metrics vs the fp16 source
  gguf/malformed/*.gguf + expected.json  hand-built invalid GGUF files and what each reader says
  VERSIONS.json                          tool versions, llama.cpp sdist hash and commit

llama.cpp is taken from the llama-cpp-python sdist on PyPI (it vendors llama.cpp, convert_hf_to_gguf.py,
gguf-py and ggml). Without --sdist the script runs `pip download` for it (needs PyPI); the sdist's sha256
is checked. ggml's gguf reader is compiled from that sdist with g++/gcc (no cmake needed).
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
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import compressed_tensors  # noqa: E402
import gguf  # noqa: E402  (PyPI gguf 0.19.0: reader, dequantize, cross-checks)
import safetensors  # noqa: E402
import sentencepiece  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from gguf_dump import describe_gguf  # noqa: E402,F401  (the one GGUF dump; generate_families.py uses it through this module)

transformers.logging.set_verbosity_error()
try:
    transformers.utils.logging.disable_progress_bar()
except Exception:  # pragma: no cover
    pass

HERE = Path(__file__).resolve().parent
OUT = HERE / "quant"
MODELS = ["tiny-llama", "tiny-llama-gqa"]

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_PYTHON_SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_CPP_COMMIT = "0c1e57098"  # llama-cpp-python 0.3.36 CHANGELOG: "update llama.cpp to ggml-org/llama.cpp@0c1e57098"

# .gguf files committed (size budget ~3 MB); every other conversion is described by its .json only
GGUF_KEEP = {"tiny-llama": ["f16", "q8_0"], "tiny-llama-gqa": ["q8_0"]}
GGUF_TYPES = ["f16", "q8_0", "bf16", "f32"]

TOKENIZER_FILES = ["tokenizer.model", "tokenizer.json", "tokenizer_config.json"]


# ----------------------------------------------------------------------------------------------------------
# helpers


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def jfloat(x: float):
    """JSON-safe float: inf/nan as strings (JSON has no literal for them)."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return x


def load_source_tensors(model: str) -> dict:
    """Original fp16 tensors exactly as stored in the source shards (name -> torch tensor)."""
    src = HERE / model
    out = {}
    for f in sorted(src.glob("model-*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():
                out[k] = fh.get_tensor(k)
    return out


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class ErrAcc:
    """Accumulates the quality metrics of quantization.md-style error reports (float64)."""

    def __init__(self):
        self.max_abs = 0.0
        self.sum_sq_w = 0.0
        self.sum_sq_e = 0.0

    @staticmethod
    def metrics(w: np.ndarray, wh: np.ndarray) -> dict:
        w = w.astype(np.float64)
        wh = wh.astype(np.float64)
        e = w - wh
        sw = float(np.sum(w * w))
        se = float(np.sum(e * e))
        return {
            "max_abs_error": float(np.max(np.abs(e))) if e.size else 0.0,
            "rel_rms_error": math.sqrt(np.mean(e * e)) / math.sqrt(np.mean(w * w)),
            "snr_db": jfloat(math.inf if se == 0 else 10.0 * math.log10(sw / se)),
            "_sw": sw,
            "_se": se,
        }

    def add(self, m: dict) -> None:
        self.max_abs = max(self.max_abs, m["max_abs_error"])
        self.sum_sq_w += m.pop("_sw")
        self.sum_sq_e += m.pop("_se")

    def totals(self) -> dict:
        return {
            "max_abs_error": self.max_abs,
            "rel_rms_error": math.sqrt(self.sum_sq_e / self.sum_sq_w),
            "snr_db": jfloat(math.inf if self.sum_sq_e == 0 else 10.0 * math.log10(self.sum_sq_w / self.sum_sq_e)),
        }


# ----------------------------------------------------------------------------------------------------------
# A. compressed-tensors int8 weight-only pack-quantized (W8A16)

CT_SCHEMES = {
    "channel": dict(strategy="channel", group_size=None),
    "group32": dict(strategy="group", group_size=32),
}


def ct_flatten_weight(value: torch.Tensor, args) -> torch.Tensor:
    """llm-compressor 0.14.0.1 observers/helpers.py `_flatten_weight` (weights), verbatim for channel/group.

    compressed-tensors 0.20.1 has no observer of its own (observers live in llm-compressor, whose 0.14.0.1
    pins compressed-tensors==0.19.0 and transformers<=5.17, so it cannot be installed beside 0.20.1).
    """
    from compressed_tensors.quantization import QuantizationStrategy

    if args.strategy == QuantizationStrategy.CHANNEL:
        return value.unsqueeze(-2).unsqueeze(0)  # (1, num_rows, 1, num_cols)
    if args.strategy in (QuantizationStrategy.GROUP, QuantizationStrategy.TENSOR_GROUP):
        return value.unflatten(-1, (-1, args.group_size)).unsqueeze(0)  # (1, rows, groups, group_size)
    raise ValueError(args.strategy)


def ct_min_max(observed: torch.Tensor):
    """llm-compressor 0.14.0.1 observers/min_max.py `_get_min_max` (memoryless_minmax observer)."""
    return torch.amin(observed, dim=(0, -1)), torch.amax(observed, dim=(0, -1))


def ct_quantize_model(model_name: str, scheme: str, extra_ignore: list, probe: dict | None = None):
    """apply_quantization_config + min/max weight calibration + ModelCompressor.compress_model."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        QuantizationStatus,
        apply_quantization_config,
    )
    from compressed_tensors.quantization.utils import calculate_qparams
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(HERE / model_name), dtype=torch.float16)
    model.eval()
    args = QuantizationArgs(num_bits=8, type="int", symmetric=True, dynamic=False, **CT_SCHEMES[scheme])
    config = QuantizationConfig(
        config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=args)},
        ignore=["lm_head"] + extra_ignore,
    )
    apply_quantization_config(model, config)
    # Calibration of the weights, as llm-compressor's QuantizationModifier does it: one observer call per
    # quantized module on its weight, then calculate_qparams (compressed-tensors) -> weight_scale/zero_point.
    with torch.no_grad():
        for name, module in model.named_modules():
            qs = getattr(module, "quantization_scheme", None)
            if qs is None or qs.weights is None:
                continue
            try:
                mn, mx = ct_min_max(ct_flatten_weight(module.weight, qs.weights))
            except RuntimeError as e:
                if probe is None:
                    raise
                probe.setdefault("calibration", {})[name] = f"RuntimeError: {e}"
                continue
            scale, zp = calculate_qparams(min_vals=mn, max_vals=mx, quantization_args=qs.weights)
            assert module.weight_scale.shape == scale.shape, (name, module.weight_scale.shape, scale.shape)
            module.weight_scale.data.copy_(scale)
            module.weight_zero_point.data.copy_(zp)
            module.quantization_status = QuantizationStatus.FROZEN
    # llm-compressor's save_pretrained_wrapper: from_pretrained_model -> compress_model(skip_compressed=True)
    # -> save_pretrained(max_shard_size="20GB") -> update_config.
    compressor = ModelCompressor.from_pretrained_model(model)
    compressor.compress_model(model, skip_compressed=True)
    return model, compressor


def ct_group_failure_probe(model_name: str) -> dict:
    """Show what compressed-tensors itself does with in_features=172 at group_size=32."""
    from loguru import logger as loguru_logger

    messages = []
    sink = loguru_logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    result = {}
    try:
        try:
            ct_quantize_model(model_name, "group32", [], result)
            result["compress"] = "succeeded"
        except ValueError as e:
            result["compress"] = f"ValueError: {e}"
    finally:
        loguru_logger.remove(sink)
    result["apply_quantization_config_warnings"] = sorted(set(messages))
    result["note"] = (
        "group_size=32 with targets ['Linear'], ignore ['lm_head'] only: apply_quantization_config warns once "
        "(strategy_cdiv, non-strict) and still attaches a weight_scale of shape [out, ceil(172/32)=6] to each "
        "down_proj; the llm-compressor min/max observer's reshape fails on those modules (calibration); when their "
        "calibration is skipped, ModelCompressor.compress_model raises ValueError for the first of them "
        "(forward_helpers._process_group). No checkpoint can be written this way, so down_proj is listed in ignore "
        "by name (what llm-compressor's error message asks for) and stays a plain fp16 weight."
    )
    return result


def ct_unpack_dequant(st: dict, mod: str, scheme: str):
    """Dequantize one module from the saved tensors: own unpacking and the library's, must agree bitwise."""
    from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32

    packed = st[mod + ".weight_packed"]
    scale = st[mod + ".weight_scale"]
    shape = st[mod + ".weight_shape"]
    out_f, in_f = (int(x) for x in shape.tolist())
    # own: raw bytes of weight_packed are the [out, 4*ceil(in/4)] uint8 matrix of q + 128 (little-endian words)
    raw = packed.contiguous().numpy().view(np.uint8).reshape(out_f, -1)
    q_own = torch.from_numpy((raw[:, :in_f].astype(np.int16) - 128).astype(np.int8))
    pad = raw[:, in_f:]
    assert pad.size == 0 or not pad.any(), "packing padding is not zero"
    q_lib = unpack_from_int32(packed, 8, torch.Size([out_f, in_f]))
    assert torch.equal(q_own, q_lib), mod
    if scheme == "channel":
        s_full = scale.expand(out_f, in_f)
    else:
        gs = CT_SCHEMES[scheme]["group_size"]
        s_full = scale.repeat_interleave(gs, dim=1)
    w_hat = q_own.to(scale.dtype) * s_full  # q.to(fp16) * scale, fp16 product
    return q_own, scale, w_hat


def ct_doc_formula(w: torch.Tensor, scale: torch.Tensor, scheme: str) -> torch.Tensor:
    """quantization.md §2.4 recomputed independently (fp16 ops): round_half_even(clamp(rnd(w/scale)))."""
    if scheme == "channel":
        s = scale
    else:
        s = scale.repeat_interleave(CT_SCHEMES[scheme]["group_size"], dim=1)
    return torch.round(torch.clamp(w / s, -128, 127)).to(torch.int8)


def ct_section(notes: dict) -> None:
    from transformers import AutoModelForCausalLM

    root = OUT / "ct"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    behaviour = {}
    for model_name in MODELS:
        src_tensors = load_source_tensors(model_name)
        src_cfg = json.loads((HERE / model_name / "config.json").read_text())
        prompt_ids = json.loads((HERE / "expected" / model_name / "forward.json").read_text())["input_ids"]
        in_features_bad = sorted(
            {k[: -len(".weight")] for k, v in src_tensors.items()
             if v.ndim == 2 and k.endswith("_proj.weight") and v.shape[1] % 32 != 0}
        )
        probe = ct_group_failure_probe(model_name)
        behaviour[model_name] = {
            "group32_without_extra_ignore": probe,
            "modules_with_in_features_not_divisible_by_32": in_features_bad,
        }
        for scheme in CT_SCHEMES:
            dest = root / f"{model_name}-{scheme}"
            extra_ignore = in_features_bad if scheme == "group32" else []
            model, compressor = ct_quantize_model(model_name, scheme, extra_ignore, [])
            model.save_pretrained(str(dest), max_shard_size="20GB")
            compressor.update_config(str(dest))
            for f in TOKENIZER_FILES:
                shutil.copyfile(HERE / model_name / f, dest / f)
            del model

            # ---- read back what the library wrote
            st = {}
            st_files = sorted(dest.glob("*.safetensors"))
            for f in st_files:
                with safe_open(str(f), framework="pt") as fh:
                    for k in fh.keys():
                        st[k] = fh.get_tensor(k)
            cfg = json.loads((dest / "config.json").read_text())
            qmods = sorted(k[: -len(".weight_packed")] for k in st if k.endswith(".weight_packed"))
            # unquantized tensors must be bit-identical copies
            for k, v in st.items():
                if not re.search(r"\.weight_(packed|scale|shape)$", k):
                    assert torch.equal(v, src_tensors[k]) and v.dtype == src_tensors[k].dtype, k
            for k in src_tensors:
                if k.endswith(".weight") and k[: -len(".weight")] in qmods:
                    assert k not in st, k

            quality = {"tensors": {}}
            acc = ErrAcc()
            dequant = {}
            doc_mismatch = 0
            n_q = 0
            q_min = 127
            for mod in qmods:
                w = src_tensors[mod + ".weight"]
                q, scale, w_hat = ct_unpack_dequant(st, mod, scheme)
                dequant[mod] = w_hat
                doc_mismatch += int((ct_doc_formula(w, scale, scheme) != q).sum())
                n_q += q.numel()
                q_min = min(q_min, int(q.min()))
                m = ErrAcc.metrics(w.numpy(), w_hat.numpy())
                m["bytes_before"] = tensor_bytes(w)
                m["bytes_after"] = sum(tensor_bytes(st[mod + s]) for s in (".weight_packed", ".weight_scale", ".weight_shape"))
                acc.add(m)
                quality["tensors"][mod + ".weight"] = m
            tot = acc.totals()
            tot["bytes_before"] = sum(tensor_bytes(v) for v in src_tensors.values())
            tot["bytes_after"] = sum(tensor_bytes(v) for v in st.values())
            quality["totals"] = tot
            quality["definitions"] = (
                "per tensor: w = original fp16 weight, w_hat = q.to(float16) * weight_scale (fp16 product, scale "
                "broadcast per row / per group of 32), both widened to float64; max_abs_error = max|w - w_hat|; "
                "rel_rms_error = sqrt(mean((w-w_hat)^2)) / sqrt(mean(w^2)); snr_db = 10*log10(sum(w^2)/sum((w-w_hat)^2)) "
                "('inf' if exact); bytes_before = bytes of the fp16 weight; bytes_after = bytes of weight_packed + "
                "weight_scale + weight_shape. totals: max over tensors; rel_rms_error and snr_db over all quantized "
                "elements together; bytes_before = all tensor data bytes of the source checkpoint; bytes_after = all "
                "tensor data bytes of the quantized model.safetensors (headers not counted)."
            )
            write_json(dest / "expected" / "quality.json", quality)

            # ---- transformers load-back and logits
            load = {
                "quantized_modules": qmods,
                "ignore": cfg["quantization_config"]["ignore"],
                "int8_min_seen": q_min,
                "doc_formula_mismatches": doc_mismatch,
                "int8_values": n_q,
            }
            model_q, info = AutoModelForCausalLM.from_pretrained(str(dest), output_loading_info=True)
            model_q.eval()
            load["loading_info"] = {k: sorted(map(str, v)) for k, v in info.items() if k != "error_msgs"}
            load["loaded_dtype"] = str(next(model_q.parameters()).dtype).replace("torch.", "")
            ref = AutoModelForCausalLM.from_pretrained(str(HERE / model_name), dtype=torch.float16)
            ref.eval()
            orig = copy.deepcopy(ref)
            with torch.no_grad():
                for mod, w_hat in dequant.items():
                    ref.get_submodule(mod).weight.copy_(w_hat)
                ids = torch.tensor([prompt_ids])
                lq16 = model_q(ids).logits  # first forward: the library's hook decompresses the modules
                lr16 = ref(ids).logits
                # the decompressed weights themselves
                w_equal = all(
                    torch.equal(model_q.get_submodule(mod).weight.data, dequant[mod]) for mod in qmods
                )
                load["decompressed_weights_bitwise_equal_q_times_scale"] = w_equal
                load["logits_fp16_compute"] = {
                    "bitwise_equal": bool(torch.equal(lq16, lr16)),
                    "max_abs_diff": float((lq16.float() - lr16.float()).abs().max()),
                }
                # transformers refuses .float() on a quantized model: copy its (decompressed) parameters into
                # a plain LlamaForCausalLM and compute in fp32 there
                qf = copy.deepcopy(orig)
                q_params = dict(model_q.named_parameters())
                for pname, prm in qf.named_parameters():
                    prm.copy_(q_params[pname])
                qf.float()
                ref.float()
                orig.float()
                lq = qf(ids).logits
                lr = ref(ids).logits
                lo = orig(ids).logits
                load["logits_fp32_compute"] = {
                    "bitwise_equal": bool(torch.equal(lq, lr)),
                    "max_abs_diff": float((lq - lr).abs().max()),
                }
                nll = lambda lg: float(torch.nn.functional.cross_entropy(lg[0, :-1], ids[0, 1:]))  # noqa: E731
                load["vs_unquantized_source_fp32"] = {
                    "max_abs_logit_diff": float((lq - lo).abs().max()),
                    "argmax_agree": int((lq.argmax(-1) == lo.argmax(-1)).sum()),
                    "positions": len(prompt_ids),
                    "mean_nll_quantized": nll(lq),
                    "mean_nll_source": nll(lo),
                }
            load["note"] = (
                "AutoModelForCausalLM.from_pretrained(folder) with compressed-tensors installed vs the fp16 source "
                "model with each quantized Linear's weight replaced by q.to(float16)*scale; prompt = "
                "expected/<model>/forward.json input_ids. '_fp32_compute': the loaded model's decompressed parameters copied "
                "into a plain LlamaForCausalLM (transformers refuses .float() on a quantized model) and both run in fp32."
            )
            assert w_equal and load["logits_fp16_compute"]["bitwise_equal"], (model_name, scheme, load)
            write_json(dest / "expected" / "load.json", load)
            del model_q, ref, orig
            notes.setdefault("ct", {})[f"{model_name}-{scheme}"] = {
                "files": sorted(p.name for p in dest.iterdir() if p.is_file()),
                "quantized_modules": len(qmods),
                "ignore": cfg["quantization_config"]["ignore"],
            }
            assert src_cfg["tie_word_embeddings"] == cfg["tie_word_embeddings"]
    write_json(root / "library_behaviour.json", behaviour)


# ----------------------------------------------------------------------------------------------------------
# B. GGUF via llama.cpp's convert_hf_to_gguf.py


def get_llama_cpp(sdist: Path | None, work: Path) -> Path:
    if sdist is None:
        dl = work / "dl"
        dl.mkdir()
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python",
             f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(dl)],
            check=True, stdout=subprocess.DEVNULL,
        )
        sdist = dl / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    digest = sha256(sdist.read_bytes())
    if digest != LLAMA_CPP_PYTHON_SDIST_SHA256:
        raise SystemExit(f"unexpected sdist sha256 {digest}")
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if "/vendor/llama.cpp/" in m.name and "/vendor/llama.cpp/vendor/" not in m.name]
        tf.extractall(work / "src", members=members, filter="data")
    root = work / "src" / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    assert (root / "convert_hf_to_gguf.py").is_file()
    return root


def vendored_gguf_version(lcpp: Path) -> str:
    m = re.search(r'^version = "([^"]+)"', (lcpp / "gguf-py" / "pyproject.toml").read_text(), re.M)
    return m.group(1)


def ggml_version(lcpp: Path) -> str:
    txt = (lcpp / "ggml" / "CMakeLists.txt").read_text()
    parts = [re.search(rf"set\(GGML_VERSION_{p} (\d+)\)", txt).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def run_convert(lcpp: Path, model: str, outtype: str, dest: Path) -> list:
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)  # use the vendored gguf-py, as the script does by default
    r = subprocess.run(
        [sys.executable, str(lcpp / "convert_hf_to_gguf.py"), str(HERE / model), "--outtype", outtype,
         "--outfile", str(dest)],
        cwd=str(lcpp), env=env, capture_output=True, text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"convert_hf_to_gguf.py failed for {model} {outtype}:\n{r.stderr[-4000:]}")
    # keep the informative log lines (no progress bars / timings)
    # keep its warnings (F16 fallbacks, RoPE type, tokenizer separator); progress bars and timings vary
    return [ln for ln in r.stderr.splitlines() if ln.startswith(("WARNING:", "ERROR:"))]


def permute_qk(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute (HF half-split rotary rows -> Meta/GGML interleaved)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def gguf_section(lcpp: Path, work: Path, exe: Path, notes: dict) -> None:
    root = OUT / "gguf"
    for p in root.glob("*"):
        if p.is_file():
            p.unlink()
    root.mkdir(parents=True, exist_ok=True)
    logs = {}
    for model in MODELS:
        cfg = json.loads((HERE / model / "config.json").read_text())
        n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        src = load_source_tensors(model)
        name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg["num_hidden_layers"])
        hf_of = {}
        for k in src:
            g = name_map.get_name(k, try_suffixes=(".weight", ".bias"))
            assert g is not None, k
            hf_of[g] = k
        for outtype in GGUF_TYPES:
            keep = outtype in GGUF_KEEP[model]
            dest = (root if keep else work) / f"{model}-{outtype}.gguf"
            logs[f"{model}-{outtype}"] = run_convert(lcpp, model, outtype, dest)
            desc = describe_gguf(dest)
            desc["file"]["committed"] = keep
            assert ggml_check(exe, dest) == {"metadata": "accepted", "load": "accepted"}, dest
            write_json(root / f"{model}-{outtype}.json", desc)

            # ---- cross-checks against the source weights (independent of the converter)
            r = gguf.GGUFReader(str(dest))
            acc = ErrAcc()
            quality = {"tensors": {}}
            for t in r.tensors:
                hf = hf_of[t.name]
                w16 = src[hf].numpy()
                w = w16
                if hf.endswith("q_proj.weight"):
                    w = permute_qk(w16, n_head, n_head)
                elif hf.endswith("k_proj.weight"):
                    w = permute_qk(w16, n_head, n_kv)
                w32 = w.astype(np.float32)
                tt = t.tensor_type
                if tt == gguf.GGMLQuantizationType.F32:
                    assert np.array_equal(t.data.reshape(w.shape), w32), t.name
                elif tt == gguf.GGMLQuantizationType.F16:
                    assert t.data.reshape(w.shape).tobytes() == w.astype(np.float16).tobytes(), t.name
                elif tt == gguf.GGMLQuantizationType.BF16:
                    ref = gguf.quants.quantize(w32, tt)
                    assert bytes(t.data) == ref.tobytes(), t.name
                elif tt == gguf.GGMLQuantizationType.Q8_0:
                    ref = gguf.quants.quantize(w32, tt)
                    assert bytes(t.data) == ref.tobytes(), t.name
                    wh = gguf.quants.dequantize(t.data, tt).reshape(w.shape)
                    m = ErrAcc.metrics(w.astype(np.float64), wh)
                    m["bytes_before"] = int(w16.nbytes)
                    m["bytes_after"] = int(t.n_bytes)
                    m["gguf_name"] = t.name
                    acc.add(m)
                    quality["tensors"][hf] = m
                else:
                    raise AssertionError(tt)
            if outtype == "q8_0":
                tot = acc.totals()
                tot["bytes_before"] = sum(tensor_bytes(v) for v in src.values())
                tot["bytes_after"] = sum(int(t.n_bytes) for t in r.tensors)
                quality["totals"] = tot
                quality["definitions"] = (
                    "only Q8_0 tensors, keyed by HF name (gguf_name = GGUF name). w = original fp16 weight (q/k rows "
                    "un-permuted as the converter does, which does not change the metrics), w_hat = gguf-py "
                    "gguf.quants.dequantize of the stored blocks (fp16(d) * q in float32), both widened to float64; "
                    "formulas as in quant/ct/*/expected/quality.json. bytes_after = Q8_0 bytes (34 per 32 weights). "
                    "totals: bytes_before = all tensor data bytes of the fp16 source; bytes_after = all tensor data "
                    "bytes of the GGUF (incl. F32 norms and F16 fallbacks; padding not counted)."
                )
                write_json(root / f"{model}-q8_0.quality.json", quality)
    notes["convert_log"] = logs


# ----------------------------------------------------------------------------------------------------------
# C. Malformed GGUF files

GGML_DRIVER = r"""
// gguf_init_from_file driver: no_alloc=true (metadata only, what llama.cpp's loader does) and
// no_alloc=false (also reads the data blob into memory). Prints ggml's log lines, then RESULT.
#include "ggml.h"
#include "gguf.h"
#include <cstdio>
static void log_cb(enum ggml_log_level level, const char * text, void * ud) { (void) level; (void) ud; fputs(text, stdout); }
int main(int argc, char ** argv) {
    if (argc < 2) return 2;
    ggml_log_set(log_cb, nullptr);
    for (int mode = 0; mode < 2; ++mode) {
        struct ggml_context * meta = nullptr;
        struct gguf_init_params p = { /*no_alloc*/ mode == 0, /*ctx*/ &meta };
        printf("== %s\n", mode == 0 ? "no_alloc" : "alloc");
        struct gguf_context * ctx = gguf_init_from_file(argv[1], p);
        if (!ctx) { printf("RESULT failed\n"); fflush(stdout); continue; }
        printf("RESULT ok n_kv=%lld n_tensors=%lld alignment=%zu data_offset=%zu\n",
            (long long) gguf_get_n_kv(ctx), (long long) gguf_get_n_tensors(ctx), gguf_get_alignment(ctx),
            gguf_get_data_offset(ctx));
        fflush(stdout);
        gguf_free(ctx);
        if (meta) ggml_free(meta);
    }
    return 0;
}
"""

GGML_SOURCES = ["ggml.c", "ggml.cpp", "ggml-alloc.c", "ggml-backend.cpp", "ggml-backend-meta.cpp",
                "ggml-quants.c", "ggml-threading.cpp", "gguf.cpp"]


def build_ggml_driver(lcpp: Path, work: Path) -> Path:
    g = lcpp / "ggml"
    b = work / "ggml-build"
    (b / "gen").mkdir(parents=True)
    (b / "gen" / "ggml-version.h").write_text(
        f'#pragma once\n#define GGML_VERSION "{ggml_version(lcpp)}"\n#define GGML_COMMIT "{LLAMA_CPP_COMMIT}"\n')
    inc = ["-I", str(b / "gen"), "-I", str(g / "include"), "-I", str(g / "src")]
    objs = []
    for f in GGML_SOURCES:
        o = b / (f + ".o")
        if f.endswith(".c"):
            cmd = ["gcc", "-O1", "-std=gnu11", "-c", *inc, str(g / "src" / f), "-o", str(o)]
        else:
            cmd = ["g++", "-O1", "-std=c++17", "-c", *inc, str(g / "src" / f), "-o", str(o)]
        subprocess.run(cmd, check=True, capture_output=True)
        objs.append(str(o))
    (b / "driver.cpp").write_text(GGML_DRIVER)
    exe = b / "gguf_check"
    subprocess.run(["g++", "-O1", "-std=c++17", *inc, str(b / "driver.cpp"), *objs, "-o", str(exe), "-lm", "-lpthread"],
                   check=True, capture_output=True)
    return exe


def ggml_check(exe: Path, path: Path) -> dict:
    r = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60)
    out = {}
    if r.returncode != 0:
        return {"metadata": f"driver exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()}", "load": None}
    for block in r.stdout.split("== ")[1:]:
        mode, _, body = block.partition("\n")
        lines = [ln for ln in body.strip().splitlines()]
        res = lines[-1]
        errs = [ln.replace(str(path), "<file>") for ln in lines[:-1]]
        out["metadata" if mode == "no_alloc" else "load"] = "accepted" if res.startswith("RESULT ok") else "\n".join(errs)
    return out


PY_READER_SNIPPET = r"""
import sys, resource
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
if sys.argv[2] != "-":
    sys.path.insert(0, sys.argv[2])
import gguf
try:
    r = gguf.GGUFReader(sys.argv[1])
    for t in r.tensors:
        bytes(t.data)
    print("accepted")
except BaseException as e:
    print(f"{type(e).__name__}: {e}")
"""


PY_READER_RUNAWAY = ("no result: still parsing after 10 s or out of its 2 GiB address-space limit, whichever came "
                     "first (it walks the claimed elements one by one, allocating as it goes)")


def py_reader_check(path: Path, gguf_py: str) -> str:
    """GGUFReader in a subprocess (10 s, 2 GiB address space): a runaway parse is reported as one fixed text."""
    try:
        r = subprocess.run([sys.executable, "-c", PY_READER_SNIPPET, str(path), gguf_py],
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return PY_READER_RUNAWAY
    out = r.stdout.strip().splitlines()
    if out and out[-1].startswith("MemoryError"):
        return PY_READER_RUNAWAY
    if r.returncode != 0 or not out:
        return f"process died (exit {r.returncode}): " + " | ".join(r.stderr.strip().splitlines()[-1:])
    return out[-1].replace(str(path), "<file>")


# GGUF value type ids / ggml type ids
U8, I8, U16, I16, U32, I32, F32V, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q8_0 = 0, 1, 8


def enc_str(s) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv_u32(key, v):
    return (key, U32, struct.pack("<I", v))


def kv_str(key, s):
    return (key, STR, enc_str(s))


def kv_bool(key, v):
    return (key, BOOL, bytes([1 if v else 0]))


def kv_arr_str(key, items):
    return (key, ARR, struct.pack("<IQ", STR, len(items)) + b"".join(enc_str(x) for x in items))


def kv_arr_f32(key, items):
    return (key, ARR, struct.pack("<IQ", F32V, len(items)) + struct.pack(f"<{len(items)}f", *items))


def build_gguf(kvs, infos, blobs, alignment=32, magic=b"GGUF", version=3, n_tensors=None, n_kv=None) -> bytes:
    """Raw GGUF writer for the malformed cases. infos: (name, ne list, ggml type, offset); blobs: (offset, bytes)."""
    out = bytearray(magic + struct.pack("<I", version))
    out += struct.pack("<QQ", len(infos) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    for key, vtype, payload in kvs:
        out += enc_str(key) + struct.pack("<I", vtype) + payload
    for name, ne, ttype, off in infos:
        out += enc_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", ttype, off)
    out += b"\0" * ((-len(out)) % alignment)
    data = bytearray()
    for off, b in blobs:
        if len(data) < off:
            data += b"\0" * (off - len(data))
        data[off: off + len(b)] = b
    data += b"\0" * ((-len(data)) % alignment)
    return bytes(out + data)


def malformed_section(lcpp: Path, exe: Path, notes: dict) -> None:
    root = OUT / "gguf" / "malformed"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    # --- base tensors (deterministic values, exactly representable)
    a = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) * 0.5          # F32 torch [2,3] -> ne [3,2]
    b = np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16)               # F16 [4]
    c = ((np.arange(64, dtype=np.float32) % 17) - 8.0).reshape(2, 32) / 4  # Q8_0 torch [2,32] -> ne [32,2]
    c_q = gguf.quants.quantize(c, gguf.GGMLQuantizationType.Q8_0)

    strings = ["a", "bc", "déf"]
    floats = [1.0, -2.5, 0.125]

    def writer_file(path: Path, alignment: int | None):
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_name("malformed-base")
        if alignment is not None:
            w.add_custom_alignment(alignment)
        w.add_uint32("test.uint32", 42)
        w.add_array("test.strings", strings)
        w.add_array("test.floats", floats)
        w.add_bool("test.bool", True)
        w.add_tensor("a", a)
        w.add_tensor("b", b)
        w.add_tensor("c", c_q, raw_shape=c_q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    def spec(alignment=None):
        kvs = [kv_str("general.architecture", "llama"), kv_str("general.name", "malformed-base")]
        if alignment is not None:
            kvs.append(kv_u32("general.alignment", alignment))
        kvs += [kv_u32("test.uint32", 42), kv_arr_str("test.strings", strings), kv_arr_f32("test.floats", floats),
                kv_bool("test.bool", True)]
        al = alignment or 32
        pad = lambda n: n + (-n) % al  # noqa: E731
        oa = 0
        ob = pad(oa + a.nbytes)
        oc = pad(ob + b.nbytes)
        infos = [["a", [3, 2], T_F32, oa], ["b", [4], T_F16, ob], ["c", [32, 2], T_Q8_0, oc]]
        blobs = [(oa, a.tobytes()), (ob, b.tobytes()), (oc, c_q.tobytes())]
        return {"kvs": kvs, "infos": infos, "blobs": blobs, "alignment": al}

    def build(s, **kw):
        return build_gguf(s["kvs"], s["infos"], s["blobs"], alignment=s["alignment"], **kw)

    # valid files, written by GGUFWriter; the raw builder must reproduce them byte for byte
    writer_file(root / "valid.gguf", None)
    writer_file(root / "valid_alignment_64.gguf", 64)
    valid = (root / "valid.gguf").read_bytes()
    valid64 = (root / "valid_alignment_64.gguf").read_bytes()
    assert build(spec()) == valid, "raw builder differs from GGUFWriter"
    assert build(spec(64), ) == valid64, "raw builder differs from GGUFWriter (alignment 64)"

    # offsets inside valid.gguf for byte patches
    def kv_offsets(s):
        pos = 24
        offs = {}
        for key, vtype, payload in s["kvs"]:
            kstart = pos
            pos += 8 + len(key.encode()) + 4
            offs[key] = (kstart, pos, pos + len(payload))  # key start, value start, value end
            pos += len(payload)
        tinfo = {}
        for name, ne, ttype, off in s["infos"]:
            start = pos
            pos += 8 + len(name) + 4 + 8 * len(ne) + 4 + 8
            tinfo[name] = (start, pos)
        return offs, tinfo, pos

    kvo, tio, end_infos = kv_offsets(spec())
    data_off = end_infos + (-end_infos) % 32
    s0 = spec()

    def patched(base: bytes, at: int, fmt: str, value) -> bytes:
        bb = bytearray(base)
        struct.pack_into(fmt, bb, at, value)
        return bytes(bb)

    def variant(mutate):
        s = copy.deepcopy(s0)
        mutate(s)
        return s

    cases = {}

    def case(name, data: bytes, error, description, tensor=None, key=None):
        (root / f"{name}.gguf").write_bytes(data)
        cases[name] = {"error": error, "tensor": tensor, "key": key, "description": description}

    case("bad_magic", b"tjgg" + valid[4:], "gguf.badMagic",
         "magic 'tjgg' (the legacy GGJT magic as stored on disk) instead of 'GGUF'")
    case("version_1", patched(valid, 4, "<I", 1), "gguf.unsupportedVersion", "version field 1 (GGUF v1)")
    case("version_4", patched(valid, 4, "<I", 4), "gguf.unsupportedVersion", "version field 4")
    case("truncated_header", valid[:20], "gguf.truncated",
         "20 bytes: magic, version, tensor count and half of the KV count")
    cut = kvo["test.strings"][1] + 12 + 9 + 8 + 1  # type + count, element "a", then 1 byte into "bc"
    case("truncated_kv", valid[:cut], "gguf.truncated",
         f"cut at byte {cut}, inside the value of 'test.strings' (array of strings)", key="test.strings")
    cut = tio["b"][0] + 10
    case("truncated_tensor_info", valid[:cut], "gguf.truncated",
         f"cut at byte {cut}, inside the tensor info of 'b' (after its name and 1 byte of n_dims)")
    oc = s0["infos"][2][3]
    cut = data_off + oc + 40
    case("truncated_data", valid[:cut], "gguf.tensorOutOfBounds",
         f"cut at byte {cut}, 40 bytes into the 68 data bytes of the Q8_0 tensor 'c' (the last tensor); header intact",
         tensor="c")
    case("tensor_count_2_62", patched(valid, 8, "<Q", 1 << 62), "gguf.tooManyTensors", "tensor_count = 2^62")
    case("kv_count_2_62", patched(valid, 16, "<Q", 1 << 62), "gguf.tooManyKeys", "metadata_kv_count = 2^62")
    case("string_len_2_40", patched(valid, kvo["general.name"][1], "<Q", 1 << 40), "gguf.truncated",
         "the STRING value of 'general.name' has length 2^40 (file is a few hundred bytes)", key="general.name")
    case("value_type_99", patched(valid, kvo["test.uint32"][1] - 4, "<I", 99), "gguf.invalidValueType",
         "value type of 'test.uint32' is 99", key="test.uint32")
    case("array_2_60", patched(valid, kvo["test.floats"][1] + 4, "<Q", 1 << 60), "gguf.truncated",
         "the FLOAT32 array 'test.floats' claims 2^60 elements", key="test.floats")
    case("n_dims_5", build(variant(lambda s: s["infos"][0].__setitem__(1, [3, 2, 1, 1, 1]))), "gguf.tooManyDimensions",
         "tensor 'a' has n_dims = 5 (dims [3, 2, 1, 1, 1]; everything else unchanged)", tensor="a")
    case("dim_zero", build(variant(lambda s: s["infos"][2].__setitem__(1, [32, 0]))), "gguf.invalidDimension",
         "tensor 'c' (Q8_0, the last tensor) has ne = [32, 0] (offsets unchanged)", tensor="c")
    case("dims_overflow", build(variant(lambda s: s["infos"][2].__setitem__(1, [32, 1 << 32, 1 << 32]))),
         "gguf.invalidDimension", "tensor 'c' has ne = [32, 2^32, 2^32]: element count 2^69 overflows int64",
         tensor="c")
    case("dims_nbytes_overflow", build(variant(lambda s: s["infos"][2].__setitem__(1, [1 << 62]) or
                                               s["infos"][2].__setitem__(2, T_F32))),
         "gguf.invalidDimension",
         "extra case: tensor 'c' retyped F32 with ne = [2^62]: the element count fits int64 but its byte size "
         "(2^64) does not (suggested code)", tensor="c")
    case("ggml_type_99", build(variant(lambda s: s["infos"][1].__setitem__(2, 99))), "gguf.unknownTensorType",
         "tensor 'b' has ggml type 99", tensor="b")
    case("q8_0_ne0_not_multiple_of_32", build(variant(lambda s: s["infos"][2].__setitem__(1, [16, 4]))),
         "gguf.invalidDimension",
         "Q8_0 tensor 'c' has ne = [16, 4] (same 64 elements, 68 bytes, but rows of 16)", tensor="c")
    case("misaligned_offset", build(variant(lambda s: s["infos"][2].__setitem__(3, 48))), "gguf.misalignedOffset",
         "tensor 'c' offset 48 (alignment 32); 48..116 overlaps nothing and lies inside the data section",
         tensor="c")
    case("duplicate_tensor", build(variant(lambda s: s["infos"][1].__setitem__(0, "a"))), "gguf.duplicateTensor",
         "the second tensor ('b') is renamed 'a'", tensor="a")
    case("duplicate_key", build(variant(lambda s: s["kvs"].append(kv_u32("test.uint32", 7)))), "gguf.duplicateKey",
         "'test.uint32' appears twice (42, then 7 as the last KV); kv_count 8", key="test.uint32")
    s64 = spec(64)
    kvo64, _, _ = kv_offsets(s64)
    case("alignment_0", patched(valid64, kvo64["general.alignment"][1], "<I", 0), "gguf.invalidAlignment",
         "valid_alignment_64 with general.alignment = 0 (UINT32)", key="general.alignment")
    case("alignment_3", patched(valid64, kvo64["general.alignment"][1], "<I", 3), "gguf.invalidAlignment",
         "valid_alignment_64 with general.alignment = 3 (UINT32)", key="general.alignment")
    s_str = copy.deepcopy(s64)
    s_str["kvs"][2] = kv_str("general.alignment", "64")
    case("alignment_string", build(s_str), "gguf.invalidAlignment",
         "general.alignment stored as the STRING \"64\" (layout as valid_alignment_64)", key="general.alignment")
    case("overlapping_tensors", build(variant(lambda s: s["infos"][2].__setitem__(3, 32))), "gguf.overlappingTensors",
         "tensor 'c' offset 32 = offset of 'b' (aligned, in bounds): c's 68 bytes overlap b's 8", tensor="c")
    # extra: the final tensor's padding missing
    case("valid_no_final_padding", valid[: data_off + oc + 68], None,
         "extra case: valid.gguf without the 28 zero bytes that pad the last tensor to the alignment; every "
         "tensor lies inside the file (suggested: accepted)")

    vendored = str(lcpp / "gguf-py")
    results = {}
    files = ["valid", "valid_alignment_64"] + list(cases)
    for name in files:
        p = root / f"{name}.gguf"
        entry = cases.get(name, {"error": None, "tensor": None, "key": None,
                                 "description": "written by gguf-py GGUFWriter (PyPI gguf 0.19.0)" +
                                 (" with add_custom_alignment(64)" if name.endswith("64") else "")})
        entry = dict(entry)
        entry["size"] = p.stat().st_size
        entry["gguf_py"] = py_reader_check(p, "-")
        entry["gguf_py_vendored"] = py_reader_check(p, vendored)
        entry["ggml"] = ggml_check(exe, p)
        if entry["error"] is None:
            entry["manifest"] = describe_gguf(p)
        results[name] = entry
    write_json(root / "expected.json", {
        "note": ("error = ckpt's error case (null = must load); tensor / key = the offending tensor or key; "
                 "gguf_py = what GGUFReader(path) (+ reading every tensor's data) says with PyPI gguf 0.19.0, "
                 "'accepted' or '<ExceptionType>: <message>'; gguf_py_vendored = the same with the gguf-py vendored "
                 f"in llama.cpp {LLAMA_CPP_COMMIT} (stricter); ggml = ggml's gguf_init_from_file (ggml "
                 f"{ggml_version(lcpp)}, llama.cpp {LLAMA_CPP_COMMIT}): 'metadata' with no_alloc=true (as llama.cpp "
                 "loads models), 'load' with no_alloc=false (reads the data blob too); its log lines or 'accepted'."),
        "files": results,
    })


# ----------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", type=Path, default=None,
                    help=f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz (default: pip download it)")
    ap.add_argument("--only", choices=["ct", "gguf", "malformed"], action="append")
    args = ap.parse_args()
    sections = args.only or ["ct", "gguf", "malformed"]
    OUT.mkdir(exist_ok=True)
    notes: dict = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-quant-") as tmp:
        work = Path(tmp)
        lcpp = exe = None
        if "gguf" in sections or "malformed" in sections:
            lcpp = get_llama_cpp(args.sdist, work)
            exe = build_ggml_driver(lcpp, work)
        if "ct" in sections:
            ct_section(notes)
        if "gguf" in sections:
            gguf_section(lcpp, work, exe, notes)
        if "malformed" in sections:
            malformed_section(lcpp, exe, notes)
        if lcpp is not None:
            gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
            versions = {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "safetensors": safetensors.__version__,
                "sentencepiece": sentencepiece.__version__,
                "compressed-tensors": compressed_tensors.__version__,
                "gguf (PyPI; reader, dequantize, malformed base files)": _dist_version("gguf"),
                "numpy": np.__version__,
                "loguru": _dist_version("loguru"),
                "llama-cpp-python sdist": {
                    "version": LLAMA_CPP_PYTHON_VERSION,
                    "sha256": LLAMA_CPP_PYTHON_SDIST_SHA256,
                    "llama.cpp commit": LLAMA_CPP_COMMIT,
                    "vendored gguf-py version": vendored_gguf_version(lcpp),
                    "ggml version": ggml_version(lcpp),
                },
                "gcc (ggml reader driver)": gcc,
            }
            if "gguf" in sections:
                versions["convert_hf_to_gguf warnings"] = notes.get("convert_log", {})
            if set(sections) == {"ct", "gguf", "malformed"}:
                write_json(OUT / "VERSIONS.json", versions)


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
