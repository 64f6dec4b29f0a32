"""The delivery engine: every queued neuron's synapses, into the accumulators, one per clock.

Four stages, each 1 item per clock, joined by streams; the queues between them are
:class:`~.blocks.FFQueue` FIFOs in flip-flops guarded by a registered credit (``room``: a
lower bound of the free places minus the items in flight towards the queue, so a queue never
overflows and no ``ready`` path runs back through a memory):

:class:`QueueScanner`
    The delivery queue bitmap (bit ``n`` = neuron ``n`` has a history ≠ 0), word by word,
    into a stream of queued neuron numbers.
:class:`HistoryWalker`
    Each neuron's history (one set bit ``j`` per clock: spikes ``j + 1`` steps ago) →
    ``index[(n << delay_bits) | j]`` → a stream of synapse segment starts.
:class:`SynapseStreamer`
    One synapse per clock from each segment start until the ``last`` one.
:class:`AccumulatorUnit`
    ``acc[post] += weight`` (in :class:`~.core.SpikingCore`, shared with INPUT commands).

:class:`DeliveryEngine` joins the first three.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .blocks import BufferedQueue, FFQueue, at_most_one, onehot_index, read_port
from .config import CoreConfig
from .image import acc_fields, index_fields, layout, synapse_fields

__all__ = ["AccumulatorUnit", "DeliveryEngine", "HistoryWalker", "QueueScanner", "SynapseStreamer",
           "bitmap_geometry"]


def bitmap_geometry(cfg: CoreConfig) -> tuple[int, int, int]:
    """``(QB, QW, NW)`` of the delivery queue bitmap: bit ``n % QW`` of word ``n // QW`` is
    neuron ``n``; ``QW = 2 ** QB`` bits per word, ``NW`` words."""
    qb = min(4, cfg.neuron_bits)
    qw = 1 << qb
    return qb, qw, -(-cfg.n_neurons // qw)


def addr_bits(depth: int) -> int:
    """Address width of a memory of ``depth`` words."""
    return Shape.cast(range(depth)).width


def credit(m: Module, depth: int, level: Value, pending: Value, name: str) -> Signal:
    """Registered ``depth - 1 - level - pending``: the free places of a queue of ``depth``,
    counting an issue this cycle as if it had happened (keeps the issue logic off the sum)."""
    room = Signal(range(-depth - 4, depth + 1), name=f"{name}_room")
    m.d.sync += room.eq(depth - 1 - level - pending)
    return room


class QueueScanner(wiring.Component):
    """Bitmap words (one read per clock, into a 3-word queue) → one queued neuron per clock.

    Members
    -------
    run : In(1)
        Scan (the DELIVER state); while low, the scan rests at word 0.
    queue : Out(read_port)
        The bitmap memory's read port.
    neurons : Out(stream.Signature(neuron_bits))
        The queued neurons, in increasing order.
    busy : Out(1)
        Words left to scan, or neurons left to send.
    """

    WQ_DEPTH = 3

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        _, qw, nw = bitmap_geometry(cfg)
        super().__init__({
            "run": In(1),
            "queue": Out(read_port(addr_bits(nw), unsigned(qw))),
            "neurons": Out(stream.Signature(cfg.neuron_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        nb = self.cfg.neuron_bits
        QB, QW, NW = bitmap_geometry(self.cfg)
        wbits = max(1, nb - QB)
        # an entry: the word, rest = the word minus its lowest bit, rest == 0, word != 0, its address
        m.submodules.wq = wq = FFQueue(data.StructLayout(
            {"word": QW, "rest": QW, "last": 1, "has": 1, "base": wbits}), self.WQ_DEPTH)

        # word reads: address, data on the port, registered, into wq
        sc_w = Signal(range(NW + 1))  # next word to read
        sc_issue, sc_inflight, sc_d1 = Signal(), Signal(), Signal()
        sc_base, sc_base1 = Signal(wbits), Signal(wbits)
        sc_word = Signal(QW)
        wq_room = credit(m, self.WQ_DEPTH, wq.level, sc_inflight + sc_d1, "wq")
        m.d.comb += [self.queue.addr.eq(sc_w), sc_issue.eq(self.run & (sc_w != NW) & (wq_room >= 1))]
        with m.If(sc_issue):
            m.d.sync += sc_w.eq(sc_w + 1)
        with m.If(~self.run):
            m.d.sync += sc_w.eq(0)
        m.d.sync += [sc_inflight.eq(sc_issue), sc_base.eq(sc_w)]
        m.d.sync += [sc_d1.eq(sc_inflight), sc_word.eq(self.queue.data), sc_base1.eq(sc_base)]
        sc_rest = Signal(QW)
        m.d.comb += sc_rest.eq(sc_word & (sc_word - 1))
        m.d.comb += [wq.w.valid.eq(sc_d1), wq.w.payload.word.eq(sc_word), wq.w.payload.rest.eq(sc_rest),
                     wq.w.payload.last.eq(at_most_one(sc_word)), wq.w.payload.has.eq(sc_word != 0),
                     wq.w.payload.base.eq(sc_base1)]

        # the word being split: qb, qb_rest = qb minus its lowest bit (lowest = qb ^ qb_rest)
        qb, qb_rest = Signal(QW), Signal(QW)
        qb_base = Signal(wbits)
        qb_has, qb_last = Signal(), Signal()
        issue = Signal()
        m.d.comb += [self.neurons.valid.eq(qb_has), issue.eq(self.neurons.valid & self.neurons.ready)]
        q_low = Signal(QW)
        m.d.comb += q_low.eq(qb ^ qb_rest)
        q_j = Signal(QB) if QB else Signal(1)
        if QB:
            m.d.comb += q_j.eq(onehot_index(q_low, QW, QB))
        m.d.comb += self.neurons.payload.eq(Cat(q_j[:QB], qb_base)[:nb])
        q_nxt = Signal(QW)
        m.d.comb += q_nxt.eq(qb_rest & (qb_rest - 1))
        with m.If(issue):
            m.d.sync += [qb.eq(qb_rest), qb_rest.eq(q_nxt), qb_has.eq(~qb_last), qb_last.eq(at_most_one(qb_rest))]
        h = wq.r.payload
        m.d.comb += wq.r.ready.eq(~qb_has | (issue & qb_last))
        with m.If(wq.r.valid & wq.r.ready):
            m.d.sync += [qb.eq(h.word), qb_rest.eq(h.rest), qb_last.eq(h.last), qb_has.eq(h.has),
                         qb_base.eq(h.base)]
        m.d.comb += self.busy.eq((sc_w != NW) | sc_inflight | sc_d1 | wq.r.valid | qb_has)
        return m


class HistoryWalker(wiring.Component):
    """Queued neurons → their histories → one segment start per set history bit, per clock.

    Members
    -------
    neurons : In(stream.Signature(neuron_bits))
        Queued neurons (:class:`QueueScanner`).
    history : Out(read_port(neuron_bits, max_delay))
        The history field of the ``state_late`` memory.
    index : Out(read_port)
        The segment index memory.
    segments : Out(stream.Signature(syn_addr_bits))
        Segment starts (registered).
    busy : Out(1)
        A neuron or segment in flight.
    """

    NH_DEPTH = 6
    SEG_DEPTH = 8

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        super().__init__({
            "neurons": In(stream.Signature(cfg.neuron_bits)),
            "history": Out(read_port(cfg.neuron_bits, unsigned(cfg.max_delay))),
            "index": Out(read_port(cfg.neuron_bits + cfg.delay_bits, layout(index_fields(cfg)))),
            "segments": Out(stream.Signature(cfg.syn_addr_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        cfg = self.cfg
        m = Module()
        nb, D, db = cfg.neuron_bits, cfg.max_delay, cfg.delay_bits
        # fetch: f1 state address (registered n); f2 history on the port; f3 registered
        m.submodules.nh = nh = FFQueue(data.StructLayout({"n": nb, "hist": D, "rest": D, "last": 1}), self.NH_DEPTH)
        f1, f2, f3 = Signal(), Signal(), Signal()
        f1_n, f2_n, f3_n = Signal(nb), Signal(nb), Signal(nb)
        f3_hist = Signal(D)
        f3_nz = Signal()
        nh_room = credit(m, self.NH_DEPTH, nh.level, f1 + f2 + f3, "nh")
        m.d.comb += self.neurons.ready.eq(nh_room >= 1)
        f_issue = self.neurons.valid & self.neurons.ready
        with m.If(f_issue):
            m.d.sync += f1_n.eq(self.neurons.payload)
        m.d.comb += self.history.addr.eq(f1_n)
        m.d.sync += [f1.eq(f_issue), f2.eq(f1), f2_n.eq(f1_n), f3.eq(f2), f3_n.eq(f2_n),
                     f3_hist.eq(self.history.data), f3_nz.eq(self.history.data != 0)]
        f3_rest = Signal(D)
        m.d.comb += f3_rest.eq(f3_hist & (f3_hist - 1))
        m.d.comb += [nh.w.valid.eq(f3 & f3_nz), nh.w.payload.n.eq(f3_n), nh.w.payload.hist.eq(f3_hist),
                     nh.w.payload.rest.eq(f3_rest), nh.w.payload.last.eq(at_most_one(f3_hist))]

        # walk: pend (bits still to walk), rest = pend minus its lowest bit (so the lowest bit
        # is pend ^ rest: no carry chain on the index path), w_last = (rest == 0)
        m.submodules.seg = seg = BufferedQueue(cfg.syn_addr_bits, self.SEG_DEPTH)
        wiring.connect(m, seg.r, wiring.flipped(self.segments))
        w_n = Signal(nb)
        w_pend, w_rest = Signal(D), Signal(D)
        w_has, w_last = Signal(), Signal()
        i_req = Signal()  # index read address registered
        i_addr = Signal(nb + db)
        i_data = Signal()  # index data on the port
        w_issue = Signal()
        seg_room = credit(m, self.SEG_DEPTH + 1, seg.level + seg.r.valid, i_req + i_data, "seg")
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
                         w_has.eq(~w_last), w_last.eq(at_most_one(w_rest))]
        head = nh.r.payload
        m.d.comb += nh.r.ready.eq(~w_has | (w_issue & w_last))
        with m.If(nh.r.valid & nh.r.ready):
            m.d.sync += [w_n.eq(head.n), w_pend.eq(head.hist), w_rest.eq(head.rest), w_last.eq(head.last),
                         w_has.eq(1)]
        m.d.comb += [self.index.addr.eq(i_addr),
                     seg.w.valid.eq(i_data & self.index.data.valid), seg.w.payload.eq(self.index.data.start)]
        m.d.comb += self.busy.eq(f1 | f2 | f3 | nh.r.valid | w_has | i_req | i_data | (seg.level != 0)
                                 | seg.r.valid)
        return m


class SynapseStreamer(wiring.Component):
    """One synapse per clock: from each segment start up to the word marked ``last``; the next
    address is chosen from the word just read.

    Members
    -------
    segments : In(stream.Signature(syn_addr_bits))
        Segment starts.
    synapses : Out(read_port)
        The synapse memory.
    events : Out(stream.Signature(synapse layout, always_ready=True))
        The synapse words read.
    """

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        syn = layout(synapse_fields(cfg))
        super().__init__({
            "segments": In(stream.Signature(cfg.syn_addr_bits)),
            "synapses": Out(read_port(cfg.syn_addr_bits, syn)),
            "events": Out(stream.Signature(syn, always_ready=True)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        s_valid = Signal()
        s_addr = Signal(self.cfg.syn_addr_bits)
        next_addr = Signal(self.cfg.syn_addr_bits)
        issue = Signal()
        ev = self.synapses.data
        with m.If(~s_valid | ev.last):
            m.d.comb += self.segments.ready.eq(1)
            with m.If(self.segments.valid):
                m.d.comb += [next_addr.eq(self.segments.payload), issue.eq(1)]
        with m.Else():
            m.d.comb += [next_addr.eq(s_addr + 1), issue.eq(1)]
        m.d.comb += self.synapses.addr.eq(next_addr)
        m.d.sync += [s_valid.eq(issue), s_addr.eq(next_addr)]
        m.d.comb += [self.events.valid.eq(s_valid), self.events.payload.eq(ev)]
        return m


class DeliveryEngine(wiring.Component):
    """:class:`QueueScanner` → :class:`HistoryWalker` → :class:`SynapseStreamer`.

    Members
    -------
    run : In(1)
        Deliver (the DELIVER state).
    idle : Out(1)
        Nothing left to scan and nothing in flight (an event in ``events`` counts as in flight).
    queue, history, index, synapses : Out(read_port)
        The memories' read ports (``history``: the ``hist`` field of ``state_late``).
    events : Out(stream.Signature(synapse layout, always_ready=True))
        Synaptic events, one per clock, for the accumulator unit.
    """

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        _, qw, nw = bitmap_geometry(cfg)
        syn = layout(synapse_fields(cfg))
        super().__init__({
            "run": In(1),
            "idle": Out(1),
            "queue": Out(read_port(addr_bits(nw), unsigned(qw))),
            "history": Out(read_port(cfg.neuron_bits, unsigned(cfg.max_delay))),
            "index": Out(read_port(cfg.neuron_bits + cfg.delay_bits, layout(index_fields(cfg)))),
            "synapses": Out(read_port(cfg.syn_addr_bits, syn)),
            "events": Out(stream.Signature(syn, always_ready=True)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.scanner = scan = QueueScanner(self.cfg)
        m.submodules.walker = walk = HistoryWalker(self.cfg)
        m.submodules.streamer = strm = SynapseStreamer(self.cfg)
        m.d.comb += scan.run.eq(self.run)
        wiring.connect(m, scan.neurons, walk.neurons)
        wiring.connect(m, walk.segments, strm.segments)
        for name, part in (("queue", scan), ("history", walk), ("index", walk), ("synapses", strm), ("events", strm)):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(part, name))
        m.d.comb += self.idle.eq(~scan.busy & ~walk.busy & ~strm.events.valid)
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
