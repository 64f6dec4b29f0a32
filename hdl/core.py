"""The spiking core: one command stream in, one spike stream out.

See docs/core-architecture.md for the architecture and resource budget, :mod:`.image` for the
memory layout and the step algorithm, :mod:`.protocol` for the commands.

Blocks
------
:class:`AccumulatorUnit`
    1-event-per-clock read-modify-write of the per-neuron accumulator (``acc += value``,
    ``touched = 1``) on a 1R+1W memory, with forwarding for back-to-back hits on one target.
:class:`SpikingCore`
    Registered command decoder, delivery engine (queue bitmap scanner → history fetch →
    history-bit walker → segment index → synapse streamer → accumulator unit, decoupled by
    :class:`FFQueue` FIFOs with credit) and the 8-stage pipelined neuron pass.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Elaboratable, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ConfigError, CoreConfig
from .image import (
    REGION_BITS,
    CoreImage,
    Region,
    acc_fields,
    index_fields,
    layout,
    offset_bits,
    param_fields,
    state_fields,
    synapse_fields,
    unpack,
)
from .protocol import Opcode, command_layout, spike_layout
from .spram import make_memory

__all__ = ["AccumulatorUnit", "FFQueue", "SpikingCore", "check_bakeable"]


def onehot_index(onehot: Value, width: int, bits: int) -> Value:
    """Binary index (``bits`` wide) of the one set bit of ``onehot`` (no priority chain: bit ``b``
    of the index ORs the inputs whose position has bit ``b`` set)."""
    return Cat(*(Cat(*(onehot[k] for k in range(width) if (k >> b) & 1)).any() for b in range(bits)))


class FFQueue(Elaboratable):
    """A small FIFO in flip-flops (never inferred as block RAM), asynchronous read.

    ``w_en``/``w_data`` push (the caller guarantees room), ``r_en`` pops when ``r_rdy``;
    ``r_data`` is the head, ``level`` the number of entries.
    """

    def __init__(self, width: int, depth: int) -> None:
        self.width, self.depth = width, depth
        self.w_en, self.w_data = Signal(), Signal(width)
        self.r_en, self.r_data, self.r_rdy = Signal(), Signal(width), Signal()
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        ring = Array(Signal(self.width, name=f"slot{i}") for i in range(self.depth))
        wp = Signal(range(self.depth))
        rp = Signal(range(self.depth))
        pop = Signal()
        m.d.comb += [self.r_rdy.eq(self.level != 0), pop.eq(self.r_en & self.r_rdy), self.r_data.eq(ring[rp])]
        with m.If(self.w_en):
            m.d.sync += [ring[wp].eq(self.w_data), wp.eq(Mux(wp == self.depth - 1, 0, wp + 1))]
        with m.If(pop):
            m.d.sync += rp.eq(Mux(rp == self.depth - 1, 0, rp + 1))
        m.d.sync += self.level.eq(self.level + self.w_en - pop)
        return m


class AccumulatorUnit(wiring.Component):
    """Pipelined ``acc[addr] += value; touched[addr] = 1``, one event per clock.

    Owns the read port of ``acc`` only while ``enable`` is high (the neuron pass uses it
    otherwise). Stages: **A** the event is registered and its address drives the read port;
    **B** the read data arrives and is registered (forwarded from the sum of the event two
    ahead when it targets the same neuron); **C** ``sum = old + value`` (``old`` forwarded
    from the event one ahead on a hit) is written. So the memory output, the adder and the
    write port are in separate register stages and only a 2:1 mux precedes the adder; both
    forwarding decisions are compares of registered addresses, one stage early.

    Members
    -------
    valid, addr, value : In
        The event (``value`` signed, accumulator width).
    idle : Out
        No event in the pipeline (an event presented this cycle is not counted); once high,
        every accepted event is in memory.
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
        a, nb = cfg.accumulator_bits, cfg.neuron_bits

        def stage(name: str) -> tuple[Signal, Signal, Signal]:
            return Signal(name=f"{name}_valid"), Signal(nb, name=f"{name}_addr"), Signal(signed(a), name=f"{name}_value")

        av, aa, ax = stage("a")
        bv, ba, bx = stage("b")
        cv, ca, cx = stage("c")
        s1v, s1a, s1 = stage("s1")  # the event that was in C one cycle ago (its sum)
        b_fwd = Signal()  # B: take the read data from s1 (the event two ahead)
        c_fwd = Signal()  # C: take old from s1 (the event one ahead)
        c_raw = Signal(signed(a))

        m.d.sync += [av.eq(self.valid), aa.eq(self.addr), ax.eq(self.value)]
        m.d.comb += self.rd_addr.eq(aa)
        m.d.sync += [bv.eq(av), ba.eq(aa), bx.eq(ax), b_fwd.eq(av & cv & (aa == ca))]
        m.d.sync += [cv.eq(bv), ca.eq(ba), cx.eq(bx), c_fwd.eq(bv & cv & (ba == ca)),
                     c_raw.eq(Mux(b_fwd, s1, self.rd_data.acc))]
        old = Signal(signed(a))
        m.d.comb += old.eq(Mux(c_fwd, s1, c_raw))
        wide = Signal(signed(a + 1))
        m.d.comb += wide.eq(old + cx)
        m.d.comb += [
            self.wr_en.eq(cv),
            self.wr_addr.eq(ca),
            self.wr_data.acc.eq(wide[:a]),
            self.wr_data.touched.eq(1),
            self.overflow.eq(cv & (wide[a] != wide[a - 1])),
        ]
        m.d.sync += [s1v.eq(cv), s1a.eq(ca), s1.eq(wide[:a])]
        m.d.comb += self.idle.eq(~av & ~bv & ~cv)
        return m


