#!/usr/bin/env bash
# make fuzz: libFuzzer + AddressSanitizer over every parser, seeded from the fixtures. Each target runs until
# FUZZ_RUNS executions (default 1,000,000) or FUZZ_SECONDS (default 600), whichever comes first. A crash leaves its
# input in .build-fuzz/crashes/<target>/ and fails the run; turn it into a regression fixture with its named error.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${FUZZ_RUNS:-1000000}
SECS=${FUZZ_SECONDS:-600}
TARGETS=${FUZZ_TARGETS:-"safetensors zip pickle torch gguf sentencepiece json"}
# --no-gc-sections: the release link otherwise drops the coverage counters (libFuzzer then runs blind: no "cov:").
CKPT_FUZZ=1 swift build -c release --sanitize=fuzzer --sanitize=address --scratch-path .build-fuzz --product ckpt-fuzz \
  -Xlinker --no-gc-sections 2>&1 | tail -2
BIN=.build-fuzz/release/ckpt-fuzz
for t in $TARGETS; do
  corpus=.build-fuzz/corpus/$t; crashes=.build-fuzz/crashes/$t
  mkdir -p "$corpus" "$crashes"
  case $t in
    safetensors) seeds=$(ls Fixtures/safetensors/writer/*.safetensors Fixtures/safetensors/malformed/*.safetensors Fixtures/tiny-llama/*.safetensors) ;;
    zip|torch) seeds=$(ls Fixtures/torch/*.bin Fixtures/torch/malicious/*.bin Fixtures/torch/corrupt/*.bin) ;;
    pickle) seeds=""; for f in Fixtures/torch/*.bin; do unzip -p "$f" '*/data.pkl' > "$corpus/$(basename "$f").pkl" 2>/dev/null || true; done ;;
    gguf) seeds=$(ls Fixtures/quant/gguf/malformed/*.gguf Fixtures/quant/gguf/*.gguf 2>/dev/null || true) ;;
    sentencepiece) seeds="Fixtures/tokenizer/tokenizer.model" ;;
    json) seeds=$(ls Fixtures/tiny-llama/*.json Fixtures/safetensors/malformed/expected.json) ;;
  esac
  for s in $seeds; do cp "$s" "$corpus/" 2>/dev/null || true; done
  echo "== $t: up to $RUNS runs or $SECS s"
  CKPT_FUZZ_TARGET=$t "$BIN" "$corpus" -runs="$RUNS" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done|DONE|ERROR|crash-|SUMMARY" || true
  if ls "$crashes"/crash-* "$crashes"/timeout-* "$crashes"/oom-* >/dev/null 2>&1; then echo "FINDINGS in $crashes"; exit 1; fi
done
echo "fuzz: no crash in any target"
