"""Benchmarks of the host link and the board design: each function yields one figure (a
JSON-able dict) at a time; ``spikeforge bench link`` and ``bench board`` print them.

:func:`bench_link`
    Image-load throughput and closed-loop latency over a pty, on the emulated board (its own
    process) and the Verilator virtual board (simulated time), plus a fault campaign against
    each (:func:`spikeforge.toolchain.faultcampaign.run_fault_campaign`).
:func:`bench_board`
    Resources and fmax of the board design on every board of the table (cached builds), and the
    virtual board's simulation speed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from spikeforge.firmware.boards import BOARDS
from spikeforge.firmware.top import DEFAULT_BAUD, build_board
from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import CoreImage, lower
from spikeforge.toolchain.deploy import Device
from spikeforge.toolchain.faultcampaign import run_fault_campaign
from spikeforge.toolchain.fsutil import default_build_dir
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.reference import simulate

from .bench import machine_description
from .emuboard import serve_process

__all__ = ["bench_board", "bench_link", "fill_network"]

log = logging.getLogger(__name__)


def fill_network(cfg: CoreConfig, seed: int = 0) -> tuple[Network, CoreImage]:
    """A network that fills a core's synapse table (the load figure), and an image of it."""
    rng = np.random.default_rng(seed)
    n = cfg.n_neurons
    m = min(cfg.n_synapses, n * 24)
    net = Network()
    for i in range(n):
        net.add_neuron(i, threshold=int(rng.integers(4, 12)), v_min=-16)
    pre, post = rng.integers(0, n, m), rng.integers(0, n, m)
    w = rng.integers(-3, 4, m)
    d = rng.integers(1, cfg.max_delay + 1, m)
    for a, b, c, e in zip(pre.tolist(), post.tolist(), w.tolist(), d.tolist(), strict=True):
        net.add_synapse(a, b, c, e)
    for i in range(min(8, n)):
        net.add_input(i)
    for i in range(n - min(8, n), n):
        net.add_output(i)
    return net, lower(net, cfg)


def _link_figures(url: str, name: str, cfg: CoreConfig, baud: int, net: Network, img: CoreImage,
                  control_steps: int, steps_per_control: int, extra: dict[str, Any],
                  seconds_of: Callable[[], float] | None = None) -> Iterator[dict[str, Any]]:
    """Load throughput and closed-loop latency lines for one board."""
    with Device.open(url, timeout=5.0) as dev:
        # best of 3 in wall time (the machine is shared; the spread is reported)
        reps = [dev.load(img) for _ in range(3 if seconds_of is None else 1)]
        rep = max(reps, key=lambda r: r.payload_fraction)
        sim = dev.load(img, clock=seconds_of) if seconds_of else None  # LOAD frames in simulated time
        load = {"bench": "link", "case": "load", "board": name, "core": cfg.name, "baud": baud,
                "beats": rep.beats, "frames": rep.frames, "payload_bytes": rep.payload_bytes,
                "wire_bytes": rep.wire_bytes, "wall_seconds": round(rep.seconds, 4),
                "payload_fraction_wall": round(rep.payload_fraction, 4),
                "wire_fraction_wall": round(rep.wire_fraction, 4), "window": dev.window,
                "payload_fraction_wall_runs": [round(r.payload_fraction, 4) for r in reps],
                "loadavg_1min": round(os.getloadavg()[0], 2), **extra}
        if sim is not None:
            load["sim_seconds"] = round(sim.seconds, 6)
            load["payload_fraction"] = round(sim.payload_fraction, 4)
            load["wire_fraction"] = round(sim.wire_fraction, 4)
        else:
            load["payload_fraction"] = load["payload_fraction_wall"]
            load["wire_fraction"] = load["wire_fraction_wall"]
        yield load
        # closed loop: one STEP per control step (inputs in, N steps, spikes back)
        rng = np.random.default_rng(1)
        dev.reset()
        inputs, got = [], []
        lat = []
        s0 = seconds_of() if seconds_of else None
        for k in range(control_steps):
            ev = [(int(i), int(rng.integers(0, 8))) for i in range(len(img.inputs)) if rng.random() < 0.5]
            inputs += [(i, k * steps_per_control, v) for i, v in ev]
            t0 = time.perf_counter()
            got += dev.step(ev, steps_per_control)
            lat.append(time.perf_counter() - t0)
        s1 = seconds_of() if seconds_of else None
        ref = simulate(net, inputs, control_steps * steps_per_control)
        ok = sorted(got) == sorted(ref.spikes)
        doc = {"bench": "link", "case": "closed_loop", "board": name, "core": cfg.name, "baud": baud,
               "control_steps": control_steps, "steps_per_control": steps_per_control,
               "spikes": len(got), "matches_reference": ok,
               "latency_ms_wall_median": round(1e3 * float(np.median(lat)), 3),
               "latency_ms_wall_p95": round(1e3 * float(np.percentile(lat, 95)), 3), **extra}
        if s0 is not None and s1 is not None:  # simulated time over the whole loop (one STEP per control step)
            doc["latency_ms_mean"] = round(1e3 * (s1 - s0) / control_steps, 4)
        yield doc
        if not ok:
            raise RuntimeError(f"bench link: the {name} board's closed-loop spikes differ from the reference model")


