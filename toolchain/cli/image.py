"""``spikeforge image``: lower a network onto a core and show how it fits, or check an image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spikeforge.hdl.image import CoreImage, ImageError, fit_report, lower
from spikeforge.toolchain.fsutil import write_atomic
from spikeforge.toolchain.ir import read_json_file

from .common import FORMATS, add_target_option, load_any, target

__all__ = ["register"]

_DESCRIPTION = """\
Lower a network onto a core configuration and report how it fits: neuron slots, synapse
table, delays, and the largest per-step fan-in against the core's exact accumulator. With -o,
write the core image (versioned, crc32-checksummed JSON: what gets loaded into the core over
its command stream). With --check, read an image back and verify its checksum and that it is
for the given core.

A network that does not fit is refused with the reason (too many neurons or synapses, a
weight, delay, threshold or bias out of the core's range, a fan-in that could overflow the
accumulator)."""

_EPILOG = """\
examples:
  spikeforge image net.json --target up5k              # does it fit the iCEBreaker core?
  spikeforge image net.json --target up5k -o net.image.json
  spikeforge image --check net.image.json --target up5k"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge image``."""
    ip = sub.add_parser("image", help="lower a network onto a core: fit report and core image",
                        description=_DESCRIPTION, epilog=_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ip.add_argument("network", metavar="NETWORK", nargs="?", help="network file (spikeforge or TENNLab JSON)")
    ip.add_argument("--format", choices=FORMATS, default="auto",
                    help="format of NETWORK (default: auto-detect)")
    add_target_option(ip, "up5k")
    ip.add_argument("-o", "--output", metavar="FILE", help="write the core image here")
    ip.add_argument("--check", metavar="IMAGE", help="verify an existing image file instead")
    ip.add_argument("--json", action="store_true", help="print the report as JSON")
    ip.set_defaults(func=_cmd_image)


def _cmd_image(args: argparse.Namespace) -> int:
    cfg = target(args).config
    if args.check:
        doc = read_json_file(args.check, ValueError, "core image")
        try:
            image = CoreImage.from_dict(doc, cfg)
        except ImageError as e:
            raise ValueError(f"{args.check}: {e}") from None
        rep = fit_report(image)
        verdict = f"{args.check}: valid core image for core '{cfg.name}'"
    else:
        if not args.network:
            raise ValueError("give a NETWORK to lower, or --check IMAGE")
        net = load_any(args.network, args.format)
        try:
            image = lower(net, cfg)
        except ImageError as e:
            raise ValueError(f"{args.network} does not fit core '{cfg.name}': {e}") from None
        rep = fit_report(image)
        verdict = f"{args.network} fits core '{cfg.name}'"
        if args.output:
            out = Path(args.output)
            write_atomic(out, image.to_json() + "\n")
            verdict += f"; image written to {out}"
    if args.json:
        sys.stdout.write(json.dumps(rep) + "\n")
        return 0

    def pct(a: int, b: int) -> str:
        return f"{a}/{b} ({100 * a / max(1, b):.1f} %)"

    sys.stdout.write("\n".join([
        verdict,
        f"  neurons   {pct(rep['neurons'], rep['neuron_slots'])}",
        f"  synapses  {pct(rep['synapses'], rep['synapse_capacity'])}",
        f"  ports     {rep['inputs']} inputs, {rep['outputs']} outputs",
        f"  fan-in    largest Σ|w| onto one neuron {rep['max_fan_in_abs_weight']} "
        f"(accumulator holds ±{rep['accumulator_max']})",
        f"  loading   {rep['config_writes']} WRITE commands, crc32 {rep['crc32']}",
    ]) + "\n")
    return 0
