"""Lowering: the compiled graph to one :class:`~spikeforge.hdl.image.CoreImage` per core,
the compile report, and a simulator of the (partitioned) deployment.

:func:`compile_network` is the entry point: it runs the default :class:`Flow` (quantize →
merge → prune-zero → prune-dead → split-weights → delays → fanout → fan-in → placement →
partition), builds one network per core (its own neurons and synapses; route targets as
extra input ports ``route:<id>``, route sources as extra output ports ``route:<id>``), lowers
each with :func:`spikeforge.hdl.image.lower` (the one definition of what fits), and reports.

:func:`simulate_deployment` runs the cores in lock step (per-core :class:`ImageModel` from
the memory contents, or the reference model per core) with the routes delivered at timestep
boundaries, and returns one :class:`SimResult` over the compiled network: it must equal
``reference.simulate(result.network, …)`` spike for spike.
"""

from __future__ import annotations

import gc
import logging
import math
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.image import (
    CoreImage,
    ImageError,
    ImageModel,
    index_fields,
    lower,
    param_fields,
    synapse_fields,
    word_bits,
)
from spikeforge.toolchain.ir import VALUE_MAX, Network, Port, show
from spikeforge.toolchain.reference import (
    TIME_MAX,
    InputEvent,
    ReferenceSimulator,
    SimResult,
    simulate_batch,
)

from .delays import LegaliseDelays
from .drc import DrcReport, design_rule_check
from .fanout import CheckFanIn, FanoutTree, SplitWeights
from .partition import Partition
from .passes import (
    CompileContext,
    CompileError,
    EquivalenceError,
    Flow,
    PassManager,
    PassRecord,
    graph_to_network,
    network_to_graph,
    random_stimuli,
    same_behaviour,
)
from .placement import Placement
from .prune import MergeParallel, PruneDead, PruneZeroWeights
from .quantize import Granularity, QuantizePass, QuantizeReport

__all__ = ["CompileResult", "Route", "compile_network", "default_flow", "memory_use", "simulate_deployment"]

log = logging.getLogger(__name__)

ROUTE_PREFIX = "route:"


@dataclass(frozen=True)
class Route:
    """A cross-core synapse: a spike of ``src`` (on ``src_core``) at ``t`` is sent as
    ``INPUT weight`` to input port ``dst_port`` of ``dst_core`` (neuron ``dst``), applied at
    ``t + delay``."""

    src_core: int
    src: int
    dst_core: int
    dst: int
    dst_port: int
    weight: int
    delay: int

    def to_dict(self) -> dict[str, int]:
        """JSON-able form."""
        return {"src_core": self.src_core, "src": self.src, "dst_core": self.dst_core,
                "dst": self.dst, "dst_port": self.dst_port, "weight": self.weight, "delay": self.delay}


@dataclass
class CompileResult:
    """What :func:`compile_network` produced.

    Attributes
    ----------
    network
        The compiled network: integer, legal for the core (relays added, dead parts pruned,
        neurons in placement order); ports keep their names.
    images
        One core image per core (``images[c]`` loads core ``c``).
    core_networks
        The network each image was lowered from (with the ``route:<id>`` ports); they share
        their neuron and synapse objects with ``network``.
    routes
        The cross-core synapses (empty on one core).
    report
        JSON-able compile report (see :func:`compile_network`).
    records
        What each pass did.
    drc
        The design-rule check of the source network (what did not fit before compiling).
    quantization
        The quantization report, or None when the source was an integer network that fit.
    """

    network: Network
    images: list[CoreImage]
    core_networks: list[Network]
    routes: list[Route]
    report: dict[str, Any]
    records: list[PassRecord] = field(default_factory=list)
    drc: DrcReport | None = None
    quantization: QuantizeReport | None = None

    def core_of(self, neuron: int) -> int:
        """The core that holds ``neuron`` (``KeyError`` if the compiled network has no such id)."""
        if not hasattr(self, "_core_of"):
            self._core_of = {n.id: c for c, p in enumerate(self.core_networks) for n in p.neurons}
        return self._core_of[neuron]

    @property
    def image(self) -> CoreImage:
        """The image of a one-core compile (``CompileError`` if partitioned)."""
        if len(self.images) != 1:
            raise CompileError(f"the network was partitioned over {len(self.images)} cores; use .images")
        return self.images[0]

    def simulate(self, inputs: Sequence[InputEvent] = (), steps: int = 100, *,
                 backend: Literal["image", "reference"] = "image") -> SimResult:
        """Run the deployment (see :func:`simulate_deployment`)."""
        return simulate_deployment(self, inputs, steps, backend=backend)


