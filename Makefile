# hitstream: one target per habit. Every target installs what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_LIBS := .local/kafka/libs/.resolved

.PHONY: install run down status test test-unit test-integration lint format typecheck bench chaos demo clean

install: $(STAMP) $(KAFKA_LIBS)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

$(KAFKA_LIBS): deploy/kafka/pom.xml
	$(PY) -m deploy.kafka_local resolve

## The main job: Kafka, the ClickHouse engine, the worker and the gateway, up and serving.
run: install
	$(PY) -m deploy.stack up

down:
	@test -x $(PY) && $(PY) -m deploy.stack down || true

status: install
	$(PY) -m deploy.stack status

## Every test: lint and types, the tag's JavaScript tests, unit, then integration tests on the
## real Kafka and ClickHouse engine.
test: install lint typecheck
	node --test tests/js/
	$(PY) -m pytest tests

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

## A simulated experiment through the running stack (make run first), then its results table.
demo: install
	$(PY) -m results.demo

clean: down
	rm -rf .local $(VENV)
