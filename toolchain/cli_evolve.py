"""``spikeforge train evolve`` and ``spikeforge bench evolve``.

The command trains with :func:`spikeforge.toolchain.train.evolve.evolve` and writes the best
network (IR JSON with its encoder/decoder and provenance), plus a run directory holding the
checkpoint, the fitness plot and the Pareto front.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .ir import save_network

__all__ = ["BOARD_PRESETS", "TASK_DEFAULTS", "add_parser", "bench_evolve", "default_config", "resolve_core"]

log = logging.getLogger(__name__)

#: Defaults per built-in task (a user gets the README bars with no flags).
#: ``settings`` are :class:`~spikeforge.toolchain.train.evolve.EvolveConfig` fields.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "xor": {"population": 30, "generations": 30, "target_fitness": 1.0, "settings": {}},
    "breast-cancer": {"population": 100, "generations": 60,
                      "settings": {"start_synapses": 16, "mutations": 3.0, "threshold_max": 1023}},
    "cartpole": {"population": 100, "generations": 60, "target_fitness": 1.0, "settings": {}},
}
_FALLBACK: dict[str, Any] = {"population": 100, "generations": 50, "settings": {}}


def default_config(spec: str, **overrides: Any) -> Any:
    """The :class:`EvolveConfig` a task gets with no flags (``overrides`` win)."""
    from .train.evolve import EvolveConfig

    d = TASK_DEFAULTS.get(spec, _FALLBACK)
    return EvolveConfig(**{"population": d["population"], **d["settings"], **overrides})

#: ``--target`` board names and the preset each one means.
BOARD_PRESETS = {"icebreaker": "up5k", "ulx3s-85f": "ecp5-85f", "ulx3s": "ecp5-85f"}


def resolve_core(target: str) -> Any:
    """The :class:`~spikeforge.hdl.config.CoreConfig` for ``--target``: a board name
    (``icebreaker`` → ``up5k``), a preset name or a CoreConfig JSON file.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.
    """
    from spikeforge.firmware.boards import resolve_target

    return resolve_target(target).config

_DESCRIPTION = """\
Evolve a spiking network for a task (EONS-style: add/remove neurons and synapses, mutate
thresholds, weights, delays, leak; merge crossover; tournament selection with elitism; optional
size penalty and a Pareto front of fitness vs. size). Every individual fits the target core's
field widths and budgets, so the result loads onto the board with no quantization.

Tasks: xor (tiny), breast-cancer (scikit-learn's Wisconsin data, stratified 80/20 split; test
accuracy reported), cartpole (CartPole-v1 dynamics, 500 steps; unseen-seed episodes reported),
or MODULE:CALLABLE - a task class/factory, or a function f(networks, seed) -> fitnesses
(give --inputs/--outputs). Fitness is higher-better.

Evaluation runs the whole population x the data on the batched reference model, on every
local core by default (--workers), or on a Dask cluster (--scheduler). A checkpoint is written
every generation to the run directory; --resume DIR continues exactly."""

_EPILOG = """\
examples:
  spikeforge train evolve --task breast-cancer --target icebreaker -o bc.json
  spikeforge train evolve --task cartpole -o cartpole.json --workers 2
  spikeforge train evolve --task cartpole -o cp.json --resume cp.json.run --generations 80
  spikeforge train evolve --task mytasks:fitness --inputs 4 --outputs 2 -o net.json
  spikeforge train evolve --task xor --target tiny -o xor.json --scheduler tcp://10.0.0.5:8786"""


