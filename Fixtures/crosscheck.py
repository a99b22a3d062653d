#!/usr/bin/env python3
"""make crosscheck: the reference tools re-read what ckpt writes *now*.

Developers only (needs the pinned environment: make fixtures-env). For each output ckpt writes from the bundled
fixtures, the real loaders must accept it and see exactly the expected values:
  * safetensors: safe_open accepts every shard, metadata is {"format": "pt"}, and save_file of the loaded tensors
    reproduces ckpt's bytes (the writer is byte-identical to the library's);
  * torch: every tensor equals the source tensor cast with torch's own .to(dtype) (round to nearest even), bit for bit;
  * transformers: LlamaForCausalLM.from_pretrained loads the folder with no missing or unexpected keys, and its logits
    equal those of the source model cast the same way.
Model families (issue 14; every folder of Fixtures/families/): gguf-py's GGUFReader sees in ckpt's GGUF (f32, f16,
bf16, q8_0) every KV and tensor of convert_hf_to_gguf.py's dump (families/gguf/<model>-<type>.json) and its file
sha256; transformers (AutoModelForCausalLM, fp32, eager) loads ckpt's safetensors f16 and .bin f32 folders cleanly,
every tensor equals torch's .to(dtype) of the source and the logits on the fixture prompts equal the source's cast
the same way to 1e-5 (.bin f32: also the expected fixture logits, to 1e-4); ckpt's int8-channel folders load and
run through compressed-tensors (Qwen2's biases kept bit-identical); Gemma and Phi-3 are refused for GGUF (exit 1, nothing
written) and converted to safetensors bit-identically, loadable by their transformers classes.
Prints one line per check and a closing "N passed, M failed"; exits non-zero on any failure.
"""
import argparse
import contextlib
import io
import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars of transformers / compressed-tensors: one line per check

import shutil
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}{(': ' + detail) if detail and not ok else ''}")


def shards_of(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))


def load_folder(folder):
    tensors = {}
    for f in shards_of(folder):
        with safe_open(os.path.join(folder, f), framework="pt") as sf:
            for k in sf.keys():
                tensors[k] = sf.get_tensor(k)
    return tensors


def crosscheck_bin(label, src, out, dtype):
    """Every .bin ckpt writes loads with torch.load(weights_only=True) to the expected tensors."""
    source = load_folder(src)
    written = {}
    for f in sorted(x for x in os.listdir(out) if x.endswith(".bin")):
        try:
            sd = torch.load(os.path.join(out, f), weights_only=True)
            check(f"{label}: torch.load(weights_only=True) accepts {f}", True)
            written.update(sd)
        except Exception as e:  # noqa: BLE001
            check(f"{label}: torch.load(weights_only=True) accepts {f}", False, repr(e))
    check(f"{label}: same tensor names", sorted(source) == sorted(written))
    bad = [k for k in source if k in written and not (written[k].dtype == dtype and torch.equal(
        source[k].to(dtype).view(torch.uint8), written[k].view(torch.uint8)))]
    check(f"{label}: every tensor bit-identical to torch .to({dtype})", not bad, f"differ: {bad[:5]}")
    try:
        model, info = LlamaForCausalLM.from_pretrained(out, dtype=dtype, output_loading_info=True)
        ok = not info.get("missing_keys") and not info.get("unexpected_keys")
        check(f"{label}: transformers loads the .bin folder with no missing/unexpected keys", ok, str(info))
    except Exception as e:  # noqa: BLE001
        check(f"{label}: transformers loads the .bin folder", False, repr(e))


def crosscheck_meta(label, meta_dir, out, hf_ref):
    """A Meta → HF conversion loads in transformers and computes the reference model's logits."""
    try:
        model = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32)
        ref = LlamaForCausalLM.from_pretrained(hf_ref, dtype=torch.float32)
        ids = torch.tensor([[1, 15, 27, 300, 42, 7, 99]])
        with torch.no_grad():
            a, b = model(ids).logits, ref(ids).logits
        check(f"{label}: transformers logits equal the HF reference model's", torch.equal(a, b),
              f"max |d| {(a - b).abs().max().item()}")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: transformers loads the converted folder", False, repr(e))


