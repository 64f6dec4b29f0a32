"""``spikeforge board-sim``: serve the Verilator virtual board (or the emulated board) on a
pseudo-terminal or TCP port."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikeforge.firmware.boards import BOARDS
from spikeforge.firmware.uart import UartError
from spikeforge.hdl.config import CoreConfig
from spikeforge.sim.emuboard import serve

from .common import add_target_option, target

__all__ = ["register"]

#: The board whose build clock a bare core runs at.
_DEFAULT_BOARD = next(iter(BOARDS.values()))

_DESCRIPTION = """\
Run the full board design (UART, framing, command engine, spiking core) in Verilator and
expose it as a real pseudo-terminal (its path is printed) or a TCP socket, so the host driver
and the CLI talk to it exactly as to an iCEBreaker or ULX3S. Every byte goes through the
design's UART pins bit by bit at the chosen baud, in simulated time (the simulated clock stops
while the board is idle, so an idle virtual board costs no CPU).

The first start compiles the design (about a minute for 'tiny', longer for 'up5k'); later
starts reuse the cached build. Serves until Ctrl-C, then prints the simulated cycles and the
bytes moved as one JSON line."""

_EPILOG = """\
examples:
  spikeforge board-sim                        # the up5k core, 3 Mbaud, on a new pty
  spikeforge board-sim --target tiny --tcp 7000
  spikeforge board-sim --target tiny --baud 115200
  spikeforge board-sim --target ulx3s         # the ecp5-85f core at the ULX3S build's 45 MHz
  # then, in another shell (the path is the one printed):
  python -c "from spikeforge.toolchain.deploy import Device; print(Device.open('/dev/pts/5').info)"
"""


def _serve_until_stopped(banner: str, final: Callable[[], dict[str, Any]]) -> None:
    """Print ``banner``, wait for Ctrl-C or SIGTERM, then print ``final()`` as one JSON line
    (for commands that serve a board in the background: ``board-sim``, an emulated board)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sys.stdout.write(banner)
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        sys.stdout.write(json.dumps(final()) + "\n")
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge board-sim``."""
    p = sub.add_parser("board-sim", help="serve the Verilator virtual board on a pty or TCP port",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_option(p, "icebreaker")
    p.add_argument("--baud", type=int, default=3_000_000, metavar="B", help="UART baud (default: 3000000)")
    p.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                   help="simulated clock (default: the --target board's build clock, else "
                        f"{_DEFAULT_BOARD.clock_mhz:g}, the {_DEFAULT_BOARD.name} build's); with --baud it sets "
                        "the UART divisor")
    p.add_argument("--tcp", type=int, default=None, metavar="PORT",
                   help="serve on 127.0.0.1:PORT (0: any free port) instead of a pseudo-terminal")
    p.add_argument("--build-dir", metavar="DIR", default=None,
                   help="cache of the compiled virtual board (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    p.add_argument("--emulated", action="store_true",
                   help="serve the emulated board (the protocol in Python on the image-level model: starts "
                        "at once, no Verilator) instead of the RTL; the line rate is modelled at --baud")
    p.add_argument("--rx-frames", type=int, default=4, metavar="N", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_board_sim)


def _cmd_board_sim(args: argparse.Namespace) -> int:
    t = target(args)
    cfg = t.config
    clock_mhz = args.clock_mhz or (t.board or _DEFAULT_BOARD).clock_mhz
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        raise ValueError(f"--tcp {args.tcp} is out of range; allowed: 0..65535")
    if clock_mhz <= 0:
        raise ValueError(f"--clock-mhz {clock_mhz} is out of range; allowed: > 0")
    if args.emulated:
        return _serve_emulated(args, cfg)
    from spikeforge.sim.vboard import start_virtual_board  # Verilator behind it: only when serving
    sys.stderr.write(f"spikeforge: starting the virtual board (core '{cfg.name}', {args.baud} baud); "
                     "the first start compiles it with Verilator\n")
    try:
        vb = start_virtual_board(cfg, baud=args.baud, clock_hz=int(clock_mhz * 1e6), tcp=args.tcp,
                                 build_dir=Path(args.build_dir).resolve() if args.build_dir else None)
    except UartError as e:
        raise ValueError(f"--baud {args.baud}: {e}") from None
    with vb:
        where = vb.path if vb.path else f"127.0.0.1:{vb.port}"
        _serve_until_stopped(f"virtual board: core '{cfg.name}', {vb.baud} baud, {vb.clock_hz / 1e6:g} MHz "
                            f"simulated clock (UART divisor {vb.divisor})\n{where}\n"
                            f"connect with: Device.open({vb.url!r}); Ctrl-C stops\n",
                            lambda: {"virtual_board": vb.stats()})
    return 0


def _serve_emulated(args: argparse.Namespace, cfg: CoreConfig) -> int:
    """``spikeforge board-sim --emulated``: serve an emulated board until Ctrl-C / SIGTERM."""
    port = "pty" if args.tcp is None else f"tcp:{args.tcp}"
    board = serve(cfg, port=port, baud=args.baud, rx_frames=args.rx_frames)

    def final() -> dict[str, Any]:
        st = board.board.stats
        return {"emulated_board": {
            "frames_ok": st.frames_ok, "frames_bad": st.frames_bad, "duplicates": st.duplicates,
            "rejected": st.rejected, "overflows": st.overflows, "executed": len(st.executed)}}

    with board:
        where = board.path if board.path else f"127.0.0.1:{board.port}"
        _serve_until_stopped(
            f"emulated board: core '{cfg.name}', {args.baud} baud (modelled)\n{where}\n"
            f"connect with: Device.open({board.url!r}); Ctrl-C stops\n",
            final,
        )
    return 0
