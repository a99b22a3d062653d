#!/usr/bin/env python3
"""make crosscheck: the reference tools re-read what ckpt writes *now*.

Developers only (needs the pinned environment: make fixtures-env). For each output ckpt writes from the bundled
fixtures, the real loaders must accept it and see exactly the expected values:
  * safetensors: safe_open accepts every shard, metadata is {"format": "pt"}, and save_file of the loaded tensors
    reproduces ckpt's bytes (the writer is byte-identical to the library's);
  * torch: every tensor equals the source tensor cast with torch's own .to(dtype) (round to nearest even), bit for bit;
  * transformers: LlamaForCausalLM.from_pretrained loads the folder with no missing or unexpected keys, and its logits
    equal those of the source model cast the same way.
Prints one line per check and a closing "N passed, M failed"; exits non-zero on any failure.
"""
import argparse
import json
import os
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
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
