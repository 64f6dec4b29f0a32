"""``spikeforge bench CASE``: throughput figures, one JSON line per figure.

Each case is a sub-command with its own options and defaults (:data:`BENCH_CASES`: name →
function adding its parser); its handler calls a library benchmark, a generator of figures,
and prints them with :func:`~.common.emit`. The heavy benchmark modules (Amaranth, Verilator,
the trainers, Dask, the robot world) are imported by the handlers: they are slow to import and
``spikeforge --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from spikeforge.firmware.boards import BOARDS

from .common import UsageError, add_target_option, deprecated_alias, emit, target

__all__ = ["BENCH_CASES", "register"]

_DESCRIPTION = """\
Measure throughput and print one JSON line per figure; 'spikeforge bench CASE --help' gives
a case's options.

  sim      the reference model on a random network of 1,000 neurons / 20,000 synapses (delays
           1..16, weights and thresholds chosen so about a fifth of the neurons keep firing),
           1,000 steps: one input sequence (single), 64 sequences at once (batch64) and 64
           different networks at once (population64). Each line holds events, seconds (run
           time, setup excluded), events_per_s, firing_rate and a machine description.
  core     the RTL core: one 'resources' line from the board build (logic cells, EBR, SPRAM,
           DSP, fmax after routing), then Verilator cycle counts on a dense network (every
           neuron fires every step; delays all 1, and spread over 1..16) and on a sparse one:
           synaptic ops per clock, cycles per step, steps/s at fmax. Every figure comes from
           a run whose spikes matched the reference model.
  compile  the graph compiler: seconds and peak memory for 1k/10k/100k synapses.
  link     serial link: image-load throughput, closed-loop latency, fault counts.
  board    board design: resources and fmax on both boards, virtual board speed.
  evolve   evolutionary trainer: evaluations/s, time to the task bars.
  convert  ANN-to-SNN conversion: ANN vs integer-SNN accuracy on up5k.
  robot    coverage and collisions of robot controllers on 10 unseen arenas.
  reservoir liquid state machines: host / on-core readout figures, reservoirpy ESN, raw floor.

