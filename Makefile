# Two commands matter: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast check lint format demo clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, migrate an SQLite file, load the demo city, serve on 127.0.0.1:8000.
run: $(STAMP)
	$(BIN)/gridline demo

## Set up and run the whole suite (SQLite and a throwaway PostgreSQL cluster),
## then the browser suite (the office console in Debian's Chromium), as its own
## process. Both always run; the target fails if either fails.
test: $(STAMP)
	@status=0; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || status=1; \
	$(BIN)/python -m pytest tests/browser $(BROWSER_PYTEST_ARGS) || status=1; \
	exit $$status

## The fast tier: the pure core (routing/), the edge (sms/) and the layout's
## rules; no database, no server, seconds.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/routing tests/sms tests/test_architecture.py

## Lint and type-check.
check: $(STAMP)
	$(BIN)/ruff check app routing sms tests bench
	$(BIN)/ruff format --check app routing sms tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format app routing sms tests bench
	$(BIN)/ruff check --fix app routing sms tests bench

## Extract the console's msgids and update its zh_CN and en catalogues.
messages: $(STAMP)
	$(BIN)/python -m app.console.messages

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
