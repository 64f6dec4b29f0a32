"""``spikeforge demo``: the whole path on the evolved robot controller (:mod:`spikeforge.toolchain.robot.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spikeforge.toolchain.fsutil import default_build_dir

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge demo``."""
    dp = sub.add_parser("demo", help="an evolved robot controller from training to the (virtual) FPGA",
                        description="Refine the shipped evolved robot controller for a few seeded generations "
                                    "(or evolve one from scratch), compile it for the iCEBreaker's 'up5k' core, "
                                    "build the iCEBreaker bitstream, start the Verilator virtual board, load "
                                    "the network over the serial protocol, drive the simulated robot with it, "
                                    "run the same episode on the bit-exact reference model, and print a "
                                    "summary (coverage, collisions, control-step latency, board == reference, "
                                    "bitstream figures) and where the plots are. About 10 minutes on 2 cores "
                                    "the first time (the bitstream and the virtual board are cached after).",
                        epilog="examples:\n  spikeforge demo --out build/demo\n"
                               "  spikeforge demo --from-scratch --generations 20\n"
                               "  spikeforge demo --no-bitstream --no-verilator --quick   # a minute: emulated board",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dp.add_argument("--out", default="build/demo", metavar="DIR", help="output folder (default: build/demo)")
    dp.add_argument("--no-bitstream", action="store_true", help="skip the bitstream build")
    dp.add_argument("--no-verilator", action="store_true",
                    help="drive the emulated board (protocol + image model) instead of the Verilator virtual board")
    dp.add_argument("--generations", type=int, default=None, metavar="G",
                    help="training generations (default: 3 when refining, 20 with --from-scratch)")
    dp.add_argument("--from-scratch", action="store_true",
                    help="evolve from random networks instead of refining the shipped controller")
    dp.add_argument("--steps", type=int, default=600, metavar="N", help="control steps of the drive (default: 600)")
    dp.add_argument("--seed", type=int, default=0, help="training and episode seed (default: 0)")
    dp.add_argument("--arena", default="two-rooms", metavar="FILE|NAME", help="arena of the drive (default: two-rooms)")
    dp.add_argument("--quick", action="store_true", help="tiny training and a short drive (for tests)")
    dp.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    # imported here: the demo loads Amaranth and matplotlib, which no other command needs at start-up
    from spikeforge.toolchain.robot.demo import run_demo

    gens = args.generations or (20 if args.from_scratch else 3)
    steps = min(args.steps, 40) if args.quick else args.steps
    return run_demo(Path(args.out), bitstream=not args.no_bitstream, verilator=not args.no_verilator,
                    generations=1 if args.quick and not args.generations else gens,
                    from_scratch=args.from_scratch, steps=steps, seed=args.seed, quick=args.quick,
                    arena=args.arena, build_dir=default_build_dir())