def crosscheck_output(label, src, out, dtype):
    # safetensors: every shard opens, carries format=pt, and the library re-serialises it to the same bytes.
    for f in shards_of(out):
        path = os.path.join(out, f)
        try:
            with safe_open(path, framework="pt") as sf:
                meta = sf.metadata()
                tensors = {k: sf.get_tensor(k) for k in sf.keys()}
            check(f"{label}: safetensors opens {f}", meta == {"format": "pt"}, f"metadata {meta}")
            with tempfile.TemporaryDirectory() as tmp:
                again = os.path.join(tmp, f)
                save_file(tensors, again, metadata={"format": "pt"})
                check(f"{label}: safetensors save_file reproduces {f} byte for byte",
                      open(again, "rb").read() == open(path, "rb").read())
        except Exception as e:  # noqa: BLE001 - report any loader failure as a failed check
            check(f"{label}: safetensors opens {f}", False, repr(e))

    # torch: values equal the source cast by torch itself.
    source = load_folder(src)
    written = load_folder(out)
    check(f"{label}: same tensor names", sorted(source) == sorted(written))
    bad = [k for k in source if k in written and not torch.equal(
        source[k].to(dtype).view(torch.uint8) if source[k].dtype.is_floating_point else source[k].view(torch.uint8),
        written[k].view(torch.uint8))]
    check(f"{label}: every tensor bit-identical to torch .to({dtype})", not bad, f"differ: {bad[:5]}")

    # transformers: loads cleanly, logits equal the source model cast the same way.
    try:
        model, info = LlamaForCausalLM.from_pretrained(out, dtype=dtype, output_loading_info=True)
        missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
        check(f"{label}: transformers loads with no missing/unexpected keys", not missing and not unexpected,
              f"missing {missing} unexpected {unexpected}")
        # Loading with dtype= casts the weights as ckpt did (a model-wide .to() would also cast the rotary buffers).
        ref = LlamaForCausalLM.from_pretrained(src, dtype=dtype)
        ids = torch.tensor([[1, 15, 27, 300, 42, 7, 99]])
        with torch.no_grad():
            a = model(ids).logits
            b = ref(ids).logits
        check(f"{label}: transformers logits equal the source model's", torch.equal(a, b),
              f"max |d| {(a - b).abs().max().item()}")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: transformers loads the folder", False, repr(e))


def crosscheck_lora(ckpt, out_root):
    """merge-lora: transformers loads ckpt's merged folder (an f32 merge of the f32 base) and its logits equal those of
    the unmerged PeftModel (base + adapter as peft computes it at run time) within 1e-4."""
    from peft import PeftModel

    base = os.path.join(HERE, "lora", "base-f32")
    ids = torch.tensor([[1, 306, 4658, 278, 6593, 310, 2834, 338, 29871, 13, 450]]) % 1000
    for case in ["linear-f32", "dora-f32", "rslora-f32", "lora-bias-f32", "r256-f32"]:
        adapter = os.path.join(HERE, "lora", "adapters", case)
        if not os.path.isdir(adapter):
            check(f"merge-lora {case}: fixture present", False, adapter)
            continue
        out = os.path.join(out_root, f"lora-{case}")
        shutil.rmtree(out, ignore_errors=True)
        r = subprocess.run([ckpt, "merge-lora", "--base", base, "--lora", adapter, "--target", out, "--dtype", "f32"],
                           capture_output=True, text=True)
        check(f"merge-lora {case}: ckpt exits 0", r.returncode == 0, r.stderr.strip())
        if r.returncode != 0:
            continue
        try:
            merged = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
            ref = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
            with torch.no_grad():
                a = merged(ids).logits
                b = ref(ids).logits
            d = (a - b).abs().max().item()
            check(f"merge-lora {case}: transformers' logits of the merged folder = the unmerged PeftModel's (max |Δ| {d:.1e} ≤ 1e-4)", d <= 1e-4, f"{d}")
        except Exception as e:  # noqa: BLE001
            check(f"merge-lora {case}: transformers and peft load it", False, repr(e))


