"""``spikeforge deploy``, ``run`` and ``flash``: the host side of a board.

The library is :mod:`spikeforge.toolchain.deploy` (the :class:`~spikeforge.toolchain.deploy.Device`),
the protocol :mod:`spikeforge.firmware.protocol`, the programmers :mod:`spikeforge.firmware.boards`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.firmware.boards import BOARDS, Board, board, board_names, flash_command
from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.image import IMAGE_FORMAT, CoreImage, ImageError
from spikeforge.toolchain.compiler import CompileError, fit
from spikeforge.toolchain.deploy import Device
from spikeforge.toolchain.ir import Network, read_json_file

from .common import FORMATS, UsageError, deprecated_alias, load_any, load_inputs, summary

__all__ = ["register"]

log = logging.getLogger("spikeforge")

_PORT_HELP = ("serial port: a tty (/dev/ttyUSB1), a pty path printed by 'spikeforge board-sim', or a "
              "pyserial URL (socket://127.0.0.1:7000)")


def _add_link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", required=True, metavar="PORT", help=_PORT_HELP)
    p.add_argument("--baud", type=int, default=3_000_000, metavar="B",
                   help="baud of a real serial port (default: 3000000; ignored by ptys and sockets)")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds without a reply before a request is re-sent (default: 1.0)")
    p.add_argument("--retries", type=int, default=8, metavar="N",
                   help="re-sends without progress before giving up (default: 8)")


def _open(args: argparse.Namespace) -> Device:
    if args.timeout <= 0:
        raise ValueError(f"--timeout {args.timeout} is out of range; allowed: seconds > 0")
    if args.baud <= 0:
        raise ValueError(f"--baud {args.baud} is out of range; allowed: a positive integer")
    return Device.open(args.port, baud=args.baud, timeout=args.timeout, retries=args.retries)


def _image_or_network(path: str, fmt: str, cfg: CoreConfig) -> tuple[CoreImage, Network | None]:
    """``(image, network or None)`` from a core image file, or a network file fitted to ``cfg``
    (as it is, or compiled: :func:`spikeforge.toolchain.compiler.fit`)."""
    doc = read_json_file(Path(path))
    if isinstance(doc, dict) and doc.get("format") == IMAGE_FORMAT:
        try:
            return CoreImage.from_dict(doc), None
        except ImageError as e:
            raise ValueError(f"{path}: {e}") from None
    try:
        fitted = fit(load_any(path, fmt), cfg)
        return fitted.image, fitted.network
    except (CompileError, ImageError) as e:
        raise ValueError(f"{path}: does not fit the board's core {cfg.name!r}: {e}") from None


# ----------------------------------------------------------------------------- deploy
_DEPLOY_DESCRIPTION = """\
Load a core image onto a board over its serial port. The board's IDENTIFY reply names its core
configuration; an image built for another core is refused (both are named) before anything is
sent. The load is pipelined (several frames in flight) and runs near the line rate; every frame
is CRC-checked, acknowledged and, if lost, re-sent without ever being applied twice.

IMAGE is a core image (spikeforge image NET --config PRESET -o IMAGE), or a network file,
which is then lowered onto the board's core first."""

_DEPLOY_EPILOG = """\
examples:
  spikeforge image net.json --config up5k -o net.image.json
  spikeforge deploy net.image.json --port /dev/ttyUSB1
  spikeforge board-sim --config tiny --emulated &          # prints a pty path, e.g. /dev/pts/5
  spikeforge deploy net.json --port /dev/pts/5 --json"""


def _cmd_deploy(args: argparse.Namespace) -> int:
    with _open(args) as dev:
        img, _ = _image_or_network(args.image, args.format, dev.config)
        rep = dev.load(img, progress=sys.stderr.isatty())
        doc = {"port": args.port, "core": dev.config.name, "beats": rep.beats, "frames": rep.frames,
               "payload_bytes": rep.payload_bytes, "wire_bytes": rep.wire_bytes,
               "seconds": round(rep.seconds, 4), "baud": rep.baud,
               "payload_fraction": round(rep.payload_fraction, 4), "link": dev.stats.as_dict()}
    if args.json:
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        sys.stdout.write(f"loaded {args.image} onto core '{doc['core']}' at {args.port}: {rep.beats} beats in "
                         f"{rep.frames} frames, {rep.seconds:.3f} s ({100 * rep.payload_fraction:.0f} % of "
                         f"{rep.baud} baud)\n")
    return 0