For scale: TENNLab's C++ RISP simulator does about 5 million synaptic events/s on one core;
the uCaspian core (iCE40UP5K) does 256 neurons / 4,096 synapses at 30-32 MHz, ~1 op/clock."""

_EPILOG = """\
example:
  spikeforge bench sim
  spikeforge bench sim | jq -r '[.case, .events_per_s] | @tsv'
  spikeforge bench core                      # the up5k core, iCEBreaker build + Verilator
  spikeforge bench core --target ulx3s-85f
  spikeforge bench link --target tiny --no-build"""

_DEFAULT_BOARD = next(iter(BOARDS))


def _case(bsub: argparse._SubParsersAction, name: str, help: str,
          handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = bsub.add_parser(name, help=help, description=help)
    p.set_defaults(func=handler)
    return p


# ----------------------------------------------------------------------------- cases
def _sim(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.sim.bench import bench_sim  # sim.bench pulls in Amaranth and the compiler

        return emit(bench_sim(args.neurons, args.synapses, args.steps, args.runs, args.seed, args.only))

    p = _case(bsub, "sim", "synaptic events per second of the reference model", run)
    p.add_argument("--neurons", type=int, default=1000, help="neurons of the network (default: 1000)")
    p.add_argument("--synapses", type=int, default=20000, help="synapses (default: 20000)")
    p.add_argument("--steps", type=int, default=1000, help="steps per run (default: 1000)")
    p.add_argument("--runs", type=int, default=64, help="sequences / networks at once (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="network seed (default: 0)")
    p.add_argument("--only", action="append", default=[], choices=("single", "batch", "population"),
                   help="measure only these cases (repeatable; default: all)")


def _core(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.sim.bench import bench_core  # Amaranth and Verilator behind it

        t = target(args)
        b = t.board or BOARDS[_DEFAULT_BOARD]
        sys.stderr.write(f"spikeforge: core '{t.config.name}'"
                         + ("" if args.no_build else f": building it for {b.name} (cached after the first time),")
                         + " then running it on Verilator (dense and sparse workloads)\n")
        return emit(bench_core(b, t.config, build=not args.no_build, steps_dense=args.steps_dense,
                               steps_sparse=args.steps_sparse))

    p = _case(bsub, "core", "resources, fmax, synaptic ops per clock of the RTL core", run)
    add_target_option(p, _DEFAULT_BOARD, "the core and the board whose build gives resources and fmax "
                                         f"(a bare core builds for {_DEFAULT_BOARD})")
    deprecated_alias(p, "--board", "target", "--target")
    p.add_argument("--no-build", action="store_true", help="skip the bitstream build (no fmax)")
    p.add_argument("--steps-dense", type=int, default=6, help="steps of the dense workloads (default: 6)")
    p.add_argument("--steps-sparse", type=int, default=60, help="steps of the sparse workload (default: 60)")


def _compile(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.sim.bench import (
            bench_compile,  # sim.bench pulls in Amaranth and the compiler
        )

        return emit(bench_compile(args.seed))

    p = _case(bsub, "compile", "graph compiler: seconds and peak memory for 1k/10k/100k synapses", run)
    p.add_argument("--seed", type=int, default=0, help="network seed (default: 0)")


def _link(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.sim.bench_link import bench_link  # the emulated and virtual boards

        cfg = target(args).config if args.target else None
        if args.control_steps < 1:
            raise ValueError(f"--control-steps {args.control_steps} is out of range; allowed: >= 1")
        return emit(bench_link(cfg, cfg, seed=args.seed, control_steps=args.control_steps,
                               virtual=not args.no_build))

    p = _case(bsub, "link", "serial link: image-load throughput, closed-loop latency, fault counts", run)
    add_target_option(p, None, "the core of both boards (default: up5k on the emulated board, tiny on the "
                               "virtual board)")
    p.add_argument("--seed", type=int, default=0, help="network seed (default: 0)")
    p.add_argument("--control-steps", type=int, default=200,
                   help="closed-loop control steps (default: 200; at most 50 on the virtual board)")
    p.add_argument("--no-build", action="store_true", help="skip the Verilator virtual board")


def _board(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.sim.bench_link import bench_board  # builds and the virtual board

        if args.steps < 1:
            raise ValueError(f"--steps {args.steps} is out of range; allowed: >= 1")
        return emit(bench_board(target(args).config, steps=args.steps, seed=args.seed, build=not args.no_build))

    p = _case(bsub, "board", "board design: resources and fmax on both boards, virtual board speed", run)
    add_target_option(p, "tiny", "the virtual board's core")
    p.add_argument("--steps", type=int, default=4000, help="steps of the virtual board speed run (default: 4000)")
    p.add_argument("--seed", type=int, default=0, help="network seed (default: 0)")
    p.add_argument("--no-build", action="store_true", help="skip the bitstream builds")


def _evolve(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.toolchain.train.bench import bench_evolve  # the trainer and Dask

        return emit(bench_evolve(args.population, args.seed, args.bars))

    p = _case(bsub, "evolve", "evolutionary trainer: evaluations/s, time to the task bars", run)
    p.add_argument("--population", type=int, default=64, help="networks per generation (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--bars", action="store_true",
                   help="also train to the breast-cancer and cart-pole bars (minutes each)")


def _convert(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.toolchain.train.bench import bench_convert  # the trainer and scikit-learn

        return emit(bench_convert(args.seed))

    p = _case(bsub, "convert", "ANN-to-SNN conversion: ANN vs integer-SNN accuracy on up5k", run)
    p.add_argument("--seed", type=int, default=0, help="split and training seed (default: 0)")


def _robot(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        # the world, the trainer and the boards are slow to import: only for this case
        from spikeforge.toolchain.robot.bench import bench_robot

        return emit(bench_robot(args.steps, args.population, args.seed))

    p = _case(bsub, "robot", "coverage and collisions of robot controllers on 10 unseen arenas", run)
    p.add_argument("--steps", type=int, default=600, help="control steps per episode (default: 600)")
    p.add_argument("--population", type=int, default=64,
                   help="random robot networks of the task evaluation figure (default: 64, at most 256)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")


def _reservoir(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.toolchain.train.reservoir import bench  # the trainer and scikit-learn

        return emit(bench(tuple(args.tasks), target(args).config))

    p = _case(bsub, "reservoir", "liquid state machines: host and on-core readouts, ESN and raw floor", run)
    p.add_argument("--tasks", nargs="+", default=["japanese-vowels", "mackey-glass", "digits-sequence"],
                   help="tasks (default: all three built-in)")
    add_target_option(p, "up5k", "the core")


def _nir(bsub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from spikeforge.sim.bench_interop import bench_nir  # NIR (h5py) and the compiler

        try:
            return emit(bench_nir(args.data, target(args).config))
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None

    p = _case(bsub, "nir", "NIR files snnTorch wrote: our import against snnTorch's own outputs", run)
    p.add_argument("--data", default="tests/data/nir", metavar="DIR",
                   help="the recordings (default: tests/data/nir of the repository)")
    add_target_option(p, "up5k", "the core whose quantisation the networks go through")


#: ``spikeforge bench CASE``: name → function that adds the case's parser.
BENCH_CASES: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "sim": _sim, "core": _core, "compile": _compile, "link": _link, "board": _board,
    "evolve": _evolve, "convert": _convert, "robot": _robot, "nir": _nir, "reservoir": _reservoir,
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge bench`` and its cases."""
    bp = sub.add_parser("bench", help="throughput benchmarks (one JSON line per figure)",
                        description=_DESCRIPTION, epilog=_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = bp.add_subparsers(dest="case", metavar="CASE", required=True)
    for add in BENCH_CASES.values():
        add(bsub)
