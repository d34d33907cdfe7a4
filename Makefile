# Every target creates .venv on first use and installs the project into it. `run` and `test` also
# check the Debian packages they need (scripts/system-deps.sh installs them when run as root); `test`
# installs the Claude Code CLI with npm, when there is npm, for its real-client test.
# `test` also leaves pytest's JUnit XML of the run in .run/reports/junit.xml (for `make report`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-engine bench-compare bench-gateway soak report clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	scripts/system-deps.sh run
	$(BIN)/aws-masker up

test: export AWS_MASKER_JUNIT_XML := .run/reports/junit.xml
test: $(STAMP)
	scripts/system-deps.sh test
	scripts/claude-code.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench-engine: $(STAMP)
	$(BIN)/python load/bench_engine.py --out docs/benchmarks.md

# the engine of another revision against this checkout's, side by side in one process (prints a table;
# by default against 94da8f4, the engine from before the hardening work: BASE=<revision> to change)
BASE ?= 94da8f4
bench-compare: $(STAMP)
	$(BIN)/python load/bench_compare.py --base $(BASE)

bench-gateway: $(STAMP)
	scripts/system-deps.sh run
	$(BIN)/python load/bench_gateway.py --out docs/benchmarks.md

# everything in one run (about 10 minutes): bench-engine, bench-gateway, then the whole stack under
# Locust in five modes (load/bench_stack.py; flags: BENCH_ARGS="--duration 30 --modes 1,3")
bench: $(STAMP)
	scripts/system-deps.sh load
	$(BIN)/python load/bench_stack.py $(BENCH_ARGS)

# A bounded soak of the local stack (monitoring on, 100% sampled, batch 10) under Locust: RSS of every
# process against requests done, until SOAK_REQUESTS or SOAK_MINUTES (about 770 requests/s on a quiet
# 2-core VM, half that on a slower one: 300k in 7 to 14 minutes, long enough for the caches to be full
# before the fitted part, see load/soak.py); writes docs/results/soak-latest.json and soak-rss.png.
# The original's 24 h:
# SOAK_MINUTES=1440 SOAK_REQUESTS=100000000 SOAK_ARGS="--interval 30" (other flags: python load/soak.py --help).
SOAK_REQUESTS ?= 300000
SOAK_MINUTES  ?= 15
SOAK_ARGS     ?=
soak: $(STAMP)
	scripts/system-deps.sh load
	$(BIN)/python load/soak.py --requests $(SOAK_REQUESTS) --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

# tests/test-report/realtime-monitoring-test-YYYYMMDD.md from the latest make test, bench and soak
report: $(STAMP)
	$(BIN)/python load/report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
