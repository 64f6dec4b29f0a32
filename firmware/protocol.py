"""The framed serial protocol between a host and a spikeforge board: the one definition.

The gateware (UART framing and command engine in :mod:`spikeforge.firmware`), the host
driver (:mod:`spikeforge.toolchain.deploy`), the emulated board (:mod:`spikeforge.sim.emuboard`)
and the Verilator virtual board all import this module. The written specification, with the
reasoning behind each choice and worked byte examples, is ``firmware/PROTOCOL.md``; this
docstring is its summary.

Wire
----
Every frame is a *body* encoded with COBS (Consistent Overhead Byte Stuffing, Cheshire and
Baker, 1999) and terminated by one ``0x00`` byte. Bodies are at most :data:`MAX_BODY` = 253
bytes, so a COBS block never reaches 254 data bytes: the code byte ``0xFF`` never occurs in a
valid frame and the encoded frame is always exactly ``len(body) + 1`` bytes plus the
delimiter. Garbage resynchronises at the next ``0x00``; an empty frame (two delimiters in a
row) is ignored.

Bodies (multi-byte fields little-endian, no variable-length integers)::

    request (host -> board):  seq:u8  op:u8           payload[0..249]  crc:u16
    reply   (board -> host):  seq:u8  op|0x80:u8  status:u8  payload[0..248]  crc:u16

``crc`` is CRC-16/IBM-SDLC, the HDLC / X.25 frame check sequence
(``amaranth.lib.crc.catalog.CRC16_IBM_SDLC``: polynomial 0x1021, reflected in and out,
initial value 0xFFFF, final XOR 0xFFFF; check value 0x906E for ``b"123456789"``) over every
byte before it, sent little-endian. Over a whole valid body *including* its CRC the CRC
register holds the constant residue 0xF0B8 (Amaranth's ``crc.Processor.match_detected``;
:func:`crc16` of such a body is :data:`CRC_GOOD` = 0x0F47). The final XOR matters: with a
zero residue (no final XOR, e.g. CRC-16/MCRF4XX, this protocol's first choice) zero bytes
appended to a valid body keep the CRC valid, and a stray COBS code ``0x01`` before a delimiter
appends exactly one; the fault campaign found that case.

Ops, sequencing, exactly-once
-----------------------------
:class:`Op` lists the requests. *Sequenced* ops (RESET, LOAD, INPUT, RUN, STEP) change the
board; the board executes one only if ``seq == last + 1 (mod 256)`` where ``last`` is the seq
of the last command it executed. ``seq == last`` is a retransmission: not executed again, the
board re-sends the final reply of that command (at least its Done record) with status
``DUPLICATE``. Any other seq is
refused with ``BAD_SEQ`` (payload: the seq it expects). IDENTIFY is always executed and sets
``last = seq`` (it opens a session); READ_COUNTERS is always executed and changes nothing.

Every sequenced op ends with one *final* reply whose payload starts with a :class:`Done`
record (timestep after the command, and a count: beats accepted or spikes sent). RUN and
STEP stream their spikes first in ``MORE`` replies (62 spikes each) and put the last ones (up
to 60) after the Done record of the final reply. A frame the board cannot decode (COBS,
length, CRC) is dropped, counted, and answered with a NAK (op byte :data:`NAK_OP`, seq 0,
payload: the board's ``last`` seq) so the host retransmits at once instead of waiting for a
timeout.

Payloads
--------
======================  ==================================================  =====================================
op                      request payload                                     final reply payload (status OK)
======================  ==================================================  =====================================
IDENTIFY (0x01)         empty                                               :class:`IdentifyInfo` (62 bytes)
RESET (0x02)            empty, or the 8-byte core fingerprint (checked:     Done(timestep 0, count 0)
                        ``WRONG_CORE`` if it differs, nothing done)
LOAD (0x03)             1..k core command beats, :func:`beat_bytes` each;   Done(timestep, beats)
                        the board executes each as ``WRITE``
INPUT (0x04)            1..k beats, executed as ``INPUT``                    Done(timestep, beats)
RUN (0x05)              steps:u16                                           Done(timestep, spikes) + spikes
STEP (0x06)             steps:u16, then 0..k beats executed as ``INPUT``     Done(timestep, spikes) + spikes
                        before the run (closed-loop control: one frame in,
                        the spikes of those steps back)
READ_COUNTERS (0x07)    empty                                               :class:`Counters` (26 bytes)
======================  ==================================================  =====================================

A beat is the core's own command word (:func:`spikeforge.hdl.protocol.pack_command`: ``op``
in the low bits, then ``addr``, then ``data``) in :func:`beat_bytes` little-endian bytes; the
board overrides its ``op`` field with the one the frame's op implies, so a LOAD can never run
the core. A spike is ``neuron:u16, time:u16`` (the low 16 bits of the timestep it fired at;
the host unwraps them, see :func:`unwrap_time`).
"""

