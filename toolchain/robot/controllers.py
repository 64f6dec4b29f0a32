"""Robot controllers: two plain-Python baselines, the robot's networks, and a spiking controller.

Controllers follow :class:`spikeforge.toolchain.robot.world.Controller`: ``reset(seed)``, then
``act(sensors) -> motors`` once per control step.

Baselines
    :class:`RandomWalk` ignores every sensor: it cruises forward and picks a new random turn
    rate now and then (a correlated random walk). :class:`Braitenberg` is a hand-written
    obstacle avoider: each wheel slows down for obstacles on the opposite side, an obstacle
    dead ahead spins it to the right, and a bump backs it off and turns it away for a few steps.

Networks
    :func:`robot_io` (the sensor encoder and motor decoder), :func:`new_robot_network` (the
    ports and codes only: a trainer's seed), :func:`spiking_braitenberg` (hand-built) and
    :func:`evolved_network` (the shipped evolved controller, ``robots/evolved.json``).

Spiking controller
    :class:`SpikingController` encodes the sensor vector into input spikes with the encoder
    recorded in the network (``network.metadata["io"]``, :mod:`spikeforge.toolchain.codec`),
    runs ``steps_per_control`` timesteps on a :class:`~spikeforge.toolchain.backends.Backend`
    (the reference model, an emulated, virtual or real board), and decodes the output spikes
    into the motor vector with the recorded decoder.
"""

from __future__ import annotations

import logging
from importlib import resources

import numpy as np

from spikeforge.toolchain.backends import Backend, OutputSpike, ReferenceBackend
from spikeforge.toolchain.codec import CountDecoder, RateEncoder, attach_io, io_of
from spikeforge.toolchain.ir import Network, NetworkError, load_network
from spikeforge.toolchain.reference import InputEvent

from .world import MOTOR_NAMES, N_MOTORS, N_SENSORS, SENSOR_NAMES

__all__ = [
    "DEFAULT_STEPS_PER_CONTROL",
    "Braitenberg",
    "RandomWalk",
    "SpikingController",
    "evolved_network",
    "new_robot_network",
    "robot_io",
    "spiking_braitenberg",
]

log = logging.getLogger(__name__)

DEFAULT_STEPS_PER_CONTROL = 8
SHIPPED = "robots/evolved.json"


# ----------------------------------------------------------------------------- baselines
class RandomWalk:
    """A correlated random walk that ignores the sensors.

    Drives forward at ``speed`` (fraction of full speed) and, with probability ``p_change``
    per control step, draws a new turn in ``[-turn, turn]`` (difference between the wheels,
    as a fraction of full speed).
    """

    def __init__(self, speed: float = 0.8, turn: float = 0.6, p_change: float = 0.1) -> None:
        self.speed, self.turn, self.p_change = speed, turn, p_change
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Restart the random stream from ``seed``."""
        self._rng = np.random.default_rng([seed, 0x3A1C])
        self._dturn = 0.0

    def act(self, sensors: np.ndarray) -> np.ndarray:
        """Motors for this step (the sensors are not read)."""
        if self._rng.random() < self.p_change:
            self._dturn = float(self._rng.uniform(-self.turn, self.turn))
        left, right = self.speed - self._dturn / 2, self.speed + self._dturn / 2
        return _wheels(left, right)


class Braitenberg:
    """A hand-written reactive obstacle avoider (Braitenberg's vehicle 3b) with a bump reflex.

    Each wheel's forward drive is ``cruise`` minus the proximity on the *opposite* side (the
    30° reading fully, the 60° one by half), so the robot veers away from the nearer side;
    the front reading brakes the right wheel and drives it backward (spin right). When both
    wheels would crawl slower than ``stall`` (obstacles close on both sides, where a pure
    Braitenberg vehicle stops dead) it turns on the spot for ``spin`` steps. After a bump it reverses for
    ``backoff`` steps, turning away from the bumped side.
    """

    def __init__(self, cruise: float = 1.0, backoff: int = 6, stall: float = 0.25, spin: int = 10) -> None:
        self.cruise, self.backoff, self.stall, self.spin = cruise, backoff, stall, spin
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Clear the bump reflex (the controller is deterministic; ``seed`` is unused)."""
        self._escape = 0
        self._escape_right = True
        self._spin = 0

    def act(self, sensors: np.ndarray) -> np.ndarray:
        """Motors for this step."""
        p = np.asarray(sensors, dtype=np.float64)
        l60, l30, front, r30, r60, bump_l, bump_r = p[:7]
        if bump_l or bump_r:
            self._escape = self.backoff
            self._escape_right = bool(bump_l >= bump_r)
        if self._escape > 0:
            self._escape -= 1
            # reverse, turning the front away from the bumped side; then turn on the spot
            if self._escape >= self.backoff // 2:
                return _wheels(-0.2, -1.0) if self._escape_right else _wheels(-1.0, -0.2)
            return _wheels(0.6, -0.6) if self._escape_right else _wheels(-0.6, 0.6)
        left = self.cruise - (r30 + 0.5 * r60)
        right = self.cruise - (l30 + 0.5 * l60) - 2.0 * front
        if max(left, right) < self.stall:
            # Boxed in on both sides (the classic Braitenberg deadlock): turn on the spot, long
            # enough (``spin`` steps) not to drive straight back into the same trap.
            self._spin = self.spin
        if self._spin > 0:
            self._spin -= 1
            return _wheels(0.6, -0.6)
        return _wheels(left, right)


