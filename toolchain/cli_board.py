"""``spikeforge board-sim``: serve the Verilator virtual board on a pseudo-terminal or TCP port.

Kept apart from :mod:`spikeforge.toolchain.cli` so that other commands never import Amaranth
or Verilator: every heavy import happens inside the handler.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_board_parsers", "cmd_board_sim", "serve_until_stopped"]

log = logging.getLogger("spikeforge")

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
  spikeforge board-sim --config tiny --tcp 7000
  spikeforge board-sim --config tiny --baud 115200
  # then, in another shell (the path is the one printed):
  python -c "from spikeforge.toolchain.deploy import Device; print(Device.open('/dev/pts/5').info)"
"""


def serve_until_stopped(banner: str, final: Callable[[], dict[str, Any]]) -> None:
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


def add_board_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge board-sim``."""
    p = sub.add_parser("board-sim", help="serve the Verilator virtual board on a pty or TCP port",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="up5k", metavar="PRESET|FILE",
                   help="core configuration: a preset (tiny, small, up5k, ecp5-85f) or a JSON file (default: up5k)")
    p.add_argument("--baud", type=int, default=3_000_000, metavar="B", help="UART baud (default: 3000000)")
    p.add_argument("--clock-mhz", type=float, default=27.0, metavar="MHZ",
                   help="simulated clock (default: 27, the iCEBreaker build's); with --baud it sets the UART divisor")
    p.add_argument("--tcp", type=int, default=None, metavar="PORT",
                   help="serve on 127.0.0.1:PORT (0: any free port) instead of a pseudo-terminal")
    p.add_argument("--build-dir", metavar="DIR", default=None,
                   help="cache of the compiled virtual board (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    from .cli_deploy import add_emulated_options

    add_emulated_options(p)  # --emulated: the Python emulated board (toolchain/cli_deploy.py)
    p.set_defaults(func=cmd_board_sim)


def cmd_board_sim(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge board-sim``."""
    from spikeforge.firmware.uart import UartError
    from spikeforge.sim.vboard import start_virtual_board

    from .cli_hw import resolve_config

    cfg = resolve_config(args.config)
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        raise ValueError(f"--tcp {args.tcp} is out of range; allowed: 0..65535")
    if args.clock_mhz <= 0:
        raise ValueError(f"--clock-mhz {args.clock_mhz} is out of range; allowed: > 0")
    if args.emulated:
        from .cli_deploy import serve_emulated

        return serve_emulated(args, cfg)
    sys.stderr.write(f"spikeforge: starting the virtual board (core '{cfg.name}', {args.baud} baud); "
                     "the first start compiles it with Verilator\n")
    try:
        vb = start_virtual_board(cfg, baud=args.baud, clock_hz=int(args.clock_mhz * 1e6), tcp=args.tcp,
                                 build_dir=Path(args.build_dir).resolve() if args.build_dir else None)
    except UartError as e:
        raise ValueError(f"--baud {args.baud}: {e}") from None
    with vb:
        where = vb.path if vb.path else f"127.0.0.1:{vb.port}"
        serve_until_stopped(f"virtual board: core '{cfg.name}', {vb.baud} baud, {vb.clock_hz / 1e6:g} MHz "
                            f"simulated clock (UART divisor {vb.divisor})\n{where}\n"
                            f"connect with: Device.open({vb.url!r}); Ctrl-C stops\n",
                            lambda: {"virtual_board": vb.stats()})
    return 0