from __future__ import annotations

import enum
import functools
import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from amaranth.lib.crc import catalog

from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.protocol import OP_BITS, Opcode, addr_bits, data_bits, pack_command

__all__ = [
    "BEAT_OPS",
    "COUNTERS_BYTES",
    "IDENTIFY_BYTES",
    "IDENTIFY_NAME_BYTES",
    "REPLY_HEADER_BYTES",
    "REQUEST_HEADER_BYTES",
    "WIRE_TIME_BITS",
    "CRC_ALGORITHM",
    "CRC_BYTES",
    "CRC_GOOD",
    "CRC_RESIDUE",
    "DELIMITER",
    "DONE_BYTES",
    "MAGIC",
    "MAX_BODY",
    "MAX_ENCODED",
    "MAX_PAYLOAD",
    "MAX_REPLY_PAYLOAD",
    "MAX_STEPS",
    "NAK_OP",
    "PROTOCOL_VERSION",
    "REPLY_FLAG",
    "SEQUENCED_OPS",
    "SPIKES_PER_FINAL",
    "SPIKES_PER_MORE",
    "SPIKE_BYTES",
    "Counters",
    "Done",
    "FrameDecoder",
    "FrameError",
    "IdentifyInfo",
    "Op",
    "ProtocolError",
    "Reply",
    "Request",
    "Status",
    "beat_bytes",
    "beat_encoder",
    "beats_per_frame",
    "check_payload_length",
    "encoded_size",
    "force_op",
    "seq_after",
    "seq_distance",
    "status_text",
    "steps_payload",
    "cobs_decode",
    "cobs_encode",
    "crc16",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "fingerprint_bytes",
    "line_seconds",
    "pack_beats",
    "pack_spikes",
    "unpack_beats",
    "unpack_spikes",
    "unwrap_time",
    "wire_time_bits",
]

# ----------------------------------------------------------------------------- constants
PROTOCOL_VERSION = 1
"""Bumped on any incompatible change of this module; IDENTIFY reports it."""

MAGIC = b"SPKF"
"""First 4 bytes of the IDENTIFY reply payload."""

DELIMITER = 0x00
"""Frame terminator on the wire (COBS guarantees the encoded body has no zero byte)."""

CRC_ALGORITHM = catalog.CRC16_IBM_SDLC
"""CRC parameters (``amaranth.lib.crc.Algorithm``); gateware uses ``CRC_ALGORITHM(data_width)``."""

CRC_RESIDUE = CRC_ALGORITHM(8).residue()
"""The CRC register after a valid body including its CRC (0xF0B8; ``match_detected``)."""

CRC_GOOD = CRC_RESIDUE ^ CRC_ALGORITHM.xor_output
""":func:`crc16` of any valid body including its CRC (0x0F47)."""

CRC_BYTES = 2
REQUEST_HEADER_BYTES = 2  # seq, op
REPLY_HEADER_BYTES = 3  # seq, op | REPLY_FLAG, status

MAX_BODY = 253
"""Longest frame body (header + payload + CRC). Keeps every COBS code byte <= 0xFE."""

MAX_ENCODED = MAX_BODY + 1
"""Longest COBS-encoded body, without the delimiter (the receive buffer size a board needs)."""

MAX_PAYLOAD = MAX_BODY - REQUEST_HEADER_BYTES - CRC_BYTES  # 249
"""Longest request payload."""

MAX_REPLY_PAYLOAD = MAX_BODY - REPLY_HEADER_BYTES - CRC_BYTES  # 248
"""Longest reply payload."""

REPLY_FLAG = 0x80
"""Set in the op byte of every reply (``op | REPLY_FLAG``)."""

NAK_OP = 0xFF
"""Op byte of the reply to a frame the board could not decode (its seq could not be trusted)."""

