"""``spikeforge deploy``, ``run``, ``flash`` and ``bench link``: the host side of a board.

Kept apart from :mod:`spikeforge.toolchain.cli`; heavy imports (pyserial, Amaranth) happen in
the handlers. The library is :mod:`spikeforge.toolchain.deploy`; the protocol
:mod:`spikeforge.firmware.protocol`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "FLASH_TOOLS",
    "add_deploy_parsers",
    "add_emulated_options",
    "bench_link",
    "flash_command",
    "serve_emulated",
]

log = logging.getLogger("spikeforge")

_PORT_HELP = ("serial port: a tty (/dev/ttyUSB1), a pty path printed by 'spikeforge board-sim', or a "
              "pyserial URL (socket://127.0.0.1:7000)")


def _add_link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", required=True, metavar="PORT", help=_PORT_HELP)
    p.add_argument("--baud", type=int, default=3_000_000, metavar="B",
                   help="baud of a real serial port (default: 3000000; ignored by ptys and sockets)")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds without a reply before a request is re-sent (default: 1.0)")
    p.add_argument("--retries", type=int, default=8, metavar="N",
                   help="re-sends without progress before giving up (default: 8)")


def _open(args: argparse.Namespace) -> Any:
    from .deploy import Device

    if args.timeout <= 0:
        raise ValueError(f"--timeout {args.timeout} is out of range; allowed: seconds > 0")
    if args.baud <= 0:
        raise ValueError(f"--baud {args.baud} is out of range; allowed: a positive integer")
    return Device.open(args.port, baud=args.baud, timeout=args.timeout, retries=args.retries)


def _image_or_network(path: str, fmt: str, cfg: Any) -> tuple[Any, Any]:
    """``(image, network or None)`` from a core image file or a network file lowered onto ``cfg``."""
    from spikeforge.hdl.image import IMAGE_FORMAT, CoreImage, ImageError, lower

    from .cli import load_any
    from .ir import read_json_file

    doc = read_json_file(Path(path))
    if isinstance(doc, dict) and doc.get("format") == IMAGE_FORMAT:
        try:
            return CoreImage.from_dict(doc), None
        except ImageError as e:
            raise ValueError(f"{path}: {e}") from None
    net = load_any(path, fmt)
    try:
        return lower(net, cfg), net
    except ImageError as e:
        raise ValueError(f"{path}: does not fit the board's core {cfg.name!r}: {e}") from None


# ----------------------------------------------------------------------------- deploy
_DEPLOY_DESCRIPTION = """\
Load a core image onto a board over its serial port. The board's IDENTIFY reply names its core
configuration; an image built for another core is refused (both are named) before anything is
sent. The load is pipelined (several frames in flight) and runs near the line rate; every frame
is CRC-checked, acknowledged and, if lost, re-sent without ever being applied twice.

IMAGE is a core image (spikeforge image NET --config PRESET -o IMAGE), or a network file,
which is then lowered onto the board's core first."""

_DEPLOY_EPILOG = """\
examples:
  spikeforge image net.json --config up5k -o net.image.json
  spikeforge deploy net.image.json --port /dev/ttyUSB1
  spikeforge board-sim --config tiny --emulated &          # prints a pty path, e.g. /dev/pts/5
  spikeforge deploy net.json --port /dev/pts/5 --json"""


def _cmd_deploy(args: argparse.Namespace) -> int:
    with _open(args) as dev:
        img, _ = _image_or_network(args.image, args.format, dev.config)
        rep = dev.load(img, progress=sys.stderr.isatty())
        doc = {"port": args.port, "core": dev.config.name, "beats": rep.beats, "frames": rep.frames,
               "payload_bytes": rep.payload_bytes, "wire_bytes": rep.wire_bytes,
               "seconds": round(rep.seconds, 4), "baud": rep.baud,
               "payload_fraction": round(rep.payload_fraction, 4), "link": dev.stats.as_dict()}
    if args.json:
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        sys.stdout.write(f"loaded {args.image} onto core '{doc['core']}' at {args.port}: {rep.beats} beats in "
                         f"{rep.frames} frames, {rep.seconds:.3f} s ({100 * rep.payload_fraction:.0f} % of "
                         f"{rep.baud} baud)\n")
    return 0


