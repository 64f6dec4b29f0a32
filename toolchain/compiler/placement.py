"""Placement: neuron numbering and synapse order for the core's memories and pipeline.

What the core rewards (see :mod:`spikeforge.hdl.core`): delivery streams each segment
(one neuron's synapses of one delay) from consecutive synapse addresses and adds each weight
into ``acc[post]``; back-to-back hits on one target are forwarded (no stall), so there are no
bank conflicts to avoid on the current cores. What placement still buys:

* **locality** — neurons are numbered in reverse Cuthill–McKee order of the undirected
  connection graph (breadth first from a low-degree neuron, neighbours by degree), so
  connected neurons get nearby slots: smaller ``|slot(pre) − slot(post)|`` (reported as
  ``span`` before/after), and partitioning by contiguous slot ranges cuts fewer synapses;
* **ordered segments** — within a segment, synapses are sorted by target slot, so ``acc``
  is walked in ascending address order (reported as ``monotone`` segments).

Ports keep their names and neurons; only the order changes, so behaviour is unchanged.
"""

from __future__ import annotations

from collections import deque

import networkx as nx

from .passes import CompileContext, Pass

__all__ = ["Placement", "rcm_order", "span"]


def rcm_order(g: nx.MultiDiGraph) -> list[int]:
    """Reverse Cuthill–McKee order of the nodes (every connected component, in node order)."""
    adj: dict[int, set[int]] = {n: set() for n in g.nodes}
    for u, v in g.edges():
        if u != v:
            adj[u].add(v)
            adj[v].add(u)
    deg = {n: len(a) for n, a in adj.items()}
    seen: set[int] = set()
    order: list[int] = []
    for start in sorted(g.nodes, key=lambda n: deg[n]):
        if start in seen:
            continue
        seen.add(start)
        q = deque([start])
        while q:
            u = q.popleft()
            order.append(u)
            for v in sorted((x for x in adj[u] if x not in seen), key=lambda x: deg[x]):
                seen.add(v)
                q.append(v)
    order.reverse()
    return order


def span(g: nx.MultiDiGraph) -> float:
    """Mean ``|slot(pre) − slot(post)|`` over synapses, slots in node order (0 if none)."""
    slot = {n: i for i, n in enumerate(g.nodes)}
    m = g.number_of_edges()
    return sum(abs(slot[u] - slot[v]) for u, v in g.edges()) / m if m else 0.0


class Placement(Pass):
    """Renumber neurons (reverse Cuthill–McKee) and sort synapses by (pre, delay, post slot)."""

    name = "placement"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        before = span(g)
        order = rcm_order(g)
        slot = {n: i for i, n in enumerate(order)}
        edges = sorted(g.edges(keys=True, data=True),
                       key=lambda e: (slot[e[0]], e[3]["delay"], slot[e[1]], e[3].get("order", 0)))
        old_nodes = list(g.nodes)
        old_edges = [(u, v, a.get("order")) for u, v, _k, a in sorted(
            g.edges(keys=True, data=True), key=lambda e: e[3].get("order", float("inf")))]
        nodes = [(n, dict(g.nodes[n])) for n in order]
        g.remove_nodes_from(old_nodes)
        g.add_nodes_from(nodes)
        for k, (u, v, _key, a) in enumerate(edges):
            a = dict(a)
            a["order"] = k
            g.add_edge(u, v, **a)
        after = span(g)
        changed = old_nodes != order or old_edges != [(u, v, k) for k, (u, v, _, _) in enumerate(edges)]
        ctx.note("span_before", round(before, 2))
        ctx.note("span_after", round(after, 2))
        return changed
