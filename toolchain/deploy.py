"""Host driver of a spikeforge board: the typed :class:`Device` API over pyserial.

One class talks to every board the same way: a real board on a tty, the Verilator virtual
board on its pty or TCP socket, the emulated board (:mod:`spikeforge.sim.emuboard`), through
``serial.serial_for_url`` (so ``/dev/ttyUSB1``, ``/dev/pts/7``, ``socket://host:port`` and
``loop://`` all work). The protocol is :mod:`spikeforge.firmware.protocol` (spec:
``firmware/PROTOCOL.md``).

Guarantees
----------
* **Never hangs**: every read has a deadline, every write a write timeout, every retry loop
  a bound (``retries`` re-sends without progress); then :class:`DeviceTimeout`.
* **Never applies a command twice**: requests carry sequence numbers and the board executes
  each at most once (a re-sent request is answered ``DUPLICATE``), so retries are safe.
* **Never returns a wrong result**: every frame is CRC-checked, every final reply carries the
  board's timestep and spike count, and both are checked. If the spikes of a run were lost on
  the way back the board state has advanced without the host seeing them:
  :class:`StateAdvancedError` says so and how to recover (``reset()`` and run again).
* **Never loads an image built for another core**: :meth:`Device.load` compares the image's
  :class:`~spikeforge.hdl.config.CoreConfig` with the one IDENTIFY reports (naming both) and
  the board checks the fingerprint again (RESET with fingerprint).

Use
---
::

    from spikeforge.toolchain.deploy import Device
    with Device.open("/dev/ttyUSB1") as dev:          # IDENTIFY on open
        dev.load(image)                                # pipelined LOAD frames, near line rate
        res = dev.simulate(inputs, steps=200)          # == reference.simulate(...)
        dev.reset()                                    # closed loop: one frame per control step
        for obs in sensor_stream:
            spikes = dev.step([(0, obs)], steps=4)     # [(neuron_id, t), ...]
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import serial

from spikeforge.firmware.protocol import (
    CRC_BYTES,
    MAX_STEPS,
    NAK_OP,
    REQUEST_HEADER_BYTES,
    SEQUENCED_OPS,
    Counters,
    Done,
    FrameDecoder,
    FrameError,
    IdentifyInfo,
    Op,
    ProtocolError,
    Reply,
    Status,
    beat_encoder,
    beats_per_frame,
    decode_reply,
    encode_request,
    encoded_size,
    fingerprint_bytes,
    line_seconds,
    pack_beats,
    seq_after,
    seq_distance,
    status_text,
    steps_payload,
    unpack_spikes,
    unwrap_time,
    wire_time_bits,
)
from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.driver import load_commands, run_commands
from spikeforge.hdl.image import CoreImage, ImageError, ImageModel
from spikeforge.hdl.protocol import Command, Opcode
from spikeforge.toolchain.reference import InputEvent, SimResult

__all__ = [
    "BoardError",
    "Device",
    "DeviceError",
    "DeviceTimeout",
    "LinkStats",
    "LoadReport",
    "NotABoardError",
    "StateAdvancedError",
    "WrongCoreError",
]

log = logging.getLogger(__name__)

_POLL = 0.005
#: Line rates an IDENTIFY reply may declare (the host divides by it to pace and time out).
BAUD_RANGE = (300, 100_000_000)
"""Read timeout of the port: how late past a deadline a read can return (seconds)."""


# ----------------------------------------------------------------------------- errors
class DeviceError(RuntimeError):
    """Something went wrong talking to a board (the message says what and what to do)."""


class DeviceTimeout(DeviceError):
    """No usable reply within the deadline after the bounded number of re-sends."""


class NotABoardError(DeviceError):
    """Whatever answers on the port does not speak the spikeforge protocol."""


class BoardError(DeviceError):
    """The board refused a command with an error status (``status`` holds it)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class WrongCoreError(DeviceError, ImageError):
    """The image is for another core configuration than the board's."""


class StateAdvancedError(DeviceError):
    """A run executed on the board but some of its spikes were lost on the way back.

    The board's state (timestep, potentials) moved on; the host cannot know the lost spikes.
    Recover with :meth:`Device.reset` and run again from timestep 0.
    """


