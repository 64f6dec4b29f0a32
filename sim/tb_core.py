"""cocotb testbench of the spiking core (runs inside Verilator; started by :mod:`.verify`).

The host sends *jobs*: each is a list of command beats (integers, already encoded by
:func:`spikeforge.hdl.protocol.encode_command`) plus stream-pressure settings. For each job the
testbench drives the command stream, collects every spike beat, waits until the core is idle,
and records the beats and the status counters. It compares nothing itself: the host turns the
beats into a :class:`~spikeforge.toolchain.reference.SimResult` with the same driver the serial
host uses, and compares against the reference model. That keeps one comparison, in one place.

Job fields: ``name``; ``words`` (command beats); ``valid_prob`` / ``ready_prob`` (probability
per cycle that the command stream offers a beat / that the spike stream is ready; 1.0 = always);
``max_cycles`` (give up, and report ``timeout``, after this many cycles).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from spikeforge.sim.rtl import load_params, record_output

#: Consecutive idle cycles (all commands sent, not busy, no spike pending) that end a job.
IDLE_CYCLES = 3


async def _reset(dut) -> None:  # noqa: ANN001 - cocotb handle
    dut.cmd__valid.value = 0
    dut.cmd__payload.value = 0
    dut.spikes__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def _run_job(dut, job: dict, rng: random.Random) -> dict:  # noqa: ANN001
    words: list[int] = job["words"]
    valid_prob = float(job.get("valid_prob", 1.0))
    ready_prob = float(job.get("ready_prob", 1.0))
    max_cycles = int(job.get("max_cycles", 1_000_000))
    beats: list[int] = []
    sent = 0
    cycles = 0
    idle = 0
    timeout = False
    while True:
        offer = sent < len(words) and (valid_prob >= 1.0 or rng.random() < valid_prob)
        dut.cmd__valid.value = int(offer)
        if offer:
            dut.cmd__payload.value = words[sent]
        ready = ready_prob >= 1.0 or rng.random() < ready_prob
        dut.spikes__ready.value = int(ready)
        await ReadOnly()
        spike_valid = dut.spikes__valid.value == 1
        if ready and spike_valid:
            beats.append(dut.spikes__payload.value.to_unsigned())
        if offer and dut.cmd__ready.value == 1:
            sent += 1
        quiet = sent >= len(words) and dut.busy.value == 0 and not spike_valid
        await RisingEdge(dut.clk)
        cycles += 1
        idle = idle + 1 if quiet else 0
        if idle >= IDLE_CYCLES:
            break
        if cycles >= max_cycles:
            timeout = True
            break
    dut.cmd__valid.value = 0
    return {
        "name": job.get("name", ""),
        "beats": beats,
        "cycles": cycles,
        "sent": sent,
        "timeout": timeout,
        "busy_cycles": dut.cycles.value.to_unsigned(),
        "events": dut.events.value.to_unsigned(),
        "errors": dut.errors.value.to_unsigned(),
        "timestep": dut.timestep.value.to_unsigned(),
    }


@cocotb.test()
async def core_jobs(dut):  # noqa: ANN001
    """Run every job of the parameters file in order on one core instance."""
    params = load_params()
    rng = random.Random(params.get("seed", 0))
    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut)
    results = []
    for job in params.get("jobs", []):
        res = await _run_job(dut, job, rng)
        results.append(res)
        # Partial results survive a later crash or timeout of the simulator.
        record_output("results", results)
        if res["timeout"]:
            break
    record_output("results", results)
