PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo bench lint docs clean

install: $(STAMP)

# Re-install only when the project's dependencies change, so a second call is quick. The
# exact versions tested together come from constraints.txt; pyproject.toml holds ranges.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# One test worker per core (pytest-xdist); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto

test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The demo starts afresh each time: clearn never overwrites a results folder by itself.
demo: install
	rm -rf runs/demo
	$(BIN)/clearn run --scenario permuted-digits --strategy epn --tasks 5 --out runs/demo

bench: install
	$(BIN)/python -m benchmarks

# The docs site, into site/: a warning (a broken link, a docstring mkdocstrings cannot read)
# fails the build. tests/test_docs.py builds it too, so `make test` checks it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs
