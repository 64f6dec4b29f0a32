"""UART receiver and transmitter (8N1) with a fixed clock divisor chosen at build time.

``divisor`` is the number of ``sync`` clocks per bit: ``round(f_clk / baud)``. The
receiver samples each bit in its middle (half a bit after the start edge, then every
``divisor`` clocks), so it tolerates a total clock/baud mismatch of about ±4 % over a frame;
:func:`uart_divisor` refuses a divisor whose rounding error alone exceeds 2 %.

Neither block can wedge: the receiver returns to idle after every stop bit (a framing error,
a line held low, or a glitch only costs that character), and the transmitter is a plain shift
register.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartError", "UartRx", "UartTx", "uart_divisor"]

#: Smallest clocks-per-bit the receiver works with (it needs a middle to sample).
MIN_DIVISOR = 4


class UartError(ValueError):
    """A baud rate the clock cannot produce accurately enough (the message says why)."""


def uart_divisor(clk_hz: float, baud: int, *, tolerance: float = 0.02) -> int:
    """Clocks per bit for ``baud`` at ``clk_hz``.

    Raises
    ------
    UartError
        If the divisor is below :data:`MIN_DIVISOR` or its rounding error exceeds
        ``tolerance`` (the message gives the achieved baud and the fix).
    """
    if baud <= 0:
        raise UartError(f"baud = {baud} is out of range; allowed: > 0")
    div = round(clk_hz / baud)
    if div < MIN_DIVISOR:
        raise UartError(f"baud {baud} is too fast for a {clk_hz / 1e6:g} MHz clock (divisor {clk_hz / baud:.2f}"
                        f" < {MIN_DIVISOR}); use at most {int(clk_hz // MIN_DIVISOR)} baud or a faster clock")
    got = clk_hz / div
    if abs(got - baud) / baud > tolerance:
        raise UartError(f"baud {baud} at {clk_hz / 1e6:g} MHz gives {got:.0f} baud (divisor {div}, "
                        f"{abs(got - baud) / baud:.1%} off; allowed {tolerance:.0%}); choose a clock that is "
                        f"a near multiple of the baud")
    return div


class UartRx(wiring.Component):
    """8N1 receiver.

    Members
    -------
    rx : In(1)
        The line (asynchronous; synchronised here, idle high).
    data : Out(stream.Signature(8))
        Received bytes. ``valid`` stays high until ``ready``; a byte completed while the
        previous one is still waiting replaces it and pulses ``overrun``.
    framing_error : Out(1)
        Pulses when a stop bit reads 0 (the character is dropped).
    overrun : Out(1)
        Pulses when a byte was lost because ``data`` was not taken in time.
    busy : Out(1)
        A character is being received.
    """

    def __init__(self, divisor: int) -> None:
        if divisor < MIN_DIVISOR:
            raise UartError(f"UartRx divisor = {divisor} is out of range; allowed: >= {MIN_DIVISOR}")
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        div = self.divisor
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        busy = Signal()
        timer = Signal(range(div))
        bit = Signal(range(10))  # 0 start, 1..8 data, 9 stop
        shreg = Signal(8)
        m.d.comb += self.busy.eq(busy)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(~busy):
            with m.If(~line):
                m.d.sync += [busy.eq(1), bit.eq(0), timer.eq(div // 2 - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [timer.eq(div - 1), bit.eq(bit + 1)]
            with m.If(bit == 0):
                with m.If(line):  # a glitch, not a start bit
                    m.d.sync += busy.eq(0)
            with m.Elif(bit == 9):
                m.d.sync += busy.eq(0)
                with m.If(line):
                    m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                    m.d.comb += self.overrun.eq(self.data.valid & ~self.data.ready)
                with m.Else():
                    m.d.comb += self.framing_error.eq(1)
            with m.Else():
                m.d.sync += shreg.eq(Cat(shreg[1:], line))
        return m


class UartTx(wiring.Component):
    """8N1 transmitter.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` is high while the shifter is idle.
    tx : Out(1)
        The line (idle high).
    """

    def __init__(self, divisor: int) -> None:
        if divisor < MIN_DIVISOR:
            raise UartError(f"UartTx divisor = {divisor} is out of range; allowed: >= {MIN_DIVISOR}")
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        div = self.divisor
        shreg = Signal(10, init=0x3FF)  # LSB on the line
        left = Signal(range(11))
        timer = Signal(range(div))
        m.d.comb += [self.tx.eq(shreg[0]), self.data.ready.eq(left == 0)]
        with m.If(left == 0):
            with m.If(self.data.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                             left.eq(10), timer.eq(div - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), left.eq(left - 1), timer.eq(div - 1)]
        return m
