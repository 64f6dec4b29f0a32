"""The ``spikeforge`` command line.

Subcommands
-----------
``simulate``  run a network (spikeforge or TENNLab RISP JSON) on the reference model.
``bench``     throughput figures (``bench sim``: the reference model; more cases plug into
              :data:`BENCH_CASES`).
``convert``   spikeforge JSON <-> TENNLab RISP JSON.
``image``     lower a network onto a core: fit report, core image (:mod:`.cli_image`).
``verify``    the RTL core on Verilator against the reference model (:mod:`.cli_hw`).
``build``     a core bitstream for a board, with resources and fmax (:mod:`.cli_hw`).
``demo``      the whole path on a small robot reflex network (:mod:`.demo`).

Errors are one line on stderr, ``spikeforge: error: <message>``, with exit code 2 for bad
files, inputs and options, 1 for failures at run time; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .ir import Network, NetworkError, read_json_file
from .reference import DEFAULT_POTENTIAL_BITS, ReferenceSimulator, SimResult, simulate
from .tennlab import import_tennlab, is_tennlab_document

__all__ = ["BENCH_CASES", "bench_network", "load_any", "main", "machine_description"]

log = logging.getLogger("spikeforge")

PROG = "spikeforge"


class UsageError(Exception):
    """A bad command line, file or option: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and do not exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- loading
def load_any(path: str | Path, fmt: str = "auto") -> Network:
    """Load a network file as spikeforge JSON or TENNLab RISP JSON.

    Parameters
    ----------
    path
        The file.
    fmt
        ``"spikeforge"``, ``"tennlab"``, or ``"auto"`` (TENNLab when the document has ``Nodes``
        and ``Edges`` keys).

    Raises
    ------
    NetworkError
        With the path first, on an unreadable file, invalid JSON or an invalid network.
    """
    p = Path(path)
    doc = read_json_file(p)
    try:
        if fmt == "tennlab" or (fmt == "auto" and is_tennlab_document(doc)):
            net = import_tennlab(doc)
            log.info("%s: TENNLab RISP network", p)
        else:
            net = Network.from_dict(doc)
    except NetworkError as e:
        raise NetworkError(f"{p}: {e}") from None
    log.info("%s: %d neurons, %d synapses, %d inputs, %d outputs", p, len(net.neurons),
             len(net.synapses), len(net.inputs), len(net.outputs))
    return net


def _load_inputs(path: str) -> list[tuple[int, int, int]]:
    p = Path(path)
    doc = read_json_file(p, UsageError, "inputs file")
    if not isinstance(doc, list):
        raise UsageError(f"{p}: inputs file holds a {type(doc).__name__}; expected a JSON array of "
                         "[input_index, time, value] triples")
    out = []
    for k, item in enumerate(doc):
        if not (isinstance(item, list) and len(item) == 3):
            raise UsageError(f"{p}: input #{k} = {json.dumps(item)} is not an [input_index, time, value] triple")
        for name, v in zip(("input_index", "time", "value"), item, strict=True):
            if not isinstance(v, int) or isinstance(v, bool):
                raise UsageError(f"{p}: input #{k}: {name} = {json.dumps(v)} is not an integer")
        out.append((item[0], item[1], item[2]))
    return out


# ----------------------------------------------------------------------------- simulate
_SIM_DESCRIPTION = """\
Run a network on the bit-exact reference model and report its spikes.

NETWORK is a spikeforge network JSON file or a TENNLab RISP network JSON file (detected by its
"Nodes"/"Edges" keys, or forced with --format). The inputs file is a JSON array of
[input_index, time, value] triples: at step `time`, `value` is added as-is to the neuron bound
to input port `input_index` (TENNLab's normalised spike values are not rescaled here; see
spikeforge.toolchain.tennlab.tennlab_inputs).

Output: a short summary (steps, spikes, spikes per output port), or with --json exactly
  {"fire_counts": {"<neuron id>": n, ...}, "spikes": [[neuron_id, t], ...]}
with every neuron in fire_counts."""

