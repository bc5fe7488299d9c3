# Carnet — the two commands of the README (make serve, make test) and their parts.
# Everything a run needs is installed from here: the Python environment, the web
# client's npm packages, and (for the tests, as root) Debian's chromium.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEB    := client/web
WEBDEPS := $(WEB)/node_modules/.installed
WEBDIST := $(WEB)/dist/index.html
WEBSRC := $(shell find $(WEB)/src $(WEB)/public $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json 2>/dev/null)

.PHONY: serve test lint typecheck pytest web web-test browser clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Carnet needs $(PYTHON) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(WEBDEPS): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEBDEPS)

$(WEBDIST): $(WEBDEPS) $(WEBSRC)
	cd $(WEB) && npm run --silent build

## make web: build the web client that Carnet serves at /app/.
web: $(WEBDIST)

## make serve: install, start the embedded database and serve Carnet (and /app/) with a demo school.
serve: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web; \
	 else echo "npm not found: serving without the web client at /app/"; fi
	$(BIN)/carnet serve --demo

## browser: Debian's chromium for the page tests (root installs it; CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  [ "$$(id -u)" -eq 0 ] || { echo "chromium is missing: run 'apt-get install -y chromium' as root"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## make test: install, then format, lint, types, web client unit tests, the whole
## test suite (no prerequisite may be skipped) and the deployment checks.
test: $(STAMP) $(WEBDIST) browser
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	cd $(WEB) && npm test --silent
	CARNET_STRICT_TESTS=1 $(BIN)/pytest
	deploy/check

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

web-test: $(WEBDEPS)
	cd $(WEB) && npm test --silent

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(WEB)/node_modules $(WEB)/dist
