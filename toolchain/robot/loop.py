"""The robot's closed loop from a spec: a controller on a backend, an arena, one timed episode.

A *controller spec* names what drives the robot (:func:`make_controller`):

``random``
    a correlated random walk (:class:`~.controllers.RandomWalk`, plain Python);
``braitenberg``
    the hand-written obstacle avoider (:class:`~.controllers.Braitenberg`, plain Python);
``spiking-braitenberg``
    the hand-built 13-neuron spiking network (:func:`~.controllers.spiking_braitenberg`);
``evolved``
    the shipped evolved network (:func:`~.controllers.evolved_network`);
``spiking:PATH``
    a spiking network file (spikeforge or TENNLab JSON) with the robot's codes in ``metadata["io"]``.

A spiking controller runs on a backend named as in :data:`spikeforge.toolchain.backends.BACKENDS`
(``reference``, ``emulated``, ``vboard``, ``port``). :func:`drive` runs one episode with it
and returns the episode and a JSON-ready summary: the metrics, the control-step rate and
latency (:class:`Recorder`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.toolchain.backends import open_backend
from spikeforge.toolchain.ir import NetworkError
from spikeforge.toolchain.tennlab import load_any

from .arena import Arena, load_arena, random_arena
from .controllers import (
    Braitenberg,
    RandomWalk,
    SpikingController,
    evolved_network,
    spiking_braitenberg,
)
from .world import Controller, Episode, run_episode

__all__ = ["CONTROLLERS", "SPIKING_PREFIX", "Drive", "Recorder", "close_controller", "drive", "make_controller",
           "robot_arena"]

log = logging.getLogger(__name__)

#: The built-in controller specs (besides ``spiking:PATH``).
CONTROLLERS = ("random", "braitenberg", "spiking-braitenberg", "evolved")
SPIKING_PREFIX = "spiking:"


class Recorder:
    """A controller wrapper that records the motor vector and the wall time of every step.

    Attributes
    ----------
    inner
        The wrapped controller.
    motors
        The motor vector of every control step since the last ``reset``.
    seconds
        The wall seconds of every ``act`` (the control-step latency).
    """

    def __init__(self, inner: Controller) -> None:
        self.inner = inner
        self.motors: list[list[float]] = []
        self.seconds: list[float] = []

    def reset(self, seed: int) -> None:
        """Reset the controller and forget the records."""
        self.inner.reset(seed)
        self.motors, self.seconds = [], []

    def act(self, sensors: np.ndarray) -> np.ndarray:
        """The inner controller's motors, recorded and timed."""
        t0 = time.perf_counter()
        m = self.inner.act(sensors)
        self.seconds.append(time.perf_counter() - t0)
        self.motors.append(m.tolist())
        return m

    def latency_ms(self) -> tuple[float, float]:
        """Mean and 95th percentile of the control-step latency, in milliseconds."""
        lat = np.array(self.seconds) * 1e3
        return float(lat.mean()), float(np.percentile(lat, 95))


def make_controller(spec: str = "braitenberg", backend: str = "reference",
                    **backend_options: Any) -> tuple[Controller, str]:
    """The controller a spec names (module docstring) and a label for reports.

    Parameters
    ----------
    spec
        A built-in name (:data:`CONTROLLERS`) or ``spiking:PATH``.
    backend
        The backend kind a spiking controller runs on (``open_backend(backend, …)``).
    **backend_options
        Options of :func:`~spikeforge.toolchain.backends.open_backend`.

    Returns
    -------
    controller, label
        A spiking controller owns its backend: :func:`close_controller` stops it.

    Raises
    ------
    ValueError
        For an unknown spec, or a plain-Python controller on a backend other than ``reference``.
    NetworkError
        When the network is not a robot network (9 inputs, 4 outputs, the robot's codes).
    """
    if spec in ("random", "braitenberg"):
        if backend != "reference":
            raise ValueError(f"backend {backend!r} runs spiking controllers; {spec!r} is plain Python")
        return (RandomWalk(), "random walk") if spec == "random" else (Braitenberg(), "braitenberg")
    if spec == "evolved":
        net, label, origin = evolved_network(), "evolved", spec
    elif spec == "spiking-braitenberg":
        net, label, origin = spiking_braitenberg(), "spiking braitenberg", spec
    elif spec.startswith(SPIKING_PREFIX):
        origin = spec.removeprefix(SPIKING_PREFIX)
        net, label = load_any(origin), Path(origin).name
    else:
        raise ValueError(f"controller {spec!r} is unknown; allowed: {', '.join(CONTROLLERS)} or "
                         f"{SPIKING_PREFIX}PATH (a network JSON file)")
    board = open_backend(backend, net, **backend_options)
    try:
        ctrl = SpikingController(net, board)
    except NetworkError as e:
        close_controller(board)
        raise NetworkError(f"{origin}: {e} (a robot network has 9 inputs, 4 outputs and the codes of "
                           "spikeforge.toolchain.robot.controllers.robot_io)") from None
    except BaseException:
        close_controller(board)
        raise
    return ctrl, f"{label} on {backend}"


def close_controller(controller: Any) -> None:
    """Stop what a controller (or a backend) started: its board, its serial port (if any)."""
    backend = getattr(controller, "backend", controller)
    close = getattr(backend, "close", None)
    if close is not None:
        close()


def robot_arena(spec: str | None, seed: int = 0) -> Arena:
    """A shipped arena by name, an arena JSON file, or (``spec`` None) the random arena of ``seed``."""
    return load_arena(spec) if spec else random_arena(seed)


@dataclass
class Drive:
    """One closed-loop episode (:func:`drive`).

    Attributes
    ----------
    episode
        The episode (trajectory, metrics).
    label
        What drove it (``"evolved on vboard"``).
    summary
        ``controller``, the episode's metrics, ``seed``, ``control_steps_per_s``,
        ``latency_ms_mean``, ``latency_ms_p95``.
    """

    episode: Episode
    label: str
    summary: dict[str, Any]


def drive(spec: str = "braitenberg", *, arena: str | Arena | None = None, steps: int = 600, seed: int = 0,
          backend: str = "reference", progress: bool = False, **backend_options: Any) -> Drive:
    """Drive the robot with the controller ``spec`` on ``backend`` for ``steps`` control steps.

    Parameters
    ----------
    spec, backend, backend_options
        As :func:`make_controller`; the backend is closed when the episode ends.
    arena
        An :class:`Arena`, a shipped arena's name, an arena file, or None: the random arena
        of ``seed``.
    steps
        Control steps (0.1 s each).
    seed
        The random arena's seed and the episode's random-input seed.
    progress
        Show the episode's progress bar.
    """
    if steps < 1:
        raise ValueError(f"steps = {steps} is out of range; allowed: an integer >= 1")
    where = arena if isinstance(arena, Arena) else robot_arena(arena, seed)
    ctrl, label = make_controller(spec, backend, **backend_options)
    rec = Recorder(ctrl)
    try:
        ep = run_episode(rec, where, steps=steps, seed=seed, progress=progress)
    finally:
        close_controller(ctrl)
    mean, p95 = rec.latency_ms()
    summary: dict[str, Any] = {
        "controller": label, **ep.summary(), "seed": seed,
        "control_steps_per_s": round(ep.steps / ep.seconds, 1) if ep.seconds > 0 else None,
        "latency_ms_mean": round(mean, 4), "latency_ms_p95": round(p95, 4),
    }
    return Drive(ep, label, summary)
