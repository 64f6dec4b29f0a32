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

from bisect import bisect_left

import networkx as nx
import numpy as np

from .passes import CompileContext, CompileError, Pass, node_order, pair_arrays

__all__ = ["Partition", "assign_cores"]


def assign_cores(g: nx.MultiDiGraph, n_neurons: int, n_synapses: int) -> dict[int, int]:
    """Core of each node: fill cores in node order up to ``n_neurons`` and ``n_synapses``."""
    nodes = node_order(g)
    pre, post, count = pair_arrays(g, {x: i for i, x in enumerate(nodes)})
    return dict(zip(nodes, _fill(nodes, pre, post, count, n_neurons, n_synapses), strict=True))


def _fill(nodes: list[int], pre: np.ndarray, post: np.ndarray, count: np.ndarray, n_neurons: int,
          n_synapses: int) -> list[int]:
    """Core of each position of ``nodes`` (connected pairs ``pre``/``post`` as positions).

    A synapse is local to the core being filled when both its ends are on it, so when the
    later of its two ends is placed, the synapse counts if the earlier end is at or after the
    core's first node. Each pair is listed once, under its later end (``at``), with its earlier
    end (``other``); a node's local synapses are then a binary search in its sorted list.
    """
    at, other = np.maximum(pre, post), np.minimum(pre, post)
    by = np.lexsort((other, at))
    starts = np.searchsorted(at[by], np.arange(len(nodes) + 1)).tolist()
    other_s = other[by].tolist()
    # cumulative synapse counts along the sorted lists: a suffix sum is one subtraction
    cum = np.concatenate([[0], np.cumsum(count[by])]).tolist()
    core: list[int] = []
    c, first, fill, syn = 0, 0, 0, 0
    for i, n in enumerate(nodes):
        lo, hi = starts[i], starts[i + 1]
        own = cum[hi] - cum[bisect_left(other_s, i, lo, hi)]  # self-synapses sort last
        local = cum[hi] - cum[bisect_left(other_s, first, lo, hi)]
        if own > n_synapses:
            raise CompileError(f"neuron {n}: {own} self-synapses do not fit a synapse table of {n_synapses}")
        if fill + 1 > n_neurons or syn + local > n_synapses:
            c, first, fill, syn = c + 1, i, 0, 0
            local = own
        core.append(c)
        fill += 1
        syn += local
    return core


class Partition(Pass):
    """Assign every neuron a ``core`` (node attribute); cross-core synapses become routes."""

    name = "partition"
    keeps_size = True

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        cfg = ctx.config
        nodes = node_order(g)
        pre, post, count = pair_arrays(g, {x: i for i, x in enumerate(nodes)})
        n, m = len(nodes), int(count.sum())
        if n <= cfg.n_neurons and m <= cfg.n_synapses:
            of = [0] * n
        else:
            need = max(-(-n // cfg.n_neurons), 1)
            if need > ctx.max_cores:
                raise CompileError(
                    f"network has {n} neurons after legalisation; core {cfg.name!r} holds "
                    f"{cfg.n_neurons}, so it needs at least {need} cores, but max_cores = "
                    f"{ctx.max_cores} ({ctx.max_cores * cfg.n_neurons} neurons)")
            of = _fill(nodes, pre, post, count, cfg.n_neurons, cfg.n_synapses)
        k = max(of, default=0) + 1
        if k > ctx.max_cores:
            raise CompileError(
                f"network ({n} neurons, {m} synapses after legalisation) needs {k} cores of "
                f"{cfg.name!r} ({cfg.n_neurons} neurons, {cfg.n_synapses} synapses each) but "
                f"max_cores = {ctx.max_cores}")
        attrs = g.nodes
        changed = any(attrs[x].get("core") != c for x, c in zip(nodes, of, strict=True))
        nx.set_node_attributes(g, dict(zip(nodes, of, strict=True)), "core")
        where = np.array(of, dtype=np.int64)
        cut = int(count[where[pre] != where[post]].sum())
        g.graph["cores"] = k
        ctx.note("cores", k)
        ctx.note("routes", cut)
        return changed
