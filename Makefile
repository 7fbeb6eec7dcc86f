# The README's two commands: `make run` (install everything, run the main job)
# and `make test` (the whole suite). Everything lives in .venv under the repo.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := build-essential pkg-config libsodium-dev python3-dev python3-venv
SOURCES := setup.py pyproject.toml $(wildcard ext/*.pyx ext/*.pxd ext/csrc/*.c ext/csrc/*.h)

.PHONY: run setup system-deps test bench lint clean

# The main job: a local node on a demo chain, fed the demo scenario through the RPC client,
# then serving (its address printed) until Ctrl-C.
run: setup
	$(BIN)/chainmall doctor
	$(BIN)/chainmall node demo

setup: $(VENV)/.installed

# Installs the C toolchain and libsodium with apt when they are missing.
system-deps:
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
	rm -rf build $(VENV) ext/*.so ext/_*.c *.egg-info