# ----------------------------------------------------------------------------- run
_RUN_DESCRIPTION = """\
Run a network on a board and report its spikes exactly as 'spikeforge simulate' does (same
text summary; with --json the same {"fire_counts": ..., "spikes": ...} document), so the two
can be compared byte for byte.

NETWORK is the network (spikeforge or TENNLab JSON, lowered onto the board's core) or a core
image. The board keeps no port map, so run needs it; by default it is (re)loaded first
(--no-load skips that when 'spikeforge deploy' already loaded it). The run starts from a RESET
(timestep 0); inputs go to the board in one STEP frame per stretch of steps."""

_RUN_EPILOG = """\
examples:
  echo '[[0, 0, 2], [1, 5, 2]]' > in.json
  spikeforge run net.json --port /dev/ttyUSB1 --inputs in.json --steps 100
  spikeforge run net.json --port /dev/pts/5 --inputs in.json --steps 100 --json > board.json
  spikeforge simulate net.json --inputs in.json --steps 100 --json > ref.json
  cmp board.json ref.json"""


def _cmd_run(args: argparse.Namespace) -> int:
    from .cli import _load_inputs, _summary

    if args.steps < 0:
        raise ValueError(f"--steps = {args.steps} is out of range; allowed: an integer >= 0")
    if args.network is None:
        raise ValueError("run needs the NETWORK (or core image) that is on the board: the board keeps no "
                         "port map; e.g. spikeforge run net.json --port PORT --inputs in.json --steps 100")
    inputs = _load_inputs(args.inputs) if args.inputs else []
    with _open(args) as dev:
        img, net = _image_or_network(args.network, args.format, dev.config)
        if args.no_load:
            img.check_config(dev.config)
            dev.image = img
        else:
            dev.load(img, progress=sys.stderr.isatty())
        t0 = time.perf_counter()
        try:
            res = dev.simulate(inputs, args.steps)
        except ValueError as e:  # inputs the image cannot take (index, time, value)
            raise ValueError(f"{args.inputs}: {e}") from None
        log.info("ran %d steps on the board in %.3f s", args.steps, time.perf_counter() - t0)
    if args.json:
        doc = {"fire_counts": {str(k): v for k, v in res.fire_counts.items()},
               "spikes": [[i, t] for i, t in res.spikes]}
        sys.stdout.write(json.dumps(doc) + "\n")
    elif net is not None:
        sys.stdout.write(_summary(net, res))
    else:
        sys.stdout.write(f"steps: {res.steps}\nspikes: {len(res.spike_times)}\n")
        counts = res.fire_counts
        for name, slot in zip(img.output_names, img.outputs, strict=True):
            sys.stdout.write(f"  {name}  neuron {img.neuron_ids[slot]}: {counts[img.neuron_ids[slot]]}\n")
    return 0


# ----------------------------------------------------------------------------- flash
#: Programmer invocations per board: ``(tool, args before the file, SRAM-only args)``.
FLASH_TOOLS: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "icebreaker": [("openFPGALoader", ["-b", "icebreaker", "-f"], ["-b", "icebreaker"]),
                   ("iceprog", [], ["-S"])],
    "ulx3s-85f": [("openFPGALoader", ["-b", "ulx3s", "-f"], ["-b", "ulx3s"])],
}
_BITSTREAM_SUFFIX = {"icebreaker": ".bin", "ulx3s-85f": ".bit"}

_INSTALL_HINT = (
    "install openFPGALoader (Debian/Ubuntu: 'sudo apt install openfpgaloader'; macOS: 'brew install "
    "openfpgaloader'; others: https://trabucayre.github.io/openFPGALoader/) {extra}and make sure it is on PATH"
)


def flash_command(bitstream: str | Path, board: str, **kw: Any) -> list[str]:
    """See :func:`spikeforge.firmware.boards.flash_command`."""
    from spikeforge.firmware.boards import flash_command as f

    return f(bitstream, board, **kw)


_FLASH_DESCRIPTION = """\
Write a bitstream to a board with openFPGALoader (iCEBreaker, ULX3S) or iceprog (iCEBreaker),
whichever is installed. By default the board's SPI flash is written (the design survives
power-off); --sram loads it into the FPGA only. spikeforge does not ship these programmers
(they need USB access): when none is found the command says how to install one. --dry-run
prints the command instead of running it."""

