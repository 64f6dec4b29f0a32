"""Placement: neuron numbering and synapse order for the core's memories and pipeline.

What the core rewards (see :mod:`spikeforge.hdl.core`): delivery streams each segment
(one neuron's synapses of one delay) from consecutive synapse addresses and adds each weight
into ``acc[post]``; back-to-back hits on one target are forwarded (no stall), so there are no
bank conflicts to avoid on the current cores. What placement still buys:

* **locality** — neurons are numbered in reverse Cuthill–McKee order of the undirected
  connection graph (breadth first from a low-degree neuron, neighbours by degree), so
  connected neurons get nearby slots: smaller mean ``|slot(pre) − slot(post)|`` (reported as
  ``span`` before/after), and partitioning by contiguous slot ranges cuts fewer synapses;
* **ordered segments** — synapses are listed by (pre slot, delay, post slot), the order the
  image lays them out in, so within a segment ``acc`` is walked in ascending address order.

Ports keep their names and neurons; only the order changes (``graph["node_order"]`` and each
synapse's ``order``), so behaviour is unchanged.
"""

from __future__ import annotations

from collections import deque

import networkx as nx
import numpy as np

from .passes import CompileContext, Pass, node_order, succ

__all__ = ["Placement", "rcm_order", "span"]


def rcm_order(g: nx.MultiDiGraph) -> list[int]:
    """Reverse Cuthill–McKee order of the nodes (every connected component)."""
    adj: dict[int, set[int]] = {n: set() for n in g.nodes}
    for u, nbrs in succ(g).items():
        for v in nbrs:
            if u != v:
                adj[u].add(v)
                adj[v].add(u)
    deg = {n: len(a) for n, a in adj.items()}
    seen: set[int] = set()
    order: list[int] = []
    for start in sorted(node_order(g), key=deg.__getitem__):
        if start in seen:
            continue
        seen.add(start)
        q = deque([start])
        while q:
            u = q.popleft()
            order.append(u)
            nxt = [x for x in adj[u] if x not in seen]
            nxt.sort(key=deg.__getitem__)
            seen.update(nxt)
            q.extend(nxt)
    order.reverse()
    return order


def span(g: nx.MultiDiGraph, order: list[int] | None = None) -> float:
    """Mean ``|slot(pre) − slot(post)|`` over synapses (slots in ``order``, default
    :func:`node_order`); 0 without synapses."""
    slot = {n: i for i, n in enumerate(order if order is not None else node_order(g))}
    d = [abs(slot[u] - slot[v]) * len(kd) for u, nbrs in succ(g).items() for v, kd in nbrs.items()]
    n = sum(len(kd) for nbrs in succ(g).values() for kd in nbrs.values())
    return float(np.sum(d)) / n if n else 0.0


class Placement(Pass):
    """Renumber neurons (reverse Cuthill–McKee) and order synapses by (pre, delay, post slot)."""

    name = "placement"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        old = node_order(g)
        order = rcm_order(g)
        pos = {n: i for i, n in enumerate(old)}
        old_slot = np.array([pos[n] for n in order], dtype=np.int64)  # indexed by new slot
        slot = {n: i for i, n in enumerate(order)}
        n = len(order)
        dmax = 1 + max((a["delay"] for nbrs in succ(g).values() for kd in nbrs.values() for a in kd.values()),
                       default=1)
        attrs = []
        comp = []  # (pre slot, delay, post slot) as one integer
        for u, nbrs in succ(g).items():
            su = slot[u] * dmax
            for v, kd in nbrs.items():
                sv = slot[v]
                for a in kd.values():
                    attrs.append(a)
                    comp.append((su + a["delay"]) * n + sv)
        key = np.array(comp, dtype=np.int64)
        rank = np.empty(len(attrs), dtype=np.int64)
        rank[np.argsort(key, kind="stable")] = np.arange(len(attrs))
        changed = order != old
        for a, k in zip(attrs, rank.tolist(), strict=True):
            if a.get("order") != k:
                a["order"] = k
                changed = True
        g.graph["node_order"] = order
        if len(attrs):
            pre, post = key // n // dmax, key % n
            before = np.abs(old_slot[pre] - old_slot[post]).mean()
            after = np.abs(pre - post).mean()
        else:
            before = after = 0.0
        ctx.note("span_before", round(float(before), 2))
        ctx.note("span_after", round(float(after), 2))
        return changed
