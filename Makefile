# distillrec: every set-up step lives here, so a fresh machine needs only `make run` or `make test`.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

# Datasets: DISTILLREC_DATA_DIR if set, else ../shared/datasets when that folder exists.
ifeq ($(strip $(DISTILLREC_DATA_DIR)),)
  ifneq ($(wildcard ../shared/datasets),)
    export DISTILLREC_DATA_DIR := $(abspath ../shared/datasets)
  endif
endif
# Two cores: keep BLAS/OpenMP from oversubscribing them or spinning when another process needs the CPU.
export OMP_WAIT_POLICY ?= PASSIVE
export HF_HUB_OFFLINE ?= 1

.PHONY: install run test test-all lint browser postgres clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

run: install
	$(BIN)/distillrec run configs/quickstart.yaml

# Debian's chromium, for the report's rendering test and the serving web page's (skipped with a reason when absent).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Debian's PostgreSQL server, for the tests of two `distillrec serve` processes sharing one store (skipped with a
# reason when absent).
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q -m "not slow"
	# the slow test that fits CI: fuzzing the HTTP API from its OpenAPI schema (~20 s)
	$(BIN)/pytest -q -m slow tests/test_serve.py

test-all: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
