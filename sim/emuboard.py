"""The emulated board: the serial protocol of :mod:`spikeforge.firmware.protocol` in Python.

A faster stand-in for the Verilator virtual board, speaking the same bytes. Its core is the
image-level model (:class:`spikeforge.hdl.image.ImageModel`, checked spike for spike against
the reference model) driven by the core's own command beats; the protocol engine follows
``firmware/PROTOCOL.md`` to the letter (COBS frames, CRC, NAKs, exactly-once sequencing,
DUPLICATE re-sends, MORE spike streams), so host code that works against it works against
the gateware.

Layers
------
:class:`EmuCore`
    The core: ``WRITE`` / ``INPUT`` / ``RUN`` / ``CLEAR`` beats onto the image model.
:class:`EmuBoard`
    The protocol engine: :meth:`EmuBoard.receive` takes bytes and returns the reply bytes,
    with a line-rate model (PROTOCOL.md §8) that says *when* each reply leaves.
:func:`serve`
    Runs an :class:`EmuBoard` in a background thread behind a real pseudo-terminal
    (``port="pty"``) or a TCP socket (``port="tcp:PORT"``, 0 = any free port) and returns a
    :class:`ServedBoard` with ``.url`` (for ``serial.serial_for_url``), ``.path`` and
    ``.close()``.

Example::

    from spikeforge.sim.emuboard import serve
    from spikeforge.toolchain.deploy import Device
    with serve("tiny", port="pty") as board, Device.open(board.url) as dev:
        print(dev.info.config.name)
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from spikeforge.firmware.protocol import (
    BEAT_OPS,
    NAK_OP,
    SEQUENCED_OPS,
    SPIKES_PER_FINAL,
    SPIKES_PER_MORE,
    Counters,
    Done,
    FrameDecoder,
    FrameError,
    IdentifyInfo,
    Op,
    Status,
    check_payload_length,
    decode_request,
    encode_reply,
    fingerprint_bytes,
    force_op,
    line_seconds,
    pack_spikes,
    unpack_beats,
)
from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import (
    REGION_BITS,
    CoreImage,
    ImageModel,
    Region,
    index_fields,
    offset_bits,
    param_fields,
    synapse_fields,
    unpack,
)
from spikeforge.hdl.protocol import OP_BITS, Opcode, addr_bits

__all__ = ["BoardProcess", "EmuBoard", "EmuCore", "EmuSerial", "EmuStats", "ServedBoard", "serve", "serve_process"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the core
class EmuCore:
    """The spiking core as the command stream sees it, on the image-level model.

    Parameters
    ----------
    config
        The core configuration (memories start all-zero, like the gateware after power-up).
    """

    def __init__(self, config: CoreConfig) -> None:
        self.cfg = config
        empty = CoreImage(config, [], [], [], [], [], [], [], [])
        self.model = ImageModel(empty)
        self._fields = {
            Region.PARAMS: (param_fields(config), self.model.params, config.n_neurons),
            Region.INDEX: (index_fields(config), self.model.index, config.index_depth),
            Region.SYNAPSES: (synapse_fields(config), self.model.syn, config.n_synapses),
        }
        self._ab = addr_bits(config)
        self._ob = offset_bits(config)
        self._pending: dict[tuple[int, int], int] = {}  # written words, decoded before a run
        self._depth = [0] * (1 << REGION_BITS)  # words per region (0: no such region)
        for r, (_, _, depth) in self._fields.items():
            self._depth[int(r)] = depth
        self.errors = 0
        self.events = 0

    def execute(self, beat: int, on_spike: Callable[[int, int], None]) -> None:
        """Execute one command beat; spikes of a RUN go to ``on_spike(neuron, timestep)``."""
        cfg = self.cfg
        op = beat & ((1 << OP_BITS) - 1)
        addr = (beat >> OP_BITS) & ((1 << self._ab) - 1)
        data = beat >> (OP_BITS + self._ab)
        if op == Opcode.WRITE.value:
            self.write(addr, data)
        elif op == Opcode.INPUT.value:
            if addr >= cfg.n_neurons:
                self.errors += 1
                return
            ib = cfg.input_bits
            v = data & ((1 << ib) - 1)
            self.model.input(addr, v - (1 << ib) if v >> (ib - 1) else v)
        elif op == Opcode.RUN.value:
            self._decode()
            m = self.model
            tmask = (1 << cfg.time_bits) - 1
            for _ in range(data):
                before, t = len(m.spikes), m.t
                m.step()
                for n, _t in m.spikes[before:]:
                    on_spike(n, t & tmask)
                del m.spikes[:]
            self.events += m.delivered
            m.delivered = 0
        elif op == Opcode.CLEAR.value:
            self.events += self.model.delivered
            self.model.clear()
        elif op != Opcode.NOP.value:
            self.errors += 1

    def write(self, addr: int, data: int) -> None:
        """A ``WRITE`` beat's effect (the word is decoded before the next run)."""
        region, offset = addr >> self._ob, addr & ((1 << self._ob) - 1)
        if region >= len(self._depth) or offset >= self._depth[region]:
            self.errors += 1
            return
        self._pending[(region, offset)] = data

    def write_beats(self, beats: list[int]) -> None:
        """Many beats executed as ``WRITE`` whatever their op field (a LOAD frame)."""
        ab, amask = OP_BITS + self._ab, (1 << self._ab) - 1
        for b in beats:
            self.write((b >> OP_BITS) & amask, b >> ab)

    def _decode(self) -> None:
        """Unpack the words written since the last run into the model's memories."""
        for (region, offset), word in self._pending.items():
            fields, mem, _ = self._fields[Region(region)]
            mem[offset] = unpack(fields, word)
        self._pending.clear()

    @property
    def timestep(self) -> int:
        """The next step to run (wraps at ``time_bits``)."""
        return self.model.t & ((1 << self.cfg.time_bits) - 1)


