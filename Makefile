# The two commands of the README: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# pip older than this is upgraded first; a newer one is used as the venv ships it.
PIP_AT_LEAST := 23

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import pip, sys; sys.exit(int(pip.__version__.split(".")[0]) < $(PIP_AT_LEAST))' \
		|| $(PIP) install --upgrade pip

# One stamp per extras set. The demo needs the package alone; lint and tests add the test
# extras and the recipes' Airflow and Dagster, which include the package, so they stamp both.
$(VENV)/installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test,recipes]'
	touch $@ $(VENV)/installed

demo: $(VENV)/installed
	$(BIN)/sfmc-source demo

lint: $(VENV)/installed-test
	$(BIN)/ruff check src tests bench recipes
	$(BIN)/ruff format --check src tests bench recipes
	$(BIN)/mypy
	$(BIN)/mypy bench/emulator.py bench/sync.py bench/email_bodies.py bench/events_postgres.py

# On every core: each test has its own emulator port, temporary directory and Postgres schema.
test: lint
	$(BIN)/pytest -n auto --dist worksteal

# Tens of minutes: the emulator's own speed, then syncs at medium and large scale, 0 and 30 ms,
# and at real SFMC's latency, then body-heavy email syncs and events (into Postgres:
# SFMC_BENCH_POSTGRES, default the local one).
bench: $(VENV)/installed
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/email_bodies.py --destination $${SFMC_BENCH_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
	$(BIN)/python bench/events_postgres.py --destination $${SFMC_BENCH_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo.duckdb
