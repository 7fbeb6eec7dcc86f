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
	           ext/ed25519/*.h ext/ed25519/src/*.rs)

.PHONY: run setup system-deps test bench lint clean

run: setup
	$(BIN)/chainmall doctor
	$(BIN)/chainmall demo

setup: $(VENV)/.installed

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

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pytest bench --benchmark-only -s -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf build $(VENV) ext/*.so ext/_*.c ext/ed25519/target *.egg-info
