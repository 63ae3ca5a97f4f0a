# Two commands from a fresh clone (see README):
#   make train   trains the default model on MovieLens-1M and prints its test RMSE
#   make test    runs the whole test suite
# Both create .venv (Python 3.11) with the pinned dependencies on first use.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/movielens_1m.py
WORKDIR ?= runs/movielens_1m
ARGS ?=

.PHONY: install train test clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) -m autorec_jax.main --config=$(CONFIG) --workdir=$(WORKDIR) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

clean:
	rm -rf $(VENV) .pytest_cache