def default_flow(granularity: Granularity = "network",
                 stimuli: Sequence[Sequence[tuple[int, int, float]]] | None = None,
                 max_fanout: int | None = None, quantize_steps: int = 100, prune: bool = True) -> Flow:
    """The passes :func:`compile_network` runs, in order (``prune=False`` keeps every neuron
    and synapse: no prune-zero, no prune-dead)."""
    return Flow("compile", [
        QuantizePass(granularity, stimuli, quantize_steps),
        MergeParallel(),
        *([PruneZeroWeights(), PruneDead()] if prune else []),
        SplitWeights(),
        LegaliseDelays(),
        FanoutTree(max_fanout),
        CheckFanIn(),
        Placement(),
        Partition(),
    ])


def _split(g: nx.MultiDiGraph, net: Network) -> tuple[list[Network], list[Route]]:
    """One network per core plus the routes, from the partitioned graph."""
    core = {n: int(g.nodes[n].get("core", 0)) for n in g.nodes}
    k = max(core.values(), default=0) + 1
    names = {p.name for p in net.inputs} | {p.name for p in net.outputs}
    clash = sorted(x for x in names if x.startswith(ROUTE_PREFIX))
    if k > 1 and clash:
        raise CompileError(f"port name {clash[0]!r} clashes with the compiler's route ports; rename it")
    parts = [Network(metadata={"compiler": {"core": c, "of": k}}) for c in range(k)]
    for nn in net.neurons:
        parts[core[nn.id]].neurons.append(nn)
    route_in: list[dict[int, int]] = [{} for _ in range(k)]
    route_out: list[set[int]] = [set() for _ in range(k)]
    raw: list[tuple[int, int, int, int, int, int]] = []
    for s in net.synapses:
        a, b = core[s.pre], core[s.post]
        if a == b:
            parts[a].synapses.append(s)
        else:
            raw.append((a, s.pre, b, s.post, int(s.weight), s.delay))
    for p in net.inputs:
        parts[core[p.neuron]].inputs.append(Port(p.name, p.neuron))
    for p in net.outputs:
        parts[core[p.neuron]].outputs.append(Port(p.name, p.neuron))
    routes = []
    for a, u, b, v, w, d in raw:
        if v not in route_in[b]:
            route_in[b][v] = len(parts[b].inputs)
            parts[b].inputs.append(Port(f"{ROUTE_PREFIX}{v}", v))
        if u not in route_out[a]:
            route_out[a].add(u)
            parts[a].outputs.append(Port(f"{ROUTE_PREFIX}{u}", u))
        routes.append(Route(a, u, b, v, route_in[b][v], w, d))
    return parts, routes


def memory_use(image: CoreImage) -> dict[str, dict[str, int]]:
    """Words and bits used per read-only memory region, with the core's capacity."""
    cfg = image.config
    out = {}
    for region, fields, used, cap in (
        ("params", param_fields(cfg), len(image.neuron_ids), cfg.n_neurons),
        ("index", index_fields(cfg), len(image.index), cfg.index_depth),
        ("synapses", synapse_fields(cfg), len(image.synapses), cfg.n_synapses),
    ):
        wb = word_bits(fields)
        out[region] = {"words": used, "capacity": cap, "word_bits": wb, "bits": used * wb}
    return out


