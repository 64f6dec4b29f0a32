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
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.blocks import write_port
from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.protocol import OP_BITS, Opcode, addr_bits, command_layout, spike_layout

from . import protocol as proto
from .framing import FrameSender, body_layout

__all__ = ["IDENT_ADDR", "SPIKE_ADDR", "CommandEngine", "CounterBank", "ReplyBuffer"]

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

    def elaborate(self, platform: object) -> Module:  # noqa: C901 - one FSM, read top-down
        cfg, nb = self.cfg, self.nb
        m = Module()
        S, Op = proto.Status, proto.Op

        # ---------------------------------------------------------------- reply RAM + sender
        m.submodules.buf = buf = ReplyBuffer(self.identify)
        wiring.connect(m, buf.wire, wiring.flipped(self.wire))
        m.submodules.ctr = ctr = CounterBank()
        w_en, w_addr, w_data = Signal(), Signal(9), Signal(8)
        u_active, u_addr = Signal(), Signal(9)  # the counters and RESET's compare borrow the read port
        m.d.comb += [
            u_active.eq(ctr.borrow), u_addr.eq(ctr.borrow_addr), ctr.rd_data.eq(buf.rd_data),
            buf.borrow.eq(u_active), buf.borrow_addr.eq(u_addr),
            buf.write.en.eq(w_en | ctr.write.en),
            buf.write.addr.eq(Mux(ctr.write.en, ctr.write.addr, w_addr)),
            buf.write.data.eq(Mux(ctr.write.en, ctr.write.data, w_data)),
        ]

        # ---------------------------------------------------------------- registers
        seq, op, last = Signal(8), Signal(8), Signal(8, init=0xFF)
        plen, x = Signal(8), Signal(8)
        fdone = Signal()  # the frame's last byte has been consumed
        count = Signal(32)  # Done.count of the last executed command
        steps = Signal(16)
        then_run = Signal()
        width = len(self.cmd.payload.as_value())
        sr = Signal(8 * nb)  # beat being assembled (little-endian: the first byte ends up lowest)
        cop = Signal(OP_BITS)
        nbyte = Signal(range(max(nb, 8) + 1))
        wrong = Signal()
        bsel = Signal(2)
        nak_pending, nak_kind = Signal(), Signal(2)
        pend_set = Signal(6)  # counter increments
        # the reply: its status and kind; everything else is derived from them
        status = Signal(8)
        kind = Signal(3)
        K_PLAIN, K_DONE, K_COUNTERS, K_IDENT, K_MORE, K_FINAL = range(6)
        wa = Signal(9)  # next header / record byte
        spa = Signal(9, init=SPIKE_ADDR)  # next spike byte
        j = Signal(5)  # record byte
        more_full = spa == SPIKE_ADDR + 4 * SPIKE_CAP
        more_end = spa > SPIKE_ADDR + 4 * proto.SPIKES_PER_FINAL
        is_nak = status[4:] == 1  # 0x10..0x12
        has_byte = (kind == K_PLAIN) & (is_nak | (status == S.BAD_SEQ))
        base = Signal(9)
        n_core = proto.COUNTERS_BYTES - 12  # timestep, events, cycles, core_errors
        with m.Switch(kind):
            with m.Case(K_MORE):
                m.d.comb += base.eq(SPIKE_ADDR - proto.REPLY_HEADER_BYTES)
            with m.Case(K_IDENT):
                m.d.comb += base.eq(IDENT_ADDR - proto.REPLY_HEADER_BYTES)
            with m.Case(K_COUNTERS):
                m.d.comb += base.eq(CTR_ADDR - n_core - proto.REPLY_HEADER_BYTES)
        endp = Signal(9)
        with m.Switch(kind):
            with m.Case(K_MORE, K_FINAL):
                m.d.comb += endp.eq(spa)
            with m.Case(K_IDENT):
                m.d.comb += endp.eq(IDENT_ADDR + len(self.identify))
            with m.Case(K_COUNTERS):
                m.d.comb += endp.eq(CTR_ADDR + 12)
            with m.Default():
                m.d.comb += endp.eq(wa)

        m.d.comb += self.cmd.payload.as_value().eq(Cat(cop, sr[OP_BITS:width]))

        def reply(st: int, k: int) -> list:
            """Set up a reply (assembled once the sender is idle: state WAITTX)."""
            return [status.eq(st), kind.eq(k)]

        # RESET's fingerprint is compared with the copy inside the IDENTIFY ROM (no logic ROM)
        fp_addr = IDENT_ADDR + self.identify.index(proto.fingerprint_bytes(cfg))

        # the record bytes: Done = V[0:8], Counters = V[0:4] + V[8:18] + the RAM counters
        ts32 = Signal(32)
        m.d.comb += ts32.eq(self.timestep)
        vspace = Cat(ts32, count, self.events, self.cycles, self.errors)
        vidx = Signal(5)
        m.d.comb += vidx.eq(j + Cat(Const(0, 2), (kind == K_COUNTERS) & (j >= 4)))
        spike = self.spikes.payload
        sp_bytes = Cat(spike.neuron, Const(0, 16 - cfg.neuron_bits), spike.time[:16])
        # the engine's RAM writes: header / record bytes at wa, spike bytes at spa
        w_sel = Signal(3)  # 0 none, 1 seq, 2 op, 3 status, 4 extra byte, 5 record, 6 spike
        with m.Switch(w_sel):
            with m.Case(1):
                m.d.comb += w_data.eq(Mux(is_nak, 0, seq))
            with m.Case(2):
                m.d.comb += w_data.eq(Mux(is_nak, proto.NAK_OP, op | proto.REPLY_FLAG))
            with m.Case(3):
                m.d.comb += w_data.eq(status)
            with m.Case(4):
                m.d.comb += w_data.eq(Mux(is_nak, last, (last + 1)[:8]))
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
        m.d.comb += [w_en.eq(w_sel != 0), w_addr.eq(Mux(w_sel == 6, spa, wa))]
        with m.If((w_sel != 0) & (w_sel < 6)):
            m.d.sync += wa.eq(wa + 1)

        # ---------------------------------------------------------------- the FSM
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(ctr.pending & ~buf.busy):
                    m.d.comb += ctr.start.eq(1)
                    m.next = "COUNTERS"
                with m.Elif(nak_pending & ~buf.busy):
                    m.d.sync += [reply(S.BAD_CRC, K_PLAIN), status.eq(S.BAD_CRC | nak_kind), nak_pending.eq(0)]
                    m.next = "WAITTX"
                with m.Elif(self.frame.valid):
                    m.d.comb += self.frame.ready.eq(1)
                    m.d.sync += seq.eq(self.frame.payload.data)
                    m.next = "OPB"
            with m.State("COUNTERS"):  # the counter bank updates one counter (2 clocks)
                with m.If(ctr.done):
                    m.next = "IDLE"
            with m.State("OPB"):
                m.d.comb += self.frame.ready.eq(1)
                with m.If(self.frame.valid):
                    d = self.frame.payload.data
                    m.d.sync += [op.eq(d), fdone.eq(self.frame.payload.last), plen.eq(self.length - 2),
                                 x.eq(self.length - 2 - Cat(Const(0, 1), d == Op.STEP))]
                    m.next = "MOD"
            with m.State("MOD"):
                with m.If(x >= nb):
                    m.d.sync += x.eq(x - nb)
                with m.Else():
                    m.next = "CHECK"
            with m.State("CHECK"):
                beats_ok = (plen != 0) & (x == 0)
                len_ok = Signal()
                known = Signal()
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
                m.next = "DRAIN"
                with m.If(~known):
                    m.d.sync += reply(S.UNKNOWN_OP, K_PLAIN)
                    m.d.comb += pend_set[CTR_REJECTED].eq(1)
                with m.Elif(~len_ok):
                    m.d.sync += reply(S.BAD_LENGTH, K_PLAIN)
                    m.d.comb += pend_set[CTR_REJECTED].eq(1)
                with m.Elif(op == Op.IDENTIFY):
                    m.d.sync += [reply(S.OK, K_IDENT), last.eq(seq)]
                with m.Elif(op == Op.READ_COUNTERS):
                    m.d.sync += reply(S.OK, K_COUNTERS)
                with m.Elif(seq == last):
                    m.d.sync += reply(S.DUPLICATE, K_FINAL)  # Done + the final reply's spikes, still in the RAM
                    m.d.comb += pend_set[CTR_DUPLICATES].eq(1)
                with m.Elif(seq != (last + 1)[:8]):
                    m.d.sync += reply(S.BAD_SEQ, K_PLAIN)
                    m.d.comb += pend_set[CTR_REJECTED].eq(1)
                with m.Elif(op == Op.RESET):
                    m.d.sync += [nbyte.eq(0), wrong.eq(0)]
                    m.next = "FP"
                with m.Else():
                    m.d.sync += [last.eq(seq), count.eq(0), nbyte.eq(0), spa.eq(SPIKE_ADDR),
                                 then_run.eq((op == Op.RUN) | (op == Op.STEP)),
                                 cop.eq(Mux(op == Op.LOAD, Opcode.WRITE.value, Opcode.INPUT.value))]
                    m.next = "BEATS"
                    with m.If((op == Op.RUN) | (op == Op.STEP)):
                        m.next = "STEPS0"
            with m.State("FP"):  # RESET: compare the optional fingerprint, byte by byte
                with m.If(fdone):
                    with m.If(wrong):
                        m.d.sync += reply(S.WRONG_CORE, K_PLAIN)
                        m.d.comb += pend_set[CTR_REJECTED].eq(1)
                        m.next = "WAITTX"
                    with m.Else():
                        m.d.sync += [last.eq(seq), count.eq(0), cop.eq(Opcode.CLEAR.value), spa.eq(SPIKE_ADDR)]
                        m.next = "PUSH_CLR"
                with m.Elif(~buf.busy):  # borrow the RAM's read port
                    m.d.comb += [u_active.eq(1), u_addr.eq(fp_addr + nbyte)]
                    m.next = "FP_CMP"
            with m.State("FP_CMP"):  # rd.data: the board's fingerprint byte
                m.d.comb += [u_active.eq(1), u_addr.eq(fp_addr + nbyte), self.frame.ready.eq(1)]
                with m.If(self.frame.valid):
                    m.d.sync += [nbyte.eq(nbyte + 1), fdone.eq(self.frame.payload.last),
                                 wrong.eq(wrong | (self.frame.payload.data != buf.rd_data))]
                    m.next = "FP"
            with m.State("STEPS0"):
                m.d.comb += self.frame.ready.eq(1)
                with m.If(self.frame.valid):
                    m.d.sync += steps[:8].eq(self.frame.payload.data)
                    m.next = "STEPS1"
            with m.State("STEPS1"):
                m.d.comb += self.frame.ready.eq(1)
                with m.If(self.frame.valid):
                    m.d.sync += [steps[8:].eq(self.frame.payload.data), fdone.eq(self.frame.payload.last)]
                    m.next = "BEATS"
            with m.State("BEATS"):
                with m.If(fdone):
                    m.next = "WAITCORE"
                    with m.If(then_run):
                        m.next = "RUNGO"
                with m.Else():
                    m.d.comb += self.frame.ready.eq(1)
                    with m.If(self.frame.valid):
                        m.d.sync += [sr.eq(Cat(sr[8:], self.frame.payload.data)), nbyte.eq(nbyte + 1),
                                     fdone.eq(self.frame.payload.last)]
                        with m.If(nbyte == nb - 1):
                            m.d.sync += nbyte.eq(0)
                            m.next = "PUSH_BEAT"
            with m.State("PUSH_BEAT"):
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    m.d.sync += count.eq(count + 1)
                    m.next = "BEATS"
            with m.State("RUNGO"):
                m.d.sync += [cop.eq(Opcode.RUN.value), sr.eq(steps << (OP_BITS + addr_bits(cfg))),
                             spa.eq(SPIKE_ADDR), count.eq(0)]  # STEP: its INPUT beats are not counted
                m.next = "RUNWAIT"
                with m.If(steps != 0):
                    m.next = "PUSH_RUN"
            with m.State("PUSH_RUN"):
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    m.next = "RUNWAIT"
            with m.State("RUNWAIT"):  # collect spikes until the core is idle
                with m.If(~buf.busy):
                    with m.If(self.spikes.valid):
                        with m.If(more_full):
                            m.d.sync += reply(S.MORE, K_MORE)
                            m.next = "WAITTX"
                        with m.Else():
                            m.d.sync += bsel.eq(0)
                            m.next = "SPK"
                    with m.Elif(~self.core_busy):
                        m.d.sync += reply(S.OK, K_FINAL)
                        m.d.comb += pend_set[CTR_SPIKES].eq(~more_end)
                        with m.If(more_end):
                            m.d.sync += reply(S.MORE, K_MORE)
                        m.next = "WAITTX"
            with m.State("SPK"):
                m.d.comb += w_sel.eq(6)
                m.d.sync += [bsel.eq(bsel + 1), spa.eq(spa + 1)]
                with m.If(bsel == 3):
                    m.d.comb += self.spikes.ready.eq(1)
                    m.d.sync += count.eq(count + 1)
                    m.next = "RUNWAIT"
            with m.State("PUSH_CLR"):
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    m.d.sync += cop.eq(Opcode.NOP.value)
                    m.next = "PUSH_NOP"
            with m.State("PUSH_NOP"):
                # the core takes its next command only once CLEAR has finished (its ``busy`` is
                # low while it clears), so a NOP behind it marks the end of the clear
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    m.next = "WAITCORE"
            with m.State("WAITCORE"):
                with m.If(~self.core_busy):
                    m.d.sync += reply(S.OK, K_DONE)
                    m.next = "WAITTX"
            with m.State("DRAIN"):  # consume what is left of the frame, then reply
                with m.If(fdone):
                    m.next = "WAITTX"
                with m.Else():
                    m.d.comb += self.frame.ready.eq(1)
                    with m.If(self.frame.valid):
                        m.d.sync += fdone.eq(self.frame.payload.last)
            with m.State("WAITTX"):
                with m.If(~buf.busy):
                    m.d.sync += [wa.eq(base), j.eq(0)]
                    m.next = "HDR0"
            # ---- reply assembly (the sender is idle)
            with m.State("HDR0"):
                m.d.comb += w_sel.eq(1)
                m.next = "HDR1"
            with m.State("HDR1"):
                m.d.comb += w_sel.eq(2)
                m.next = "HDR2"
            with m.State("HDR2"):
                m.d.comb += w_sel.eq(3)
                m.next = "SEND"
                with m.If(has_byte):
                    m.next = "XBYTE"
                with m.If((kind == K_DONE) | (kind == K_COUNTERS) | (kind == K_FINAL)):
                    m.next = "REC"
            with m.State("XBYTE"):
                m.d.comb += w_sel.eq(4)
                m.next = "SEND"
            with m.State("REC"):
                m.d.comb += w_sel.eq(5)
                m.d.sync += j.eq(j + 1)
                with m.If(j == Mux(kind == K_COUNTERS, n_core - 1, proto.DONE_BYTES - 1)):
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [buf.go.eq(1), buf.start.eq(base), buf.length.eq((endp - base)[:8])]
                m.next = "IDLE"
                with m.If(kind == K_MORE):
                    m.d.sync += spa.eq(SPIKE_ADDR)
                    m.next = "RUNWAIT"

        with m.If(self.drop):
            m.d.sync += [nak_pending.eq(1), nak_kind.eq(self.drop_kind)]
        m.d.comb += [pend_set[CTR_FRAMES_OK].eq(self.rx_ok),
                     pend_set[CTR_FRAMES_BAD].eq(self.drop & (self.drop_kind != 2)),
                     pend_set[CTR_OVERFLOWS].eq(self.drop & (self.drop_kind == 2))]
        m.d.comb += [ctr.inc.eq(pend_set), ctr.spikes.eq(count[:16])]
        m.d.comb += self.idle.eq(fsm.ongoing("IDLE") & ~nak_pending & ~buf.busy & ~self.frame.valid)
        return m