# ---------------------------------------------------------------------------------------------------------------
# Model families (issue 14): LLaMA-3/3.1/3.2, Mistral, Qwen2/2.5 — and the refused Gemma / Phi-3 folders.

FAMILIES_DIR = os.path.join(HERE, "families")
FAMILY_MODELS = ["llama3", "llama31", "llama32-tied", "llama31-tf5", "mistral-v01", "mistral-v03", "mistral-swa8",
                 "mistral-headdim", "qwen2", "qwen25-tied"]
FAMILY_REFUSED = {"gemma": "GemmaForCausalLM", "phi3": "Phi3ForCausalLM"}
GGUF_TYPES = ["f32", "f16", "bf16", "q8_0"]


def run_ckpt(argv):
    return subprocess.run(argv, capture_output=True, text=True)


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def short(x, n=300):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "…"


from gguf_dump import describe_gguf  # noqa: E402  (the dump the converter's records were written with)


def first_list_difference(expected, got, keyname):
    """'' when equal, else where the two lists of dicts first differ (by position, then by key name)."""
    if expected == got:
        return ""
    e_names, g_names = [x[keyname] for x in expected], [x[keyname] for x in got]
    missing = [k for k in e_names if k not in g_names]
    extra = [k for k in g_names if k not in e_names]
    if missing or extra:
        return f"missing {missing[:6]} extra {extra[:6]} (expected {len(e_names)}, got {len(g_names)})"
    if e_names != g_names:
        i = next(i for i, (a, b) in enumerate(zip(e_names, g_names)) if a != b)
        return f"order differs at #{i}: expected {e_names[i]!r}, got {g_names[i]!r}"
    i = next(i for i, (a, b) in enumerate(zip(expected, got)) if a != b)
    fields = [f for f in expected[i] if expected[i].get(f) != got[i].get(f)]
    n_bad = sum(a != b for a, b in zip(expected, got))
    return (f"{n_bad} differ; first {e_names[i]!r} in {fields}: expected "
            f"{short({f: expected[i].get(f) for f in fields})}, got {short({f: got[i].get(f) for f in fields})}")


def family_gguf(ckpt, model, root):
    src = os.path.join(FAMILIES_DIR, model)
    for t in GGUF_TYPES:
        label = f"family {model} gguf {t}"
        out = os.path.join(fresh_dir(os.path.join(root, f"gguf-{t}")), f"{model}-{t}.gguf")
        argv = [ckpt, "convert", src, out, "--to", "gguf", "--dtype", t]
        r = run_ckpt(argv)
        check(f"{label}: ckpt convert --to gguf --dtype {t} exits 0", r.returncode == 0, r.stderr.strip())
        if r.returncode != 0:
            continue
        ref_path = os.path.join(FAMILIES_DIR, "gguf", f"{model}-{t}.json")
        ref = json.load(open(ref_path))
        try:
            got = describe_gguf(out)
        except Exception as e:  # noqa: BLE001
            check(f"{label}: gguf-py's GGUFReader opens ckpt's file", False, repr(e))
            continue
        head = {k: got[k] for k in ("version", "alignment", "kv_count", "tensor_count")}
        want = {k: ref[k] for k in head}
        diff = first_list_difference(ref["metadata"], got["metadata"], "key")
        check(f"{label}: GGUFReader reads it; all {ref['kv_count']} KVs (key, type, value, order) = the converter's",
              not diff and head == want, diff or f"header expected {want}, got {head}")
        diff = first_list_difference(ref["tensors"], got["tensors"], "name")
        if not diff and got["data_offset"] != ref["data_offset"]:
            diff = f"data_offset expected {ref['data_offset']}, got {got['data_offset']}"
        check(f"{label}: all {ref['tensor_count']} tensors (name, type, shape, offset, data sha256) = the converter's",
              not diff, diff)
        check(f"{label}: file sha256 = the converter's ({ref['file']['sha256'][:12]}…, {ref['file']['size']} bytes)",
              got["file"] == {"size": ref["file"]["size"], "sha256": ref["file"]["sha256"]},
              f"`{' '.join(argv)}`: expected {ref['file']['size']} bytes sha256 {ref['file']['sha256']}, "
              f"got {got['file']['size']} bytes sha256 {got['file']['sha256']}")


