"""``spikeforge robot`` (drive the simulated robot in closed loop) and ``spikeforge bench robot``.

Argument wiring and printing only: the closed loop is :mod:`spikeforge.toolchain.robot.loop`,
the bench cases :mod:`spikeforge.toolchain.robot.bench`, and where a spiking network runs
(``--target``) a backend kind of :data:`spikeforge.toolchain.backends.BACKENDS`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .backends import BACKENDS
from .robot.arena import arena_names
from .robot.bench import BENCH_EPISODE
from .robot.bench import bench_robot as robot_bench_cases
from .robot.loop import CONTROLLERS, SPIKING_PREFIX, drive

__all__ = ["add_robot_parser", "bench_robot"]

log = logging.getLogger("spikeforge")

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
    rp.add_argument("--target", choices=sorted(BACKENDS), default="reference",
                    help="where a spiking controller runs: " + "; ".join(f"{k}: {h}" for k, (_, h) in sorted(BACKENDS.items())))
    rp.add_argument("--port", metavar="PORT", help="--target port: tty path or pyserial URL of the board")
    rp.add_argument("--baud", type=int, default=3_000_000, metavar="B", help="--target port: baud (default: 3000000)")
    rp.add_argument("--core", metavar="PRESET", default=None,
                    help="--target emulated/vboard: the board's core preset (default: up5k, the iCEBreaker's)")
    rp.add_argument("--plot", metavar="PNG", help="write the top-down trajectory plot here")
    rp.add_argument("--gif", metavar="GIF", help="write an animation of the run here (slower)")
    rp.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    rp.set_defaults(func=cmd_robot)


def cmd_robot(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge robot``."""
    from .cli import UsageError

    if args.steps < 1:
        raise UsageError(f"--steps = {args.steps} is out of range; allowed: an integer >= 1")
    if args.target == "port" and not args.port:
        raise UsageError("--target port needs --port PORT (e.g. /dev/ttyUSB1 or socket://host:port)")
    spec = f"{SPIKING_PREFIX}{args.network}" if args.network else (args.controller or "braitenberg")
    run = drive(spec, arena=args.arena, steps=args.steps, seed=args.seed, target=args.target, progress=True,
                config=args.core or "up5k", port=args.port, baud=args.baud)
    ep, label, summary = run.episode, run.label, run.summary
    if args.plot or args.gif:
        # imported here: matplotlib takes about a second, and the CLI imports this module at start-up
        from .robot.plot import save_animation, save_trajectory
    if args.plot:
        save_trajectory(ep, args.plot, label)
        summary["plot"] = args.plot
    if args.gif:
        from tqdm import tqdm

        with tqdm(desc="animation", unit="frame", disable=None, leave=False) as bar:
            def tick(i: int, n: int) -> None:
                bar.total = n
                bar.update(i - bar.n)

            save_animation(ep, args.gif, label, progress=tick)
        summary["gif"] = args.gif
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    arena = ep.arena
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
def bench_robot(args: argparse.Namespace) -> int:
    """``spikeforge bench robot``: one JSON line per case of :func:`spikeforge.toolchain.robot.bench.bench_robot`."""
    from .cli import machine_description

    machine = machine_description()
    steps = BENCH_EPISODE if args.steps == 1000 else args.steps  # 1000: the shared default
    for line in robot_bench_cases(steps, runs=args.runs, seed=args.seed):
        sys.stdout.write(json.dumps({**line, "machine": machine}) + "\n")
        sys.stdout.flush()
    return 0
