"""cocotb testbench of the whole board design on its UART pins (started by
``tests/test_board_cocotb.py`` through :func:`spikeforge.sim.rtl.run_cocotb`).

The design under test is :class:`spikeforge.firmware.top.BoardCore` (ports ``clk``, ``rst``,
``rx``, ``tx``, ``idle``). The host sends *phases*; for each phase the testbench drives its
bytes onto ``rx`` bit by bit (8N1, ``div`` clocks per bit, an optional idle gap in clocks after
each byte), then waits until the board is quiet (``idle`` high and ``tx`` high for
``quiet_clocks``) and records every byte a software UART receiver saw on ``tx`` during the
phase. It decodes and compares nothing: the host does that with :mod:`spikeforge.firmware.protocol`.

Parameters (``load_params()``): ``div`` (clocks per bit), ``quiet_clocks``, ``max_wait``
(clocks a phase may take to go quiet after its last byte; past it the phase is marked
``timeout`` and the run stops), ``phases``: a list of ``{"name", "bytes", "gaps"}`` (``gaps``
optional, one entry per byte).

Output (``record_output``): ``phases``, a list of ``{"name", "tx", "timeout", "clocks"}``,
and ``tx_framing_errors`` (stop bits seen low on ``tx``).
"""

from __future__ import annotations

from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from spikeforge.sim.rtl import load_params, record_output

#: Clock period of the simulation (only the ratio to the bit time matters).
CLOCK_NS = 10


class _Listener:
    """Software UART receiver on ``tx``: samples every bit in its middle."""

    def __init__(self, dut: Any, div: int) -> None:
        self.dut = dut
        self.div = div
        self.current: list[int] = []
        self.framing_errors = 0

    async def run(self) -> None:
        """Receive bytes forever, appending each to :attr:`current`."""
        dut, div = self.dut, self.div
        while True:
            if dut.tx.value == 1:
                await FallingEdge(dut.tx)
            await ClockCycles(dut.clk, div // 2)
            if dut.tx.value != 0:  # a glitch, not a start bit
                continue
            byte = 0
            for i in range(8):
                await ClockCycles(dut.clk, div)
                byte |= int(dut.tx.value) << i
            await ClockCycles(dut.clk, div)
            if dut.tx.value != 1:
                self.framing_errors += 1
            self.current.append(byte)


async def _send_byte(dut: Any, byte: int, div: int) -> None:
    """Drive one 8N1 character on ``rx``: start bit, 8 data bits LSB first, stop bit."""
    for bit in (0, *((byte >> i) & 1 for i in range(8)), 1):
        dut.rx.value = bit
        await ClockCycles(dut.clk, div)


async def _wait_quiet(dut: Any, quiet: int, max_wait: int) -> tuple[bool, int]:
    """Wait until ``idle`` and ``tx`` have both been high for ``quiet`` clocks.

    Returns ``(timed_out, clocks waited)``; gives up after ``max_wait`` clocks.
    """
    start = get_sim_time(unit="ns")

    def clocks() -> int:
        return int((get_sim_time(unit="ns") - start) // CLOCK_NS)

    while clocks() < max_wait:
        await ReadOnly()
        if dut.idle.value != 1:
            limit = ClockCycles(dut.clk, max(1, max_wait - clocks()))
            if await First(RisingEdge(dut.idle), limit) is limit:
                break
        await RisingEdge(dut.clk)
        # idle now: it must stay so, with tx idle, for a whole window
        window = ClockCycles(dut.clk, quiet)
        if await First(window, FallingEdge(dut.idle), FallingEdge(dut.tx)) is window:
            return False, clocks()
    return True, clocks()


@cocotb.test()
async def board_phases(dut: Any) -> None:
    """Drive every phase of the parameters file in order on one board instance."""
    params = load_params()
    div = int(params.get("div", 4))
    quiet = int(params.get("quiet_clocks", 40 * div))
    max_wait = int(params.get("max_wait", 2_000_000))
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 8)
    listener = _Listener(dut, div)
    cocotb.start_soon(listener.run())
    results: list[dict[str, Any]] = []
    for phase in params.get("phases", []):
        listener.current = []
        data: list[int] = phase["bytes"]
        gaps: list[int] = phase.get("gaps") or [0] * len(data)
        for byte, gap in zip(data, gaps, strict=True):
            await _send_byte(dut, byte, div)
            if gap:
                await ClockCycles(dut.clk, gap)
        timed_out, clocks = await _wait_quiet(dut, quiet, max_wait)
        results.append({"name": phase.get("name", ""), "tx": list(listener.current),
                        "timeout": timed_out, "clocks": clocks})
        # Partial results survive a later crash or timeout of the simulator.
        record_output("phases", results)
        record_output("tx_framing_errors", listener.framing_errors)
        if timed_out:
            break
    record_output("phases", results)
    record_output("tx_framing_errors", listener.framing_errors)
