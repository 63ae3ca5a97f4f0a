# Two commands from a fresh clone (see README):
#   make train   trains the default model on MovieLens-1M and prints its test RMSE
#   make test    runs the whole test suite, then checks the toolkit without its
#                optional native CPU path (make test-no-native)
# Both create .venv (Python 3.11) with the pinned dependencies on first use.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/movielens_1m.py
WORKDIR ?= runs/movielens_1m
ARGS ?=

.PHONY: install train test test-no-native clean

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
	$(MAKE) --no-print-directory test-no-native

# A copy of the checkout without autorec_jax/native/, imported from the copy (not the
# editable install): the tests not marked `native` (nor `slow`, `e2e`) and a tiny training
# run; see tests/without_native.sh. NO_NATIVE_PYTEST replaces those pytest arguments
# (e.g. NO_NATIVE_PYTEST='-m "not native" tests/training/train_test.py').
NO_NATIVE_PYTEST ?=
test-no-native: $(STAMP)
	bash tests/without_native.sh $(PY) $(NO_NATIVE_PYTEST)

clean:
	rm -rf $(VENV) .pytest_cache