def prompt_ids(model):
    return [p["ids"] for p in json.load(open(os.path.join(FAMILIES_DIR, "expected", f"{model}.json")))["prompts"]]


def logits_of(m, prompts):
    with torch.no_grad():
        return [m(torch.tensor([ids])).logits[0].float() for ids in prompts]


def max_delta(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def load_fp32(folder, **kw):
    from transformers import AutoModelForCausalLM

    r = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager", **kw)
    (r[0] if isinstance(r, tuple) else r).eval()
    return r


def load_source_cast(folder, dtype):
    """The source model in fp32 with every weight rounded through torch's .to(dtype) (the buffers, e.g. rotary
    inv_freq, are left as transformers computes them)."""
    m = load_fp32(folder)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.to(dtype).to(torch.float32))
    return m


def load_written(out):
    """Every tensor of ckpt's output folder (safetensors shards or .bin files)."""
    tensors = {}
    for f in sorted(os.listdir(out)):
        path = os.path.join(out, f)
        if f.endswith(".safetensors"):
            with safe_open(path, framework="pt") as sf:
                tensors.update({k: sf.get_tensor(k) for k in sf.keys()})
        elif f.endswith(".bin"):
            tensors.update(torch.load(path, weights_only=True))
    return tensors


def bit_diff(source, written, dtype):
    """Names whose written tensor is not the source cast with .to(dtype) bit for bit (dtype None: kept as is)."""
    bad = []
    for k, s in source.items():
        if k not in written:
            continue
        want = s.to(dtype) if dtype is not None and s.dtype.is_floating_point else s
        w = written[k]
        if w.dtype != want.dtype or w.shape != want.shape or not torch.equal(want.view(torch.uint8), w.view(torch.uint8)):
            bad.append(f"{k} ({w.dtype} {tuple(w.shape)} vs {want.dtype} {tuple(want.shape)})")
    return bad


def loading_problems(info, ignore_rotary=False):
    bad = {}
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        v = [x for x in (info.get(key) or []) if not (ignore_rotary and "rotary" in str(x))]
        if v:
            bad[key] = sorted(str(x) for x in v)[:6]
    return bad


