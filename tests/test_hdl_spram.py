"""The iCE40 SPRAM packing (emulated SB_SPRAM256KA blocks) against a dict."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from spikeforge.hdl.spram_ice40 import SPRAMMemory, spram_packing


def test_packing_choices():
    assert spram_packing(19, 32768) == (2, 20, 3, 1)  # up5k synapse table: 3 SPRAMs
    assert spram_packing(16, 16384) == (1, 16, 1, 1)  # up5k segment index: 1 SPRAM


@pytest.mark.parametrize("width,depth", [(19, 32768), (16, 20000), (7, 100)])
def test_write_then_read_back(width, depth):
    mem = SPRAMMemory(shape=width, depth=depth, emulate=True)
    rd, wr = mem.read_port(), mem.write_port()
    top = Module()
    top.submodules.mem = mem
    rng = random.Random(width * depth)
    addrs = rng.sample(range(depth), 60) + [0, depth - 1]
    model = {a: rng.randrange(1 << width) for a in addrs}

    async def tb(ctx):
        for a, v in model.items():
            ctx.set(wr.en, 1)
            ctx.set(wr.addr, a)
            ctx.set(wr.data, v)
            await ctx.tick()
        ctx.set(wr.en, 0)
        for a, v in model.items():
            ctx.set(rd.addr, a)
            await ctx.tick()
            assert ctx.get(rd.data) == v, (a, v)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