def check_bakeable(cfg: CoreConfig, image: CoreImage) -> None:
    """Refuse to bake ``image`` into a core for ``cfg`` (see :class:`SpikingCore` ``image``).

    Raises
    ------
    ImageError
        The image was lowered for another configuration.
    ConfigError
        ``cfg`` keeps memories in SPRAM, which the iCE40 bitstream cannot initialise.
    """
    image.check_config(cfg)
    if cfg.spram:
        raise ConfigError(
            f"core {cfg.name!r} keeps {', '.join(cfg.spram)} in SPRAM, which the iCE40 bitstream cannot "
            "initialise, so a network cannot be baked into it; use a configuration whose memories are "
            "all block RAM (spram=())")


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

    Parameters
    ----------
    cfg
        The core configuration.
    emulate_spram
        Build the iCE40 SPRAM mapping on behavioural blocks (simulation only).
    image
        A network baked in: the ``params``, ``index`` and ``synapses`` memories start with
        its contents (:meth:`~.image.CoreImage.memories`, what its ``WRITE`` commands load)
        and the neuron state starts at zero as after ``CLEAR``, so the core runs it from
        power-up. WRITE commands still overwrite it. Refused for a configuration with SPRAM
        memories (``cfg.spram``: the iCE40 bitstream cannot initialise SPRAM) and for an
        image lowered for another configuration.
    """

    def __init__(self, cfg: CoreConfig, *, emulate_spram: bool = False, image: CoreImage | None = None) -> None:
        if image is not None:
            check_bakeable(cfg, image)
        self.cfg = cfg
        self.emulate_spram = emulate_spram
        self.image = image
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
        # params and state are each split in two memories of the same total block count: the
        # fields the neuron pass needs early, and those it needs only at its fire stage (read
        # 5 cycles later instead of being carried through the pipeline registers)
        late_p = ("threshold", "reset", "refractory")
        p_all = param_fields(cfg)
        init: dict[str, list[dict[str, int]] | None] = dict.fromkeys(("params", "params_late", "index", "synapses"))
        if self.image is not None:  # a baked network: the image's words, split like the memories
            mem = self.image.memories()
            words = [unpack(p_all, w) for w in mem["params"]]
            init["params"] = [{k: v for k, v in w.items() if k not in late_p} for w in words]
            init["params_late"] = [{k: v for k, v in w.items() if k in late_p} for w in words]
            init["index"] = [unpack(index_fields(cfg), w) for w in mem["index"]]
            init["synapses"] = [unpack(synapse_fields(cfg), w) for w in mem["synapses"]]
        params = make_memory(m, "params", cfg, layout([f for f in p_all if f.name not in late_p]), N, platform,
                             self.emulate_spram, init["params"])
        params_l = make_memory(m, "params_late", cfg, layout([f for f in p_all if f.name in late_p]), N, platform,
                               self.emulate_spram, init["params_late"])
        index = make_memory(m, "index", cfg, layout(index_fields(cfg)), cfg.index_depth, platform, self.emulate_spram,
                            init["index"])
        syn = make_memory(m, "synapses", cfg, layout(synapse_fields(cfg)), cfg.n_synapses, platform, self.emulate_spram,
                          init["synapses"])
        s_all = state_fields(cfg)
        state = make_memory(m, "state", cfg, layout([f for f in s_all if f.name == "v"]), N, platform,
                            self.emulate_spram)
        state_l = make_memory(m, "state_late", cfg, layout([f for f in s_all if f.name != "v"]), N, platform,
                              self.emulate_spram)
        acc = make_memory(m, "acc", cfg, layout(acc_fields(cfg)), N, platform, self.emulate_spram)
        # the delivery queue as a bitmap: bit n of word n // QW = neuron n has history ≠ 0
        QB = min(4, nb)
        QW = 1 << QB
        NW = -(-N // QW)
        queue = make_memory(m, "queue", cfg, unsigned(QW), NW, platform, self.emulate_spram)

        params_r, params_w = params.read_port(), params.write_port()
        index_r, index_w = index.read_port(), index.write_port()
        syn_r, syn_w = syn.read_port(), syn.write_port()
        state_r, state_w = state.read_port(), state.write_port()
        params_lr, params_lw = params_l.read_port(), params_l.write_port()
        state_lr, state_lw = state_l.read_port(), state_l.write_port()
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
        sc_w = Signal(range(NW + 1))  # next bitmap word to scan
        clr_n = Signal(nb + 1)

        # ---------------------------------------------------------------- spike output FIFO
        # A ring of SPIKE_DEPTH registers (plain FFs: no block RAM) and a registered output
        # slice, so the ring's read mux ends in FFs, not in the consumer.
        SPIKE_DEPTH = 12
        sw_bits = spike_layout(cfg).size
        ring = Array(Signal(sw_bits, name=f"spike{i}") for i in range(SPIKE_DEPTH))
        sp_wp = Signal(range(SPIKE_DEPTH))
        sp_rp = Signal(range(SPIKE_DEPTH))
        sp_level = Signal(range(SPIKE_DEPTH + 1))
        sp_push = Signal()
        sp_data = Signal(sw_bits)
        sp_pop = Signal()
        o_valid = Signal()
        o_load = Signal()
        m.d.comb += [
            o_load.eq(~o_valid | self.spikes.ready),
            sp_pop.eq(o_load & (sp_level != 0)),
            self.spikes.valid.eq(o_valid),
        ]
        with m.If(sp_push):
            m.d.sync += [ring[sp_wp].eq(sp_data), sp_wp.eq(Mux(sp_wp == SPIKE_DEPTH - 1, 0, sp_wp + 1))]
        with m.If(sp_pop):
            m.d.sync += sp_rp.eq(Mux(sp_rp == SPIKE_DEPTH - 1, 0, sp_rp + 1))
        m.d.sync += sp_level.eq(sp_level + sp_push - sp_pop)
        with m.If(o_load):
            m.d.sync += [o_valid.eq(sp_level != 0), self.spikes.payload.eq(ring[sp_rp])]

        # ---------------------------------------------------------------- command decode
        cmd = self.cmd.payload
        ob = offset_bits(cfg)
        region = cmd.addr[ob:ob + REGION_BITS]
        offset = cmd.addr[:ob]

        # ---------------------------------------------------------------- delivery engine
        # Three decoupled, fully pipelined stages, each 1 item per clock, joined by FIFOs in
        # FFs with registered credit (``room``: a lower bound of the free places minus the
        # items in flight towards the FIFO, so a FIFO never overflows):
        #   scanner  bitmap words -> word queue -> one queued neuron per clock
        #   fetcher  state[n].hist -> (n, hist, rest, last) into nh_fifo
        #   walker   one set history bit j per clock -> index[(n << Db) | j] -> seg_fifo
        #   streamer (below) one synapse per clock from the segment starts in seg_fifo
        deliver = Signal()  # high in the DELIVER state (a register, set on the transitions)

        def credit(depth: int, level: Value, pending: Value, name: str) -> Signal:
            # counts an issue this cycle as if it happened (keeps the issue logic off the sum)
            room = Signal(range(-depth - 4, depth + 1), name=f"{name}_room")
            m.d.sync += room.eq(depth - 1 - level - pending)
            return room

        # scanner: bitmap word reads (1/clk) into a 3-word queue; qb holds the word being
        # split, qb_rest = qb minus its lowest bit (lowest = qb ^ qb_rest, as in the walker)
        WQ_DEPTH = 3
        wbits = max(1, nb - QB)
        # entries: word, rest = word minus its lowest bit, rest == 0, word != 0, word address
        m.submodules.wq = wq = FFQueue(2 * QW + 2 + wbits, WQ_DEPTH)
        sc_inflight = Signal()
        sc_base = Signal(wbits)
        sc_issue = Signal()
        sc_d1 = Signal()  # the word read, registered
        sc_word = Signal(QW)
        sc_base1 = Signal(wbits)
        wq_room = credit(WQ_DEPTH, wq.level, sc_inflight + sc_d1, "wq")
        m.d.comb += [queue_r.addr.eq(sc_w), sc_issue.eq(deliver & (sc_w != NW) & (wq_room >= 1))]
        with m.If(sc_issue):
            m.d.sync += sc_w.eq(sc_w + 1)
        m.d.sync += [sc_inflight.eq(sc_issue), sc_base.eq(sc_w)]
        m.d.sync += [sc_d1.eq(sc_inflight), sc_word.eq(queue_r.data), sc_base1.eq(sc_base)]
        sc_rest = Signal(QW)
        m.d.comb += sc_rest.eq(sc_word & (sc_word - 1))
        m.d.comb += [wq.w_en.eq(sc_d1),
                     wq.w_data.eq(Cat(sc_word, sc_rest, sc_rest == 0, sc_word != 0, sc_base1))]

        NH_DEPTH = 6
        nh_w = nb + 2 * D + 1
        m.submodules.nh_fifo = nh_fifo = FFQueue(nh_w, NH_DEPTH)
        qb, qb_rest = Signal(QW), Signal(QW)
        qb_base = Signal(wbits)
        qb_has, qb_last = Signal(), Signal()
        f_issue = Signal()
        f1, f2, f3 = Signal(), Signal(), Signal()
        f1_n, f2_n, f3_n = Signal(nb), Signal(nb), Signal(nb)
        f3_hist = Signal(D)
        f3_nz = Signal()
        nh_room = credit(NH_DEPTH, nh_fifo.level, f1 + f2 + f3, "nh")
        m.d.comb += f_issue.eq(qb_has & (nh_room >= 1))
        q_low = Signal(QW)
        m.d.comb += q_low.eq(qb ^ qb_rest)
        q_j = Signal(QB) if QB else Signal(1)
        if QB:
            m.d.comb += q_j.eq(onehot_index(q_low, QW, QB))
        q_nxt = Signal(QW)
        m.d.comb += q_nxt.eq(qb_rest & (qb_rest - 1))
        with m.If(f_issue):
            m.d.sync += [f1_n.eq(Cat(q_j[:QB], qb_base)[:nb]), qb.eq(qb_rest), qb_rest.eq(q_nxt),
                         qb_has.eq(~qb_last), qb_last.eq(q_nxt == 0)]
        q_load = Signal()
        m.d.comb += q_load.eq((~qb_has | (f_issue & qb_last)) & wq.r_rdy)
        wq_h = wq.r_data
        with m.If(q_load):
            m.d.comb += wq.r_en.eq(1)
            m.d.sync += [qb.eq(wq_h[:QW]), qb_rest.eq(wq_h[QW:2 * QW]), qb_last.eq(wq_h[2 * QW]),
                         qb_has.eq(wq_h[2 * QW + 1]), qb_base.eq(wq_h[2 * QW + 2:])]
        # fetcher: f1 state address (registered n); f2 history on the state port; f3 registered
        m.d.sync += [f1.eq(f_issue), f2.eq(f1), f2_n.eq(f1_n), f3.eq(f2), f3_n.eq(f2_n),
                     f3_hist.eq(state_lr.data.hist), f3_nz.eq(state_lr.data.hist != 0)]
        f3_rest = Signal(D)
        m.d.comb += f3_rest.eq(f3_hist & (f3_hist - 1))
        m.d.comb += [nh_fifo.w_en.eq(f3 & f3_nz), nh_fifo.w_data.eq(Cat(f3_n, f3_hist, f3_rest, f3_rest == 0))]

        # walker: pend (bits still to walk), rest = pend minus its lowest bit (so the lowest
        # bit is pend ^ rest: no carry chain on the index path), w_last = (rest == 0)
        SEG_DEPTH = 8
        m.submodules.seg_fifo = seg_fifo = FFQueue(cfg.syn_addr_bits, SEG_DEPTH)
        w_n = Signal(nb)
        w_pend = Signal(D)
        w_rest = Signal(D)
        w_has = Signal()
        w_last = Signal()
        i_req = Signal()  # index read address registered
        i_addr = Signal(nb + db)
        i_data = Signal()  # index data on the port
        w_issue = Signal()
        # seg_fifo's head is held in a register (sh_*), so the streamer's address mux starts at FFs
        sh_valid = Signal()
        sh_start = Signal(cfg.syn_addr_bits)
        seg_room = credit(SEG_DEPTH + 1, seg_fifo.level + sh_valid, i_req + i_data, "seg")
        m.d.comb += w_issue.eq(w_has & (seg_room >= 1))
        low = Signal(D)
        m.d.comb += low.eq(w_pend ^ w_rest)
        j = Signal(db)
        m.d.comb += j.eq(onehot_index(low, D, db))
        nxt = Signal(D)
        m.d.comb += nxt.eq(w_rest & (w_rest - 1))
        m.d.sync += [i_req.eq(w_issue), i_data.eq(i_req)]
        with m.If(w_issue):
            m.d.sync += [i_addr.eq(Cat(j, w_n)), w_pend.eq(w_rest), w_rest.eq(nxt),
                         w_has.eq(~w_last), w_last.eq(nxt == 0)]
        load = Signal()
        m.d.comb += load.eq((~w_has | (w_issue & w_last)) & nh_fifo.r_rdy)
        head = nh_fifo.r_data
        with m.If(load):
            m.d.comb += nh_fifo.r_en.eq(1)
            m.d.sync += [w_n.eq(head[:nb]), w_pend.eq(head[nb:nb + D]), w_rest.eq(head[nb + D:nb + 2 * D]),
                         w_last.eq(head[nb + 2 * D]), w_has.eq(1)]
        m.d.comb += index_r.addr.eq(i_addr)
        with m.If(i_data & index_r.data.valid):
            m.d.comb += [seg_fifo.w_en.eq(1), seg_fifo.w_data.eq(index_r.data.start)]

        g_busy = Signal()
        m.d.comb += g_busy.eq((sc_w != NW) | sc_inflight | sc_d1 | wq.r_rdy | qb_has | f1 | f2 | f3 | nh_fifo.r_rdy
                              | w_has | i_req | i_data)

        # Streamer: one synapse per clock; the next address is chosen from the word just read.
        s_valid = Signal()
        s_addr = Signal(cfg.syn_addr_bits)
        next_addr = Signal(cfg.syn_addr_bits)
        issue_syn = Signal()
        sh_take = Signal()
        ev = syn_r.data
        take_next = ~s_valid | ev.last
        # (not gated by the FSM: segments only exist while delivering)
        with m.If(take_next):
            with m.If(sh_valid):
                m.d.comb += [next_addr.eq(sh_start), sh_take.eq(1), issue_syn.eq(1)]
        with m.Else():
            m.d.comb += [next_addr.eq(s_addr + 1), issue_syn.eq(1)]
        with m.If((~sh_valid | sh_take) & seg_fifo.r_rdy):
            m.d.comb += seg_fifo.r_en.eq(1)
            m.d.sync += [sh_valid.eq(1), sh_start.eq(seg_fifo.r_data)]
        with m.Elif(sh_take):
            m.d.sync += sh_valid.eq(0)
        m.d.comb += syn_r.addr.eq(next_addr)
        m.d.sync += [s_valid.eq(issue_syn), s_addr.eq(next_addr)]
        with m.If(s_valid):
            m.d.sync += events.eq(events + 1)

        deliver_done = Signal()
        # registered (one cycle late): once everything has drained nothing can restart it
        m.d.sync += deliver_done.eq(~g_busy & ~seg_fifo.r_rdy & ~sh_valid & ~s_valid & accu.idle)

        # ---------------------------------------------------------------- neuron pass
        # 1 neuron/clock, 8 register stages: (1) memory outputs; (2) v >> k, bias + acc;
        # (3) leak; (4) floor; (5) sum; (6) saturate; (7) fire / reset / refractory / history;
        # (8) write back, queue, spike.
        np_run = Signal()  # high in the NEURON state
        np_n = Signal(nb + 1)
        NP_STAGES = 8
        vs = [Signal(name=f"np_v{i}") for i in range(NP_STAGES + 1)]  # vs[i]: stage i valid
        ns = [Signal(nb, name=f"np_n{i}") for i in range(NP_STAGES + 1)]
        issue_np = Signal()
        # spike-FIFO credit: every neuron in flight may push one spike. ``room`` (registered)
        # is a lower bound of the free FIFO places minus the neurons in flight.
        inflight = Signal(range(NP_STAGES + 2))
        room = Signal(range(-NP_STAGES - 2, SPIKE_DEPTH + 1))
        retire = vs[NP_STAGES]
        m.d.sync += inflight.eq(inflight + issue_np - retire)
        m.d.sync += room.eq(SPIKE_DEPTH - sp_level - inflight - issue_np)
        m.d.comb += issue_np.eq(np_run & (np_n < N) & (room >= 1))
        m.d.comb += [vs[0].eq(issue_np), ns[0].eq(np_n[:nb])]
        for i in range(1, NP_STAGES + 1):
            m.d.sync += [vs[i].eq(vs[i - 1]), ns[i].eq(ns[i - 1])]
        with m.If(issue_np):
            m.d.sync += np_n.eq(np_n + 1)

        P = cfg.potential_bits
        A = cfg.accumulator_bits
        p = params_r.data
        s = state_r.data
        sw = max(P, A, cfg.bias_bits) + 2  # exact sum width

        def regs(name: str, shape: object, *, n: int) -> list[Signal]:
            return [Signal(shape, name=f"np{k}_{name}") for k in range(n)]

        # Naming: ``rK_x`` / ``x[K]`` are valid in the cycle where ``vs[K + 1]`` is high.
        # stage 1: memory outputs registered (ends the EBR clock-to-out paths)
        r1_v = Signal(signed(P))
        r1_acc = Signal(signed(A))
        r1_touched = Signal()
        r1_p = Signal.like(p)
        m.d.sync += [r1_v.eq(s.v), r1_acc.eq(acc_r.data.acc),
                     r1_touched.eq(acc_r.data.touched), r1_p.eq(p)]
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
        m.d.sync += [th6.eq(params_lr.data.threshold), rst6.eq(params_lr.data.reset),
                     rp6.eq(params_lr.data.refractory), refr6.eq(state_lr.data.refr), hist6.eq(state_lr.data.hist)]
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
        # stage 8: write back the registered results of stage 7, queue, spike
        wb = vs[NP_STAGES]
        wb_n = ns[NP_STAGES]

        # ---------------------------------------------------------------- port muxing
        # read ports: params / state at the neuron pass issue address, params_late /
        # state_late at stage 5's; delivery reads the history (state_late) of the neuron it
        # fetches; the accumulator unit owns acc outside the neuron pass.
        m.d.comb += [params_r.addr.eq(np_n[:nb]), state_r.addr.eq(np_n[:nb]), params_lr.addr.eq(ns[5])]
        with m.If(deliver):
            m.d.comb += state_lr.addr.eq(f1_n)
        with m.Else():
            m.d.comb += state_lr.addr.eq(ns[5])
        with m.If(np_run):
            m.d.comb += acc_r.addr.eq(np_n[:nb])
        with m.Else():
            m.d.comb += acc_r.addr.eq(accu.rd_addr)

        clearing = Signal()
        # wb (neuron pass) and clearing never overlap; keep the spike/queue writes off the
        # command-decode paths for timing
        with m.If(wb):
            m.d.comb += [
                state_w.en.eq(1), state_w.addr.eq(wb_n), state_w.data.v.eq(r7_v),
                state_lw.en.eq(1), state_lw.addr.eq(wb_n), state_lw.data.refr.eq(r7_refr),
                state_lw.data.hist.eq(r7_hist),
                acc_w.en.eq(1), acc_w.addr.eq(wb_n), acc_w.data.eq(0),
            ]
        with m.Elif(clearing):
            m.d.comb += [
                state_w.en.eq(1), state_w.addr.eq(clr_n[:nb]), state_w.data.eq(0),
                state_lw.en.eq(1), state_lw.addr.eq(clr_n[:nb]), state_lw.data.eq(0),
                acc_w.en.eq(1), acc_w.addr.eq(clr_n[:nb]), acc_w.data.eq(0),
            ]
        with m.Else():
            m.d.comb += [
                acc_w.en.eq(accu.wr_en), acc_w.addr.eq(accu.wr_addr), acc_w.data.eq(accu.wr_data),
            ]
        m.d.comb += [sp_push.eq(wb & r7_fire), sp_data.eq(Cat(wb_n, t))]
        # bitmap writer: the pass visits n in order; collect a word's bits, write it on its
        # last neuron (or neuron N - 1); CLEAR zeroes every word
        qacc = Signal(QW)
        q_word = Signal(QW)
        q_pos = wb_n[:QB] if QB else 0
        m.d.comb += q_word.eq(qacc | Mux(r7_queue, (1 << q_pos) if QB else 1, 0))
        q_end = Signal()
        m.d.comb += q_end.eq(((q_pos == QW - 1) if QB else 1) | (wb_n == N - 1))
        with m.If(wb):
            m.d.sync += qacc.eq(Mux(q_end, 0, q_word))
            m.d.comb += [queue_w.en.eq(q_end), queue_w.addr.eq(wb_n[QB:]), queue_w.data.eq(q_word)]
        with m.Elif(clearing):
            m.d.comb += [queue_w.en.eq(1), queue_w.addr.eq(clr_n[QB:nb]), queue_w.data.eq(0)]

        # accumulator unit input: synapse events while delivering, INPUT commands when idle
        with m.If(s_valid):
            m.d.comb += [accu.valid.eq(1), accu.addr.eq(ev.post), accu.value.eq(ev.weight)]

        # command input register with pre-decoded flags: the decode (opcode, region and
        # range compares) ends in FFs, so the FSM, memory ports and counters start from
        # registers. ``ready`` stays high while the register is empty or being consumed.
        c_valid = Signal()
        c_wp, c_wi, c_ws, c_inp, c_run, c_clr, c_err = (Signal(name=f"c_{k}") for k in
                                                          ("wp", "wi", "ws", "inp", "run", "clr", "err"))
        c_addr = Signal(ob)
        c_data = Signal.like(cmd.data)
        consume = Signal()
        m.d.comb += self.cmd.ready.eq(~c_valid | consume)
        with m.If(self.cmd.ready):
            is_write = cmd.op == Opcode.WRITE
            wp = is_write & (region == int(Region.PARAMS)) & (offset < N)
            wi = is_write & (region == int(Region.INDEX)) & (offset < cfg.index_depth)
            ws = is_write & (region == int(Region.SYNAPSES)) & (offset < cfg.n_synapses)
            inp = (cmd.op == Opcode.INPUT) & (cmd.addr < N)
            known = ((cmd.op == Opcode.NOP) | (cmd.op == Opcode.RUN) | (cmd.op == Opcode.CLEAR)
                     | (cmd.op == Opcode.INPUT) | is_write)
            m.d.sync += [
                c_valid.eq(self.cmd.valid),
                c_wp.eq(wp), c_wi.eq(wi), c_ws.eq(ws), c_inp.eq(inp),
                c_run.eq((cmd.op == Opcode.RUN) & (cmd.data != 0)),
                c_clr.eq(cmd.op == Opcode.CLEAR),
                c_err.eq(~known | (is_write & ~wp & ~wi & ~ws) | ((cmd.op == Opcode.INPUT) & ~inp)),
                c_addr.eq(cmd.addr[:ob]), c_data.eq(cmd.data),
            ]
        c_pw = Signal(layout(p_all))  # the packed params word, split over the two memories
        m.d.comb += c_pw.eq(c_data[:layout(p_all).size])
        for f in p_all:
            port = params_lw if f.name in late_p else params_w
            m.d.comb += getattr(port.data, f.name).eq(getattr(c_pw, f.name))
        c_in_value = Signal(signed(cfg.input_bits))
        m.d.comb += c_in_value.eq(c_data[:cfg.input_bits])
        m.d.comb += [
            params_w.en.eq(consume & c_wp), params_w.addr.eq(c_addr),
            params_lw.en.eq(consume & c_wp), params_lw.addr.eq(c_addr),
            index_w.en.eq(consume & c_wi), index_w.addr.eq(c_addr), index_w.data.eq(c_data),
            syn_w.en.eq(consume & c_ws), syn_w.addr.eq(c_addr), syn_w.data.eq(c_data),
        ]

        # ---------------------------------------------------------------- control FSM
        running = Signal()
        m.d.comb += self.busy.eq(running | c_valid | (sp_level != 0) | o_valid)
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)

        # steps_left - 1 and steps_left == 1, registered in two halves (valid two cycles after
        # steps_left changes; a step takes far longer), so the wide decrement is never critical
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

        # end of the neuron pass, registered (once true it stays true until the FSM leaves)
        np_done = Signal()
        m.d.sync += np_done.eq(np_run & (np_n == N) & (inflight == 0))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += consume.eq(c_valid)
                with m.If(c_valid):
                    m.d.comb += err_inc.eq(c_err)
                    with m.If(c_inp):
                        m.d.comb += [accu.valid.eq(1), accu.addr.eq(c_addr), accu.value.eq(c_in_value)]
                    with m.If(c_run):
                        m.d.sync += [steps_left.eq(c_data), deliver.eq(1)]
                        m.next = "DELIVER"
                    with m.If(c_clr):
                        m.d.sync += clr_n.eq(0)
                        m.next = "CLEAR"
            with m.State("CLEAR"):
                # let in-flight INPUT events land first, then overwrite everything
                with m.If(accu.idle):
                    m.d.comb += clearing.eq(1)
                    m.d.sync += clr_n.eq(clr_n + 1)
                    with m.If(clr_n == N - 1):
                        m.d.sync += [t.eq(0), sc_w.eq(0)]
                        m.next = "IDLE"
            with m.State("DELIVER"):
                m.d.comb += running.eq(1)
                with m.If(deliver_done):
                    m.d.sync += [np_n.eq(0), sc_w.eq(0), deliver.eq(0)]
                    m.next = "NEURON"
            with m.State("NEURON"):
                m.d.comb += [running.eq(1), np_run.eq(1)]
                with m.If(np_done):
                    m.d.sync += [t.eq(t + 1), steps_left.eq(sl_m1)]
                    with m.If(sl_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += deliver.eq(1)
                        m.next = "DELIVER"
        return m

