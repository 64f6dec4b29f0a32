"""A fault-injecting serial proxy: the line between a host and a board, made hostile.

:class:`FaultProxy` listens on a local TCP port (``.url`` is ``socket://127.0.0.1:PORT``) and
forwards bytes to a board (``socket://host:port`` or a pty path) and back, injecting, with a
seeded random generator and a probability per forwarded byte, one of these faults:

``corrupt``
    XOR the byte with a random non-zero value (a burst of up to 8 bit errors).
``drop``
    Do not forward the byte.
``duplicate``
    Forward it twice.
``delay``
    Stall the direction for a random 1..``max_delay`` seconds before the byte.
``garbage``
    Insert 1..16 random bytes (zeros included, so frames split) before it.

Each injected fault is counted per direction and kind (:attr:`FaultProxy.counts`). Used by
the fault tests and by ``spikeforge bench link`` to show that every command either
completes correctly or fails with a clear error, nothing is applied twice, and the board stays
responsive.
"""

from __future__ import annotations

import logging
import math
import os
import random
import select
import socket
import threading
import time
import tty
from collections import Counter
from collections.abc import Sequence

__all__ = ["FAULT_KINDS", "FaultProxy"]

log = logging.getLogger(__name__)

FAULT_KINDS = ("corrupt", "drop", "duplicate", "delay", "garbage")


class _End:
    """One side of the proxy: a socket or a pty fd, with read / write / fileno."""

    def __init__(self, url: str) -> None:
        self.sock: socket.socket | None = None
        self.fd: int | None = None
        if url.startswith("socket://"):
            host, _, port = url[len("socket://"):].rpartition(":")
            self.sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=5)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(None)
        else:
            self.fd = os.open(url, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self.fd)

    @classmethod
    def of_socket(cls, sock: socket.socket) -> _End:
        end = cls.__new__(cls)
        end.sock, end.fd = sock, None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return end

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else int(self.fd)  # type: ignore[arg-type]

    def read(self) -> bytes:
        if self.sock is not None:
            return self.sock.recv(65536)
        return os.read(self.fd, 65536)  # type: ignore[arg-type]

    def write(self, data: bytes) -> None:
        if self.sock is not None:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)  # type: ignore[arg-type]
            view = view[n:]

    def close(self) -> None:
        try:
            if self.sock is not None:
                self.sock.close()
            elif self.fd is not None:
                os.close(self.fd)
        except OSError:
            pass


class FaultProxy:
    """Forward a host's bytes to a board and back, injecting faults.

    Parameters
    ----------
    upstream
        The board: ``socket://host:port`` or a pty path.
    rate
        Probability that a forwarded byte gets a fault (0 disables injection).
    host_rate
        The same for the board-to-host direction (default: ``rate``); replies are short, so a
        higher rate there balances the fault counts of the two directions.
    seed
        Seed of the fault generator.
    kinds
        Fault kinds to draw from (uniformly), a subset of :data:`FAULT_KINDS`.
    directions
        ``"to_board"``, ``"to_host"`` or both.
    max_delay
        Longest ``delay`` fault, seconds.

    Attributes
    ----------
    counts
        ``Counter`` of ``(direction, kind)`` of the faults injected so far.
    url
        Where the host connects (``socket://127.0.0.1:PORT``).
    """

    def __init__(self, upstream: str, *, rate: float = 0.001, host_rate: float | None = None, seed: int = 0,
                 kinds: Sequence[str] = FAULT_KINDS, directions: Sequence[str] = ("to_board", "to_host"),
                 max_delay: float = 0.005) -> None:
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"fault kind {bad[0]!r} is unknown; allowed: {', '.join(FAULT_KINDS)}")
        for name, r in (("rate", rate), ("host_rate", host_rate)):
            if r is not None and not 0 <= r <= 1:
                raise ValueError(f"{name} = {r!r} is out of range; allowed: 0..1")
        self.upstream = upstream
        self.rate = rate
        self.rates = {"to_board": rate, "to_host": rate if host_rate is None else host_rate}
        self.kinds = tuple(kinds)
        self.directions = tuple(directions)
        self.max_delay = max_delay
        self.counts: Counter[tuple[str, str]] = Counter()
        self._rng = {d: random.Random(f"{seed}-{d}") for d in ("to_board", "to_host")}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, name="faultproxy", daemon=True)
        self._thread.start()

    @property
    def total(self) -> int:
        """Faults injected so far."""
        with self._lock:
            return sum(self.counts.values())

    def summary(self) -> dict[str, int]:
        """``{"to_board.corrupt": n, ...}`` (every direction x kind, zeros included)."""
        with self._lock:
            return {f"{d}.{k}": self.counts[(d, k)] for d in ("to_board", "to_host") for k in FAULT_KINDS}

    # ------------------------------------------------------------------ forwarding
    def _mangle(self, direction: str, data: bytes) -> list[bytes | float]:
        """The chunk after faults: bytes to write and delays (floats) to sleep, in order."""
        rate = self.rates[direction]
        if rate <= 0 or direction not in self.directions:
            return [data]
        rng = self._rng[direction]
        out: list[bytes | float] = []
        buf = bytearray()
        i = 0
        n = len(data)
        while i < n:
            # geometric skip to the next faulty byte (same distribution as a draw per byte)
            u = rng.random()
            skip = int(_log1m(u) / _log1m(rate)) if rate < 1 else 0
            if i + skip >= n:
                buf += data[i:]
                break
            buf += data[i : i + skip]
            i += skip
            kind = rng.choice(self.kinds)
            b = data[i]
            with self._lock:
                self.counts[(direction, kind)] += 1
            if kind == "corrupt":
                buf.append(b ^ rng.randrange(1, 256))
            elif kind == "drop":
                pass
            elif kind == "duplicate":
                buf += bytes((b, b))
            elif kind == "delay":
                out.append(bytes(buf))
                buf = bytearray()
                out.append(rng.uniform(0.001, max(0.001, self.max_delay)))
                buf.append(b)
            else:  # garbage
                buf += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))
                buf.append(b)
            i += 1
        out.append(bytes(buf))
        return out

    def _pump(self, src: _End, dst: _End, direction: str, done: threading.Event) -> None:
        try:
            while not self._stop.is_set() and not done.is_set():
                r, _, _ = select.select([src.fileno()], [], [], 0.2)
                if not r:
                    continue
                data = src.read()
                if not data:
                    break
                for piece in self._mangle(direction, data):
                    if isinstance(piece, float):
                        time.sleep(piece)
                    elif piece:
                        dst.write(piece)
        except OSError as e:
            log.debug("faultproxy %s: %s", direction, e)
        finally:
            done.set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._server], [], [], 0.2)
            if not r:
                continue
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            host = _End.of_socket(conn)
            try:
                board = _End(self.upstream)
            except OSError as e:
                log.warning("faultproxy: cannot reach the board at %s: %s", self.upstream, e)
                host.close()
                continue
            done = threading.Event()
            t = threading.Thread(target=self._pump, args=(board, host, "to_host", done), daemon=True)
            t.start()
            self._pump(host, board, "to_board", done)
            t.join(timeout=2)
            host.close()
            board.close()

    def close(self) -> None:
        """Stop forwarding and close the listening socket."""
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _log1m(x: float) -> float:
    return math.log1p(-x) if x < 1 else float("-inf")
