"""``spikeforge convert``: a network file between spikeforge and TENNLab RISP JSON."""

from __future__ import annotations

import argparse
import sys

from spikeforge.toolchain.ir import save_network
from spikeforge.toolchain.tennlab import write_tennlab

from .common import FORMATS, load_any

__all__ = ["register"]


def _cmd_convert(args: argparse.Namespace) -> int:
    net = load_any(args.source, args.from_format)
    if args.to == "tennlab":
        write_tennlab(net, args.dest)
    else:
        save_network(net, args.dest)
    sys.stdout.write(f"wrote {args.dest}: {len(net.neurons)} neurons, {len(net.synapses)} synapses "
                     f"({args.to} JSON)\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge convert``."""
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
    cp.add_argument("--from", dest="from_format", choices=FORMATS, default="auto",
                    help="format of IN (default: auto-detect)")
    cp.add_argument("--to", choices=("spikeforge", "tennlab"), required=True, help="format of OUT")
    cp.set_defaults(func=_cmd_convert)
