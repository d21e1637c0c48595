# The two commands of the README:
#   make demo   create the environment, fetch what the demo needs, run the main job (no flags, no cloud)
#   make test   install everything the tests need and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Downloaded / converted models and sample frames, reused between runs (delete to start afresh).
export EDGEINFER_CACHE_DIR ?= $(CURDIR)/.cache
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench docs clean

demo: $(VENV)/.demo
	$(BIN)/edgeinfer run

test: $(VENV)/.dev
	@scripts/bootstrap.sh test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python bench/run_all.py

docs: $(VENV)/.dev
	$(BIN)/edgeinfer config docs > docs/configuration.md

$(VENV)/.venv:
	@scripts/bootstrap.sh python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@touch $@

$(VENV)/.demo: $(VENV)/.venv pyproject.toml
	$(BIN)/python -m pip install -q -e '.[demo]'
	@touch $@

$(VENV)/.dev: $(VENV)/.venv pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps 'azure-iot-device==2.14.0'   # see the note on [dev] in pyproject.toml
	@touch $@ $(VENV)/.demo

clean:
	rm -rf $(VENV) .cache edgeinfer-out .pytest_cache
