"""``spikeforge compile`` and ``spikeforge bench compile``: the graph compiler on the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["DEPLOYMENT_FORMAT", "add_compile_parser", "bench_compile", "cmd_compile", "fit_network",
           "resolve_target"]

log = logging.getLogger(__name__)

DEPLOYMENT_FORMAT = "spikeforge.deployment"

_DESCRIPTION = """\
Compile any network for a core: quantize float values to the core's widths, prune dead
neurons and inert synapses, split delays longer than the core's maximum through relay
neurons (spike timing exact), split weights wider than the core's, place neurons for
locality, partition over several cores when one is too small (--max-cores), and lower each
part to a core image. Prints what every pass did.

NETWORK is spikeforge or TENNLab RISP JSON (auto-detected). --target is a board
(icebreaker -> up5k, ulx3s-85f -> ecp5-85f), a preset (tiny, small, up5k, ecp5-85f) or a
CoreConfig JSON file. With one core, -o writes a core image (as 'spikeforge image -o'); with
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


def resolve_target(spec: str) -> Any:
    """A :class:`CoreConfig` from a board name, a preset name or a config JSON file."""
    from .cli_hw import BOARD_DEFAULT_CONFIG, resolve_config

    return resolve_config(BOARD_DEFAULT_CONFIG.get(spec, spec))


def add_compile_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge compile``."""
    cp = sub.add_parser("compile", help="compile any network to core image(s) (quantize, relays, partition)",
                        description=_DESCRIPTION, epilog=_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cp.add_argument("network", metavar="NETWORK", help="network file (spikeforge or TENNLab JSON)")
    cp.add_argument("--format", choices=("auto", "spikeforge", "tennlab"), default="auto",
                    help="format of NETWORK (default: auto-detect)")
    cp.add_argument("--target", default="icebreaker", metavar="BOARD|PRESET|CONFIG",
                    help="icebreaker, ulx3s-85f, a preset or a CoreConfig JSON file (default: icebreaker)")
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
    cp.set_defaults(func=cmd_compile)


def _write_json(path: str | Path, doc: Any) -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(p)


def cmd_compile(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge compile``."""
    from .cli import UsageError, _load_inputs, load_any
    from .compiler import CompileError, compile_network
    from .compiler.passes import records_table
    from .ir import save_network

    if args.verify_steps < 0:
        raise UsageError(f"--verify-steps = {args.verify_steps} is out of range; allowed: an integer >= 0")
    if args.max_cores < 1:
        raise UsageError(f"--max-cores = {args.max_cores} is out of range; allowed: an integer >= 1")
    cfg = resolve_target(args.target)
    net = load_any(args.network, args.format)
    stimuli = [_load_inputs(args.inputs)] if args.inputs else None
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
        if len(res.images) == 1:
            _write_json(args.output, res.image.to_dict())
        else:
            _write_json(args.output, {"format": DEPLOYMENT_FORMAT, "version": 1,
                                      "images": [img.to_dict() for img in res.images],
                                      "routes": [r.to_dict() for r in res.routes]})
    if args.report:
        _write_json(args.report, rep)
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


def fit_network(net: Any, config_spec: str | None) -> Any:
    """The network ``spikeforge verify --network`` runs: ``net`` itself when it fits the core
    (``config_spec``, or some preset when None), else ``net`` compiled for that core (or for
    the first preset it compiles for) without pruning, so every neuron of the source is still
    checked on the core. Raises ``ValueError`` saying why when nothing works."""
    from spikeforge.hdl.config import PRESETS

    from .compiler import CompileError, compile_network, design_rule_check

    names = [config_spec] if config_spec else ["tiny", "small", "up5k", "ecp5-85f"]
    cfgs = [resolve_target(n) for n in names]
    if any(design_rule_check(net, c).ok for c in cfgs):
        return net
    errors = []
    for c in cfgs:
        try:
            res = compile_network(net, c, prune=False)
        except CompileError as e:
            errors.append(f"{c.name}: {e}")
            continue
        q = res.report["quantization"]
        log.warning("the network does not fit core %r as it is: compiled it (%d relays, quantized %s)",
                    c.name, res.report["compiled"]["relays"], "exactly" if q.get("exact", True) else
                    f"at scale {min(q['scales']):.4g}: input values are taken in the compiled network's units")
        return res.network
    raise ValueError("the network fits no core even after compiling: " + "; ".join(errors)
                     + ("" if config_spec else f" (presets tried: {', '.join(PRESETS)})"))


