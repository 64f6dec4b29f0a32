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
from itertools import chain
from operator import itemgetter

import networkx as nx
import numpy as np

from .passes import CompileContext, Pass, node_order, pair_arrays, succ

__all__ = ["Placement", "rcm_order", "span"]


def rcm_order(g: nx.MultiDiGraph) -> list[int]:
    """Reverse Cuthill–McKee order of the nodes (every connected component).

    Breadth first from each not yet visited node of lowest degree (ties: :func:`node_order`),
    neighbours visited by (degree, position in :func:`node_order`); the order is reversed.
    """
    nodes = node_order(g)
    pos = {x: i for i, x in enumerate(nodes)}
    pre, post, _ = pair_arrays(g, pos)
    return [nodes[i] for i in _rcm(len(nodes), pre, post).tolist()]


def _rcm(n: int, pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Reverse Cuthill–McKee permutation of ``0..n-1`` for the undirected graph of the
    edges ``pre[k] – post[k]`` (self-loops and parallel edges ignored)."""
    a, b = np.minimum(pre, post), np.maximum(pre, post)
    pairs = np.unique((a * max(n, 1) + b)[a != b])
    a, b = pairs // max(n, 1), pairs % max(n, 1)
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])
    deg = np.bincount(src, minlength=n)
    # every neighbour list sorted by (degree, position): the BFS needs no sort per node
    by = np.lexsort((dst, deg[dst], src))
    starts = np.concatenate([[0], np.cumsum(deg)]).tolist()
    nbr = dst[by].tolist()
    seen = [False] * n
    order: list[int] = []
    for start in np.argsort(deg, kind="stable").tolist():
        if seen[start]:
            continue
        seen[start] = True
        q = deque([start])
        while q:
            u = q.popleft()
            order.append(u)
            for x in nbr[starts[u]:starts[u + 1]]:
                if not seen[x]:
                    seen[x] = True
                    q.append(x)
    order.reverse()
    return np.array(order, dtype=np.int64)


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
    keeps_size = True

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        old = node_order(g)
        n = len(old)
        pos = {x: i for i, x in enumerate(old)}
        pre, post, count = pair_arrays(g, pos)
        perm = _rcm(n, pre, post)
        pre, post = np.repeat(pre, count), np.repeat(post, count)
        attrs = list(chain.from_iterable(map(dict.values, chain.from_iterable(map(dict.values, succ(g).values())))))
        m = len(attrs)
        delay = np.fromiter(map(itemgetter("delay"), attrs), dtype=np.int64, count=m)
        slot = np.empty(n, dtype=np.int64)
        slot[perm] = np.arange(n)
        order = [old[i] for i in perm.tolist()]
        dmax = int(delay.max(initial=0)) + 1
        sp, sq = slot[pre], slot[post]
        key = (sp * dmax + delay) * max(n, 1) + sq
        rank = np.empty(m, dtype=np.int64)
        rank[np.argsort(key, kind="stable")] = np.arange(m)
        new_rank = rank.tolist()
        changed = order != old or [a.get("order") for a in attrs] != new_rank
        if changed:
            for a, k in zip(attrs, new_rank, strict=True):
                a["order"] = k
        g.graph["node_order"] = order
        before = float(np.abs(pre - post).mean()) if m else 0.0
        after = float(np.abs(sp - sq).mean()) if m else 0.0
        ctx.note("span_before", round(before, 2))
        ctx.note("span_after", round(after, 2))
        return changed
