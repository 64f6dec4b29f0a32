"""The spiking core: one command stream in, one spike stream out.

See docs/core-architecture.md for the architecture and resource budget, :mod:`.image` for the
memory layout and the step algorithm, :mod:`.protocol` for the commands.

:class:`SpikingCore` owns the memories and joins the blocks, each a ``wiring.Component``:

- :class:`~.control.CommandDecoder` (commands → a register of decoded commands) →
  :class:`~.control.StepSequencer` (the control FSM);
- :class:`~.delivery.DeliveryEngine` (queue bitmap scanner → history walker → synapse
  streamer, joined by streams) → :class:`~.delivery.AccumulatorUnit`;
- :class:`~.neuron.NeuronPipeline` (the 8-stage neuron pass) → the spike queue
  (:class:`~.blocks.BufferedQueue`) → ``spikes``.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .blocks import BufferedQueue, FFQueue, onehot_index
from .config import ConfigError, CoreConfig
from .control import CommandDecoder, StepSequencer
from .delivery import AccumulatorUnit, DeliveryEngine, bitmap_geometry
from .image import CoreImage, acc_fields, index_fields, layout, param_fields, synapse_fields, unpack
from .neuron import LATE_PARAMS, NeuronPipeline, memory_layouts
from .protocol import command_layout, spike_layout
from .spram import make_memory

__all__ = ["AccumulatorUnit", "FFQueue", "SpikingCore", "check_bakeable", "onehot_index"]

#: Places of the spike queue (flip-flops) in front of the ``spikes`` output register.
SPIKE_DEPTH = 12


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

    def elaborate(self, platform: Any) -> Module:
        cfg = self.cfg
        m = Module()
        ports = {name: (mem.read_port(), mem.write_port()) for name, mem in self._memories(m, platform).items()}
        rd = {name: r for name, (r, _) in ports.items()}
        wr = {name: w for name, (_, w) in ports.items()}

        m.submodules.decoder = dec = CommandDecoder(cfg)
        m.submodules.sequencer = seq = StepSequencer(cfg)
        m.submodules.delivery = dlv = DeliveryEngine(cfg)
        m.submodules.accu = accu = AccumulatorUnit(cfg)
        m.submodules.neurons = npass = NeuronPipeline(cfg, SPIKE_DEPTH)
        m.submodules.spike_queue = spq = BufferedQueue(spike_layout(cfg), SPIKE_DEPTH)

        # ---------------------------------------------------------------- streams and control
        wiring.connect(m, wiring.flipped(self.cmd), dec.cmd)
        wiring.connect(m, dec.out, seq.cmd)
        m.d.comb += [spq.w.valid.eq(npass.spikes.valid), spq.w.payload.neuron.eq(npass.spikes.payload),
                     spq.w.payload.time.eq(seq.timestep), npass.spike_level.eq(spq.level)]
        wiring.connect(m, spq.r, wiring.flipped(self.spikes))
        m.d.comb += [dlv.run.eq(seq.deliver), npass.run.eq(seq.neuron), seq.accu_idle.eq(accu.idle),
                     seq.deliver_idle.eq(dlv.idle & accu.idle), seq.neuron_done.eq(npass.done)]

        # accumulator unit input: synapse events while delivering, INPUT commands when idle
        ev, c = dlv.events.payload, dec.out.payload
        with m.If(dlv.events.valid):
            m.d.comb += [accu.valid.eq(1), accu.addr.eq(ev.post), accu.value.eq(ev.weight)]
        with m.If(seq.inject):
            m.d.comb += [accu.valid.eq(1), accu.addr.eq(c.addr), accu.value.eq(c.data[:cfg.input_bits].as_signed())]

        # ---------------------------------------------------------------- counters and status
        events, errors, ovf = Signal(32), Signal(16), Signal()
        with m.If(dlv.events.valid):
            m.d.sync += events.eq(events + 1)
        m.d.sync += [ovf.eq(accu.overflow), errors.eq(errors + seq.error + ovf)]
        m.d.comb += [self.timestep.eq(seq.timestep), self.events.eq(events), self.cycles.eq(seq.cycles),
                     self.errors.eq(errors),
                     self.busy.eq(seq.running | dec.out.valid | (spq.level != 0) | spq.r.valid)]

        # ---------------------------------------------------------------- read ports
        # params / state / acc at the neuron pass's issue address, params_late / state_late at
        # its stage 5's; delivery reads the history (state_late) of the neuron it fetches; the
        # accumulator unit owns acc outside the neuron pass.
        for name in ("params", "params_late", "state"):
            m.d.comb += [rd[name].addr.eq(getattr(npass, name).addr), getattr(npass, name).data.eq(rd[name].data)]
        for name in ("queue", "index", "synapses"):
            m.d.comb += [rd[name].addr.eq(getattr(dlv, name).addr), getattr(dlv, name).data.eq(rd[name].data)]
        m.d.comb += [
            rd["state_late"].addr.eq(Mux(seq.deliver, dlv.history.addr, npass.state_late.addr)),
            npass.state_late.data.eq(rd["state_late"].data), dlv.history.data.eq(rd["state_late"].data.hist),
            rd["acc"].addr.eq(Mux(seq.neuron, npass.acc.addr, accu.rd_addr)),
            npass.acc.data.eq(rd["acc"].data), accu.rd_data.eq(rd["acc"].data),
        ]

        # ---------------------------------------------------------------- write ports
        # commands write the network (params split over two memories, index, synapses)
        take = dec.out.valid & dec.out.ready
        p_layout = layout(param_fields(cfg))
        pw = p_layout(c.data[:p_layout.size])
        for f in param_fields(cfg):
            m.d.comb += getattr(wr["params_late" if f.name in LATE_PARAMS else "params"].data, f.name).eq(
                getattr(pw, f.name))
        for name, flag in (("params", c.write_params), ("params_late", c.write_params),
                           ("index", c.write_index), ("synapses", c.write_synapses)):
            m.d.comb += [wr[name].en.eq(take & flag), wr[name].addr.eq(c.addr)]
        m.d.comb += [wr["index"].data.eq(c.data), wr["synapses"].data.eq(c.data)]
        # the neuron pass writes back state, acc and the bitmap; CLEAR zeroes them (never both);
        # the accumulator unit writes acc otherwise
        QB = bitmap_geometry(cfg)[0]
        clear_at = {"state": seq.clear_addr, "state_late": seq.clear_addr, "acc": seq.clear_addr,
                    "queue": seq.clear_addr[QB:]}
        for name, user in (("state", npass.state_w), ("state_late", npass.state_late_w), ("acc", npass.acc_w),
                           ("queue", npass.queue_w)):
            with m.If(npass.state_w.en):
                m.d.comb += [wr[name].en.eq(user.en), wr[name].addr.eq(user.addr), wr[name].data.eq(user.data)]
            with m.Elif(seq.clearing):
                m.d.comb += [wr[name].en.eq(1), wr[name].addr.eq(clear_at[name]), wr[name].data.eq(0)]
            if name == "acc":
                with m.Else():
                    m.d.comb += [wr[name].en.eq(accu.wr_en), wr[name].addr.eq(accu.wr_addr),
                                 wr[name].data.eq(accu.wr_data)]
        return m

    def _memories(self, m: Module, platform: Any) -> dict[str, Any]:
        """The core's memories, as submodules of ``m`` (a baked image's words as their contents)."""
        cfg, N = self.cfg, self.cfg.n_neurons
        lay = memory_layouts(cfg)
        init: dict[str, list[dict[str, int]] | None] = {}
        if self.image is not None:  # a baked network: the image's words, split like the memories
            words = self.image.memories()
            params = [unpack(param_fields(cfg), w) for w in words["params"]]
            init["params"] = [{k: v for k, v in w.items() if k not in LATE_PARAMS} for w in params]
            init["params_late"] = [{k: v for k, v in w.items() if k in LATE_PARAMS} for w in params]
            init["index"] = [unpack(index_fields(cfg), w) for w in words["index"]]
            init["synapses"] = [unpack(synapse_fields(cfg), w) for w in words["synapses"]]
        _, qw, nw = bitmap_geometry(cfg)
        shapes = {
            "params": (lay["params"], N), "params_late": (lay["params_late"], N),
            "index": (layout(index_fields(cfg)), cfg.index_depth),
            "synapses": (layout(synapse_fields(cfg)), cfg.n_synapses),
            "state": (lay["state"], N), "state_late": (lay["state_late"], N),
            "acc": (layout(acc_fields(cfg)), N),
            "queue": (unsigned(qw), nw),  # the delivery queue bitmap (see bitmap_geometry)
        }
        return {name: make_memory(m, name, cfg, shape, depth, platform, self.emulate_spram, init.get(name))
                for name, (shape, depth) in shapes.items()}
