"""gguf-py's numpy Q8_0 quantizer on N float32 values in memory: best of 3, prints values per second."""
import sys
import time

import numpy as np
from gguf.quants import quantize
from gguf.constants import GGMLQuantizationType

n = int(sys.argv[1])
x = (np.random.default_rng(12345).integers(-1_000_000, 1_000_001, size=n) * 1e-7).astype(np.float32).reshape(-1, 4096)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    quantize(x, GGMLQuantizationType.Q8_0)
    best = min(best, time.perf_counter() - t0)
print(int(n / best))