_FLASH_EPILOG = """\
examples:
  spikeforge build --board icebreaker                      # prints the bitstream path
  spikeforge flash build/.../top.bin --board icebreaker
  spikeforge flash top.bit --board ulx3s-85f --sram --dry-run"""


def _cmd_flash(args: argparse.Namespace) -> int:
    cmd = flash_command(args.bitstream, args.board, tool=args.tool, sram=args.sram)
    if args.dry_run:
        sys.stdout.write(shlex.join(cmd) + "\n")
        return 0
    if not Path(args.bitstream).is_file():
        raise ValueError(f"{args.bitstream}: no such bitstream file (spikeforge build --board {args.board})")
    if shutil.which(cmd[0]) is None:
        tools = " or ".join(o[0] for o in FLASH_TOOLS[args.board])
        extra = "or iceprog ('sudo apt install fpga-icestorm') " if args.board == "icebreaker" else ""
        raise FileNotFoundError(
            f"no programmer found: {tools} is not on PATH; " + _INSTALL_HINT.format(extra=extra)
            + f". To see the command: spikeforge flash {args.bitstream} --board {args.board} --dry-run"
        )
    log.info("running: %s", shlex.join(cmd))
    try:
        done = subprocess.run(cmd, timeout=args.tool_timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd[0]} did not finish within {args.tool_timeout:g} s (is the board connected?)") from None
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed with exit code {done.returncode} (its output is above)")
    sys.stdout.write(f"flashed {args.bitstream} onto {args.board} with {Path(cmd[0]).name}\n")
    return 0


# ----------------------------------------------------------------------------- the emulated board
def add_emulated_options(p: argparse.ArgumentParser) -> None:
    """Add ``--emulated`` (and its ``--rx-frames``) to the ``board-sim`` parser."""
    p.add_argument("--emulated", action="store_true",
                   help="serve the emulated board (the protocol in Python on the image-level model: starts "
                        "at once, no Verilator) instead of the RTL; the line rate is modelled at --baud")
    p.add_argument("--rx-frames", type=int, default=4, metavar="N", help=argparse.SUPPRESS)


def serve_emulated(args: argparse.Namespace, cfg: Any) -> int:
    """``spikeforge board-sim --emulated``: serve an emulated board until Ctrl-C / SIGTERM."""
    from spikeforge.sim.emuboard import serve

    from .cli_board import serve_until_stopped

    port = "pty" if args.tcp is None else f"tcp:{args.tcp}"
    board = serve(cfg, port=port, baud=args.baud, rx_frames=args.rx_frames)

    def final() -> dict[str, Any]:
        st = board.board.stats
        return {"emulated_board": {
            "frames_ok": st.frames_ok, "frames_bad": st.frames_bad, "duplicates": st.duplicates,
            "rejected": st.rejected, "overflows": st.overflows, "executed": len(st.executed)}}

    with board:
        where = board.path if board.path else f"127.0.0.1:{board.port}"
        serve_until_stopped(
            f"emulated board: core '{cfg.name}', {args.baud} baud (modelled)\n{where}\n"
            f"connect with: Device.open({board.url!r}); Ctrl-C stops\n",
            final,
        )
    return 0


# ----------------------------------------------------------------------------- bench link
def _bench_network(cfg: Any, seed: int) -> tuple[Any, Any]:
    """A network that fills a core's synapse table (the load figure), and an image of it."""
    import numpy as np

    from spikeforge.hdl.image import lower

    from .ir import Network

    rng = np.random.default_rng(seed)
    n = cfg.n_neurons
    m = min(cfg.n_synapses, n * 24)
    net = Network()
    for i in range(n):
        net.add_neuron(i, threshold=int(rng.integers(4, 12)), v_min=-16)
    pre, post = rng.integers(0, n, m), rng.integers(0, n, m)
    w = rng.integers(-3, 4, m)
    d = rng.integers(1, cfg.max_delay + 1, m)
    for a, b, c, e in zip(pre.tolist(), post.tolist(), w.tolist(), d.tolist(), strict=True):
        net.add_synapse(a, b, c, e)
    for i in range(min(8, n)):
        net.add_input(i)
    for i in range(n - min(8, n), n):
        net.add_output(i)
    return net, lower(net, cfg)


