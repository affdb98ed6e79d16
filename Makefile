# ingest: `make run` starts the service, `make test` runs the whole suite (both set themselves up).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export XDG_RUNTIME_DIR ?= /tmp

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv==0.9.*" || $(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies

# The admin console (console/): npm ci when the lock changed, vite build when a source changed.
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html console/vite.config.ts \
	console/tsconfig.json console/package.json
CONSOLE_DEPS := console/node_modules/.installed

$(CONSOLE_DEPS): console/package.json console/package-lock.json console/.npmrc
	cd console && npm ci --no-audit --no-fund
	touch $@

console/dist/index.html: $(CONSOLE_DEPS) $(CONSOLE_SOURCES)
	cd console && npm run build

console: console/dist/index.html ## build the admin console (npm ci + vite build) when it is missing or stale

# tus-js-client (tests/uploads/js): the official tus JavaScript client, for the resumable upload tests
TUS_JS := tests/uploads/js/node_modules/.installed

$(TUS_JS): tests/uploads/js/package.json tests/uploads/js/package-lock.json
	cd tests/uploads/js && npm ci --no-audit --no-fund
	touch $@

tus-js: $(TUS_JS) ## install tus-js-client for the resumable upload tests (npm ci when its lock changed)

chromium: ## install Debian's Chromium for the browser tests when it is missing (CI runs as root)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

dovecot: ## install Debian's Dovecot IMAP server for the IMAP source tests when it is missing (CI runs as root)
	command -v dovecot >/dev/null || test -x /usr/sbin/dovecot || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd)

run: $(STAMP) console ## set up, migrate and start the API + a worker on :8113 (embedded PostgreSQL, embedded engine)
	$(BIN)/ingest migrate
	$(BIN)/ingest serve

test: $(STAMP) console chromium dovecot $(TUS_JS) ## run the whole test suite (connector installs are cached in .ingest/test-connectors)
	INGEST_TEST_CONNECTORS_DIR=$${INGEST_TEST_CONNECTORS_DIR:-$(CURDIR)/.ingest/test-connectors} $(BIN)/pytest -q -p no:cacheprovider -n $${INGEST_TEST_WORKERS:-auto} --dist loadfile

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's formatter and fixes
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

openapi: $(STAMP) ## regenerate openapi.yaml from the app
	$(BIN)/ingest openapi -o openapi.yaml

bench: $(STAMP) dovecot ## run the benchmarks (files and syncs); figures go to bench/out/
	$(BIN)/python bench/run.py

lock: ## recompile requirements.lock from pyproject.toml (no index URLs recorded)
	$(BIN)/uv pip compile pyproject.toml --extra dev --no-emit-index-url --quiet -o requirements.lock

.PHONY: help install console chromium dovecot tus-js run test lint format openapi bench lock
