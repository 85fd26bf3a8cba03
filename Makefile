# One target per thing a person does. Every target creates .venv and installs on first use, from
# the committed lock (uv.lock): the same versions on every machine, whatever the registry did since.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv comes from the package registry at a pinned version, into its own small venv
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
DEMO_ROOT ?= demo-lake
PYTEST_ARGS ?=

# uv installs into .venv with the system Python; it never downloads an interpreter of its own
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# compile every installed module once at install time: a process that may not write bytecode
# (PYTHONDONTWRITEBYTECODE, read-only installs) would otherwise recompile numpy and numba from
# source at every start, seconds per command
export UV_COMPILE_BYTECODE := 1

.PHONY: install install-dev system demo test test-fast check lock lock-check bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q uv==$(UV_VERSION)

# the runtime set: what `fraudflow` needs to run (no extras); --inexact keeps a dev install whole
$(VENV)/.runtime-stamp: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --inexact
	$(BIN)/python -m compileall -q src
	touch $@

# the development set: the runtime set, every extra (aws, redis, spark) and the test tools
$(VENV)/.dev-stamp: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --extra dev
	$(BIN)/python -m compileall -q src
	touch $@ $(VENV)/.runtime-stamp

install: $(VENV)/.runtime-stamp  ## create .venv with fraudflow's runtime dependencies, from the lock

install-dev: $(VENV)/.dev-stamp  ## create .venv with every extra and the test tools, from the lock

demo: $(VENV)/.runtime-stamp  ## run the whole pipeline on embedded defaults into ./demo-lake
	$(BIN)/fraudflow pipeline --out $(DEMO_ROOT)

system:  ## redis-server and Java 17 for the Redis and Spark tests (Debian packages when missing)
	@bash .ci/ensure-system

test: $(VENV)/.dev-stamp system  ## the whole test suite (slow end-to-end tests included)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(VENV)/.dev-stamp system  ## the suite without the slow tests
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

check: $(VENV)/.dev-stamp  ## lint, type-check (mypy strict) and the layer contract (import-linter)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

lock: | $(UV)  ## refresh uv.lock deliberately: the newest versions pyproject.toml allows
	$(UV) lock --upgrade

lock-check: | $(UV)  ## fail when uv.lock is stale against pyproject.toml
	$(UV) lock --check

bench: $(VENV)/.dev-stamp  ## the benchmark scripts; figures go to docs/BENCHMARKS.md
	$(BIN)/python -m benchmarks.cli_startup
	$(BIN)/python -m benchmarks.simulate
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.serve
	$(BIN)/python -m benchmarks.lambda_generator
	$(BIN)/python -m benchmarks.scale

clean:
	rm -rf $(VENV) $(TOOLS) $(DEMO_ROOT) .pytest_cache .mypy_cache .ruff_cache
