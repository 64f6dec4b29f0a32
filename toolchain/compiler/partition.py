"""Partitioning: a network larger than one core split over several cores.

Latency model (exact): a synapse whose ends are on different cores is a **route**. Its
source neuron is an output of its core; when it fires at step ``t`` the host (or a board
link) sends ``INPUT post, weight`` to the target's core so that it is applied at step
``t + delay``. The contract treats an external input exactly as a synaptic event (it is added
to the same exact sum and touches the neuron), so any delay ≥ 1 is exact: routes are
exchanged at timestep boundaries. A route holds no synapse-table entry; it costs one
``INPUT`` command per delivered event, and its weight counts against the target's
accumulator like any synapse.

The split (greedy, linear): neurons are taken in slot order (after :class:`Placement`, which
keeps connected neurons close) and filled into a core until its neuron slots or its synapse
table (synapses with both ends on the core) would overflow, then the next core starts. A
network that needs more than ``max_cores`` cores is refused with the numbers.
"""

from __future__ import annotations

import networkx as nx

from .passes import CompileContext, CompileError, Pass, edge_count, node_order, pred, succ

__all__ = ["Partition", "assign_cores"]


def assign_cores(g: nx.MultiDiGraph, n_neurons: int, n_synapses: int) -> dict[int, int]:
    """Core of each node: fill cores in node order up to ``n_neurons`` and ``n_synapses``."""
    core: dict[int, int] = {}
    c, count, syn = 0, 0, 0
    out, inc = succ(g), pred(g)
    for n in node_order(g):
        local = len(out[n].get(n, ()))
        for v, kd in out[n].items():
            if v != n and core.get(v) == c:
                local += len(kd)
        for u, kd in inc[n].items():
            if u != n and core.get(u) == c:
                local += len(kd)
        if local > n_synapses:
            raise CompileError(f"neuron {n}: {local} self-synapses do not fit a synapse table of {n_synapses}")
        if count + 1 > n_neurons or syn + local > n_synapses:
            c, count, syn = c + 1, 0, 0
            local = len(out[n].get(n, ()))
        core[n] = c
        count += 1
        syn += local
    return core


class Partition(Pass):
    """Assign every neuron a ``core`` (node attribute); cross-core synapses become routes."""

    name = "partition"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        cfg = ctx.config
        n, m = g.number_of_nodes(), edge_count(g)
        if n <= cfg.n_neurons and m <= cfg.n_synapses:
            core = dict.fromkeys(g.nodes, 0)
        else:
            need = max(-(-n // cfg.n_neurons), 1)
            if need > ctx.max_cores:
                raise CompileError(
                    f"network has {n} neurons after legalisation; core {cfg.name!r} holds "
                    f"{cfg.n_neurons}, so it needs at least {need} cores, but max_cores = "
                    f"{ctx.max_cores} ({ctx.max_cores * cfg.n_neurons} neurons)")
            core = assign_cores(g, cfg.n_neurons, cfg.n_synapses)
        k = max(core.values(), default=0) + 1
        if k > ctx.max_cores:
            raise CompileError(
                f"network ({n} neurons, {m} synapses after legalisation) needs {k} cores of "
                f"{cfg.name!r} ({cfg.n_neurons} neurons, {cfg.n_synapses} synapses each) but "
                f"max_cores = {ctx.max_cores}")
        changed = any(g.nodes[x].get("core") != c for x, c in core.items())
        nx.set_node_attributes(g, core, "core")
        cut = sum(len(kd) for u, nbrs in succ(g).items() for v, kd in nbrs.items() if core[u] != core[v])
        g.graph["cores"] = k
        ctx.note("cores", k)
        ctx.note("routes", cut)
        return changed