def family_hf_output(ckpt, model, root, fmt, dt):
    """ckpt convert --to {safetensors,bin}: the reference loaders read ckpt's folder and compute the source's logits."""
    src = os.path.join(FAMILIES_DIR, model)
    dtype = DTYPES[dt]
    label = f"family {model} {fmt} {dt}"
    out = os.path.join(root, f"{fmt}-{dt}")
    shutil.rmtree(out, ignore_errors=True)
    argv = [ckpt, "convert", src, out, "--to", fmt, "--dtype", dt]
    r = run_ckpt(argv)
    check(f"{label}: ckpt convert --to {fmt} --dtype {dt} exits 0", r.returncode == 0, r.stderr.strip())
    if r.returncode != 0:
        return
    ext = ".safetensors" if fmt == "safetensors" else ".bin"
    files = sorted(f for f in os.listdir(out) if f.endswith(ext))
    try:
        if fmt == "safetensors":
            metas = {}
            for f in files:
                with safe_open(os.path.join(out, f), framework="pt") as sf:
                    metas[f] = sf.metadata()
            check(f"{label}: safetensors safe_open opens {len(files)} shard(s), metadata {{'format': 'pt'}}",
                  bool(files) and all(m == {"format": "pt"} for m in metas.values()), f"files {files} metadata {metas}")
        else:
            for f in files:
                torch.load(os.path.join(out, f), weights_only=True)
            check(f"{label}: torch.load(weights_only=True) accepts {len(files)} .bin file(s)", bool(files), f"files {files}")
        source, written = load_folder(src), load_written(out)
    except Exception as e:  # noqa: BLE001
        check(f"{label}: the reference readers open ckpt's files", False, repr(e))
        return
    check(f"{label}: same tensor names as the source ({len(source)})", sorted(source) == sorted(written),
          f"missing {sorted(set(source) - set(written))} extra {sorted(set(written) - set(source))}")
    bad = bit_diff(source, written, dtype)
    check(f"{label}: every tensor bit-identical to torch .to({dtype})", not bad, f"differ: {bad[:5]}")
    try:
        m, info = load_fp32(out, output_loading_info=True)
        problems = loading_problems(info)
        check(f"{label}: transformers AutoModelForCausalLM ({type(m).__name__}, fp32, eager) loads it with no "
              f"missing/unexpected keys", not problems, str(problems))
        prompts = prompt_ids(model)
        got = logits_of(m, prompts)
        ref = logits_of(load_source_cast(src, dtype), prompts)
        d = max_delta(got, ref)
        check(f"{label}: fp32 logits on the 3 prompts = transformers' on the source cast to {dt} "
              f"(max |Δ| {d:.1e} ≤ 1e-5)", d <= 1e-5, f"max |Δ| {d}")
        if dt == "f32":
            exp = load_folder_file(os.path.join(FAMILIES_DIR, "expected", f"{model}.logits.safetensors"))
            e = [exp[f"prompt{i}"] for i in range(len(prompts))]
            shapes_ok = all(a.shape == b.shape for a, b in zip(got, e))
            d = max_delta(got, e) if shapes_ok else float("inf")
            # The fixture was computed with generate_families.py's pinned kernels (ATEN_CPU_CAPABILITY=default, one
            # thread), this run with the machine's: float32 rounding only, growing with the trained logits' scale
            # (|logit| up to ~20), so the Swift tests' 1e-4 applies here, not the same-run 1e-5.
            check(f"{label}: fp32 logits = the fixture's expected logits (max |Δ| {d:.1e} ≤ 1e-4)", d <= 1e-4,
                  f"max |Δ| {d}; shapes {[tuple(x.shape) for x in got]} vs {[tuple(x.shape) for x in e]}")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: transformers loads ckpt's folder and runs", False, repr(e))


def load_folder_file(path):
    with safe_open(path, framework="pt") as sf:
        return {k: sf.get_tensor(k) for k in sf.keys()}


def family_quantize(ckpt, model, root):
    src = os.path.join(FAMILIES_DIR, model)
    label = f"family {model} int8-channel"
    out = os.path.join(root, "int8-channel")
    shutil.rmtree(out, ignore_errors=True)
    r = run_ckpt([ckpt, "quantize", src, out, "--scheme", "int8-channel"])
    check(f"{label}: ckpt quantize --scheme int8-channel exits 0", r.returncode == 0, r.stderr.strip())
    if r.returncode != 0:
        return
    source = load_folder(src)
    biases = sorted(k for k in source if k.endswith(".bias"))
    if biases:
        try:
            written = load_written(out)
            bad = [k for k in biases if k not in written] + bit_diff({k: source[k] for k in biases}, written, None)
            extra = sorted(k for k in written if any(k.startswith(b[:-len("bias")] + "bias_") for b in biases))
            check(f"{label}: the {len(biases)} q/k/v biases are kept unquantized, bit-identical to the source",
                  not bad and not extra, f"differ or missing: {bad[:5]}; quantization tensors for biases: {extra[:5]}")
        except Exception as e:  # noqa: BLE001
            check(f"{label}: safetensors opens ckpt's quantized folder", False, repr(e))
    try:
        # compressed-tensors draws progress bars on stderr whatever TQDM_DISABLE says: keep them off the report.
        with contextlib.redirect_stderr(io.StringIO()):
            q, info = load_fp32(out, output_loading_info=True)
        problems = loading_problems(info, ignore_rotary=True)
        check(f"{label}: transformers + compressed-tensors load it ({type(q).__name__}) with no missing/unexpected keys",
              not problems, str(problems))
        prompts = prompt_ids(model)
        with contextlib.redirect_stderr(io.StringIO()):
            a = logits_of(q, prompts)
        b = logits_of(load_fp32(src), prompts)
        finite = all(torch.isfinite(x).all().item() for x in a)
        d = max_delta(a, b) if finite else float("nan")
        check(f"{label}: runs; fp32 logits vs the source's: max |Δ| {d:.3f} (finite, < 1.0)", finite and d < 1.0,
              f"max |Δ| {d}")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: transformers + compressed-tensors load and run it", False, repr(e))


