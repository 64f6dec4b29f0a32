"""The robot benchmark's cases (``spikeforge bench robot``), each a JSON-ready figure dict.

:func:`bench_robot` yields, in order:

1. one line per controller of :data:`BENCH_CONTROLLERS`: 600 control steps in each of the 10
   unseen test arenas (:func:`~.task.test_arenas`) — mean coverage, collisions and contact
   steps, the per-arena values, and control steps per second;
2. ``world_batch``: the batched world alone (256 robots, constant motors: robot steps/s);
3. ``target`` lines: the evolved controller's control steps/s and latency on each of
   :data:`BENCH_TARGETS` (:func:`bench_targets`), its trajectory checked against the reference;
4. ``task_evaluate``: :meth:`~.task.RobotTask.evaluate` on a population of random robot
   networks (evaluations/s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from spikeforge.sim.bench import machine_description
from spikeforge.toolchain.backends import open_backend

from .arena import Arena
from .controllers import (
    Braitenberg,
    RandomWalk,
    SpikingController,
    evolved_network,
    spiking_braitenberg,
)
from .loop import Recorder, close_controller
from .task import RobotTask, random_robot_network, test_arenas
from .world import Controller, World, run_episode

__all__ = ["BENCH_ARENAS", "BENCH_CONTROLLERS", "BENCH_EPISODE", "BENCH_TARGETS", "BENCH_TARGET_STEPS",
           "bench_controller", "bench_robot", "bench_targets", "bench_task", "bench_world"]

log = logging.getLogger(__name__)

#: Bench controllers: name → factory. ``evolved@reference`` is the shipped evolved controller
#: (``spikeforge/toolchain/robot/robots/evolved.json``) on the reference model.
BENCH_CONTROLLERS: dict[str, Callable[[], Controller]] = {
    "random": RandomWalk,
    "braitenberg": Braitenberg,
    "spiking-braitenberg@reference": lambda: SpikingController(spiking_braitenberg()),
    "evolved@reference": lambda: SpikingController(evolved_network()),
}

#: Backends whose control steps/s the bench measures (the evolved controller on each).
BENCH_TARGETS = ("reference", "emulated", "vboard")
BENCH_TARGET_STEPS = 100

BENCH_ARENAS = 10
BENCH_EPISODE = 600


def bench_controller(name: str, make: Callable[[], Controller], arenas: Sequence[Arena], steps: int) -> dict[str, Any]:
    """One controller, one episode of ``steps`` in each arena (random-input seed = arena index)."""
    eps = []
    for k, arena in enumerate(tqdm(arenas, desc=name, unit="arena", disable=None, leave=False)):
        eps.append(run_episode(make(), arena, steps=steps, seed=k, record=False))
    secs = sum(e.seconds for e in eps)
    return {
        "bench": "robot", "controller": name, "arenas": len(arenas), "steps": steps,
        "coverage": round(float(np.mean([e.coverage for e in eps])), 4),
        "collisions": round(float(np.mean([e.collisions for e in eps])), 2),
        "contact_steps": round(float(np.mean([e.contact_steps for e in eps])), 1),
        "coverage_per_arena": [round(e.coverage, 3) for e in eps],
        "collisions_per_arena": [e.collisions for e in eps],
        "control_steps_per_s": round(steps * len(eps) / secs, 1) if secs > 0 else None,
    }


def bench_world(arenas: Sequence[Arena], steps: int, robots: int = 256) -> dict[str, Any]:
    """The batched world alone (sensors + kinematics + collisions): robot steps per second."""
    world = World([arenas[k % len(arenas)] for k in range(robots)], list(range(robots)))
    motors = np.tile([1.0, 0.0, 0.9, 0.0], (robots, 1))
    t0 = time.perf_counter()
    for _ in range(steps):
        world.sensors()
        world.step(motors)
    secs = time.perf_counter() - t0
    return {"bench": "robot", "case": "world_batch", "robots": robots, "steps": steps, "seconds": round(secs, 3),
            "robot_steps_per_s": round(robots * steps / secs)}


def bench_targets(arena: Arena, steps: int, targets: Sequence[str] = BENCH_TARGETS) -> Iterator[dict[str, Any]]:
    """Control steps/s of the evolved controller on each backend of ``targets``.

    One episode of ``steps`` control steps in ``arena`` per target, its trajectory checked
    against the first target's (the reference model's); the board targets are the ``up5k``
    core (the emulated board in its own process, the Verilator virtual board), each over a
    real pty. A target that cannot start (e.g. no Verilator) gets a line with its ``error``.
    """
    net = evolved_network()
    ref_traj = None
    for target in targets:
        line: dict[str, Any] = {"bench": "robot", "case": "target", "target": target, "controller": "evolved",
                                "core": "up5k", "arena": arena.name, "steps": steps}
        backend = None
        try:
            t0 = time.perf_counter()
            backend = open_backend(target, net, config="up5k")
            line["open_seconds"] = round(time.perf_counter() - t0, 2)
            timed = Recorder(SpikingController(net, backend))
            vb = getattr(backend, "virtual_board", None)
            c0 = vb.stats()["cycles"] if vb is not None else 0
            ep = run_episode(timed, arena, steps=steps, seed=0)
            mean, p95 = timed.latency_ms()
            line.update(control_steps_per_s=round(steps / ep.seconds, 1), latency_ms_mean=round(mean, 3),
                        latency_ms_p95=round(p95, 3))
            if hasattr(backend, "frames"):
                line["frames_per_control_step"] = round(backend.frames / steps, 2)
            if vb is not None:
                line["latency_ms_board_clock"] = round(1e3 * (vb.stats()["cycles"] - c0) / vb.clock_hz / steps, 3)
            if ref_traj is None:
                ref_traj = ep.trajectory
            line["equals_reference"] = bool(np.array_equal(ep.trajectory, ref_traj))
        except Exception as e:  # a bench line per target, even when one cannot run here
            line["error"] = f"{type(e).__name__}: {e}"
        finally:
            if backend is not None:
                close_controller(backend)
        yield line


def bench_task(population: int, steps: int, seed: int = 0) -> dict[str, Any]:
    """:meth:`RobotTask.evaluate` on ``population`` random robot networks: evaluations/s."""
    task = RobotTask(steps=steps)
    nets = [random_robot_network(np.random.default_rng([seed, k]), task) for k in range(population)]
    t0 = time.perf_counter()
    task.evaluate(nets, seed=seed)
    secs = time.perf_counter() - t0
    robot_steps = population * task.n_arenas * task.steps
    return {"bench": "robot", "case": "task_evaluate", "population": population, "arenas": task.n_arenas,
            "steps": task.steps, "seconds": round(secs, 3), "evaluations_per_s": round(population / secs, 2),
            "robot_steps_per_s": round(robot_steps / secs)}


def bench_robot(steps: int = BENCH_EPISODE, population: int = 64, seed: int = 0,
                targets: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every case of the robot benchmark (module docstring), one figure dict at a time.

    Parameters
    ----------
    steps
        Control steps per controller episode (the world batch and the task run at most 200,
        the targets at most :data:`BENCH_TARGET_STEPS`).
    population
        Random robot networks of the task case (1..256).
    seed
        Seed of the task case.
    targets
        Backends of the target case (default: :data:`BENCH_TARGETS`).
    """
    machine = machine_description()
    arenas = test_arenas(BENCH_ARENAS)

    def lines() -> Iterator[dict[str, Any]]:
        for name, make in BENCH_CONTROLLERS.items():
            yield bench_controller(name, make, arenas, steps)
        yield bench_world(arenas, min(steps, 200))
        yield from bench_targets(arenas[0], min(steps, BENCH_TARGET_STEPS),
                                 BENCH_TARGETS if targets is None else targets)
        yield bench_task(max(1, min(population, 256)), min(steps, 200), seed)

    for line in lines():
        yield {**line, "machine": machine}