def _line(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def _bench_board(url: str, name: str, cfg: Any, baud: int, net: Any, img: Any, control_steps: int,
                 steps_per_control: int, extra: dict[str, Any], seconds_of: Any = None) -> None:
    """Load throughput and closed-loop latency lines for one board."""
    import numpy as np

    from .deploy import Device
    from .reference import simulate

    with Device.open(url, timeout=5.0) as dev:
        # best of 3 in wall time (the machine is shared; the spread is reported)
        reps = [dev.load(img) for _ in range(3 if seconds_of is None else 1)]
        rep = max(reps, key=lambda r: r.payload_fraction)
        sim = dev.load(img, clock=seconds_of) if seconds_of else None  # LOAD frames in simulated time
        load = {"bench": "link", "case": "load", "board": name, "core": cfg.name, "baud": baud,
                "beats": rep.beats, "frames": rep.frames, "payload_bytes": rep.payload_bytes,
                "wire_bytes": rep.wire_bytes, "wall_seconds": round(rep.seconds, 4),
                "payload_fraction_wall": round(rep.payload_fraction, 4),
                "wire_fraction_wall": round(rep.wire_fraction, 4), "window": dev.window,
                "payload_fraction_wall_runs": [round(r.payload_fraction, 4) for r in reps],
                "loadavg_1min": round(os.getloadavg()[0], 2), **extra}
        if sim is not None:
            load["sim_seconds"] = round(sim.seconds, 6)
            load["payload_fraction"] = round(sim.payload_fraction, 4)
            load["wire_fraction"] = round(sim.wire_fraction, 4)
        else:
            load["payload_fraction"] = load["payload_fraction_wall"]
            load["wire_fraction"] = load["wire_fraction_wall"]
        _line(load)
        # closed loop: one STEP per control step (inputs in, N steps, spikes back)
        rng = np.random.default_rng(1)
        dev.reset()
        inputs, got = [], []
        lat = []
        s0 = seconds_of() if seconds_of else None
        for k in range(control_steps):
            ev = [(int(i), int(rng.integers(0, 8))) for i in range(len(img.inputs)) if rng.random() < 0.5]
            inputs += [(i, k * steps_per_control, v) for i, v in ev]
            t0 = time.perf_counter()
            got += dev.step(ev, steps_per_control)
            lat.append(time.perf_counter() - t0)
        s1 = seconds_of() if seconds_of else None
        ref = simulate(net, inputs, control_steps * steps_per_control)
        ok = sorted(got) == sorted(ref.spikes)
        doc = {"bench": "link", "case": "closed_loop", "board": name, "core": cfg.name, "baud": baud,
               "control_steps": control_steps, "steps_per_control": steps_per_control,
               "spikes": len(got), "matches_reference": ok,
               "latency_ms_wall_median": round(1e3 * float(np.median(lat)), 3),
               "latency_ms_wall_p95": round(1e3 * float(np.percentile(lat, 95)), 3), **extra}
        if s0 is not None and s1 is not None:  # simulated time over the whole loop (one STEP per control step)
            doc["latency_ms_mean"] = round(1e3 * (s1 - s0) / control_steps, 4)
        _line(doc)
        if not ok:
            raise RuntimeError(f"bench link: the {name} board's closed-loop spikes differ from the reference model")


def _bench_faults(cfg: Any, seed: int, target: int, **kw: Any) -> dict[str, Any]:
    """Drive loads, runs and closed-loop steps through a fault proxy; count what happened
    (``kw``: :func:`~.faultcampaign.run_fault_campaign` options, e.g. ``upstream``)."""
    from .faultcampaign import run_fault_campaign

    return run_fault_campaign(cfg, seed=seed, target_faults=target, **kw)


def _sim_clock(vb: Any) -> Any:
    def seconds() -> float:
        st = vb.stats()
        return st["cycles"] / vb.clock_hz

    return seconds


def bench_link(args: argparse.Namespace) -> int:
    """``spikeforge bench link``: load throughput, closed-loop latency, fault counts.

    Uses the shared bench options: ``--config`` (core; default up5k for the emulated board,
    tiny for the virtual board), ``--seed``, ``--no-build`` (skip the Verilator virtual
    board), ``--runs`` (closed-loop control steps, default 64 -> 200).
    """
    from spikeforge.hdl.config import preset

    from .cli import machine_description
    from .cli_hw import resolve_config

    machine = machine_description()
    control = 200 if args.runs == 64 else max(1, args.runs)
    baud = 3_000_000
    cfg = resolve_config(args.config) if args.config else preset("up5k")
    net, img = _bench_network(cfg, args.seed)
    from spikeforge.sim.emuboard import serve_process

    with serve_process(cfg, port="pty", baud=baud) as b:  # its own process: no GIL shared with the host
        _bench_board(b.url, "emulated", cfg, baud, net, img, control, 4,
                     {"line_model": "emulated: 10 bit times per byte at the baud", "machine": machine})
    fault = _bench_faults(preset("tiny"), args.seed, 3000)
    _line({"bench": "link", "case": "faults", "board": "emulated", **fault, "machine": machine})
    if args.no_build:
        return 0
    try:
        from spikeforge.sim.vboard import start_virtual_board
    except ImportError as e:
        log.warning("virtual board not available (%s): its link figures are skipped", e)
        return 0
    vcfg = resolve_config(args.config) if args.config else preset("tiny")
    vnet, vimg = (net, img) if vcfg == cfg else _bench_network(vcfg, args.seed)
    with start_virtual_board(vcfg, baud=baud) as vb:
        _bench_board(vb.url, "virtual", vcfg, baud, vnet, vimg, min(control, 50), 4,
                     {"clock_hz": vb.clock_hz, "machine": machine}, seconds_of=_sim_clock(vb))
    with start_virtual_board(vcfg, baud=baud, tcp=0) as vb:  # the same campaign against the RTL
        url = vb.url if vb.url.startswith("socket://") else vb.path
        fault = _bench_faults(vcfg, args.seed, 1500, upstream=url, timeout=0.5, host_rate=0.003,
                              max_seconds=900)
    _line({"bench": "link", "case": "faults", "board": "virtual", **fault, "machine": machine})
    return 0


# ----------------------------------------------------------------------------- parsers
def add_deploy_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``spikeforge deploy``, ``run`` and ``flash``."""
    fmt = ("auto", "spikeforge", "tennlab")
    dp = sub.add_parser("deploy", help="load a core image onto a board over serial",
                        description=_DEPLOY_DESCRIPTION, epilog=_DEPLOY_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dp.add_argument("image", metavar="IMAGE", help="core image JSON (or a network JSON, lowered onto the board's core)")
    dp.add_argument("--format", choices=fmt, default="auto", help="format of a network file (default: auto-detect)")
    _add_link_options(dp)
    dp.add_argument("--json", action="store_true", help="print the load report as one JSON line")
    dp.set_defaults(func=_cmd_deploy)

    rp = sub.add_parser("run", help="run a network on a board (same output as simulate)",
                        description=_RUN_DESCRIPTION, epilog=_RUN_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("network", metavar="NETWORK", nargs="?",
                    help="network JSON (spikeforge or TENNLab) or core image JSON that is / goes on the board")
    rp.add_argument("--format", choices=fmt, default="auto", help="format of a network file (default: auto-detect)")
    _add_link_options(rp)
    rp.add_argument("--inputs", metavar="FILE",
                    help="JSON array of [input_index, time, value] triples (default: no inputs)")
    rp.add_argument("--steps", type=int, default=100, metavar="N", help="steps to run (default: 100)")
    rp.add_argument("--json", action="store_true", help="print fire counts and spikes as JSON (as simulate --json)")
    rp.add_argument("--no-load", action="store_true", help="the image is already on the board: do not load it")
    rp.set_defaults(func=_cmd_run)

    fp = sub.add_parser("flash", help="write a bitstream to a board (openFPGALoader or iceprog)",
                        description=_FLASH_DESCRIPTION, epilog=_FLASH_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    fp.add_argument("bitstream", metavar="BITSTREAM", help="the bitstream (.bin for icebreaker, .bit for ulx3s-85f)")
    fp.add_argument("--board", required=True, choices=sorted(FLASH_TOOLS), help="the board")
    fp.add_argument("--tool", choices=("openFPGALoader", "iceprog"), default=None,
                    help="programmer to use (default: the first installed)")
    fp.add_argument("--sram", action="store_true", help="load into the FPGA only (lost at power-off), not the flash")
    fp.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    fp.add_argument("--tool-timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    fp.set_defaults(func=_cmd_flash)
