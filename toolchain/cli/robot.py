"""``spikeforge robot``: drive the simulated robot in closed loop (``bench robot`` is a case of
:mod:`.bench`).

Argument wiring and printing only: the closed loop is :mod:`spikeforge.toolchain.robot.loop`,
and where a spiking network runs (``--backend``) a kind of
:data:`spikeforge.toolchain.backends.BACKENDS`; ``--target`` is the board's core, as everywhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from spikeforge.toolchain.backends import BACKENDS
from spikeforge.toolchain.ir import NetworkError
from spikeforge.toolchain.robot.arena import arena_names
from spikeforge.toolchain.robot.loop import CONTROLLERS, SPIKING_PREFIX, drive

from .common import UsageError, add_target_option, deprecated_alias, target

__all__ = ["register"]

log = logging.getLogger("spikeforge")

_DESCRIPTION = """\
Drive the simulated robot (a differential-drive robot with NeoN's sensors: 5 LIDAR
readings at 30 degree steps, 2 bump switches, bias and random inputs; 4 motor outputs) in
closed loop for --steps control steps of 0.1 s, and print coverage (fraction of the arena's
free cells visited), collisions, distance and the control-step rate and latency.

The controller is a spiking network (--network: spikeforge JSON with the robot's encoder and
decoder in metadata["io"], as the robot task writes them), or a built-in one:
'random' (a random walk), 'braitenberg' (hand-written Python), 'spiking-braitenberg' (a
hand-built 13-neuron spiking network), 'evolved' (the shipped evolved network), run on
--backend. Each control step of a spiking controller encodes the
sensors into input spikes, runs the network for its encoder window on the target and decodes
the output spike counts into motor commands.

The arena is a JSON file, a shipped example by name (%s), or a
random arena drawn from --seed; --seed also seeds the robot's random input."""

_EPILOG = """\
examples:
  spikeforge robot --controller braitenberg --arena two-rooms --plot run.png
  spikeforge robot --network evolved.json --seed 3 --steps 1000 --gif run.gif
  spikeforge robot --controller spiking-braitenberg --backend reference --json
  spikeforge robot --controller evolved --backend emulated --steps 200
  spikeforge robot --controller evolved --backend vboard --target icebreaker:small --plot board.png
  spikeforge robot --network evolved.json --backend port --port /dev/ttyUSB1
  spikeforge bench robot                      # baselines on 10 unseen arenas"""


def register(sub: argparse._SubParsersAction) -> None:
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
    rp.add_argument("--backend", choices=sorted(BACKENDS), default="reference",
                    help="where a spiking controller runs: " + "; ".join(f"{k}: {h}" for k, (_, h) in sorted(BACKENDS.items())))
    rp.add_argument("--port", metavar="PORT", help="--backend port: tty path or pyserial URL of the board")
    rp.add_argument("--baud", type=int, default=3_000_000, metavar="B", help="--backend port: baud (default: 3000000)")
    add_target_option(rp, "icebreaker", "--backend emulated/vboard: the board's core", config_alias=False)
    deprecated_alias(rp, "--core", "target", "--target")
    rp.add_argument("--plot", metavar="PNG", help="write the top-down trajectory plot here")
    rp.add_argument("--gif", metavar="GIF", help="write an animation of the run here (slower)")
    rp.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    rp.set_defaults(func=cmd_robot)


def cmd_robot(args: argparse.Namespace) -> int:
    """Handler of ``spikeforge robot``."""
    if args.target in BACKENDS:  # the spelling before --backend: `--target emulated`
        log.warning("--target %s names a backend: use --backend %s (--target is the board's core)",
                    args.target, args.target)
        args.backend, args.target = args.target, "icebreaker"
    if args.steps < 1:
        raise UsageError(f"--steps = {args.steps} is out of range; allowed: an integer >= 1")
    if args.backend == "port" and not args.port:
        raise UsageError("--backend port needs --port PORT (e.g. /dev/ttyUSB1 or socket://host:port)")
    if args.controller in ("random", "braitenberg") and args.backend != "reference":
        raise UsageError(f"--backend {args.backend} runs spiking controllers; '{args.controller}' is plain Python")
    spec = f"{SPIKING_PREFIX}{args.network}" if args.network else (args.controller or "braitenberg")
    try:
        run = drive(spec, arena=args.arena, steps=args.steps, seed=args.seed, backend=args.backend, progress=True,
                    config=target(args).config, port=args.port, baud=args.baud)
    except ValueError as e:
        if isinstance(e, NetworkError):
            raise
        raise UsageError(str(e)) from None
    ep, label, summary = run.episode, run.label, run.summary
    if args.plot or args.gif:
        # imported here: matplotlib takes about a second, and the CLI imports this module at start-up
        from spikeforge.toolchain.robot.plot import save_animation, save_trajectory
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

