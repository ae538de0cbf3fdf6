# Each target bootstraps .venv by itself; the editable install is redone only
# when setup.cfg changes. editable_mode=compat puts the repository root on
# sys.path, which is what lets twistd find twisted/plugins/gateway_plugin.py
# from any working directory.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lint typecheck pytest peers bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]' --config-settings editable_mode=compat
	touch $@

run: $(STAMP)
	$(BIN)/twistd -n coap-gateway $(ARGS)

# peers first: a missing CoAP client stops the run before anything else.
test: peers lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) peers
	$(BIN)/python -m pytest -q

# The interop tests' CoAP clients: installed when root, else a hint and a failure.
peers:
	@scripts/peers.sh

bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
