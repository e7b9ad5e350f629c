# The two commands: `make run` and `make test`. Both create .venv from requirements.lock first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock

.PHONY: run test lint bench faults lock clean

run: $(STAMP)
	$(BIN)/outcomes run

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/outcomes
	$(BIN)/bandit -q -r shared services --severity-level medium
	$(BIN)/python -m tools.audit

# The long randomized fault run (README "Fault tests"); e.g. make faults FAULTS_ARGS="--seed 7".
FAULTS_ARGS ?=
faults: $(STAMP)
	$(BIN)/python -m faults $(FAULTS_ARGS)

# Performance beside same-run baselines (BENCHMARKS.md): PostgreSQL, Redis, pgbench, Chromium on
# loopback; ~10 minutes. Pass options through, e.g. make bench BENCH_ARGS="--scale-to 0".
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Outcomes needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Re-pin every dependency (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
