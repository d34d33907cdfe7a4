# Every target creates .venv on first use and installs the project into it. `run` and `test` also
# check the Debian packages they need (scripts/system-deps.sh installs them when run as root).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-engine bench-gateway clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,load]'
	touch $(STAMP)

# the load extra (Locust, matplotlib) on top, for `make bench`
LOAD_STAMP := $(VENV)/.installed-load
$(LOAD_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,load]'
	touch $(LOAD_STAMP)

run: $(STAMP)
	scripts/system-deps.sh run
	$(BIN)/aws-masker up

test: $(STAMP)
	scripts/system-deps.sh test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench-engine: $(STAMP)
	$(BIN)/python load/bench_engine.py --out docs/benchmarks.md

bench-gateway: $(STAMP)
	scripts/system-deps.sh run
	$(BIN)/python load/bench_gateway.py --out docs/benchmarks.md

# everything in one run (about 12 minutes): bench-engine, bench-gateway, then the whole stack under
# Locust in five modes (load/bench_stack.py; flags: BENCH_ARGS="--duration 30 --modes 1,3")
bench: $(LOAD_STAMP)
	scripts/system-deps.sh run
	$(BIN)/python load/bench_stack.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
