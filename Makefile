# The README's two commands: `make run` (install everything, run the main job)
# and `make test` (the whole suite). Everything lives in .venv under the repo.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# libsodium-dev: only for the benchmark baseline (ext/_sodium_bench.pyx); no verdict uses it.
APT_PACKAGES := build-essential pkg-config libsodium-dev python3-dev python3-venv
# Rust builds ext/ed25519 (ZIP 215 on ed25519-zebra); its AVX-512 back end needs >= 1.89.
RUST_MIN := 1.89
CARGO := $(shell command -v cargo 2>/dev/null || { test -x "$$HOME/.cargo/bin/cargo" && echo "$$HOME/.cargo/bin/cargo"; })
SOURCES := setup.py pyproject.toml $(wildcard ext/*.pyx ext/*.pxd ext/csrc/*.c ext/csrc/*.h) \
	$(wildcard ext/ed25519/Cargo.toml ext/ed25519/Cargo.lock ext/ed25519/build.rs \
	           ext/ed25519/*.h ext/ed25519/src/*.rs ext/ed25519/cargo_build.py)

.PHONY: run setup system-deps cometbft lightcheck abci-proto test test-protobuf-range \
	test-cluster bench bench-cluster lint clean

# CometBFT, the consensus engine of validator networks (docs/cometbft.md): an
# exact release built with `go install` into the project's tool dir. The stamp
# file names the version, so changing COMETBFT_VERSION reinstalls.
COMETBFT_VERSION := v0.38.26
TOOLS_BIN := .tools/bin
COMETBFT_STAMP := $(TOOLS_BIN)/.cometbft-$(COMETBFT_VERSION)
# Go from PATH, else where the official tarball installs it.
GO ?= $(shell command -v go 2>/dev/null || { test -x /usr/local/go/bin/go && echo /usr/local/go/bin/go; })

# The main job: a local node on a demo chain, fed the demo scenario through the RPC client,
# then serving (its address printed) until Ctrl-C.
run: setup
	$(BIN)/chainmall doctor
	$(BIN)/chainmall node demo

setup: web $(VENV)/.installed

# Installs the C toolchain and libsodium with apt when they are missing; checks that
# cargo (Rust >= $(RUST_MIN)) is there and says how to get it if not.
system-deps:
	@if [ -z "$(CARGO)" ]; then \
	  echo "error: cargo (Rust >= $(RUST_MIN)) is needed to build ext/ed25519;" \
	       "install it with rustup (https://rustup.rs: rustup toolchain install stable)" \
	       "and make sure cargo is on PATH or in ~/.cargo/bin, then rerun" >&2; exit 1; \
	fi; \
	version=$$("$(CARGO)" --version | cut -d' ' -f2); \
	if [ "$$(printf '%s\n%s\n' "$(RUST_MIN)" "$$version" | sort -V | head -n1)" != "$(RUST_MIN)" ]; then \
	  echo "error: cargo $$version is too old: ext/ed25519 needs Rust >= $(RUST_MIN)" \
	       "(rustup update stable)" >&2; exit 1; \
	fi
	@need=""; \
	command -v cc >/dev/null 2>&1 || need=1; \
	command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libsodium || need=1; \
	$(PYTHON) -c "import ensurepip, venv, sysconfig, os, sys; \
	    sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
	    2>/dev/null || need=1; \
	if [ -n "$$need" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    echo "installing system packages: $(APT_PACKAGES)"; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(APT_PACKAGES); \
	  else \
	    echo "error: install a C compiler, pkg-config, libsodium (with headers) and" \
	         "Python headers, then rerun" >&2; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: $(SOURCES) | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

cometbft: $(COMETBFT_STAMP)

$(COMETBFT_STAMP):
	@test -n "$(GO)" || { \
	  echo "error: Go (1.22.11 or newer) is needed to build CometBFT $(COMETBFT_VERSION);" \
	       "install it (https://go.dev/doc/install), then rerun 'make cometbft'" >&2; exit 1; }
	@echo "installing CometBFT $(COMETBFT_VERSION) into $(TOOLS_BIN) (go install, about a minute)"
	mkdir -p $(TOOLS_BIN)
	GOBIN="$(abspath $(TOOLS_BIN))" GOFLAGS=-buildvcs=false \
	    $(GO) install github.com/cometbft/cometbft/cmd/cometbft@$(COMETBFT_VERSION)
	$(TOOLS_BIN)/cometbft version
	rm -f $(TOOLS_BIN)/.cometbft-v*
	touch $@

# Regenerates core/abci/proto/ from CometBFT's .proto files (docs/cometbft.md).
abci-proto: cometbft
	PATH="$(dir $(GO)):$$PATH" $(PYTHON) core/abci/proto/generate.py

# The suite fails, rather than skips, the CometBFT tests when the binary is missing.
test: setup cometbft lightcheck
	CHAINMALL_REQUIRE_COMETBFT=1 $(BIN)/python -m pytest -q

# CometBFT's own light client as a small Go program (tests/cluster/lightcheck): the
# light-client test compares chainmall's verdicts with its verdicts on the same headers.
LIGHTCHECK_SOURCES := $(wildcard tests/cluster/lightcheck/*)
lightcheck: $(TOOLS_BIN)/lightcheck

$(TOOLS_BIN)/lightcheck: $(LIGHTCHECK_SOURCES) | cometbft
	cd tests/cluster/lightcheck && GOFLAGS=-mod=readonly $(GO) build -o $(abspath $@) .

# The long fault schedules of the validator-network tests (tests/cluster): wiped
# nodes, failed applications, partitions through a proxy, a double-signing validator.
test-cluster: setup cometbft lightcheck
	CHAINMALL_REQUIRE_COMETBFT=1 CHAINMALL_CLUSTER_LONG=1 $(BIN)/python -m pytest -q -s \
	    tests/cluster

# The generated ABCI classes under the oldest protobuf runtime pyproject.toml allows
# and a middle one (`make test` runs the newest, which pip installs).
PROTOBUF_VERSIONS := 5.29.5 6.33.0
test-protobuf-range: setup cometbft
	@for v in $(PROTOBUF_VERSIONS); do \
	  dir="$(abspath .tools)/protobuf-$$v"; \
	  test -d "$$dir" || $(BIN)/python -m pip install -q --target "$$dir" "protobuf==$$v" \
	    || exit 1; \
	  PYTHONPATH="$$dir" $(BIN)/python -c \
	    "import google.protobuf as p; print('tests/core/abci under protobuf', p.__version__)"; \
	  PYTHONPATH="$$dir" CHAINMALL_REQUIRE_COMETBFT=1 \
	    $(BIN)/python -m pytest -q -p no:cacheprovider tests/core/abci || exit 1; \
	done

bench: setup
	$(BIN)/python -m pytest bench --benchmark-only -s -q

# 4 validators on this machine: throughput, submit-to-final latency, one killed mid-run.
bench-cluster: setup cometbft
	$(BIN)/python bench/cluster/cluster_bench.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf build $(VENV) .tools ext/*.so ext/_*.c ext/ed25519/target *.egg-info \
	    web/node_modules core/rpc/static

# --- the product page (web/, docs/page.md) ---------------------------------
# `make web` builds web/ into core/rpc/static/ (package data, not committed)
# with npm ci and esbuild, each only when its inputs changed. Without npm
# the page is left out: everything else installs and tests, and
# `chainmall doctor` says the page is missing. Chromium (Debian's, with its
# driver) is installed only for the browser tests: `make test-browser`.
WEB_STAMP := core/rpc/static/app.js
WEB_DEPS_STAMP := web/node_modules/.installed
WEB_SOURCES := web/package.json web/build.mjs web/tsconfig.json \
	$(wildcard web/static/* web/src/*.ts web/src/*/*.ts)
