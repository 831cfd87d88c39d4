# Two entry points for a fresh machine (Python 3.10+, Debian/Ubuntu for the SLURM test):
#   make run    set up .venv and run the embedded default: snakemake --cores all eval
#   make test   set up .venv and run the whole test suite (as CI does)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test lint format

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulled in by another package is a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/snakemake --cores all eval

test: setup
	-bash .ci/install-slurm.sh || echo "no SLURM here: the SLURM test will be skipped"
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

format: setup
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow
