# tickerlake — the two commands: `make demo` and `make test`. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAKE ?= ./lake
PORT ?= 8050
PLOTLY_PARTIAL := src/tickerlake/web/vendor/plotly-partial.min.js

.PHONY: demo test install services-jars lint bench clean browser postgres reliability

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) $(PLOTLY_PARTIAL)

# The dashboard's partial plotly.js, built once with npm when node is on the machine; without
# it the server sends the full bundle of the plotly package.
$(PLOTLY_PARTIAL): scripts/plotly-partial.sh pyproject.toml | $(STAMP)
	@scripts/plotly-partial.sh $@ $(BIN)/python || echo "partial plotly.js not built: the full bundle is served"

# Kafka, S3Proxy, Spark-Iceberg and REST-catalog jars from Maven Central (needs java + mvn); cached in services/lib.
services-jars: install
	$(BIN)/python -m tickerlake.services.jars

# Debian's chromium for the browser tests, when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# Debian's PostgreSQL server (the shared Iceberg catalog of `services up --only postgres`), when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql for the shared-catalog tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi; }

# Type checks (config in pyproject.toml): strict on the pure modules, then the whole package.
MYPY_STRICT := -p tickerlake.insights -m tickerlake.calendar -m tickerlake.lake.inference -m tickerlake.lake.actions \
	-m tickerlake.stream.schema -m tickerlake.stream.ticks -m tickerlake.stream.live.core

lint: install
	$(BIN)/ruff check src tests bench reliability
	$(BIN)/ruff format --check src tests bench reliability
	$(BIN)/mypy $(MYPY_STRICT)
	$(BIN)/mypy src/tickerlake

test: install services-jars browser postgres
	$(BIN)/ruff check src tests bench reliability
	$(BIN)/mypy $(MYPY_STRICT)
	$(BIN)/mypy src/tickerlake
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The full fault suite (the short form runs inside `make test`); report in artifacts/reliability.json.
reliability: install services-jars
	$(BIN)/python -m reliability

demo: install services-jars
	bash scripts/demo.sh "$(LAKE)" "$(PORT)"

bench: install
	$(BIN)/python bench/historical.py
	$(BIN)/python bench/insights.py
	$(BIN)/python bench/web.py --lake $(LAKE)

clean:
	rm -rf $(VENV) lake artifacts .pytest_cache .ruff_cache
