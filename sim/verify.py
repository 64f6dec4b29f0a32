"""Spike-for-spike verification of the RTL core (Verilator + cocotb) against the reference model.

One Verilator build of the core per :class:`~spikeforge.hdl.config.CoreConfig`; every case
(a network, its inputs and a step count) is lowered to a :class:`~spikeforge.hdl.image.CoreImage`,
turned into command beats by :mod:`spikeforge.hdl.driver` (the same code the serial host uses),
run in one simulator session, and the collected spike beats are compared, spike by spike and
time by time, with :func:`spikeforge.toolchain.reference.simulate`. The image-level model
(:func:`spikeforge.hdl.image.run_image`) is checked on the way, so a divergence says which rung of
the ladder broke.

Robustness jobs: a burst of random command beats (garbage: any opcode, address and data, with
``RUN`` lengths kept short so the burst ends in bounded time) is followed by a full reload and a
clean run that must still match; random stream pressure (``valid`` / ``ready`` toggling) is
applied on request.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amaranth.hdl import Elaboratable

from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.core import SpikingCore
from spikeforge.hdl.driver import collect_result, load_commands, run_commands
from spikeforge.hdl.image import CoreImage, ImageError, lower, run_image
from spikeforge.hdl.protocol import (
    OP_BITS,
    Opcode,
    addr_bits,
    data_bits,
    decode_spike,
    encode_command,
    pack_command,
)
from spikeforge.toolchain.netgen import Case, edge_cases, random_case
from spikeforge.toolchain.reference import SimResult, simulate

from .rtl import run_cocotb

__all__ = [
    "core_cases",
    "TOPLEVEL",
    "CaseReport",
    "Divergence",
    "VerifyReport",
    "first_divergence",
    "garbage_words",
    "verify_cases",
]

log = logging.getLogger(__name__)

TOPLEVEL = "spikeforge_core"


@dataclass
class Divergence:
    """The first place two runs disagree: at ``time``, neuron ``neuron`` fired in one only."""

    neuron: int
    time: int
    expected: bool
    got: bool

    def __str__(self) -> str:
        def word(b: bool) -> str:
            return "spike" if b else "no spike"

        return f"neuron {self.neuron} at t={self.time}: expected {word(self.expected)}, got {word(self.got)}"


def first_divergence(expected: SimResult, got: SimResult) -> Divergence | None:
    """The earliest (time, then neuron order) spike present in one result and not the other."""
    e = set(zip(expected.spike_times.tolist(), expected.spike_index.tolist(), strict=True))
    g = set(zip(got.spike_times.tolist(), got.spike_index.tolist(), strict=True))
    diff = sorted(e ^ g)
    if not diff:
        return None
    t, i = diff[0]
    return Divergence(int(expected.neuron_ids[i]), int(t), (t, i) in e, (t, i) in g)


@dataclass
class CaseReport:
    """Outcome of one case."""

    name: str
    steps: int
    spikes: int
    ok: bool
    rung: str = ""  # which comparison failed: "image-model", "rtl", "timeout", "counters"
    divergence: Divergence | None = None
    detail: str = ""
    cycles: int = 0
    busy_cycles: int = 0
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "divergence"}
        d["divergence"] = str(self.divergence) if self.divergence else None
        return d


@dataclass
class VerifyReport:
    """Outcome of a verification run."""

    config: str
    cases: list[CaseReport] = field(default_factory=list)
    compile_seconds: float = 0.0
    run_seconds: float = 0.0
    build_cached: bool = False
    waves: str | None = None
    target: str = "rtl"

    @property
    def ok(self) -> bool:
        return bool(self.cases) and all(c.ok for c in self.cases)

    @property
    def failures(self) -> list[CaseReport]:
        return [c for c in self.cases if not c.ok]

    def summary(self) -> str:
        """Human summary: counts, and the first divergence when there is one."""
        n_ok = sum(c.ok for c in self.cases)
        spikes = sum(c.spikes for c in self.cases)
        where = "" if self.target == "rtl" else f" [{self.target}]"
        what = "RTL" if self.target == "rtl" else "Verilator"
        lines = [
            f"verify on core '{self.config}'{where}: {n_ok}/{len(self.cases)} cases match the "
            f"reference spike for spike ({spikes} spikes compared; {what} compile "
            f"{self.compile_seconds:.1f} s"
            f"{' cached' if self.build_cached else ''}, run {self.run_seconds:.1f} s)"
        ]
        for c in self.failures[:1]:
            lines.append(f"FIRST DIVERGENCE in case {c.name!r} ({c.rung}): {c.divergence or c.detail}")
        if len(self.failures) > 1:
            lines.append(f"... and {len(self.failures) - 1} more failing cases: "
                         + ", ".join(c.name for c in self.failures[1:6]))
        if self.waves:
            lines.append(f"waves: {self.waves}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "target": self.target,
            "ok": self.ok,
            "cases": [c.to_dict() for c in self.cases],
            "compile_seconds": self.compile_seconds,
            "run_seconds": self.run_seconds,
        }


def core_cases(cfg: CoreConfig, n_random: int, seed: int = 0, steps: int = 50, *,
               edge: bool = True) -> list[Case]:
    """The cases ``spikeforge verify`` checks a core with: ``n_random`` seeded random networks
    small enough to simulate in seconds (≤ 24 neurons, ≤ 72 synapses) with every value within
    the core's :meth:`~CoreConfig.limits`, then (``edge``) the contract's edge cases."""
    lim = cfg.limits()
    n_syn = min(cfg.n_synapses, 3 * cfg.n_neurons)
    cases = [random_case(seed + k, min(cfg.n_neurons, 24), min(n_syn, 72), steps=steps, max_delay=cfg.max_delay,
                         threshold_range=(0, min(255, lim.threshold[1])), weight_range=lim.weight)
             for k in range(n_random)]
    if edge:
        cases += edge_cases(potential_bits=cfg.potential_bits, max_delay=cfg.max_delay, n_max=min(cfg.n_neurons, 32))
    return cases


def garbage_words(cfg: CoreConfig, rng: random.Random, count: int, max_run: int = 8) -> list[int]:
    """Random command beats: any opcode (including undefined ones), address and data.

    ``RUN`` beats are kept to at most ``max_run`` steps so a burst ends in bounded time; every
    other field is uniformly random over its full width.
    """
    ab, db = addr_bits(cfg), data_bits(cfg)
    words = []
    for _ in range(count):
        op = rng.randrange(1 << OP_BITS)
        data = rng.randrange(max_run + 1) if op == Opcode.RUN.value else rng.getrandbits(db)
        words.append(pack_command(cfg, op, rng.getrandbits(ab), data))
    return words


def _max_cycles(cfg: CoreConfig, image: CoreImage, steps: int, n_words: int) -> int:
    # Generous bound: every step scans every neuron and could deliver every synapse up to D
    # times; plus the command beats. A core that exceeds it is wedged.
    per_step = 4 * cfg.n_neurons + 2 * cfg.max_delay * max(1, len(image.synapses)) + 64
    return 4 * n_words + per_step * (steps + 2) + 10_000


def verify_cases(
    cases: Sequence[Case],
    config: CoreConfig,
    *,
    build_dir: Path,
    garbage: int = 0,
    pressure: bool = False,
    seed: int = 0,
    waves: Path | None = None,
    timeout: float = 1800.0,
    progress: Callable[[str], None] | None = None,
    design: Elaboratable | str | Path | None = None,
    extra_sources: Sequence[Path] = (),
    build_args: Sequence[str] = (),
    public_depth: int | None = None,
    target: str = "rtl",
) -> VerifyReport:
    """Run every case on the Verilator RTL and compare it with the reference model.

    Parameters
    ----------
    cases
        Networks with inputs and step counts (see :mod:`spikeforge.toolchain.netgen`).
    config
        The core configuration to build.
    build_dir
        Where the Verilator build (cached by RTL hash) and run folders go.
    garbage
        If > 0, before each case send this many random command beats, then reload the image
        in full: the clean run that follows must still match.
    pressure
        Toggle the command stream's ``valid`` and the spike stream's ``ready`` at random.
    seed
        Seed of the garbage and the stream pressure.
    waves
        Write a VCD of the whole session here.
    timeout
        Wall-clock limit of the simulator session in seconds.
    progress
        Called with a short message as stages start (the CLI prints it).
    design
        What Verilator simulates instead of the behavioural ``SpikingCore(config)``: an
        Amaranth component, Verilog text or a Verilog file whose top module is
        :data:`TOPLEVEL` and which implements ``config`` (e.g. the iCE40-primitive RTL or
        the post-synthesis netlist of :mod:`spikeforge.sim.gatelevel`).
    extra_sources
        More Verilog files for Verilator (e.g. vendor primitive models).
    build_args
        Extra Verilator arguments.
    public_depth
        Module levels whose signals cocotb can see (``None``: all; the testbench needs 1).
    target
        Name of the simulated rung (``"rtl"``, ``"ice40-rtl"``, ``"ice40-netlist"``, ...): it
        labels the report and is the ``rung`` of a case the simulation got wrong.

    Raises
    ------
    ImageError
        If a case does not fit ``config``.
    """
    if not isinstance(target, str) or not target:
        raise ValueError(f"target = {target!r}; give a non-empty rung name such as 'rtl'")
    say = progress or (lambda msg: log.info("%s", msg))
    rng = random.Random(seed)
    report = VerifyReport(config=config.name)
    jobs: list[dict[str, Any]] = []
    prepared: list[tuple[Case, CoreImage, SimResult, int]] = []
    for case in cases:
        try:
            image = lower(case.network, config)
        except ImageError as e:
            raise ImageError(f"case {case.name!r}: {e}") from None
        expected = simulate(case.network, case.inputs, case.steps, potential_bits=config.potential_bits)
        model = run_image(image, case.inputs, case.steps)
        words = [encode_command(config, c) for c in load_commands(image, full=garbage > 0)]
        words += [encode_command(config, c) for c in run_commands(image, case.inputs, case.steps)]
        if garbage:
            junk = garbage_words(config, rng, garbage)
            jobs.append({"name": case.name + ":garbage", "words": junk,
                         "max_cycles": _max_cycles(config, image, 8 * garbage, garbage)})
        job: dict[str, Any] = {"name": case.name, "words": words,
                               "max_cycles": _max_cycles(config, image, case.steps, len(words))}
        if pressure:
            job["valid_prob"] = 0.6
            job["ready_prob"] = 0.5
        jobs.append(job)
        idx = len(jobs) - 1
        prepared.append((case, image, expected, idx))
        if model != expected:
            report.cases.append(CaseReport(case.name, case.steps, len(expected.spike_times), False,
                                           "image-model", first_divergence(expected, model)))
    label = "the Verilator RTL" if design is None else f"the Verilator model ({target})"
    say(f"running {len(prepared)} cases on {label} of core '{config.name}'")
    res = run_cocotb(
        SpikingCore(config) if design is None else design,
        TOPLEVEL,
        Path(__file__).with_name("tb_core.py"),
        build_dir=build_dir,
        params={"jobs": jobs, "seed": seed},
        waves=waves,
        timeout=timeout,
        testcase="core_jobs",
        build_args=tuple(build_args),
        extra_sources=tuple(extra_sources),
        public_depth=public_depth,
    )
    report.target = target
    report.compile_seconds = res.compile_seconds
    report.run_seconds = res.run_seconds
    report.build_cached = res.build_cached
    report.waves = str(res.waves) if res.waves else None
    results = res.output.get("results", [])
    failed_names = {c.name for c in report.cases}
    for case, image, expected, idx in prepared:
        if case.name in failed_names:
            continue
        cr = CaseReport(case.name, case.steps, len(expected.spike_times), False)
        if idx >= len(results):
            cr.rung = target
            cr.detail = "the simulator stopped before this case (see the log: " + str(res.log) + ")"
            report.cases.append(cr)
            continue
        out = results[idx]
        cr.cycles, cr.busy_cycles, cr.events = out["cycles"], out["busy_cycles"], out["events"]
        if out["timeout"]:
            cr.rung = "timeout"
            cr.detail = f"core still busy after {out['cycles']} cycles (wedged?)"
        else:
            beats = [decode_spike(config, b) for b in out["beats"]]
            got = collect_result(image, beats, case.steps)
            div = first_divergence(expected, got)
            if div is not None:
                cr.rung, cr.divergence = target, div
            elif out["timestep"] != case.steps:
                cr.rung = "counters"
                cr.detail = f"timestep counter = {out['timestep']}, expected {case.steps}"
            else:
                cr.ok = True
        report.cases.append(cr)
    if not res.passed and report.ok:
        # The testbench itself failed (exception in cocotb) although every case compared equal.
        report.cases.append(CaseReport("testbench", 0, 0, False, target, None, res.summary()))
    return report
