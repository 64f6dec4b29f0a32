"""``spikeforge import nir|tennlab FILE -o NETWORK`` and ``spikeforge export nir|tennlab NETWORK -o FILE``.

TENNLab goes through :mod:`spikeforge.toolchain.tennlab` (as ``spikeforge convert`` does), NIR
through :mod:`spikeforge.toolchain.nirio` (mapping: ``docs/nir-mapping.md``).
"""

from __future__ import annotations

import argparse
import sys

from spikeforge.toolchain.compiler import quantize_network
from spikeforge.toolchain.ir import save_network
from spikeforge.toolchain.nirio import PRODUCERS, SPIKE_CONVENTIONS, read_nir, write_nir
from spikeforge.toolchain.tennlab import write_tennlab

from .common import add_target_option, load_any, target

__all__ = ["register"]

_IMPORT_EPILOG = """\
examples:
  spikeforge import nir snntorch_model.nir -o net.json --producer snntorch   # dt 1e-4, step, subtract
  spikeforge import nir model.nir -o net.json --dt 1e-3 --spike impulse --reset zero
  spikeforge import nir model.nir -o net.json --target up5k       # float weights -> integers
  spikeforge import tennlab risp_net.json -o net.json"""

_EXPORT_EPILOG = """\
examples:
  spikeforge export nir net.json -o net.nir --dt 1e-3
  spikeforge export tennlab net.json -o risp_net.json"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` and ``export`` commands."""
    ip = sub.add_parser(
        "import", help="import a NIR (HDF5) or TENNLab RISP network as spikeforge JSON",
        description="Import a network. NIR graphs are discretised at --dt seconds per step; how "
                    "every continuous parameter maps to the integer contract is in "
                    "docs/nir-mapping.md. Unsupported NIR nodes are refused by name.",
        epilog=_IMPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ip.add_argument("format", choices=("nir", "tennlab"), help="format of FILE")
    ip.add_argument("file", metavar="FILE", help="file to read")
    ip.add_argument("-o", "--output", required=True, metavar="NETWORK", help="spikeforge JSON to write")
    ip.add_argument("--producer", choices=tuple(PRODUCERS), default="generic",
                    help="NIR: the tool that wrote FILE; sets the defaults of --dt, --spike and "
                         "--reset to that tool's conventions (snntorch: 1e-4, step, subtract; "
                         "generic: 1e-3, impulse, zero; see docs/nir-mapping.md)")
    ip.add_argument("--dt", type=float, default=None,
                    help="NIR: seconds per step (default: the producer's, else what a spikeforge "
                         "export recorded, else 1e-3)")
    ip.add_argument("--spike", choices=SPIKE_CONVENTIONS, default=None,
                    help="NIR: what a spike means: a Dirac impulse (dv = r*w/tau, decay exp(-dt/tau)) "
                         "or one step of current (dv = r*w*dt/tau, decay 1-dt/tau); default: the producer's")
    ip.add_argument("--reset", choices=("zero", "subtract"), default=None,
                    help="NIR: reset mode of every spiking node (NIR 1.0 cannot say; default: the "
                         "producer's, else recorded by spikeforge, else zero)")
    ip.add_argument("--li-threshold", type=float, default=1.0,
                    help="NIR: threshold given to LI and I nodes (default: 1.0)")
    add_target_option(ip, None, "quantize a float import for this core with the compiler's quantize_network "
                                "(one scale per layer); input scales are printed")
    ip.set_defaults(func=_cmd_import)

    ep = sub.add_parser(
        "export", help="export a spikeforge network to NIR (HDF5) or TENNLab RISP JSON",
        description="Export a network. NIR: leak none/shift/full become IF/LIF/Threshold nodes; "
                    "what NIR has no field for (reset by subtraction, v_min, refractory, ids, "
                    "names) is kept in the graph metadata so that spikeforge imports it back "
                    "unchanged. TENNLab: networks RISP cannot express are refused by field.",
        epilog=_EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ep.add_argument("format", choices=("nir", "tennlab"), help="format of FILE")
    ep.add_argument("network", metavar="NETWORK", help="network JSON (spikeforge or TENNLab)")
    ep.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    ep.add_argument("--dt", type=float, default=1e-3, help="NIR: seconds per step (default: 1e-3)")
    ep.set_defaults(func=_cmd_export)


def _cmd_import(args: argparse.Namespace) -> int:
    if args.format == "nir":
        net = read_nir(args.file, args.dt, reset=args.reset, li_threshold=args.li_threshold,
                       producer=args.producer, spike=args.spike)
    else:
        net = load_any(args.file, "tennlab")
    note = ""
    if args.target and not net.is_integer():
        net, rep = quantize_network(net, target(args).config, granularity="layer")
        scales = sorted({round(x, 6) for x in rep.input_scales})
        note = (f"quantized for {args.target}: multiply input values by "
                f"{scales[0] if len(scales) == 1 else rep.input_scales}\n")
    save_network(net, args.output)
    kind = "integer" if net.is_integer() else "float (quantize it before simulating: --target PRESET)"
    sys.stdout.write(f"wrote {args.output}: {len(net.neurons)} neurons, {len(net.synapses)} synapses, "
                     f"{len(net.inputs)} inputs, {len(net.outputs)} outputs, {kind}\n{note}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    net = load_any(args.network)
    if args.format == "nir":
        write_nir(net, args.output, dt=args.dt)
    else:
        write_tennlab(net, args.output)
    sys.stdout.write(f"wrote {args.output}: {len(net.neurons)} neurons, {len(net.synapses)} synapses "
                     f"({args.format})\n")
    return 0
