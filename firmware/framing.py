"""Frame layer in gateware: COBS decode/encode and CRC check/generate (:mod:`amaranth.lib.crc`).

Wire format (the one definition is :mod:`spikeforge.firmware.protocol`): a frame body
``seq, op, payload..., crc16`` is COBS-encoded and terminated by one ``0x00``. This module
implements, byte-serially (one byte per clock at most, far above any UART rate):

:class:`CobsDecoder`
    Wire bytes in, decoded body bytes out, and at each ``0x00`` an end pulse saying whether
    the frame was well-formed COBS. Never stalls.
:class:`FrameReceiver`
    Decoder + CRC check + a frame buffer in one block RAM. Bytes are written speculatively;
    at the delimiter a frame with a good CRC and a legal length is *committed* (its body,
    without the CRC, becomes readable, prefixed internally by its length), any other frame
    is rolled back and counted. So only whole, checked frames ever reach the command engine,
    and the UART never waits for the engine (a frame that does not fit the free space is
    dropped and counted as an overflow; the host retransmits). A partial frame followed by
    ``idle_timeout`` clocks of silence is rolled back too (a host that vanished mid-frame).
:class:`FrameSender`
    Sends a reply body that the command engine wrote into a RAM: computes and appends the
    CRC, then COBS-encodes straight from the RAM (scan to the next zero, send the block), so
    it needs no buffer of its own.

CRC bytes: the CRC (``amaranth.lib.crc.Parameters.compute`` of seq..payload) is sent in the
order :func:`crc_byte_order_little` gives; the receiver checks it with the processor's
``match_detected`` (the residue test), which needs the byte order matching the algorithm's
reflection (little-endian for reflected CRCs, big-endian otherwise), so the order is derived
from the parameters, and :mod:`.protocol` must agree (a test checks it does).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = [
    "CobsDecoder",
    "FrameReceiver",
    "FrameSender",
    "body_layout",
    "crc_byte_order_little",
]


def body_layout() -> data.StructLayout:
    """A byte of a frame body with its end marker."""
    return data.StructLayout({"data": 8, "last": 1})


def crc_byte_order_little(params: crc.Parameters) -> bool:
    """Whether the CRC must go little-endian for the receiver's residue check to work."""
    return bool(params.algorithm.reflect_output)


