"""``spikeforge robot``: drive the simulated robot in closed loop (``bench robot`` is in
:mod:`spikeforge.toolchain.robot_bench`).

Where a spiking network runs is a *target*: a name in :data:`TARGETS` mapped to a factory
``(network, args) -> Backend`` (:class:`spikeforge.sim.robot.Backend`: ``reset()`` and
``step(events, steps)``). Only ``reference`` ships here; board targets (emulated, Verilator
virtual board, a serial port) register with :func:`register_target` and read their own
options from ``args``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.toolchain.ir import NetworkError
from spikeforge.toolchain.robot_bench import Timed
from spikeforge.toolchain.robot_train import evolved_network

from .common import UsageError, load_any

__all__ = ["register"]

log = logging.getLogger("spikeforge")

def _reference_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.sim.robot import ReferenceBackend

    return ReferenceBackend(network)


def _emulated_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.sim.robot_boards import emulated_backend

    return emulated_backend(network, getattr(args, "core", None) or "up5k")


def _vboard_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.sim.robot_boards import vboard_backend

    return vboard_backend(network, getattr(args, "core", None) or "up5k")


def _port_target(network: Any, args: argparse.Namespace) -> Any:
    from spikeforge.sim.robot_boards import port_backend

    if not getattr(args, "port", None):
        raise UsageError("--target port needs --port PORT (e.g. /dev/ttyUSB1 or socket://host:port)")
    return port_backend(network, args.port, baud=getattr(args, "baud", 3_000_000))


#: ``--target`` name → (factory(network, args) -> Backend, one-line help).
TARGETS: dict[str, tuple[Callable[[Any, argparse.Namespace], Any], str]] = {
    "reference": (_reference_target, "the bit-exact reference model (numpy)"),
    "emulated": (_emulated_target, "the emulated board (protocol + image model) on a pty"),
    "vboard": (_vboard_target, "the Verilator virtual board on a pty (built on first use)"),
    "port": (_port_target, "a real board (or any pyserial URL) at --port"),
}

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


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge robot``."""
    from spikeforge.sim.arena import arena_names

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


def _controller(args: argparse.Namespace) -> tuple[Any, str]:
    from spikeforge.sim.robot import Braitenberg, RandomWalk, SpikingController, spiking_braitenberg

    if args.network:
        net = load_any(args.network)
        factory, _ = TARGETS[args.target]
        try:
            ctrl = SpikingController(net, factory(net, args))
        except NetworkError as e:
            raise NetworkError(f"{args.network}: {e} (a robot network has 9 inputs, 4 outputs and "
                               "the codes of spikeforge.sim.robot.robot_io)") from None
        return ctrl, f"{Path(args.network).name} on {args.target}"
    name = args.controller or "braitenberg"
    if name == "random":
        return RandomWalk(), "random walk"
    if name == "braitenberg":
        return Braitenberg(), "braitenberg"
    if name == "evolved":
        net = evolved_network()
    else:
        net = spiking_braitenberg()
    factory, _ = TARGETS[args.target]
    return SpikingController(net, factory(net, args)), f"{name.replace('-', ' ')} on {args.target}"


def cmd_robot(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge robot``."""
    from spikeforge.sim.arena import ArenaError, load_arena, random_arena
    from spikeforge.sim.world import run_episode

    if args.steps < 1:
        raise UsageError(f"--steps = {args.steps} is out of range; allowed: an integer >= 1")
    if (args.controller in ("random", "braitenberg")) and args.target != "reference":
        raise UsageError(f"--target {args.target} runs spiking controllers; '{args.controller}' is plain Python")
    try:
        arena = load_arena(args.arena) if args.arena else random_arena(args.seed)
    except ArenaError as e:
        raise UsageError(str(e)) from None
    ctrl, label = _controller(args)
    timed = Timed(ctrl)
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
        from spikeforge.sim.robot_plot import save_trajectory

        save_trajectory(ep, args.plot, label)
        summary["plot"] = args.plot
    if args.gif:
        from tqdm import tqdm

        from spikeforge.sim.robot_plot import save_animation

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