# ----------------------------------------------------------------------------- the protocol engine
@dataclass
class EmuStats:
    """What the emulated board saw (for tests: exactly-once checks and fault counts)."""

    executed: list[tuple[int, int]] = field(default_factory=list)
    """``(seq, op)`` of every executed sequenced command, in order."""
    input_beats: int = 0
    """INPUT beats executed (from INPUT and STEP frames)."""
    frames_ok: int = 0
    frames_bad: int = 0
    duplicates: int = 0
    rejected: int = 0
    overflows: int = 0
    spikes: int = 0


class EmuBoard:
    """The board's protocol engine over an :class:`EmuCore`.

    Parameters
    ----------
    config
        Core configuration (or a preset name).
    baud
        Modelled line rate (reported by IDENTIFY; paces replies, see :meth:`receive`).
    rx_frames
        Frames buffered besides the one executing (reported by IDENTIFY). A frame that
        completes while that many are already waiting is dropped and NAKed with OVERFLOW.
    build_id
        Reported by IDENTIFY.
    model_line
        Model the line rate (default). Off: every reply leaves at once (fast tests).
    """

    def __init__(self, config: CoreConfig | str, *, baud: int = 3_000_000, rx_frames: int = 4,
                 build_id: int = 0x454D5542, model_line: bool = True) -> None:
        cfg = preset(config) if isinstance(config, str) else config
        if not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"baud = {baud!r} is out of range; allowed: a positive integer")
        if not 1 <= rx_frames <= 127:
            raise ValueError(f"rx_frames = {rx_frames!r} is out of range; allowed: 1..127")
        self.cfg = cfg
        self.info = IdentifyInfo(cfg, rx_frames=rx_frames, baud=baud, clock_hz=0, build_id=build_id)
        self.baud = baud
        self.model_line = model_line
        self.core = EmuCore(cfg)
        self.stats = EmuStats()
        self.last = 0xFF
        self.last_op = 0
        self.last_final = Done(0, 0).pack()  # payload of the last final reply (re-sent on DUPLICATE)
        self._decoder = FrameDecoder()
        self._rx_clock = 0.0  # model time the last received byte finished arriving
        self._tx_clock = 0.0  # model time the TX line is free
        self._starts: deque[float] = deque()  # model start times of recent frames

    # ------------------------------------------------------------------ bytes in, bytes out
    def receive(self, data: bytes, now: float | None = None) -> list[tuple[float, bytes]]:
        """Take received bytes; return ``(send_at, reply_bytes)`` in order.

        ``now`` is the arrival time (``time.monotonic()`` if omitted). With the line model,
        byte ``k`` of ``data`` arrives ``10/baud`` seconds after byte ``k - 1`` (or at
        ``now``, whichever is later), a frame executes when its delimiter has arrived and the
        previous command's replies have left, and each reply occupies the TX line for its own
        length; ``send_at`` is when its last byte has left.
        """
        now = time.monotonic() if now is None else now
        out: list[tuple[float, bytes]] = []
        bit = line_seconds(1, self.baud) if self.model_line else 0.0
        start = max(self._rx_clock, now)
        for chunk_end, frame in self._split(data):
            arrived = start + (chunk_end + 1) * bit
            # frames still waiting (arrived, not started) when this one completes
            while self._starts and self._starts[0] <= arrived:
                self._starts.popleft()
            begin = max(arrived, self._tx_clock)
            if self.model_line and len(self._starts) >= self.info.rx_frames:
                self.stats.overflows += 1
                replies = [encode_reply(0, NAK_OP, Status.OVERFLOW, bytes([self.last]))]
            else:
                self._starts.append(begin)
                replies = self._frame(frame)
            t = max(begin, self._tx_clock)
            for r in replies:
                t += line_seconds(len(r), self.baud) if self.model_line else 0.0
                out.append((t, r))
            self._tx_clock = t
        self._rx_clock = start + len(data) * bit if self.model_line else now
        return out

    def _split(self, data: bytes) -> list[tuple[int, bytes]]:
        """Frames completed in ``data`` with the index of their delimiter."""
        out = []
        i = 0
        while True:
            j = data.find(b"\x00", i)
            if j < 0:
                self._decoder.feed(data[i:])
                return out
            for f in self._decoder.feed(data[i : j + 1]):
                out.append((j, f))
            i = j + 1

    # ------------------------------------------------------------------ one frame
    def _frame(self, frame: bytes) -> list[bytes]:
        st = self.stats
        try:
            req = decode_request(frame)
        except FrameError as e:
            st.frames_bad += 1
            log.debug("emuboard: dropped frame: %s", e)
            return [encode_reply(0, NAK_OP, e.kind, bytes([self.last]))]
        st.frames_ok += 1
        seq, op, payload = req.seq, req.op, req.payload
        status = check_payload_length(op, len(payload), self.cfg)
        if status != Status.OK:
            st.rejected += 1
            return [encode_reply(seq, op, status)]
        if op == Op.IDENTIFY:
            self.last = seq
            return [encode_reply(seq, op, Status.OK, self.info.pack())]
        if op == Op.READ_COUNTERS:
            return [encode_reply(seq, op, Status.OK, self.counters().pack())]
        assert op in SEQUENCED_OPS  # check_payload_length knows no other op
        if seq == self.last:
            st.duplicates += 1
            return [encode_reply(seq, self.last_op, Status.DUPLICATE, self.last_final)]
        if seq != (self.last + 1) & 0xFF:
            st.rejected += 1
            return [encode_reply(seq, op, Status.BAD_SEQ, bytes([(self.last + 1) & 0xFF]))]
        if op == Op.RESET and payload and payload != fingerprint_bytes(self.cfg):
            st.rejected += 1
            return [encode_reply(seq, op, Status.WRONG_CORE)]
        replies, final = self._execute(seq, Op(op), payload)
        self.last, self.last_op, self.last_final = seq, op, final
        st.executed.append((seq, op))
        return replies

    def _execute(self, seq: int, op: Op, payload: bytes) -> tuple[list[bytes], bytes]:
        """Run one sequenced command: its replies and the payload of its final reply."""
        core = self.core
        spikes: list[tuple[int, int]] = []
        replies: list[bytes] = []
        sent = 0

        def on_spike(n: int, t: int) -> None:
            nonlocal sent
            spikes.append((n, t))
            if len(spikes) == SPIKES_PER_MORE + 1:  # one more than fits: the first 62 go out
                replies.append(encode_reply(seq, op, Status.MORE, pack_spikes(spikes[:SPIKES_PER_MORE])))
                del spikes[:SPIKES_PER_MORE]
                sent += SPIKES_PER_MORE

        count = 0
        if op == Op.RESET:
            core.execute(Opcode.CLEAR.value, on_spike)
        elif op == Op.LOAD:
            beats = unpack_beats(self.cfg, payload)
            core.write_beats(beats)  # the op field is overridden: every beat is a WRITE
            count = len(beats)
        elif op == Op.INPUT:
            beats = unpack_beats(self.cfg, payload)
            for b in beats:
                core.execute(force_op(self.cfg, b, BEAT_OPS[op]), on_spike)
            count = len(beats)
            self.stats.input_beats += count
        else:  # RUN, STEP
            steps = int.from_bytes(payload[:2], "little")
            if op == Op.STEP:
                beats = unpack_beats(self.cfg, payload[2:])
                for b in beats:
                    core.execute(force_op(self.cfg, b, Opcode.INPUT), on_spike)
                self.stats.input_beats += len(beats)
            if steps:
                core.execute(Opcode.RUN.value | (steps << (OP_BITS + addr_bits(self.cfg))), on_spike)
            if len(spikes) > SPIKES_PER_FINAL:  # the final reply holds at most 60
                replies.append(encode_reply(seq, op, Status.MORE, pack_spikes(spikes)))
                sent += len(spikes)
                spikes = []
            count = sent + len(spikes)
            self.stats.spikes += count
        final = Done(core.timestep, count).pack() + pack_spikes(spikes)
        replies.append(encode_reply(seq, op, Status.OK, final))
        return replies, final

    def counters(self) -> Counters:
        """The READ_COUNTERS record."""
        st = self.stats
        return Counters(
            timestep=self.core.timestep, events=self.core.events + self.core.model.delivered, cycles=0,
            core_errors=self.core.errors, frames_ok=st.frames_ok, frames_bad=st.frames_bad,
            duplicates=st.duplicates, rejected=st.rejected, overflows=st.overflows, spikes=st.spikes,
        )  # fmt: skip