def compile_network(
    net: Network,
    config: CoreConfig,
    max_cores: int = 1,
    verify_steps: int = 0,
    *,
    stimuli: Sequence[Sequence[InputEvent]] | None = None,
    granularity: Granularity = "network",
    max_fanout: int | None = None,
    prune: bool = True,
    dump_after: Sequence[str] = (),
    dump_dir: str | Path = ".",
    progress: Callable[[str], None] | None = None,
) -> CompileResult:
    """Compile any network to core images for ``config``.

    Parameters
    ----------
    net
        A valid network (float or integer; any delays, fan-outs, size).
    config
        The target core.
    max_cores
        How many cores the network may be split over (routes between them, see
        :mod:`.partition`).
    verify_steps
        If > 0: check after every exact pass that the network behaves the same in the
        reference model (from the quantized network on), then run the deployment from the
        images (:func:`simulate_deployment`) against the compiled network, each on
        ``stimuli`` (or 4 seeded random sequences) for this many steps; a difference raises
        :class:`EquivalenceError`.
    stimuli
        Input sequences (port order of ``net``, integer values of the quantized network) for
        the checks and for the quantization report.
    granularity
        Quantization scale per ``"network"`` or per ``"layer"``.
    max_fanout
        Optional per-neuron synapse limit (the current cores have none; see :mod:`.fanout`).
    prune
        Remove dead neurons and inert synapses (False: keep every neuron, e.g. to verify a
        network's every neuron on the core).
    dump_after, dump_dir
        Write the graph as network JSON after these passes.
    progress
        Called with each pass name before it runs.

    Returns
    -------
    CompileResult

    Raises
    ------
    CompileError
        When the network cannot be made to fit (the message gives the numbers), or is invalid.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the passes allocate ~10 objects per synapse and free none: collections only cost
    try:
        return _compile(net, config, max_cores, verify_steps, stimuli=stimuli, granularity=granularity,
                        max_fanout=max_fanout, prune=prune, dump_after=dump_after, dump_dir=dump_dir,
                        progress=progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _check_stimuli(stimuli: Sequence[Sequence[InputEvent]] | None, n_inputs: int) -> None:
    """Refuse a stimulus with an input index the network lacks, a negative time or a value out
    of the IR's range, before any pass or simulation uses it."""
    for j, seq in enumerate(stimuli or ()):
        for k, ev in enumerate(seq):
            if not (isinstance(ev, Sequence) and len(ev) == 3):
                raise CompileError(f"stimulus #{j}: input #{k} = {show(ev)} is not an [input_index, time, value] triple")
            i, t, v = ev
            if not (isinstance(i, int) and 0 <= i < n_inputs):
                raise CompileError(f"stimulus #{j}: input #{k}: input_index = {show(i)} is out of range; the network "
                                   f"has {n_inputs} inputs (0..{n_inputs - 1})")
            if not (isinstance(t, int) and 0 <= t <= TIME_MAX):
                raise CompileError(f"stimulus #{j}: input #{k}: time = {show(t)} is out of range; allowed: 0..{TIME_MAX}")
            if not (isinstance(v, int | float) and math.isfinite(v) and abs(v) <= VALUE_MAX):
                raise CompileError(f"stimulus #{j}: input #{k}: value = {show(v)} is out of range; allowed: a number "
                                   f"in -{VALUE_MAX}..{VALUE_MAX}")


