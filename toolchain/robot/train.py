"""The recipe of the shipped evolved robot controller (issue 8), and how to reproduce it.

:func:`train_robot` runs the evolutionary trainer (:func:`spikeforge.toolchain.train.evolve.evolve`)
on :class:`spikeforge.toolchain.robot.task.RobotTask` with the settings below, for the ``up5k``
core (iCEBreaker), starting either from random networks (``init=()``) or from given
controllers (the default: the hand-built spiking Braitenberg network, a sensible reflex that
evolution then improves). The result carries its provenance: task, settings, seed,
generations, fitness, the unseen-arena benchmark and the command that reproduces it::

    python -m spikeforge.toolchain.robot.train -o evolved.json --generations 300 --seed 1

The shipped network is ``spikeforge/toolchain/robot/robots/evolved.json``
(:func:`~spikeforge.toolchain.robot.controllers.evolved_network`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spikeforge.hdl.config import preset

from ..ir import Network, load_network, save_network
from ..train.evolve import EvolveConfig, EvolveResult, evolve
from ..train.parallel import make_evaluator
from .controllers import evolved_network, spiking_braitenberg
from .task import RobotTask

__all__ = ["ROBOT_EVOLVE_SETTINGS", "ROBOT_TASK_SETTINGS", "robot_task", "train_robot"]

log = logging.getLogger(__name__)

#: :class:`~spikeforge.toolchain.robot.task.RobotTask` options of the recipe: 4 random arenas per
#: generation (new ones each generation), episodes as long as the benchmark's.
ROBOT_TASK_SETTINGS: dict[str, Any] = {"n_arenas": 4, "steps": 600, "collision_penalty": 0.03}
#: :class:`~spikeforge.toolchain.train.evolve.EvolveConfig` fields of the recipe.
ROBOT_EVOLVE_SETTINGS: dict[str, Any] = {"population": 60, "elites": 2, "mutations": 2.0, "start_hidden": 2}


def robot_task(**overrides: Any) -> RobotTask:
    """The recipe's :class:`~spikeforge.toolchain.robot.task.RobotTask` (``overrides`` win)."""
    return RobotTask(**{**ROBOT_TASK_SETTINGS, **overrides})


def _init_networks(init: Sequence[str | Network]) -> list[Network]:
    nets = []
    for item in init:
        if isinstance(item, Network):
            nets.append(item)
        elif item == "spiking-braitenberg":
            nets.append(spiking_braitenberg())
        elif item == "evolved":
            nets.append(evolved_network())
        else:
            nets.append(load_network(item))
    return nets


def train_robot(generations: int, seed: int = 1, *, init: Sequence[str | Network] = ("spiking-braitenberg",),
                population: int | None = None, workers: int | None = 1, run_dir: str | Path | None = None,
                time_limit: float | None = None, progress: bool = True, task_options: dict[str, Any] | None = None,
                command: str | None = None) -> EvolveResult:
    """Evolve a robot controller for the ``up5k`` core with the recipe's settings.

    Parameters
    ----------
    generations
        Generations to run.
    seed
        Seed of the run.
    init
        Starting controllers: network JSON paths, :class:`Network` objects, ``"spiking-braitenberg"``
        or ``"evolved"`` (the shipped one); empty: random starting networks.
    population
        Individuals (default: the recipe's 60).
    workers
        Local worker processes (1: in this process).
    run_dir
        Checkpoint directory (None: none).
    time_limit
        Stop after this many seconds.
    progress
        Show the trainer's progress bar.
    task_options
        Overrides of :data:`ROBOT_TASK_SETTINGS`.
    command
        The command line recorded in the provenance (default: this module's).

    Returns
    -------
    EvolveResult
        ``best.metadata["provenance"]`` also holds ``recipe`` (settings, init, command).
    """
    task = robot_task(**(task_options or {}))
    settings = {**ROBOT_EVOLVE_SETTINGS, **({"population": population} if population else {})}
    config = EvolveConfig(**settings)
    nets = _init_networks(init)
    labels = [x if isinstance(x, str) else "network" for x in init]
    t0 = time.perf_counter()
    with make_evaluator(task, workers, None, 600.0) as ev:
        res = evolve(task, preset("up5k"), config, generations=generations, seed=seed, evaluator=ev,
                     run_dir=run_dir, progress=progress, task_spec="robot", time_limit=time_limit,
                     initial=nets or None)
    if command is None:
        command = (f"python -m spikeforge.toolchain.robot.train -o evolved.json --generations {generations} "
                   f"--seed {seed}" + "".join(f" --init {x}" for x in labels))
    res.best.metadata["provenance"]["recipe"] = {
        "task_settings": {**ROBOT_TASK_SETTINGS, **(task_options or {})}, "init": labels,
        "generations_run": res.generations, "seconds": round(time.perf_counter() - t0, 1), "command": command,
    }
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spikeforge.toolchain.robot.train``: train and write a controller."""
    p = argparse.ArgumentParser(prog="python -m spikeforge.toolchain.robot.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, metavar="NETWORK")
    p.add_argument("--generations", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--population", type=int, default=None)
    p.add_argument("--init", action="append", default=None, metavar="NETWORK|spiking-braitenberg|evolved",
                   help="starting controller (repeatable; default: spiking-braitenberg; 'none': random)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--run-dir", default=None)
    p.add_argument("--time-limit", type=float, default=None)
    a = p.parse_args(argv)
    init = [] if a.init == ["none"] else (a.init or ["spiking-braitenberg"])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cmd = "python -m spikeforge.toolchain.robot.train " + " ".join(sys.argv[1:] if argv is None else argv)
    res = train_robot(a.generations, a.seed, init=init, population=a.population, workers=a.workers,
                      run_dir=a.run_dir, time_limit=a.time_limit, command=cmd)
    save_network(res.best, a.output)
    sys.stdout.write(f"fitness {res.best_fitness:.4f} (generation {res.best_generation} of {res.generations}); "
                     f"wrote {a.output}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
