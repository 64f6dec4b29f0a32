"""``spikeforge compile``: the graph compiler on the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from spikeforge.toolchain.compiler import CompileError, compile_network, write_compiled
from spikeforge.toolchain.compiler.passes import records_table
from spikeforge.toolchain.fsutil import write_atomic
from spikeforge.toolchain.ir import save_network

from .common import FORMATS, UsageError, add_target_option, load_any, load_inputs, target

__all__ = ["register"]

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Compile any network for a core: quantize float values to the core's widths, prune dead
neurons and inert synapses, split delays longer than the core's maximum through relay
neurons (spike timing exact), split weights wider than the core's, place neurons for
locality, partition over several cores when one is too small (--max-cores), and lower each
part to a core image. Prints what every pass did.

NETWORK is spikeforge or TENNLab RISP JSON (auto-detected). --target is a board
(icebreaker -> up5k, ulx3s-85f -> ecp5-85f), BOARD:CORE, a preset (tiny, small, up5k,
ecp5-85f) or a CoreConfig JSON file. With one core, -o writes a core image (as 'spikeforge image -o'); with
several, a deployment JSON: {"format": "spikeforge.deployment", "images": [...], "routes":
[...]}, each route {src_core, src, dst_core, dst, dst_port, weight, delay}: a spike of src at
t is sent as INPUT weight to dst_port of dst_core, applied at t + delay.

--verify-steps N checks after every exact pass, then the core images against the compiled
network, in the reference model spike for spike (on --inputs, or random stimuli). A network
that cannot be made to fit is refused with the numbers that do not fit (exit code 2)."""

_EPILOG = """\
examples:
  spikeforge compile net.json --target icebreaker -o net.image.json --report report.json
  spikeforge compile risp_net.json --target ulx3s-85f -o net.image.json --verify-steps 200
  spikeforge compile big.json --target up5k --max-cores 4 -o big.deploy.json
  spikeforge compile float_net.json --target tiny --granularity layer --dump-after delays
  spikeforge compile net.json --target icebreaker --network-out compiled.json --json"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge compile``."""
    cp = sub.add_parser("compile", help="compile any network to core image(s) (quantize, relays, partition)",
                        description=_DESCRIPTION, epilog=_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cp.add_argument("network", metavar="NETWORK", help="network file (spikeforge or TENNLab JSON)")
    cp.add_argument("--format", choices=FORMATS, default="auto",
                    help="format of NETWORK (default: auto-detect)")
    add_target_option(cp, "icebreaker", config_alias=False)
    cp.add_argument("-o", "--output", metavar="IMAGE", help="write the core image (or deployment) here")
    cp.add_argument("--report", metavar="FILE", help="write the compile report (JSON) here")
    cp.add_argument("--network-out", metavar="FILE", help="write the compiled network (spikeforge JSON) here")
    cp.add_argument("--dump-after", action="append", default=[], metavar="PASS",
                    help="write the graph as network JSON after this pass (repeatable; into --dump-dir)")
    cp.add_argument("--dump-dir", default=".", metavar="DIR", help="where --dump-after writes (default: .)")
    cp.add_argument("--verify-steps", type=int, default=0, metavar="N",
                    help="check every pass and the images in the reference model for N steps (default: 0, off)")
    cp.add_argument("--inputs", metavar="FILE",
                    help="stimuli for --verify-steps and the quantization report: a JSON array of "
                         "[input_index, time, value] triples")
    cp.add_argument("--max-cores", type=int, default=1, metavar="K",
                    help="split over up to K cores when one is too small (default: 1)")
    cp.add_argument("--granularity", choices=("network", "layer"), default="network",
                    help="quantization scale per network or per layer (default: network)")
    cp.add_argument("--max-fanout", type=int, default=None, metavar="F",
                    help="limit every neuron to F synapses with relay neurons (the cores need none)")
    cp.add_argument("--no-prune", action="store_true",
                    help="keep dead neurons and inert synapses (every source neuron stays on the core)")
    cp.add_argument("--json", action="store_true", help="print the report as one JSON line instead of the table")
    cp.set_defaults(func=_cmd_compile)


def _cmd_compile(args: argparse.Namespace) -> int:
    if args.verify_steps < 0:
        raise UsageError(f"--verify-steps = {args.verify_steps} is out of range; allowed: an integer >= 0")
    if args.max_cores < 1:
        raise UsageError(f"--max-cores = {args.max_cores} is out of range; allowed: an integer >= 1")
    cfg = target(args).config
    net = load_any(args.network, args.format)
    stimuli = [load_inputs(args.inputs)] if args.inputs else None
    try:
        res = compile_network(
            net, cfg, max_cores=args.max_cores, verify_steps=args.verify_steps, stimuli=stimuli,
            granularity=args.granularity, max_fanout=args.max_fanout, prune=not args.no_prune,
            dump_after=args.dump_after,
            dump_dir=args.dump_dir,
            progress=lambda name: log.info("pass %s", name))
    except CompileError as e:
        raise UsageError(f"{args.network}: {e}") from None
    rep = res.report
    if args.output:
        write_compiled(res, args.output)
    if args.report:
        write_atomic(args.report, json.dumps(rep, separators=(",", ":")) + "\n")
    if args.network_out:
        save_network(res.network, args.network_out)
    if args.json:
        sys.stdout.write(json.dumps(rep) + "\n")
        return 0
    c, q = rep["compiled"], rep["quantization"]
    lines = [records_table(res.records), ""]
    lines.append(f"source:   {rep['source']['neurons']} neurons, {rep['source']['synapses']} synapses"
                 + ("" if not rep["source"]["drc"] else
                    " (did not fit: " + ", ".join(f"{k} x{v}" for k, v in rep["source"]["drc"].items()) + ")"))
    lines.append(f"compiled: {c['neurons']} neurons ({c['relays']} relays), {c['synapses']} synapses, "
                 f"{c['cores']} core(s) {cfg.name!r}, {c['routes']} routes")
    if not q.get("exact", True):
        lines.append(f"quantized: scale {min(q['scales']):.6g}, worst weight error {q['max_abs_weight_error']:.4g} "
                     f"({100 * q['max_rel_weight_error']:.2f} % of the largest weight)"
                     + (f", output spikes changed {q['output_spikes']['changed']} of {q['output_spikes']['ideal']}"
                        if q.get("output_spikes") else ""))
    for k, mem in enumerate(rep["memory"]):
        lines.append(f"core {k}: " + ", ".join(f"{r} {m['words']}/{m['capacity']}" for r, m in mem.items()))
    if "verify" in rep:
        v = rep["verify"]
        lines.append(f"verified: every pass and the images, {v['stimuli']} stimuli x {v['steps']} steps")
    if args.output:
        lines.append(f"wrote {args.output}")
    lines.append(f"compile time: {rep['seconds']:.3f} s")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
