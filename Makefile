# Two commands a new user needs (see README):  make run TASK="..."   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TASK ?= design a RAG pipeline
ORCHESTRATE_FLAGS ?=

.PHONY: setup dev test lint run

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

setup dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p orchestrator

test: lint
	$(BIN)/pytest

run: dev
	$(BIN)/orchestrate run $(ORCHESTRATE_FLAGS) "$(TASK)"
