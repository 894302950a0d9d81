# The two commands a new user needs (see README):  make run TASK="..."   and   make test
# Both start from nothing: a venv, the package, the local runtime. llama-cpp-python has no wheel on PyPI:
# `orchestrate models engine` compiles it once (~7 min on 2 cores) with flags that run on any x86-64 CPU
# with AVX2, keeps the wheel in the user cache keyed by those flags, and checks the installed build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TASK ?= design a RAG pipeline
WORKSPACE ?= out
ORCHESTRATE_FLAGS ?=

.PHONY: install dev sysdeps sandbox lint test run

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (CI images) every command
# would compile these sources again: compile them once, as pip does for an installed wheel.
COMPILE := $(BIN)/python -m compileall -q orchestrator graphs tools

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[graph]'
	$(COMPILE)
	$(BIN)/orchestrate models engine

dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(COMPILE)
	$(BIN)/orchestrate models engine

sysdeps:
	bash scripts/sysdeps.sh

sandbox:
	bash scripts/sysdeps.sh bubblewrap

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck.py

# The suite includes one end-to-end run on the real local models, so the models are pulled first (cached
# in the user cache dir and verified by sha256; a no-op when they are there).
test: lint sysdeps
	$(BIN)/orchestrate models pull
	$(BIN)/pytest

# The main job on the embedded default: fetch + verify the local models, then run in ./out (a scratch
# workspace, so agents never write into this checkout). With ANTHROPIC_API_KEY set it runs on Claude.
run: install sandbox
	$(BIN)/orchestrate models pull
	mkdir -p $(WORKSPACE)
	$(BIN)/orchestrate run --permission-mode acceptEdits --workspace $(WORKSPACE) $(ORCHESTRATE_FLAGS) "$(TASK)"
