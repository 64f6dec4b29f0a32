"""``spikeforge robot`` (drive the simulated robot in closed loop) and ``spikeforge bench robot``.

Where a spiking network runs is a *target*: a name in :data:`TARGETS` mapped to a factory
``(network, args) -> Backend`` (:class:`spikeforge.toolchain.robot.controllers.Backend`: ``reset()`` and
``step(events, steps)``). Only ``reference`` ships here; board targets (emulated, Verilator
virtual board, a serial port) register with :func:`register_target` and read their own
options from ``args``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BENCH_CONTROLLERS", "TARGETS", "add_robot_parser", "bench_robot", "register_target"]

log = logging.getLogger("spikeforge")

#: ``--target`` name → (factory(network, args) -> Backend, one-line help).
TARGETS: dict[str, tuple[Callable[[Any, argparse.Namespace], Any], str]] = {}


def register_target(name: str, factory: Callable[[Any, argparse.Namespace], Any], help: str) -> None:
    """Add a ``spikeforge robot --target NAME`` (a factory ``(network, args) -> Backend``)."""
    TARGETS[name] = (factory, help)


def _reference_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.toolchain.robot.controllers import ReferenceBackend

    return ReferenceBackend(network)


register_target("reference", _reference_target, "the bit-exact reference model (numpy)")


def _emulated_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.toolchain.backends import emulated_backend

    return emulated_backend(network, getattr(args, "core", None) or "up5k")


def _vboard_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.toolchain.backends import vboard_backend

    return vboard_backend(network, getattr(args, "core", None) or "up5k")


def _port_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.toolchain.backends import port_backend

    from .cli import UsageError

    if not getattr(args, "port", None):
        raise UsageError("--target port needs --port PORT (e.g. /dev/ttyUSB1 or socket://host:port)")
    return port_backend(network, args.port, baud=getattr(args, "baud", 3_000_000))


register_target("emulated", _emulated_target, "the emulated board (protocol + image model) on a pty")
register_target("vboard", _vboard_target, "the Verilator virtual board on a pty (built on first use)")
register_target("port", _port_target, "a real board (or any pyserial URL) at --port")

CONTROLLERS = ("random", "braitenberg", "spiking-braitenberg", "evolved")

_DESCRIPTION = """\
Drive the simulated robot (a differential-drive robot with NeoN's sensors: 5 LIDAR
readings at 30 degree steps, 2 bump switches, bias and random inputs; 4 motor outputs) in
closed loop for --steps control steps of 0.1 s, and print coverage (fraction of the arena's
free cells visited), collisions, distance and the control-step rate and latency.

The controller is a spiking network (--network: spikeforge JSON with the robot's encoder and
decoder in metadata["io"], as the robot task writes them) run on --target, or a built-in one:
'random' (a random walk), 'braitenberg' (hand-written Python), 'spiking-braitenberg' (a
hand-built 13-neuron spiking network), 'evolved' (the shipped evolved network). Each control step of a spiking controller encodes the
sensors into input spikes, runs the network for its encoder window on the target and decodes
the output spike counts into motor commands.

The arena is a JSON file, a shipped example by name (%s), or a
random arena drawn from --seed; --seed also seeds the robot's random input."""

_EPILOG = """\
examples:
  spikeforge robot --controller braitenberg --arena two-rooms --plot run.png
  spikeforge robot --network evolved.json --seed 3 --steps 1000 --gif run.gif
  spikeforge robot --controller spiking-braitenberg --target reference --json
  spikeforge robot --controller evolved --target emulated --steps 200
  spikeforge robot --controller evolved --target vboard --plot board.png
  spikeforge robot --network evolved.json --target port --port /dev/ttyUSB1
  spikeforge bench robot                      # baselines on 10 unseen arenas"""


