# The two commands a newcomer runs: `make demo` and `make test`; `make check` is the quick
# one to run while working. All of them set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Third-party browser code: the dashboard's charting library (uPlot) and the API docs' Swagger
# UI, pinned in web/package-lock.json and copied into the package.
VENDOR := src/peerscope/dashboard/static/vendor
ASSETS := $(VENDOR)/.copied
UPLOT := web/node_modules/uplot/dist
SWAGGER := web/node_modules/swagger-ui-dist

.PHONY: demo test check lint typecheck unit fast bench assets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Swagger UI is Apache-2.0: its licence and notice ship beside it.
$(ASSETS): web/package.json web/package-lock.json web/.npmrc Makefile
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(UPLOT)/uPlot.esm.js $(UPLOT)/uPlot.min.css $(VENDOR)/
	cp $(SWAGGER)/swagger-ui-bundle.js $(SWAGGER)/swagger-ui.css $(VENDOR)/
	cp $(SWAGGER)/swagger-ui-bundle.js.LICENSE.txt $(VENDOR)/
	cp $(SWAGGER)/LICENSE $(VENDOR)/swagger-ui.LICENSE.txt
	cp $(SWAGGER)/NOTICE $(VENDOR)/swagger-ui.NOTICE.txt
	touch $(ASSETS)

assets: $(ASSETS)

demo: $(STAMP) $(ASSETS)
	$(BIN)/peerscope demo

test: lint typecheck unit

# Under a minute: the tests marked slow or browser (see pyproject.toml) run only in `make
# test`. --durations shows the slowest fast tests, so one that has grown slow gets its mark.
check: lint typecheck fast

# lint-imports checks the house's layers (the contracts in pyproject.toml); no cache: it
# takes a fraction of a second and would leave a folder in the tree.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(ASSETS)
	$(BIN)/pytest -q

fast: $(STAMP) $(ASSETS)
	$(BIN)/pytest -q -m "not slow and not browser" --durations=5

bench: $(STAMP) $(ASSETS)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis \
		web/node_modules $(VENDOR) test-artifacts
