#!/usr/bin/env python3
"""Fixtures for `ckpt verify` and the forward pass beyond Fixtures/generate.py (run after it; `make fixtures`).

verify/other-base/   a second tiny LLaMA with tiny-llama's exact architecture, trained from another seed: applying
                     tiny-llama's FastChat delta to it is "a delta applied to the wrong base".
verify/expected.json transformers' float32 last-position logits on the forward prompt for tiny-llama's weights
                     rounded to bf16 and widened (a bf16 source), and the perplexity facts about the wrong-base case.
"""
import json
import runpy
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
g = runpy.run_path(str(HERE / "generate.py"), run_name="fixture_lib")  # its settings, seeds and helpers
torch = g["torch"]
LlamaForCausalLM = g["LlamaForCausalLM"]
import sentencepiece as spm  # noqa: E402

OUT = HERE / "verify"


@torch.no_grad()
def last_logits(model, ids):
    return model(input_ids=torch.tensor([ids])).logits[0, -1]


@torch.no_grad()
def mean_nll(model, ids):
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    lp = torch.log_softmax(logits, -1)
    return float(-lp[:-1].gather(1, torch.tensor(ids[1:])[:, None]).mean())


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    sp = spm.SentencePieceProcessor(model_file=str(HERE / "tokenizer" / "tokenizer.model"))
    text = g["CORPUS"].read_text(encoding="utf-8")
    stream = g["token_stream"](sp, text)
    hf_tok = g["LlamaTokenizer"].from_pretrained(str(HERE / "tokenizer"), add_bos_token=True, add_eos_token=False)

    spec = dict(g["MODELS"]["tiny-llama"])
    spec["init_seed"] = g["SEED"] + 101
    model16, stats = g["train_model"]("other-base", spec, stream)
    g["save_model"](model16, hf_tok, HERE / "tokenizer" / "tokenizer.model", OUT / "other-base")

    ids = [sp.bos_id()] + sp.encode(g["FORWARD_PROMPT"])

    def load32(model):
        return LlamaForCausalLM.from_pretrained(str(HERE / model), dtype=torch.float32, attn_implementation="eager").eval()

    bf16 = {}
    for model in ["tiny-llama", "tiny-llama-gqa"]:
        ref = load32(model)
        with torch.no_grad():
            for p in ref.parameters():
                p.data = p.data.to(torch.bfloat16).to(torch.float32)
        bf16[model] = [round(float(v), 6) for v in last_logits(ref, ids)]

    # int8 outputs: transformers' float32 logits with every quantized weight replaced by its dequantized value —
    # compressed-tensors (the library's own folders, decompressed by the library on load) and Q8_0 (llama.cpp's
    # converter output, dequantized by gguf-py and un-permuted back to HF's q/k layout).
    int8 = {}
    for model in ["tiny-llama", "tiny-llama-gqa"]:
        for scheme in ["channel", "group32"]:
            # The library's decompression (verified bitwise in Fixtures/quant/ct/*/expected/load.json):
            # weight = (q).to(fp16) * scale in fp16, q = packed byte − 128, scale per row or per group.
            from safetensors.torch import load_file
            ct = load_file(str(HERE / "quant" / "ct" / f"{model}-{scheme}" / "model.safetensors"))
            m = load32(model)
            with torch.no_grad():
                sd = m.state_dict()
                for k, p in sd.items():
                    mod = k[: -len(".weight")]
                    if mod + ".weight_packed" in ct:
                        out, inn = (int(x) for x in ct[mod + ".weight_shape"])
                        q = ct[mod + ".weight_packed"].contiguous().view(torch.uint8).reshape(out, -1)[:, :inn].to(torch.int16) - 128
                        scale = ct[mod + ".weight_scale"]
                        scale = scale.repeat_interleave(inn // scale.shape[1], dim=1)
                        p.copy_((q.to(torch.float16) * scale).float())
                    elif k in ct:
                        p.copy_(ct[k].float())
            int8[f"ct/{model}-{scheme}"] = [round(float(v), 6) for v in last_logits(m, ids)]
    from gguf import GGUFReader
    from gguf.quants import dequantize
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
    parts = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
             "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    for model in ["tiny-llama", "tiny-llama-gqa"]:
        path = HERE / "quant" / "gguf" / f"{model}-q8_0.gguf"
        if not path.exists():
            continue
        m = load32(model)
        cfg = m.config
        r = GGUFReader(str(path))
        with torch.no_grad():
            sd = m.state_dict()
            for t in r.tensors:
                if t.name in names:
                    hf = names[t.name]
                else:
                    _, layer, part, _ = t.name.split(".")
                    hf = f"model.layers.{layer}.{parts[part]}.weight"
                w = torch.from_numpy(dequantize(t.data, t.tensor_type).copy()).float().reshape(sd[hf].shape)
                if "q_proj" in hf or "k_proj" in hf:  # Meta adjacent pairs -> HF halves (transformers' permute)
                    n = cfg.num_attention_heads if "q_proj" in hf else cfg.num_key_value_heads
                    rows, cols = w.shape
                    w = w.view(n, rows // n // 2, 2, cols).transpose(1, 2).reshape(rows, cols)
                sd[hf].copy_(w)
            if cfg.tie_word_embeddings:
                m.lm_head.weight = m.model.embed_tokens.weight
        int8[f"gguf/{model}-q8_0"] = [round(float(v), 6) for v in last_logits(m, ids)]

    # A delta between two independently trained models (what a real Vicuna delta is relative to its base):
    # delta = other-base − tiny-llama with FastChat's arithmetic (fp16, in place). Right: tiny-llama + delta.
    # Wrong: the same delta applied to other-base (a base of the same architecture that is not the one it was made
    # against). Written as safetensors with the library; perplexities computed by transformers.
    from safetensors.torch import save_file
    base = LlamaForCausalLM.from_pretrained(str(HERE / "tiny-llama"), dtype=torch.float16)
    other = LlamaForCausalLM.from_pretrained(str(OUT / "other-base"), dtype=torch.float16)
    bsd, osd = base.state_dict(), other.state_dict()
    delta_sd = {k: (osd[k].clone() - bsd[k]).contiguous() for k in osd if "rotary" not in k}
    ddir = OUT / "delta-big"
    ddir.mkdir()
    save_file(delta_sd, str(ddir / "model.safetensors"), metadata={"format": "pt"})
    for f in ["config.json", "generation_config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json"]:
        if (HERE / "tiny-llama" / f).exists():
            shutil.copyfile(HERE / "tiny-llama" / f, ddir / f)
    right = LlamaForCausalLM.from_pretrained(str(HERE / "tiny-llama"), dtype=torch.float16)
    wrong = LlamaForCausalLM.from_pretrained(str(OUT / "other-base"), dtype=torch.float16)
    with torch.no_grad():
        for m in (right, wrong):
            for name, p in m.state_dict().items():
                if name in delta_sd:
                    p += delta_sd[name]
    right, wrong = right.float(), wrong.float()
    sample = [sp.bos_id()] + sp.encode(text[:4000])[:200]
    facts = {
        "forward_prompt_ids": ids,
        "bf16_source_last_logits": bf16["tiny-llama"],
        "bf16_source_last_logits_by_model": bf16,
        "dequantized_last_logits": int8,
        "ppl_right_result": round(float(torch.exp(torch.tensor(mean_nll(right, sample)))), 4),
        "ppl_delta_on_wrong_base": round(float(torch.exp(torch.tensor(mean_nll(wrong, sample)))), 4),
        "ppl_sample": "first 200 tokens of Fixtures/corpus.txt after BOS",
        "other_base_training": stats,
        "versions": {"torch": torch.__version__, "transformers": g["transformers"].__version__},
    }
    (OUT / "expected.json").write_text(json.dumps(facts, indent=2) + "\n")
    print({k: v for k, v in facts.items() if k.startswith("ppl")})


if __name__ == "__main__":
    main()
