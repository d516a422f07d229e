# The two set-up commands of the README, and a few conveniences.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install bench memory soak clean

$(BIN)/idp: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/idp

## Run the provider and the demo bookkeeping portal on SQLite with the dev mailbox.
run: install
	$(BIN)/python scripts/demo.py

## Run every test in parallel (IDP_TEST_WORKERS, default 2): on SQLite, and again on PostgreSQL/Redis when IDP_TEST_DATABASE_URL is set.
test: install
	$(BIN)/python scripts/test.py

bench: install
	$(BIN)/python bench/tokens.py

## RSS and PSS of every process of a fresh `idp serve`, idle and after load (bench/README.md).
memory: install
	$(BIN)/python bench/memory.py

## Token latency at half the peak rate for MINUTES (30), with p99 and memory per minute and their growth.
MINUTES ?= 30
soak: install
	$(BIN)/python bench/soak.py --minutes $(MINUTES)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
