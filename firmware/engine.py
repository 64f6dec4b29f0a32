"""The command engine: checked request frames in, the spiking core's commands out, replies back.

Implements the board side of :mod:`spikeforge.firmware.protocol` (``firmware/PROTOCOL.md``)
byte by byte, in this order for each committed request frame (the same order as the emulated
board, :mod:`spikeforge.sim.emuboard`):

1. ``UNKNOWN_OP`` / ``BAD_LENGTH`` (:func:`~spikeforge.firmware.protocol.check_payload_length`;
   the beat-multiple test is a subtract loop, a few clocks);
2. IDENTIFY (sets ``last``) and READ_COUNTERS execute at once;
3. sequenced ops: ``seq == last`` → ``DUPLICATE`` re-sending the whole final reply: the Done
   record (the timestep is the core's current one, which no command has changed since; the
   count is kept) and the final spikes, which are still in the reply RAM; any seq
   other than ``last + 1`` → ``BAD_SEQ``; RESET with a foreign fingerprint → ``WRONG_CORE``;
4. execute: LOAD / INPUT / STEP beats go to the core with their ``op`` field forced (WRITE or
   INPUT), RESET sends CLEAR, RUN / STEP send ``RUN n`` and stream the spikes back in ``MORE``
   replies of 62 (the 63rd spike triggers one) and a final reply with the Done record and the
   last 0..60 spikes (61 or 62 left at the end go in one more ``MORE``).

A frame the receiver dropped is answered with a NAK (seq 0, op 0xFF, status ``BAD_CRC`` /
``BAD_FRAME`` / ``OVERFLOW``, payload ``last``); NAKs that pile up while a command runs
collapse into one (the last kind).

Replies are assembled in a 512-byte RAM (one iCE40 EBR): header at ``base``, then the record
(Done, Counters, one byte), then the spikes at a fixed offset 11, so a ``MORE`` reply is the
same bytes with its header at 8 (right before the spikes) and the final reply has it at 0 with
the Done record in between. The IDENTIFY payload is a ROM in the same RAM (its initial
contents at :data:`IDENT_ADDR`), sent with its header just before it. The
:class:`~spikeforge.firmware.framing.FrameSender` appends the CRC and COBS-encodes from the
RAM. The engine never waits on anything that cannot finish: committed frames are complete,
the core finishes every command, the UART always drains.

:class:`CommandEngine` composes five components: :class:`CommandSequencer` (the command FSM:
it takes the frame's bytes, drives the core, posts replies) asks :class:`RequestChecker` for
each request's :class:`Verdict` (steps 1 and 3) over :data:`CHECK_SIGNATURE`, and has
:class:`ReplyWriter` build each reply in :class:`ReplyBuffer`'s RAM and start its sender over
:data:`REPLY_SIGNATURE`; :class:`CounterBank` updates the counters in the same RAM between
requests.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.blocks import write_port
from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.protocol import OP_BITS, Opcode, addr_bits, command_layout, spike_layout

from . import protocol as proto
from .framing import FrameSender, body_layout

__all__ = [
    "CHECK_SIGNATURE", "IDENT_ADDR", "REPLY_SIGNATURE", "SPIKE_ADDR", "CommandEngine", "CommandSequencer",
    "CounterBank", "ReplyBuffer", "ReplyKind", "ReplyWriter", "RequestChecker", "Verdict",
]

#: RAM address of the IDENTIFY payload ROM (its reply header goes in the 3 bytes before it).
IDENT_ADDR = 320
#: RAM address of the first spike of a RUN / STEP reply (after a 3-byte header and Done).
SPIKE_ADDR = proto.REPLY_HEADER_BYTES + proto.DONE_BYTES
#: Spikes buffered before a MORE reply (the protocol's full MORE).
SPIKE_CAP = proto.SPIKES_PER_MORE
#: RAM address of the engine's six u16 counters (frames_ok, frames_bad, duplicates, rejected,
#: overflows, spikes: the tail of the Counters record, in its order), kept in the RAM and
#: updated there (a shared 8-bit adder, while the engine is idle), so READ_COUNTERS sends them
#: in place after the 14 core bytes it writes before them.
CTR_ADDR = 400
CTR_FRAMES_OK, CTR_FRAMES_BAD, CTR_DUPLICATES, CTR_REJECTED, CTR_OVERFLOWS, CTR_SPIKES = range(6)


class ReplyBuffer(wiring.Component):
    """The reply RAM (512 bytes, one iCE40 EBR; the IDENTIFY ROM at :data:`IDENT_ADDR`) and
    the :class:`~spikeforge.firmware.framing.FrameSender` that sends replies from it.

    Parameters
    ----------
    identify
        The IDENTIFY payload (the ROM's contents).

    Members
    -------
    go, start, length : In
        Send the reply body at ``start`` (the sender's; see ``FrameSender``).
    busy : Out(1)
        Sending: the RAM's ports are the sender's.
    borrow, borrow_addr : In
        The RAM's read port reads ``borrow_addr`` instead (only while not ``busy``).
    rd_data : Out(8)
        The read port's data (one clock after the address).
    write : In(write_port(9, 8))
        The reply's bytes and the counters (only while not ``busy``).
    wire : Out(stream.Signature(8))
        Encoded reply frames.
    """

    def __init__(self, identify: bytes) -> None:
        self.identify = bytes(identify)
        super().__init__({
            "go": In(1),
            "start": In(9),
            "length": In(8),
            "busy": Out(1),
            "borrow": In(1),
            "borrow_addr": In(9),
            "rd_data": Out(8),
            "write": In(write_port(9, 8)),
            "wire": Out(stream.Signature(8)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        init = [0] * 512
        init[IDENT_ADDR:IDENT_ADDR + len(self.identify)] = list(self.identify)
        m.submodules.ram = ram = Memory(shape=8, depth=512, init=init)
        rd, wr = ram.read_port(transparent_for=()), ram.write_port()
        m.submodules.snd = snd = FrameSender(proto.CRC_ALGORITHM(8), 9)
        wiring.connect(m, snd.wire, wiring.flipped(self.wire))
        m.d.comb += [
            snd.go.eq(self.go), snd.start.eq(self.start), snd.length.eq(self.length), self.busy.eq(snd.busy),
            rd.addr.eq(Mux(self.borrow, self.borrow_addr, snd.rd_addr)), snd.rd_data.eq(rd.data),
            self.rd_data.eq(rd.data),
            wr.en.eq(snd.wr_en | self.write.en),  # never both: the engine writes only while the sender is idle
            wr.addr.eq(Mux(snd.wr_en, snd.wr_addr, self.write.addr)),
            wr.data.eq(Mux(snd.wr_en, snd.wr_data, self.write.data)),
        ]
        return m


class CounterBank(wiring.Component):
    """The engine's six u16 counters, kept in the reply RAM at :data:`CTR_ADDR` and updated
    there one at a time (read the low byte, write it + 1 while reading the high byte, write
    that + the carry: a shared 8-bit adder) while the engine is idle.

    Members
    -------
    inc : In(6)
        Counters to increment (bit ``k``: counter ``k``, e.g. :data:`CTR_SPIKES`), pulses;
        kept pending until updated.
    spikes : In(16)
        What :data:`CTR_SPIKES` adds instead of 1.
    pending : Out(1)
        Updates are pending.
    start : In(1)
        Update the lowest pending counter (the RAM's ports are free for the next 3 clocks).
    done : Out(1)
        The update's last clock.
    borrow, borrow_addr : Out
        The RAM's read port (see :class:`ReplyBuffer`).
    rd_data : In(8)
        Its data.
    write : Out(write_port(9, 8))
        The RAM's write port.
    """

    def __init__(self) -> None:
        super().__init__({
            "inc": In(6),
            "spikes": In(16),
            "pending": Out(1),
            "start": In(1),
            "done": Out(1),
            "borrow": Out(1),
            "borrow_addr": Out(9),
            "rd_data": In(8),
            "write": Out(write_port(9, 8)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        pend, pend_clr = Signal(6), Signal(6)
        uc = Signal(3)  # the counter being updated
        carry = Signal()
        u_hi = Signal()  # updating the high byte (adds the carry) rather than the low one (adds 1)
        u_sum = Signal(9)
        is_spk = uc == CTR_SPIKES
        m.d.comb += u_sum.eq(self.rd_data + Mux(is_spk, Mux(u_hi, self.spikes[8:], self.spikes[:8]), ~u_hi)
                             + (u_hi & carry))
        m.d.comb += [self.write.addr.eq(CTR_ADDR + Cat(u_hi, uc)), self.write.data.eq(u_sum[:8])]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    lowest = Signal(3)
                    for k in reversed(range(6)):
                        with m.If(pend[k]):
                            m.d.comb += lowest.eq(k)
                    m.d.comb += [self.borrow.eq(1), self.borrow_addr.eq(CTR_ADDR + Cat(Const(0, 1), lowest))]
                    m.d.sync += [uc.eq(lowest), carry.eq(0)]
                    m.next = "LO"
            with m.State("LO"):  # rd_data: the low byte; write it + 1 (or + spikes), read the high
                m.d.comb += [self.borrow.eq(1), self.borrow_addr.eq(CTR_ADDR + Cat(Const(1, 1), uc)),
                             self.write.en.eq(1)]
                m.d.sync += carry.eq(u_sum[8])
                m.next = "HI"
            with m.State("HI"):
                m.d.comb += [u_hi.eq(1), self.write.en.eq(1), pend_clr.eq(1 << uc), self.done.eq(1)]
                m.next = "IDLE"
        m.d.sync += pend.eq((pend & ~pend_clr) | self.inc)
        m.d.comb += self.pending.eq(pend != 0)
        return m


class Verdict(enum.Enum, shape=3):
    """What the :class:`RequestChecker` makes of a request, in the order it checks (the first
    that applies)."""

    UNKNOWN_OP = 0  #: not an op of the protocol
    BAD_LENGTH = 1  #: the payload length does not fit the op
    IDENTIFY = 2  #: IDENTIFY: execute (opens a session)
    READ_COUNTERS = 3  #: READ_COUNTERS: execute
    DUPLICATE = 4  #: a sequenced op with ``seq == last``: re-send the final reply
    BAD_SEQ = 5  #: a sequenced op with ``seq`` other than ``last + 1``
    RESET = 6  #: RESET in sequence: check the fingerprint, then clear
    EXECUTE = 7  #: LOAD / INPUT / RUN / STEP in sequence


class ReplyKind(enum.Enum, shape=3):
    """The shape of a reply: where its header goes and what follows the status byte."""

    PLAIN = 0  #: header, and ``last`` / ``last + 1`` for a NAK / BAD_SEQ
    DONE = 1  #: header and the Done record
    COUNTERS = 2  #: header, the core's Counters bytes, the RAM counters in place
    IDENT = 3  #: header before the IDENTIFY ROM
    MORE = 4  #: header before the spikes (a MORE reply)
    FINAL = 5  #: header, the Done record, the spikes


#: The command sequencer's side of the :class:`RequestChecker` (the checker's is flipped).
CHECK_SIGNATURE = wiring.Signature({
    "take_seq": Out(1),  # the frame byte on ``data`` is the seq
    "take_op": Out(1),  # the frame byte on ``data`` is the op: start the length checks
    "last": Out(8),  # the seq of the last executed command
    "ready": In(1),  # the length checks have finished: ``verdict`` holds from the next clock
    "verdict": In(Verdict),
    "seq": In(8),
    "op": In(8),
})

#: The command sequencer's side of the :class:`ReplyWriter` (the writer's is flipped).
REPLY_SIGNATURE = wiring.Signature({
    "post": Out(1),  # latch ``status`` and ``kind``: the next reply
    "status": Out(8),
    "kind": Out(ReplyKind),
    "send": Out(1),  # build the posted reply once the sender is idle and send it (hold until ``sent``)
    "sent": In(1),  # the sender has been started (last clock of ``send``)
    "more": In(1),  # the posted reply is a MORE reply
    "rewind": Out(1),  # no spikes buffered
    "pack": Out(1),  # write the spike on the writer's ``spike`` into the RAM (hold until ``packed``)
    "packed": In(1),  # its last byte is written
    "full": In(1),  # a MORE reply's worth of spikes is buffered
    "spill": In(1),  # more spikes are buffered than a final reply holds
})


class RequestChecker(wiring.Component):
    """Latches a request's seq and op and decides what to do with it: the op, its payload
    length (:func:`~spikeforge.firmware.protocol.check_payload_length`; the beat-multiple test
    is a subtract loop, one clock per beat) and its sequence number.

    The verdict is registered (it is off the board design's critical path: the ``seq`` / ``last``
    compare no longer feeds the sequencer's enables). It holds one clock after ``ready`` rises:
    the sequencer reads it in its state after the one that saw ``ready``, and its inputs (``seq``
    and ``op`` latched before, ``x`` done, ``last`` changed only by the previous request) have
    not changed since.

    Parameters
    ----------
    beat
        Bytes per core command beat (:func:`~spikeforge.firmware.protocol.beat_bytes`).

    Members
    -------
    data : In(8)
        The frame's byte.
    length : In(8)
        The frame's body length (seq, op, payload; the receiver's, valid with the op byte).
    ctl : In(CHECK_SIGNATURE)
        Latch commands in, the verdict out.
    """

    def __init__(self, beat: int) -> None:
        self.beat = beat
        super().__init__({"data": In(8), "length": In(8), "ctl": In(CHECK_SIGNATURE)})

    def elaborate(self, platform: Any) -> Module:
        m, nb, c, Op = Module(), self.beat, self.ctl, proto.Op
        seq, op, plen, x = Signal(8), Signal(8), Signal(8), Signal(8)
        with m.If(c.take_seq):
            m.d.sync += seq.eq(self.data)
        with m.If(c.take_op):  # x: the beats' bytes, less beats while at least one is left
            m.d.sync += [op.eq(self.data), plen.eq(self.length - 2),
                         x.eq(self.length - 2 - Cat(Const(0, 1), self.data == Op.STEP))]
        with m.Elif(x >= nb):
            m.d.sync += x.eq(x - nb)
        beats_ok = (plen != 0) & (x == 0)
        len_ok, known = Signal(), Signal()
        with m.Switch(op):
            with m.Case(Op.IDENTIFY, Op.READ_COUNTERS):
                m.d.comb += [known.eq(1), len_ok.eq(plen == 0)]
            with m.Case(Op.RESET):
                m.d.comb += [known.eq(1), len_ok.eq((plen == 0) | (plen == 8))]
            with m.Case(Op.LOAD, Op.INPUT):
                m.d.comb += [known.eq(1), len_ok.eq(beats_ok)]
            with m.Case(Op.RUN):
                m.d.comb += [known.eq(1), len_ok.eq(plen == 2)]
            with m.Case(Op.STEP):
                m.d.comb += [known.eq(1), len_ok.eq((plen >= 2) & (x == 0))]
        V = Verdict
        with m.If(~known):
            m.d.sync += c.verdict.eq(V.UNKNOWN_OP)
        with m.Elif(~len_ok):
            m.d.sync += c.verdict.eq(V.BAD_LENGTH)
        with m.Elif(op == Op.IDENTIFY):
            m.d.sync += c.verdict.eq(V.IDENTIFY)
        with m.Elif(op == Op.READ_COUNTERS):
            m.d.sync += c.verdict.eq(V.READ_COUNTERS)
        with m.Elif(seq == c.last):
            m.d.sync += c.verdict.eq(V.DUPLICATE)
        with m.Elif(seq != (c.last + 1)[:8]):
            m.d.sync += c.verdict.eq(V.BAD_SEQ)
        with m.Elif(op == Op.RESET):
            m.d.sync += c.verdict.eq(V.RESET)
        with m.Else():
            m.d.sync += c.verdict.eq(V.EXECUTE)
        m.d.comb += [c.ready.eq(x < nb), c.seq.eq(seq), c.op.eq(op)]
        return m


class ReplyWriter(wiring.Component):
    """Writes replies into the :class:`ReplyBuffer`'s RAM and starts its sender: the header
    (``seq``, ``op | 0x80``, status; a NAK's is ``0, 0xFF``), the NAK / BAD_SEQ byte, the Done
    or Counters record, and the spikes of a RUN / STEP (at :data:`SPIKE_ADDR` on, 4 bytes each),
    one byte per clock.

    Parameters
    ----------
    cfg
        The core configuration.
    identify_bytes
        Length of the IDENTIFY payload.

    Members
    -------
    ctl : In(REPLY_SIGNATURE)
        From the command sequencer.
    seq, op, last : In(8)
        The request's seq and op, the last executed seq.
    count, timestep, events, cycles, errors : In
        The record fields: Done.count, the core's status.
    spike : In(spike_layout(cfg))
        The spike ``ctl.pack`` writes.
    busy : In(1)
        The sender is sending (the RAM is its).
    go, start, length : Out
        Start the sender (see :class:`ReplyBuffer`).
    write : Out(write_port(9, 8))
        The RAM's write port.
    """

    def __init__(self, cfg: CoreConfig, identify_bytes: int) -> None:
        self.cfg = cfg
        self.identify_bytes = identify_bytes
        super().__init__({
            "ctl": In(REPLY_SIGNATURE),
            "seq": In(8), "op": In(8), "last": In(8),
            "count": In(32), "timestep": In(cfg.time_bits), "events": In(32), "cycles": In(32), "errors": In(16),
            "spike": In(spike_layout(cfg)),
            "busy": In(1),
            "go": Out(1), "start": Out(9), "length": Out(8),
            "write": Out(write_port(9, 8)),
        })

    def elaborate(self, platform: Any) -> Module:
        m, c, K, S = Module(), self.ctl, ReplyKind, proto.Status
        status, kind = Signal(8), Signal(ReplyKind)
        with m.If(c.post):
            m.d.sync += [status.eq(c.status), kind.eq(c.kind)]
        wa = Signal(9)  # next header / record byte
        spa = Signal(9, init=SPIKE_ADDR)  # next spike byte
        j = Signal(5)  # record byte
        bsel = Signal(2)  # spike byte (wraps to 0 after each spike)
        is_nak = status[4:] == 1  # 0x10..0x12
        n_core = proto.COUNTERS_BYTES - 12  # timestep, events, cycles, core_errors
        base, endp = self._span(m, kind, wa, spa, n_core)
        m.d.comb += [c.more.eq(kind == K.MORE), c.full.eq(spa == SPIKE_ADDR + 4 * SPIKE_CAP),
                     c.spill.eq(spa > SPIKE_ADDR + 4 * proto.SPIKES_PER_FINAL)]
        with m.If(c.rewind):
            m.d.sync += spa.eq(SPIKE_ADDR)

        # the record bytes: Done = V[0:8], Counters = V[0:4] + V[8:18] + the RAM counters
        ts32 = Signal(32)
        m.d.comb += ts32.eq(self.timestep)
        vspace = Cat(ts32, self.count, self.events, self.cycles, self.errors)
        vidx = Signal(5)
        m.d.comb += vidx.eq(j + Cat(Const(0, 2), (kind == K.COUNTERS) & (j >= 4)))
        sp_bytes = Cat(self.spike.neuron, Const(0, 16 - self.cfg.neuron_bits), self.spike.time[:16])
        w_sel = Signal(3)  # 0 none, 1 seq, 2 op, 3 status, 4 extra byte, 5 record, 6 spike
        w_data = self.write.data
        with m.Switch(w_sel):
            with m.Case(1):
                m.d.comb += w_data.eq(Mux(is_nak, 0, self.seq))
            with m.Case(2):
                m.d.comb += w_data.eq(Mux(is_nak, proto.NAK_OP, self.op | proto.REPLY_FLAG))
            with m.Case(3):
                m.d.comb += w_data.eq(status)
            with m.Case(4):
                m.d.comb += w_data.eq(Mux(is_nak, self.last, (self.last + 1)[:8]))
            with m.Case(5):
                with m.Switch(vidx):
                    for k in range(len(vspace) // 8):
                        with m.Case(k):
                            m.d.comb += w_data.eq(vspace[8 * k:8 * k + 8])
            with m.Case(6):
                with m.Switch(bsel):
                    for k in range(4):
                        with m.Case(k):
                            m.d.comb += w_data.eq(sp_bytes[8 * k:8 * k + 8])
        m.d.comb += [self.write.en.eq(w_sel != 0), self.write.addr.eq(Mux(w_sel == 6, spa, wa))]
        with m.If((w_sel != 0) & (w_sel < 6)):
            m.d.sync += wa.eq(wa + 1)
        with m.If(c.pack):
            m.d.comb += [w_sel.eq(6), c.packed.eq(bsel == 3)]
            m.d.sync += [bsel.eq(bsel + 1), spa.eq(spa + 1)]

        with m.FSM():
            with m.State("IDLE"):  # the sender's RAM ports are free once it is idle
                with m.If(c.send & ~self.busy):
                    m.d.sync += [wa.eq(base), j.eq(0)]
                    m.next = "HDR0"
            for state, sel, nxt in (("HDR0", 1, "HDR1"), ("HDR1", 2, "HDR2"), ("HDR2", 3, "SEND"),
                                    ("XBYTE", 4, "SEND")):
                with m.State(state):
                    m.d.comb += w_sel.eq(sel)
                    m.next = nxt
                    if state == "HDR2":
                        with m.If((kind == K.PLAIN) & (is_nak | (status == S.BAD_SEQ))):
                            m.next = "XBYTE"
                        with m.If((kind == K.DONE) | (kind == K.COUNTERS) | (kind == K.FINAL)):
                            m.next = "REC"
            with m.State("REC"):
                m.d.comb += w_sel.eq(5)
                m.d.sync += j.eq(j + 1)
                with m.If(j == Mux(kind == K.COUNTERS, n_core - 1, proto.DONE_BYTES - 1)):
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [self.go.eq(1), self.start.eq(base), self.length.eq((endp - base)[:8]), c.sent.eq(1)]
                with m.If(kind == K.MORE):
                    m.d.sync += spa.eq(SPIKE_ADDR)
                m.next = "IDLE"
        return m

    def _span(self, m: Module, kind: Signal, wa: Signal, spa: Signal, n_core: int) -> tuple[Signal, Signal]:
        """The reply's first RAM address (its header) and the address after its last byte."""
        K = ReplyKind
        base, endp = Signal(9), Signal(9)
        with m.Switch(kind):
            with m.Case(K.MORE):
                m.d.comb += base.eq(SPIKE_ADDR - proto.REPLY_HEADER_BYTES)
            with m.Case(K.IDENT):
                m.d.comb += base.eq(IDENT_ADDR - proto.REPLY_HEADER_BYTES)
            with m.Case(K.COUNTERS):
                m.d.comb += base.eq(CTR_ADDR - n_core - proto.REPLY_HEADER_BYTES)
        with m.Switch(kind):
            with m.Case(K.MORE, K.FINAL):
                m.d.comb += endp.eq(spa)
            with m.Case(K.IDENT):
                m.d.comb += endp.eq(IDENT_ADDR + self.identify_bytes)
            with m.Case(K.COUNTERS):
                m.d.comb += endp.eq(CTR_ADDR + 12)
            with m.Default():
                m.d.comb += endp.eq(wa)
        return base, endp


class Registers(NamedTuple):
    """The :class:`CommandSequencer`'s registers shared by its states."""

    steps: Signal  #: RUN / STEP's step count
    then_run: Signal  #: RUN / STEP: run after the beats
    sr: Signal  #: the beat being assembled (little-endian: the first byte ends up lowest)
    cop: Signal  #: the core opcode the beats carry
    nbyte: Signal  #: byte of the beat / of the fingerprint
    wrong: Signal  #: RESET's fingerprint differs


class CommandSequencer(wiring.Component):
    """The command FSM: takes a checked request frame byte by byte, executes it on the core,
    and has its replies written and sent (one request at a time; counter updates and NAKs
    between requests).

    Parameters
    ----------
    cfg
        The core configuration.
    fp_addr
        RAM address of the core's fingerprint (inside the IDENTIFY ROM), which a RESET's is
        compared with.

    Members
    -------
    frame : In(stream.Signature(body_layout()))
        Committed request bodies.
    drop, drop_kind : In
        The receiver dropped a frame (answered with a NAK once idle; NAKs piling up while a
        command runs collapse into one, of the last kind).
    check : Out(CHECK_SIGNATURE)
        The :class:`RequestChecker`.
    reply : Out(REPLY_SIGNATURE)
        The :class:`ReplyWriter`.
    cmd : Out(stream.Signature(command_layout(cfg)))
        To the core.
    spikes : In(stream.Signature(spike_layout(cfg)))
        From the core (the writer takes the payload).
    core_busy : In(1)
        The core is executing.
    count : Out(32)
        Done.count: beats accepted or spikes sent by the last executed command.
    inc : Out(6)
        Counter increments (:class:`CounterBank`'s ``inc``; the receiver's are added outside).
    ctr_pending, ctr_start, ctr_done
        The :class:`CounterBank`'s ``pending``, ``start``, ``done``.
    buf_busy : In(1)
        The sender is sending.
    borrow, borrow_addr, rd_data
        The RAM's read port (RESET's fingerprint compare; see :class:`ReplyBuffer`).
    idle : Out(1)
        Waiting for a frame, nothing to send.
    """

    def __init__(self, cfg: CoreConfig, fp_addr: int) -> None:
        self.cfg = cfg
        self.fp_addr = fp_addr
        self.nb = proto.beat_bytes(cfg)
        super().__init__({
            "frame": In(stream.Signature(body_layout())),
            "drop": In(1), "drop_kind": In(2),
            "check": Out(CHECK_SIGNATURE),
            "reply": Out(REPLY_SIGNATURE),
            "cmd": Out(stream.Signature(command_layout(cfg))),
            "spikes": In(stream.Signature(spike_layout(cfg))),
            "core_busy": In(1),
            "count": Out(32),
            "inc": Out(6),
            "ctr_pending": In(1), "ctr_start": Out(1), "ctr_done": In(1),
            "buf_busy": In(1),
            "borrow": Out(1), "borrow_addr": Out(9), "rd_data": In(8),
            "idle": Out(1),
        })

    def _post(self, status: int | Value, kind: ReplyKind) -> list:
        """Post the next reply (built and sent in state REPLY)."""
        return [self.reply.post.eq(1), self.reply.status.eq(status), self.reply.kind.eq(kind)]

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        S, K, f, nb = proto.Status, ReplyKind, self.frame, self.nb
        last = Signal(8, init=0xFF)
        fdone = Signal()  # the frame's last byte has been consumed
        nak_pending, nak_kind = Signal(), Signal(2)
        r = Registers(steps=Signal(16), then_run=Signal(), sr=Signal(8 * nb), cop=Signal(OP_BITS),
                  nbyte=Signal(range(max(nb, 8) + 1)), wrong=Signal())
        width = len(self.cmd.payload.as_value())
        m.d.comb += [self.check.last.eq(last), self.cmd.payload.as_value().eq(Cat(r.cop, r.sr[OP_BITS:width]))]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.ctr_pending & ~self.buf_busy):
                    m.d.comb += self.ctr_start.eq(1)
                    m.next = "COUNTERS"
                with m.Elif(nak_pending & ~self.buf_busy):
                    m.d.comb += self._post(S.BAD_CRC | nak_kind, K.PLAIN)
                    m.d.sync += nak_pending.eq(0)
                    m.next = "REPLY"
                with m.Elif(f.valid):
                    m.d.comb += [f.ready.eq(1), self.check.take_seq.eq(1)]
                    m.next = "OPB"
            with m.State("COUNTERS"):  # the counter bank updates one counter (2 clocks)
                with m.If(self.ctr_done):
                    m.next = "IDLE"
            with m.State("OPB"):
                m.d.comb += f.ready.eq(1)
                with m.If(f.valid):
                    m.d.comb += self.check.take_op.eq(1)
                    m.d.sync += fdone.eq(f.payload.last)
                    m.next = "MOD"
            with m.State("MOD"):  # the checker's length arithmetic
                with m.If(self.check.ready):
                    m.next = "CHECK"
            with m.State("CHECK"):
                self._dispatch(m, last, r)
            self._reset(m, last, fdone, r)
            self._beats(m, fdone, r)
            self._run(m, r)
            with m.State("DRAIN"):  # consume what is left of the frame, then reply
                with m.If(fdone):
                    m.next = "REPLY"
                with m.Else():
                    m.d.comb += f.ready.eq(1)
                    with m.If(f.valid):
                        m.d.sync += fdone.eq(f.payload.last)
            with m.State("REPLY"):  # the writer builds the posted reply and starts the sender
                m.d.comb += self.reply.send.eq(1)
                with m.If(self.reply.sent):
                    m.next = "IDLE"
                    with m.If(self.reply.more):
                        m.next = "RUNWAIT"
        with m.If(self.drop):
            m.d.sync += [nak_pending.eq(1), nak_kind.eq(self.drop_kind)]
        m.d.comb += self.idle.eq(fsm.ongoing("IDLE") & ~nak_pending & ~self.buf_busy & ~f.valid)
        return m

    def _dispatch(self, m: Module, last: Signal, r: Registers) -> None:
        """State CHECK: act on the checker's verdict."""
        S, K, V, Op, c = proto.Status, ReplyKind, Verdict, proto.Op, self.check
        m.next = "DRAIN"
        with m.Switch(c.verdict):
            with m.Case(V.UNKNOWN_OP):
                m.d.comb += [*self._post(S.UNKNOWN_OP, K.PLAIN), self.inc[CTR_REJECTED].eq(1)]
            with m.Case(V.BAD_LENGTH):
                m.d.comb += [*self._post(S.BAD_LENGTH, K.PLAIN), self.inc[CTR_REJECTED].eq(1)]
            with m.Case(V.IDENTIFY):
                m.d.comb += self._post(S.OK, K.IDENT)
                m.d.sync += last.eq(c.seq)
            with m.Case(V.READ_COUNTERS):
                m.d.comb += self._post(S.OK, K.COUNTERS)
            with m.Case(V.DUPLICATE):  # Done + the final reply's spikes, still in the RAM
                m.d.comb += [*self._post(S.DUPLICATE, K.FINAL), self.inc[CTR_DUPLICATES].eq(1)]
            with m.Case(V.BAD_SEQ):
                m.d.comb += [*self._post(S.BAD_SEQ, K.PLAIN), self.inc[CTR_REJECTED].eq(1)]
            with m.Case(V.RESET):
                m.d.sync += [r.nbyte.eq(0), r.wrong.eq(0)]
                m.next = "FP"
            with m.Case(V.EXECUTE):
                run = (c.op == Op.RUN) | (c.op == Op.STEP)
                m.d.comb += self.reply.rewind.eq(1)
                m.d.sync += [last.eq(c.seq), self.count.eq(0), r.nbyte.eq(0), r.then_run.eq(run),
                             r.cop.eq(Mux(c.op == Op.LOAD, Opcode.WRITE.value, Opcode.INPUT.value))]
                m.next = "BEATS"
                with m.If(run):
                    m.next = "STEPS0"

    def _reset(self, m: Module, last: Signal, fdone: Signal, r: Registers) -> None:
        """RESET: compare the optional fingerprint byte by byte (the RAM's copy), then CLEAR
        the core and wait for it."""
        f = self.frame
        with m.State("FP"):
            with m.If(fdone):
                with m.If(r.wrong):
                    m.d.comb += [*self._post(proto.Status.WRONG_CORE, ReplyKind.PLAIN), self.inc[CTR_REJECTED].eq(1)]
                    m.next = "REPLY"
                with m.Else():
                    m.d.comb += self.reply.rewind.eq(1)
                    m.d.sync += [last.eq(self.check.seq), self.count.eq(0), r.cop.eq(Opcode.CLEAR.value)]
                    m.next = "PUSH_CLR"
            with m.Elif(~self.buf_busy):  # borrow the RAM's read port
                m.d.comb += [self.borrow.eq(1), self.borrow_addr.eq(self.fp_addr + r.nbyte)]
                m.next = "FP_CMP"
        with m.State("FP_CMP"):  # rd_data: the board's fingerprint byte
            m.d.comb += [self.borrow.eq(1), self.borrow_addr.eq(self.fp_addr + r.nbyte), f.ready.eq(1)]
            with m.If(f.valid):
                m.d.sync += [r.nbyte.eq(r.nbyte + 1), fdone.eq(f.payload.last),
                             r.wrong.eq(r.wrong | (f.payload.data != self.rd_data))]
                m.next = "FP"
        with m.State("PUSH_CLR"):
            m.d.comb += self.cmd.valid.eq(1)
            with m.If(self.cmd.ready):
                m.d.sync += r.cop.eq(Opcode.NOP.value)
                m.next = "PUSH_NOP"
        with m.State("PUSH_NOP"):
            # the core takes its next command only once CLEAR has finished (its ``busy`` is
            # low while it clears), so a NOP behind it marks the end of the clear
            m.d.comb += self.cmd.valid.eq(1)
            with m.If(self.cmd.ready):
                m.next = "WAITCORE"
        with m.State("WAITCORE"):
            with m.If(~self.core_busy):
                m.d.comb += self._post(proto.Status.OK, ReplyKind.DONE)
                m.next = "REPLY"

    def _beats(self, m: Module, fdone: Signal, r: Registers) -> None:
        """LOAD / INPUT / STEP: a RUN or STEP's step count, then the beats, one command each."""
        f = self.frame
        with m.State("STEPS0"):
            m.d.comb += f.ready.eq(1)
            with m.If(f.valid):
                m.d.sync += r.steps[:8].eq(f.payload.data)
                m.next = "STEPS1"
        with m.State("STEPS1"):
            m.d.comb += f.ready.eq(1)
            with m.If(f.valid):
                m.d.sync += [r.steps[8:].eq(f.payload.data), fdone.eq(f.payload.last)]
                m.next = "BEATS"
        with m.State("BEATS"):
            with m.If(fdone):
                m.next = "WAITCORE"
                with m.If(r.then_run):
                    m.next = "RUNGO"
            with m.Else():
                m.d.comb += f.ready.eq(1)
                with m.If(f.valid):
                    m.d.sync += [r.sr.eq(Cat(r.sr[8:], f.payload.data)), r.nbyte.eq(r.nbyte + 1),
                                 fdone.eq(f.payload.last)]
                    with m.If(r.nbyte == self.nb - 1):
                        m.d.sync += r.nbyte.eq(0)
                        m.next = "PUSH_BEAT"
        with m.State("PUSH_BEAT"):
            m.d.comb += self.cmd.valid.eq(1)
            with m.If(self.cmd.ready):
                m.d.sync += self.count.eq(self.count + 1)
                m.next = "BEATS"

    def _run(self, m: Module, r: Registers) -> None:
        """RUN / STEP: send ``RUN n`` and collect the spikes into MORE replies and the final one."""
        S, K, rp = proto.Status, ReplyKind, self.reply
        with m.State("RUNGO"):
            m.d.comb += rp.rewind.eq(1)
            m.d.sync += [r.cop.eq(Opcode.RUN.value), r.sr.eq(r.steps << (OP_BITS + addr_bits(self.cfg))),
                         self.count.eq(0)]  # STEP: its INPUT beats are not counted
            m.next = "RUNWAIT"
            with m.If(r.steps != 0):
                m.next = "PUSH_RUN"
        with m.State("PUSH_RUN"):
            m.d.comb += self.cmd.valid.eq(1)
            with m.If(self.cmd.ready):
                m.next = "RUNWAIT"
        with m.State("RUNWAIT"):  # collect spikes until the core is idle
            with m.If(~self.buf_busy):
                with m.If(self.spikes.valid):
                    with m.If(rp.full):
                        m.d.comb += self._post(S.MORE, K.MORE)
                        m.next = "REPLY"
                    with m.Else():
                        m.next = "SPK"
                with m.Elif(~self.core_busy):
                    m.d.comb += [*self._post(S.OK, K.FINAL), self.inc[CTR_SPIKES].eq(~rp.spill)]
                    with m.If(rp.spill):
                        m.d.comb += self._post(S.MORE, K.MORE)
                    m.next = "REPLY"
        with m.State("SPK"):  # the writer writes the spike's 4 bytes
            m.d.comb += rp.pack.eq(1)
            with m.If(rp.packed):
                m.d.comb += self.spikes.ready.eq(1)
                m.d.sync += self.count.eq(self.count + 1)
                m.next = "RUNWAIT"


class CommandEngine(wiring.Component):
    """Executes request frames on a :class:`~spikeforge.hdl.core.SpikingCore`; sends replies.

    Parameters
    ----------
    cfg
        The core configuration.
    identify
        The IDENTIFY payload (:meth:`~spikeforge.firmware.protocol.IdentifyInfo.pack`).

    Members
    -------
    frame, length : In
        Committed request bodies from :class:`~spikeforge.firmware.framing.FrameReceiver`.
    rx_ok, drop, drop_kind : In
        The receiver's commit and drop events (for NAKs and the counters).
    cmd : Out(stream.Signature(command_layout(cfg)))
        To the core.
    spikes : In(stream.Signature(spike_layout(cfg)))
        From the core.
    core_busy, timestep, events, cycles, errors : In
        The core's status.
    wire : Out(stream.Signature(8))
        Encoded reply frames, to the UART transmitter.
    idle : Out(1)
        Waiting for a frame, nothing to send (for the virtual board, which stops simulated
        time while the whole design is idle).
    """

    def __init__(self, cfg: CoreConfig, identify: bytes) -> None:
        if len(identify) != proto.IDENTIFY_BYTES:
            raise ValueError(f"identify payload has {len(identify)} bytes; expected {proto.IDENTIFY_BYTES}")
        self.cfg = cfg
        self.identify = bytes(identify)
        self.nb = proto.beat_bytes(cfg)
        super().__init__({
            "frame": In(stream.Signature(body_layout())),
            "length": In(8),
            "rx_ok": In(1),
            "drop": In(1),
            "drop_kind": In(2),
            "cmd": Out(stream.Signature(command_layout(cfg))),
            "spikes": In(stream.Signature(spike_layout(cfg))),
            "core_busy": In(1),
            "timestep": In(cfg.time_bits),
            "events": In(32),
            "cycles": In(32),
            "errors": In(16),
            "wire": Out(stream.Signature(8)),
            "idle": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.buf = buf = ReplyBuffer(self.identify)
        m.submodules.ctr = ctr = CounterBank()
        m.submodules.chk = chk = RequestChecker(self.nb)
        m.submodules.writer = wr = ReplyWriter(self.cfg, len(self.identify))
        # RESET's fingerprint is compared with the copy inside the IDENTIFY ROM (no logic ROM)
        fp_addr = IDENT_ADDR + self.identify.index(proto.fingerprint_bytes(self.cfg))
        m.submodules.sequencer = sq = CommandSequencer(self.cfg, fp_addr)

        # requests: the receiver's frames through the sequencer, which has the checker judge them
        wiring.connect(m, wiring.flipped(self.frame), sq.frame)
        wiring.connect(m, sq.check, chk.ctl)
        m.d.comb += [chk.data.eq(self.frame.payload.data), chk.length.eq(self.length),
                     sq.drop.eq(self.drop), sq.drop_kind.eq(self.drop_kind)]
        # the core
        wiring.connect(m, sq.cmd, wiring.flipped(self.cmd))
        wiring.connect(m, wiring.flipped(self.spikes), sq.spikes)
        m.d.comb += sq.core_busy.eq(self.core_busy)
        # replies: the sequencer posts them, the writer builds them in the RAM and starts the sender
        wiring.connect(m, sq.reply, wr.ctl)
        m.d.comb += [
            wr.seq.eq(chk.ctl.seq), wr.op.eq(chk.ctl.op), wr.last.eq(sq.check.last), wr.count.eq(sq.count),
            wr.timestep.eq(self.timestep), wr.events.eq(self.events), wr.cycles.eq(self.cycles),
            wr.errors.eq(self.errors), wr.spike.eq(self.spikes.payload),
            wr.busy.eq(buf.busy), buf.go.eq(wr.go), buf.start.eq(wr.start), buf.length.eq(wr.length),
        ]
        wiring.connect(m, buf.wire, wiring.flipped(self.wire))
        # the counters: the receiver's events and the sequencer's, updated in the RAM between requests
        m.d.comb += [
            ctr.inc.eq(sq.inc | (self.rx_ok << CTR_FRAMES_OK) | ((self.drop & (self.drop_kind != 2)) << CTR_FRAMES_BAD)
                       | ((self.drop & (self.drop_kind == 2)) << CTR_OVERFLOWS)),
            ctr.spikes.eq(sq.count[:16]), ctr.start.eq(sq.ctr_start),
            sq.ctr_pending.eq(ctr.pending), sq.ctr_done.eq(ctr.done), sq.buf_busy.eq(buf.busy),
        ]
        # the RAM's ports: the counter bank and RESET's compare borrow the read port, the counter
        # bank and the writer share the write port (one at a time, while the sender is idle)
        m.d.comb += [
            buf.borrow.eq(ctr.borrow | sq.borrow), buf.borrow_addr.eq(Mux(ctr.borrow, ctr.borrow_addr, sq.borrow_addr)),
            ctr.rd_data.eq(buf.rd_data), sq.rd_data.eq(buf.rd_data),
            buf.write.en.eq(wr.write.en | ctr.write.en),
            buf.write.addr.eq(Mux(ctr.write.en, ctr.write.addr, wr.write.addr)),
            buf.write.data.eq(Mux(ctr.write.en, ctr.write.data, wr.write.data)),
        ]
        m.d.comb += self.idle.eq(sq.idle)
        return m