SPIKE_BYTES = 4
"""One spike on the wire: ``neuron:u16, time:u16``."""

DONE_BYTES = 8
"""The :class:`Done` record: ``timestep:u32, count:u32``."""

SPIKES_PER_MORE = MAX_REPLY_PAYLOAD // SPIKE_BYTES  # 62
"""Spikes in one ``MORE`` reply (a board sends a MORE reply only when it is full)."""

SPIKES_PER_FINAL = (MAX_REPLY_PAYLOAD - DONE_BYTES) // SPIKE_BYTES  # 60
"""Most spikes after the Done record of a final reply."""

MAX_STEPS = 0xFFFF
"""Largest step count of one RUN or STEP (its ``steps:u16`` field)."""

WIRE_TIME_BITS = 16
"""Width of the spike ``time`` field (the low bits of the core timestep)."""

IDENTIFY_NAME_BYTES = 16
"""Bytes of the core name in the IDENTIFY reply (ASCII, NUL-padded)."""


class Op(enum.IntEnum):
    """Request opcodes (the ``op`` byte of a request)."""

    IDENTIFY = 0x01
    RESET = 0x02
    LOAD = 0x03
    INPUT = 0x04
    RUN = 0x05
    STEP = 0x06
    READ_COUNTERS = 0x07


SEQUENCED_OPS = frozenset({Op.RESET, Op.LOAD, Op.INPUT, Op.RUN, Op.STEP})
"""Ops that change the board: executed at most once per seq (see the module docstring)."""

BEAT_OPS = {Op.LOAD: Opcode.WRITE, Op.INPUT: Opcode.INPUT, Op.STEP: Opcode.INPUT}
"""The core opcode the board forces into each beat of these ops."""


class Status(enum.IntEnum):
    """The ``status`` byte of a reply. Codes >= 0x10 are errors (nothing was executed)."""

    OK = 0x00
    """Final reply: the command was executed."""
    MORE = 0x01
    """Streamed spikes of a RUN / STEP in progress; the final reply follows."""
    DUPLICATE = 0x02
    """Re-sent final reply of the command with this seq, which was executed once already and
    is not executed again. Payload: the Done record, optionally followed by the spikes of the
    original final reply (a board that keeps that reply re-sends it whole)."""
    BAD_CRC = 0x10
    """NAK: a frame failed its CRC and was dropped."""
    BAD_FRAME = 0x11
    """NAK: a frame failed COBS decoding, was too short or too long, and was dropped."""
    OVERFLOW = 0x12
    """NAK: the board's receive buffer was full; a frame was dropped."""
    UNKNOWN_OP = 0x20
    """The op byte names no op of this protocol version."""
    BAD_LENGTH = 0x21
    """The payload length is not valid for the op (e.g. not a whole number of beats)."""
    BAD_SEQ = 0x22
    """Out of sequence, not executed; payload: ``expected:u8`` (= board's last seq + 1)."""
    BAD_ARG = 0x23
    """A field value is out of range (reserved: no field of version 1 can be; RUN 0 is a no-op)."""
    WRONG_CORE = 0x24
    """RESET carried a fingerprint of another core configuration; nothing was done."""
    BUSY = 0x25
    """The board cannot take this command now; retry later."""

    @property
    def is_error(self) -> bool:
        """True for codes >= 0x10."""
        return self.value >= 0x10


_STATUS_TEXT = {
    Status.BAD_CRC: "a frame failed its CRC on the board and was dropped",
    Status.BAD_FRAME: "a frame could not be decoded on the board (COBS or length) and was dropped",
    Status.OVERFLOW: "the board's receive buffer overflowed and a frame was dropped",
    Status.UNKNOWN_OP: "the board does not know this op (protocol version mismatch?)",
    Status.BAD_LENGTH: "the payload length is not valid for this op",
    Status.BAD_SEQ: "the frame was out of sequence and not executed",
    Status.BAD_ARG: "a field value is out of range",
    Status.WRONG_CORE: "the image is for another core configuration",
    Status.BUSY: "the board is busy",
}


def status_text(status: int) -> str:
    """One-line meaning of a status code (for error messages)."""
    try:
        s = Status(status)
    except ValueError:
        return f"unknown status 0x{status:02x}"
    return _STATUS_TEXT.get(s, s.name.lower())


class ProtocolError(ValueError):
    """A value that cannot be put on the wire, or a payload that does not parse."""


