# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: serve test lint openapi examples bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv resolves and installs in about a minute where pip takes over ten on this dependency set.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/counterfact serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# PYTEST_ARGS adds options, e.g. the coverage report .ci/run asks for.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check api stats tests $(wildcard bench)
	$(BIN)/mypy api stats

openapi: $(STAMP)
	$(BIN)/counterfact openapi --output openapi/openapi.json

# Re-capture the response examples from the running service (needs a database), then `make openapi`.
examples: $(STAMP)
	$(BIN)/python -m api.examples.capture

bench: $(STAMP)
	$(BIN)/python bench/bench_power.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
