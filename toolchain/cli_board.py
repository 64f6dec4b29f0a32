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

__all__ = ["add_board_parsers", "bench_board", "cmd_board_sim", "serve_until_stopped"]

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


# ----------------------------------------------------------------------------- bench board
def bench_board(args: argparse.Namespace) -> int:
    """``spikeforge bench board``: resources and fmax of the board design on both boards (the
    builds are cached), and the virtual board's simulation speed.

    Options from the shared bench parser: ``--config`` (virtual board core, default tiny),
    ``--no-build`` (skip the bitstreams), ``--steps`` (steps of the speed run, default 1000 ->
    4000).
    """
    import os
    import time

    from spikeforge.firmware.top import BOARD_CLOCK_MHZ, DEFAULT_BAUD, build_board
    from spikeforge.hdl.config import preset
    from spikeforge.sim.vboard import start_virtual_board

    from .cli import machine_description
    from .cli_deploy import _bench_network
    from .cli_hw import BOARD_DEFAULT_CONFIG, default_build_dir, resolve_config
    from .deploy import Device

    def emit(d: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()

    machine = machine_description()
    if not args.no_build:
        for board in ("icebreaker", "ulx3s-85f"):
            cfg = preset(BOARD_DEFAULT_CONFIG[board])
            sys.stderr.write(f"spikeforge: building the board design for {board} (cached after the first time)\n")
            r = build_board(board, cfg, build_dir=default_build_dir() / "bitstreams")
            (clk,) = r.fmax.values()
            emit({"bench": "board", "case": "resources", "board": board, "device": r.device, "config": cfg.name,
                  "baud": DEFAULT_BAUD, "clock_mhz": BOARD_CLOCK_MHZ[board],
                  "logic_cells": r.logic_cells, "logic_cells_available": r.logic_cells_available,
                  "logic_pct": round(100 * r.logic_cells / max(1, r.logic_cells_available), 1), "lut4": r.lut4,
                  "ff": r.ff, "ebr": r.ebr, "ebr_available": r.ebr_available, "spram": r.spram,
                  "fmax_mhz": round(clk.achieved_mhz, 2), "fmax_constraint_mhz": round(clk.constraint_mhz, 2),
                  "timing_met": r.timing_met, "build_seconds": r.build_seconds})
    cfg = resolve_config(args.config) if args.config else preset("tiny")
    steps = 4000 if args.steps == 1000 else max(1, args.steps)
    net, img = _bench_network(cfg, args.seed)
    with start_virtual_board(cfg) as vb, Device.open(vb.url, timeout=5.0) as dev:
        dev.load(img)
        s0, t0 = vb.stats(), time.perf_counter()
        spikes = dev.run(steps)
        s1, t1 = vb.stats(), time.perf_counter()
        cycles = s1["cycles"] - s0["cycles"]
        emit({"bench": "board", "case": "virtual_board_speed", "config": cfg.name, "steps": steps,
              "spikes": len(spikes), "sim_cycles": cycles, "sim_seconds": round(cycles / vb.clock_hz, 6),
              "wall_seconds": round(t1 - t0, 3), "cycles_per_s": round(cycles / (t1 - t0)),
              "loadavg_1min": round(os.getloadavg()[0], 2), "machine": machine})
    return 0
