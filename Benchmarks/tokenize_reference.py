#!/usr/bin/env python3
"""Reference encode timings for `make bench` (tokenize section), measured like ckpt-bench tokenize:
tokenizer loaded once, best of 5 wall-clock runs, prints "tokens seconds".

    tokenize_reference.py sentencepiece MODEL FILE one|lines THREADS
    tokenize_reference.py tokenizers TOKENIZER_JSON FILE one|lines THREADS

sentencepiece: encode(text) for one string; encode(list_of_lines, num_threads=THREADS) for the batch.
tokenizers: encode(text, add_special_tokens=False); encode_batch(lines) — one thread means
TOKENIZERS_PARALLELISM=false (set by the caller before Python starts), more means RAYON_NUM_THREADS=THREADS.
"""
import sys
import time


def main():
    lib, path, file, mode, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    text = open(file, encoding="utf-8").read()
    lines = [ln for ln in text.split("\n") if ln]
    if lib == "sentencepiece":
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=path, num_threads=threads)
        if mode == "one":
            run = lambda: len(sp.encode(text))  # noqa: E731
        else:
            run = lambda: sum(map(len, sp.encode(lines, num_threads=threads)))  # noqa: E731
    else:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(path)
        if mode == "one":
            run = lambda: len(tok.encode(text, add_special_tokens=False).ids)  # noqa: E731
        else:
            run = lambda: sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))  # noqa: E731
    best, n = float("inf"), 0
    for _ in range(5):
        t0 = time.perf_counter()
        n = run()
        best = min(best, time.perf_counter() - t0)
    print(n, best)


if __name__ == "__main__":
    main()