# ----------------------------------------------------------------------------- transports
class EmuSerial:
    """A serial-port-like object wired straight to an :class:`EmuBoard` (no thread, no OS).

    ``write`` hands the bytes to the board at once and queues its replies for ``read`` (the
    line model is ignored: replies are readable immediately). For fast tests of host code;
    ``tap`` (if set) sees every reply frame and returns the bytes to deliver instead, and
    ``tap_in`` the same for the bytes the host writes (to drop or mangle either way,
    deterministically).
    """

    def __init__(self, board: EmuBoard, tap: Callable[[bytes], bytes] | None = None,
                 tap_in: Callable[[bytes], bytes] | None = None) -> None:
        self.board = board
        self.tap = tap
        self.tap_in = tap_in
        self.timeout: float | None = 0.0
        self.port = f"emu:{board.cfg.name}"
        self._rx = bytearray()

    def write(self, data: bytes) -> int:
        """Send bytes to the board."""
        data = self.tap_in(bytes(data)) if self.tap_in else bytes(data)
        for _, reply in self.board.receive(data, now=0.0):
            self._rx += self.tap(reply) if self.tap else reply
        return len(data)

    @property
    def in_waiting(self) -> int:
        """Reply bytes ready to read."""
        return len(self._rx)

    def read(self, n: int = 1) -> bytes:
        """Up to ``n`` reply bytes; when there are none, wait ``timeout`` (as a port would)."""
        if not self._rx:
            if self.timeout:
                time.sleep(self.timeout)
            return b""
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def close(self) -> None:
        """Nothing to release."""


