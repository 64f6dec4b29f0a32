"""``spikeforge bench robot``: robot controllers on unseen arenas, the control loop on each
backend, the batched world and the robot task; :func:`bench_robot` yields one figure (a
JSON-able dict) at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from spikeforge.sim.bench import machine_description
from spikeforge.sim.robot import (
    Braitenberg,
    RandomWalk,
    ReferenceBackend,
    SpikingController,
    spiking_braitenberg,
)
from spikeforge.sim.robot_boards import emulated_backend, vboard_backend
from spikeforge.sim.robot_task import RobotTask, random_robot_network, test_arenas
from spikeforge.sim.world import World, run_episode

from .robot_train import evolved_network

__all__ = ["BENCH_CONTROLLERS", "BENCH_TARGETS", "Timed", "bench_robot"]


class Timed:
    """Wraps a controller and times each ``act`` (the control-step latency)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def reset(self, seed: int) -> None:
        self.inner.reset(seed)
        self.seconds = []

    def act(self, sensors: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.act(sensors)
        self.seconds.append(time.perf_counter() - t0)
        return out


def _bench_controllers() -> dict[str, Callable[[], Any]]:
    return {
        "random": RandomWalk,
        "braitenberg": Braitenberg,
        "spiking-braitenberg@reference": lambda: SpikingController(spiking_braitenberg()),
    }


def _evolved_controller() -> Any:
    return SpikingController(evolved_network())


#: Extra bench controllers: name → factory. ``evolved@reference`` is the shipped evolved
#: controller (``spikeforge/sim/robots/evolved.json``) on the reference model.
BENCH_CONTROLLERS: dict[str, Callable[[], Any]] = {"evolved@reference": _evolved_controller}

#: Targets whose control steps/s ``bench robot`` measures (the evolved controller on each).
BENCH_TARGETS = ("reference", "emulated", "vboard")
BENCH_TARGET_STEPS = 100

BENCH_ARENAS = 10
BENCH_EPISODE = 600


def bench_robot(steps: int = 600, population: int = 64, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``spikeforge bench robot``: one JSON line per controller, then the task's evaluations/s.

    Each controller drives 600 control steps in each of the 10 unseen test arenas
    (:func:`spikeforge.sim.robot_task.test_arenas`); the line holds mean coverage, collisions
    and contact steps, per-arena values, and control steps per second. Then the evolved
    controller's control steps/s and latency on each target (:func:`_bench_targets`: reference,
    emulated board, Verilator virtual board), the batched world
    alone (256 robots, constant motors: robot steps per second) and
    :meth:`RobotTask.evaluate` on a population of random robot networks (evaluations/s).
    """
    machine = machine_description()
    arenas = test_arenas(BENCH_ARENAS)
    ctrls = {**_bench_controllers(), **BENCH_CONTROLLERS}
    for name, make in ctrls.items():
        eps = []
        for k, arena in enumerate(tqdm(arenas, desc=name, unit="arena", disable=None, leave=False)):
            eps.append(run_episode(make(), arena, steps=steps, seed=k, record=False))
        secs = sum(e.seconds for e in eps)
        line = {
            "bench": "robot", "controller": name, "arenas": len(arenas), "steps": steps,
            "coverage": round(float(np.mean([e.coverage for e in eps])), 4),
            "collisions": round(float(np.mean([e.collisions for e in eps])), 2),
            "contact_steps": round(float(np.mean([e.contact_steps for e in eps])), 1),
            "coverage_per_arena": [round(e.coverage, 3) for e in eps],
            "collisions_per_arena": [e.collisions for e in eps],
            "control_steps_per_s": round(steps * len(eps) / secs, 1) if secs > 0 else None,
            "machine": machine,
        }
        yield line
    # The world alone, batched (what the task steps): sensors + kinematics + collisions.
    n_rob = 256
    world = World([arenas[k % len(arenas)] for k in range(n_rob)], list(range(n_rob)))
    motors = np.tile([1.0, 0.0, 0.9, 0.0], (n_rob, 1))
    w_steps = min(steps, 200)
    t0 = time.perf_counter()
    for _ in range(w_steps):
        world.sensors()
        world.step(motors)
    secs = time.perf_counter() - t0
    yield ({
        "bench": "robot", "case": "world_batch", "robots": n_rob, "steps": w_steps, "seconds": round(secs, 3),
        "robot_steps_per_s": round(n_rob * w_steps / secs), "machine": machine,
    })
    yield from _bench_targets(arenas[0], min(steps, BENCH_TARGET_STEPS), machine)
    pop = max(1, min(population, 256))
    task = RobotTask(steps=min(steps, 200))
    nets = [random_robot_network(np.random.default_rng([seed, k]), task) for k in range(pop)]
    t0 = time.perf_counter()
    task.evaluate(nets, seed=seed)
    secs = time.perf_counter() - t0
    robot_steps = pop * task.n_arenas * task.steps
    yield {
        "bench": "robot", "case": "task_evaluate", "population": pop, "arenas": task.n_arenas,
        "steps": task.steps, "seconds": round(secs, 3),
        "evaluations_per_s": round(pop / secs, 2), "robot_steps_per_s": round(robot_steps / secs),
        "machine": machine,
    }


def _bench_targets(arena: Any, steps: int, machine: dict[str, Any]) -> list[dict[str, Any]]:
    """Control steps/s of the evolved controller on each of :data:`BENCH_TARGETS`.

    One episode of ``steps`` control steps in ``arena`` per target, its trajectory checked
    against the reference model's; the board targets are the ``up5k`` core (the emulated
    board in its own process, the Verilator virtual board), each over a real pty. A target
    that cannot start (e.g. no Verilator) gets a line with its ``error``.
    """
    net = evolved_network()
    lines = []
    ref_traj = None
    for target in BENCH_TARGETS:
        line: dict[str, Any] = {"bench": "robot", "case": "target", "target": target, "controller": "evolved",
                                "core": "up5k", "arena": arena.name, "steps": steps}
        backend = None
        try:
            t0 = time.perf_counter()
            if target == "reference":
                backend = ReferenceBackend(net)
            else:
                backend = (emulated_backend if target == "emulated" else vboard_backend)(net, "up5k")
            line["open_seconds"] = round(time.perf_counter() - t0, 2)
            timed = Timed(SpikingController(net, backend))
            vb = getattr(backend, "virtual_board", None)
            c0 = vb.stats()["cycles"] if vb is not None else 0
            ep = run_episode(timed, arena, steps=steps, seed=0)
            lat = np.array(timed.seconds) * 1e3
            line.update(control_steps_per_s=round(steps / ep.seconds, 1), latency_ms_mean=round(float(lat.mean()), 3),
                        latency_ms_p95=round(float(np.percentile(lat, 95)), 3))
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
            close = getattr(backend, "close", None)
            if close is not None:
                close()
        line["machine"] = machine
        lines.append(line)
    return lines