# ----------------------------------------------------------------------------- bench
def _bench_networks(seed: int) -> list[tuple[str, Any, Any, int]]:
    """(case, network, config, max_cores) of the published figures."""
    from spikeforge.hdl.config import PRESETS

    from .cli import bench_network

    out = []
    for name, n, m, cfg, k in (("random-1k", 100, 1_000, "up5k", 1), ("random-10k", 1_000, 10_000, "up5k", 1),
                               ("random-100k", 4_000, 100_000, "ecp5-85f", 4)):
        net, _ = bench_network(n, m, seed, max_delay=16)
        net.outputs = []
        for i in range(n - max(1, n // 20), n):
            net.add_output(i)
        out.append((name, net, PRESETS[cfg], k))
    out.append(("long-delay-wide-fanout", long_delay_wide_fanout(seed), PRESETS["up5k"], 1))
    return out


def long_delay_wide_fanout(seed: int = 0, neurons: int = 600, hubs: int = 20, fan_out: int = 300,
                           max_delay: int = 60) -> Any:
    """Float weights; ``hubs`` neurons with ``fan_out`` synapses each, of delays 1..``max_delay``;
    plus 4 random synapses per neuron of delays 1..16."""
    import numpy as np

    from .ir import Network

    rng = np.random.default_rng(seed)
    net = Network(metadata={"provenance": {"generator": "spikeforge bench compile", "seed": seed}})
    for i in range(neurons):
        net.add_neuron(i, threshold=float(rng.uniform(0.5, 3.0)))
    for h in range(hubs):
        for t in rng.choice(neurons, fan_out, replace=False).tolist():
            net.add_synapse(h, int(t), float(rng.normal(0.4, 0.3)), int(rng.integers(1, max_delay + 1)))
    for _ in range(4 * neurons):
        a, b = rng.integers(0, neurons, 2).tolist()
        net.add_synapse(a, b, float(rng.normal(0.2, 0.4)), int(rng.integers(1, 17)))
    for i in range(hubs):
        net.add_input(i)
    for i in range(neurons - 30, neurons):
        net.add_output(i)
    return net


def bench_compile(args: argparse.Namespace) -> int:
    """``spikeforge bench compile``: compile seconds and peak memory, one JSON line per case.

    ``seconds`` is the best wall time of 3 compiles, ``cpu_seconds`` the best CPU time of this
    process (what the machine's other load does not inflate), ``peak_mb`` the tracemalloc peak
    of a 4th compile (tracing slows it, so it is not timed)."""
    from .cli import machine_description
    from .compiler import compile_network
    from .compiler.lower import measure

    machine = machine_description()
    for case, net, cfg, k in _bench_networks(args.seed):
        times, cpu = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            res = compile_network(net, cfg, max_cores=k)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        _, _, peak = measure(lambda net=net, cfg=cfg, k=k: compile_network(net, cfg, max_cores=k))
        c = res.report["compiled"]
        line = {
            "bench": "compile", "case": case, "neurons": len(net.neurons), "synapses": len(net.synapses),
            "config": cfg.name, "cores": c["cores"], "compiled_neurons": c["neurons"],
            "compiled_synapses": c["synapses"], "relays": c["relays"], "routes": c["routes"],
            "seconds": round(min(times), 4), "seconds_median": round(sorted(times)[1], 4),
            "cpu_seconds": round(min(cpu), 4),
            "peak_mb": round(peak / 2**20, 3), "load_avg_1min": round(os.getloadavg()[0], 2),
            "machine": machine,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 0