#: Seconds a TCP client may stay silent before the served board drops it for the next one.
IDLE_TIMEOUT = 60.0
#: Seconds a second TCP client, told BUSY, is kept before it is closed (so it reads the BUSY).
BUSY_LINGER = 3.0


class ServedBoard:
    """An :class:`EmuBoard` served in a background thread (see :func:`serve`).

    Attributes
    ----------
    url
        What to pass to ``serial.serial_for_url`` / ``Device.open`` (a pty path, or
        ``socket://127.0.0.1:PORT``).
    path
        The pty path (``None`` for TCP).
    port
        The TCP port (``None`` for a pty).
    board
        The :class:`EmuBoard` (its ``stats`` and ``core`` are for tests).
    idle_timeout
        TCP: seconds a client may stay silent before it is dropped for the next one. One client
        is served at a time; another that connects meanwhile gets one BUSY frame and is closed.
    """

    def __init__(self, board: EmuBoard, kind: str, tcp_port: int = 0, host: str = "127.0.0.1",
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.board = board
        self.idle_timeout = idle_timeout
        self.path: str | None = None
        self.port: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        if kind == "pty":
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            self.path = os.ttyname(self._slave)
            self.url = self.path
            target = self._serve_pty
        else:
            self._server = socket.create_server((host, tcp_port))
            self.port = self._server.getsockname()[1]
            self.url = f"socket://{host}:{self.port}"
            target = self._serve_tcp
        self._thread = threading.Thread(target=target, name=f"emuboard-{kind}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ pumping
    def _pump(self, fd_read: Callable[[], bytes], fd_write: Callable[[bytes], None], fileno: int,
              others: socket.socket | None = None) -> bool:
        """Serve one connection until it closes (False) or the board is stopped (True).

        With ``others`` (the TCP listening socket) a second client is told BUSY and closed, and
        a client idle for :attr:`idle_timeout` seconds is dropped (so it cannot hold the board).
        """
        last = time.monotonic()
        busy: dict[socket.socket, float] = {}  # refused hosts -> when to close them
        try:
            return self._pump_loop(fd_read, fd_write, fileno, others, busy, last)
        finally:
            for c in busy:
                c.close()

    def _pump_loop(self, fd_read: Callable[[], bytes], fd_write: Callable[[bytes], None], fileno: int,
                   others: socket.socket | None, busy: dict[socket.socket, float], last: float) -> bool:
        """The loop of :meth:`_pump` (``busy`` holds the refused hosts, ``last`` the last activity)."""
        while not self._stop.is_set():
            watch = [fileno, self._wake_r] + ([others] if others is not None else []) + list(busy)
            r, _, _ = select.select(watch, [], [], 0.1 if busy else 0.5)
            if self._wake_r in r:
                return True
            if others is not None and others in r:
                self._refuse_busy(others, busy)
            self._answer_busy(busy, r)
            if fileno not in r:
                if others is not None and time.monotonic() - last > self.idle_timeout:
                    log.info("emuboard: host idle for %.0f s; dropped", self.idle_timeout)
                    return False
                continue
            last = time.monotonic()
            try:
                data = fd_read()
            except OSError:
                return False
            if not data:
                return False
            with self._lock:
                replies = self.board.receive(data)
            for send_at, reply in replies:
                delay = send_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    fd_write(reply)
                except OSError:
                    return False
        return True

    def _serve_pty(self) -> None:
        fd = self._master

        def write(b: bytes) -> None:
            view = memoryview(b)
            while view:
                _, w, _ = select.select([], [fd], [], 1.0)
                if not w:
                    raise OSError("pty write timed out: nobody reads the other end")
                n = os.write(fd, view)
                view = view[n:]

        self._pump(lambda: os.read(fd, 65536), write, fd)

    @staticmethod
    def _refuse_busy(srv: socket.socket, busy: dict[socket.socket, float]) -> None:
        """Accept a second client and send it a BUSY frame (PROTOCOL.md §4); every frame it sends
        gets another, and it is closed after :data:`BUSY_LINGER` seconds."""
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        try:
            conn.sendall(encode_reply(0, NAK_OP, Status.BUSY))
        except OSError:
            conn.close()
            return
        busy[conn] = time.monotonic() + BUSY_LINGER
        log.info("emuboard: a second host was told BUSY (one host at a time)")

    @staticmethod
    def _answer_busy(busy: dict[socket.socket, float], readable: list) -> None:
        now = time.monotonic()
        for c in list(busy):
            done = now > busy[c]
            if c in readable and not done:
                try:
                    done = not c.recv(65536) or bool(c.sendall(encode_reply(0, NAK_OP, Status.BUSY)))
                except OSError:
                    done = True
            if done:
                c.close()
                del busy[c]

    def _serve_tcp(self) -> None:
        srv = self._server
        while not self._stop.is_set():
            r, _, _ = select.select([srv, self._wake_r], [], [], 0.5)
            if self._wake_r in r:
                return
            if srv not in r:
                continue
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._pump(lambda c=conn: c.recv(65536), conn.sendall, conn.fileno(), srv):
                    return
            log.debug("emuboard: host disconnected; waiting for the next one")

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Stop the thread and release the pty / socket (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        if self.path is not None:
            os.close(self._master)
            os.close(self._slave)
        else:
            self._server.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> ServedBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(config: CoreConfig | str, port: str = "pty", *, idle_timeout: float = IDLE_TIMEOUT,
          **board_options: object) -> ServedBoard:
    """Start an emulated board behind a pseudo-terminal or a TCP socket.

    Parameters
    ----------
    config
        Core configuration or preset name (what IDENTIFY reports and the image must match).
    port
        ``"pty"`` (a real pseudo-terminal; ``.path`` is its device) or ``"tcp:PORT"``
        (``PORT`` 0 picks a free one; ``.url`` is ``socket://127.0.0.1:PORT``).
    **board_options
        Passed to :class:`EmuBoard` (``baud``, ``rx_frames``, ``build_id``, ``model_line``).

    Returns
    -------
    ServedBoard
        Running; close it (or use it as a context manager) to stop.
    """
    board = EmuBoard(config, **board_options)  # type: ignore[arg-type]
    if port == "pty":
        return ServedBoard(board, "pty")
    if port.startswith("tcp:"):
        try:
            n = int(port[4:])
        except ValueError:
            n = -1
        if not 0 <= n <= 65535:
            raise ValueError(f"port = {port!r}: the TCP port must be 0..65535 (e.g. 'tcp:7000', 'tcp:0' for any)")
        return ServedBoard(board, "tcp", n, idle_timeout=idle_timeout)
    raise ValueError(f"port = {port!r} is not supported; allowed: 'pty' or 'tcp:PORT'")


class BoardProcess:
    """An emulated board in its own Python process (no GIL shared with the host).

    Start with :func:`serve_process`; ``.url`` / ``.path`` as :class:`ServedBoard`, ``.close()``
    stops it (closing its stdin; killed if it does not exit within 5 s).
    """

    def __init__(self, config: CoreConfig, port: str, baud: int, rx_frames: int, timeout: float = 30.0) -> None:
        import json
        import subprocess
        import sys

        code = ("import sys, json; from spikeforge.sim.emuboard import _serve_stdio; "
                "_serve_stdio(json.loads(sys.argv[1]))")
        arg = json.dumps({"config": config.to_dict(), "port": port, "baud": baud, "rx_frames": rx_frames})
        self._proc = subprocess.Popen([sys.executable, "-c", code, arg], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        assert self._proc.stdout is not None
        r, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline().decode().strip() if r else ""
        if not line:
            self.close()
            raise RuntimeError(f"emulated board process did not start within {timeout:g} s")
        self.url = line
        self.path = None if line.startswith("socket://") else line

    def close(self) -> None:
        """Stop the process (idempotent)."""
        import subprocess

        p = self._proc
        if p.poll() is None:
            try:
                assert p.stdin is not None
                p.stdin.close()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
                p.wait()
        if p.stdout is not None:
            p.stdout.close()

    def __enter__(self) -> BoardProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_process(config: CoreConfig | str, port: str = "pty", *, baud: int = 3_000_000,
                  rx_frames: int = 4) -> BoardProcess:
    """Like :func:`serve`, but the board runs in a child process (for throughput figures)."""
    cfg = preset(config) if isinstance(config, str) else config
    return BoardProcess(cfg, port, baud, rx_frames)


def _serve_stdio(opts: dict) -> None:
    """Child side of :class:`BoardProcess`: serve, print the URL, stop when stdin closes."""
    import sys

    cfg = CoreConfig.from_dict(opts["config"])
    with serve(cfg, port=opts["port"], baud=opts["baud"], rx_frames=opts["rx_frames"]) as sb:
        sys.stdout.write(sb.url + "\n")
        sys.stdout.flush()
        sys.stdin.read()
