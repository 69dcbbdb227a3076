# The two commands of the README: `make demo` and `make test`. Each creates the virtual
# environment on first use, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test lint bench ui clean compose-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/massive-pipeline demo

# the suite in two phases: in parallel on TEST_WORKERS workers, then the `serial` tests alone
TEST_WORKERS ?= 4
test: $(STAMP)
	TEST_WORKERS=$(TEST_WORKERS) TEST_PYTHON=$(BIN)/python bash scripts/run-tests.sh

lint: $(STAMP)
	$(BIN)/ruff check massive_pipeline massive_pipeline_tests benchmarks

# The deployment files: `docker compose config` where the compose plugin exists, and the schema
# and instance-config checks of test_deploy.py everywhere (no Docker engine needed).
compose-check: $(STAMP)
	if docker compose version >/dev/null 2>&1; then docker compose --env-file .env.example config -q; fi
	$(BIN)/python -m pytest -q -p no:cacheprovider massive_pipeline_tests/test_deploy.py

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# The UI after the demo: the bundled server and `dagster dev` wired to it, schedules and sensors
# running, one priority refresh started at once; Ctrl-C stops both. E.g. `make ui UI_ARGS='--port 3001'`.
# Against the real API run `dagster dev` yourself with MASSIVE_API_KEY set (README).
ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/massive-pipeline ui $(UI_ARGS)

clean:
	rm -rf $(VENV) .dagster_home