# ----------------------------------------------------------------------------- reports
@dataclass
class LinkStats:
    """Link-level counts of one :class:`Device` (cumulative)."""

    frames_sent: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    replies: int = 0
    resends: int = 0
    timeouts: int = 0
    naks: int = 0
    bad_frames: int = 0
    duplicates: int = 0
    bad_seq: int = 0
    stale: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict (for JSON)."""
        return dict(self.__dict__)


@dataclass
class LoadReport:
    """What :meth:`Device.load` did.

    ``payload_fraction`` is image bytes (beats) per second over the line rate (``baud / 10``
    bytes/s); ``wire_fraction`` counts every byte of the LOAD frames (headers, CRC, COBS).
    """

    beats: int
    frames: int
    payload_bytes: int
    wire_bytes: int
    seconds: float
    baud: int
    payload_fraction: float = field(init=False)
    wire_fraction: float = field(init=False)

    def __post_init__(self) -> None:
        line = self.seconds * self.baud / 10 if self.seconds > 0 else float("inf")
        self.payload_fraction = self.payload_bytes / line
        self.wire_fraction = self.wire_bytes / line


def _tally(timeouts: int, garbled: int, timeout: float) -> str:
    """What the tries met, counted: ``"3 timed out after 0.50 s, 2 answered with undecodable frames or NAKs"``."""
    parts = []
    if timeouts:
        parts.append(f"{timeouts} timed out after {timeout:.2f} s")
    if garbled:
        parts.append(f"{garbled} answered with undecodable frames or NAKs")
    return ", ".join(parts) or "no answer"


# ----------------------------------------------------------------------------- the device
class Device:
    """A spikeforge board behind a serial port.

    Parameters
    ----------
    port
        An open ``serial.Serial``-like object (``read``, ``write``, ``timeout``), e.g. from
        ``serial.serial_for_url``. Use :meth:`open` to open a URL.
    timeout
        Seconds without a usable reply before a request is re-sent (plus the line time of
        what is in flight at the board's baud, plus ``step_timeout`` per step run).
    retries
        Re-sends without progress before :class:`DeviceTimeout`.
    window
        Most unacknowledged requests in flight (default: the board's ``rx_frames``).
    step_timeout
        Extra seconds allowed per timestep of a RUN/STEP.
    run_chunk
        Most steps per RUN/STEP frame (long runs are split; bounds each reply's wait).
    identify
        Send IDENTIFY now (default). Without it, call :meth:`identify` before anything else.
    """

    def __init__(self, port: Any, *, timeout: float = 1.0, retries: int = 8, window: int | None = None,
                 step_timeout: float = 0.005, run_chunk: int = 4096, identify: bool = True) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout = {timeout!r} is out of range; allowed: seconds > 0")
        if not 0 <= retries <= 1000:
            raise ValueError(f"retries = {retries!r} is out of range; allowed: 0..1000")
        if window is not None and not 1 <= window <= 127:
            raise ValueError(f"window = {window!r} is out of range; allowed: 1..127")
        if not 1 <= run_chunk <= MAX_STEPS:
            raise ValueError(f"run_chunk = {run_chunk!r} is out of range; allowed: 1..{MAX_STEPS}")
        self._ser = port
        self.timeout = float(timeout)
        self.retries = retries
        self.step_timeout = step_timeout
        self.run_chunk = run_chunk
        self._window = window
        self.stats = LinkStats()
        self._decoder = FrameDecoder()
        self._seq = 0
        self._useq = 0
        self.url = str(getattr(port, "port", None) or getattr(port, "name", None) or "<port>")
        self._inbox: list[Reply | None] = []  # None marks a frame that did not decode
        self.info: IdentifyInfo | None = None
        self.image: CoreImage | None = None
        self.timestep = 0
        self._synced = False
        try:
            self._ser.timeout = _POLL  # set once: pyserial reconfigures the port on every change
        except (AttributeError, ValueError, serial.SerialException):
            pass
        sock = getattr(port, "_socket", None)  # socket://: send small frames at once (no Nagle)
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if identify:
            self.identify()

    @classmethod
    def open(cls, url: str, *, baud: int = 3_000_000, **options: Any) -> Device:
        """Open ``url`` (tty path, pty path, ``socket://host:port``, ``loop://``) and IDENTIFY.

        ``baud`` sets the serial port's rate (ignored by ptys and sockets); ``options`` go to
        :class:`Device`.
        """
        try:
            ser = serial.serial_for_url(url, baudrate=baud, timeout=0.02, write_timeout=5.0)
        except (serial.SerialException, ValueError, OSError) as e:
            raise DeviceError(f"cannot open port {url!r}: {e}") from None
        try:
            dev = cls(ser, identify=False, **options)
            dev.url = url
            dev.identify()
        except BaseException:
            ser.close()
            raise
        return dev

    def close(self) -> None:
        """Close the port."""
        try:
            self._ser.close()
        except (OSError, serial.SerialException):
            pass

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> CoreConfig:
        """The board's core configuration (from IDENTIFY)."""
        return self._need_info().config

    @property
    def window(self) -> int:
        """Requests kept in flight."""
        return self._window or max(1, min(127, self._need_info().rx_frames))

    def _need_info(self) -> IdentifyInfo:
        if self.info is None:
            raise DeviceError("the board has not been identified yet: call identify() first")
        return self.info

    def _line(self, nbytes: int) -> float:
        baud = self.info.baud if self.info and self.info.baud else 115200
        return line_seconds(nbytes, baud)

    # ------------------------------------------------------------------ bytes
    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except (serial.SerialTimeoutException, serial.SerialException, OSError) as e:
            raise DeviceError(f"{self.url}: writing {len(data)} bytes failed: {e}") from None
        self.stats.bytes_sent += len(data)

    def _send(self, seq: int, op: int, payload: bytes = b"") -> int:
        frame = encode_request(seq, op, payload)
        self._write(frame)
        self.stats.frames_sent += 1
        return len(frame)

    def _poll(self, deadline: float) -> Reply | None | bool:
        """Next received reply, ``None`` for a frame that did not decode, False at the deadline."""
        while not self._inbox:
            now = time.monotonic()
            if now >= deadline:
                return False
            try:
                n = getattr(self._ser, "in_waiting", 0) or 1
                data = self._ser.read(n)
            except (serial.SerialException, OSError) as e:
                raise DeviceError(f"{self.url}: reading failed: {e}") from None
            if not data:
                continue
            self.stats.bytes_received += len(data)
            for frame in self._decoder.feed(data):
                try:
                    self._inbox.append(decode_reply(frame))
                except FrameError as e:
                    self.stats.bad_frames += 1
                    log.debug("%s: bad reply frame dropped: %s", self.url, e)
                    self._inbox.append(None)
        r = self._inbox.pop(0)
        if r is not None:
            self.stats.replies += 1
        return r

    # ------------------------------------------------------------------ unsequenced ops
    def _simple(self, op: Op, what: str) -> Reply:
        """Send an unsequenced request until its reply comes (bounded).

        IDENTIFY uses the session's next seq (the board sets ``last`` to it); READ_COUNTERS a
        counter of its own (the board ignores it; only the echo matters), so a late reply to
        an earlier call is never taken for this one's.
        """
        if op == Op.IDENTIFY:
            seq = self._seq
        else:
            self._useq = seq = seq_after(self._useq)
        tries = timeouts = garbled = 0
        t_start = time.monotonic()
        self._write(b"\x00")  # end any half frame a previous host left on the board
        while True:
            self._send(seq, op)
            deadline = time.monotonic() + self.timeout + 2 * self._line(300)
            while True:
                r = self._poll(deadline)
                if r is False:
                    self.stats.timeouts += 1
                    timeouts += 1
                    break
                if r is None or r.is_nak:  # our request or its reply was mangled: ask again now
                    self.stats.naks += r is not None
                    garbled += 1
                    break
                if r.op == NAK_OP and r.status == Status.BUSY:
                    raise BoardError(f"{self.url}: the board is serving another host (it answered BUSY and "
                                     "closed this connection); try again when that host is done", r.status)
                if r.seq == seq and r.op == op:
                    if r.status != Status.OK:
                        raise BoardError(f"{self.url}: {what} refused: {status_text(r.status)}", r.status)
                    return r
                self.stats.stale += 1
            tries += 1
            if tries > self.retries:
                raise DeviceTimeout(
                    f"{self.url}: no valid reply to {what} after {tries} tries in "
                    f"{time.monotonic() - t_start:.2f} s ({_tally(timeouts, garbled, self.timeout)}): "
                    "is a spikeforge board (bitstream flashed, right port and baud) connected?"
                )
            self.stats.resends += 1

    def identify(self) -> IdentifyInfo:
        """IDENTIFY: open a session (resynchronises sequence numbers) and read the board's info.

        Raises
        ------
        NotABoardError
            The port echoes our bytes (a loopback) or answers with something else.
        DeviceTimeout
            Nothing answers.
        """
        self._inbox.clear()
        self._decoder.reset()
        try:
            r = self._simple(Op.IDENTIFY, "IDENTIFY")
            info = IdentifyInfo.unpack(r.payload)
        except ProtocolError as e:
            raise NotABoardError(f"{self.url}: the IDENTIFY reply is not a spikeforge board's: {e}") from None
        except DeviceTimeout as e:
            if self.stats.bad_frames and not self.stats.replies:
                raise NotABoardError(
                    f"{self.url}: something answers but not with spikeforge frames "
                    f"({self.stats.bad_frames} undecodable frames, e.g. a loopback echoing our requests); "
                    "check the port"
                ) from e
            raise
        self._check_info(info)
        self.info = info
        self._seq = seq_after(self._seq)  # the board's last = our IDENTIFY's seq
        self._synced = True
        log.info("%s: board core %r (%d neurons), protocol v%d, %d baud, build 0x%08x, rx_frames %d",
                 self.url, info.config.name, info.config.n_neurons, info.version, info.baud,
                 info.build_id, info.rx_frames)
        return info

    def _check_info(self, info: IdentifyInfo) -> None:
        """Refuse IDENTIFY fields the host would divide by or size a window with."""
        for name, value, lo, hi in (("baud", info.baud, BAUD_RANGE[0], BAUD_RANGE[1]),
                                    ("rx_frames", info.rx_frames, 1, 255)):
            if not lo <= value <= hi:
                raise NotABoardError(f"{self.url}: the board's IDENTIFY reply says {name} = {value}, which is out "
                                     f"of range; allowed: {lo}..{hi} (a broken or foreign board)")

    def counters(self) -> Counters:
        """READ_COUNTERS."""
        self._need_info()
        r = self._simple(Op.READ_COUNTERS, "READ_COUNTERS")
        try:
            return Counters.unpack(r.payload)
        except ProtocolError as e:
            raise DeviceError(f"{self.url}: bad READ_COUNTERS reply: {e}") from None

    # ------------------------------------------------------------------ sequenced ops
    def _ensure_synced(self) -> None:
        self._need_info()
        if not self._synced:
            log.info("%s: re-opening the session after an error", self.url)
            self.identify()

    def _transact(self, requests: Sequence[tuple[Op, bytes]], what: str, progress: Any = None) -> list[Done]:
        """Send sequenced requests without spike replies, pipelined (go-back-N); their Dones.

        ``Done`` records are returned for the requests whose own final reply arrived
        (cumulative acknowledgements may skip some: those get ``None``).
        """
        self._ensure_synced()
        n = len(requests)
        base = self._seq
        frames: list[bytes] = []  # encoded as first sent (overlaps the CPU work with the line)
        dones: list[Any] = [None] * n
        acked = sent = 0
        stalls = 0
        quiet_until = 0.0
        old_left = 0  # replies still due to frames sent before the last go-back
        win = min(self.window, 127)
        settle = min(0.001, self.timeout / 4)
        self._synced = False  # until every request is acknowledged

        def go_back(force: bool) -> None:
            """Re-send from the first unacknowledged request (go-back-N).

            Not again while replies to what was in flight before are still due (their NAKs and
            BAD_SEQs say nothing new): until as many replies came as frames were in flight, or
            their line time passed; unless ``force`` (a timeout).
            """
            nonlocal sent, quiet_until, old_left
            now = time.monotonic()
            if acked >= sent or (not force and now < quiet_until and old_left > 0):
                return
            self.stats.resends += sent - acked
            quiet_until = now + 2 * self._line(sum(map(len, frames[acked:sent]))) + settle
            old_left = sent - acked
            sent = acked
            self._write(b"\x00")  # end any partial frame whose delimiter was lost

        deadline: float | None = None  # kept across stale replies: a babbling port cannot hold us
        while acked < n:
            while sent < n and sent - acked < win:
                if sent == len(frames):
                    op, p = requests[sent]
                    frames.append(encode_request(seq_after(base, sent), op, p))
                self._write(frames[sent])
                self.stats.frames_sent += 1
                sent += 1
                deadline = None
            if deadline is None:
                inflight = sum(map(len, frames[acked:sent]))
                deadline = time.monotonic() + self.timeout + 2 * self._line(inflight)
            r = self._poll(deadline)
            advanced = acked
            if r is not False:
                old_left -= 1
            if r is False:
                self.stats.timeouts += 1
                stalls += 1
                if stalls > self.retries:
                    raise DeviceTimeout(
                        f"{self.url}: {what}: no acknowledgement of request {acked + 1} of {n} after "
                        f"{stalls} timeouts of {self.timeout:.2f} s; the board may have executed "
                        "it: the session is re-opened on the next call"
                    )
                go_back(force=True)
                deadline = None
                continue
            if r is None:  # a reply was lost
                go_back(force=False)
                continue
            if r.is_nak:
                self.stats.naks += 1
                if r.payload:
                    acked = self._acked_through(r.payload[0], base, acked, sent)
                go_back(force=False)
            else:
                d = seq_distance(seq_after(base, acked), r.seq)
                if d >= sent - acked or r.op not in SEQUENCED_OPS:  # late reply to an acknowledged one
                    self.stats.stale += 1
                    continue
                k = acked + d
                if r.status in (Status.OK, Status.DUPLICATE):
                    if r.op != requests[k][0]:
                        raise DeviceError(
                            f"{self.url}: {what}: reply to seq {r.seq} is for op 0x{r.op:02x}, "
                            f"expected {requests[k][0].name}: the board's sequence state differs from "
                            "the host's (another host on the port?); the session is re-opened on the next call"
                        )
                    self.stats.duplicates += r.status == Status.DUPLICATE
                    try:
                        dones[k] = Done.unpack(r.payload)
                    except ProtocolError as e:
                        raise DeviceError(f"{self.url}: {what}: bad final reply: {e}") from None
                    acked = k + 1
                elif r.status == Status.BAD_SEQ:
                    self.stats.bad_seq += 1
                    if not r.payload:
                        raise DeviceError(f"{self.url}: {what}: BAD_SEQ reply without the expected seq")
                    acked = self._acked_through((r.payload[0] - 1) & 0xFF, base, acked, sent)
                    go_back(force=False)
                else:
                    raise BoardError(
                        f"{self.url}: {what}: request {k + 1} of {n} ({requests[k][0].name}) refused: "
                        f"{status_text(r.status)}", r.status,
                    )
            if acked > advanced:
                stalls = 0
                deadline = None
                if progress is not None:
                    progress(acked - advanced)
        self._seq = seq_after(base, n)
        self._synced = True
        return dones

    def _acked_through(self, last: int, base: int, acked: int, sent: int) -> int:
        """Requests acknowledged once the board says its last executed seq is ``last``.

        Requests run ``base, base + 1, ...``; ``acked`` are acknowledged, ``sent`` sent. A
        ``last`` among the unacknowledged ones acknowledges it and all before it (execution is
        in order); one at or just behind ``acked`` is old news; anything else means the board
        lost track of this session.
        """
        first = seq_after(base, acked)  # seq of the first unacknowledged request
        d = seq_distance(first, last)
        if d < sent - acked:
            return acked + d + 1
        if 1 <= seq_distance(last, first) <= 128:
            return acked
        raise DeviceError(
            f"{self.url}: the board's last executed seq is {last} but the host's unacknowledged requests "
            f"start at {first}: the board was reset or another host talked to it; the session is "
            "re-opened on the next call"
        )

    def _run_op(self, op: Op, payload: bytes, steps: int) -> list[tuple[int, int]]:
        """One RUN/STEP request; its spikes as ``(core slot, full timestep)``."""
        self._ensure_synced()
        cfg = self.config
        seq = self._seq
        frame = encode_request(seq, op, payload)
        t0 = self.timestep
        bits = wire_time_bits(cfg)
        spikes: list[tuple[int, int]] = []
        tries = timeouts = garbled = 0
        got_any = False
        self._synced = False
        self._write(frame)
        self.stats.frames_sent += 1
        most = steps * cfg.n_neurons  # spikes a run can produce at most
        deadline: float | None = None  # kept across stale replies: a babbling port cannot hold us
        while True:
            if deadline is None:
                deadline = time.monotonic() + self.timeout + steps * self.step_timeout + 2 * self._line(len(frame))
            r = self._poll(deadline)
            if r is not False and r is not None and r.is_nak:
                self.stats.naks += 1
                if got_any or (r.payload and r.payload[0] == seq):
                    continue  # our frame got through; the NAK is about something else
                r = None  # our frame was probably the one dropped
            if r is None or r is False:  # timeout, NAK or a mangled reply (maybe our final): ask again
                self.stats.timeouts += r is False
                timeouts += r is False
                garbled += r is None
                tries += 1
                if tries > self.retries:
                    raise DeviceTimeout(
                        f"{self.url}: {op.name} of {steps} steps: no final reply after {tries} tries "
                        f"({_tally(timeouts, garbled, self.timeout)}); "
                        "the board may have run it: reset() and run again from timestep 0"
                    )
                self.stats.resends += 1
                self._write(b"\x00" + frame)
                self.stats.frames_sent += 1
                deadline = None
                continue
            if r.seq != seq or r.op != op:
                self.stats.stale += 1
                continue
            if r.status == Status.BAD_SEQ:
                self.stats.bad_seq += 1
                exp = r.payload[0] if r.payload else -1
                if exp == seq_after(seq):  # executed (its DUPLICATE must have been lost): ask again
                    continue
                raise DeviceError(
                    f"{self.url}: {op.name} refused as out of sequence (board expects seq {exp}, host sent "
                    f"{seq}): the board was reset or another host talked to it; the session is re-opened "
                    "on the next call"
                )
            if r.status == Status.MORE:
                got_any = True
                tries = 0
                deadline = None
                spikes += self._unwrap(r.payload, t0, bits, steps)
                if len(spikes) > most:
                    raise DeviceError(
                        f"{self.url}: {op.name} of {steps} steps: the board sent more than {most} spikes "
                        f"({cfg.n_neurons} neurons x {steps} steps): it is not following the protocol"
                    )
                continue
            if r.status not in (Status.OK, Status.DUPLICATE):
                raise BoardError(f"{self.url}: {op.name} refused: {status_text(r.status)}", r.status)
            try:
                done = Done.unpack(r.payload)  # a DUPLICATE may re-send the final spikes too
                spikes += self._unwrap(r.payload[8:], t0, bits, steps)
            except ProtocolError as e:
                raise DeviceError(f"{self.url}: bad {op.name} reply: {e}") from None
            self.stats.duplicates += r.status == Status.DUPLICATE
            self._seq = seq_after(seq)
            self.timestep = t0 + steps
            if done.count != len(spikes):
                raise StateAdvancedError(
                    f"{self.url}: {op.name} (seq {seq}) ran steps {t0}..{t0 + steps - 1} on the board and sent "
                    f"{done.count} spikes, but {len(spikes)} arrived (replies lost on the line): the board "
                    "state has advanced; reset() and run again from timestep 0"
                )
            self._check_time(done, op.name)
            self._synced = True
            return spikes

    def _unwrap(self, payload: bytes, t0: int, bits: int, steps: int | None = None) -> list[tuple[int, int]]:
        """Spikes of a reply as ``(slot, full timestep)``; each must be a slot of the core and, when
        ``steps`` is given, a step of this run (``t0 .. t0 + steps - 1``)."""
        out = [(n, unwrap_time(t, t0, bits)) for n, t in unpack_spikes(payload)]
        n_core = self.config.n_neurons
        for n, t in out:
            if not 0 <= n < n_core:
                self._synced = False
                raise DeviceError(f"{self.url}: the board sent a spike of slot {n}; its core has slots "
                                  f"0..{n_core - 1}: it is not following the protocol")
            if steps is not None and not t0 <= t < t0 + steps:
                self._synced = False
                raise DeviceError(f"{self.url}: the board sent a spike at t = {t} in a run of steps "
                                  f"{t0}..{t0 + steps - 1}: it is not following the protocol")
        return out

    def _check_time(self, done: Done, what: str) -> None:
        bits = min(32, self.config.time_bits)
        if done.timestep != self.timestep & ((1 << bits) - 1):
            self._synced = False
            raise DeviceError(
                f"{self.url}: after {what} the board is at timestep {done.timestep}, the host expected "
                f"{self.timestep & ((1 << bits) - 1)}: board and host disagree (another host, or a reset); "
                "reset() and run again from timestep 0"
            )

    # ------------------------------------------------------------------ public commands
    def reset(self) -> None:
        """RESET: clear the core state (potentials, pending events, timestep 0); keep the image."""
        dones = self._transact([(Op.RESET, b"")], "RESET")
        self.timestep = 0
        if dones[0] is not None:
            self._check_time(dones[0], "RESET")

    def load(self, image: CoreImage, *, progress: bool = False,
             clock: Callable[[], float] | None = None) -> LoadReport:
        """Load a core image: check its core, RESET(fingerprint), LOAD frames, RESET.

        Frames are pipelined (``window`` in flight). After the load, READ_COUNTERS checks
        that the core ignored none of the beats. ``seconds`` of the report is the wall time of
        the LOAD frames; give ``clock`` (e.g. a virtual board's simulated time) to time them
        with it instead.

        Raises
        ------
        WrongCoreError
            The image is for another core configuration (both are named).
        """
        cfg = self.config
        self._check_core(image, f"lower the network for '{cfg.name}' (spikeforge image NET --target {cfg.name})")
        cmds = load_commands(image)
        enc = beat_encoder(cfg)
        beats = [enc(Opcode.WRITE.value, c.addr, c.data) for c in cmds if c.op == Opcode.WRITE]
        per = beats_per_frame(cfg)
        reqs = [(Op.LOAD, pack_beats(cfg, beats[i : i + per])) for i in range(0, len(beats), per)]
        before = self.counters().core_errors
        try:
            self._transact([(Op.RESET, fingerprint_bytes(image.config))], "RESET before LOAD")
        except BoardError as e:
            if e.status == Status.WRONG_CORE:
                raise WrongCoreError(
                    f"{self.url}: the board refused image for core {image.config.name!r}: its fingerprint "
                    f"differs from the board's ({cfg.name!r})"
                ) from None
            raise
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(reqs), unit="frame", desc="load", leave=False)
        now = clock or time.perf_counter
        t0 = now()
        try:
            self._transact(reqs, "LOAD", progress=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        seconds = now() - t0
        self.reset()
        after = self.counters().core_errors
        if (after - before) & 0xFFFF:
            raise DeviceError(
                f"{self.url}: the core ignored {(after - before) & 0xFFFF} beats of the image (bad addresses): "
                "the image and the bitstream disagree on the memory layout; rebuild both with this spikeforge"
            )
        self.image = image
        payload = sum(len(p) for _, p in reqs)
        wire = sum(encoded_size(REQUEST_HEADER_BYTES + len(p) + CRC_BYTES) for _, p in reqs)
        rep = LoadReport(len(beats), len(reqs), payload, wire, seconds, self._need_info().baud)
        log.info("%s: loaded %d beats in %d frames, %.3f s (%.0f %% of the line rate)", self.url,
                 rep.beats, rep.frames, seconds, 100 * rep.payload_fraction)
        return rep

    def attach(self, image: CoreImage) -> None:
        """Use ``image`` as the network the board already runs, without loading it.

        For a board whose bitstream has the image baked in (``spikeforge build --network``,
        ``start_virtual_board(..., image=)``): the Device needs the image only for its port
        maps. Sends nothing; the board's core must match the image's.

        Raises
        ------
        WrongCoreError
            The image is for another core configuration than the board's.
        """
        self._check_core(image, "attach the image the bitstream was built with (image.json beside it)")
        self.image = image

    def _check_core(self, image: CoreImage, fix: str) -> None:
        """``WrongCoreError`` naming both cores and ``fix`` if ``image`` is not for the board's core;
        ``ImageError`` if the image does not fit its own core (:meth:`CoreImage.validate`)."""
        image.validate()
        cfg = self.config
        if image.config.fingerprint() != cfg.fingerprint():
            raise WrongCoreError(
                f"{self.url}: the image is for core {image.config.name!r} (fingerprint "
                f"{image.config.fingerprint()}: {image.config.n_neurons} neurons, {image.config.n_synapses} "
                f"synapses), the board carries core {cfg.name!r} (fingerprint {cfg.fingerprint()}: "
                f"{cfg.n_neurons} neurons, {cfg.n_synapses} synapses); {fix}"
            )

    def _need_image(self) -> CoreImage:
        if self.image is None:
            raise DeviceError("no image loaded by this Device: call load(image) first (the board keeps no port map)")
        return self.image

    def _input_beats(self, events: Iterable[tuple[int, int]]) -> list[int]:
        """``(input_index, value)`` pairs as INPUT beats for the image's input ports."""
        img = self._need_image()
        cfg = img.config
        beats = []
        for k, (i, v) in enumerate(events):
            if not 0 <= i < len(img.inputs):
                raise ValueError(f"input #{k}: input_index = {i} is out of range; the image has {len(img.inputs)} inputs")
            try:
                c = Command.input(cfg, img.inputs[i], int(v))
                beats.append(beat_encoder(cfg)(Opcode.INPUT.value, c.addr, c.data))
            except ValueError as e:
                raise ValueError(f"input #{k}: {e}") from None
        return beats

    def step(self, inputs: Iterable[tuple[int, int]] = (), steps: int = 1) -> list[tuple[int, int]]:
        """The closed-loop call: apply inputs to the next step, run ``steps`` steps, get spikes.

        One STEP frame out and its reply back (when the inputs fit one frame and
        ``steps <= run_chunk``), no round trip per event.

        Parameters
        ----------
        inputs
            ``(input_index, value)`` pairs, added at the current timestep.
        steps
            Steps to run (0: only apply the inputs).

        Returns
        -------
        list of (neuron_id, t)
            Spikes of every neuron of the image in those steps (``t`` absolute), in time order.
        """
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps = {steps!r} is out of range; allowed: an integer >= 0")
        img = self._need_image()
        beats = self._input_beats(inputs)
        return self._ids(self._step_beats(beats, steps), img)

    def _step_beats(self, beats: list[int], steps: int) -> list[tuple[int, int]]:
        cfg = self.config
        per = beats_per_frame(cfg, extra=2)
        if len(beats) > per:  # more inputs than one STEP frame holds: the rest go first as INPUT
            keep = len(beats) % per or per
            lead, beats = beats[:-keep], beats[-keep:]
            self._transact([(Op.INPUT, pack_beats(cfg, lead[i : i + per])) for i in range(0, len(lead), per)],
                           "INPUT")
        chunk = min(self.run_chunk, 1 << wire_time_bits(cfg))
        first = min(steps, chunk)
        out = self._run_op(Op.STEP, steps_payload(first, pack_beats(cfg, beats)), first)
        left = steps - first
        while left > 0:
            k = min(left, chunk)
            out += self._run_op(Op.RUN, steps_payload(k), k)
            left -= k
        return out

    def _ids(self, spikes: list[tuple[int, int]], img: CoreImage) -> list[tuple[int, int]]:
        self._check_used(spikes, img)
        return [(img.neuron_ids[s], t) for s, t in spikes]

    def _check_used(self, spikes: list[tuple[int, int]], img: CoreImage) -> None:
        """A spike of a slot the image leaves empty (all-zero parameters never fire) is a lie."""
        n = len(img.neuron_ids)
        for s, t in spikes:
            if s >= n:
                raise DeviceError(f"{self.url}: the board sent a spike of slot {s} at t = {t}; the image uses "
                                  f"slots 0..{n - 1} (the others have no synapses and threshold 0 is never "
                                  "touched): it is not following the protocol")

    def run(self, steps: int) -> list[tuple[int, int]]:
        """Run ``steps`` steps with no new inputs; spikes as ``(neuron_id, t)``."""
        return self.step((), steps)

    def simulate(self, inputs: Sequence[InputEvent] = (), steps: int = 100) -> SimResult:
        """Reset, then run ``steps`` steps with these inputs: the board's ``reference.simulate``.

        ``inputs`` are ``(input_index, time, value)`` triples, checked like
        :func:`spikeforge.hdl.driver.run_commands` does (index, time, value, accumulator);
        as in the reference model, those at a time ``>= steps`` are ignored. If spikes are lost
        on the way back (:class:`StateAdvancedError`), the whole run is done again from a
        RESET, up to ``retries`` times: the result is exact or an error, never partial.
        """
        img = self._need_image()
        cfg = img.config
        # like the reference: inputs at or after `steps` cannot act within the run (dropped)
        inputs = [e for e in inputs if int(e[1]) < steps]
        cmds = run_commands(img, inputs, steps)  # validates; INPUTs before the RUN that runs them
        replays = 0
        while True:
            try:
                slots = self._replay(cmds, cfg)
                break
            except StateAdvancedError as e:  # spikes lost: the whole run is known, so run it again
                replays += 1
                if replays > self.retries:
                    raise
                log.warning("%s; running again from timestep 0 (%d of %d)", e, replays, self.retries)
        self._check_used(slots, img)
        out = sorted((t, s) for s, t in slots)  # times are already unwrapped (and checked)
        fan = self._fan_out(img)
        return SimResult(
            neuron_ids=np.array(img.neuron_ids, dtype=np.int64), steps=steps,
            spike_times=np.array([t for t, _ in out], dtype=np.int64),
            spike_index=np.array([s for _, s in out], dtype=np.int64),
            events=sum(fan[s] for _, s in out),
        )

    def _replay(self, cmds: Sequence[Command], cfg: CoreConfig) -> list[tuple[int, int]]:
        """RESET, then the run's commands as STEP frames; spikes as ``(slot, t)``."""
        self.reset()
        beats: list[int] = []
        slots: list[tuple[int, int]] = []
        for c in cmds:
            if c.op == Opcode.INPUT:
                beats.append(beat_encoder(cfg)(Opcode.INPUT.value, c.addr, c.data))
            else:  # RUN n: the INPUTs gathered so far belong to its first step
                slots += self._step_beats(beats, c.data)
                beats = []
        return slots

    def _fan_out(self, img: CoreImage) -> list[int]:
        """Synapses leaving each used slot (``events`` = spikes x fan-out, as the reference)."""
        if getattr(self, "_fan_image", None) is not img:
            model = ImageModel(img)
            d = img.config.max_delay
            self._fan = [sum(len(model.segment(i, j)) for j in range(d)) for i in range(len(img.neuron_ids))]
            self._fan_image = img
        return self._fan
