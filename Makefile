# ckpt — set-up is two commands on a fresh Debian machine: `make demo` and `make test`.
SWIFT      ?= swift
PREFIX     ?= /usr/local
CKPT_REL   := .build/release/ckpt
CKPT_DBG   := .build/debug/ckpt
PYTHON     := .venv/bin/python
DEMO_OUT   := .build/demo

.PHONY: all deps build release test test-large demo bench bench-large install fixtures fixtures-env crosscheck fuzz asan clean

all: build

# System libraries: zlib (CRC-32, inflate) and OpenSSL libcrypto (SHA-256). Installed only when pkg-config
# cannot find them (you run as root on the team's machines).
deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists zlib || ! pkg-config --exists libcrypto; then \
		echo "installing zlib1g-dev libssl-dev pkg-config"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zlib1g-dev libssl-dev pkg-config >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The library is tested in a debug build; the command-line tests run the optimised binary, which is what users run
# (a release-only miscompile was once caught only that way).
test: deps
	$(SWIFT) build -c release
	CKPT_TEST_BINARY=$(CURDIR)/$(CKPT_REL) $(SWIFT) test

# The main job on the bundled fixtures: apply a Vicuna-style delta (published as .bin shards, made by FastChat's
# make_delta) to the tiny LLaMA, then verify the result tensor by tensor against FastChat's own apply_delta output
# (a manifest computed with torch) and show it.
demo: release
	@rm -rf $(DEMO_OUT)
	@echo "== ckpt apply-delta --base Fixtures/tiny-llama --delta Fixtures/delta/delta-bin --target $(DEMO_OUT)/vicuna-tiny"
	@$(CKPT_REL) apply-delta --base Fixtures/tiny-llama --delta Fixtures/delta/delta-bin --target $(DEMO_OUT)/vicuna-tiny
	@echo; echo "== ckpt checksum --check <manifest of FastChat's apply_delta output, computed with torch>"
	@$(CKPT_REL) checksum --check Fixtures/delta/expected/applied_manifest.json $(DEMO_OUT)/vicuna-tiny
	@echo; echo "== ckpt inspect $(DEMO_OUT)/vicuna-tiny"
	@$(CKPT_REL) inspect $(DEMO_OUT)/vicuna-tiny
	@echo; echo "== ckpt checksum $(DEMO_OUT)/vicuna-tiny (sha256sum format; sha256sum -c accepts it)"
	@$(CKPT_REL) checksum $(DEMO_OUT)/vicuna-tiny | tee $(DEMO_OUT)/SHA256SUMS
	@sha256sum -c --quiet $(DEMO_OUT)/SHA256SUMS && echo "sha256sum -c: all OK"
	@echo; echo "== ckpt verify $(DEMO_OUT)/vicuna-tiny (structure, values, tokenizer, forward pass)"
	@$(CKPT_REL) verify $(DEMO_OUT)/vicuna-tiny --manifest Fixtures/delta/expected/applied_manifest.json
	@echo; echo "demo OK: the result is bit-identical to FastChat's, tensor for tensor, and verifies"

bench: release
	bash Benchmarks/bench.sh

# Opt-in: apply-delta, convert and quantize on a generated model of LLaMA-7B widths (≈7 GB base + 7 GB delta; needs
# 26 GB of free disk, checked first).
bench-large: release
	BENCH_LARGE=1 bash Benchmarks/bench.sh

install: release
	install -d $(PREFIX)/bin
	install -m 755 $(CKPT_REL) $(PREFIX)/bin/ckpt

# Developers only: the pinned Python environment that generates Fixtures/ and runs the cross-checks.
fixtures-env:
	@test -x $(PYTHON) || python3 -m venv .venv
	$(PYTHON) -m pip install -q -r Fixtures/requirements.txt
	$(PYTHON) -m pip install -q --no-deps fschat==0.2.36

fixtures: fixtures-env
	$(PYTHON) Fixtures/generate.py
	$(PYTHON) Fixtures/generate_delta.py
	$(PYTHON) Fixtures/generate_verify.py
	$(PYTHON) Fixtures/generate_quant.py
	$(PYTHON) Fixtures/generate_lora.py
	$(PYTHON) Fixtures/generate_tokenizers.py
	$(PYTHON) Fixtures/generate_families.py
	$(PYTHON) Fixtures/generate_gguf_extra.py

# Developers only: the reference loaders re-read what ckpt writes now.
crosscheck: release
	@test -x $(PYTHON) || { echo "run 'make fixtures-env' first"; exit 1; }
	$(PYTHON) Fixtures/crosscheck.py --ckpt $(CKPT_REL) --out .build/crosscheck

# libFuzzer + ASan over every parser (safetensors, zip, pickle, torch, gguf, sentencepiece, json), seeded from the
# fixtures; FUZZ_RUNS (1,000,000) / FUZZ_SECONDS (600) per target.
fuzz: deps
	bash Benchmarks/fuzz.sh

# The degenerate-shape sweep, the sink's fault tests and the malformed-input sweep with the library, the CLI and the
# tests all built with AddressSanitizer (any heap overflow or use-after-free aborts the run). Leak detection is off:
# the only reports are the test harness's own (XCTest, Foundation.Process).
asan: deps
	$(SWIFT) build --sanitize=address --scratch-path .build-asan --build-tests
	ASAN_OPTIONS=detect_leaks=0 CKPT_TEST_BINARY=$(CURDIR)/.build-asan/debug/ckpt $(SWIFT) test --sanitize=address --scratch-path .build-asan --skip-build \
		--filter 'ShapeSweepTests|SinkTests|SweepTests|FuzzRegressionTests'

clean:
	rm -rf .build .build-asan