def family_refused(ckpt, model, cls, root):
    src = os.path.join(FAMILIES_DIR, model)
    label = f"family {model} (refused)"
    for t in ["f16", "q8_0"]:
        d = fresh_dir(os.path.join(root, f"gguf-{t}"))
        out = os.path.join(d, f"{model}.gguf")
        r = run_ckpt([ckpt, "convert", src, out, "--to", "gguf", "--dtype", t])
        left = sorted(os.listdir(d))
        check(f"{label}: ckpt convert --to gguf --dtype {t} exits 1 and writes nothing", r.returncode == 1 and not left,
              f"exit {r.returncode}, left {left}, stderr {r.stderr.strip()[:300]!r}")
    out = os.path.join(root, "safetensors")
    shutil.rmtree(out, ignore_errors=True)
    r = run_ckpt([ckpt, "convert", src, out, "--to", "safetensors"])
    check(f"{label}: ckpt convert --to safetensors exits 0", r.returncode == 0, r.stderr.strip())
    if r.returncode != 0:
        return
    try:
        source, written = load_folder(src), load_written(out)
        bad = bit_diff(source, written, None)
        check(f"{label}: safe_open reads every tensor ({len(source)}) bit-identical to the source",
              sorted(source) == sorted(written) and not bad,
              f"missing {sorted(set(source) - set(written))} extra {sorted(set(written) - set(source))} differ {bad[:5]}")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: safe_open reads ckpt's output", False, repr(e))
    try:
        m, info = load_fp32(out, output_loading_info=True)
        problems = loading_problems(info)
        check(f"{label}: transformers loads it as {cls} with no missing/unexpected keys",
              type(m).__name__ == cls and not problems, f"class {type(m).__name__}, {problems}")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: transformers loads it as {cls}", False, repr(e))


