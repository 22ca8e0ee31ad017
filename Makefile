# One-command set-up: every target creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export NO_ALBUMENTATIONS_UPDATE ?= 1

.PHONY: venv demo test test-slow lint format docs clean

venv: $(STAMP)

# torch first, from its exact CPU version, so nothing pulls a CUDA build. Where pip's
# index serves PyPI's Linux torch (a CUDA build), name the CPU index:
#   make TORCH_INDEX=https://download.pytorch.org/whl/cpu demo
TORCH_INDEX ?=
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/text-recognizer demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 --dist loadgroup

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks noxfile.py
	$(VENV)/bin/ruff format --check src tests benchmarks noxfile.py
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks noxfile.py
	$(VENV)/bin/ruff format src tests benchmarks noxfile.py

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
