# Two entry points, each self-contained on a fresh machine:
#   make demo  -> creates .venv, installs, generates synthetic shapes, trains the small `demo` preset on them,
#                 evaluates and draws held-out images (make demo-coco: the same on bundled COCO photos)
#   make test  -> creates .venv, installs, runs ruff (lint + format check) and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision: pinned here to the CPU-capable wheels served from this machine's disk; pyproject
# declares the supported range (torch>=2.4).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
PYTEST_WORKERS ?= 2

.PHONY: venv test test-slow lint demo demo-coco bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --durations=15

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

demo: venv
	$(BIN)/maskdino demo --output runs/demo

demo-coco: venv
	$(BIN)/maskdino demo --coco --output runs/demo-coco

bench: venv
	$(BIN)/maskdino bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
