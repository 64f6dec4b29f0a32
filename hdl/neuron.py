"""The neuron pass: every neuron updated once per step, one per clock, in 8 register stages.

(1) memory outputs; (2) ``v >> k``, bias + acc; (3) leak; (4) floor; (5) sum; (6) saturate;
(7) fire / reset / refractory / history; (8) write back, delivery queue bitmap, spike.

The ``params`` and ``state`` words are each split over two memories of the same total block
count (:func:`memory_layouts`): the fields the pass needs early, and those it needs only at its
fire stage (read 5 cycles later instead of being carried through the pipeline registers).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .blocks import read_port, write_port
from .config import CoreConfig
from .delivery import addr_bits, bitmap_geometry
from .image import acc_fields, layout, param_fields, state_fields

__all__ = ["LATE_PARAMS", "NeuronPipeline", "memory_layouts"]

#: The params fields the pass reads at its fire stage (the ``params_late`` memory).
LATE_PARAMS = ("threshold", "reset", "refractory")


def memory_layouts(cfg: CoreConfig) -> dict[str, data.StructLayout]:
    """The layouts of the ``params``, ``params_late``, ``state`` and ``state_late`` memories."""
    p_all, s_all = param_fields(cfg), state_fields(cfg)
    return {
        "params": layout([f for f in p_all if f.name not in LATE_PARAMS]),
        "params_late": layout([f for f in p_all if f.name in LATE_PARAMS]),
        "state": layout([f for f in s_all if f.name == "v"]),
        "state_late": layout([f for f in s_all if f.name != "v"]),
    }


class NeuronPipeline(wiring.Component):
    """The per-neuron update pass of one step.

    Parameters
    ----------
    cfg
        The core configuration.
    spike_depth
        Places of the spike queue ``spike_level`` counts (every neuron in flight may push
        one spike, so a neuron is issued only while the queue has room for all of them).

    Members
    -------
    run : In(1)
        Run the pass (the NEURON state); while low, the pass rests at neuron 0.
    done : Out(1)
        Every neuron is written back (registered; stays high while ``run``).
    spike_level : In(range(spike_depth + 1))
        Entries in the spike queue.
    params, params_late, state, state_late, acc : Out(read_port)
        The memories' read ports (``params`` / ``state`` / ``acc`` at the issued neuron,
        ``params_late`` / ``state_late`` at stage 5's).
    state_w, state_late_w, acc_w, queue_w : Out(write_port)
        Stage 8's writes: the new state, the accumulator cleared, the bitmap word (written on
        the last neuron of a word).
    spikes : Out(stream.Signature(neuron_bits, always_ready=True))
        The neurons that fire, at stage 8.
    """

    STAGES = 8

    def __init__(self, cfg: CoreConfig, spike_depth: int) -> None:
        self.cfg, self.spike_depth = cfg, spike_depth
        nb = cfg.neuron_bits
        lay = memory_layouts(cfg)
        acc = layout(acc_fields(cfg))
        QB, QW, NW = bitmap_geometry(cfg)
        super().__init__({
            "run": In(1),
            "done": Out(1),
            "spike_level": In(range(spike_depth + 1)),
            "params": Out(read_port(nb, lay["params"])),
            "params_late": Out(read_port(nb, lay["params_late"])),
            "state": Out(read_port(nb, lay["state"])),
            "state_late": Out(read_port(nb, lay["state_late"])),
            "acc": Out(read_port(nb, acc)),
            "state_w": Out(write_port(nb, lay["state"])),
            "state_late_w": Out(write_port(nb, lay["state_late"])),
            "acc_w": Out(write_port(nb, acc)),
            "queue_w": Out(write_port(addr_bits(NW), QW)),
            "spikes": Out(stream.Signature(nb, always_ready=True)),
        })

    def elaborate(self, platform: Any) -> Module:
        cfg = self.cfg
        m = Module()
        N, nb = cfg.n_neurons, cfg.neuron_bits
        S = self.STAGES

        # issue: 1 neuron/clock while the spike queue has room for every neuron in flight
        np_n = Signal(nb + 1)
        vs = [Signal(name=f"np_v{i}") for i in range(S + 1)]  # vs[i]: stage i valid
        ns = [Signal(nb, name=f"np_n{i}") for i in range(S + 1)]
        issue = Signal()
        inflight = Signal(range(S + 2))
        room = Signal(range(-S - 2, self.spike_depth + 1))  # registered lower bound of the free places
        m.d.sync += inflight.eq(inflight + issue - vs[S])
        m.d.sync += room.eq(self.spike_depth - self.spike_level - inflight - issue)
        m.d.comb += issue.eq(self.run & (np_n < N) & (room >= 1))
        m.d.comb += [vs[0].eq(issue), ns[0].eq(np_n[:nb])]
        for i in range(1, S + 1):
            m.d.sync += [vs[i].eq(vs[i - 1]), ns[i].eq(ns[i - 1])]
        with m.If(issue):
            m.d.sync += np_n.eq(np_n + 1)
        with m.If(~self.run):
            m.d.sync += np_n.eq(0)
        m.d.sync += self.done.eq(self.run & (np_n == N) & (inflight == 0))
        m.d.comb += [self.params.addr.eq(np_n[:nb]), self.state.addr.eq(np_n[:nb]), self.acc.addr.eq(np_n[:nb]),
                     self.params_late.addr.eq(ns[5]), self.state_late.addr.eq(ns[5])]

        v, refr, hist, fire, queued = self.update(m)

        # stage 8: write back the registered results of stage 7, queue, spike
        wb, wb_n = vs[S], ns[S]
        m.d.comb += [
            self.state_w.en.eq(wb), self.state_w.addr.eq(wb_n), self.state_w.data.v.eq(v),
            self.state_late_w.en.eq(wb), self.state_late_w.addr.eq(wb_n),
            self.state_late_w.data.refr.eq(refr), self.state_late_w.data.hist.eq(hist),
            self.acc_w.en.eq(wb), self.acc_w.addr.eq(wb_n), self.acc_w.data.eq(0),
            self.spikes.valid.eq(wb & fire), self.spikes.payload.eq(wb_n),
        ]
        # bitmap writer: the pass visits n in order; collect a word's bits, write it on its
        # last neuron (or neuron N - 1)
        QB, QW, _ = bitmap_geometry(cfg)
        qacc = Signal(QW)
        q_word = Signal(QW)
        q_pos = wb_n[:QB] if QB else 0
        m.d.comb += q_word.eq(qacc | Mux(queued, (1 << q_pos) if QB else 1, 0))
        q_end = Signal()
        m.d.comb += q_end.eq(((q_pos == QW - 1) if QB else 1) | (wb_n == N - 1))
        with m.If(wb):
            m.d.sync += qacc.eq(Mux(q_end, 0, q_word))
        m.d.comb += [self.queue_w.en.eq(wb & q_end), self.queue_w.addr.eq(wb_n[QB:]), self.queue_w.data.eq(q_word)]
        return m

    def update(self, m: Module) -> tuple[Signal, Signal, Signal, Signal, Signal]:
        """Stages 1 to 7 (the neuron contract); returns stage 7's registers ``(v, refr, hist,
        fire, queued)`` (``queued``: history ≠ 0 after the shift)."""
        cfg = self.cfg
        D = cfg.max_delay
        lo, hi = cfg.potential_range
        P = cfg.potential_bits
        A = cfg.accumulator_bits
        p = self.params.data
        sw = max(P, A, cfg.bias_bits) + 2  # exact sum width

        def regs(name: str, shape: object, *, n: int) -> list[Signal]:
            return [Signal(shape, name=f"np{k}_{name}") for k in range(n)]

        # Naming: ``rK_x`` / ``x[K]`` are valid in the cycle where stage K + 1 is.
        # stage 1: memory outputs registered (ends the EBR clock-to-out paths)
        r1_v = Signal(signed(P))
        r1_acc = Signal(signed(A))
        r1_touched = Signal()
        r1_p = Signal.like(p)
        m.d.sync += [r1_v.eq(self.state.data.v), r1_acc.eq(self.acc.data.acc),
                     r1_touched.eq(self.acc.data.touched), r1_p.eq(p)]
        # carried through the later stages unchanged
        vmin = regs("vmin", signed(P), n=4)
        leak = regs("leak", 2, n=3)
        touch = regs("touch", 1, n=7)
        ba = regs("ba", signed(sw), n=5)  # bias + acc
        m.d.comb += [vmin[1].eq(r1_p.v_min), leak[1].eq(r1_p.leak),
                     touch[1].eq(r1_touched | (r1_p.bias != 0)), ba[1].eq(r1_p.bias + r1_acc)]
        for k in range(2, 7):
            m.d.sync += touch[k].eq(touch[k - 1])
            if k < 4:
                m.d.sync += vmin[k].eq(vmin[k - 1])
            if k < 3:
                m.d.sync += leak[k].eq(leak[k - 1])
            if k < 5:
                m.d.sync += ba[k].eq(ba[k - 1])
        # the late fields: read with the address of stage 5, registered, valid with stage 6
        th6 = Signal(cfg.threshold_bits)
        rst6 = Signal()
        rp6 = Signal(cfg.refractory_bits)
        refr6 = Signal(cfg.refractory_bits)
        hist6 = Signal(D)
        pl, sl = self.params_late.data, self.state_late.data
        m.d.sync += [th6.eq(pl.threshold), rst6.eq(pl.reset), rp6.eq(pl.refractory), refr6.eq(sl.refr),
                     hist6.eq(sl.hist)]
        # stage 2: v >> k
        r2_v = Signal(signed(P))
        r2_vsh = Signal(signed(P))
        m.d.sync += [r2_v.eq(r1_v), r2_vsh.eq(r1_v >> r1_p.shift)]
        # stage 3: leak
        r3_v = Signal(signed(P))
        with m.Switch(leak[2]):
            with m.Case(1):
                m.d.sync += r3_v.eq(0)
            with m.Case(2):
                m.d.sync += r3_v.eq(r2_v - r2_vsh)
            with m.Default():
                m.d.sync += r3_v.eq(r2_v)
        # stage 4: floor at v_min (also the potential kept while refractory)
        r4_v = Signal(signed(P))
        m.d.sync += r4_v.eq(Mux(r3_v < vmin[3], vmin[3], r3_v))
        # stage 5: the exact sum v + bias + acc
        r5_v = Signal(signed(P))
        r5_total = Signal(signed(sw))
        m.d.sync += [r5_v.eq(r4_v), r5_total.eq(r4_v + ba[4])]
        # stage 6: saturate
        r6_v = Signal(signed(P))
        r6_sat = Signal(signed(P))
        m.d.sync += [r6_v.eq(r5_v), r6_sat.eq(Mux(r5_total > hi, hi, Mux(r5_total < lo, lo, r5_total)))]
        # stage 7: fire, reset, refractory, history
        active = Signal()
        m.d.comb += active.eq(refr6 == 0)
        diff = Signal(signed(P + 1))
        m.d.comb += diff.eq(r6_sat - th6)
        fire = Signal()
        m.d.comb += fire.eq(active & touch[6] & (diff >= 0))
        r7_v = Signal(signed(P))
        r7_refr = Signal(cfg.refractory_bits)
        r7_hist = Signal(D)
        r7_fire = Signal()
        with m.If(~active):
            m.d.sync += [r7_v.eq(r6_v), r7_refr.eq(refr6 - 1)]
        with m.Elif(fire):
            m.d.sync += [r7_v.eq(Mux(rst6, diff, 0)), r7_refr.eq(rp6)]
        with m.Else():
            m.d.sync += [r7_v.eq(r6_sat), r7_refr.eq(0)]
        m.d.sync += [r7_fire.eq(fire), r7_hist.eq(Cat(fire, hist6[:-1]) if D > 1 else fire)]
        r7_queue = Signal()  # history != 0 after the shift (precomputed off the write path)
        m.d.sync += r7_queue.eq(fire | ((hist6[:-1] != 0) if D > 1 else 0))
        return r7_v, r7_refr, r7_hist, r7_fire, r7_queue
