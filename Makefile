# Leoflow XCom. `make test` and `make run` work on a fresh machine: they build the virtualenv,
# install the packages and a Redis server binary themselves.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help venv redis-bin compose-plugin protos lint test compose-test run clean

help:
	@echo "make run      start Redis + the XCom service as local processes (no Docker)"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make protos   regenerate the gRPC stubs from services/proto"
	@echo "make lint     ruff + mypy only"
	@echo "make compose-test  the Compose appliance end to end on a real Docker engine"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

redis-bin:
	@bash scripts/ensure-redis.sh

# `docker compose config` in `make test` needs the Compose CLI plugin (not an engine).
compose-plugin:
	@bash scripts/docker-engine.sh compose-plugin

protos: venv
	$(PY) scripts/gen_protos.py

lint: venv
	$(VENV)/bin/ruff check services scripts tests
	$(VENV)/bin/ruff format --check services scripts tests
	$(VENV)/bin/mypy

test: venv redis-bin compose-plugin lint
	$(VENV)/bin/pytest -m "not e2e" $(PYTEST_ARGS)

# Starts a Docker engine if none answers, builds the images, runs tests/e2e, stops the engine.
compose-test: venv
	PYTHON=$(PY) bash scripts/compose-test.sh

run: venv
	$(PY) scripts/run_local.py

clean:
	rm -rf $(VENV) .leoflow .pytest_cache .mypy_cache .ruff_cache