_SIM_EPILOG = """\
example:
  echo '[[0, 0, 2], [1, 5, 2]]' > in.json
  spikeforge simulate tests/data/risp_main_out.json --inputs in.json --steps 20 --raster r.png
  spikeforge simulate net.json --inputs in.json --steps 100 --json | jq .fire_counts"""


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.steps < 0:
        raise UsageError(f"--steps = {args.steps} is out of range; allowed: an integer >= 0")
    if not 2 <= args.potential_bits <= 62:
        raise UsageError(f"--potential-bits = {args.potential_bits} is out of range; allowed: 2..62")
    net = load_any(args.network, args.format)
    inputs = _load_inputs(args.inputs) if args.inputs else []
    t0 = time.perf_counter()
    try:
        res = simulate(net, inputs, args.steps, potential_bits=args.potential_bits)
    except ValueError as e:  # includes NetworkError: a network or inputs the model refuses
        where = args.inputs if args.inputs and not isinstance(e, NetworkError) else args.network
        raise UsageError(f"{where}: {e}") from None
    log.info("simulated %d steps in %.3f s (%d synaptic events)", args.steps, time.perf_counter() - t0, res.events)
    if args.raster:
        from .plot import save_raster  # matplotlib only when asked for

        save_raster(res, net, args.raster, title=f"{Path(args.network).name}: {args.steps} steps")
    if args.json:
        doc = {"fire_counts": {str(k): v for k, v in res.fire_counts.items()},
               "spikes": [[i, t] for i, t in res.spikes]}
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        sys.stdout.write(_summary(net, res))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .ir import save_network
    from .tennlab import write_tennlab

    net = load_any(args.source, args.from_format)
    if args.to == "tennlab":
        write_tennlab(net, args.dest)
    else:
        save_network(net, args.dest)
    sys.stdout.write(f"wrote {args.dest}: {len(net.neurons)} neurons, {len(net.synapses)} synapses "
                     f"({args.to} JSON)\n")
    return 0