# ----------------------------------------------------------------------------- run
_RUN_DESCRIPTION = """\
Run a network on a board and report its spikes exactly as 'spikeforge simulate' does (same
text summary; with --json the same {"fire_counts": ..., "spikes": ...} document), so the two
can be compared byte for byte.

NETWORK is the network (spikeforge or TENNLab JSON, lowered onto the board's core) or a core
image. The board keeps no port map, so run needs it; by default it is (re)loaded first
(--no-load skips that when 'spikeforge deploy' already loaded it). The run starts from a RESET
(timestep 0); inputs go to the board in one STEP frame per stretch of steps."""

_RUN_EPILOG = """\
examples:
  echo '[[0, 0, 2], [1, 5, 2]]' > in.json
  spikeforge run net.json --port /dev/ttyUSB1 --inputs in.json --steps 100
  spikeforge run net.json --port /dev/pts/5 --inputs in.json --steps 100 --json > board.json
  spikeforge simulate net.json --inputs in.json --steps 100 --json > ref.json
  cmp board.json ref.json"""


def _cmd_run(args: argparse.Namespace) -> int:
    if args.steps < 0:
        raise ValueError(f"--steps = {args.steps} is out of range; allowed: an integer >= 0")
    if args.network is None:
        raise ValueError("run needs the NETWORK (or core image) that is on the board: the board keeps no "
                         "port map; e.g. spikeforge run net.json --port PORT --inputs in.json --steps 100")
    inputs = load_inputs(args.inputs) if args.inputs else []
    with _open(args) as dev:
        img, net = _image_or_network(args.network, args.format, dev.config)
        if args.no_load:
            img.check_config(dev.config)
            dev.image = img
        else:
            dev.load(img, progress=sys.stderr.isatty())
        t0 = time.perf_counter()
        try:
            res = dev.simulate(inputs, args.steps)
        except ValueError as e:  # inputs the image cannot take (index, time, value)
            raise ValueError(f"{args.inputs}: {e}") from None
        log.info("ran %d steps on the board in %.3f s", args.steps, time.perf_counter() - t0)
    if args.json:
        doc = {"fire_counts": {str(k): v for k, v in res.fire_counts.items()},
               "spikes": [[i, t] for i, t in res.spikes]}
        sys.stdout.write(json.dumps(doc) + "\n")
    elif net is not None:
        sys.stdout.write(summary(net, res))
    else:
        sys.stdout.write(f"steps: {res.steps}\nspikes: {len(res.spike_times)}\n")
        counts = res.fire_counts
        for name, slot in zip(img.output_names, img.outputs, strict=True):
            sys.stdout.write(f"  {name}  neuron {img.neuron_ids[slot]}: {counts[img.neuron_ids[slot]]}\n")
    return 0


# ----------------------------------------------------------------------------- flash
_INSTALL_HINT = (
    "install openFPGALoader (Debian/Ubuntu: 'sudo apt install openfpgaloader'; macOS: 'brew install "
    "openfpgaloader'; others: https://trabucayre.github.io/openFPGALoader/) {extra}and make sure it is on PATH"
)


_FLASH_DESCRIPTION = """\
Write a bitstream to a board with openFPGALoader (iCEBreaker, ULX3S) or iceprog (iCEBreaker),
whichever is installed. By default the board's SPI flash is written (the design survives
power-off); --sram loads it into the FPGA only. spikeforge does not ship these programmers
(they need USB access): when none is found the command says how to install one. --dry-run
prints the command instead of running it."""

_FLASH_EPILOG = """\
examples:
  spikeforge build --target icebreaker                     # prints the bitstream path
  spikeforge flash build/.../top.bin --target icebreaker
  spikeforge flash top.bit --target ulx3s-85f --sram --dry-run"""


