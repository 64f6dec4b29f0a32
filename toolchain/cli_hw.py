"""Hardware subcommands of the ``spikeforge`` CLI: ``verify`` (and the core config options).

Kept apart from :mod:`spikeforge.toolchain.cli` so that ``spikeforge simulate`` never imports
Amaranth or cocotb: every heavy import happens inside a handler.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_verify_parser", "default_build_dir", "resolve_config"]

log = logging.getLogger("spikeforge")


def default_build_dir() -> Path:
    """Where Verilator builds and bitstreams are cached (``$SPIKEFORGE_BUILD_DIR`` or ./build)."""
    return Path(os.environ.get("SPIKEFORGE_BUILD_DIR", "build")).resolve()


def resolve_config(spec: str) -> Any:
    """A :class:`~spikeforge.hdl.config.CoreConfig` from a preset name or a JSON file path.

    Raises
    ------
    ValueError
        If ``spec`` is neither a preset nor a readable config file (the message lists the
        presets).
    """
    from spikeforge.hdl.config import PRESETS, ConfigError, CoreConfig

    if spec in PRESETS:
        return PRESETS[spec]
    p = Path(spec)
    if p.suffix == ".json" or p.exists():
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise ValueError(f"--config {spec}: cannot read: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"--config {spec}: invalid JSON at line {e.lineno}: {e.msg}") from None
        try:
            return CoreConfig.from_dict(doc)
        except ConfigError as e:
            raise ValueError(f"--config {spec}: {e}") from None
    raise ValueError(f"--config {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file")


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
  spikeforge verify --random 200 --seed 7 --config small --pressure
  spikeforge verify --network net.json --inputs in.json --steps 200 --waves run.vcd
  spikeforge verify --network tennlab_net.json --format tennlab --config up5k"""


def add_verify_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge verify`` to the subcommand parsers."""
    vp = sub.add_parser("verify", help="check the RTL core against the reference model, spike for spike",
                        description=_VERIFY_DESCRIPTION, epilog=_VERIFY_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    vp.add_argument("--random", type=int, default=None, metavar="N",
                    help="random networks to check (default: 20 without --network, else 0)")
    vp.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random networks (default: 0)")
    vp.add_argument("--network", metavar="FILE", help="also check this network (spikeforge or TENNLab JSON)")
    vp.add_argument("--format", choices=("auto", "spikeforge", "tennlab"), default="auto",
                    help="format of --network (default: auto-detect)")
    vp.add_argument("--inputs", metavar="FILE",
                    help="inputs of --network: JSON array of [input_index, time, value] (default: random)")
    vp.add_argument("--steps", type=int, default=50, metavar="T", help="steps per case (default: 50)")
    vp.add_argument("--config", default=None, metavar="PRESET|FILE",
                    help="core configuration: a preset (tiny, small, up5k, ecp5-85f) or a JSON file "
                         "(default: the smallest preset the networks fit, 'tiny' for random ones)")
    vp.add_argument("--no-edge-cases", action="store_true", help="skip the contract edge cases")
    vp.add_argument("--garbage", type=int, default=16, metavar="K",
                    help="random command beats sent before each case (default: 16; 0 = none)")
    vp.add_argument("--pressure", action="store_true",
                    help="toggle the command stream's valid and the spike stream's ready at random")
    vp.add_argument("--waves", metavar="FILE", help="write a VCD waveform of the session")
    vp.add_argument("--json", action="store_true", help="print the full report as JSON")
    vp.add_argument("--build-dir", metavar="DIR", default=None,
                    help="cache of Verilator builds (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    vp.set_defaults(func=cmd_verify)


def _pick_config(networks: list[Any]) -> Any:
    from spikeforge.hdl.config import PRESETS
    from spikeforge.hdl.image import ImageError, lower

    for name in ("tiny", "small", "up5k", "ecp5-85f"):
        cfg = PRESETS[name]
        try:
            for net in networks:
                lower(net, cfg)
        except ImageError:
            continue
        return cfg
    # Nothing fits: lower onto the largest preset to get the message that says why.
    lower(networks[0], PRESETS["ecp5-85f"])
    raise AssertionError("unreachable")  # pragma: no cover


def cmd_verify(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge verify``."""
    from spikeforge.hdl.image import ImageError
    from spikeforge.sim.verify import verify_cases
    from spikeforge.toolchain.cli import _load_inputs, load_any
    from spikeforge.toolchain.netgen import Case, edge_cases, random_case, random_inputs

    if args.steps < 1:
        raise ValueError(f"--steps {args.steps} is out of range; allowed: >= 1")
    n_random = args.random if args.random is not None else (0 if args.network else 20)
    if n_random < 0:
        raise ValueError(f"--random {n_random} is out of range; allowed: >= 0")
    if args.garbage < 0:
        raise ValueError(f"--garbage {args.garbage} is out of range; allowed: >= 0")
    user: list[Case] = []
    if args.network:
        net = load_any(args.network, args.format)
        if not net.is_integer():
            raise ValueError(f"{args.network}: the network has non-integer parameters; quantize it first")
        ins = _load_inputs(args.inputs) if args.inputs else random_inputs(args.seed, net, args.steps)
        user.append(Case(Path(args.network).name, net, ins, args.steps))
    cfg = resolve_config(args.config) if args.config else (_pick_config([c.network for c in user]) if user else None)
    if cfg is None:
        from spikeforge.hdl.config import PRESETS

        cfg = PRESETS["tiny"]
    cases = list(user)
    n_syn = min(cfg.n_synapses, 3 * cfg.n_neurons)
    for k in range(n_random):
        cases.append(random_case(args.seed + k, min(cfg.n_neurons, 24), min(n_syn, 72), steps=args.steps,
                                 max_delay=cfg.max_delay,
                                 threshold_range=(0, min(255, (1 << cfg.threshold_bits) - 1)),
                                 weight_range=(-(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1)))
    if not args.no_edge_cases and not args.network:
        cases += edge_cases(potential_bits=cfg.potential_bits, max_delay=cfg.max_delay, n_max=min(cfg.n_neurons, 32))
    if not cases:
        raise ValueError("nothing to verify: give --network, --random N > 0, or drop --no-edge-cases")
    build_dir = Path(args.build_dir).resolve() if args.build_dir else default_build_dir()
    try:
        report = verify_cases(
            cases, cfg, build_dir=build_dir / "verify", garbage=args.garbage, pressure=args.pressure,
            seed=args.seed, waves=Path(args.waves).resolve() if args.waves else None,
            progress=lambda msg: sys.stderr.write(f"spikeforge: {msg}\n"),
        )
    except ImageError as e:
        raise ValueError(str(e)) from None
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        sys.stdout.write(report.summary() + "\n")
    return 0 if report.ok else 1