def add_robot_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge robot``."""
    from spikeforge.toolchain.robot.arena import arena_names

    rp = sub.add_parser("robot", help="drive the simulated robot in closed loop (coverage, collisions)",
                        description=_DESCRIPTION % ", ".join(arena_names()), epilog=_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    who = rp.add_mutually_exclusive_group()
    who.add_argument("--network", metavar="NETWORK", help="spiking controller: a network JSON file")
    who.add_argument("--controller", choices=CONTROLLERS, default=None,
                     help="a built-in controller (default: braitenberg)")
    rp.add_argument("--arena", metavar="FILE|NAME", help="arena JSON file or shipped arena name "
                    "(default: a random arena from --seed)")
    rp.add_argument("--seed", type=int, default=0, metavar="S",
                    help="random arena and random-input seed (default: 0)")
    rp.add_argument("--steps", type=int, default=600, metavar="N", help="control steps (default: 600 = 60 s)")
    rp.add_argument("--target", choices=sorted(TARGETS), default="reference",
                    help="where a spiking controller runs: " + "; ".join(f"{k}: {h}" for k, (_, h) in sorted(TARGETS.items())))
    rp.add_argument("--port", metavar="PORT", help="--target port: tty path or pyserial URL of the board")
    rp.add_argument("--baud", type=int, default=3_000_000, metavar="B", help="--target port: baud (default: 3000000)")
    rp.add_argument("--core", metavar="PRESET", default=None,
                    help="--target emulated/vboard: the board's core preset (default: up5k, the iCEBreaker's)")
    rp.add_argument("--plot", metavar="PNG", help="write the top-down trajectory plot here")
    rp.add_argument("--gif", metavar="GIF", help="write an animation of the run here (slower)")
    rp.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    rp.set_defaults(func=cmd_robot)


class _Timed:
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


def _controller(args: argparse.Namespace) -> tuple[Any, str]:
    from spikeforge.toolchain.robot.controllers import (
        Braitenberg,
        RandomWalk,
        SpikingController,
        spiking_braitenberg,
    )

    if args.network:
        from .cli import load_any
        from .ir import NetworkError

        net = load_any(args.network)
        factory, _ = TARGETS[args.target]
        try:
            ctrl = SpikingController(net, factory(net, args))
        except NetworkError as e:
            raise NetworkError(f"{args.network}: {e} (a robot network has 9 inputs, 4 outputs and "
                               "the codes of spikeforge.toolchain.robot.controllers.robot_io)") from None
        return ctrl, f"{Path(args.network).name} on {args.target}"
    name = args.controller or "braitenberg"
    if name == "random":
        return RandomWalk(), "random walk"
    if name == "braitenberg":
        return Braitenberg(), "braitenberg"
    if name == "evolved":
        from .robot.train import evolved_network

        net = evolved_network()
    else:
        net = spiking_braitenberg()
    factory, _ = TARGETS[args.target]
    return SpikingController(net, factory(net, args)), f"{name.replace('-', ' ')} on {args.target}"


def cmd_robot(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge robot``."""
    from spikeforge.toolchain.robot.arena import ArenaError, load_arena, random_arena
    from spikeforge.toolchain.robot.world import run_episode

    from .cli import UsageError

    if args.steps < 1:
        raise UsageError(f"--steps = {args.steps} is out of range; allowed: an integer >= 1")
    if (args.controller in ("random", "braitenberg")) and args.target != "reference":
        raise UsageError(f"--target {args.target} runs spiking controllers; '{args.controller}' is plain Python")
    try:
        arena = load_arena(args.arena) if args.arena else random_arena(args.seed)
    except ArenaError as e:
        raise UsageError(str(e)) from None
    ctrl, label = _controller(args)
    timed = _Timed(ctrl)
    try:
        ep = run_episode(timed, arena, steps=args.steps, seed=args.seed, progress=True)
    finally:
        close = getattr(getattr(ctrl, "backend", None), "close", None)
        if close is not None:
            close()
    lat = np.array(timed.seconds) * 1e3
    summary: dict[str, Any] = {
        "controller": label, **ep.summary(), "seed": args.seed,
        "control_steps_per_s": round(ep.steps / ep.seconds, 1) if ep.seconds > 0 else None,
        "latency_ms_mean": round(float(lat.mean()), 4), "latency_ms_p95": round(float(np.percentile(lat, 95)), 4),
    }
    if args.plot:
        from spikeforge.toolchain.robot.plot import save_trajectory

        save_trajectory(ep, args.plot, label)
        summary["plot"] = args.plot
    if args.gif:
        from tqdm import tqdm

        from spikeforge.toolchain.robot.plot import save_animation

        with tqdm(desc="animation", unit="frame", disable=None, leave=False) as bar:
            def tick(i: int, n: int) -> None:
                bar.total = n
                bar.update(i - bar.n)

            save_animation(ep, args.gif, label, progress=tick)
        summary["gif"] = args.gif
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    out = [
        f"controller: {label}",
        f"arena: {arena.name} ({arena.width:g} x {arena.height:g} m), {ep.steps} control steps "
        f"({ep.steps * 0.1:.0f} s), seed {args.seed}",
        f"coverage: {ep.coverage:.1%} of the free cells",
        f"collisions: {ep.collisions} ({ep.contact_steps} steps in contact)",
        f"distance: {ep.distance:.2f} m",
        f"control steps/s: {summary['control_steps_per_s']} (latency mean {summary['latency_ms_mean']:.3f} ms, "
        f"p95 {summary['latency_ms_p95']:.3f} ms)",
    ]
    out += [f"{k}: {summary[k]}" for k in ("plot", "gif") if k in summary]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


