# Two commands do all the set-up on a fresh machine:
#   make demo   - the clinic CRM on the embedded SQLite default, at http://127.0.0.1:8000
#   make test   - the whole test suite, on SQLite and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast check lint lint-js types bench bench-quick clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/formloom serve --demo

# One test process per core (pytest-xdist): each has its own SQLite files and PostgreSQL
# database (tests/conftest.py). The browser tests run after the rest, in a second run where
# a test file runs whole in one process (--dist loadfile): some build on the ones before
# them in their file, on that process's demo server; and Playwright's event loop must not
# come before pytest-asyncio's in a process. Between the two, the record, permission, report
# and app-change tests again with the forms' typed projections off: every read then takes
# the JSON path, which must answer the same (docs/architecture.md, "Storage"); the two files
# that compare the projection with the documents need a projection, so they are left out.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --ignore=tests/ui
	FORMLOOM_TYPED_PROJECTIONS=off $(BIN)/python -m pytest -q -n auto tests/platform/records \
		tests/platform/permissions tests/platform/reports tests/platform/apps \
		--ignore=tests/platform/records/test_projections.py \
		--ignore=tests/platform/reports/test_report_projection.py
	$(BIN)/python -m pytest -q -n auto --dist loadfile tests/ui

# The inner loop, under a minute: SQLite only, the engines and the record API, without the
# browser tests and the few tests marked slow. It is a subset; `make test` is what CI runs.
test-fast: $(STAMP)
	FORMLOOM_TEST_POSTGRES=skip $(BIN)/python -m pytest -q tests/engines tests/platform/records \
		-k "not postgresql" -m "not slow"

lint: $(STAMP) lint-js
	$(BIN)/ruff check platform engines tests builtin_apps migrations setup.py
	$(BIN)/ruff format --check platform engines tests builtin_apps migrations setup.py

# ESLint over the browser modules (ui/static) and the Node tests (tests/ui/*.mjs), at the
# exact versions of package-lock.json; nothing is built, the files are served as they are.
lint-js: node_modules/.package-lock.json
	npx --no-install eslint

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# mypy cannot follow the editable install's folder mapping, so it is given a package root
# in which `formloom` is a link to the repository.
types: $(STAMP)
	mkdir -p .typecheck && ln -sfn .. .typecheck/formloom
	cd .typecheck && MYPYPATH=. ../$(BIN)/mypy --strict --config-file ../pyproject.toml \
		-p formloom.engines.logic -p formloom.engines.forms -p formloom.engines.reports -p formloom.engines.rules \
		-p formloom.engines.apps -p formloom.engines.flows -p formloom.engines.fhir \
		-p formloom.platform

check: lint types test

bench: $(STAMP)
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench.bench_storage

bench-quick: $(STAMP)
	$(BIN)/python -m tests.bench --quick
	$(BIN)/python -m tests.bench.bench_storage --quick

clean:
	rm -rf $(VENV) *.egg-info formloom.db formloom.db-*