def add_parser(train_sub: argparse._SubParsersAction) -> None:
    """Add ``evolve`` to the ``spikeforge train`` group."""
    p = train_sub.add_parser("evolve", help="evolutionary training (EONS-style), hardware-aware",
                             description=_DESCRIPTION, epilog=_EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default=None, metavar="TASK",
                   help="xor | breast-cancer | cartpole | module:callable (default on --resume: the checkpoint's)")
    p.add_argument("--target", default="icebreaker", metavar="BOARD|PRESET|FILE",
                   help="core the networks must fit: a board (icebreaker -> up5k), a preset "
                        "(tiny, small, up5k, ecp5-85f) or a CoreConfig JSON file (default: icebreaker)")
    p.add_argument("-o", "--output", required=True, metavar="NETWORK", help="where to write the best network (JSON)")
    p.add_argument("--generations", type=int, default=None, metavar="G", help="generations in total (task default)")
    p.add_argument("--population", type=int, default=None, metavar="P", help="individuals (task default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default: 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: every core; 1: in this process)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in this run directory")
    p.add_argument("--run-dir", default=None, metavar="DIR",
                   help="checkpoint, fitness.png, pareto.json go here (default: NETWORK.run)")
    p.add_argument("--size-penalty", type=float, default=0.0, metavar="C", help="select on fitness - C * size")
    p.add_argument("--max-neurons", type=int, default=None, help="neuron budget below the core's")
    p.add_argument("--max-synapses", type=int, default=None, help="synapse budget below the core's")
    p.add_argument("--target-fitness", type=float, default=None, metavar="F", help="stop when the best reaches F")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--eval-timeout", type=float, default=600.0, metavar="S",
                   help="seconds one batched evaluation may take before it counts as hung (default: 600)")
    p.add_argument("--inputs", type=int, default=None, metavar="N", help="plug-in function: input ports")
    p.add_argument("--outputs", type=int, default=None, metavar="N", help="plug-in function: output ports")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evolve)


