"""Small gateware blocks the core is built from: queues, a register slice, memory port views.

:class:`FFQueue`
    A FIFO in flip-flops (a ring of registers) with stream ports.
:class:`OutputRegister`
    A stream register slice: the consumer's data path starts at flip-flops.
:class:`BufferedQueue`
    :class:`FFQueue` followed by :class:`OutputRegister` (the spike and segment queues).
:func:`read_port`, :func:`write_port`
    A memory port as its user sees it (address out, data in / out), for component signatures
    whose memory lives in the parent.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, ShapeLike, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BufferedQueue", "FFQueue", "OutputRegister", "at_most_one", "onehot_index", "read_port", "write_port"]


def onehot_index(onehot: Value, width: int, bits: int) -> Value:
    """Binary index (``bits`` wide) of the one set bit of ``onehot`` (no priority chain: bit ``b``
    of the index ORs the inputs whose position has bit ``b`` set)."""
    return Cat(*(Cat(*(onehot[k] for k in range(width) if (k >> b) & 1)).any() for b in range(bits)))


def at_most_one(bits: Value) -> Value:
    """``bits`` has at most one bit set, i.e. ``(bits & (bits - 1)) == 0``, as a balanced tree
    (zero / at most one, per half) instead of a carry chain followed by a wide compare."""

    def tree(lo: int, hi: int) -> tuple[Value, Value]:
        if hi - lo == 1:
            return ~bits[lo], Const(1)
        mid = (lo + hi) // 2
        z1, o1 = tree(lo, mid)
        z2, o2 = tree(mid, hi)
        return z1 & z2, (o1 & z2) | (z1 & o2)

    return tree(0, len(bits))[1] if len(bits) else Const(1)


def read_port(addr_bits: int, shape: ShapeLike) -> wiring.Signature:
    """``lib.memory.ReadPort.Signature`` seen from the port's user: ``addr`` out, ``data`` in
    (``en`` is left at its initial 1: every read port of the core is always enabled)."""
    return memory.ReadPort.Signature(addr_width=addr_bits, shape=shape).flip()


def write_port(addr_bits: int, shape: ShapeLike) -> wiring.Signature:
    """``lib.memory.WritePort.Signature`` seen from the port's user: ``en``, ``addr``, ``data`` out."""
    return memory.WritePort.Signature(addr_width=addr_bits, shape=shape).flip()


class FFQueue(wiring.Component):
    """A small FIFO in flip-flops: a ring of registers, asynchronous read.

    Not a ``lib.fifo.SyncFIFO``: its storage is a ``lib.memory.Memory``, and where a register
    follows the read data (:class:`BufferedQueue`) synthesis turns that into block RAM, which
    the core cannot spare.

    Parameters
    ----------
    shape
        The entry shape (e.g. a ``lib.data`` layout).
    depth
        Entries.

    Members
    -------
    w : In(stream.Signature(shape, always_ready=True))
        Push. Never refused: the users keep a credit of the free places (from ``level``) and
        never push into a full queue.
    r : Out(stream.Signature(shape))
        The head (written in one cycle, there the next); popped when ``valid`` and ``ready``.
    level : Out(range(depth + 1))
        Entries in the queue.
    """

    def __init__(self, shape: ShapeLike, depth: int) -> None:
        self.shape, self.depth = shape, depth
        super().__init__({
            "w": In(stream.Signature(shape, always_ready=True)),
            "r": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        width = Shape.cast(self.shape).width
        ring = Array(Signal(width, name=f"slot{i}") for i in range(self.depth))
        wp = Signal(range(self.depth))
        rp = Signal(range(self.depth))
        pop = Signal()
        m.d.comb += [self.r.valid.eq(self.level != 0), pop.eq(self.r.ready & self.r.valid),
                     self.r.payload.eq(ring[rp])]
        with m.If(self.w.valid):
            m.d.sync += [ring[wp].eq(self.w.payload), wp.eq(Mux(wp == self.depth - 1, 0, wp + 1))]
        with m.If(pop):
            m.d.sync += rp.eq(Mux(rp == self.depth - 1, 0, rp + 1))
        m.d.sync += self.level.eq(self.level + self.w.valid - pop)
        return m


class OutputRegister(wiring.Component):
    """A register slice: ``o`` is ``i`` delayed by one register (loaded whenever it is empty or
    being taken), so ``o.payload`` and ``o.valid`` come straight from flip-flops.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape: ShapeLike) -> None:
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


class BufferedQueue(FFQueue):
    """:class:`FFQueue` with its head in an :class:`OutputRegister` (the read mux ends in FFs).

    The members are :class:`FFQueue`'s; ``r`` is the registered head and ``level`` counts
    the entries in the queue, not the one in the output register (``r.valid``).
    """

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.queue = queue = FFQueue(self.shape, self.depth)
        m.submodules.head = head = OutputRegister(self.shape)
        wiring.connect(m, wiring.flipped(self.w), queue.w)
        wiring.connect(m, queue.r, head.i)
        wiring.connect(m, head.o, wiring.flipped(self.r))
        m.d.comb += self.level.eq(queue.level)
        return m
