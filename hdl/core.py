"""The spiking core: one command stream in, one spike stream out.

See docs/core-architecture.md for the architecture and resource budget, :mod:`.image` for the
memory layout and the step algorithm, :mod:`.protocol` for the commands.

Blocks
------
:class:`AccumulatorUnit`
    1-event-per-clock read-modify-write of the per-neuron accumulator (``acc += value``,
    ``touched = 1``) on a 1R+1W memory, with forwarding for back-to-back hits on one target.
:class:`SpikingCore`
    Command decoder, delivery engine (queue → history → segment index → synapse streamer →
    accumulator unit) and the two-stage pipelined neuron pass.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import CoreConfig
from .image import (
    REGION_BITS,
    Region,
    acc_fields,
    index_fields,
    layout,
    offset_bits,
    param_fields,
    state_fields,
    synapse_fields,
)
from .protocol import Opcode, command_layout, spike_layout
from .spram import make_memory

__all__ = ["AccumulatorUnit", "SpikingCore"]


class AccumulatorUnit(wiring.Component):
    """Pipelined ``acc[addr] += value; touched[addr] = 1``, one event per clock.

    Owns the read port of ``acc`` only while ``enable`` is high (the neuron pass uses it
    otherwise). Latency: an event presented at cycle ``k`` is in memory after the edge ending
    cycle ``k + 1``; ``idle`` is high when nothing is in flight.

    Members
    -------
    valid, addr, value : In
        The event (``value`` signed, accumulator width).
    idle : Out
        No event past stage 0 (an event presented this cycle is not counted).
    overflow : Out
        Pulses when a sum wrapped (cannot happen for checked images and inputs).
    """

    def __init__(self, cfg: CoreConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "valid": In(1),
            "addr": In(cfg.neuron_bits),
            "value": In(signed(cfg.accumulator_bits)),
            "idle": Out(1),
            "overflow": Out(1),
            # ports borrowed from the parent (driven here, muxed there)
            "rd_addr": Out(cfg.neuron_bits),
            "rd_data": In(layout(acc_fields(cfg))),
            "wr_en": Out(1),
            "wr_addr": Out(cfg.neuron_bits),
            "wr_data": Out(layout(acc_fields(cfg))),
        })

    def elaborate(self, platform: object) -> Module:
        cfg = self._cfg
        m = Module()
        a = cfg.accumulator_bits
        p1_valid = Signal()
        p1_addr = Signal(cfg.neuron_bits)
        p1_value = Signal(signed(a))
        p2_valid = Signal()
        p2_addr = Signal(cfg.neuron_bits)
        p2_sum = Signal(signed(a))

        m.d.comb += self.rd_addr.eq(self.addr)
        m.d.sync += [p1_valid.eq(self.valid), p1_addr.eq(self.addr), p1_value.eq(self.value)]

        # forwarding decision precomputed one stage early (off the add's critical path)
        fwd = Signal()
        m.d.sync += fwd.eq(self.valid & p1_valid & (self.addr == p1_addr))
        old = Signal(signed(a))
        with m.If(fwd):
            m.d.comb += old.eq(p2_sum)
        with m.Else():
            m.d.comb += old.eq(self.rd_data.acc)
        wide = Signal(signed(a + 1))
        m.d.comb += wide.eq(old + p1_value)
        m.d.comb += [
            self.wr_en.eq(p1_valid),
            self.wr_addr.eq(p1_addr),
            self.wr_data.acc.eq(wide[:a]),
            self.wr_data.touched.eq(1),
            self.overflow.eq(p1_valid & (wide[a] != wide[a - 1])),
        ]
        m.d.sync += [p2_valid.eq(p1_valid), p2_addr.eq(p1_addr), p2_sum.eq(wide[:a])]
        m.d.comb += self.idle.eq(~p1_valid)
        return m


class SpikingCore(wiring.Component):
    """The spiking core for one :class:`CoreConfig`.

    Members
    -------
    cmd : In(stream.Signature(command_layout(cfg)))
        Commands (:mod:`.protocol`); ``ready`` is low while a command executes.
    spikes : Out(stream.Signature(spike_layout(cfg)))
        One beat per spike, in (time, neuron) order; back-pressure only stalls the core.
    busy : Out(1)
        A command is executing (or spikes are still buffered).
    timestep : Out(time_bits)
        Steps run since the last CLEAR (the next step to run).
    events : Out(32)
        Synaptic events delivered (wraps).
    cycles : Out(32)
        Clock cycles spent running steps (wraps).
    errors : Out(16)
        Ignored commands (unknown opcode, out-of-range address or neuron) plus accumulator
        overflows (wraps).
    """

    def __init__(self, cfg: CoreConfig, *, emulate_spram: bool = False) -> None:
        self.cfg = cfg
        self.emulate_spram = emulate_spram
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "spikes": Out(stream.Signature(spike_layout(cfg))),
            "busy": Out(1),
            "timestep": Out(cfg.time_bits),
            "events": Out(32),
            "cycles": Out(32),
            "errors": Out(16),
        })

    def elaborate(self, platform: object) -> Module:  # noqa: C901 - one FSM, read top-down
        cfg = self.cfg
        m = Module()
        N, D, db = cfg.n_neurons, cfg.max_delay, cfg.delay_bits
        nb = cfg.neuron_bits
        lo, hi = cfg.potential_range

        # ---------------------------------------------------------------- memories
        params = make_memory(m, "params", cfg, layout(param_fields(cfg)), N, platform, self.emulate_spram)
        index = make_memory(m, "index", cfg, layout(index_fields(cfg)), cfg.index_depth, platform, self.emulate_spram)
        syn = make_memory(m, "synapses", cfg, layout(synapse_fields(cfg)), cfg.n_synapses, platform, self.emulate_spram)
        state = make_memory(m, "state", cfg, layout(state_fields(cfg)), N, platform, self.emulate_spram)
        acc = make_memory(m, "acc", cfg, layout(acc_fields(cfg)), N, platform, self.emulate_spram)
        queue = make_memory(m, "queue", cfg, unsigned(nb), N, platform, self.emulate_spram)

        params_r, params_w = params.read_port(), params.write_port()
        index_r, index_w = index.read_port(), index.write_port()
        syn_r, syn_w = syn.read_port(), syn.write_port()
        state_r, state_w = state.read_port(), state.write_port()
        acc_r, acc_w = acc.read_port(), acc.write_port()
        queue_r, queue_w = queue.read_port(), queue.write_port()

        m.submodules.accu = accu = AccumulatorUnit(cfg)
        m.d.comb += accu.rd_data.eq(acc_r.data)

        # ---------------------------------------------------------------- counters
        t = Signal(cfg.time_bits)
        events = Signal(32)
        cycles = Signal(32)
        errors = Signal(16)
        err_inc = Signal(2)
        ovf = Signal()
        m.d.sync += [ovf.eq(accu.overflow), errors.eq(errors + err_inc + ovf)]
        m.d.comb += [self.timestep.eq(t), self.events.eq(events), self.cycles.eq(cycles),
                     self.errors.eq(errors)]

        steps_left = Signal(self.cmd.payload.data.shape())
        q_wr = Signal(nb + 1)  # neurons queued by the last neuron pass
        q_rd = Signal(nb + 1)
        clr_n = Signal(nb + 1)

        # ---------------------------------------------------------------- spike output FIFO
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(  # async read: stays in FFs, not EBR
            width=spike_layout(cfg).size, depth=8)
        m.d.comb += [
            self.spikes.payload.eq(out_fifo.r_data),
            self.spikes.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.spikes.ready),
        ]

        # ---------------------------------------------------------------- command decode
        cmd = self.cmd.payload
        ob = offset_bits(cfg)
        region = cmd.addr[ob:ob + REGION_BITS]
        offset = cmd.addr[:ob]
        in_value = Signal(signed(cfg.input_bits))
        m.d.comb += in_value.eq(cmd.data[:cfg.input_bits])

        # ---------------------------------------------------------------- delivery engine
        # Stage G: pop a queued neuron, read its history, walk its set bits, read the index.
        g_state = Signal(2)  # 0 fetch, 1 wait queue data, 2 wait state data, 3 walk
        g_n = Signal(nb)
        g_pend = Signal(D)
        deliver = Signal()  # high in the DELIVER state
        idx_inflight = Signal()
        m.submodules.seg_fifo = seg_fifo = fifo.SyncFIFO(width=cfg.syn_addr_bits, depth=4)

        lowest = Signal(db)
        for j in reversed(range(D)):
            with m.If(g_pend[j]):
                m.d.comb += lowest.eq(j)

        issue_idx = Signal()
        m.d.sync += idx_inflight.eq(issue_idx)
        with m.If(idx_inflight & index_r.data.valid):
            m.d.comb += [seg_fifo.w_en.eq(1), seg_fifo.w_data.eq(index_r.data.start)]
        m.d.comb += index_r.addr.eq(Cat(lowest, g_n))
        m.d.comb += queue_r.addr.eq(q_rd)

        g_busy = Signal()
        m.d.comb += g_busy.eq((g_state != 0) | (q_rd != q_wr))
        with m.If(deliver):
            with m.Switch(g_state):
                with m.Case(0):
                    with m.If(q_rd != q_wr):
                        m.d.sync += g_state.eq(1)
                with m.Case(1):
                    m.d.sync += [g_n.eq(queue_r.data), g_state.eq(2), q_rd.eq(q_rd + 1)]
                with m.Case(2):
                    m.d.sync += [g_pend.eq(state_r.data.hist), g_state.eq(3)]
                with m.Case(3):
                    with m.If(g_pend == 0):
                        m.d.sync += g_state.eq(0)
                    with m.Elif(seg_fifo.level + idx_inflight < seg_fifo.depth):
                        m.d.comb += issue_idx.eq(1)
                        m.d.sync += g_pend.eq(g_pend & (g_pend - 1))

        # Streamer: one synapse per clock; the next address is chosen from the word just read.
        s_valid = Signal()
        s_addr = Signal(cfg.syn_addr_bits)
        next_addr = Signal(cfg.syn_addr_bits)
        issue_syn = Signal()
        ev = syn_r.data
        take_next = ~s_valid | ev.last
        with m.If(deliver):
            with m.If(take_next):
                with m.If(seg_fifo.r_rdy):
                    m.d.comb += [next_addr.eq(seg_fifo.r_data), seg_fifo.r_en.eq(1), issue_syn.eq(1)]
            with m.Else():
                m.d.comb += [next_addr.eq(s_addr + 1), issue_syn.eq(1)]
        m.d.comb += syn_r.addr.eq(next_addr)
        m.d.sync += [s_valid.eq(issue_syn), s_addr.eq(next_addr)]
        with m.If(s_valid):
            m.d.sync += events.eq(events + 1)

        deliver_done = Signal()
        m.d.comb += deliver_done.eq(~g_busy & ~idx_inflight & ~seg_fifo.r_rdy & ~s_valid & accu.idle)

        # ---------------------------------------------------------------- neuron pass
        np_run = Signal()  # high in the NEURON state
        np_n = Signal(nb + 1)
        v1 = Signal()  # stage 1 valid
        n1 = Signal(nb)
        v2 = Signal()
        n2 = Signal(nb)
        v3 = Signal()
        n3 = Signal(nb)
        v4 = Signal()
        n4 = Signal(nb)
        issue_np = Signal()
        # at most 4 neurons in flight, each may push one spike: keep 4 + 1 free FIFO places
        m.d.comb += issue_np.eq(np_run & (np_n < N) & (out_fifo.level <= out_fifo.depth - 5))
        m.d.sync += [v1.eq(issue_np), n1.eq(np_n[:nb]), v2.eq(v1), n2.eq(n1),
                     v3.eq(v2), n3.eq(n2), v4.eq(v3), n4.eq(n3)]
        with m.If(issue_np):
            m.d.sync += np_n.eq(np_n + 1)

        # stage 1: leak, floor (data of neuron n1 is on the read ports)
        P = cfg.potential_bits
        p = params_r.data
        s = state_r.data
        v = s.v
        v_shift = Signal(signed(P))
        m.d.comb += v_shift.eq(v - (v >> p.shift))
        v_leak = Signal(signed(P))
        with m.Switch(p.leak):
            with m.Case(1):
                m.d.comb += v_leak.eq(0)
            with m.Case(2):
                m.d.comb += v_leak.eq(v_shift)
            with m.Default():
                m.d.comb += v_leak.eq(v)
        r2_v = Signal(signed(P))
        r2_active = Signal()
        r2_refr = Signal(cfg.refractory_bits)
        r2_hist = Signal(D)
        r2_acc = Signal(signed(cfg.accumulator_bits))
        r2_touched = Signal()
        r2_bias = Signal(signed(cfg.bias_bits))
        r2_th = Signal(cfg.threshold_bits)
        r2_reset = Signal()
        r2_rp = Signal(cfg.refractory_bits)
        m.d.sync += [
            r2_v.eq(Mux(v_leak < p.v_min, p.v_min, v_leak)),
            r2_active.eq(s.refr == 0),
            r2_refr.eq(s.refr),
            r2_hist.eq(s.hist),
            r2_acc.eq(acc_r.data.acc),
            r2_touched.eq(acc_r.data.touched),
            r2_bias.eq(p.bias),
            r2_th.eq(p.threshold),
            r2_reset.eq(p.reset),
            r2_rp.eq(p.refractory),
        ]
        # stage 2: the exact sum v + bias + acc
        r3_total = Signal(signed(max(P, cfg.accumulator_bits, cfg.bias_bits) + 2))
        r3_v = Signal(signed(P))
        r3_active = Signal()
        r3_refr = Signal(cfg.refractory_bits)
        r3_hist = Signal(D)
        r3_touch = Signal()
        r3_th = Signal(cfg.threshold_bits)
        r3_reset = Signal()
        r3_rp = Signal(cfg.refractory_bits)
        m.d.sync += [
            r3_total.eq(r2_v + r2_bias + r2_acc),
            r3_v.eq(r2_v), r3_active.eq(r2_active), r3_refr.eq(r2_refr), r3_hist.eq(r2_hist),
            r3_touch.eq(r2_touched | (r2_bias != 0)), r3_th.eq(r2_th), r3_reset.eq(r2_reset),
            r3_rp.eq(r2_rp),
        ]
        # stage 3: saturate, fire, reset
        sat = Signal(signed(P))
        m.d.comb += sat.eq(Mux(r3_total > hi, hi, Mux(r3_total < lo, lo, r3_total)))
        fire = Signal()
        m.d.comb += fire.eq(r3_active & r3_touch & (sat >= r3_th))
        new_v = Signal(signed(P))
        new_refr = Signal(cfg.refractory_bits)
        with m.If(~r3_active):
            m.d.comb += [new_v.eq(r3_v), new_refr.eq(r3_refr - 1)]
        with m.Elif(fire):
            m.d.comb += [new_v.eq(Mux(r3_reset, sat - r3_th, 0)), new_refr.eq(r3_rp)]
        with m.Else():
            m.d.comb += [new_v.eq(sat), new_refr.eq(0)]
        # stage 4: write back (registered results)
        r4_v = Signal(signed(P))
        r4_refr = Signal(cfg.refractory_bits)
        r4_hist = Signal(D)
        r4_fire = Signal()
        m.d.sync += [
            r4_v.eq(new_v), r4_refr.eq(new_refr), r4_fire.eq(fire),
            r4_hist.eq(Cat(fire, r3_hist[:-1]) if D > 1 else fire),
        ]

        # ---------------------------------------------------------------- port muxing
        # params / state / acc read ports: neuron pass address by default; delivery reads
        # the state (history) of the neuron it walks; the accumulator unit owns acc otherwise.
        m.d.comb += params_r.addr.eq(np_n[:nb])
        with m.If(deliver):
            m.d.comb += state_r.addr.eq(queue_r.data)
        with m.Else():
            m.d.comb += state_r.addr.eq(np_n[:nb])
        with m.If(np_run):
            m.d.comb += acc_r.addr.eq(np_n[:nb])
        with m.Else():
            m.d.comb += acc_r.addr.eq(accu.rd_addr)

        clearing = Signal()
        # v4 (neuron pass) and clearing never overlap; keep the spike/queue writes off the
        # command-decode paths for timing
        with m.If(v4):
            m.d.comb += [
                state_w.en.eq(1), state_w.addr.eq(n4),
                state_w.data.v.eq(r4_v), state_w.data.refr.eq(r4_refr), state_w.data.hist.eq(r4_hist),
                acc_w.en.eq(1), acc_w.addr.eq(n4), acc_w.data.eq(0),
            ]
        with m.Elif(clearing):
            m.d.comb += [
                state_w.en.eq(1), state_w.addr.eq(clr_n[:nb]), state_w.data.eq(0),
                acc_w.en.eq(1), acc_w.addr.eq(clr_n[:nb]), acc_w.data.eq(0),
            ]
        with m.Else():
            m.d.comb += [
                acc_w.en.eq(accu.wr_en), acc_w.addr.eq(accu.wr_addr), acc_w.data.eq(accu.wr_data),
            ]
        m.d.comb += [
            queue_w.en.eq(v4 & (r4_hist != 0)), queue_w.addr.eq(q_wr), queue_w.data.eq(n4),
            out_fifo.w_en.eq(v4 & r4_fire), out_fifo.w_data.eq(Cat(n4, t)),
        ]
        with m.If(v4 & (r4_hist != 0)):
            m.d.sync += q_wr.eq(q_wr + 1)

        # accumulator unit input: synapse events while delivering, INPUT commands when idle
        with m.If(s_valid):
            m.d.comb += [accu.valid.eq(1), accu.addr.eq(ev.post), accu.value.eq(ev.weight)]

        # ---------------------------------------------------------------- control FSM
        running = Signal()
        m.d.comb += self.busy.eq(running | out_fifo.r_rdy)
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    with m.If(cmd.op == Opcode.NOP):
                        pass
                    with m.Elif(cmd.op == Opcode.WRITE):
                        with m.If((region == int(Region.PARAMS)) & (offset < N)):
                            m.d.comb += [params_w.en.eq(1), params_w.addr.eq(offset), params_w.data.eq(cmd.data)]
                        with m.Elif((region == int(Region.INDEX)) & (offset < cfg.index_depth)):
                            m.d.comb += [index_w.en.eq(1), index_w.addr.eq(offset), index_w.data.eq(cmd.data)]
                        with m.Elif((region == int(Region.SYNAPSES)) & (offset < cfg.n_synapses)):
                            m.d.comb += [syn_w.en.eq(1), syn_w.addr.eq(offset), syn_w.data.eq(cmd.data)]
                        with m.Else():
                            m.d.comb += err_inc.eq(1)
                    with m.Elif(cmd.op == Opcode.INPUT):
                        with m.If(cmd.addr < N):
                            m.d.comb += [accu.valid.eq(1), accu.addr.eq(cmd.addr), accu.value.eq(in_value)]
                        with m.Else():
                            m.d.comb += err_inc.eq(1)
                    with m.Elif(cmd.op == Opcode.RUN):
                        with m.If(cmd.data != 0):
                            m.d.sync += steps_left.eq(cmd.data)
                            m.next = "DELIVER"
                    with m.Elif(cmd.op == Opcode.CLEAR):
                        m.d.sync += clr_n.eq(0)
                        m.next = "CLEAR"
                    with m.Else():
                        m.d.comb += err_inc.eq(1)
            with m.State("CLEAR"):
                # let in-flight INPUT events land first, then overwrite everything
                with m.If(accu.idle):
                    m.d.comb += clearing.eq(1)
                    m.d.sync += clr_n.eq(clr_n + 1)
                    with m.If(clr_n == N - 1):
                        m.d.sync += [t.eq(0), q_rd.eq(0), q_wr.eq(0)]
                        m.next = "IDLE"
            with m.State("DELIVER"):
                m.d.comb += [running.eq(1), deliver.eq(1)]
                with m.If(deliver_done):
                    m.d.sync += [np_n.eq(0), q_rd.eq(0), q_wr.eq(0)]
                    m.next = "NEURON"
            with m.State("NEURON"):
                m.d.comb += [running.eq(1), np_run.eq(1)]
                with m.If((np_n == N) & ~v1 & ~v2 & ~v3 & ~v4):
                    m.d.sync += [t.eq(t + 1), steps_left.eq(steps_left - 1)]
                    with m.If(steps_left == 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DELIVER"
        return m