def _cmd_flash(args: argparse.Namespace) -> int:
    b = _flash_board(args)
    cmd = flash_command(args.bitstream, b.name, tool=args.tool, sram=args.sram)
    if args.dry_run:
        sys.stdout.write(shlex.join(cmd) + "\n")
        return 0
    if not Path(args.bitstream).is_file():
        raise ValueError(f"{args.bitstream}: no such bitstream file (spikeforge build --target {b.name})")
    if shutil.which(cmd[0]) is None:
        names = [t.name for t in b.flash_tools]
        extra = "or iceprog ('sudo apt install fpga-icestorm') " if "iceprog" in names else ""
        raise FileNotFoundError(
            f"no programmer found: {' or '.join(names)} is not on PATH; " + _INSTALL_HINT.format(extra=extra)
            + f". To see the command: spikeforge flash {args.bitstream} --target {b.name} --dry-run"
        )
    log.info("running: %s", shlex.join(cmd))
    try:
        done = subprocess.run(cmd, timeout=args.tool_timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd[0]} did not finish within {args.tool_timeout:g} s (is the board connected?)") from None
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed with exit code {done.returncode} (its output is above)")
    sys.stdout.write(f"flashed {args.bitstream} onto {b.name} with {Path(cmd[0]).name}\n")
    return 0


def _flash_board(args: argparse.Namespace) -> Board:
    if not args.target:
        raise UsageError(f"flash needs the board: --target BOARD ({', '.join(board_names(aliases=True))})")
    try:
        return board(args.target)
    except ValueError as e:
        raise UsageError(f"--target: {e}") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge deploy``, ``run`` and ``flash``."""
    fmt = FORMATS
    dp = sub.add_parser("deploy", help="load a core image onto a board over serial",
                        description=_DEPLOY_DESCRIPTION, epilog=_DEPLOY_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dp.add_argument("image", metavar="IMAGE", help="core image JSON (or a network JSON, lowered onto the board's core)")
    dp.add_argument("--format", choices=fmt, default="auto", help="format of a network file (default: auto-detect)")
    _add_link_options(dp)
    dp.add_argument("--json", action="store_true", help="print the load report as one JSON line")
    dp.set_defaults(func=_cmd_deploy)

    rp = sub.add_parser("run", help="run a network on a board (same output as simulate)",
                        description=_RUN_DESCRIPTION, epilog=_RUN_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("network", metavar="NETWORK", nargs="?",
                    help="network JSON (spikeforge or TENNLab) or core image JSON that is / goes on the board")
    rp.add_argument("--format", choices=fmt, default="auto", help="format of a network file (default: auto-detect)")
    _add_link_options(rp)
    rp.add_argument("--inputs", metavar="FILE",
                    help="JSON array of [input_index, time, value] triples (default: no inputs)")
    rp.add_argument("--steps", type=int, default=100, metavar="N", help="steps to run (default: 100)")
    rp.add_argument("--json", action="store_true", help="print fire counts and spikes as JSON (as simulate --json)")
    rp.add_argument("--no-load", action="store_true", help="the image is already on the board: do not load it")
    rp.set_defaults(func=_cmd_run)

    fp = sub.add_parser("flash", help="write a bitstream to a board (openFPGALoader or iceprog)",
                        description=_FLASH_DESCRIPTION, epilog=_FLASH_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    fp.add_argument("bitstream", metavar="BITSTREAM", help="the bitstream ("
                    + ", ".join(f"{b.bitstream_suffix} for {b.name}" for b in BOARDS.values()) + ")")
    fp.add_argument("--target", default=None, metavar="BOARD",
                    help=f"the board: {', '.join(board_names(aliases=True))}")
    deprecated_alias(fp, "--board", "target", "--target")
    fp.add_argument("--tool", choices=sorted({t.name for b in BOARDS.values() for t in b.flash_tools}), default=None,
                    help="programmer to use (default: the first installed)")
    fp.add_argument("--sram", action="store_true", help="load into the FPGA only (lost at power-off), not the flash")
    fp.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    fp.add_argument("--tool-timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    fp.set_defaults(func=_cmd_flash)