def _compile(net: Network, config: CoreConfig, max_cores: int, verify_steps: int, *,
             stimuli: Sequence[Sequence[InputEvent]] | None, granularity: Granularity,
             max_fanout: int | None, prune: bool, dump_after: Sequence[str], dump_dir: str | Path,
             progress: Callable[[str], None] | None) -> CompileResult:
    t_start = time.perf_counter()
    if max_cores < 1:
        raise CompileError(f"max_cores = {max_cores} is out of range; allowed: >= 1")
    if verify_steps < 0:
        raise CompileError(f"verify_steps = {verify_steps} is out of range; allowed: >= 0")
    _check_stimuli(stimuli, len(net.inputs))
    drc = design_rule_check(net, config, max_cores=max_cores)
    if "refractory" in drc.counts:
        drc.raise_if_failed()
    ctx = CompileContext(config=config, max_cores=max_cores)
    ctx.data["source_values_fit"] = not drc.counts.keys() & {"integer", "threshold", "bias", "v_min", "fan_in"}
    ctx.data["source_drc"] = dict(drc.counts)
    flow = default_flow(granularity, stimuli, max_fanout, prune=prune)
    pm = PassManager(ctx, dump_after=dump_after, dump_dir=dump_dir, check_steps=verify_steps,
                     stimuli=stimuli, progress=progress)
    g = network_to_graph(net)
    pm.run(flow, g)
    compiled = graph_to_network(g)
    parts, routes = _split(g, compiled)
    ilo, ihi = config.limits().input
    for r in routes:
        if not ilo <= r.weight <= ihi:
            raise CompileError(
                f"route {r.src}->{r.dst} (core {r.src_core} -> {r.dst_core}): weight {r.weight} is sent "
                f"as an INPUT value, which core {config.name!r} holds in {config.input_bits} bits "
                f"({ilo}..{ihi})")
    images = []
    for c, part in enumerate(parts):
        try:
            images.append(lower(part, config))
        except ImageError as e:
            raise CompileError(f"core {c}: {e}") from None
    qrep: QuantizeReport | None = ctx.data.get("quantize")
    source_integer = "integer" not in drc.counts  # net.is_integer(), as the check already found
    relays = len(compiled.metadata.get("compiler", {}).get("relays", []))
    report: dict[str, Any] = {
        "config": config.name,
        "fingerprint": config.fingerprint(),
        "source": {"neurons": len(net.neurons), "synapses": len(net.synapses),
                   "inputs": len(net.inputs), "outputs": len(net.outputs),
                   "integer": source_integer, "max_delay": net.max_delay,
                   "drc": drc.counts},
        "compiled": {"neurons": len(compiled.neurons), "synapses": len(compiled.synapses),
                     "relays": relays, "cores": len(images), "routes": len(routes)},
        "quantization": qrep.to_dict() if qrep is not None else {"exact": True, "scales": [1.0]},
        "memory": [memory_use(img) for img in images],
        "passes": [r.to_dict() for r in pm.records],
        "dumps": [str(p) for p in pm.dumps],
    }
    result = CompileResult(network=compiled, images=images, core_networks=parts, routes=routes,
                           report=report, records=pm.records, drc=drc, quantization=qrep)
    if verify_steps > 0:
        stim = [list(s) for s in stimuli] if stimuli else random_stimuli(compiled)
        t0 = time.perf_counter()
        expected = simulate_batch(compiled, stim, verify_steps, potential_bits=config.potential_bits)
        for k, (seq, exp) in enumerate(zip(stim, expected, strict=True)):
            got = simulate_deployment(result, seq, verify_steps, backend="image")
            if got != exp:
                why = sorted(set(exp.spikes) ^ set(got.spikes))[:5]
                raise EquivalenceError(
                    f"stimulus #{k}: the core images differ from the compiled network in the "
                    f"reference model; (neuron, t) only in one of them: {why}")
        if source_integer and (qrep is None or qrep.exact):
            why = same_behaviour(net, compiled, stim, verify_steps, config.potential_bits)
            if why is not None:
                raise EquivalenceError(f"the compiled network differs from the source: {why}")
        report["verify"] = {"steps": verify_steps, "stimuli": len(stim), "ok": True,
                            "seconds": round(time.perf_counter() - t0, 3)}
    report["seconds"] = round(time.perf_counter() - t_start, 4)
    log.info("compiled for %s: %d neurons (%d relays), %d synapses, %d core(s), %d routes in %.3f s",
             config.name, len(compiled.neurons), relays, len(compiled.synapses), len(images),
             len(routes), report["seconds"])
    return result


