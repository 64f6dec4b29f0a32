"""Core benchmarks: synaptic ops per clock and steps per second, from Verilator cycle counts.

Every benchmark run is also a verification run: the cycle counts come from
:func:`spikeforge.sim.verify.verify_cases`, so a figure is only reported for a run whose spikes
matched the reference model.

Workloads
---------
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import Case, random_inputs

from .verify import verify_cases

__all__ = ["dense_network", "run_core_bench", "sparse_case"]

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
