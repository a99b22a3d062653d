"""transformers on CPU on the bench model: prefill of a 32-token prompt and 32 greedy tokens, tokens/s (best of 2)."""
import sys
import time

import torch
from transformers import LlamaForCausalLM

torch.set_num_threads(2)
model = LlamaForCausalLM.from_pretrained(sys.argv[1], dtype={"f32": torch.float32, "bf16": torch.bfloat16}[sys.argv[2]]).eval()
prompt = torch.tensor([[100 + i * 37 for i in range(32)]])
best_p = best_g = float("inf")
with torch.no_grad():
    for _ in range(2):
        t0 = time.perf_counter()
        out = model(prompt, use_cache=True)
        t1 = time.perf_counter()
        past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        for _ in range(32):
            out = model(nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        best_p, best_g = min(best_p, t1 - t0), min(best_g, time.perf_counter() - t1)
print(f"{32 / best_p:.1f} {32 / best_g:.2f}")
