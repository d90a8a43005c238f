# Two commands matter: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint format demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, migrate an SQLite file, load the demo city, serve on 127.0.0.1:8000.
run: $(STAMP)
	$(BIN)/gridline demo

## Set up and run the whole suite (SQLite and a throwaway PostgreSQL cluster).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint and type-check.
check: $(STAMP)
	$(BIN)/ruff check app routing sms tests bench
	$(BIN)/ruff format --check app routing sms tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format app routing sms tests bench
	$(BIN)/ruff check --fix app routing sms tests bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
