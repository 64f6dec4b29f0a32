"""Core benchmarks: synaptic ops per clock and steps per second, from Verilator cycle counts.

Every benchmark run is also a verification run: the cycle counts come from
:func:`spikeforge.sim.verify.verify_cases`, so a figure is only reported for a run whose spikes
matched the reference model.

Also here: the other benchmarks of the model, the compiler and the core (:func:`bench_sim`,
:func:`bench_compile`, :func:`bench_core`), each a generator of figures (JSON-able dicts; the
CLI prints one JSON line per figure), and :func:`machine_description` that every figure holds.

Core workloads
--------------
``dense``
    every neuron of the core has ``threshold = 0`` and ``bias = 1`` with non-negative fan-in,
    so every neuron fires at every step and every synapse delivers at every step: the core does
    nothing but stream synapses. Run with all delays 1 and with delays spread over ``1..D``.
``sparse``
    a random network at the core's size with a few percent of neurons firing per step (the
    common case for a robot controller): what bounds the step rate is the neuron pass.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.firmware.boards import Board
from spikeforge.firmware.build import build_core_bitstream, build_report
from spikeforge.hdl.config import PRESETS, CoreConfig
from spikeforge.toolchain.compiler import compile_network
from spikeforge.toolchain.compiler.lower import measure
from spikeforge.toolchain.fsutil import default_build_dir
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import Case, bench_network, long_delay_wide_fanout, random_inputs
from spikeforge.toolchain.reference import ReferenceSimulator

from .verify import verify_cases

__all__ = [
    "bench_compile",
    "bench_core",
    "bench_sim",
    "compile_bench_networks",
    "dense_network",
    "machine_description",
    "run_core_bench",
    "sparse_case",
]

log = logging.getLogger(__name__)


def dense_network(cfg: CoreConfig, *, spread_delays: bool, seed: int = 0) -> Network:
    """Every neuron fires every step; the synapse table is filled to capacity."""
    rng = np.random.default_rng(seed)
    n = cfg.n_neurons
    fan_out = cfg.n_synapses // n
    w_hi = cfg.limits().weight[1]
    net = Network(metadata={"provenance": {"generator": "spikeforge.sim.bench.dense_network"}})
    for i in range(n):
        net.add_neuron(i, threshold=0, bias=1)
    for i in range(n):
        posts = rng.integers(0, n, fan_out)
        delays = rng.integers(1, cfg.max_delay + 1, fan_out) if spread_delays else np.ones(fan_out, dtype=int)
        for p, d in zip(posts, delays, strict=True):
            net.add_synapse(i, int(p), int(rng.integers(0, w_hi + 1)), int(d))
    net.add_input(0)
    net.add_output(n - 1)
    return net


def sparse_case(cfg: CoreConfig, steps: int, seed: int = 0) -> Case:
    """A random network of the core's size with ~4 synapses per neuron and light activity."""
    rng = np.random.default_rng(seed)
    n = cfg.n_neurons
    net = Network(metadata={"provenance": {"generator": "spikeforge.sim.bench.sparse_case"}})
    for i in range(n):
        net.add_neuron(i, threshold=int(rng.integers(20, 60)), leak="shift", leak_shift=2)
    syn = min(cfg.n_synapses, 4 * n)
    for a, b, w, d in zip(rng.integers(0, n, syn), rng.integers(0, n, syn), rng.integers(-20, 60, syn),
                          rng.integers(1, cfg.max_delay + 1, syn), strict=True):
        net.add_synapse(int(a), int(b), int(w), int(d))
    for i in range(0, n, 16):
        net.add_input(i)
    net.add_output(n - 1)
    ins = random_inputs(rng, net, steps, density=0.3, value_range=(20, 80))
    return Case("sparse", net, ins, steps)


def run_core_bench(
    cfg: CoreConfig,
    *,
    build_dir: Path,
    fmax_mhz: float | None = None,
    steps_dense: int = 6,
    steps_sparse: int = 60,
    emit: Callable[[dict[str, Any]], None] = lambda d: None,
) -> list[dict[str, Any]]:
    """Measure the core on Verilator; ``emit`` each figure as it is ready and return them all.

    Parameters
    ----------
    cfg
        The core configuration (typically the board preset).
    build_dir
        Verilator build cache.
    fmax_mhz
        Post-route fmax of this core on its board, to turn cycles into steps per second.
    steps_dense, steps_sparse
        Steps of each workload.
    """
    cases = [
        Case("dense-delay1", dense_network(cfg, spread_delays=False), [], steps_dense),
        Case(f"dense-delay1..{cfg.max_delay}", dense_network(cfg, spread_delays=True), [], steps_dense),
        sparse_case(cfg, steps_sparse),
    ]
    report = verify_cases(cases, cfg, build_dir=build_dir, timeout=3600)
    out = []
    for c in report.cases:
        if not c.ok:
            raise RuntimeError(f"core bench case {c.name!r} does not match the reference: "
                               f"{c.divergence or c.detail}; no figure reported")
        fig: dict[str, Any] = {
            "bench": "core", "config": cfg.name, "case": c.name, "neurons": cfg.n_neurons,
            "steps": c.steps, "events": c.events, "busy_cycles": c.busy_cycles,
            "spikes": c.spikes, "firing_rate": round(c.spikes / (cfg.n_neurons * max(1, c.steps)), 4),
            "ops_per_clock": round(c.events / max(1, c.busy_cycles), 4),
            "cycles_per_step": round(c.busy_cycles / max(1, c.steps), 1),
            "verified": True,
        }
        if fmax_mhz:
            fig["fmax_mhz"] = round(fmax_mhz, 2)
            fig["steps_per_s_at_fmax"] = round(fmax_mhz * 1e6 / max(1.0, fig["cycles_per_step"]))
            fig["synaptic_ops_per_s_at_fmax"] = round(fig["ops_per_clock"] * fmax_mhz * 1e6)
        emit(fig)
        out.append(fig)
    return out