def simulate_deployment(result: CompileResult, inputs: Sequence[InputEvent] = (), steps: int = 100, *,
                        backend: Literal["image", "reference"] = "image") -> SimResult:
    """Run every core in lock step with the routes between them.

    Parameters
    ----------
    result
        A compile result.
    inputs
        ``(input_index, time, value)`` with ``input_index`` into ``result.network.inputs``.
    steps
        Steps to run.
    backend
        ``"image"``: :class:`ImageModel` per core, from the memory contents;
        ``"reference"``: the reference model per core network.

    Returns
    -------
    SimResult
        Over ``result.network`` (its neuron order); equals the reference run of
        ``result.network`` when compiling is correct.
    """
    if backend not in ("image", "reference"):
        raise CompileError(f"backend = {backend!r} is not allowed; allowed: 'image', 'reference'")
    net = result.network
    parts = result.core_networks
    where: dict[str, tuple[int, int]] = {}
    for c, part in enumerate(parts):
        for k, p in enumerate(part.inputs):
            where[p.name] = (c, k)
    ext: dict[int, list[tuple[int, int, int]]] = {}
    for i, t, v in inputs:
        if not 0 <= i < len(net.inputs):
            raise CompileError(f"input index {i} is out of range; the network has {len(net.inputs)} inputs")
        c, k = where[net.inputs[i].name]
        ext.setdefault(int(t), []).append((c, k, int(v)))
    by_src: dict[tuple[int, int], list[Route]] = {}
    for r in result.routes:
        by_src.setdefault((r.src_core, r.src), []).append(r)
    pending: dict[int, list[tuple[int, int, int]]] = {}
    spikes: list[tuple[int, int]] = []
    if backend == "image":
        models = [ImageModel(img) for img in result.images]
        seen = [0] * len(models)
        for t in range(steps):
            for c, k, v in ext.get(t, []) + pending.pop(t, []):
                models[c].input(result.images[c].inputs[k], v)
            for c, m in enumerate(models):
                m.step()
                ids = result.images[c].neuron_ids
                for slot, tt in m.spikes[seen[c]:]:
                    if slot < len(ids):
                        spikes.append((ids[slot], tt))
                        for r in by_src.get((c, ids[slot]), ()):
                            pending.setdefault(tt + r.delay, []).append((r.dst_core, r.dst_port, r.weight))
                seen[c] = len(m.spikes)
    else:
        sims = [ReferenceSimulator([p], result.images[0].config.potential_bits) for p in parts]
        seen = [0] * len(sims)
        for t in range(steps):
            todo: dict[int, list[InputEvent]] = {}
            for c, k, v in ext.get(t, []) + pending.pop(t, []):
                todo.setdefault(c, []).append((k, t, v))
            for c, sim in enumerate(sims):
                sim.add_inputs(0, todo.get(c, []))
                sim.run(1)
                res = sim.results()[0]
                for nid, tt in res.spikes[seen[c]:]:
                    spikes.append((nid, tt))
                    for r in by_src.get((c, nid), ()):
                        pending.setdefault(tt + r.delay, []).append((r.dst_core, r.dst_port, r.weight))
                seen[c] = len(res.spike_times)
    idx = net.index_of()
    sp = sorted((t, idx[i]) for i, t in spikes)
    return SimResult(
        neuron_ids=np.array(net.neuron_ids, dtype=np.int64), steps=steps,
        spike_times=np.array([t for t, _ in sp], dtype=np.int64),
        spike_index=np.array([i for _, i in sp], dtype=np.int64),
    )


def measure(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``fn``; return its value, wall seconds and peak traced memory in bytes."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        value = fn()
    finally:
        dt = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return value, dt, peak
