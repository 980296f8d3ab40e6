# Every target bootstraps its own virtual environment; a fresh machine needs only python3.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench mutation lint system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A real 10-second mason experiment with every role as a local process.
run: $(STAMP)
	$(VENV)/bin/masonctl run --expduration 10 --nsequence_spaces 2

# System packages the tests need (sshd and iproute2 for the rehearsal testbed), then the suite.
test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP) system-deps
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks.run $(BENCH_ARGS)
	$(PY) -m benchmarks.recovery
	$(PY) -m benchmarks.durable
	$(PY) -m benchmarks.corfu
	$(PY) -m benchmarks.zookeeper
	$(PY) -m benchmarks.linearizability
	$(PY) -m benchmarks.alternatives
	$(PY) -m benchmarks.sequencer

# Not part of `make test`: minutes of planted bugs; the report goes to bench-results/.
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[mutation]'
	$(PY) -m benchmarks.mutation $(MUTATION_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy nodes orchestrator analysis

system-deps:
	bash scripts/system-deps.sh

clean:
	rm -rf $(VENV) results bench-results
