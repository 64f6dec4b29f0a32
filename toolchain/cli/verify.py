"""``spikeforge verify``: the RTL core (or its iCE40 netlist) against the reference model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from spikeforge.hdl.config import PRESETS
from spikeforge.hdl.image import ImageError
from spikeforge.sim.gatelevel import TARGETS, ice40_test_config, verify_target
from spikeforge.sim.verify import core_cases
from spikeforge.toolchain.compiler import CompileError, fit
from spikeforge.toolchain.fsutil import default_build_dir
from spikeforge.toolchain.ir import save_network
from spikeforge.toolchain.netgen import Case, random_inputs
from spikeforge.toolchain.shrink import shrink_case

from .common import FORMATS, UsageError, add_target_option, load_any, load_inputs, target

__all__ = ["register"]

log = logging.getLogger("spikeforge")


_VERIFY_DESCRIPTION = """\
Run networks on the core's RTL (Amaranth -> Verilog -> Verilator, driven by a cocotb
testbench) and compare every output spike, with its time, against the reference model.

Without --network it checks seeded random networks plus the edge cases of the neuron
contract (saturation, v_min, threshold 0, weight-0 events, fan-in, longest delay, full
fan-out, every reset/leak mode, refractory, bias). Before each case it sends a burst of
random command beats (--garbage) and then reloads the image: the core must neither wedge nor
remember the garbage. Prints a summary and the first divergence (neuron, time, expected,
got); exits 1 on any mismatch."""

_VERIFY_EPILOG = """\
examples:
  spikeforge verify                              # 20 random networks + edge cases on 'tiny'
  spikeforge verify --random 200 --seed 7 --target small --pressure
  spikeforge verify --network net.json --inputs in.json --steps 200 --waves run.vcd
  spikeforge verify --network tennlab_net.json --format tennlab --target up5k
  spikeforge verify --rung ice40-rtl --target up5k        # SPRAM primitives + yosys models
  spikeforge verify --rung ice40-netlist --random 5       # post-synth_ice40 netlist (slow)"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge verify``."""
    vp = sub.add_parser("verify", help="check the RTL core against the reference model, spike for spike",
                        description=_VERIFY_DESCRIPTION, epilog=_VERIFY_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    vp.add_argument("--random", type=int, default=None, metavar="N",
                    help="random networks to check (default: 20 without --network, else 0)")
    vp.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random networks (default: 0)")
    vp.add_argument("--network", metavar="FILE", help="also check this network (spikeforge or TENNLab JSON)")
    vp.add_argument("--format", choices=FORMATS, default="auto",
                    help="format of --network (default: auto-detect)")
    vp.add_argument("--inputs", metavar="FILE",
                    help="inputs of --network: JSON array of [input_index, time, value] (default: random)")
    vp.add_argument("--steps", type=int, default=50, metavar="T", help="steps per case (default: 50)")
    add_target_option(vp, None, "the core (default: the smallest preset --network fits, as it is or "
                               "compiled; 'tiny' for random networks)")
    vp.add_argument("--no-edge-cases", action="store_true", help="skip the contract edge cases")
    vp.add_argument("--garbage", type=int, default=16, metavar="K",
                    help="random command beats sent before each case (default: 16; 0 = none)")
    vp.add_argument("--pressure", action="store_true",
                    help="toggle the command stream's valid and the spike stream's ready at random")
    vp.add_argument("--rung", choices=TARGETS, default="rtl",
                    help="what Verilator simulates: the behavioural RTL (default); 'ice40-rtl': the "
                         "core elaborated for iCE40 (SB_SPRAM256KA instances) on yosys's iCE40 "
                         "cell models; 'ice40-netlist': the yosys synth_ice40 netlist (LUTs, "
                         "SB_RAM40_4K, SPRAM) on the same models. Default config for the iCE40 "
                         "rungs: 'up5k-n256' (up5k's SPRAM mapping, 256 neurons)")
    vp.add_argument("--waves", metavar="FILE", help="write a VCD waveform of the session")
    vp.add_argument("--json", action="store_true", help="print the full report as JSON")
    vp.add_argument("--shrink", metavar="FILE",
                    help="on a mismatch, shrink the first failing case to a minimal network that "
                         "still fails on the RTL and write it (and FILE's stem + .inputs.json)")
    vp.add_argument("--build-dir", metavar="DIR", default=None,
                    help="cache of Verilator builds (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    vp.set_defaults(func=_cmd_verify)


def _shrink_failure(args: argparse.Namespace, cases: list[Any], report: Any, run: Any) -> None:
    """Shrink the first failing case with the RTL as the judge; write it next to --shrink."""
    by_name = {c.name: c for c in cases}
    failing = next((by_name[c.name] for c in report.failures if c.name in by_name), None)
    if failing is None:
        return
    sys.stderr.write(f"spikeforge: shrinking failing case {failing.name!r} on the RTL "
                     "(one simulator session per round)...\n")

    def fails(cands: Any) -> list[bool]:
        named = [Case(f"shrink-{k}", c.network, c.inputs, c.steps) for k, c in enumerate(cands)]
        rep = run(named, quiet=True)
        bad = {c.name for c in rep.failures}
        return [c.name in bad for c in named]

    small = shrink_case(failing, fails)
    out = Path(args.shrink)
    save_network(small.network, out)
    ins = out.with_name(out.stem + ".inputs.json")
    ins.write_text(json.dumps([list(e) for e in small.inputs]) + "\n")
    final = run([small], quiet=True)
    sys.stdout.write(
        f"shrunk to {len(small.network.neurons)} neurons, {len(small.network.synapses)} synapses, "
        f"{len(small.inputs)} inputs, {small.steps} steps: {out} (inputs: {ins})\n"
        + (f"  {final.failures[0].divergence or final.failures[0].detail}\n" if final.failures else "")
        + f"  replay: spikeforge verify --network {out} --inputs {ins} --steps {small.steps} "
          f"--target {args.target or report.config} --rung {args.rung}\n"
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise ValueError(f"--steps {args.steps} is out of range; allowed: >= 1")
    n_random = args.random if args.random is not None else (0 if args.network else 20)
    if n_random < 0:
        raise ValueError(f"--random {n_random} is out of range; allowed: >= 0")
    if args.garbage < 0:
        raise ValueError(f"--garbage {args.garbage} is out of range; allowed: >= 0")
    cfg = target(args).config if args.target else ice40_test_config() if args.rung != "rtl" else None
    user: list[Case] = []
    if args.network:
        try:  # the network as it is, or compiled, on the given core or the smallest preset
            fitted = fit(load_any(args.network, args.format), cfg, prune=False)
        except CompileError as e:
            raise UsageError(f"{args.network}: {e}") from None
        net, cfg = fitted.network, fitted.config
        ins = load_inputs(args.inputs) if args.inputs else random_inputs(args.seed, net, args.steps)
        user.append(Case(Path(args.network).name, net, ins, args.steps))
    cfg = cfg or PRESETS["tiny"]
    if args.rung != "rtl" and not cfg.spram:
        log.warning("core '%s' maps no memory to SPRAM, so --rung %s checks no SB_SPRAM256KA; use --target up5k",
                    cfg.name, args.rung)
    cases = user + core_cases(cfg, n_random, args.seed, args.steps, edge=not args.no_edge_cases and not args.network)
    if not cases:
        raise ValueError("nothing to verify: give --network, --random N > 0, or drop --no-edge-cases")
    build_dir = Path(args.build_dir).resolve() if args.build_dir else default_build_dir()

    def run(cs: list[Case], quiet: bool = False) -> Any:
        return verify_target(
            cs, cfg, args.rung, build_dir=build_dir / "verify", garbage=args.garbage,
            pressure=args.pressure, seed=args.seed,
            waves=Path(args.waves).resolve() if args.waves and not quiet else None,
            progress=None if quiet else (lambda msg: sys.stderr.write(f"spikeforge: {msg}\n")),
        )

    try:
        report = run(cases)
    except ImageError as e:
        raise ValueError(str(e)) from None
    if args.shrink and not report.ok:
        _shrink_failure(args, cases, report, run)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        sys.stdout.write(report.summary() + "\n")
    return 0 if report.ok else 1
