"""A 1-read + 1-write memory built from iCE40 SB_SPRAM256KA blocks (16K x 16, single port).

The core writes its read-only-while-running tables (segment index, synapse table) only while
idle and reads them only while running, so one SPRAM port serves both: the address is the
write address when ``write_port().en`` is high, else the read address.

Packing: ``slots`` entries share one SPRAM word row (slot stride rounded up to a nibble, so
``MASKWREN`` writes one slot without touching its neighbour); ``lanes`` SPRAMs side by side
give the row width, ``banks`` rows of 16K give the depth. The packing that uses the fewest
SPRAMs is chosen: the up5k synapse table (32K x 19 bits) is 2 slots x 20 bits in 3 lanes
(48-bit rows) x 1 bank = 3 SPRAMs instead of 4.

With ``emulate=True`` each SPRAM is a behavioural 16K x 16 ``lib.memory.Memory`` with a
nibble-granular write port (same MASKWREN semantics), so amaranth.sim can check the packing.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import ClockSignal, Const, Elaboratable, Instance, Module, Mux, Signal
from amaranth.lib import memory

__all__ = ["SPRAMMemory", "spram_packing"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16


def _width(shape: Any) -> int:
    from amaranth.hdl import Shape

    return Shape.cast(shape).width


def spram_packing(width: int, depth: int) -> tuple[int, int, int, int]:
    """``(slots, stride, lanes, banks)`` using the fewest SPRAMs."""
    best = None
    for slots in (1, 2, 4):
        stride = width if slots == 1 else (width + 3) // 4 * 4
        lanes = -(-slots * stride // SPRAM_WIDTH)
        rows = -(-depth // slots)
        banks = -(-rows // SPRAM_DEPTH)
        cost = lanes * banks
        if best is None or cost < best[0]:
            best = (cost, slots, stride, lanes, banks)
    assert best is not None
    return best[1], best[2], best[3], best[4]


class _Port:
    def __init__(self, shape: Any, addr_bits: int) -> None:
        self.addr = Signal(addr_bits)
        self.data = Signal(shape)
        self.en = Signal(init=1)


class SPRAMMemory(Elaboratable):
    """Drop-in for ``lib.memory.Memory`` (one read port, one write port) on SPRAM."""

    def __init__(self, *, shape: Any, depth: int, emulate: bool = False, slots: int | None = None) -> None:
        self.shape = shape
        self.depth = depth
        self.width = _width(shape)
        self.emulate = emulate
        self.slots, self.stride, self.lanes, self.banks = spram_packing(self.width, depth)
        if slots is not None:
            self.slots = slots
            self.stride = self.width if slots == 1 else (self.width + 3) // 4 * 4
            self.lanes = -(-slots * self.stride // SPRAM_WIDTH)
            rows = -(-depth // slots)
            self.banks = -(-rows // SPRAM_DEPTH)
        self.n_spram = self.lanes * self.banks
        self._abits = max(1, (depth - 1).bit_length())
        self._rd: _Port | None = None
        self._wr: _Port | None = None

    def read_port(self, **_: Any) -> _Port:
        """The read port (``data`` valid the cycle after ``addr``)."""
        self._rd = _Port(self.shape, self._abits)
        return self._rd

    def write_port(self, **_: Any) -> _Port:
        """The write port (``en`` high for one cycle writes ``data`` at ``addr``)."""
        self._wr = _Port(self.shape, self._abits)
        self._wr.en = Signal()
        return self._wr

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        rd, wr = self._rd, self._wr
        assert rd is not None and wr is not None
        sb = (self.slots - 1).bit_length()
        row_bits = 14
        addr = Signal(self._abits)
        m.d.comb += addr.eq(Mux(wr.en, wr.addr, rd.addr))
        row = addr[sb:sb + row_bits]
        # the write slot / bank come from the write address alone (keeps the read address
        # off the data-in and write-enable paths); the read side registers its own
        slot = wr.addr[:sb] if sb else Const(0, 1)
        bank = wr.addr[sb + row_bits:] if self.banks > 1 else Const(0, 1)
        rd_slot = Signal(max(1, sb))
        rd_bank = Signal(max(1, (self.banks - 1).bit_length()))
        m.d.sync += [rd_slot.eq(rd.addr[:sb] if sb else 0),
                     rd_bank.eq(rd.addr[sb + row_bits:] if self.banks > 1 else 0)]

        total = self.lanes * SPRAM_WIDTH
        wdata = Signal(total)
        wval = wr.data.as_value() if hasattr(wr.data, "as_value") else wr.data
        m.d.comb += wdata.eq(wval << (slot * self.stride) if sb else wval)
        bank_rows = []
        for b in range(self.banks):
            row_out = Signal(total, name=f"row_out{b}")
            bank_rows.append(row_out)
            for lane in range(self.lanes):
                mask = Signal(4, name=f"mask{b}_{lane}")
                # nibble i of this lane is written when it lies in the addressed slot
                for i in range(4):
                    lo_bit = lane * SPRAM_WIDTH + 4 * i
                    hit = Const(0, 1)
                    for s in range(self.slots):
                        if s * self.stride <= lo_bit < s * self.stride + self.stride and lo_bit < s * self.stride + self.width:
                            hit = hit | ((slot == s) if sb else Const(1, 1))
                    m.d.comb += mask[i].eq(hit)
                we = Signal(name=f"we{b}_{lane}")
                m.d.comb += we.eq(wr.en & (bank == b) & (mask != 0))
                din = wdata[lane * SPRAM_WIDTH:(lane + 1) * SPRAM_WIDTH]
                dout = row_out[lane * SPRAM_WIDTH:(lane + 1) * SPRAM_WIDTH]
                if self.emulate:
                    mem = memory.Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=[])
                    m.submodules[f"spram{b}_{lane}"] = mem
                    r = mem.read_port()
                    w = mem.write_port(granularity=4)
                    m.d.comb += [r.addr.eq(row), w.addr.eq(row), w.data.eq(din), dout.eq(r.data)]
                    for i in range(4):
                        m.d.comb += w.en[i].eq(we & mask[i])
                else:
                    m.submodules[f"spram{b}_{lane}"] = Instance(
                        "SB_SPRAM256KA",
                        i_ADDRESS=row,
                        i_DATAIN=din,
                        i_MASKWREN=mask,
                        i_WREN=we,
                        i_CHIPSELECT=Const(1, 1),
                        i_CLOCK=ClockSignal(),
                        i_STANDBY=Const(0, 1),
                        i_SLEEP=Const(0, 1),
                        i_POWEROFF=Const(1, 1),
                        o_DATAOUT=dout,
                    )
        sel_row = Signal(total)
        m.d.comb += sel_row.eq(bank_rows[0])
        for b in range(1, self.banks):
            with m.If(rd_bank == b):
                m.d.comb += sel_row.eq(bank_rows[b])
        rdata = rd.data.as_value() if hasattr(rd.data, "as_value") else rd.data
        if sb:
            with m.Switch(rd_slot):
                for s in range(self.slots):
                    with m.Case(s):
                        m.d.comb += rdata.eq(sel_row[s * self.stride:s * self.stride + self.width])
        else:
            m.d.comb += rdata.eq(sel_row[:self.width])
        return m
