PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo bench lint clean

install: $(STAMP)

# Re-install only when the project's dependencies change, so a second call is quick.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/clearn prune-curve --dataset digits --alphas 1 2 3 --epochs 30 --out runs/demo-prune-curve

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) runs