class CobsDecoder(wiring.Component):
    """COBS decoder. Always ready.

    Members
    -------
    wire : In(stream.Signature(8))
        Bytes from the line.
    abort : In(1)
        Forget the current frame (as if a delimiter came, but never ``ok``).
    data, data_valid : Out(8), Out(1)
        A decoded byte (one clock pulse).
    end : Out(1)
        Pulses at each ``0x00``.
    ok : Out(1)
        With ``end``: the frame since the previous delimiter was non-empty, well-formed COBS.
    busy : Out(1)
        Inside a frame (a byte other than ``0x00`` came since the last delimiter).
    """

    def __init__(self) -> None:
        super().__init__({
            "wire": In(stream.Signature(8)),
            "abort": In(1),
            "data": Out(8),
            "data_valid": Out(1),
            "end": Out(1),
            "ok": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        count = Signal(8)  # bytes left in the current block; 0: the next byte is a code
        in_frame = Signal()
        prev_ff = Signal()  # the previous block had code 0xFF (no implied zero after it)
        b = self.wire.payload
        m.d.comb += [self.wire.ready.eq(1), self.busy.eq(in_frame)]
        with m.If(self.abort):
            m.d.sync += [count.eq(0), in_frame.eq(0)]
        with m.Elif(self.wire.valid):
            with m.If(b == 0):
                m.d.comb += [self.end.eq(1), self.ok.eq(in_frame & (count == 0))]
                m.d.sync += [count.eq(0), in_frame.eq(0)]
            with m.Elif(count == 0):
                m.d.comb += [self.data.eq(0), self.data_valid.eq(in_frame & ~prev_ff)]
                m.d.sync += [count.eq(b - 1), prev_ff.eq(b == 0xFF), in_frame.eq(1)]
            with m.Else():
                m.d.comb += [self.data.eq(b), self.data_valid.eq(1)]
                m.d.sync += count.eq(count - 1)
        return m


class FrameReceiver(wiring.Component):
    """COBS decode + CRC check + commit/rollback frame buffer.

    Parameters
    ----------
    params
        CRC parameters (8-bit data words) of the protocol.
    max_body
        Longest body (seq..payload, without the CRC) accepted, at most 255 (the buffer keeps
        the length in one byte).
    depth
        Buffer bytes (a power of two, at least ``2 * (max_body + 3)`` so one frame can be read
        while the next arrives).
    idle_timeout
        Clocks of silence after which a partial frame is dropped (0: never).

    Members
    -------
    wire : In(stream.Signature(8))
        Bytes from the UART (always ready).
    frame : Out(stream.Signature(body_layout()))
        Bodies of committed frames, byte by byte, ``last`` on the final byte.
    length : Out(8)
        Body length of the frame ``frame`` is delivering (valid with ``frame.valid``).
    ok : Out(1)
        Pulses when a frame is committed.
    drop : Out(1)
        Pulses when a frame is dropped; ``drop_kind`` says why: 0 bad CRC, 1 bad COBS /
        too short / too long / timed out, 2 no room in the buffer (``Status.BAD_CRC + kind``).
        Empty frames (two delimiters in a row) are ignored, not dropped.
    idle : Out(1)
        No partial frame, nothing committed left to read.
    """

    def __init__(self, params: crc.Parameters, *, max_body: int = 255, depth: int = 512,
                 idle_timeout: int = 0) -> None:
        if params.data_width != 8:
            raise ValueError(f"FrameReceiver: CRC data_width = {params.data_width}; allowed: 8")
        if not 2 <= max_body <= 255:
            raise ValueError(f"FrameReceiver: max_body = {max_body} is out of range; allowed: 2..255")
        if depth & (depth - 1) or depth < 2 * (max_body + 3):
            raise ValueError(f"FrameReceiver: depth = {depth}; allowed: a power of two >= {2 * (max_body + 3)}")
        self.params, self.max_body, self.depth, self.idle_timeout = params, max_body, depth, idle_timeout
        self.crc_bytes = params.algorithm.crc_width // 8
        super().__init__({
            "wire": In(stream.Signature(8)),
            "frame": Out(stream.Signature(body_layout())),
            "length": Out(8),
            "ok": Out(1),
            "drop": Out(1),
            "drop_kind": Out(2),
            "idle": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        depth, nc = self.depth, self.crc_bytes
        m.submodules.dec = dec = CobsDecoder()
        m.submodules.crc = chk = crc.Processor(self.params)
        m.submodules.mem = mem = Memory(shape=8, depth=depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())
        ab = (depth - 1).bit_length()

        # ---- write side
        commit = Signal(ab)  # the length slot of the frame being received; readable: [rp, commit)
        wp = Signal(ab, init=1)  # next body byte goes here (slot 0 is the first length slot)
        flen = Signal(range(self.max_body + nc + 1))  # decoded bytes of this frame
        too_long = Signal()
        no_room = Signal()
        first = Signal(init=1)  # no byte of this frame decoded yet
        rp = Signal(ab)
        abort = Signal()
        wiring.connect(m, wiring.flipped(self.wire), dec.wire)
        m.d.comb += [dec.abort.eq(abort), chk.data.eq(dec.data), chk.valid.eq(dec.data_valid),
                     chk.start.eq(first)]
        with m.If(dec.data_valid):
            m.d.sync += first.eq(0)
            with m.If(flen == self.max_body + nc):
                m.d.sync += too_long.eq(1)
            with m.Elif((wp + 2)[:ab] == rp):
                m.d.sync += no_room.eq(1)
            with m.Else():
                m.d.comb += [wr.en.eq(1), wr.addr.eq(wp), wr.data.eq(dec.data)]
                m.d.sync += [wp.eq(wp + 1), flen.eq(flen + 1)]

        with m.If(dec.end | abort):
            m.d.sync += [wp.eq(commit + 1), flen.eq(0), too_long.eq(0), no_room.eq(0), first.eq(1)]
            with m.If(no_room):
                m.d.comb += [self.drop.eq(1), self.drop_kind.eq(2)]
            with m.Elif(abort | ~dec.ok | too_long | (flen < 2 + nc)):
                m.d.comb += [self.drop.eq(abort | dec.busy), self.drop_kind.eq(1)]
            with m.Elif(~chk.match_detected):
                m.d.comb += [self.drop.eq(1), self.drop_kind.eq(0)]
            with m.Else():
                m.d.comb += [wr.en.eq(1), wr.addr.eq(commit), wr.data.eq(flen - nc), self.ok.eq(1)]
                m.d.sync += [commit.eq(wp - nc), wp.eq(wp - nc + 1)]

        if self.idle_timeout:
            idle = Signal(range(self.idle_timeout + 1))
            with m.If(self.wire.valid | ~dec.busy):
                m.d.sync += idle.eq(0)
            with m.Elif(idle == self.idle_timeout):
                m.d.comb += abort.eq(1)
                m.d.sync += idle.eq(0)
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        # ---- read side: the read port's data register is the stream's output register
        v = Signal()  # rd.data holds a fetched byte
        is_len = Signal()  # ... and it is a length byte (consumed here)
        last_r = Signal()
        remaining = Signal(8)  # body bytes of the current frame not yet fetched
        fetch = Signal()
        m.d.comb += [
            self.frame.payload.data.eq(rd.data),
            self.frame.payload.last.eq(last_r),
            self.frame.valid.eq(v & ~is_len),
            fetch.eq(~v | is_len | self.frame.ready),
            rd.addr.eq(rp),
            rd.en.eq(fetch),
        ]
        m.d.comb += self.idle.eq(~dec.busy & (rp == commit) & ~v)
        with m.If(fetch):
            avail = (rp != commit) & ~(v & is_len)  # wait for the length to land first
            m.d.sync += v.eq(avail)
            with m.If(avail):
                m.d.sync += [rp.eq(rp + 1), is_len.eq(remaining == 0), last_r.eq(remaining == 1)]
                with m.If(remaining != 0):
                    m.d.sync += remaining.eq(remaining - 1)
            with m.If(v & is_len):
                m.d.sync += [remaining.eq(rd.data), self.length.eq(rd.data)]
        return m


class FrameSender(wiring.Component):
    """Sends a reply body that lies in a RAM: appends its CRC (written into the RAM after the
    body) and COBS-encodes it straight from the RAM, plus the ``0x00`` delimiter.

    No encoder buffer: for each COBS block the sender first scans forward to the next zero
    (or the end) to learn the code byte, then re-reads and sends the block. The body plus CRC
    must be at most 254 bytes (so no code reaches 0xFF; the protocol's ``MAX_BODY`` is 253).

    Members
    -------
    go : In(1)
        Start (while ``busy`` is low) with ``start`` (RAM address of the body) and ``length``
        (body bytes without the CRC, 1..252).
    busy : Out(1)
        Sending (the RAM area ``start .. start + length + 2`` is in use).
    rd_addr, rd_data : Out, In
        A synchronous read port of the RAM (data one clock after the address).
    wr_en, wr_addr, wr_data : Out
        A write port of the RAM (the CRC bytes).
    wire : Out(stream.Signature(8))
        The encoded frame and its delimiter.
    """

    def __init__(self, params: crc.Parameters, addr_bits: int) -> None:
        if params.data_width != 8 or params.algorithm.crc_width % 8:
            raise ValueError("FrameSender: CRC must have 8-bit data words and a whole number of bytes")
        self.params = params
        super().__init__({
            "start": In(addr_bits),
            "length": In(8),
            "go": In(1),
            "busy": Out(1),
            "rd_addr": Out(addr_bits),
            "rd_data": In(8),
            "wr_en": Out(1),
            "wr_addr": Out(addr_bits),
            "wr_data": Out(8),
            "wire": Out(stream.Signature(8)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        nc = self.params.algorithm.crc_width // 8
        aw = len(self.start)
        m.submodules.crc = gen = crc.Processor(self.params)
        little = crc_byte_order_little(self.params)
        # every position is an absolute RAM address: no adders on the address path
        end = Signal(aw)  # first CRC byte
        fin = Signal(aw)  # one past the last CRC byte
        p = Signal(aw)  # start of the current COBS block
        q = Signal(aw)  # CRC pass: next byte to read / CRC byte to write; then: scan position
        j = Signal(aw)  # send position
        code = Signal(8)
        sending = Signal()
        pv = Signal()  # CRC pass: rd_data holds the byte before q
        m.d.comb += [gen.data.eq(self.rd_data), gen.valid.eq(pv), self.rd_addr.eq(Mux(sending, j, q))]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [p.eq(self.start), q.eq(self.start), end.eq(self.start + self.length),
                                 fin.eq(self.start + self.length + nc)]
                    m.d.comb += gen.start.eq(1)
                    m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += pv.eq(q != end)
                with m.If(q != end):
                    m.d.sync += q.eq(q + 1)
                with m.Elif(~pv):
                    m.next = "CRCW"
            with m.State("CRCW"):
                k = Signal(range(nc))
                m.d.comb += [self.busy.eq(1), self.wr_en.eq(1), self.wr_addr.eq(q),
                             self.wr_data.eq(gen.crc.word_select(k if little else nc - 1 - k, 8))]
                m.d.sync += [q.eq(q + 1), k.eq(k + 1)]
                with m.If(k == nc - 1):
                    m.d.sync += [q.eq(p), k.eq(0)]
                    m.next = "SCAN"
            with m.State("SCAN"):  # q == fin ends the last block; else read the byte at q
                m.d.comb += self.busy.eq(1)
                with m.If(q == fin):
                    m.d.sync += code.eq(q[:8] - p[:8] + 1)
                    m.next = "CODE"
                with m.Else():
                    m.next = "TEST"
            with m.State("TEST"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.rd_data == 0):
                    m.d.sync += code.eq(q[:8] - p[:8] + 1)
                    m.next = "CODE"
                with m.Else():
                    m.d.sync += q.eq(q + 1)
                    m.next = "SCAN"
            with m.State("CODE"):
                m.d.comb += [self.busy.eq(1), self.wire.payload.eq(code), self.wire.valid.eq(1)]
                with m.If(self.wire.ready):
                    m.d.sync += j.eq(p)
                    m.next = "READ"
            with m.State("READ"):
                m.d.comb += [self.busy.eq(1), sending.eq(1)]
                with m.If(j == q):
                    with m.If(q == fin):
                        m.next = "DELIM"
                    with m.Else():
                        m.d.sync += [p.eq(q + 1), q.eq(q + 1)]
                        m.next = "SCAN"
                with m.Else():
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [self.busy.eq(1), sending.eq(1), self.wire.payload.eq(self.rd_data),
                             self.wire.valid.eq(1)]
                with m.If(self.wire.ready):
                    m.d.sync += j.eq(j + 1)
                    m.next = "READ"
            with m.State("DELIM"):
                m.d.comb += [self.busy.eq(1), self.wire.payload.eq(0), self.wire.valid.eq(1)]
                with m.If(self.wire.ready):
                    m.next = "IDLE"
        return m
