# The two commands of the README: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/sfmc-source: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,recipes]'
	touch $@

demo: $(BIN)/sfmc-source
	$(BIN)/sfmc-source demo

lint: $(BIN)/sfmc-source
	$(BIN)/ruff check src tests bench recipes
	$(BIN)/ruff format --check src tests bench recipes
	$(BIN)/mypy
	$(BIN)/mypy bench/emulator.py bench/sync.py bench/email_bodies.py

test: lint
	$(BIN)/pytest

# Several minutes: the emulator's own speed, then syncs at medium and large scale, 0 and 30 ms,
# then body-heavy email syncs (into Postgres: SFMC_BENCH_POSTGRES, default the local one).
bench: $(BIN)/sfmc-source
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/email_bodies.py --destination $${SFMC_BENCH_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo.duckdb
