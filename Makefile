# hitstream: one target per habit. Every target installs what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_LIBS := .local/kafka/libs/.resolved

.PHONY: install run down status test e2e-deps prometheus-deps test-unit test-integration lint format typecheck bench chaos demo clean

install: $(STAMP) $(KAFKA_LIBS)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

$(KAFKA_LIBS): deploy/local/kafka/pom.xml
	$(PY) -m deploy.local.kafka_local resolve

## The main job: Kafka, the ClickHouse engine, the worker and the gateway, up and serving.
run: install
	$(PY) -m deploy.local.stack up

down:
	@test -x $(PY) && $(PY) -m deploy.local.stack down || true

status: install
	$(PY) -m deploy.local.stack status

## Every test: lint and types, the tag's JavaScript tests, unit, then integration tests on the
## real Kafka and ClickHouse engine.
test: install lint typecheck e2e-deps prometheus-deps
	node --test tests/js/
	$(PY) -m pytest tests

## The real-browser test's dependencies: playwright-core in tests/e2e/node_modules (git-ignored)
## and Chromium, each only when missing. Without root apt fails: the browser test then skips.
e2e-deps:
	@test -d tests/e2e/node_modules/playwright-core || \
		npm install --no-save --no-package-lock --prefix tests/e2e playwright-core@1.55.1 || \
		echo "e2e-deps: npm install failed; the browser test will be skipped"
	@test -x /usr/bin/chromium || apt-get install -y chromium || \
		echo "e2e-deps: chromium not installed (not root?); the browser test will be skipped"

## promtool (Debian's prometheus package) for the alert rules' tests, only when missing. Without
## root apt fails: those tests then skip.
prometheus-deps:
	@command -v promtool >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) || \
		echo "prometheus-deps: promtool not installed (not root?); the alert rule tests will be skipped"

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench

## Hits through the real stack under faults (Kafka, ClickHouse, worker and gateway kill -9),
## reconciled exactly. CHAOS_HITS sets the number of logical hits (default 200000); the group's
## size CHAOS_WORKERS, CHAOS_GATEWAYS, CHAOS_PARTITIONS (default 1, 1, 4); report and logs under
## .local/chaos/<time>/. A short version of it runs in `make test`.
chaos: install
	$(PY) -m tests.chaos.run

## A simulated experiment through the running stack (make run first), then its results table
## and the address of its results page.
demo: install
	$(PY) -m results.demo

clean: down
	rm -rf .local $(VENV)