def _sim_clock(vb: Any) -> Callable[[], float]:
    def seconds() -> float:
        st = vb.stats()
        return st["cycles"] / vb.clock_hz

    return seconds


def bench_link(emulated_config: CoreConfig | None = None, virtual_config: CoreConfig | None = None, *,
               seed: int = 0, control_steps: int = 200, virtual: bool = True) -> Iterator[dict[str, Any]]:
    """Load throughput, closed-loop latency and fault counts of the link.

    Parameters
    ----------
    emulated_config, virtual_config
        Cores of the emulated board (default ``up5k``) and of the virtual board (default
        ``tiny``: Verilator runs it fast).
    seed
        Seed of the network that fills the core.
    control_steps
        Closed-loop control steps (at most 50 on the virtual board).
    virtual
        Also measure the Verilator virtual board (compiled on first use).
    """
    machine = machine_description()
    baud = DEFAULT_BAUD
    cfg = emulated_config or preset("up5k")
    net, img = fill_network(cfg, seed)
    with serve_process(cfg, port="pty", baud=baud) as b:  # its own process: no GIL shared with the host
        yield from _link_figures(b.url, "emulated", cfg, baud, net, img, control_steps, 4,
                                 {"line_model": "emulated: 10 bit times per byte at the baud", "machine": machine})
    fault = run_fault_campaign(preset("tiny"), seed=seed, target_faults=3000)
    yield {"bench": "link", "case": "faults", "board": "emulated", **fault, "machine": machine}
    if not virtual:
        return
    try:
        from .vboard import start_virtual_board  # needs Verilator: only for these figures
    except ImportError as e:
        log.warning("virtual board not available (%s): its link figures are skipped", e)
        return
    vcfg = virtual_config or preset("tiny")
    vnet, vimg = (net, img) if vcfg == cfg else fill_network(vcfg, seed)
    with start_virtual_board(vcfg, baud=baud) as vb:
        yield from _link_figures(vb.url, "virtual", vcfg, baud, vnet, vimg, min(control_steps, 50), 4,
                                 {"clock_hz": vb.clock_hz, "machine": machine}, seconds_of=_sim_clock(vb))
    with start_virtual_board(vcfg, baud=baud, tcp=0) as vb:  # the same campaign against the RTL
        url = vb.url if vb.url.startswith("socket://") else vb.path
        fault = run_fault_campaign(vcfg, seed=seed, target_faults=1500, upstream=url, timeout=0.5,
                                   host_rate=0.003, max_seconds=900)
    yield {"bench": "link", "case": "faults", "board": "virtual", **fault, "machine": machine}


def bench_board(config: CoreConfig | None = None, *, steps: int = 4000, seed: int = 0,
                build: bool = True) -> Iterator[dict[str, Any]]:
    """Resources and fmax of the board design on every board (its default core; the builds are
    cached), then the virtual board's speed running ``steps`` steps of a network filling
    ``config`` (default ``tiny``)."""
    from .vboard import start_virtual_board  # needs Verilator: imported when measured

    machine = machine_description()
    if build:
        for b in BOARDS.values():
            log.info("building the board design for %s (cached after the first time)", b.name)
            r = build_board(b.name, b.config, build_dir=default_build_dir() / "bitstreams")
            (clk,) = r.fmax.values()
            yield {"bench": "board", "case": "resources", "board": b.name, "device": r.device,
                   "config": b.config.name, "baud": DEFAULT_BAUD, "clock_mhz": b.clock_mhz,
                   "logic_cells": r.logic_cells, "logic_cells_available": r.logic_cells_available,
                   "logic_pct": round(100 * r.logic_cells / max(1, r.logic_cells_available), 1), "lut4": r.lut4,
                   "ff": r.ff, "ebr": r.ebr, "ebr_available": r.ebr_available, "spram": r.spram,
                   "fmax_mhz": round(clk.achieved_mhz, 2), "fmax_constraint_mhz": round(clk.constraint_mhz, 2),
                   "timing_met": r.timing_met, "build_seconds": r.build_seconds}
    cfg = config or preset("tiny")
    net, img = fill_network(cfg, seed)
    with start_virtual_board(cfg) as vb, Device.open(vb.url, timeout=5.0) as dev:
        dev.load(img)
        s0, t0 = vb.stats(), time.perf_counter()
        spikes = dev.run(steps)
        s1, t1 = vb.stats(), time.perf_counter()
        cycles = s1["cycles"] - s0["cycles"]
        yield {"bench": "board", "case": "virtual_board_speed", "config": cfg.name, "steps": steps,
               "spikes": len(spikes), "sim_cycles": cycles, "sim_seconds": round(cycles / vb.clock_hz, 6),
               "wall_seconds": round(t1 - t0, 3), "cycles_per_s": round(cycles / (t1 - t0)),
               "loadavg_1min": round(os.getloadavg()[0], 2), "machine": machine}
