# Two commands do all set-up on a fresh machine where only python3 exists: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# uv itself is the one tool not pinned by uv.lock: bootstrapped with pip into its own small environment, at a
# fixed version so every machine reads and writes the lock file the same way.
UV_VERSION = 0.13.9
UV_ENV     = .uv
UV         = $(UV_ENV)/bin/uv

.PHONY: serve test lint lock openapi examples bench clean

$(UV):
	$(PYTHON) -m venv $(UV_ENV)
	$(UV_ENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs exactly what uv.lock pins (the project editable, with the dev dependency group) into .venv, removing anything
# else. --locked fails loudly when pyproject.toml changed without `make lock`.
$(STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --group dev --python $(PYTHON) --quiet
	touch $(STAMP)

# After changing dependencies in pyproject.toml (or merging branches that did): re-resolve and commit uv.lock.
lock: $(UV)
	$(UV) lock

serve: $(STAMP)
	$(BIN)/counterfact serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# PYTEST_ARGS adds options, e.g. the coverage report .ci/run asks for.
test: $(STAMP)
	$(BIN)/python -m pytest --numprocesses=auto $(PYTEST_ARGS)

# Every folder of Python code: what is shipped, the tests and every development script (pre-commit's mypy hook too).
PYTHON_DIRS = api stats tests simulations testkit scripts bench

lint: $(STAMP)
	$(UV) lock --check
	$(BIN)/ruff check $(PYTHON_DIRS)
	$(BIN)/ruff format --check $(PYTHON_DIRS)
	$(BIN)/mypy $(PYTHON_DIRS)

openapi: $(STAMP)
	$(BIN)/counterfact openapi --output openapi/openapi.json

# Re-capture the response examples from the running service (needs a database), then `make openapi`.
examples: $(STAMP)
	$(BIN)/python -m scripts.capture_examples

bench: $(STAMP)
	$(BIN)/python bench/bench_power.py

clean:
	rm -rf $(VENV) $(UV_ENV) .pytest_cache .mypy_cache .ruff_cache
