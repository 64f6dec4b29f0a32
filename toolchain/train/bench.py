"""Trainer benchmarks: each function yields one figure (a JSON-able dict) at a time.

``spikeforge bench evolve`` and ``spikeforge bench convert`` print them, one JSON line each.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.sim.bench import machine_description

from .evolve import EvolveConfig, Limits, evolve, initial_network
from .parallel import DaskEvaluator, PoolEvaluator, SerialEvaluator, local_workers, make_evaluator
from .pipeline import train_and_convert
from .task_defaults import TASK_DEFAULTS, default_config
from .tasks import BreastCancerTask, CartPoleTask, load_task

__all__ = ["bench_convert", "bench_evolve"]


def _with_load(doc: dict[str, Any]) -> dict[str, Any]:
    # The machine is shared: the 1-minute load average says how much of it the figure had.
    doc["machine"] = {**doc.get("machine", {}), "load_average_1min": round(os.getloadavg()[0], 2)}
    return doc


def bench_evolve(population: int = 64, seed: int = 0, bars: bool = False) -> Iterator[dict[str, Any]]:
    """Evaluations/s of the evolutionary trainer (serial, all cores, local Dask) on
    breast-cancer, cart-pole env steps/s, and with ``bars`` the wall time to the
    breast-cancer and cart-pole bars (minutes each)."""
    machine = machine_description()
    core = preset("up5k")
    task = BreastCancerTask()
    pop = max(2, population)
    rng = np.random.default_rng(seed)
    lim = Limits.of(core, EvolveConfig(), task.n_inputs, task.n_outputs)
    nets = [initial_network(lim, EvolveConfig(start_hidden=4, start_synapses=-1), rng, task.codec(), task.metadata)
            for _ in range(pop)]
    samples = len(task.y_train)
    cores = local_workers()

    def measure(name: str, ev: Any, repeat: int = 3) -> dict[str, Any]:
        ev.evaluate(nets, list(range(pop)), 0)  # warm up (worker start, task transfer)
        t0 = time.perf_counter()
        for r in range(repeat):
            ev.evaluate(nets, list(range(pop)), r)
        dt = (time.perf_counter() - t0) / repeat
        return _with_load({"bench": "evolve", "case": name, "task": "breast-cancer", "population": pop,
                           "samples": samples, "steps": task.encoder.steps, "workers": getattr(ev, "workers", 1),
                           "seconds_per_generation": round(dt, 4), "evaluations_per_s": round(pop * samples / dt),
                           "machine": machine})

    with SerialEvaluator(task) as ev:
        yield measure("single-process", ev)
    with PoolEvaluator(task, cores) as ev:
        yield measure(f"process-pool{cores}", ev)
    from distributed import LocalCluster  # dask is slow to import: only for this figure

    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            DaskEvaluator(task, cluster.scheduler_address) as ev:
        yield measure(f"dask-local{cores}", ev)
    cp = CartPoleTask()
    with SerialEvaluator(cp) as ev:
        cnets = [initial_network(Limits.of(core, EvolveConfig(), 8, 2), EvolveConfig(), rng, cp.codec(), cp.metadata)
                 for _ in range(pop)]
        t0 = time.perf_counter()
        lengths = cp.episode_lengths(cnets, list(range(cp.episodes)))
        dt = time.perf_counter() - t0
        yield _with_load({"bench": "evolve", "case": "cartpole-single-process", "population": pop,
                          "episodes": cp.episodes, "env_steps": int(lengths.sum()), "window": cp.window,
                          "seconds": round(dt, 4), "env_steps_per_s": round(float(lengths.sum()) / dt),
                          "machine": machine})
    if bars:
        for name in ("breast-cancer", "cartpole"):
            yield _with_load(_bar_run(name, core, cores, machine, seed))


def _bar_run(name: str, core: CoreConfig, cores: int, machine: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train with the CLI defaults and all cores until the task's bar; the wall time to it."""
    task = load_task(name)
    d = TASK_DEFAULTS[name]
    t0 = time.perf_counter()
    reached: dict[str, Any] = {}

    def check(gen: int, net: Any, fit: float) -> bool:
        info = task.info(net)
        ok = (info["test_accuracy"] >= 0.95 if name == "breast-cancer" else info["balanced_500"] == 10)
        if ok and not reached:
            reached.update(generation=gen, seconds=round(time.perf_counter() - t0, 1), info=info,
                           neurons=len(net.neurons), synapses=len(net.synapses))
        return ok

    with make_evaluator(task, cores) as ev:
        res = evolve(task, core, default_config(name), generations=d["generations"] * 4,
                     seed=seed, evaluator=ev, progress=False, on_generation=check, time_limit=900)
    bar = "test_accuracy >= 0.95" if name == "breast-cancer" else "500 steps on 10 unseen seeds"
    return {"bench": "evolve", "case": f"bar-{name}", "bar": bar, "reached": bool(reached),
            "seconds_to_bar": reached.get("seconds"), "generation": reached.get("generation"),
            "detail": reached or res.info, "population": d["population"], "workers": cores,
            "core": core.name, "seed": seed, "machine": machine}


def bench_convert(seed: int = 0) -> Iterator[dict[str, Any]]:
    """One figure per task (digits, breast cancer) and hidden activation (ReLU, clipped ReLU,
    soft-LIF with training noise 0.1) on ``up5k``, T = 32."""
    machine = machine_description()
    cfg = preset("up5k")
    for task, act in [(t, a) for t in ("digits", "breast-cancer") for a in ("relu", "clipped_relu", "softlif")]:
        t0 = time.perf_counter()
        _, net, ev, _ = train_and_convert(task, cfg, activation=act, noise=0.1 if act == "softlif" else 0.0,
                                          seed=seed, curve_steps=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64),
                                          progress=False)
        d = ev.to_dict()
        yield {
            "bench": "convert", "task": task, "activation": act, "config": cfg.name, "timesteps": 32,
            "ann_accuracy": d["ann_accuracy"], "float_snn_accuracy": d["float_snn_accuracy"],
            "int_snn_accuracy": d["int_snn_accuracy"],
            "timesteps_within_1_point": ev.steps_within(1.0),
            "events_per_inference": d["events_per_inference"],
            "neurons": len(net.neurons), "synapses": len(net.synapses),
            "curve": d["curve"], "seconds": round(time.perf_counter() - t0, 2), "machine": machine,
        }
