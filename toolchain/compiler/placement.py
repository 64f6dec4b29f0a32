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
        n = len(old)
        pos = {x: i for i, x in enumerate(old)}
        S = succ(g)
        attrs = [a for nbrs in S.values() for kd in nbrs.values() for a in kd.values()]
        pre = np.array([pos[u] for u, nbrs in S.items() for kd in nbrs.values() for _ in kd],
                       dtype=np.int64)
        post = np.array([pos[v] for nbrs in S.values() for v, kd in nbrs.items() for _ in kd],
                        dtype=np.int64)
        delay = np.array([a["delay"] for a in attrs], dtype=np.int64)
        perm = np.array([pos[x] for x in rcm_order(g)], dtype=np.int64)
        slot = np.empty(n, dtype=np.int64)
        slot[perm] = np.arange(n)
        order = [old[i] for i in perm.tolist()]
        dmax = int(delay.max(initial=0)) + 1
        sp, sq = slot[pre], slot[post]
        key = (sp * dmax + delay) * max(n, 1) + sq
        rank = np.empty(len(attrs), dtype=np.int64)
        rank[np.argsort(key, kind="stable")] = np.arange(len(attrs))
        changed = order != old
        for a, k in zip(attrs, rank.tolist(), strict=True):
            if a.get("order") != k:
                a["order"] = k
                changed = True
        g.graph["node_order"] = order
        before = float(np.abs(pre - post).mean()) if len(attrs) else 0.0
        after = float(np.abs(sp - sq).mean()) if len(attrs) else 0.0
        ctx.note("span_before", round(before, 2))
        ctx.note("span_after", round(after, 2))
        return changed
