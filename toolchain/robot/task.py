"""The robot navigation task for the evolutionary trainer: roam far, touch nothing.

:class:`RobotTask` is the duck-typed task a trainer drives (``name``, ``n_inputs``,
``n_outputs``, ``codec()``, ``evaluate(networks, seed)``, ``info(network)``, and
``new_network()`` for a seed network with named ports): every network of a
population drives its own robot, through several arenas, all at once — one
:class:`~spikeforge.toolchain.robot.world.World` of ``networks × arenas`` robots and one population
:class:`~spikeforge.toolchain.reference.ReferenceSimulator` run side by side, one control step
at a time. A robot here follows exactly the trajectory a
:class:`~spikeforge.toolchain.robot.controllers.SpikingController` on a
:class:`~spikeforge.toolchain.backends.ReferenceBackend` drives alone (tested).

Fitness (higher is better), per arena, averaged over the arenas::

    coverage − collision_penalty · collisions − contact_penalty · contact_steps / steps

``coverage`` is the fraction of the arena's free cells visited (0..1), ``collisions`` the
number of times the robot ran into something and ``contact_steps`` the steps it spent pushing
against it (see :mod:`spikeforge.toolchain.robot.world`).

The defaults (``collision_penalty = 0.02``, ``contact_penalty = 1.0``, 500 control steps)
make a robot that ends up pushing against a wall for half the episode score well below one
that stands still, so evolution does not settle on racing to the first wall; with a weak
contact penalty and short episodes it did, and those controllers got stuck on unseen arenas.

Arenas
    With no fixed ``arenas``, ``evaluate(networks, seed)`` draws ``n_arenas`` random arenas
    from ``seed`` (``random_arena((seed, k))``), so each generation meets new ones; the
    benchmark's unseen arenas come from :func:`test_arenas`, seeded apart from any training
    seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from spikeforge.toolchain.codec import Decoder, Encoder, io_of
from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.reference import DEFAULT_POTENTIAL_BITS, ReferenceSimulator

from .arena import Arena, random_arena
from .controllers import DEFAULT_STEPS_PER_CONTROL, new_robot_network, robot_io
from .world import MOTOR_NAMES, N_MOTORS, N_SENSORS, SENSOR_NAMES, Robot, World

__all__ = ["TEST_ARENA_KEY", "RobotTask", "random_robot_network", "run_population", "test_arenas"]

log = logging.getLogger(__name__)

TEST_ARENA_KEY = (0x7E57, 0xA4E)
"""Seed prefix of the unseen test arenas (three-part seeds: never a ``(seed, k)`` training pair)."""


def test_arenas(n: int = 10) -> list[Arena]:
    """The ``n`` unseen benchmark arenas (``random_arena((*TEST_ARENA_KEY, k))``)."""
    return [random_arena((*TEST_ARENA_KEY, k)) for k in range(n)]


test_arenas.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def run_population(networks: Sequence[Network], arenas: Sequence[Arena], steps: int,
                   seeds: Sequence[int] | None = None, robot: Robot | None = None,
                   potential_bits: int = DEFAULT_POTENTIAL_BITS, record: bool = False) -> World:
    """Drive one robot per (network, arena) pair for ``steps`` control steps on the reference model.

    Robot ``p · len(arenas) + a`` is network ``p`` in arena ``a`` with random-input seed
    ``seeds[a]`` (default ``a``). Every network needs the robot's I/O in
    ``metadata["io"]`` (:func:`~spikeforge.toolchain.robot.controllers.robot_io`), all with the same window.

    Returns
    -------
    World
        After the run: ``coverage``, ``collisions``, ``contact_steps``, ``distance`` per
        robot, and with ``record`` the trajectories (``World.episodes()``).
    """
    if not networks or not arenas:
        raise ValueError(f"run_population needs networks and arenas; got {len(networks)} and {len(arenas)}")
    seeds = list(range(len(arenas))) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(arenas):
        raise ValueError(f"got {len(seeds)} seeds for {len(arenas)} arenas; give one per arena")
    codes: list[tuple[Encoder, Decoder]] = []
    cache: dict[int, tuple[Encoder, Decoder]] = {}
    for k, net in enumerate(networks):
        if id(net) not in cache:
            try:
                cache[id(net)] = io_of(net)
            except NetworkError as e:
                raise NetworkError(f"network #{k}: {e}") from None
        codes.append(cache[id(net)])
    window = codes[0][0].steps
    for k, (enc, dec) in enumerate(codes):
        if enc.n_values != N_SENSORS or dec.n_outputs != N_MOTORS or dec.kind != "count":
            raise NetworkError(f"network #{k}: its I/O ({enc.kind} encoder of {enc.n_values} values, "
                               f"{dec.kind} decoder of {dec.n_outputs} outputs) is not the robot's "
                               f"({N_SENSORS} sensor values, a count decoder of {N_MOTORS} motors)")
        if enc.steps != window:
            raise NetworkError(f"network #{k}: encoder window {enc.steps} differs from network #0's "
                               f"({window}); a population runs in lockstep")
    n_a = len(arenas)
    runs = [net for net in networks for _ in range(n_a)]
    run_codes = [c for c in codes for _ in range(n_a)]
    world = World([a for _ in networks for a in arenas], [s for _ in networks for s in seeds],
                  robot, record=record)
    sim = ReferenceSimulator(runs, potential_bits)
    b = len(runs)
    # Output column of each (run, neuron position); -1 where the neuron is not an output.
    width = max(len(n.neurons) for n in runs)
    cols = np.full((b, width), -1, dtype=np.int64)
    for r, net in enumerate(runs):
        pos = net.index_of()
        for k, p in enumerate(net.outputs):
            cols[r, pos[p.neuron]] = k
    # Runs that share an encoder (and a decoder) are coded in one vectorised call.
    enc_groups: dict[Encoder, list[int]] = {}
    dec_groups: dict[Decoder, list[int]] = {}
    for r, (enc, dec) in enumerate(run_codes):
        enc_groups.setdefault(enc, []).append(r)
        dec_groups.setdefault(dec, []).append(r)
    enc_groups_a = [(e, np.array(rs)) for e, rs in enc_groups.items()]
    dec_groups_a = [(d, np.array(rs)) for d, rs in dec_groups.items()]
    motors = np.zeros((b, N_MOTORS))
    for _ in range(steps):
        t0 = sim.t
        sensors = world.sensors()
        for enc, rs in enc_groups_a:
            row, i, t, v = enc.encode_arrays(sensors[rs])
            sim.add_input_arrays(rs[row], i, t + t0, v)
        sim.run(window)
        t, run, local = sim.spike_arrays(since=t0)
        k = cols[run, local]
        keep = k >= 0
        raster = np.zeros((b, window, N_MOTORS), dtype=bool)
        raster[run[keep], t[keep] - t0, k[keep]] = True
        for dec, rs in dec_groups_a:
            motors[rs] = dec.decode_batch(raster[rs])
        world.step(motors)
    return world


class RobotTask:
    """Roam the arena, avoid obstacles: the task of issue 8 for the evolutionary trainer.

    Parameters
    ----------
    arenas
        Fixed arenas to evaluate on; default: ``n_arenas`` random ones drawn from each
        ``evaluate`` seed.
    n_arenas
        Number of random arenas per evaluation (ignored with fixed ``arenas``).
    steps
        Control steps per episode.
    steps_per_control
        Network timesteps per control step (the encoder window of :meth:`new_network`).
    collision_penalty, contact_penalty
        Fitness weights (module docstring).
    robot
        Robot parameters.
    potential_bits
        Potential width of the reference model.
    """

    name = "robot"
    n_inputs = N_SENSORS
    n_outputs = N_MOTORS

    def __init__(self, arenas: Sequence[Arena] | None = None, n_arenas: int = 3, steps: int = 500,
                 steps_per_control: int = DEFAULT_STEPS_PER_CONTROL, collision_penalty: float = 0.02,
                 contact_penalty: float = 1.0, robot: Robot | None = None,
                 potential_bits: int = DEFAULT_POTENTIAL_BITS) -> None:
        if arenas is not None and not arenas:
            raise ValueError("arenas is empty; give at least one arena, or None for random ones")
        if n_arenas < 1 or steps < 1 or steps_per_control < 1:
            raise ValueError(f"n_arenas = {n_arenas}, steps = {steps}, steps_per_control = "
                             f"{steps_per_control}; each must be an integer >= 1")
        self.arenas = list(arenas) if arenas is not None else None
        self.n_arenas = len(self.arenas) if self.arenas is not None else n_arenas
        self.steps = steps
        self.steps_per_control = steps_per_control
        self.collision_penalty = collision_penalty
        self.contact_penalty = contact_penalty
        self.robot = robot or Robot()
        self.potential_bits = potential_bits
        self.last_seconds = 0.0

    # ------------------------------------------------------------------ I/O
    def codec(self) -> tuple[Encoder, Decoder]:
        """The sensor encoder and motor decoder every network of this task carries
        (:func:`~spikeforge.toolchain.robot.controllers.robot_io`; a trainer records them with ``attach_io``)."""
        return robot_io(self.steps_per_control)

    @property
    def metadata(self) -> dict[str, Any]:
        """What a trained network should also record: the port meanings and the task settings."""
        return {"robot_task": {"sensors": list(SENSOR_NAMES), "motors": list(MOTOR_NAMES),
                               "steps": self.steps, "steps_per_control": self.steps_per_control,
                               "collision_penalty": self.collision_penalty,
                               "contact_penalty": self.contact_penalty}}

    def new_network(self, **neuron_params: Any) -> Network:
        """A network with only the task's named ports and ``metadata["io"]`` (the trainer's seed).

        Keyword arguments go to :func:`~spikeforge.toolchain.robot.controllers.new_robot_network`
        (``input_threshold``, ``output_threshold``).
        """
        return new_robot_network(self.steps_per_control, **neuron_params)

    def arenas_for(self, seed: int) -> list[Arena]:
        """The arenas ``evaluate(…, seed)`` uses."""
        if self.arenas is not None:
            return self.arenas
        return [random_arena((int(seed), k)) for k in range(self.n_arenas)]

    # ------------------------------------------------------------------ evaluation
    def run(self, networks: Sequence[Network], seed: int, record: bool = False) -> World:
        """Run every network in every arena of ``seed``; the finished :class:`World`."""
        arenas = self.arenas_for(seed)
        return run_population(networks, arenas, self.steps, [int(seed) * 1000 + k for k in range(len(arenas))],
                              self.robot, self.potential_bits, record=record)

    def fitness_of(self, world: World) -> np.ndarray:
        """Per-robot fitness of a finished run (module docstring)."""
        return (world.coverage - self.collision_penalty * world.collisions
                - self.contact_penalty * world.contact_steps / max(world.t, 1))

    def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray:
        """Fitness per network (higher is better), averaged over the arenas of ``seed``.

        Deterministic in ``(networks, seed)``; one network's fitness does not depend on the
        rest of the population.
        """
        if len(networks) == 0:
            return np.zeros(0)
        t0 = time.perf_counter()
        world = self.run(networks, seed)
        fit = self.fitness_of(world).reshape(len(networks), self.n_arenas).mean(axis=1)
        self.last_seconds = time.perf_counter() - t0
        log.info("robot task: %d networks x %d arenas x %d steps in %.2f s", len(networks),
                 self.n_arenas, self.steps, self.last_seconds)
        return fit

    def info(self, network: Network, seed: int = 0) -> dict[str, Any]:
        """Fitness and per-arena coverage, collisions, contact steps and distance of one network."""
        world = self.run([network], seed)
        fit = self.fitness_of(world)
        eps = world.episodes()
        return {
            "task": self.name, "seed": seed, "steps": self.steps,
            "fitness": float(fit.mean()),
            "coverage": float(world.coverage.mean()),
            "collisions": float(world.collisions.mean()),
            "arenas": [{**e.summary(), "fitness": round(float(f), 4)} for e, f in zip(eps, fit, strict=True)],
        }



def random_robot_network(rng: np.random.Generator, task: RobotTask | None = None, hidden: int = 8,
                         synapses: int = 48) -> Network:
    """A random network on the robot's ports (for timing and tests; not a trained controller).

    ``hidden`` extra neurons (threshold 0..3, random leak) and ``synapses`` random synapses
    (weights −3..3, delays 1..3) between any neurons, drawn from ``rng``.
    """
    net = (task or RobotTask()).new_network()
    n0 = len(net.neurons)
    for h in range(hidden):
        net.add_neuron(n0 + h, threshold=int(rng.integers(0, 4)),
                       leak=str(rng.choice(["none", "full", "shift"])), leak_shift=2)
    ids = net.neuron_ids
    for _ in range(synapses):
        net.add_synapse(int(rng.choice(ids)), int(rng.choice(ids)), int(rng.integers(-3, 4)),
                        int(rng.integers(1, 4)))
    return net