# ----------------------------------------------------------------------------- bench
def _bench_controllers() -> dict[str, Callable[[], Any]]:
    from spikeforge.toolchain.robot.controllers import (
        Braitenberg,
        RandomWalk,
        SpikingController,
        spiking_braitenberg,
    )

    return {
        "random": RandomWalk,
        "braitenberg": Braitenberg,
        "spiking-braitenberg@reference": lambda: SpikingController(spiking_braitenberg()),
    }


def _evolved_controller() -> Any:
    from spikeforge.toolchain.robot.controllers import SpikingController

    from .robot.train import evolved_network

    return SpikingController(evolved_network())


#: Extra bench controllers: name → factory. ``evolved@reference`` is the shipped evolved
#: controller (``spikeforge/toolchain/robot/robots/evolved.json``) on the reference model.
BENCH_CONTROLLERS: dict[str, Callable[[], Any]] = {"evolved@reference": _evolved_controller}

#: Targets whose control steps/s ``bench robot`` measures (the evolved controller on each).
BENCH_TARGETS = ("reference", "emulated", "vboard")
BENCH_TARGET_STEPS = 100

BENCH_ARENAS = 10
BENCH_EPISODE = 600


def bench_robot(args: argparse.Namespace) -> int:
    """``spikeforge bench robot``: one JSON line per controller, then the task's evaluations/s.

    Each controller drives 600 control steps in each of the 10 unseen test arenas
    (:func:`spikeforge.toolchain.robot.task.test_arenas`); the line holds mean coverage, collisions
    and contact steps, per-arena values, and control steps per second. Then the evolved
    controller's control steps/s and latency on each target (:func:`_bench_targets`: reference,
    emulated board, Verilator virtual board), the batched world
    alone (256 robots, constant motors: robot steps per second) and
    :meth:`RobotTask.evaluate` on a population of random robot networks (evaluations/s).
    """
    from tqdm import tqdm

    from spikeforge.toolchain.robot.task import RobotTask, random_robot_network, test_arenas
    from spikeforge.toolchain.robot.world import World, run_episode

    from .cli import machine_description

    machine = machine_description()
    steps = BENCH_EPISODE if args.steps == 1000 else args.steps  # 1000: the shared default
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
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
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
    sys.stdout.write(json.dumps({
        "bench": "robot", "case": "world_batch", "robots": n_rob, "steps": w_steps, "seconds": round(secs, 3),
        "robot_steps_per_s": round(n_rob * w_steps / secs), "machine": machine,
    }) + "\n")
    for line in _bench_targets(arenas[0], min(steps, BENCH_TARGET_STEPS), machine):
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    pop = max(1, min(args.runs, 256))
    task = RobotTask(steps=min(steps, 200))
    nets = [random_robot_network(np.random.default_rng([args.seed, k]), task) for k in range(pop)]
    t0 = time.perf_counter()
    task.evaluate(nets, seed=args.seed)
    secs = time.perf_counter() - t0
    robot_steps = pop * task.n_arenas * task.steps
    sys.stdout.write(json.dumps({
        "bench": "robot", "case": "task_evaluate", "population": pop, "arenas": task.n_arenas,
        "steps": task.steps, "seconds": round(secs, 3),
        "evaluations_per_s": round(pop / secs, 2), "robot_steps_per_s": round(robot_steps / secs),
        "machine": machine,
    }) + "\n")
    return 0



def _bench_targets(arena: Any, steps: int, machine: dict[str, Any]) -> list[dict[str, Any]]:
    """Control steps/s of the evolved controller on each of :data:`BENCH_TARGETS`.

    One episode of ``steps`` control steps in ``arena`` per target, its trajectory checked
    against the reference model's; the board targets are the ``up5k`` core (the emulated
    board in its own process, the Verilator virtual board), each over a real pty. A target
    that cannot start (e.g. no Verilator) gets a line with its ``error``.
    """
    from spikeforge.toolchain.robot.controllers import ReferenceBackend, SpikingController
    from spikeforge.toolchain.robot.world import run_episode

    from .robot.train import evolved_network

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
                from spikeforge.toolchain.backends import emulated_backend, vboard_backend

                backend = (emulated_backend if target == "emulated" else vboard_backend)(net, "up5k")
            line["open_seconds"] = round(time.perf_counter() - t0, 2)
            timed = _Timed(SpikingController(net, backend))
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