class FrameError(ProtocolError):
    """A received frame that is not valid; ``kind`` is the NAK status it earns."""

    def __init__(self, message: str, kind: Status = Status.BAD_FRAME) -> None:
        super().__init__(message)
        self.kind = kind


# ----------------------------------------------------------------------------- CRC
def _crc_table() -> tuple[int, ...]:
    # Reflected (LSB-first) table of the polynomial (0x1021 reversed is 0x8408).
    rpoly = int(f"{CRC_ALGORITHM.polynomial:016b}"[::-1], 2)
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ rpoly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview, crc: int | None = None) -> int:
    """CRC-16/IBM-SDLC of ``data`` (table-driven; equals ``CRC_ALGORITHM(8).compute(data)``).

    Parameters
    ----------
    data
        The bytes.
    crc
        The result of an earlier call, to continue over more bytes (default: start afresh).
    """
    x = CRC_ALGORITHM.xor_output
    c = CRC_ALGORITHM.initial_crc if crc is None else crc ^ x
    t = _CRC_TABLE
    for b in data:
        c = (c >> 8) ^ t[(c ^ b) & 0xFF]
    return c ^ x


# ----------------------------------------------------------------------------- COBS
def cobs_encode(data: bytes | bytearray) -> bytes:
    """COBS-encode ``data`` (no delimiter appended).

    Blocks of up to 254 non-zero bytes; the last block's code is followed by no implied zero.
    """
    out = bytearray()
    for chunk in bytes(data).split(b"\x00"):
        while len(chunk) >= 0xFE:
            out.append(0xFF)
            out += chunk[:0xFE]
            chunk = chunk[0xFE:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS frame (without its delimiter).

    Raises
    ------
    FrameError
        On a zero byte inside the frame, an empty frame, or a code that runs past the end.
    """
    data = bytes(data)
    if not data:
        raise FrameError("empty COBS frame")
    z = data.find(0)
    if z >= 0:
        raise FrameError(f"zero byte at offset {z} inside a COBS frame")
    n = len(data)
    if 0xFF not in data:  # no 0xFF code: every code but the first becomes the zero it stands for
        buf = bytearray(data)
        i = buf[0]
        while i < n:
            c = buf[i]
            buf[i] = 0
            i += c
        if i == n:
            return bytes(buf[1:])
    out = bytearray()
    i = 0
    while i < n:
        code = data[i]
        end = i + code
        if end > n:
            raise FrameError(f"COBS code 0x{code:02x} at offset {i} runs past the end of the {n}-byte frame")
        out += data[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Request:
    """A decoded request body."""

    seq: int
    op: int
    payload: bytes = b""


@dataclass(frozen=True)
class Reply:
    """A decoded reply body (``op`` without :data:`REPLY_FLAG`; :data:`NAK_OP` stays as is)."""

    seq: int
    op: int
    status: int
    payload: bytes = b""

    @property
    def is_nak(self) -> bool:
        """A NAK: the board dropped a frame it could not decode.

        Op byte :data:`NAK_OP` *and* a NAK status (BAD_CRC, BAD_FRAME, OVERFLOW): the UNKNOWN_OP
        reply to a request with op 0x7F echoes ``0x7F | 0x80 = 0xFF`` too, and is no NAK.
        """
        return self.op == NAK_OP and self.status in (Status.BAD_CRC, Status.BAD_FRAME, Status.OVERFLOW)


def _u8(name: str, v: int) -> int:
    if not isinstance(v, int) or not 0 <= v <= 0xFF:
        raise ProtocolError(f"frame field '{name}' = {v!r} is out of range; allowed: 0..255")
    return v


def _seal(body: bytes) -> bytes:
    body = body + crc16(body).to_bytes(2, "little")
    return cobs_encode(body) + b"\x00"


def encode_request(seq: int, op: int, payload: bytes = b"") -> bytes:
    """The wire bytes of a request: COBS(seq, op, payload, crc) + ``0x00``."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"request payload of {len(payload)} bytes is too long; allowed: 0..{MAX_PAYLOAD}")
    return _seal(bytes((_u8("seq", seq), _u8("op", int(op)))) + bytes(payload))


def encode_reply(seq: int, op: int, status: int, payload: bytes = b"") -> bytes:
    """The wire bytes of a reply: COBS(seq, op|0x80, status, payload, crc) + ``0x00``.

    ``op`` is the request op (the flag is added here) or :data:`NAK_OP`.
    """
    if len(payload) > MAX_REPLY_PAYLOAD:
        raise ProtocolError(f"reply payload of {len(payload)} bytes is too long; allowed: 0..{MAX_REPLY_PAYLOAD}")
    opb = NAK_OP if op == NAK_OP else (_u8("op", int(op)) | REPLY_FLAG)
    return _seal(bytes((_u8("seq", seq), opb, _u8("status", int(status)))) + bytes(payload))


def _open(frame: bytes | bytearray | memoryview, header: int) -> bytes:
    if len(frame) > MAX_ENCODED:
        raise FrameError(f"frame of {len(frame)} encoded bytes is too long; allowed: 1..{MAX_ENCODED}")
    body = cobs_decode(frame)
    if len(body) < header + CRC_BYTES:
        raise FrameError(f"frame body of {len(body)} bytes is too short; allowed: {header + CRC_BYTES}..{MAX_BODY}")
    if crc16(body) != CRC_GOOD:  # a valid body including its little-endian CRC
        want = int.from_bytes(body[-2:], "little")
        raise FrameError(
            f"CRC mismatch: frame says 0x{want:04x}, body gives 0x{crc16(body[:-2]):04x}", Status.BAD_CRC
        )
    return body[:-CRC_BYTES]


def decode_request(frame: bytes | bytearray | memoryview) -> Request:
    """Decode one request frame (COBS bytes without the delimiter); :class:`FrameError` if bad."""
    body = _open(frame, REQUEST_HEADER_BYTES)
    return Request(body[0], body[1], body[2:])


def decode_reply(frame: bytes | bytearray | memoryview) -> Reply:
    """Decode one reply frame (COBS bytes without the delimiter); :class:`FrameError` if bad."""
    body = _open(frame, REPLY_HEADER_BYTES)
    opb = body[1]
    if opb != NAK_OP and not opb & REPLY_FLAG:
        raise FrameError(f"reply op byte 0x{opb:02x} lacks the reply flag 0x80 (a request echoed back?)")
    return Reply(body[0], opb if opb == NAK_OP else opb & ~REPLY_FLAG, body[2], body[3:])


class FrameDecoder:
    """Split a byte stream into frames at ``0x00`` delimiters (either direction).

    ``feed(data)`` returns the complete frames (COBS bytes, delimiter removed) in order.
    Empty frames are skipped. A frame that grows past :data:`MAX_ENCODED` bytes is discarded
    up to the next delimiter and reported as an over-long frame of exactly
    ``MAX_ENCODED + 1`` bytes (so the caller's decode rejects it), keeping memory bounded.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overlong = False

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Frames completed by ``data``."""
        out: list[bytes] = []
        parts = bytes(data).split(b"\x00")
        for k, part in enumerate(parts):
            if not self._overlong:
                self._buf += part
                if len(self._buf) > MAX_ENCODED:
                    self._overlong = True
                    self._buf.clear()
            if k < len(parts) - 1:  # a delimiter follows this part
                if self._overlong:
                    out.append(b"\xff" * (MAX_ENCODED + 1))
                elif self._buf:
                    out.append(bytes(self._buf))
                self._buf.clear()
                self._overlong = False
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop any partial frame."""
        self._buf.clear()
        self._overlong = False


# ----------------------------------------------------------------------------- beats
@functools.lru_cache(maxsize=64)
def beat_bytes(cfg: CoreConfig) -> int:
    """Bytes of one core command beat on the wire (``ceil((3 + addr + data bits) / 8)``)."""
    return math.ceil((OP_BITS + addr_bits(cfg) + data_bits(cfg)) / 8)


@functools.lru_cache(maxsize=64)
def beat_encoder(cfg: CoreConfig) -> Callable[[int, int, int], int]:
    """A fast ``(op, addr, data) -> beat`` equal to ``hdl.protocol.pack_command(cfg, ...)``.

    ``pack_command`` recomputes the field widths on every call; this packs with the unit beats
    ``pack_command`` itself gives for ``op``, ``addr`` and ``data`` = 1 (the fields are disjoint
    bit ranges, so a beat is their weighted sum), after the same range checks.
    """
    u_op, u_addr, u_data = (pack_command(cfg, *e) for e in ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    lim_op, lim_addr, lim_data = 1 << OP_BITS, 1 << addr_bits(cfg), 1 << data_bits(cfg)

    def encode(op: int, addr: int, data: int) -> int:
        if not (0 <= op < lim_op and 0 <= addr < lim_addr and 0 <= data < lim_data):
            return pack_command(cfg, op, addr, data)  # raises, naming the field
        return op * u_op + addr * u_addr + data * u_data

    return encode


def beats_per_frame(cfg: CoreConfig, extra: int = 0) -> int:
    """Most beats in one request payload (after ``extra`` leading bytes, e.g. 2 for STEP)."""
    return (MAX_PAYLOAD - extra) // beat_bytes(cfg)


def pack_beats(cfg: CoreConfig, beats: Iterable[int]) -> bytes:
    """Command beats (integers from ``hdl.protocol.pack_command``) as little-endian bytes."""
    nb = beat_bytes(cfg)
    out = bytearray()
    for b in beats:
        if not 0 <= b < (1 << (8 * nb)):
            raise ProtocolError(f"command beat 0x{b:x} does not fit {nb} bytes for core {cfg.name!r}")
        out += b.to_bytes(nb, "little")
    return bytes(out)


def unpack_beats(cfg: CoreConfig, data: bytes) -> list[int]:
    """Inverse of :func:`pack_beats` (:class:`ProtocolError` if not a whole number of beats)."""
    nb = beat_bytes(cfg)
    if len(data) % nb:
        raise ProtocolError(f"{len(data)} bytes is not a whole number of {nb}-byte beats")
    return [int.from_bytes(data[i : i + nb], "little") for i in range(0, len(data), nb)]


def force_op(cfg: CoreConfig, beat: int, op: Opcode) -> int:
    """The beat with its ``op`` field replaced (what a board does to each LOAD/INPUT beat)."""
    return (beat & ~((1 << OP_BITS) - 1)) | int(op.value)


# ----------------------------------------------------------------------------- spikes, time
def wire_time_bits(cfg: CoreConfig) -> int:
    """Bits of the core timestep a spike carries on the wire: ``min(16, time_bits)``."""
    return min(WIRE_TIME_BITS, cfg.time_bits)


def pack_spikes(spikes: Iterable[tuple[int, int]]) -> bytes:
    """``(neuron, timestep)`` pairs as ``neuron:u16, time:u16`` (timestep's low 16 bits)."""
    out = bytearray()
    for n, t in spikes:
        out += struct.pack("<HH", n & 0xFFFF, t & 0xFFFF)
    return bytes(out)


def unpack_spikes(data: bytes) -> list[tuple[int, int]]:
    """Inverse of :func:`pack_spikes` (times are the wire's 16 bits, still wrapped)."""
    if len(data) % SPIKE_BYTES:
        raise ProtocolError(f"spike payload of {len(data)} bytes is not a whole number of {SPIKE_BYTES}-byte spikes")
    return [struct.unpack_from("<HH", data, i) for i in range(0, len(data), SPIKE_BYTES)]


def unwrap_time(wire: int, start: int, bits: int) -> int:
    """The full timestep ``>= start`` whose low ``bits`` bits are ``wire`` (first such)."""
    mod = 1 << bits
    return start + ((wire - start) % mod)


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Done:
    """The record that opens every final reply of a sequenced op.

    Attributes
    ----------
    timestep
        The core's timestep after the command (low 32 bits).
    count
        LOAD / INPUT: beats accepted; RUN / STEP: spikes sent for this command (in MORE
        replies and after this record); RESET: 0.
    """

    timestep: int
    count: int

    def pack(self) -> bytes:
        """8 bytes: ``timestep:u32, count:u32``."""
        return struct.pack("<II", self.timestep & 0xFFFFFFFF, self.count & 0xFFFFFFFF)

    @classmethod
    def unpack(cls, data: bytes) -> Done:
        """From the first 8 bytes of a final reply payload."""
        if len(data) < DONE_BYTES:
            raise ProtocolError(f"final reply payload of {len(data)} bytes is too short for a Done record ({DONE_BYTES})")
        return cls(*struct.unpack_from("<II", data))


_COUNTERS = struct.Struct("<IIIHHHHHHH")


@dataclass(frozen=True)
class Counters:
    """READ_COUNTERS reply: 26 bytes, all counters wrap at their width.

    Attributes
    ----------
    timestep : u32
        The core's timestep (low 32 bits).
    events : u32
        Synaptic events the core delivered.
    cycles : u32
        Core clock cycles spent running (0 on the emulated board, which has no clock).
    core_errors : u16
        Beats the core ignored (undefined op, out-of-range address or neuron).
    frames_ok : u16
        Frames decoded with a good CRC.
    frames_bad : u16
        Frames dropped (COBS, length or CRC; each earned a NAK).
    duplicates : u16
        Retransmitted sequenced frames answered with DUPLICATE instead of executed.
    rejected : u16
        Frames answered with an error status (UNKNOWN_OP, BAD_LENGTH, BAD_SEQ, ...).
    overflows : u16
        Frames dropped because the receive buffer was full.
    spikes : u16
        Spikes sent (low 16 bits).
    """

    timestep: int = 0
    events: int = 0
    cycles: int = 0
    core_errors: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    duplicates: int = 0
    rejected: int = 0
    overflows: int = 0
    spikes: int = 0

    def pack(self) -> bytes:
        """26 bytes, fields in declaration order (each masked to its width)."""
        return _COUNTERS.pack(
            self.timestep & 0xFFFFFFFF, self.events & 0xFFFFFFFF, self.cycles & 0xFFFFFFFF,
            *(getattr(self, f) & 0xFFFF for f in
              ("core_errors", "frames_ok", "frames_bad", "duplicates", "rejected", "overflows", "spikes")),
        )  # fmt: skip

    @classmethod
    def unpack(cls, data: bytes) -> Counters:
        """From a READ_COUNTERS reply payload."""
        if len(data) != _COUNTERS.size:
            raise ProtocolError(f"READ_COUNTERS payload of {len(data)} bytes; expected {_COUNTERS.size}")
        return cls(*_COUNTERS.unpack(data))


COUNTERS_BYTES = _COUNTERS.size

_SPRAM_BITS = {"index": 1, "synapses": 2}
_IDENT = struct.Struct("<4sBBHIII8sIIBBBBBBBBBB16s")


def fingerprint_bytes(cfg: CoreConfig) -> bytes:
    """The config's fingerprint as 8 bytes (``bytes.fromhex(cfg.fingerprint())``)."""
    return bytes.fromhex(cfg.fingerprint())


@dataclass(frozen=True)
class IdentifyInfo:
    """IDENTIFY reply: who the board is and the core it carries (62 bytes).

    Layout (little-endian): ``magic "SPKF"``, ``version:u8``, ``rx_frames:u8``,
    ``reserved:u16 = 0``, ``baud:u32``, ``clock_hz:u32``, ``build_id:u32``,
    ``fingerprint[8]``, then the :class:`CoreConfig` fields ``n_neurons:u32``,
    ``n_synapses:u32``, ``max_delay``, ``weight_bits``, ``threshold_bits``,
    ``potential_bits``, ``accumulator_bits``, ``bias_bits``, ``input_bits``,
    ``refractory_bits``, ``time_bits`` (u8 each), ``spram:u8`` (bit 0 index, bit 1 synapses),
    ``name[16]`` (ASCII, NUL-padded).

    Attributes
    ----------
    config
        The core configuration of the bitstream.
    version
        :data:`PROTOCOL_VERSION` of the board.
    rx_frames
        Whole request frames the board buffers besides the one executing (the host keeps at
        most this many unacknowledged frames in flight).
    baud
        The UART's baud rate (the emulated board's modelled line rate).
    clock_hz
        Core clock (0 if not applicable).
    build_id
        Identifies the bitstream build (e.g. the low 32 bits of its cache key).
    """

    config: CoreConfig
    version: int = PROTOCOL_VERSION
    rx_frames: int = 2
    baud: int = 3_000_000
    clock_hz: int = 0
    build_id: int = 0

    def pack(self) -> bytes:
        """The 62-byte payload (what a board keeps in a ROM)."""
        c = self.config
        name = c.name.encode("ascii", "replace")
        if len(name) > IDENTIFY_NAME_BYTES:
            raise ProtocolError(
                f"core name {c.name!r} is {len(name)} bytes; IDENTIFY carries at most {IDENTIFY_NAME_BYTES}"
            )
        spram = sum(_SPRAM_BITS[m] for m in c.spram)
        return _IDENT.pack(
            MAGIC, self.version, self.rx_frames, 0, self.baud, self.clock_hz, self.build_id,
            fingerprint_bytes(c), c.n_neurons, c.n_synapses, c.max_delay, c.weight_bits,
            c.threshold_bits, c.potential_bits, c.accumulator_bits, c.bias_bits, c.input_bits,
            c.refractory_bits, c.time_bits, spram, name,
        )  # fmt: skip

    @classmethod
    def unpack(cls, data: bytes) -> IdentifyInfo:
        """Parse an IDENTIFY payload; :class:`ProtocolError` naming what is wrong."""
        if len(data) != _IDENT.size:
            raise ProtocolError(f"IDENTIFY payload of {len(data)} bytes; expected {_IDENT.size}")
        (magic, version, rx_frames, _res, baud, clock_hz, build_id, fp, n_neurons, n_synapses,
         max_delay, wb, tb, pb, ab, bb, ib, rb, timeb, spram, name) = _IDENT.unpack(data)  # fmt: skip
        if magic != MAGIC:
            raise ProtocolError(f"IDENTIFY magic {magic!r} is not {MAGIC!r}: not a spikeforge board")
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"board speaks protocol version {version}; this host speaks {PROTOCOL_VERSION} "
                "(rebuild and flash the bitstream with this spikeforge version)"
            )
        try:
            cfg = CoreConfig(
                name=name.rstrip(b"\x00").decode("ascii"), n_neurons=n_neurons, n_synapses=n_synapses,
                max_delay=max_delay, weight_bits=wb, threshold_bits=tb, potential_bits=pb,
                accumulator_bits=ab, bias_bits=bb, input_bits=ib, refractory_bits=rb, time_bits=timeb,
                spram=tuple(m for m, bit in _SPRAM_BITS.items() if spram & bit),
            )  # fmt: skip
        except (ValueError, UnicodeDecodeError) as e:
            raise ProtocolError(f"IDENTIFY carries an invalid core configuration: {e}") from None
        if fingerprint_bytes(cfg) != fp:
            raise ProtocolError(
                f"IDENTIFY fingerprint {fp.hex()} does not match the configuration it describes "
                f"({cfg.fingerprint()}): corrupted reply or a board built by another spikeforge version"
            )
        return cls(cfg, version, rx_frames, baud, clock_hz, build_id)


IDENTIFY_BYTES = _IDENT.size


# ----------------------------------------------------------------------------- payload helpers
def steps_payload(steps: int, beats: bytes = b"") -> bytes:
    """RUN / STEP payload: ``steps:u16`` then (STEP) packed INPUT beats."""
    if not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise ProtocolError(f"steps = {steps!r} is out of range for one RUN/STEP frame; allowed: 0..{MAX_STEPS}")
    return steps.to_bytes(2, "little") + beats


def line_seconds(nbytes: int, baud: int) -> float:
    """Time ``nbytes`` take on a UART line at ``baud`` (8N1: 10 bit times per byte)."""
    return nbytes * 10 / baud


def encoded_size(body_bytes: int) -> int:
    """Wire bytes of a frame whose body has ``body_bytes`` bytes (COBS + delimiter)."""
    return body_bytes + math.ceil(max(body_bytes, 1) / 254) + 1


def check_payload_length(op: int, payload_len: int, cfg: CoreConfig) -> Status:
    """``Status.OK`` if ``payload_len`` is valid for ``op`` on this core, else the error status.

    The rule a board applies before executing anything (see PROTOCOL.md, "Payloads").
    """
    nb = beat_bytes(cfg)
    rules: dict[int, bool] = {
        Op.IDENTIFY: payload_len == 0,
        Op.RESET: payload_len in (0, 8),
        Op.LOAD: payload_len > 0 and payload_len % nb == 0,
        Op.INPUT: payload_len > 0 and payload_len % nb == 0,
        Op.RUN: payload_len == 2,
        Op.STEP: payload_len >= 2 and (payload_len - 2) % nb == 0,
        Op.READ_COUNTERS: payload_len == 0,
    }
    if op not in rules:
        return Status.UNKNOWN_OP
    return Status.OK if rules[op] else Status.BAD_LENGTH


def seq_after(seq: int, n: int = 1) -> int:
    """``seq + n`` modulo 256."""
    return (seq + n) & 0xFF


def seq_distance(a: int, b: int) -> int:
    """How far ``b`` is ahead of ``a`` (0..255, modulo 256)."""
    return (b - a) & 0xFF