# ----------------------------------------------------------------------------- the machine
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


# ----------------------------------------------------------------------------- reference model
def bench_sim(neurons: int = 1000, synapses: int = 20000, steps: int = 1000, runs: int = 64, seed: int = 0,
              only: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Synaptic events per second of the reference model on :func:`bench_network`: one input
    sequence (``single``), ``runs`` sequences at once (``batch``), ``runs`` different networks
    at once (``population``); ``only`` picks some of the three kinds."""
    for name, v in (("neurons", neurons), ("synapses", synapses), ("steps", steps), ("runs", runs)):
        if v < 1:
            raise ValueError(f"--{name} = {v} is out of range; allowed: an integer >= 1")
    machine = machine_description()
    net, inputs = bench_network(neurons, synapses, seed)
    cases: list[tuple[str, list[Network]]] = [("single", [net]), (f"batch{runs}", [net] * runs)]
    if "population" in only or not only:
        t0 = time.perf_counter()
        pop = [net] + [bench_network(neurons, synapses, seed + k)[0] for k in range(1, runs)]
        log.info("built %d networks in %.1f s", runs, time.perf_counter() - t0)
        cases.append((f"population{runs}", pop))
    for case, nets in cases:
        if only and case.rstrip("0123456789") not in only:
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
        yield {
            "bench": "sim", "case": case, "neurons": neurons, "synapses": synapses, "steps": steps,
            "runs": len(nets), "events": events, "seconds": round(seconds, 4),
            "events_per_s": round(events / seconds) if seconds > 0 else None,
            "firing_rate": round(spikes / (neurons * steps * len(nets)), 4),
            "setup_seconds": round(setup, 4), "machine": machine,
        }


# ----------------------------------------------------------------------------- compiler
def compile_bench_networks(seed: int = 0) -> list[tuple[str, Network, CoreConfig, int]]:
    """(case, network, core, max_cores) of the published compile figures."""
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


def bench_compile(seed: int = 0, cases: Sequence[tuple[str, Network, CoreConfig, int]] | None = None,
                  ) -> Iterator[dict[str, Any]]:
    """Compile seconds and peak memory, one figure per case (default
    :func:`compile_bench_networks`).

    ``seconds`` is the best wall time of 3 compiles, ``cpu_seconds`` the best CPU time of this
    process (what the machine's other load does not inflate), ``peak_mb`` the tracemalloc peak
    of a 4th compile (tracing slows it, so it is not timed)."""
    machine = machine_description()
    for case, net, cfg, k in (compile_bench_networks(seed) if cases is None else cases):
        times, cpu = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            res = compile_network(net, cfg, max_cores=k)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        _, _, peak = measure(lambda net=net, cfg=cfg, k=k: compile_network(net, cfg, max_cores=k))
        c = res.report["compiled"]
        yield {
            "bench": "compile", "case": case, "neurons": len(net.neurons), "synapses": len(net.synapses),
            "config": cfg.name, "cores": c["cores"], "compiled_neurons": c["neurons"],
            "compiled_synapses": c["synapses"], "relays": c["relays"], "routes": c["routes"],
            "seconds": round(min(times), 4), "seconds_median": round(sorted(times)[1], 4),
            "cpu_seconds": round(min(cpu), 4),
            "peak_mb": round(peak / 2**20, 3), "load_avg_1min": round(os.getloadavg()[0], 2),
            "machine": machine,
        }


# ----------------------------------------------------------------------------- the core
def bench_core(board: Board, cfg: CoreConfig, *, build: bool = True, steps_dense: int = 6,
               steps_sparse: int = 60) -> Iterator[dict[str, Any]]:
    """One ``resources`` figure from the bare core's build on ``board`` (logic cells, EBR,
    SPRAM, DSP, fmax after routing; skipped without ``build``), then :func:`run_core_bench`'s."""
    fmax = None
    if build:
        log.info("building core '%s' for %s (cached after the first time)", cfg.name, board.name)
        result = build_core_bitstream(board.name, cfg)
        rep = build_report(result, cfg)
        fmax = result.min_fmax_mhz
        yield {"bench": "core", "case": "resources", "board": board.name, "config": cfg.name,
               "device": rep["device"], "neurons": cfg.n_neurons, "synapses": cfg.n_synapses,
               "max_delay": cfg.max_delay, "weight_bits": cfg.weight_bits, "potential_bits": cfg.potential_bits,
               "logic_cells": rep["logic_cells"], "logic_cells_available": rep["logic_cells_available"],
               "logic_pct": round(100 * rep["logic_cells"] / max(1, rep["logic_cells_available"]), 1),
               "ff": rep["ff"], "ebr": rep["ebr"], "ebr_available": rep["ebr_available"],
               "spram": rep.get("spram"), "dsp": rep.get("dsp"),
               "fmax_mhz": round(fmax, 2) if fmax else None,
               "fmax_constraint_mhz": {k: round(v["constraint_mhz"], 2) for k, v in rep["fmax"].items()},
               "tool_versions": rep["tool_versions"]}
    log.info("running the core '%s' on Verilator (dense and sparse workloads)", cfg.name)
    yield from run_core_bench(cfg, build_dir=default_build_dir() / "verify", fmax_mhz=fmax,
                              steps_dense=steps_dense, steps_sparse=steps_sparse)
