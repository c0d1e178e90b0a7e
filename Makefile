# Threadline developer entry points. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install run test test-slow lint bench clean container-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m service serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow and not container" -o addopts="" || [ $$? -eq 5 ]

# Builds and runs the Docker image and docker-compose.yml with podman (sets podman up first).
container-test: $(STAMP)
	$(BIN)/python -m pytest -q -m container -o addopts="" tests/test_container.py

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
