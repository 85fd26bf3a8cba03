# One target per thing a person does. Every target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ROOT ?= demo-lake
PYTEST_ARGS ?=

.PHONY: install system demo test test-fast check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install fraudflow with its test tools

demo: $(STAMP)  ## run the whole pipeline on embedded defaults into ./demo-lake
	$(BIN)/fraudflow pipeline --out $(DEMO_ROOT)

system:  ## redis-server and Java 17 for the Redis and Spark tests (Debian packages when missing)
	@bash .ci/ensure-system

test: $(STAMP) system  ## the whole test suite (slow end-to-end tests included)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP) system  ## the suite without the slow tests
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

check: $(STAMP)  ## lint and type-check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## the benchmark scripts; figures go to docs/BENCHMARKS.md
	$(BIN)/python -m benchmarks.simulate
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.serve
	$(BIN)/python -m benchmarks.lambda_generator
	$(BIN)/python -m benchmarks.scale

clean:
	rm -rf $(VENV) $(DEMO_ROOT) .pytest_cache .mypy_cache .ruff_cache
