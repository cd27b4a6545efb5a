# One entry point for people and CI. Everything installs from hash-pinned locks, so every machine runs the
# same versions: requirements.lock is the runtime (what the Docker image installs), requirements-dev.lock the
# runtime plus the test and lint tools (what `make setup` installs). `make lock` regenerates both.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test typecheck lint fmt bench lock locales clean

setup: $(STAMP) locales

# The project itself goes in editable, built with the setuptools the lock just installed (no build isolation:
# pip would otherwise fetch build tools unpinned, around the lock).
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Compiled catalogues are build output (not committed); pybabel comes with Babel.
locales: $(STAMP)
	$(BIN)/pybabel compile --domain messages --directory locales --use-fuzzy --statistics 2>&1 | tail -n 2

run: setup
	$(BIN)/surgedca run

# mypy before the tests: its cache (.mypy_cache) makes a second run take a fraction of a second.
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Regenerate the locks after changing dependencies in pyproject.toml: the runtime first, then the dev lock
# constrained by it, so the packages both hold have the same versions.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		-c requirements.lock -o requirements-dev.lock

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