BROWSER_APT_PACKAGES := chromium chromium-driver

.PHONY: web browser-deps test-browser

web:
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory $(WEB_STAMP); \
	else \
	  echo "note: npm not found: the product page is not built (chainmall doctor says so)"; \
	fi

$(WEB_DEPS_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

$(WEB_STAMP): $(WEB_DEPS_STAMP) $(WEB_SOURCES)
	cd web && node build.mjs
	touch $@

# Node.js builds the page; Debian 12's nodejs (18) is older than @noble and playwright-core need.
NODE_MIN := 20.19

browser-deps:
	@version=$$(node --version 2>/dev/null | sed 's/^v//'); \
	if [ -z "$$version" ] || ! command -v npm >/dev/null 2>&1 || \
	   [ "$$(printf '%s\n%s\n' "$(NODE_MIN)" "$$version" | sort -V | head -n1)" != "$(NODE_MIN)" ]; then \
	  echo "error: Node.js >= $(NODE_MIN) with npm is needed to build and test the product page" \
	       "(found: $${version:-none}; Debian 12's nodejs is 18): install it from https://nodejs.org" \
	       "or NodeSource, then rerun" >&2; exit 1; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing $(BROWSER_APT_PACKAGES) for the browser tests (about 2 minutes)"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(BROWSER_APT_PACKAGES) >/dev/null; \
	fi

test-browser: setup browser-deps
	CHAINMALL_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q tests/web

# The trust benchmarks at full size (docs/trust.md 14): the epoch close up to 10^6
# contributors, the per-block work up to 10^5 merchants, top-k at 10^5 listings, the
# detection table. Long (tens of minutes): never part of `make test`.
.PHONY: bench-trust
bench-trust: setup
	CHAINMALL_BENCH_EPOCH_MAX_EXP=6 CHAINMALL_BENCH_TRUST_MAX_EXP=5 $(BIN)/python -m pytest \
	    bench/bench_trust_epochs.py bench/bench_trust_blocks.py bench/bench_trust_topk.py \
	    bench/bench_trust_detection.py --benchmark-only -s -q
# --- the node under load (bench/loadgen.py, bench/README.md) -----------------
# Not part of `make test`. `bench-node` is the issue's 60 s target run (about
# 2 minutes with the signing; `make bench` runs it too, as bench_node.py);
# `soak` runs 10 minutes at 3,000 tx/s with pruning on and samples the
# node's memory and the state tree's entries every 30 s (about 12 minutes).
.PHONY: bench-node soak

bench-node: setup
	cd bench && ../$(BIN)/python loadgen.py

soak: setup
	cd bench && ../$(BIN)/python loadgen.py --soak
