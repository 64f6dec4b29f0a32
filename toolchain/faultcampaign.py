"""Fault campaign: drive a board through a hostile line and count what happens.

:func:`run_fault_campaign` puts a :class:`~spikeforge.sim.faultproxy.FaultProxy` between a
:class:`~spikeforge.toolchain.deploy.Device` and a board (the emulated board by default, or
any board URL such as the Verilator virtual board's), and repeats episodes until enough faults
were injected: load a random network's image, run it (``Device.simulate``) and compare with
the reference model, then drive it in closed loop (one STEP per control step) comparing each
step's spikes with the reference. Every command either completes with the reference's result
or raises a :class:`~spikeforge.toolchain.deploy.DeviceError`; after an error the campaign
recovers with ``reset()`` (re-opening the session) and goes on. It returns the counts that
``spikeforge bench link`` prints and the fault tests assert on:

* ``wrong``: results that differed from the reference (must be 0: never silently wrong);
* ``exactly_once``: the board executed every STEP/RUN at most once (board-side count between
  the host's completed and completed + unknown-outcome calls; emulated board only);
* ``responsive``: after the campaign the board answers IDENTIFY directly, without the proxy.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import numpy as np
import serial

from spikeforge.firmware.protocol import Op
from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.image import lower
from spikeforge.sim.emuboard import serve
from spikeforge.sim.faultproxy import FaultProxy

from .deploy import Device, DeviceError, StateAdvancedError
from .netgen import random_case
from .reference import simulate

__all__ = ["CountingDevice", "run_fault_campaign"]

log = logging.getLogger(__name__)


class CountingDevice(Device):
    """A :class:`Device` that counts the outcome of every RUN/STEP request it makes."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.outcomes: Counter[str] = Counter()
        super().__init__(*args, **kw)

    def _run_op(self, op: Op, payload: bytes, steps: int) -> list[tuple[int, int]]:
        try:
            out = super()._run_op(op, payload, steps)
        except StateAdvancedError:
            self.outcomes["executed_lost_spikes"] += 1
            raise
        except DeviceError:
            self.outcomes["unknown"] += 1
            raise
        self.outcomes["completed"] += 1
        return out


def _recover(dev: Device, attempts: int = 20) -> bool:
    for _ in range(attempts):
        try:
            dev.identify()
            dev.reset()
            return True
        except DeviceError:
            continue
    return False


def run_fault_campaign(config: CoreConfig, *, seed: int = 0, target_faults: int = 3000, rate: float = 0.005,
                       host_rate: float = 0.02, timeout: float = 0.01, max_seconds: float = 60.0, upstream: str | None = None,
                       control_steps: int = 12, min_per_kind: int = 0) -> dict[str, Any]:
    """Run episodes through a fault proxy until ``target_faults`` faults (or ``max_seconds``).

    Parameters
    ----------
    config
        Core configuration (of the emulated board, or of the board at ``upstream``).
    seed
        Seeds the networks, the inputs and the fault generator.
    target_faults
        Stop once this many faults were injected.
    rate, host_rate
        Fault probability per forwarded byte, host to board and board to host.
    timeout
        The Device's reply timeout (small: the boards answer in microseconds of wall time).
    max_seconds
        Stop after this long whatever the count.
    upstream
        A board URL (``socket://...`` or a pty path) instead of a fresh emulated board.
    control_steps
        Closed-loop STEP requests per episode.
    min_per_kind
        Also go on (within ``max_seconds``) until every fault kind in both directions has been
        injected at least this often: at a low ``host_rate`` a rare kind may otherwise not occur
        before ``target_faults`` is reached.

    Returns
    -------
    dict
        JSON-ready counts (see the module docstring).
    """
    emu = serve(config, port="tcp:0", model_line=False) if upstream is None else None
    url = emu.url if emu is not None else str(upstream)
    t_start = time.monotonic()
    results: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    try:
        with FaultProxy(url, rate=rate, host_rate=host_rate, seed=seed) as px:
            ser = serial.serial_for_url(px.url, timeout=0.01, write_timeout=5.0)
            dev = CountingDevice(ser, identify=False, timeout=timeout, retries=40)
            dev.url = px.url
            if not _recover(dev):
                raise DeviceError(f"{url}: the board does not answer through the fault proxy")
            episode = 0
            def more() -> bool:
                return px.total < target_faults or min(px.summary().values()) < min_per_kind

            while more() and time.monotonic() - t_start < max_seconds:
                case = random_case(seed * 1000 + episode, 16, 48, steps=40, max_delay=config.max_delay)
                episode += 1
                img = lower(case.network, config)
                ref = simulate(case.network, case.inputs, case.steps)
                try:
                    dev.load(img)
                    results["load_ok"] += 1
                    res = dev.simulate(case.inputs, case.steps)
                    if res.spikes == ref.spikes:
                        results["run_ok"] += 1
                    else:
                        results["wrong"] += 1
                        log.error("episode %d: board spikes differ from the reference", episode)
                    # closed loop: planned inputs, one STEP per control step
                    rng = np.random.default_rng(seed * 1000 + episode)
                    per = 3
                    plan = [[(i, int(rng.integers(1, 60))) for i in range(len(img.inputs)) if rng.random() < 0.4]
                            for _ in range(control_steps)]
                    flat = [(i, k * per, v) for k, evs in enumerate(plan) for i, v in evs]
                    cref = simulate(case.network, flat, control_steps * per).spikes
                    dev.reset()
                    for k, evs in enumerate(plan):
                        got = dev.step(evs, per)
                        want = [(n, t) for n, t in cref if k * per <= t < (k + 1) * per]
                        if sorted(got) == sorted(want):
                            results["step_ok"] += 1
                        else:
                            results["wrong"] += 1
                            log.error("episode %d step %d: board spikes differ from the reference", episode, k)
                except DeviceError as e:
                    kind = type(e).__name__
                    errors[kind] += 1
                    examples.setdefault(kind, str(e))
                    if not _recover(dev):
                        results["unrecovered"] += 1
                        break
            faults = px.summary()
            total = px.total
        link = dev.stats.as_dict()
        outcomes = dict(dev.outcomes)
        dev.close()
        # responsive: a fresh host, straight to the board
        try:
            with Device.open(url, timeout=1.0) as direct:
                direct.counters()
            responsive = True
        except DeviceError:
            responsive = False
        board: dict[str, Any] = {}  # what the emulated board saw
        exactly_once = None
        if emu is not None:
            st = emu.board.stats
            executed = sum(1 for _, op in st.executed if op in (Op.STEP, Op.RUN))
            lo = outcomes.get("completed", 0) + outcomes.get("executed_lost_spikes", 0)
            hi = lo + outcomes.get("unknown", 0)
            exactly_once = lo <= executed <= hi
            board = {"executed_run_step": executed, "frames_ok": st.frames_ok, "frames_bad": st.frames_bad,
                     "duplicates_not_reexecuted": st.duplicates, "rejected": st.rejected}
    finally:
        if emu is not None:
            emu.close()
    return {
        "faults": total, "faults_by_kind": faults, "rate": rate, "host_rate": host_rate, "episodes": episode,
        "completed": {k: v for k, v in results.items() if k.endswith("_ok")},
        "wrong": results["wrong"], "failed_clearly": dict(errors), "error_examples": examples,
        "unrecovered": results["unrecovered"], "run_step_outcomes": outcomes, "exactly_once": exactly_once,
        "responsive": responsive, "board_counts": board, "link": link,
        "seconds": round(time.monotonic() - t_start, 2),
    }
