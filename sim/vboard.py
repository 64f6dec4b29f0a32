"""The virtual board: the full board design in Verilator behind a real pseudo-terminal or TCP.

:class:`~spikeforge.firmware.top.BoardCore` (UART, frame receiver, command engine, spiking
core, frame sender) is converted to Verilog and compiled with a small C++ harness
(``vboard_harness.cpp`` beside this module) into one executable, cached by hash under
``<build_dir>/vboard/``. The harness shifts every byte the host writes into the design's UART
``rx`` pin bit by bit and decodes the ``tx`` pin back into bytes, so the same host code
(:class:`spikeforge.toolchain.deploy.Device`, ``spikeforge run``) talks to it as to a board.

Simulated time advances only while something is in flight (the design's ``idle`` output is
low, or a byte is on either line); an idle virtual board blocks in ``poll()`` and costs no
CPU. The harness counts simulated clock cycles (:meth:`VirtualBoard.stats`), so line-rate
figures are in simulated time: ``seconds = cycles / clock_hz``, the baud being
``clock_hz / divisor`` of simulated time.

Example::

    from spikeforge.sim.vboard import start_virtual_board
    from spikeforge.toolchain.deploy import Device
    with start_virtual_board("tiny") as vb, Device.open(vb.url) as dev:
        print(dev.info.config.name, vb.stats())
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from spikeforge.firmware.top import BoardCore
from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import CoreImage
from spikeforge.toolchain.fsutil import file_lock

from .rtl import RtlSimError, _make_overrides, find_verilator, to_verilog

__all__ = ["VBOARD_TOP", "VirtualBoard", "VirtualBoardError", "build_virtual_board", "start_virtual_board"]

log = logging.getLogger(__name__)

#: Verilog module name of the board design in the virtual board.
VBOARD_TOP = "spikeforge_board"
#: Default simulated clock: the iCEBreaker board design's (3 Mbaud = 9 clocks per bit).
DEFAULT_CLOCK_HZ = 27_000_000
_FLOW_VERSION = "1"


class VirtualBoardError(RuntimeError):
    """The virtual board could not be built or started (the message says which step and why)."""


def _harness_source() -> str:
    return resources.files("spikeforge.sim").joinpath("vboard_harness.cpp").read_text()


@dataclass(frozen=True)
class _Build:
    exe: Path
    divisor: int
    clock_hz: int
    baud: int


def build_virtual_board(config: CoreConfig | str = "tiny", *, baud: int = 3_000_000,
                        clock_hz: int = DEFAULT_CLOCK_HZ, build_dir: Path | str | None = None,
                        idle_timeout_s: float = 0.1, timeout: float = 900.0,
                        image: CoreImage | None = None) -> _Build:
    """Compile (or reuse) the virtual board executable for ``config`` at ``baud``.

    Returns the executable and the UART divisor. Cached by the hash of the Verilog (which
    holds a baked ``image``), the harness, the Verilator version and the flags; concurrent
    builds of the same key wait for each other.

    Raises
    ------
    VirtualBoardError
        On a Verilator / compiler failure or timeout (with the log's path and tail).
    """
    cfg = preset(config) if isinstance(config, str) else config
    board = BoardCore(cfg, clock_hz=clock_hz, baud=baud, idle_timeout_s=idle_timeout_s, image=image)
    verilog = to_verilog(board, VBOARD_TOP, emit_src=False)
    harness = _harness_source()
    root = find_verilator()
    fix = _make_overrides(root)
    flags = ["--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
             "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", VBOARD_TOP,
             "-CFLAGS", "-O2", "-j", "2"]
    key = hashlib.sha256("\0".join([_FLOW_VERSION, verilog, harness, json.dumps(flags), json.dumps(fix),
                                    metadata.version("verilator")]).encode()).hexdigest()
    base = Path(build_dir or os.environ.get("SPIKEFORGE_BUILD_DIR", "build")).resolve() / "vboard"
    out = base / f"{cfg.name}{'-baked' if image is not None else ''}-{key[:16]}"
    exe = out / "obj" / "vboard"
    deadline = time.monotonic() + timeout
    with file_lock(out.with_name(out.name + ".lock"), deadline, lambda msg: VirtualBoardError(msg)):
        if not exe.is_file():
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            (out / f"{VBOARD_TOP}.v").write_text(verilog)
            (out / "vboard_harness.cpp").write_text(harness)
            cmd = [str(root / "bin" / "verilator"), *flags, "--Mdir", "obj", "-o", "vboard",
                   f"{VBOARD_TOP}.v", "vboard_harness.cpp"]
            if fix:
                cmd += ["-MAKEFLAGS", " ".join(fix)]
            env = dict(os.environ, VERILATOR_ROOT=str(root),
                       PATH=str(root / "bin") + os.pathsep + os.environ.get("PATH", ""))
            log_path = out / "build.log"
            log.info("vboard: compiling %s (%s, divisor %d) in %s", VBOARD_TOP, cfg.name, board.divisor, out)
            t0 = time.monotonic()
            with open(log_path, "wb") as lf:
                try:
                    subprocess.run(cmd, cwd=out, env=env, stdout=lf, stderr=subprocess.STDOUT, check=True,
                                   timeout=max(1.0, deadline - time.monotonic()), stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    raise VirtualBoardError(f"virtual board build timed out after {timeout:g} s; "
                                            f"log: {log_path}") from None
                except subprocess.CalledProcessError as e:
                    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                    raise VirtualBoardError(f"virtual board build failed (exit {e.returncode}); log: "
                                            f"{log_path}\n{tail}") from None
            log.info("vboard: built in %.1f s", time.monotonic() - t0)
    return _Build(exe, board.divisor, board.clock_hz, board.baud)


class VirtualBoard:
    """A running virtual board (see :func:`start_virtual_board`).

    Attributes
    ----------
    url
        For ``serial.serial_for_url`` / ``Device.open``: the pty path or ``socket://127.0.0.1:PORT``.
    path
        The pty path (``None`` in TCP mode).
    port
        The TCP port (``None`` in pty mode).
    config, baud, clock_hz, divisor
        What the board was built for (simulated time: ``cycles / clock_hz`` seconds).
    """

    def __init__(self, build: _Build, config: CoreConfig, tcp: int | None, start_timeout: float = 30.0) -> None:
        self.config = config
        self.baud, self.clock_hz, self.divisor = build.baud, build.clock_hz, build.divisor
        args = [str(build.exe), "--divisor", str(build.divisor)]
        if tcp is not None:
            args += ["--tcp", str(int(tcp))]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True)
        self._lock = threading.Lock()
        first = self._readline(start_timeout)
        kind, _, where = first.partition(" ")
        self.path: str | None = None
        self.port: int | None = None
        if kind == "PTY":
            self.path = self.url = where
        elif kind == "TCP":
            self.port = int(where)
            self.url = f"socket://127.0.0.1:{self.port}"
        else:
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.poll() is not None else ""
            self.close()
            raise VirtualBoardError(f"virtual board did not start: got {first!r} {err.strip()}")

    def _readline(self, timeout: float) -> str:
        import select

        assert self._proc.stdout is not None
        r, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not r:
            raise VirtualBoardError(f"virtual board did not answer within {timeout:g} s")
        return self._proc.stdout.readline().decode().strip()

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """Simulated cycles (``cycles``, ``busy_cycles``), bytes each way and wall seconds."""
        with self._lock:
            if self._proc.poll() is not None:
                raise VirtualBoardError(f"virtual board process exited with status {self._proc.returncode}")
            assert self._proc.stdin is not None
            self._proc.stdin.write(b"stats\n")
            self._proc.stdin.flush()
            d = json.loads(self._readline(timeout))
        d["sim_seconds"] = d["cycles"] / self.clock_hz
        return d

    def close(self) -> None:
        """Stop the harness (idempotent)."""
        p = self._proc
        if p.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert p.stdin is not None
                p.stdin.write(b"quit\n")
                p.stdin.close()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in (p.stdout, p.stderr, p.stdin):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                f.close()  # type: ignore[union-attr]

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten board must not outlive its owner
        with contextlib.suppress(Exception):
            self.close()


def start_virtual_board(config: CoreConfig | str = "tiny", *, baud: int = 3_000_000,
                        clock_hz: int = DEFAULT_CLOCK_HZ, tcp: int | None = None,
                        build_dir: Path | str | None = None, image: CoreImage | None = None) -> VirtualBoard:
    """Build (cached) and start a virtual board; use the result as a context manager.

    Parameters
    ----------
    config
        Core configuration or preset name.
    baud
        UART baud; with ``clock_hz`` it fixes the divisor (within 2 %).
    clock_hz
        Simulated clock (only sets the divisor and what IDENTIFY reports).
    tcp
        Serve on this TCP port of 127.0.0.1 (0: any free port) instead of a pseudo-terminal.
    build_dir
        Cache root (default ``$SPIKEFORGE_BUILD_DIR`` or ``./build``).
    image
        A network baked into the core's memories (an all-block-RAM ``config``, the image
        lowered for it): the board boots running it, as a bitstream built with
        ``spikeforge build --network`` does, and needs no load.

    Raises
    ------
    VirtualBoardError
        The build failed or the harness did not start.
    """
    if sys.platform == "win32":  # pragma: no cover
        raise VirtualBoardError("the virtual board needs a POSIX system (pseudo-terminals)")
    cfg = preset(config) if isinstance(config, str) else config
    try:
        b = build_virtual_board(cfg, baud=baud, clock_hz=clock_hz, build_dir=build_dir, image=image)
    except RtlSimError as e:
        raise VirtualBoardError(str(e)) from None
    return VirtualBoard(b, cfg, tcp)
