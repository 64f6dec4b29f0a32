# spikeforge: two commands on a fresh machine.
#   make demo   build a network, simulate it, verify it on the RTL, build a bitstream
#   make test   the test suite (fast default subset + one Verilator run + one bitstream)
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: demo test test-fast test-slow lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikeforge demo

test: $(STAMP)
	$(PY) -m ruff check toolchain hdl firmware sim tests
	$(PY) -m pytest -n $(JOBS) -m "not slow" tests

test-fast: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m "not slow and not synth and not verilator" tests

test-slow: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m "slow" tests

lint: $(STAMP)
	$(PY) -m ruff check toolchain hdl firmware sim tests

bench: $(STAMP)
	$(VENV)/bin/spikeforge bench sim
	$(VENV)/bin/spikeforge bench core

clean:
	rm -rf build .pytest_cache
