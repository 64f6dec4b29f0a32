"""Run the spiking core under amaranth.sim (Python simulator) behind the host driver.

:func:`simulate_core` loads an image through the command stream, drives INPUT/RUN commands,
collects the spike stream and returns the same :class:`SimResult` as the reference model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from spikeforge.toolchain.reference import InputEvent, SimResult

from .config import CoreConfig
from .core import SpikingCore
from .driver import collect_result, load_commands, run_commands
from .image import CoreImage
from .protocol import Command, decode_spike, encode_command

__all__ = ["CoreRun", "run_commands_sim", "simulate_core"]

log = logging.getLogger(__name__)


@dataclass
class CoreRun:
    """Raw outcome of a command sequence on the simulated core."""

    beats: list[tuple[int, int]] = field(default_factory=list)
    cycles: int = 0
    busy_cycles: int = 0
    events: int = 0
    errors: int = 0
    timestep: int = 0


def run_commands_sim(
    cfg: CoreConfig,
    commands: Sequence[Command],
    *,
    ready_pattern: Sequence[int] | None = None,
    vcd: str | None = None,
    max_cycles: int = 10_000_000,
    emulate_spram: bool = False,
    image: CoreImage | None = None,
) -> CoreRun:
    """Feed commands to a fresh core, wait until it is idle, collect every spike beat.

    ``ready_pattern`` (cycled) throttles the spike stream's ``ready`` to test back-pressure.
    ``image``: a network baked into the core's memories (:class:`SpikingCore`), so the
    commands need not load it.
    """
    dut = SpikingCore(cfg, emulate_spram=emulate_spram, image=image)
    out = CoreRun()
    words = [encode_command(cfg, c) for c in commands]

    async def driver(ctx):  # noqa: ANN001 - amaranth.sim context
        for w in words:
            ctx.set(dut.cmd.payload.as_value(), w)
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        await ctx.tick()
        await ctx.tick().until(~dut.busy)
        out.busy_cycles = ctx.get(dut.cycles)
        out.events = ctx.get(dut.events)
        out.errors = ctx.get(dut.errors)
        out.timestep = ctx.get(dut.timestep)

    async def collector(ctx):  # noqa: ANN001
        k = 0
        ctx.set(dut.spikes.ready, 1 if ready_pattern is None else ready_pattern[0])
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
            dut.spikes.valid, dut.spikes.ready, dut.spikes.payload.as_value()
        ):
            out.cycles += 1
            if valid and ready:
                out.beats.append(decode_spike(cfg, payload))
            if ready_pattern is not None:
                k += 1
                ctx.set(dut.spikes.ready, ready_pattern[k % len(ready_pattern)])
            if out.cycles > max_cycles:
                raise RuntimeError(f"core did not finish within {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(collector, background=True)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return out


def simulate_core(
    image: CoreImage,
    inputs: Sequence[InputEvent] = (),
    steps: int = 100,
    **kw: object,
) -> tuple[SimResult, CoreRun]:
    """Load ``image`` into a simulated core, run it, and return ``(SimResult, CoreRun)``."""
    cmds = load_commands(image) + run_commands(image, inputs, steps)
    run = run_commands_sim(image.config, cmds, **kw)  # type: ignore[arg-type]
    return collect_result(image, run.beats, steps), run