def _summary(net: Network, res: SimResult) -> str:
    counts = res.fire_counts
    lines = [
        f"network: {len(net.neurons)} neurons, {len(net.synapses)} synapses, "
        f"{len(net.inputs)} inputs, {len(net.outputs)} outputs",
        f"steps: {res.steps}",
        f"spikes: {len(res.spike_times)} (synaptic events: {res.events})",
    ]
    if net.outputs:
        lines.append("output spikes:")
        width = max(len(p.name) for p in net.outputs)
        for p in net.outputs:
            lines.append(f"  {p.name:<{width}}  neuron {p.neuron}: {counts[p.neuron]}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- bench
def machine_description() -> dict[str, Any]:
    """CPU model (from ``/proc/cpuinfo``), core counts, Python and numpy versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
            "python": platform.python_version(), "numpy": np.__version__}


def bench_network(neurons: int = 1000, synapses: int = 20000, seed: int = 0,
                  max_delay: int = 16) -> tuple[Network, list[tuple[int, int, int]]]:
    """A random integer network with sustained activity, and the inputs that start it.

    Uniform random ``pre``/``post``; delays uniform in ``1..max_delay``; weights uniform in
    ``-7..8``; thresholds in ``8..16``; ``v_min = -16``; no leak. With a fan-out of 20 this
    keeps roughly a fifth of the neurons firing each step once 5 % of them (the inputs) are
    kicked for the first 5 steps.
    """
    rng = np.random.default_rng(seed)
    thr = rng.integers(8, 17, neurons)
    pre = rng.integers(0, neurons, synapses)
    post = rng.integers(0, neurons, synapses)
    w = rng.integers(-7, 9, synapses)
    d = rng.integers(1, max_delay + 1, synapses)
    net = Network()
    for i in range(neurons):
        net.add_neuron(i, threshold=int(thr[i]), v_min=-16)
    for a, b, c, e in zip(pre.tolist(), post.tolist(), w.tolist(), d.tolist(), strict=True):
        net.add_synapse(a, b, c, e)
    n_in = max(1, neurons // 20)
    for i in range(n_in):
        net.add_input(i)
    net.metadata["provenance"] = {"generator": "spikeforge bench_network", "seed": seed}
    inputs = [(k, t, 20) for k in range(n_in) for t in range(5)]
    return net, inputs


def _bench_sim(args: argparse.Namespace) -> int:
    machine = machine_description()
    n, m, steps, runs = args.neurons, args.synapses, args.steps, args.runs
    for name, v in (("--neurons", n), ("--synapses", m), ("--steps", steps), ("--runs", runs)):
        if v < 1:
            raise UsageError(f"{name} = {v} is out of range; allowed: an integer >= 1")
    net, inputs = bench_network(n, m, args.seed)
    cases: list[tuple[str, list[Network]]] = [("single", [net]), (f"batch{runs}", [net] * runs)]
    if "population" in args.only or not args.only:
        t0 = time.perf_counter()
        pop = [net] + [bench_network(n, m, args.seed + k)[0] for k in range(1, runs)]
        log.info("built %d networks in %.1f s", runs, time.perf_counter() - t0)
        cases.append((f"population{runs}", pop))
    for case, nets in cases:
        kind = case.rstrip("0123456789")
        if args.only and kind not in args.only:
            continue
        t0 = time.perf_counter()
        sim = ReferenceSimulator(nets)
        for k in range(len(nets)):
            sim.add_inputs(k, inputs)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim.run(steps)
        seconds = time.perf_counter() - t0
        events = int(sim.events.sum())
        spikes = sum(len(r.spike_times) for r in sim.results())
        line = {
            "bench": "sim", "case": case, "neurons": n, "synapses": m, "steps": steps,
            "runs": len(nets), "events": events, "seconds": round(seconds, 4),
            "events_per_s": round(events / seconds) if seconds > 0 else None,
            "firing_rate": round(spikes / (n * steps * len(nets)), 4),
            "setup_seconds": round(setup, 4), "machine": machine,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 0


#: ``spikeforge bench <case>``: name → (handler, one-line help). Other modules add cases
#: (e.g. ``"core"``) with :func:`register_bench`.
BENCH_CASES: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "sim": (_bench_sim, "synaptic events per second of the reference model"),
    "core": (lambda args: _bench_core(args), "resources, fmax, synaptic ops per clock of the RTL core"),
}


def _bench_core(args: argparse.Namespace) -> int:
    from .cli_hw import bench_core

    return bench_core(args)


def register_bench(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> None:
    """Add a ``spikeforge bench NAME`` case (its options come from the shared bench parser)."""
    BENCH_CASES[name] = (handler, help)


_BENCH_DESCRIPTION = """\
Measure throughput and print one JSON line per figure.

  sim   the reference model on a random network of 1,000 neurons / 20,000 synapses (delays
        1..16, weights and thresholds chosen so about a fifth of the neurons keep firing),
        1,000 steps: one input sequence (single), 64 sequences at once (batch64) and 64
        different networks at once (population64). Each line holds events, seconds (run time,
        setup excluded), events_per_s, firing_rate and a machine description.

  core  the RTL core: one 'resources' line from the board build (logic cells, EBR, SPRAM, DSP,
        fmax after routing), then Verilator cycle counts on a dense network (every neuron
        fires every step; delays all 1, and spread over 1..16) and on a sparse one:
        synaptic ops per clock, cycles per step, steps/s at fmax. Every figure comes from a
        run whose spikes matched the reference model.

For scale: TENNLab's C++ RISP simulator does about 5 million synaptic events/s on one core;
the uCaspian core (iCE40UP5K) does 256 neurons / 4,096 synapses at 30-32 MHz, ~1 op/clock."""

_BENCH_EPILOG = """\
example:
  spikeforge bench sim
  spikeforge bench sim | jq -r '[.case, .events_per_s] | @tsv'
  spikeforge bench core                      # the up5k core, iCEBreaker build + Verilator
  spikeforge bench core --board ulx3s-85f"""


def _cmd_bench(args: argparse.Namespace) -> int:
    handler, _ = BENCH_CASES[args.case]
    return handler(args)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog=PROG,
        description="spikeforge: spiking networks onto cheap FPGAs, checked spike for spike "
                    "against one bit-exact reference model.",
        epilog="example:\n  spikeforge simulate net.json --inputs in.json --steps 100\n"
               "run 'spikeforge COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress to stderr (-vv for debug detail)")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    from .cli_robot import add_robot_parser, bench_robot

    register_bench("robot", bench_robot, "coverage and collisions of robot controllers on 10 unseen arenas")
    from .cli_evolve import bench_evolve

    register_bench("evolve", bench_evolve, "evolutionary trainer: evaluations/s, time to the task bars")
    from .cli_convert import bench_convert

    register_bench("convert", bench_convert, "ANN-to-SNN conversion: ANN vs integer-SNN accuracy on up5k")
    from .cli_deploy import add_deploy_parsers, bench_link

    register_bench("link", bench_link, "serial link: image-load throughput, closed-loop latency, fault counts")
    from .cli_compile import add_compile_parser, bench_compile

    register_bench("compile", bench_compile, "graph compiler: seconds and peak memory for 1k/10k/100k synapses")
    from .cli_board import bench_board

    register_bench("board", bench_board, "board design: resources and fmax on both boards, virtual board speed")

    sp = sub.add_parser("simulate", help="run a network on the reference model",
                        description=_SIM_DESCRIPTION, epilog=_SIM_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("network", metavar="NETWORK", help="network JSON file (spikeforge or TENNLab RISP)")
    sp.add_argument("--format", choices=("auto", "spikeforge", "tennlab"), default="auto",
                    help="file format (default: auto-detect)")
    sp.add_argument("--inputs", metavar="FILE",
                    help="JSON array of [input_index, time, value] triples (default: no inputs)")
    sp.add_argument("--steps", type=int, default=100, metavar="N", help="steps to run (default: 100)")
    sp.add_argument("--potential-bits", type=int, default=DEFAULT_POTENTIAL_BITS, metavar="P",
                    help=f"width of the saturating potential (default: {DEFAULT_POTENTIAL_BITS})")
    sp.add_argument("--json", action="store_true", help="print fire counts and spikes as JSON")
    sp.add_argument("--raster", metavar="PNG", help="write a spike raster plot to this file")
    sp.set_defaults(func=_cmd_simulate)

    bp = sub.add_parser("bench", help="throughput benchmarks (one JSON line per figure)",
                        description=_BENCH_DESCRIPTION, epilog=_BENCH_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bp.add_argument("case", choices=sorted(BENCH_CASES), metavar="CASE",
                    help="; ".join(f"{k}: {h}" for k, (_, h) in sorted(BENCH_CASES.items())))
    # Sizes: hidden, for quick runs and tests (the published figures use the defaults).
    bp.add_argument("--neurons", type=int, default=1000, help=argparse.SUPPRESS)
    bp.add_argument("--synapses", type=int, default=20000, help=argparse.SUPPRESS)
    bp.add_argument("--steps", type=int, default=1000, help=argparse.SUPPRESS)
    bp.add_argument("--runs", type=int, default=64, help=argparse.SUPPRESS)
    bp.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    bp.add_argument("--only", action="append", default=[], choices=("single", "batch", "population"),
                    help=argparse.SUPPRESS)
    bp.add_argument("--config", default=None, metavar="PRESET|FILE",
                    help="core: the core configuration (default: the board's preset)")
    bp.add_argument("--board", default=None, choices=("icebreaker", "ulx3s-85f"),
                    help="core: the board whose build gives resources and fmax (default: icebreaker)")
    bp.add_argument("--no-build", action="store_true", help="core: skip the bitstream build (no fmax)")
    bp.add_argument("--core-steps-dense", type=int, default=6, help=argparse.SUPPRESS)
    bp.add_argument("--core-steps-sparse", type=int, default=60, help=argparse.SUPPRESS)
    bp.add_argument("--bars", action="store_true",
                    help="evolve: also train to the breast-cancer and cart-pole bars (minutes each)")
    bp.set_defaults(func=_cmd_bench)

    cp = sub.add_parser("convert", help="convert a network between spikeforge and TENNLab RISP JSON",
                        description="Convert a network file. TENNLab imports keep their node ids and "
                                    "their RISP parameters, so an imported network exports back "
                                    "unchanged; a network RISP cannot express (subtract reset, shift "
                                    "leak, refractory, bias, per-neuron v_min) is refused with the "
                                    "neuron and field named.",
                        epilog="examples:\n  spikeforge convert risp_net.json net.json --to spikeforge\n"
                               "  spikeforge convert net.json risp_net.json --to tennlab",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cp.add_argument("source", metavar="IN", help="network file to read")
    cp.add_argument("dest", metavar="OUT", help="file to write (replaced atomically)")
    cp.add_argument("--from", dest="from_format", choices=("auto", "spikeforge", "tennlab"), default="auto",
                    help="format of IN (default: auto-detect)")
    cp.add_argument("--to", choices=("spikeforge", "tennlab"), required=True, help="format of OUT")
    cp.set_defaults(func=_cmd_convert)

    from .cli_hw import add_build_parser, add_demo_parser, add_verify_parser
    from .cli_image import add_image_parser
    from .cli_train import add_train_parser

    add_image_parser(sub)
    add_train_parser(sub)

    add_verify_parser(sub)
    add_build_parser(sub)
    add_demo_parser(sub)
    add_robot_parser(sub)
    from .cli_interchange import add_interchange_parsers

    add_interchange_parsers(sub)
    from .cli_board import add_board_parsers

    add_board_parsers(sub)
    add_deploy_parsers(sub)
    add_compile_parser(sub)
    return parser


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger("spikeforge")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("spikeforge: %(levelname)s: %(message)s"))
        root.addHandler(h)


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {' '.join(str(message).split())}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 runtime failure, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _configure_logging(args.verbose)
        return int(args.func(args))
    except SystemExit as e:  # --help, --version
        return int(e.code) if isinstance(e.code, int) else 0
    except (UsageError, NetworkError, ValueError) as e:
        if debug:
            raise
        _fail(str(e))
        return 2
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as e:  # a runtime failure (OSError writing a file, a bug): one line
        if debug:
            raise
        if isinstance(e, OSError):
            _fail(f"{str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}")
        else:
            _fail(f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
