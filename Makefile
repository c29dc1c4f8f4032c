# Patron: the commands that do everything on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test check schema documents compose bench install migrate serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The benchmarks' extras (matplotlib for the chart), on top of the dev install.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## make demo: venv, install, migrate, start with demo data; prints tokens and the GraphiQL URL
demo: $(STAMP)
	$(BIN)/patron serve --demo

## make test: lint, type-check, then the whole test suite
test: check
	$(BIN)/pytest -q

## make check: ruff and mypy
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make schema: regenerate schema.graphql and schema.federation.graphql from the code
schema: $(STAMP)
	$(BIN)/patron export-schema -o schema.graphql
	$(BIN)/patron export-schema --federation -o schema.federation.graphql

## make compose: compose the federated schema with the Node subgraphs of tests/federation
## (needs `npm ci` there); fails on any composition error
compose: $(STAMP)
	$(BIN)/patron export-schema --federation | node tests/federation/compose.mjs -

## make documents: regenerate examples/manifest.json from examples/*/*.graphql
documents: $(STAMP)
	$(BIN)/patron trusted-documents

## make bench: the benchmarks under bench/ (numbers, not tests; needs PostgreSQL; about 15 min)
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.ledger
	$(BIN)/python -m bench.member_view

migrate: $(STAMP)
	$(BIN)/patron migrate

serve: $(STAMP)
	$(BIN)/patron serve

clean:
	rm -rf $(VENV) patron.db patron-demo.db .mypy_cache .ruff_cache .pytest_cache