def _cmd_evolve(args: argparse.Namespace) -> int:
    from .train.evolve import EvolveError, evolve, load_checkpoint
    from .train.parallel import make_evaluator
    from .train.tasks import TaskError, load_task

    run_dir = Path(args.resume or args.run_dir or f"{args.output}.run")
    spec = args.task
    if args.resume:
        doc = load_checkpoint(run_dir)
        if spec is not None and spec != doc["task"]:
            raise EvolveError(f"--task {spec} but the checkpoint in {run_dir} is for {doc['task']!r}")
        spec = doc["task"]
        done = int(doc["generation"]) + 1
    elif spec is None:
        raise EvolveError("--task is required (xor, breast-cancer, cartpole or module:callable)")
    defaults = TASK_DEFAULTS.get(spec, _FALLBACK)
    generations = args.generations or defaults["generations"]
    if args.resume and generations <= done:
        raise EvolveError(f"{run_dir} already holds {done} generations; give --generations above {done}")
    for name in ("generations", "population", "workers", "max_neurons", "max_synapses"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise EvolveError(f"--{name.replace('_', '-')} = {v} is invalid; allowed: an integer >= 1")
    try:
        task = load_task(spec, n_inputs=args.inputs, n_outputs=args.outputs)
    except TaskError as e:
        raise EvolveError(str(e)) from None
    core = resolve_core(args.target)
    config = default_config(spec, population=args.population or defaults["population"],
                            size_penalty=args.size_penalty, max_neurons=args.max_neurons,
                            max_synapses=args.max_synapses)
    target = args.target_fitness if args.target_fitness is not None else defaults.get("target_fitness")
    t0 = time.perf_counter()
    with make_evaluator(task, args.workers, args.scheduler, args.eval_timeout) as ev:
        res = evolve(task, core, config, generations=generations, seed=args.seed, evaluator=ev,
                     run_dir=run_dir, resume=bool(args.resume), progress=not args.no_progress,
                     target_fitness=target, task_spec=spec, time_limit=args.time_limit)
    save_network(res.best, args.output)
    net = res.best
    sys.stdout.write(
        f"best network: fitness {res.best_fitness:.6g} (generation {res.best_generation} of {res.generations}), "
        f"{len(net.neurons)} neurons, {len(net.synapses)} synapses, fits core {core.name!r}\n")
    for k, v in res.info.items():
        if not isinstance(v, list):
            sys.stdout.write(f"  {k}: {v}\n")
    if res.errors:
        sys.stdout.write(f"  {len(res.errors)} evaluation errors (first: {res.errors[0]})\n")
    sys.stdout.write(f"wrote {args.output}; run directory {run_dir} (checkpoint.json, fitness.png, pareto.json); "
                     f"{time.perf_counter() - t0:.1f} s\n")
    return 0


# --------------------------------------------------------------------------- bench
def _line(doc: dict[str, Any]) -> None:
    # The machine is shared: the 1-minute load average says how much of it the figure had.
    doc["machine"] = {**doc.get("machine", {}), "load_average_1min": round(os.getloadavg()[0], 2)}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def bench_evolve(args: argparse.Namespace) -> int:
    """``spikeforge bench evolve``: evaluations/s (serial, all cores, local Dask) and, with
    ``--bars``, wall time to the breast-cancer and cart-pole bars."""
    from spikeforge.hdl.config import preset

    from .cli import machine_description
    from .train.evolve import EvolveConfig, Limits, evolve, initial_network
    from .train.parallel import DaskEvaluator, PoolEvaluator, SerialEvaluator, local_workers
    from .train.tasks import BreastCancerTask, CartPoleTask

    machine = machine_description()
    core = preset("up5k")
    task = BreastCancerTask()
    pop = max(2, args.runs)  # the shared bench knob (default 64 networks)
    rng = np.random.default_rng(args.seed)
    lim = Limits.of(core, EvolveConfig(), task.n_inputs, task.n_outputs)
    nets = [initial_network(lim, EvolveConfig(start_hidden=4, start_synapses=-1), rng, task.codec(), task.metadata)
            for _ in range(pop)]
    samples = len(task.y_train)
    cores = local_workers()

    def measure(name: str, ev: Any, repeat: int = 3) -> None:
        ev.evaluate(nets, list(range(pop)), 0)  # warm up (worker start, task transfer)
        t0 = time.perf_counter()
        for r in range(repeat):
            ev.evaluate(nets, list(range(pop)), r)
        dt = (time.perf_counter() - t0) / repeat
        _line({"bench": "evolve", "case": name, "task": "breast-cancer", "population": pop, "samples": samples,
               "steps": task.encoder.steps, "workers": getattr(ev, "workers", 1),
               "seconds_per_generation": round(dt, 4), "evaluations_per_s": round(pop * samples / dt),
               "machine": machine})

    with SerialEvaluator(task) as ev:
        measure("single-process", ev)
    with PoolEvaluator(task, cores) as ev:
        measure(f"process-pool{cores}", ev)
    from distributed import LocalCluster

    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            DaskEvaluator(task, cluster.scheduler_address) as ev:
        measure(f"dask-local{cores}", ev)
    cp = CartPoleTask()
    with SerialEvaluator(cp) as ev:
        cnets = [initial_network(Limits.of(core, EvolveConfig(), 8, 2), EvolveConfig(), rng, cp.codec(), cp.metadata)
                 for _ in range(pop)]
        t0 = time.perf_counter()
        lengths = cp.episode_lengths(cnets, list(range(cp.episodes)))
        dt = time.perf_counter() - t0
        _line({"bench": "evolve", "case": "cartpole-single-process", "population": pop, "episodes": cp.episodes,
               "env_steps": int(lengths.sum()), "window": cp.window, "seconds": round(dt, 4),
               "env_steps_per_s": round(float(lengths.sum()) / dt), "machine": machine})
    if not getattr(args, "bars", False):
        return 0
    for name in ("breast-cancer", "cartpole"):
        _line(_bar_run(name, core, cores, machine, args.seed, evolve))
    return 0


def _bar_run(name: str, core: Any, cores: int, machine: dict[str, Any], seed: int, evolve: Any) -> dict[str, Any]:
    """Train with the CLI defaults and all cores until the task's bar; the wall time to it."""
    from .train.parallel import make_evaluator
    from .train.tasks import load_task

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
