# The two commands a newcomer runs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dashboard's charting library: pinned in web/package-lock.json, copied into the package.
VENDOR := src/peerscope/dashboard/static/vendor
ASSETS := $(VENDOR)/.copied
UPLOT := web/node_modules/uplot/dist

.PHONY: demo test lint typecheck unit bench assets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(UPLOT)/uPlot.esm.js $(UPLOT)/uPlot.min.css $(VENDOR)/
	touch $(ASSETS)

assets: $(ASSETS)

demo: $(STAMP) $(ASSETS)
	$(BIN)/peerscope demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(ASSETS)
	$(BIN)/pytest -q

bench: $(STAMP) $(ASSETS)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis \
		web/node_modules $(VENDOR) test-artifacts
