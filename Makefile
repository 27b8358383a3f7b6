# crmhub: `make run` starts the mesh with its operator UI; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
CONFIG ?= deploy/config.yaml
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install services migrate run test test-unit bench lint clean

install: $(STAMP)

# Reinstall only when the packaging changed.
$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip 'setuptools<82' wheel
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,lint]'
	@touch $(STAMP)

services:
	@bash deploy/bootstrap-services.sh

migrate: install
	$(BIN)/crmhub migrate --config $(CONFIG)

# The main job: the whole mesh in one process, UI and API on http://127.0.0.1:8000.
# SQLite files under var/ unless DATABASE_URL is set; RabbitMQ at AMQP_URI.
run: install
	@if [ -n "$$DATABASE_URL" ]; then bash deploy/bootstrap-services.sh --no-browser; \
	 else bash deploy/bootstrap-services.sh --broker-only; fi
	$(BIN)/crmhub migrate --config $(CONFIG)
	@echo "crmhub on http://127.0.0.1:8000 (API key: dev-admin-key); Ctrl-C stops it"
	exec $(BIN)/crmhub run --config $(CONFIG)

test: install services
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest -q tests/unit tests/contracts $(PYTEST_ARGS)

bench: install
	@bash deploy/bootstrap-services.sh --no-browser --bench
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf var bench/results .pytest_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +
