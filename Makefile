# ckpt — set-up is two commands on a fresh Debian machine: `make demo` and `make test`.
SWIFT      ?= swift
PREFIX     ?= /usr/local
CKPT_REL   := .build/release/ckpt
CKPT_DBG   := .build/debug/ckpt
PYTHON     := .venv/bin/python
DEMO_OUT   := .build/demo

.PHONY: all deps build release test test-large demo bench install fixtures fixtures-env crosscheck fuzz clean

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

# The main job on the bundled fixtures. Until the delta engine exists: inspect the bundled tiny LLaMA, checksum it
# (sha256sum-compatible), verify it against the per-tensor manifest computed by the Python reference tools,
# re-shard and cast it to bf16, and check that the result still holds the same float16-exact values.
demo: release
	@echo "== ckpt inspect Fixtures/tiny-llama"
	@$(CKPT_REL) inspect Fixtures/tiny-llama
	@echo; echo "== ckpt checksum Fixtures/tiny-llama (sha256sum format; sha256sum -c accepts it)"
	@$(CKPT_REL) checksum Fixtures/tiny-llama | tee $(DEMO_OUT).sha256
	@sha256sum -c --quiet $(DEMO_OUT).sha256 && echo "sha256sum -c: all OK"
	@echo; echo "== ckpt checksum --check <manifest written by the Python reference tools>"
	@$(CKPT_REL) checksum --check Fixtures/expected/tiny-llama/manifest.json Fixtures/tiny-llama
	@echo; echo "== ckpt convert --dtype f32 --max-shard-size 300KB (streamed, journaled, atomic)"
	@rm -rf $(DEMO_OUT)/tiny-llama-f32
	@$(CKPT_REL) convert Fixtures/tiny-llama $(DEMO_OUT)/tiny-llama-f32 --dtype f32 --max-shard-size 300KB
	@$(CKPT_REL) inspect $(DEMO_OUT)/tiny-llama-f32 --filter 'norm'
	@echo "demo OK"

# Opt-in, not in CI: a > 4 GiB tensor through the safetensors and .bin writers and readers (needs ~9 GB of disk).
test-large: deps
	$(SWIFT) build -c release
	CKPT_TEST_LARGE=1 CKPT_TEST_BINARY=$(CURDIR)/$(CKPT_REL) $(SWIFT) test -c release --filter LargeFileTests

bench: release
	bash Benchmarks/bench.sh

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

# Developers only: the reference loaders re-read what ckpt writes now.
crosscheck: release
	@test -x $(PYTHON) || { echo "run 'make fixtures-env' first"; exit 1; }
	$(PYTHON) Fixtures/crosscheck.py --ckpt $(CKPT_REL) --out .build/crosscheck

clean:
	rm -rf .build
