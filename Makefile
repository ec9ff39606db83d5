# Maestro ML: `make up` runs the local platform, `make test` runs every test, `make test-fast` the unit tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: help venv up demo test test-fast lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP) ## Create .venv and install the pinned requirements

up: venv ## Run the local platform (Airflow on 8080, MLflow on 5000) in the foreground
	./scripts/up.sh

demo: venv ## Run the whole pipeline once, headless, through real Airflow
	./scripts/demo.sh

test: venv ## Run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv ## The pure unit tests only (no services, lakes or trainings): the edit-test loop, under a minute
	$(BIN)/python -m pytest -m "not integration" tests/unit $(PYTEST_ARGS)

lint: venv ## ruff, mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/mypy plugins/maestro_ml
	PYTHONPATH=plugins $(BIN)/lint-imports

clean: ## Remove local state (.maestro) but keep .venv
	rm -rf .maestro
