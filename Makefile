# Leoflow XCom. `make test` and `make run` work on a fresh machine: they build the virtualenv,
# install the packages and a Redis server binary themselves.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help venv redis-bin chromium compose-plugin airflow-artefacts protos lint lint-perf test fault-test security-test compose-test run bench loadtest clean
.PHONY: cluster-test
.PHONY: loadtest-web loadtest-capacity prereqs-test prereqs-run prereqs-fresh-test fresh-test

help:
	@echo "make run      start Redis + the XCom service as local processes (no Docker)"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make protos   regenerate the gRPC stubs from services/proto"
	@echo "make lint     ruff + mypy only"
	@echo "make fault-test  fault injection scenarios only (also part of make test), with figures"
	@echo "make cluster-test  store and proxy suites against a real Redis Cluster and Sentinel group"
	@echo "make security-test  hostile-tenant tests (floods, ReDoS, claims, error sizes), with figures"
	@echo "make compose-test  the Compose appliance end to end on a real Docker engine"
	@echo "make fresh-test    make test + make run's walk-through in a clean Debian container"
	@echo "make bench    floors vs push/fetch side by side, plots in build/bench (BENCH_ARGS=--quick: short run; --update-docs: refresh docs/bench; --against REV: this tree vs a git revision, same run)"
	@echo "make loadtest paced latency scenario, headless, exact µs percentiles (fails over 1 ms p50)"
	@echo "make loadtest-web       the same scenario in Locust's web UI (http://127.0.0.1:8089)"
	@echo "make loadtest-capacity  sub-ms capacity: offered rate raised step by step, plot + JSON"

# What the machine must provide (README's prerequisites): one line per missing piece, at once.
prereqs-test prereqs-run prereqs-fresh-test:
	@PYTHON=$(PYTHON) STAMP=$(STAMP) bash scripts/check-prereqs.sh $(@:prereqs-%=%)

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) bash scripts/check-prereqs.sh venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[server,dev]'
	touch $@

venv: $(STAMP)

$(VENV)/.%-stamp: pyproject.toml $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[$*]'
	touch $@

redis-bin:
	@bash scripts/ensure-redis.sh

# The XCom browser pages are tested in Debian's headless Chromium (Selenium, no downloads).
chromium:
	@bash scripts/ensure-chromium.sh

# `docker compose config` in `make test` needs the Compose CLI plugin (not an engine).
# It downloads the plugin with the venv's pip (a system Python may have no pip).
compose-plugin: venv
	@PYTHON=$(PY) bash scripts/docker-engine.sh compose-plugin

protos: venv
	$(PY) scripts/gen_protos.py

# mypy follows the tests into bench/ and loadtest/, so their extras come first.
lint: venv $(VENV)/.bench-stamp $(VENV)/.loadtest-stamp
	$(VENV)/bin/ruff check services scripts tests bench loadtest
	$(VENV)/bin/ruff format --check services scripts tests bench loadtest
	$(VENV)/bin/mypy

# Type-checks bench/ and loadtest/, which need their extras.
lint-perf: $(VENV)/.bench-stamp $(VENV)/.loadtest-stamp
	$(VENV)/bin/mypy --strict --config-file pyproject.toml bench loadtest

# Airflow's generated clients (one virtualenv each) and its wheels' OpenAPI documents, cached
# in .cache/airflow for the proxy's compatibility tests (the tests fetch them too if missing).
airflow-artefacts: venv
	$(PY) -m tests.proxy.airflow.prefetch

test: prereqs-test venv redis-bin chromium compose-plugin lint lint-perf airflow-artefacts
	$(VENV)/bin/pytest -m "not e2e and not failover" $(PYTEST_ARGS)

# The store and proxy suites against a real Redis Cluster (3 primaries + 3 replicas) and a real
# Sentinel group (1 primary, 2 replicas, 3 Sentinels) started on loopback (prints bring-up
# times; `make test` runs them against standalone servers only); MODE_SUITES once per mode;
# then a primary SIGKILLed under SDK load through two service replicas, with and without
# LEOFLOW_REDIS_MIN_REPLICA_ACKS (prints the FAILOVER figures).
cluster-test: venv redis-bin chromium airflow-artefacts
	LEOFLOW_TEST_REDIS_MODES=cluster,sentinel $(VENV)/bin/pytest -s -m "not e2e" tests/store \
		tests/proxy/test_deployments.py tests/server/test_deployments.py $(PYTEST_ARGS)
	for mode in cluster sentinel; do \
		LEOFLOW_TEST_REDIS_MODE=$$mode $(VENV)/bin/pytest -m "not e2e" $(MODE_SUITES) \
			--ignore=tests/proxy/test_deployments.py $(PYTEST_ARGS) || exit 1; \
	done
	$(VENV)/bin/pytest -m failover -s tests/cluster/failover $(PYTEST_ARGS)

# The suites whose fixtures follow LEOFLOW_TEST_REDIS_MODE (docs/testing.md says why these):
# the whole UI proxy suite, the service's store-touching gRPC suites, the CLI, metrics/health.
MODE_SUITES = tests/proxy tests/server/test_smoke.py tests/server/test_authorization.py \
	tests/server/test_mapped_and_clear.py tests/server/test_rules.py tests/server/test_session.py \
	tests/server/test_hostile_input.py tests/cli/test_cli.py tests/telemetry/test_grpc_metrics.py \
	tests/telemetry/test_proxy_telemetry.py tests/telemetry/test_memory_watch.py \
	tests/init/test_job.py

# Redis killed/stalled/restarted/full and the service stopped, under load; prints the figures.
fault-test: venv redis-bin
	$(VENV)/bin/pytest -m fault -s tests/faults $(PYTEST_ARGS)

# Hostile tenants against real processes (floods, ReDoS schemas, claims, error sizes), with
# figures printed; also part of make test.
security-test: venv redis-bin
	$(VENV)/bin/pytest -s tests/security tests/core/test_schema_safety.py \
		tests/server/test_error_sizes.py tests/client/test_untrusted_statuses.py $(PYTEST_ARGS)

# Starts a Docker engine if none answers, builds the images, runs tests/e2e, stops the engine.
compose-test: venv
	PYTHON=$(PY) bash scripts/compose-test.sh

# README's two commands on a fresh machine: a fresh clone of the committed HEAD in a clean
# Debian container with only README's prerequisites runs `make test`, then `make run` with the
# README walk-through and Ctrl-C. Starts a Docker engine if none answers (and stops it).
fresh-test: prereqs-fresh-test venv
	PYTHON=$(PY) bash scripts/fresh-test.sh

run: prereqs-run venv
	$(PY) scripts/run_local.py

BENCH_ARGS ?=
bench: $(VENV)/.bench-stamp redis-bin
	$(PY) -m bench $(BENCH_ARGS)

LOADTEST_ARGS ?=
loadtest: $(VENV)/.loadtest-stamp redis-bin
	$(PY) -m loadtest.run $(LOADTEST_ARGS)

loadtest-web: $(VENV)/.loadtest-stamp redis-bin
	$(PY) -m loadtest.run --web $(LOADTEST_ARGS)

loadtest-capacity: $(VENV)/.loadtest-stamp redis-bin
	$(PY) -m loadtest.run --scenario capacity $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .leoflow .pytest_cache .mypy_cache .ruff_cache
