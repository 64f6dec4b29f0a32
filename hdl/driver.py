"""Host-side driver of the spiking core: image + inputs → commands; spike beats → SimResult.

Transport-free: the amaranth.sim harness (:mod:`.amsim`), the cocotb/Verilator testbench and
the serial host all turn a run into the same command list with :func:`run_commands` and the
collected ``(neuron, time)`` beats back into a :class:`SimResult` with :func:`collect_result`.

A run is::

    cmds = load_commands(image)                 # WRITEs + CLEAR
    cmds += run_commands(image, inputs, steps)  # INPUTs before each step that has inputs,
                                                # RUN n over the stretches in between
    ... send cmds, collect spike beats (neuron, time) ...
    result = collect_result(image, beats, steps)   # == reference.simulate(...)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from spikeforge.toolchain.reference import InputEvent, SimResult

from .image import CoreImage
from .protocol import Command, max_run_steps

__all__ = ["DriverError", "collect_result", "load_commands", "run_commands"]

log = logging.getLogger(__name__)


class DriverError(ValueError):
    """Inputs the core cannot take (bad index, time, value, or accumulator overflow risk)."""


def load_commands(image: CoreImage, full: bool = False) -> list[Command]:
    """``WRITE`` every word of the image, then ``CLEAR`` (see :meth:`CoreImage.writes`)."""
    cmds = [Command.write(a, d) for a, d in image.writes(full)]
    cmds.append(Command.clear())
    return cmds


def run_commands(
    image: CoreImage, inputs: Sequence[InputEvent], steps: int, start: int = 0
) -> list[Command]:
    """Commands that run ``steps`` steps from timestep ``start`` with these inputs.

    Inputs of step ``t`` are sent (as ``INPUT``) just before the ``RUN`` that executes ``t``;
    stretches without inputs become one ``RUN n`` (split at the widest ``RUN``).

    Raises
    ------
    DriverError
        On an input index the image does not have, a time outside ``start .. start+steps-1``,
        a value outside ``input_bits``, or inputs that together with the neuron's fan-in could
        overflow the accumulator in one step.
    """
    cfg = image.config
    if steps < 0:
        raise DriverError(f"steps = {steps} is out of range; allowed: >= 0")
    by_t: dict[int, list[tuple[int, int]]] = {}
    for k, ev in enumerate(inputs):
        i, t, v = (int(x) for x in ev)
        if not 0 <= i < len(image.inputs):
            raise DriverError(f"input #{k}: input_index = {i} is out of range; the image has {len(image.inputs)} inputs")
        if not start <= t < start + steps:
            raise DriverError(f"input #{k}: time = {t} is out of range; allowed: {start}..{start + steps - 1}")
        by_t.setdefault(t, []).append((image.inputs[i], v))
    acc_max = cfg.limits().fan_in[1]
    cmds: list[Command] = []
    cur = start
    chunk = max_run_steps(cfg)

    def run(n: int) -> None:
        while n > 0:
            k = min(n, chunk)
            cmds.append(Command.run(k))
            n -= k

    for t in sorted(by_t):
        run(t - cur)
        cur = t
        sums: dict[int, int] = {}
        for slot, v in by_t[t]:
            try:
                cmds.append(Command.input(cfg, slot, v))
            except ValueError as e:
                raise DriverError(f"time {t}: {e}") from None
            sums[slot] = sums.get(slot, 0) + abs(v)
        for slot, s in sums.items():
            fan = image.fan_in[slot] if slot < len(image.fan_in) else 0
            if s + fan > acc_max:
                raise DriverError(
                    f"time {t}: inputs onto neuron {image.neuron_ids[slot]} sum to |{s}| which with its "
                    f"fan-in {fan} could overflow the {cfg.accumulator_bits}-bit accumulator (max {acc_max})"
                )
    run(start + steps - cur)
    return cmds


def collect_result(
    image: CoreImage, beats: Iterable[tuple[int, int]], steps: int, start: int = 0
) -> SimResult:
    """Turn collected spike beats ``(core neuron slot, timestep)`` into a :class:`SimResult`.

    Timesteps are unwrapped (``time_bits`` may be narrower than the run). Beats from slots the
    image does not use are dropped with a warning (they cannot happen for a loaded image).
    """
    cfg = image.config
    n = len(image.neuron_ids)
    mod = 1 << cfg.time_bits
    out = []
    for slot, tw in beats:
        if slot >= n:
            log.warning("spike from unused core slot %d at time %d dropped", slot, tw)
            continue
        t = start + ((tw - start) % mod)
        out.append((t - start, slot))
    out.sort()
    return SimResult(
        neuron_ids=np.array(image.neuron_ids, dtype=np.int64),
        steps=steps,
        spike_times=np.array([t for t, _ in out], dtype=np.int64),
        spike_index=np.array([i for _, i in out], dtype=np.int64),
    )