def _wheels(left: float, right: float) -> np.ndarray:
    """Motor vector for signed wheel commands in [-1, 1]."""
    left, right = float(np.clip(left, -1, 1)), float(np.clip(right, -1, 1))
    return np.array([max(left, 0.0), max(-left, 0.0), max(right, 0.0), max(-right, 0.0)])


# ----------------------------------------------------------------------------- spiking
def robot_io(steps_per_control: int = DEFAULT_STEPS_PER_CONTROL) -> tuple[RateEncoder, CountDecoder]:
    """The robot's sensor encoding and motor decoding.

    Each of the 9 sensor values (in [0, 1]) is rate coded over the ``steps_per_control``
    timesteps of a control step (up to one spike per timestep, value 1); each of the 4 motor
    outputs is its spike count in those timesteps divided by ``steps_per_control``.
    """
    enc = RateEncoder(n_values=N_SENSORS, steps=steps_per_control, lo=0.0, hi=1.0, value=1)
    dec = CountDecoder(n_outputs=N_MOTORS, max_count=steps_per_control, lo=0.0, hi=1.0)
    return enc, dec


def new_robot_network(steps_per_control: int = DEFAULT_STEPS_PER_CONTROL, *,
                      input_threshold: int = 1, output_threshold: int = 1) -> Network:
    """A network with the robot's ports and codes and nothing else: the trainer's seed.

    Neurons 0–8 are the inputs (named as :data:`~spikeforge.toolchain.robot.world.SENSOR_NAMES`, full
    leak, so each fires on its own input spikes), 9–12 the outputs (named as
    :data:`~spikeforge.toolchain.robot.world.MOTOR_NAMES`, full leak); ``metadata["io"]`` holds
    :func:`robot_io`.
    """
    net = Network(metadata={"provenance": {"source": "spikeforge.toolchain.robot.controllers.new_robot_network"}})
    for k, name in enumerate(SENSOR_NAMES):
        net.add_neuron(k, threshold=input_threshold, leak="full", name=name)
        net.add_input(k, name)
    for k, name in enumerate(MOTOR_NAMES):
        nid = N_SENSORS + k
        net.add_neuron(nid, threshold=output_threshold, leak="full", name=name)
        net.add_output(nid, name)
    return attach_io(net, *robot_io(steps_per_control))


