"""The core's control: the command decoder and the step sequencer.

:class:`CommandDecoder`
    Commands in, pre-decoded commands out of a register (the opcode, region and range compares
    end in flip-flops, so the sequencer, memory ports and counters start from registers).
:class:`StepSequencer`
    The control FSM: IDLE (executes one decoded command per clock), CLEAR (zeroes the state
    one neuron per clock), and for each step of a RUN, DELIVER then NEURON.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .blocks import OutputRegister
from .config import CoreConfig
from .image import REGION_BITS, Region, offset_bits
from .protocol import Opcode, command_layout

__all__ = ["CommandDecoder", "StepSequencer", "decoded_layout"]


def decoded_layout(cfg: CoreConfig) -> data.StructLayout:
    """A decoded command: one flag per action (at most one set), the offset and the data.

    ``error``: the command is ignored (unknown opcode, out-of-range address or neuron).
    """
    return data.StructLayout({
        "write_params": 1, "write_index": 1, "write_synapses": 1, "input": 1, "run": 1, "clear": 1,
        "error": 1, "addr": offset_bits(cfg), "data": command_layout(cfg).members["data"],
    })


class CommandDecoder(wiring.Component):
    """Commands → decoded commands, through a register slice.

    Members
    -------
    cmd : In(stream.Signature(command_layout(cfg)))
        Commands (:mod:`.protocol`).
    out : Out(stream.Signature(decoded_layout(cfg)))
        Decoded commands, from flip-flops.
    """

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "out": Out(stream.Signature(decoded_layout(cfg))),
        })

    def elaborate(self, platform: Any) -> Module:
        cfg = self.cfg
        m = Module()
        m.submodules.reg = reg = OutputRegister(decoded_layout(cfg))
        wiring.connect(m, reg.o, wiring.flipped(self.out))
        m.d.comb += [reg.i.valid.eq(self.cmd.valid), self.cmd.ready.eq(reg.i.ready)]
        cmd, d = self.cmd.payload, reg.i.payload
        ob = offset_bits(cfg)
        region, offset = cmd.addr[ob:ob + REGION_BITS], cmd.addr[:ob]
        is_write = cmd.op == Opcode.WRITE
        wp = is_write & (region == int(Region.PARAMS)) & (offset < cfg.n_neurons)
        wi = is_write & (region == int(Region.INDEX)) & (offset < cfg.index_depth)
        ws = is_write & (region == int(Region.SYNAPSES)) & (offset < cfg.n_synapses)
        inp = (cmd.op == Opcode.INPUT) & (cmd.addr < cfg.n_neurons)
        known = ((cmd.op == Opcode.NOP) | (cmd.op == Opcode.RUN) | (cmd.op == Opcode.CLEAR)
                 | (cmd.op == Opcode.INPUT) | is_write)
        m.d.comb += [
            d.write_params.eq(wp), d.write_index.eq(wi), d.write_synapses.eq(ws), d.input.eq(inp),
            d.run.eq((cmd.op == Opcode.RUN) & (cmd.data != 0)),
            d.clear.eq(cmd.op == Opcode.CLEAR),
            d.error.eq(~known | (is_write & ~wp & ~wi & ~ws) | ((cmd.op == Opcode.INPUT) & ~inp)),
            d.addr.eq(offset), d.data.eq(cmd.data),
        ]
        return m


class StepSequencer(wiring.Component):
    """The control FSM.

    Members
    -------
    cmd : In(stream.Signature(decoded_layout(cfg)))
        Decoded commands; taken one per clock while idle (a RUN or CLEAR starts its work).
    accu_idle, deliver_idle, neuron_done : In(1)
        The accumulator unit, the delivery engine and the neuron pass have finished.
    deliver, neuron, clearing : Out(1)
        In the DELIVER (``deliver`` is a register), NEURON, and CLEAR (while writing) state.
    clear_addr : Out(neuron_bits)
        The neuron CLEAR zeroes.
    inject : Out(1)
        An INPUT command is taken (its neuron and value go to the accumulator unit).
    error : Out(1)
        An ignored command is taken.
    running : Out(1)
        Running a step.
    timestep : Out(time_bits)
        Steps run since the last CLEAR.
    cycles : Out(32)
        Clock cycles spent running steps (wraps).
    """

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        super().__init__({
            "cmd": In(stream.Signature(decoded_layout(cfg))),
            "accu_idle": In(1),
            "deliver_idle": In(1),
            "neuron_done": In(1),
            "deliver": Out(1),
            "neuron": Out(1),
            "clearing": Out(1),
            "clear_addr": Out(cfg.neuron_bits),
            "inject": Out(1),
            "error": Out(1),
            "running": Out(1),
            "timestep": Out(cfg.time_bits),
            "cycles": Out(32),
        })

    def elaborate(self, platform: Any) -> Module:
        cfg = self.cfg
        m = Module()
        N, nb = cfg.n_neurons, cfg.neuron_bits
        c, t = self.cmd.payload, self.timestep
        clr_n = Signal(nb + 1)
        m.d.comb += self.clear_addr.eq(clr_n[:nb])
        with m.If(self.running):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        # registered (one cycle late): once everything has drained nothing can restart it
        deliver_done = Signal()
        m.d.sync += deliver_done.eq(self.deliver_idle)

        # steps_left - 1 and steps_left == 1, registered in two halves (valid two cycles after
        # steps_left changes; a step takes far longer), so the wide decrement is never critical
        steps_left = Signal.like(c.data)
        sw_ = len(steps_left)
        half = (sw_ + 1) // 2
        sl_lo = Signal(half + 1)
        sl_m1 = Signal(sw_)
        sl_last = Signal()
        m.d.sync += [
            sl_lo.eq(steps_left[:half] - 1),
            sl_m1.eq(Cat(sl_lo[:half], steps_left[half:] - sl_lo[half])),
            sl_last.eq(steps_left == 1),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.comb += [self.error.eq(c.error), self.inject.eq(c.input)]
                    with m.If(c.run):
                        m.d.sync += [steps_left.eq(c.data), self.deliver.eq(1)]
                        m.next = "DELIVER"
                    with m.If(c.clear):
                        m.d.sync += clr_n.eq(0)
                        m.next = "CLEAR"
            with m.State("CLEAR"):
                # let in-flight INPUT events land first, then overwrite everything
                with m.If(self.accu_idle):
                    m.d.comb += self.clearing.eq(1)
                    m.d.sync += clr_n.eq(clr_n + 1)
                    with m.If(clr_n == N - 1):
                        m.d.sync += t.eq(0)
                        m.next = "IDLE"
            with m.State("DELIVER"):
                m.d.comb += self.running.eq(1)
                with m.If(deliver_done):
                    m.d.sync += self.deliver.eq(0)
                    m.next = "NEURON"
            with m.State("NEURON"):
                m.d.comb += [self.running.eq(1), self.neuron.eq(1)]
                with m.If(self.neuron_done):
                    m.d.sync += [t.eq(t + 1), steps_left.eq(sl_m1)]
                    with m.If(sl_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.deliver.eq(1)
                        m.next = "DELIVER"
        return m
