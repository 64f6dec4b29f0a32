"""Pass infrastructure of the graph compiler (the QONNX/FINN manner).

A *pass* is a small class over the network's ``networkx.MultiDiGraph`` (the form
:meth:`Network.to_networkx` gives: nodes are neuron ids with the neuron fields as attributes,
edges carry ``weight``, ``delay``, ``order``; ports and metadata live in ``graph.graph``).
``apply(graph, ctx)`` changes the graph in place and returns whether it changed anything; an
*analysis* only returns data. A :class:`Flow` is a named list of passes; a
:class:`PassManager` runs a flow, runs a pass again until it changes nothing when the pass
asks for it (``fixed_point = True``), logs what each pass did and how long it took, can dump
the graph (as network JSON) after any pass, and can check after any exact pass that the
network still behaves the same in the reference model, spike for spike, on given or random
stimuli.

Relay neurons added by a pass carry the node attribute ``relay = True``; they are never ports.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.ir import Network, NetworkError, Neuron, Port, Synapse, save_network
from spikeforge.toolchain.reference import InputEvent, SimResult, simulate_batch

__all__ = [
    "CompileContext",
    "CompileError",
    "Flow",
    "Pass",
    "PassManager",
    "PassRecord",
    "EquivalenceError",
    "RELAY_PARAMS",
    "add_relay",
    "edge_count",
    "edges",
    "graph_to_network",
    "network_to_graph",
    "node_order",
    "observable_neurons",
    "pair_arrays",
    "pred",
    "random_stimuli",
    "records_table",
    "same_behaviour",
    "succ",
]

log = logging.getLogger(__name__)


class CompileError(ValueError):
    """A network cannot be made to fit a core (the message gives the numbers that do not fit)."""


class EquivalenceError(CompileError):
    """A pass changed what the network does (found by the pass manager's check)."""


#: Parameters of a relay neuron: fed with weight 1 it fires exactly ``d`` steps after its
#: source (threshold 1, potential zeroed every step, reset to zero, never refractory).
RELAY_PARAMS: dict[str, Any] = {
    "threshold": 1, "leak": "full", "leak_shift": 1, "reset": "zero", "v_min": None,
    "refractory": 0, "bias": 0, "name": None,
}


def network_to_graph(net: Network) -> nx.MultiDiGraph:
    """The pass form of a network: exactly :meth:`Network.to_networkx` (same nodes, edge keys
    and attributes, graph data), built about 3x faster, with relays marked from metadata.

    The edges go straight into networkx's adjacency dicts, laid out as ``MultiDiGraph.add_edge``
    lays them out (one key dict shared by ``_succ[u][v]`` and ``_pred[v][u]``, keys 0, 1, …
    per parallel edge); ``tests/test_compiler_passes.py`` checks the two graphs are equal.
    """
    g = nx.MultiDiGraph()
    g.add_nodes_from((n.id, {"threshold": n.threshold, "leak": n.leak.value, "leak_shift": n.leak_shift,
                             "reset": n.reset.value, "v_min": n.v_min, "refractory": n.refractory,
                             "bias": n.bias, "name": n.name}) for n in net.neurons)
    out, inc = g._succ, g._pred  # noqa: SLF001 - bulk build, see the docstring
    for k, s in enumerate(net.synapses):
        u, v = s.pre, s.post
        row = out[u]
        kd = row.get(v)
        if kd is None:
            kd = row[v] = inc[v][u] = {}
        kd[len(kd)] = {"weight": s.weight, "delay": s.delay, "order": k}  # keys 0, 1, … as built here
    g.graph["inputs"] = [(p.name, p.neuron) for p in net.inputs]
    g.graph["outputs"] = [(p.name, p.neuron) for p in net.outputs]
    g.graph["metadata"] = copy.deepcopy(net.metadata)
    for r in net.metadata.get("compiler", {}).get("relays", []):
        if r in g:
            g.nodes[r]["relay"] = True
    # Relays get ids above every id the network had, even after pruning removes neurons.
    g.graph["_next_id"] = max(net.neuron_ids, default=-1) + 1
    return g


def node_order(g: nx.MultiDiGraph) -> list[int]:
    """Neuron order: ``graph["node_order"]`` (set by placement) for the nodes it lists, then
    any other node in insertion order."""
    order = g.graph.get("node_order")
    if order is None:
        return list(g.nodes)
    listed = [n for n in order if n in g]
    have = set(listed)
    return listed + [n for n in g.nodes if n not in have]


def succ(g: nx.MultiDiGraph) -> dict[int, dict[int, dict[int, dict[str, Any]]]]:
    """``u → v → key → edge attributes`` as plain dicts, for bulk read-only walks.

    This is networkx's own adjacency store (``MultiDiGraph._succ``); the public
    ``g.succ`` wraps every lookup in a view object, which costs about 10× on 100k synapses.
    Never mutate through it: use the graph's methods.
    """
    return g._succ  # noqa: SLF001


def pred(g: nx.MultiDiGraph) -> dict[int, dict[int, dict[int, dict[str, Any]]]]:
    """``v → u → key → edge attributes`` (see :func:`succ`; read-only)."""
    return g._pred  # noqa: SLF001


def edges(g: nx.MultiDiGraph) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """Every synapse as ``(pre, post, key, attributes)`` (a fast ``g.edges(keys=True, data=True)``)."""
    for u, nbrs in succ(g).items():
        for v, kd in nbrs.items():
            for k, a in kd.items():
                yield u, v, k, a


def pair_arrays(g: nx.MultiDiGraph, pos: dict[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every connected pair ``u → v`` as numpy arrays: ``pos[u]``, ``pos[v]`` and its number
    of synapses, in adjacency order (one walk; ``np.repeat(pre, count)`` gives one entry per
    synapse, in the order of :func:`edges`)."""
    S = succ(g)
    pre = np.repeat(np.fromiter(map(pos.__getitem__, S), dtype=np.int64, count=len(S)),
                    np.fromiter(map(len, S.values()), dtype=np.int64, count=len(S)))
    post = np.fromiter(map(pos.__getitem__, [v for nbrs in S.values() for v in nbrs]), dtype=np.int64,
                       count=len(pre))
    count = np.fromiter(map(len, [kd for nbrs in S.values() for kd in nbrs.values()]), dtype=np.int64,
                        count=len(pre))
    return pre, post, count


def edge_count(g: nx.MultiDiGraph) -> int:
    """Number of synapses (faster than ``number_of_edges()`` on a multigraph)."""
    return sum(sum(map(len, nbrs.values())) for nbrs in succ(g).values())


def graph_to_network(g: nx.MultiDiGraph) -> Network:
    """Back to a :class:`Network`: neurons in :func:`node_order`, synapses by their ``order``
    attribute (new ones last), relay ids in ``metadata["compiler"]["relays"]``.

    The passes keep every field valid, so the result is not re-validated here (lowering and
    the reference model validate what they are given).
    """
    relays = sorted(n for n, a in g.nodes(data=True) if a.get("relay"))
    md = copy.deepcopy(g.graph.get("metadata", {}))
    if relays or "compiler" in md:
        md.setdefault("compiler", {})["relays"] = relays
    nodes = g.nodes
    neurons = [Neuron(id=n, **{k: v for k, v in nodes[n].items() if k in _NEURON_KEYS}) for n in node_order(g)]
    inf = float("inf")
    edges = [(a.get("order", inf), u, v, a) for u, nbrs in succ(g).items() for v, kd in nbrs.items()
             for a in kd.values()]
    edges.sort(key=lambda e: e[0])
    synapses = [Synapse(u, v, a.get("weight", 1), a.get("delay", 1)) for _, u, v, a in edges]
    return Network(neurons=neurons, synapses=synapses,
                   inputs=[Port(name, nid) for name, nid in g.graph.get("inputs", [])],
                   outputs=[Port(name, nid) for name, nid in g.graph.get("outputs", [])],
                   metadata=md)


_NEURON_KEYS = frozenset(("threshold", "leak", "leak_shift", "reset", "v_min", "refractory", "bias", "name"))


def add_relay(g: nx.MultiDiGraph, tag: str = "relay") -> int:
    """Add a relay neuron (see :data:`RELAY_PARAMS`) with a fresh id; return the id."""
    nid = g.graph.get("_next_id")
    if nid is None:
        nid = max(g.nodes, default=-1) + 1
    g.graph["_next_id"] = nid + 1
    g.add_node(nid, **RELAY_PARAMS, relay=True, relay_kind=tag)
    return nid


@dataclass
class CompileContext:
    """What passes share: the target core, options, and per-pass notes for the report."""

    config: CoreConfig
    max_cores: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    _notes: dict[str, Any] = field(default_factory=dict)

    def source_clean(self, rule: str) -> bool:
        """True when the design-rule check of the source (``data["source_drc"]``, set by
        compile_network) found no violation of ``rule`` and quantization changed nothing: a
        pass whose rule no earlier pass can break may then skip its walk (lower() still checks
        every rule at the end)."""
        counts = self.data.get("source_drc")
        return counts is not None and rule not in counts and self.data.get("quantize", "unset") is None

    def note(self, key: str, value: Any) -> None:
        """Record a number for the current pass's report line (added up over reruns)."""
        if isinstance(value, int | float) and isinstance(self._notes.get(key), int | float):
            self._notes[key] += value
        else:
            self._notes[key] = value


class Pass:
    """A graph transformation.

    Subclasses set :attr:`name`, optionally :attr:`fixed_point` (run again until unchanged),
    :attr:`exact` (False when the pass may change behaviour, e.g. quantization: the pass
    manager then skips the spike-for-spike check after it) and :attr:`keeps_size` (True when
    it never adds or removes a neuron or synapse: the manager then reuses the previous
    synapse count), and implement :meth:`apply`.
    """

    name: ClassVar[str] = "pass"
    fixed_point: ClassVar[bool] = False
    exact: ClassVar[bool] = True
    keeps_size: ClassVar[bool] = False

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        """Transform ``g`` in place; return True if anything changed."""
        raise NotImplementedError


@dataclass
class Flow:
    """A named list of passes."""

    name: str
    passes: list[Pass]


@dataclass
class PassRecord:
    """What one pass did: changed or not, iterations, seconds, notes, graph size after."""

    name: str
    changed: bool
    iterations: int
    seconds: float
    notes: dict[str, Any]
    neurons: int
    synapses: int
    checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"pass": self.name, "changed": self.changed, "iterations": self.iterations,
                "seconds": round(self.seconds, 4), "neurons": self.neurons,
                "synapses": self.synapses, "checked": self.checked, **self.notes}


def random_stimuli(net: Network, n: int = 4, steps: int = 50, seed: int = 0,
                   value_range: tuple[int, int] | None = None) -> list[list[InputEvent]]:
    """``n`` seeded random input sequences for a network (values drive typical thresholds)."""
    rng = np.random.default_rng(seed)
    if value_range is None:
        top = max([int(abs(x.threshold)) for x in net.neurons if isinstance(x.threshold, int)] or [1])
        value_range = (-max(1, top // 4), max(1, top) + 1)
    out = []
    for _ in range(n):
        seq = []
        for t in range(steps):
            for i in range(len(net.inputs)):
                if rng.random() < 0.3:
                    seq.append((i, t, int(rng.integers(value_range[0], value_range[1] + 1))))
        out.append(seq)
    return out


def observable_neurons(net: Network) -> set[int]:
    """Output neurons and every neuron with a path to one: what a pass must keep unchanged."""
    g = nx.DiGraph()
    g.add_nodes_from(net.neuron_ids)
    g.add_edges_from((s.pre, s.post) for s in net.synapses)
    seen: set[int] = set()
    for p in net.outputs:
        if p.neuron not in seen:
            seen.add(p.neuron)
            seen |= nx.ancestors(g, p.neuron)
    return seen


def _spikes_of(res: SimResult, keep: set[int]) -> list[tuple[int, int]]:
    return sorted((t, i) for i, t in res.spikes if i in keep)


def same_behaviour(a: Network, b: Network, stimuli: Sequence[Sequence[InputEvent]], steps: int,
                   potential_bits: int, neurons: set[int] | None = None) -> str | None:
    """Compare two integer networks in the reference model; None if equal, else the first difference.

    Ports are matched by name (``b`` may number its neurons differently, add relays or drop
    dead neurons); spikes are compared for every output port and for ``neurons`` (default:
    :func:`observable_neurons` of ``b``, the neurons that can still reach an output) that both
    networks have.
    """
    if not stimuli:
        stimuli = [[]]
    a_in = [p.name for p in a.inputs]
    b_pos = {p.name: k for k, p in enumerate(b.inputs)}
    if sorted(a_in) != sorted(b_pos):
        return f"input ports differ: {a_in} vs {[p.name for p in b.inputs]}"
    remap = [b_pos[name] for name in a_in]
    b_stim = [[(remap[i], t, v) for i, t, v in seq] for seq in stimuli]
    ra = simulate_batch(a, [list(s) for s in stimuli], steps, potential_bits=potential_bits)
    rb = simulate_batch(b, b_stim, steps, potential_bits=potential_bits)
    relays = set(b.metadata.get("compiler", {}).get("relays", []))
    keep = ((observable_neurons(b) if neurons is None else set(neurons)) & set(a.neuron_ids)) - relays
    b_out = {p.name: p.neuron for p in b.outputs}
    for k, (x, y) in enumerate(zip(ra, rb, strict=True)):
        for p in a.outputs:
            if p.name not in b_out:
                return f"output port {p.name!r} is missing"
            sa = [t for i, t in x.spikes if i == p.neuron]
            sb = [t for i, t in y.spikes if i == b_out[p.name]]
            if sa != sb:
                return (f"stimulus #{k}: output {p.name!r} spikes at {sa[:10]} before, "
                        f"{sb[:10]} after")
        sa2, sb2 = _spikes_of(x, keep), _spikes_of(y, keep)
        if sa2 != sb2:
            diff = sorted(set(sa2) ^ set(sb2))[:5]
            return f"stimulus #{k}: spikes (t, neuron) differ: {diff}"
    return None


class PassManager:
    """Runs a :class:`Flow` over a graph.

    Parameters
    ----------
    ctx
        The shared context (target core, options).
    dump_after
        Pass names after which to write the graph as network JSON (``dump_dir/NN-name.json``).
    dump_dir
        Where dumps go (default: the current directory).
    check_steps
        If > 0, after every exact pass (once the network is integer) simulate it on
        ``stimuli`` (or seeded random ones) for this many steps and raise
        :class:`EquivalenceError` if any observable spike changed.
    stimuli
        Input sequences for the check (input indices of the network given to :meth:`run`).
    max_iterations
        Bound on fixed-point reruns of one pass (a pass that keeps changing is a bug).
    progress
        Optional callback ``(pass_name) -> None`` called before each pass.
    """

    def __init__(self, ctx: CompileContext, *, dump_after: Sequence[str] = (),
                 dump_dir: str | Path = ".", check_steps: int = 0,
                 stimuli: Sequence[Sequence[InputEvent]] | None = None,
                 max_iterations: int = 50,
                 progress: Callable[[str], None] | None = None) -> None:
        self.ctx = ctx
        self.dump_after = set(dump_after)
        self.dump_dir = Path(dump_dir)
        self.check_steps = check_steps
        self.stimuli = stimuli
        self.max_iterations = max_iterations
        self.progress = progress
        self.records: list[PassRecord] = []
        self.dumps: list[Path] = []

    def run(self, flow: Flow, g: nx.MultiDiGraph) -> nx.MultiDiGraph:
        """Run every pass of ``flow`` on ``g`` (in place) and return it."""
        known = {p.name for p in flow.passes}
        unknown = sorted(self.dump_after - known)
        if unknown:
            raise CompileError(f"--dump-after {unknown[0]!r} names no pass of flow {flow.name!r}; "
                               f"allowed: {', '.join(p.name for p in flow.passes)}")
        baseline: Network | None = None
        stim: list[list[InputEvent]] = []

        def rebase(net: Network) -> None:
            nonlocal baseline, stim
            baseline = net if net.is_integer() else None
            if baseline is not None and not stim:
                stim = [list(s) for s in self.stimuli] if self.stimuli else random_stimuli(net)

        if self.check_steps > 0:
            rebase(graph_to_network(g))
        for k, p in enumerate(flow.passes):
            if self.progress is not None:
                self.progress(p.name)
            self.ctx._notes = {}
            t0 = time.perf_counter()
            changed, it = False, 0
            while True:
                it += 1
                c = p.apply(g, self.ctx)
                changed |= c
                if not (p.fixed_point and c):
                    break
                if it >= self.max_iterations:
                    raise CompileError(f"pass {p.name!r} did not reach a fixed point in {it} iterations")
            dt = time.perf_counter() - t0
            if not self.records or (changed and not p.keeps_size):
                m = edge_count(g)
            else:
                m = self.records[-1].synapses
            rec = PassRecord(p.name, changed, it, dt, dict(self.ctx._notes), g.number_of_nodes(), m)
            self.records.append(rec)
            log.info("pass %-12s %s in %.3f s (%d iteration%s) %s", p.name,
                     "changed" if changed else "unchanged", dt, it, "" if it == 1 else "s",
                     " ".join(f"{a}={b}" for a, b in rec.notes.items()))
            if self.check_steps > 0 and changed:
                net = graph_to_network(g)
                if baseline is None or not p.exact:
                    rebase(net)
                else:
                    why = same_behaviour(baseline, net, stim, self.check_steps,
                                         self.ctx.config.potential_bits)
                    rec.checked = True
                    if why is not None:
                        raise EquivalenceError(f"pass {p.name!r} changed the network's behaviour: {why}")
            if p.name in self.dump_after:
                self.dump_dir.mkdir(parents=True, exist_ok=True)
                path = self.dump_dir / f"{k:02d}-{p.name}.json"
                try:
                    save_network(graph_to_network(g), path)
                except NetworkError as e:
                    raise CompileError(f"cannot dump the graph after pass {p.name!r}: {e}") from None
                self.dumps.append(path)
                log.info("dumped the graph after %s to %s", p.name, path)
        return g

    def table(self) -> str:
        """A short text table of what each pass did."""
        return records_table(self.records)


def records_table(records: Sequence[PassRecord]) -> str:
    """A short text table of what each pass did: name, changed, seconds, size after, notes."""
    rows = [("pass", "changed", "s", "neurons", "synapses", "notes")]
    for r in records:
        rows.append((r.name, "yes" if r.changed else "-", f"{r.seconds:.3f}", str(r.neurons),
                     str(r.synapses), " ".join(f"{a}={b}" for a, b in r.notes.items())))
    w = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(("  ".join(c.ljust(w[i]) for i, c in enumerate(row[:5])) + "  " + row[5]).rstrip()
                     for row in rows)
