# spikeforge: two commands on a fresh machine.
#   make demo   evolve a robot controller, compile it, build the iCEBreaker bitstream,
#               drive the robot through the Verilator virtual board (spikeforge demo)
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

BENCHES ?= sim core compile link board evolve convert robot

bench: $(STAMP)
	@for b in $(BENCHES); do $(VENV)/bin/spikeforge bench $$b || exit 1; done

clean:
	rm -rf build .pytest_cache
