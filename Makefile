# Two commands do all the set-up on a fresh machine:
#   make demo   - the clinic CRM on the embedded SQLite default, at http://127.0.0.1:8000
#   make test   - the whole test suite, on SQLite and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint types bench bench-quick clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/formloom serve --demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check platform engines tests builtin_apps migrations

types: $(STAMP)
	$(BIN)/mypy --strict engines

check: lint types test

bench: $(STAMP)
	$(BIN)/python -m tests.bench

bench-quick: $(STAMP)
	$(BIN)/python -m tests.bench --quick

clean:
	rm -rf $(VENV) *.egg-info formloom.db formloom.db-*
