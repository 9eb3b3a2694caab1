# The two commands of the README:  `make demo`  (main job)  and  `make test`  (test suite).
# Everything else is a building block of those two.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
# CPU machines: the local CPU build of torch must be named in the same pip command, or pip may pull a CUDA build.
TORCH   ?= torch==2.13.0
CORE_SRC := $(shell find csrc -type f 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: setup build demo test test-slow test-all lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.deps: $(BIN)/python pyproject.toml
	$(PIP) install -q "$(TORCH)" "scikit-build-core>=0.10" "nanobind>=2.4"
	$(PIP) install -q --no-build-isolation "$(TORCH)" -e ".[dev]"
	touch $@

# Editable install: Python edits apply at once; `make build` recompiles csrc/ when it changed.
$(VENV)/.built: $(VENV)/.deps $(CORE_SRC)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $@

setup: $(VENV)/.built
build: $(VENV)/.built

demo: build
	$(BIN)/gdecode demo

test: build
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: build
	$(BIN)/python -m pytest -q -m "slow"

test-all: build
	$(BIN)/python -m pytest -q

lint: build
	$(BIN)/ruff check gdecode tests bench

clean:
	rm -rf build $(VENV)
