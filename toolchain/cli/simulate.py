"""``spikeforge simulate``: run a network on the bit-exact reference model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from spikeforge.toolchain.ir import NetworkError
from spikeforge.toolchain.reference import DEFAULT_POTENTIAL_BITS, simulate
from spikeforge.toolchain.tennlab import tennlab_result, tennlab_steps

from .common import FORMATS, UsageError, load_any, load_inputs, summary

__all__ = ["register"]

log = logging.getLogger("spikeforge")

_SIM_DESCRIPTION = """\
Run a network on the bit-exact reference model and report its spikes.

NETWORK is a spikeforge network JSON file or a TENNLab RISP network JSON file (detected by its
"Nodes"/"Edges" keys, or forced with --format). The inputs file is a JSON array of
[input_index, time, value] triples: at step `time`, `value` is added as-is to the neuron bound
to input port `input_index` (TENNLab's normalised spike values are not rescaled here; see
spikeforge.toolchain.tennlab.tennlab_inputs). A TENNLab RISP network runs as RISP's run(N)
does: N + 1 steps with run_time_inclusive, and with fire_like_ravens each spike is reported
one step after it is decided (as RISP prints it).

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
    if not net.is_integer():
        raise UsageError(f"{args.network}: a network with non-integer values (e.g. RISP-F, discrete: "
                         "false); the reference model is integer: quantize it first with `spikeforge import tennlab|nir FILE "
                         "-o net.json --target PRESET` and simulate net.json")
    risp = "tennlab" in net.metadata
    steps = tennlab_steps(net, args.steps) if risp else args.steps
    if steps != args.steps:
        log.info("run_time_inclusive: RISP's run(%d) performs %d steps", args.steps, steps)
    inputs = load_inputs(args.inputs) if args.inputs else []
    t0 = time.perf_counter()
    try:
        res = simulate(net, inputs, steps, potential_bits=args.potential_bits)
    except ValueError as e:  # includes NetworkError: a network or inputs the model refuses
        where = args.inputs if args.inputs and not isinstance(e, NetworkError) else args.network
        raise UsageError(f"{where}: {e}") from None
    if risp:
        res = tennlab_result(net, res)  # fire_like_ravens: spikes at the step RISP reports them
    log.info("simulated %d steps in %.3f s (%d synaptic events)", steps, time.perf_counter() - t0, res.events)
    if args.raster:
        # matplotlib is slow to import: only when a plot is asked for
        from spikeforge.toolchain.plot import save_raster

        save_raster(res, net, args.raster, title=f"{Path(args.network).name}: {steps} steps")
    if args.json:
        doc = {"fire_counts": {str(k): v for k, v in res.fire_counts.items()},
               "spikes": [[i, t] for i, t in res.spikes]}
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        sys.stdout.write(summary(net, res))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge simulate``."""
    sp = sub.add_parser("simulate", help="run a network on the reference model",
                        description=_SIM_DESCRIPTION, epilog=_SIM_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("network", metavar="NETWORK", help="network JSON file (spikeforge or TENNLab RISP)")
    sp.add_argument("--format", choices=FORMATS, default="auto",
                    help="file format (default: auto-detect)")
    sp.add_argument("--inputs", metavar="FILE",
                    help="JSON array of [input_index, time, value] triples (default: no inputs)")
    sp.add_argument("--steps", type=int, default=100, metavar="N", help="steps to run (default: 100)")
    sp.add_argument("--potential-bits", type=int, default=DEFAULT_POTENTIAL_BITS, metavar="P",
                    help=f"width of the saturating potential (default: {DEFAULT_POTENTIAL_BITS})")
    sp.add_argument("--json", action="store_true", help="print fire counts and spikes as JSON")
    sp.add_argument("--raster", metavar="PNG", help="write a spike raster plot to this file")
    sp.set_defaults(func=_cmd_simulate)
