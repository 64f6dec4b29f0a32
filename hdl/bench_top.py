"""A board top that wraps the bare core for resource / fmax measurement (not a product top).

The command beat is shifted in from the UART RX pin (one bit per clock, a beat every
``width`` clocks), spikes are always accepted, and the spike payload and status counters are
XOR-reduced onto the UART TX pin, so synthesis keeps every part of the core while the design
needs two pins. The product top (UART framing, command engine) lives in firmware/.

Clocking: on iCE40 and ECP5 the ``sync`` domain comes from a PLL at ``clock_mhz``
(:mod:`.clocking`; default 48 MHz on iCE40, 100 MHz on ECP5) with a matching clock
constraint, so nextpnr optimises for that target; ``clock_mhz=0`` uses the bare board clock.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Signal

from .clocking import PLLClockDomain, default_clock_mhz
from .config import CoreConfig
from .core import SpikingCore

__all__ = ["CoreBenchTop"]


class CoreBenchTop(Elaboratable):
    """Core + two-pin harness for ``firmware.build.build``."""

    def __init__(self, cfg: CoreConfig, *, clock_mhz: float | None = None) -> None:
        self.cfg = cfg
        self.clock_mhz = clock_mhz
        self.pll: PLLClockDomain | None = None

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        mhz = default_clock_mhz(platform) if self.clock_mhz is None else self.clock_mhz
        if mhz:
            m.domains.sync = ClockDomain("sync")
            m.submodules.pll = self.pll = PLLClockDomain(mhz)
        m.submodules.core = core = SpikingCore(self.cfg)
        uart = platform.request("uart", 0)
        width = len(core.cmd.payload.as_value())
        sr = Signal(width)
        cnt = Signal(range(width + 1))
        m.d.sync += sr.eq((sr << 1) | uart.rx.i)
        m.d.sync += cnt.eq(cnt + 1)
        with m.If(cnt == width):
            m.d.sync += cnt.eq(0)
        m.d.comb += [
            core.cmd.payload.eq(sr),
            core.cmd.valid.eq(cnt == width),
            core.spikes.ready.eq(1),
        ]
        # XOR-reduce in two register stages, so the harness never sets the core's fmax
        terms = [core.spikes.valid & core.spikes.payload.as_value().xor(), core.events.xor(),
                 core.cycles.xor(), core.errors.xor(), core.timestep.xor(), core.busy]
        regs = [Signal(name=f"x{i}") for i in range(len(terms))]
        m.d.sync += [r.eq(t) for r, t in zip(regs, terms, strict=True)]
        x = Signal()
        m.d.sync += x.eq(Cat(*regs).xor())
        m.d.comb += uart.tx.o.eq(x)
        return m