def crosscheck_families(ckpt, out_root):
    """Issue 14: for every family fixture folder, gguf-py / safetensors / torch / transformers re-read ckpt's output."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()  # e.g. Gemma's legacy hidden_act notice; failures are exceptions
    present = sorted(f for f in os.listdir(FAMILIES_DIR)
                     if os.path.isdir(os.path.join(FAMILIES_DIR, f)) and f not in ("expected", "gguf"))
    covered = sorted(FAMILY_MODELS + list(FAMILY_REFUSED))
    check(f"families: every fixture folder is cross-checked ({len(present)})", present == covered,
          f"folders {present}, cross-checked {covered}")
    for model in FAMILY_MODELS:
        if not os.path.isdir(os.path.join(FAMILIES_DIR, model)):
            check(f"family {model}: fixture present", False, os.path.join(FAMILIES_DIR, model))
            continue
        root = fresh_dir(os.path.join(out_root, "families", model))
        family_gguf(ckpt, model, root)
        family_hf_output(ckpt, model, root, "safetensors", "f16")
        family_hf_output(ckpt, model, root, "bin", "f32")
        family_quantize(ckpt, model, root)
    for model, cls in FAMILY_REFUSED.items():
        if not os.path.isdir(os.path.join(FAMILIES_DIR, model)):
            check(f"family {model}: fixture present", False, os.path.join(FAMILIES_DIR, model))
            continue
        family_refused(ckpt, model, cls, fresh_dir(os.path.join(out_root, "families", model)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    versions = json.load(open(os.path.join(HERE, "VERSIONS.json")))

    for model in ["tiny-llama", "tiny-llama-gqa"]:
        src = os.path.join(HERE, model)
        for dt, size in [("f32", "300KB"), ("bf16", "5GB"), ("f16", "100KB")]:
            out = os.path.join(args.out, f"{model}-{dt}")
            r = subprocess.run([args.ckpt, "convert", src, out, "--dtype", dt, "--max-shard-size", size],
                               capture_output=True, text=True)
            check(f"{model}-{dt}: ckpt convert exits 0", r.returncode == 0, r.stderr.strip())
            if r.returncode == 0:
                crosscheck_output(f"{model}-{dt}", src, out, DTYPES[dt])

        out = os.path.join(args.out, f"{model}-bin")
        r = subprocess.run([args.ckpt, "convert", src, out, "--to", "bin", "--max-shard-size", "150KB"],
                           capture_output=True, text=True)
        check(f"{model}-bin: ckpt convert --to bin exits 0", r.returncode == 0, r.stderr.strip())
        if r.returncode == 0:
            crosscheck_bin(f"{model}-bin", src, out, torch.float16)

        meta_dir = os.path.join(HERE, "meta", f"{model}-mp2")
        if os.path.isdir(meta_dir):
            out = os.path.join(args.out, f"{model}-from-meta")
            r = subprocess.run([args.ckpt, "convert", "--from", "meta", meta_dir, out], capture_output=True, text=True)
            check(f"{model}-from-meta: ckpt convert --from meta exits 0", r.returncode == 0, r.stderr.strip())
            if r.returncode == 0:
                crosscheck_meta(f"{model}-from-meta", meta_dir, out, src)

    # apply-delta / make-delta: transformers loads ckpt's outputs and gets FastChat's logits.
    delta_dir = os.path.join(HERE, "delta")
    for label, args_, ref in [
        ("apply-delta", ["apply-delta", "--base", os.path.join(HERE, "tiny-llama"), "--delta", os.path.join(delta_dir, "delta-bin")],
         os.path.join(delta_dir, "applied")),
        ("apply-delta --to bin", ["apply-delta", "--base", os.path.join(delta_dir, "base-bin"), "--delta", os.path.join(delta_dir, "delta-st"),
                                  "--to", "bin"], os.path.join(delta_dir, "applied")),
        ("make-delta", ["make-delta", "--base", os.path.join(HERE, "tiny-llama"), "--target", os.path.join(delta_dir, "target")],
         os.path.join(delta_dir, "delta-st")),
    ]:
        out = os.path.join(args.out, label.replace(" ", "_"))
        flag = "--delta" if label == "make-delta" else "--target"
        r = subprocess.run([args.ckpt] + args_ + [flag, out], capture_output=True, text=True)
        check(f"{label}: ckpt exits 0", r.returncode == 0, r.stderr.strip())
        if r.returncode != 0:
            continue
        try:
            model = LlamaForCausalLM.from_pretrained(out, dtype=torch.float16)
            fastchat = LlamaForCausalLM.from_pretrained(ref, dtype=torch.float16)
            ids = torch.tensor([[1, 15, 27, 300, 42, 7, 99]])
            with torch.no_grad():
                a, b = model(ids).logits, fastchat(ids).logits
            check(f"{label}: transformers gets FastChat's logits from ckpt's output", torch.equal(a, b),
                  f"max |d| {(a - b).abs().max().item()}")
        except Exception as e:  # noqa: BLE001
            check(f"{label}: transformers loads ckpt's output", False, repr(e))

    # quantize: transformers (with compressed-tensors) loads ckpt's int8 folders; gguf-py reads ckpt's GGUF files.
    for model in ["tiny-llama", "tiny-llama-gqa"]:
        src = os.path.join(HERE, model)
        for scheme, extra in [("int8-channel", []), ("int8-group", ["--group-size", "32"])]:
            out = os.path.join(args.out, f"{model}-{scheme}")
            r = subprocess.run([args.ckpt, "quantize", src, out, "--scheme", scheme] + extra, capture_output=True, text=True)
            check(f"{model} {scheme}: ckpt quantize exits 0", r.returncode == 0, r.stderr.strip())
            if r.returncode != 0:
                continue
            try:
                q, info = LlamaForCausalLM.from_pretrained(out, dtype=torch.float16, output_loading_info=True)
                bad = [k for k in info.get("missing_keys", []) if "rotary" not in k] + list(info.get("unexpected_keys", []))
                check(f"{model} {scheme}: transformers + compressed-tensors load it with no missing/unexpected keys", not bad, str(bad[:5]))
                ref = LlamaForCausalLM.from_pretrained(src, dtype=torch.float16)
                ids = torch.tensor([json.load(open(os.path.join(HERE, "expected", model, "forward.json")))["input_ids"]])
                with torch.no_grad():
                    a = q(ids).logits.float()
                    b = ref(ids).logits.float()
                agree = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
                kl = torch.nn.functional.kl_div(a.log_softmax(-1), b.log_softmax(-1), log_target=True,
                                                reduction="none").sum(-1).mean().item()
                check(f"{model} {scheme}: logits agree with the source model's (top-1 {agree:.2f}, mean KL {kl:.1e})",
                      agree >= 0.98 and kl <= 0.01)
            except Exception as e:  # noqa: BLE001
                check(f"{model} {scheme}: transformers loads ckpt's compressed-tensors folder", False, repr(e))
        for t in ["f16", "q8_0"]:
            out = os.path.join(args.out, f"{model}-{t}.gguf")
            r = subprocess.run([args.ckpt, "convert", src, out, "--to", "gguf", "--dtype", t], capture_output=True, text=True)
            check(f"{model} {t}.gguf: ckpt convert --to gguf exits 0", r.returncode == 0, r.stderr.strip())
            if r.returncode != 0:
                continue
            try:
                from gguf import GGUFReader
                from gguf.quants import dequantize
                g = GGUFReader(out)
                names = {x.name for x in g.tensors}
                check(f"{model} {t}.gguf: gguf-py's GGUFReader reads it ({len(g.tensors)} tensors, {len(g.fields)} keys)",
                      "token_embd.weight" in names and g.fields["general.architecture"].contents() == "llama")
                emb = next(x for x in g.tensors if x.name == "token_embd.weight")
                deq = dequantize(emb.data, emb.tensor_type).reshape(-1)
                src_emb = load_folder(src)["model.embed_tokens.weight"].float().numpy().reshape(-1)
                err = float(abs(deq - src_emb).max())
                check(f"{model} {t}.gguf: token_embd dequantizes to the source (max |err| {err:.2e})", err < 0.01)
            except Exception as e:  # noqa: BLE001
                check(f"{model} {t}.gguf: gguf-py reads ckpt's file", False, repr(e))

    # make test-large leaves a > 4 GiB .bin (ZIP64) and safetensors file: torch and safetensors must agree on them.
    large = os.path.join(os.path.dirname(HERE), ".build", "large")
    if os.path.exists(os.path.join(large, "large.bin")):
        try:
            a = torch.load(os.path.join(large, "large.bin"), weights_only=True, mmap=True)
            with safe_open(os.path.join(large, "large.safetensors"), framework="pt") as sf:
                same = sorted(a) == sorted(sf.keys()) and all(torch.equal(a[k], sf.get_tensor(k)) for k in a)
            check("large: torch.load reads the > 4 GiB .bin (ZIP64) and it equals the safetensors copy",
                  same and a["big"].numel() > 2**32, f"keys {sorted(a)}")
        except Exception as e:  # noqa: BLE001
            check("large: torch.load reads the > 4 GiB .bin", False, repr(e))
    else:
        print("skip  large: run `make test-large` first to cross-check the > 4 GiB files")

    crosscheck_lora(args.ckpt, args.out)
    crosscheck_families(args.ckpt, args.out)
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