def spiking_braitenberg(steps_per_control: int = DEFAULT_STEPS_PER_CONTROL) -> Network:
    """A hand-built spiking obstacle avoider on the robot's ports (13 neurons, 16 synapses).

    Every input neuron relays its rate-coded sensor; the motor neurons (full leak, θ = 1)
    fire in a timestep when their summed input that timestep is ≥ 1. The bias input drives
    both forward motors every timestep; proximity on one side vetoes the *opposite* forward
    motor in the timesteps it spikes (so that wheel slows in proportion and the robot veers
    away); the front reading vetoes the right forward motor and drives the right backward one
    (spin right); a bump vetoes both forward motors and drives the backward motor on its own
    side more than the other (back off, turning away).
    """
    net = new_robot_network(steps_per_control)
    s = {name: k for k, name in enumerate(SENSOR_NAMES)}
    m = {name: N_SENSORS + k for k, name in enumerate(MOTOR_NAMES)}
    net.metadata["provenance"] = {"source": "spikeforge.toolchain.robot.controllers.spiking_braitenberg"}
    syn = [
        ("bias", "left_forward", 1), ("bias", "right_forward", 1),
        ("lidar_r30", "left_forward", -1), ("lidar_r60", "left_forward", -1),
        ("lidar_l30", "right_forward", -1), ("lidar_l60", "right_forward", -1),
        ("lidar_0", "right_forward", -2), ("lidar_0", "right_backward", 1),
        ("bump_left", "left_forward", -4), ("bump_left", "right_forward", -4),
        ("bump_left", "right_backward", 1), ("bump_left", "left_backward", 1),
        ("bump_right", "left_forward", -4), ("bump_right", "right_forward", -4),
        ("bump_right", "left_backward", 1), ("bump_right", "right_backward", 1),
    ]
    for pre, post, w in syn:
        net.add_synapse(s[pre], m[post], w, 1)
    return net


def evolved_network() -> Network:
    """The shipped evolved controller (package data ``robots/evolved.json``; its recipe:
    :mod:`spikeforge.toolchain.robot.train`)."""
    ref = resources.files(__package__).joinpath(SHIPPED)
    with resources.as_file(ref) as path:
        return load_network(path)


class SpikingController:
    """Drive the robot with a spiking network on a backend.

    Parameters
    ----------
    network
        A network with 9 inputs, 4 outputs and an encoder/decoder in ``metadata["io"]``
        (:func:`robot_io`; any rate-like encoder and a ``count`` decoder of 4 outputs work).
    backend
        Where it runs (default: :class:`ReferenceBackend` of ``network``).
    steps_per_control
        Timesteps per control step; must equal the recorded encoder's window (default: it).
    record
        Keep every input event and output spike with absolute times
        (:attr:`input_log`, :attr:`output_log`) to compare runs.
    """

    def __init__(self, network: Network, backend: Backend | None = None,
                 steps_per_control: int | None = None, record: bool = False) -> None:
        enc, dec = io_of(network)
        if enc.n_values != N_SENSORS:
            raise NetworkError(f"the network's {enc.kind} encoder codes {enc.n_values} values; "
                               f"the robot has {N_SENSORS} sensors ({', '.join(SENSOR_NAMES)})")
        if not isinstance(dec, CountDecoder) or dec.n_outputs != N_MOTORS:
            raise NetworkError(f"the network's {dec.kind} decoder reads {dec.n_outputs} outputs; the robot "
                               f"needs a 'count' decoder of {N_MOTORS} ({', '.join(MOTOR_NAMES)})")
        if steps_per_control is not None and steps_per_control != enc.steps:
            raise ValueError(f"steps_per_control = {steps_per_control} differs from the network's encoder "
                             f"window ({enc.steps}); drop the option or re-encode the network")
        self.network = network
        self.encoder, self.decoder = enc, dec
        self.steps = enc.steps
        self.backend = backend if backend is not None else ReferenceBackend(network)
        self.record = record
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Reset the backend (the network is deterministic; ``seed`` is unused)."""
        self.backend.reset()
        self._t = 0
        self.input_log: list[InputEvent] = []
        self.output_log: list[OutputSpike] = []

    def act(self, sensors: np.ndarray) -> np.ndarray:
        """Encode, run ``steps`` timesteps on the backend, decode."""
        events = self.encoder.encode(np.asarray(sensors, dtype=np.float64))
        spikes = self.backend.step(events, self.steps)
        raster = np.zeros((self.steps, N_MOTORS), dtype=bool)
        for k, dt in spikes:
            raster[dt, k] = True
        if self.record:
            self.input_log += self.encoder.shifted(events, self._t)
            self.output_log += [(k, dt + self._t) for k, dt in spikes]
        self._t += self.steps
        return np.asarray(self.decoder.decode(raster), dtype=np.float64)
