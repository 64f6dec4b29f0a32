"""Delay legalisation: delays longer than the core's ``max_delay`` through relay chains.

Each source neuron ``u`` with a synapse of delay ``d > D`` (``D = max_delay``) gets one chain
of relay neurons ``r_1 → r_2 → …`` (link delay ``D``; ``r_1`` fed by ``u`` with weight 1). A
relay (threshold 1, full leak, reset to zero, no refractory, no bias) receives exactly one
event of weight 1 for each spike of its feeder and nothing else, so ``r_j`` fires exactly at
``t + j·D`` for every spike of ``u`` at ``t``. The synapse ``u → v`` of delay ``d`` becomes
``r_j → v`` with the same weight and delay ``d − j·D ∈ 1..D``, ``j = ⌊(d − 1) / D⌋``.
Every long synapse of ``u`` shares the chain, so ``u`` costs ``⌊(d_max − 1) / D⌋`` relays.

This is exact for any delay; the cost is neurons (counted against ``n_neurons``) and one
synapse per link.
"""

from __future__ import annotations

import networkx as nx

from .passes import CompileContext, CompileError, Pass, add_relay, succ

__all__ = ["LegaliseDelays"]


class LegaliseDelays(Pass):
    """Split every delay over ``ctx.config.max_delay`` through a shared relay chain per source."""

    name = "delays"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        D = ctx.config.max_delay
        if ctx.source_clean("delay"):  # no pass lengthens a delay
            return False
        long_by_src: dict[int, list[tuple[int, int, int, dict]]] = {}
        for u, nbrs in succ(g).items():
            for v, kd in nbrs.items():
                for k, a in kd.items():
                    if a["delay"] > D:
                        long_by_src.setdefault(u, []).append((u, v, k, a))
        need = sum(max((a["delay"] - 1) // D for *_, a in es) for es in long_by_src.values())
        room = ctx.config.n_neurons * ctx.max_cores
        if need > room:  # refuse before building a chain (a delay of 10**6 asks for 10**5 relays)
            worst = max((a["delay"] for es in long_by_src.values() for *_, a in es))
            raise CompileError(
                f"delays: the longest delay ({worst} steps) and the others over max_delay = {D} of core "
                f"{ctx.config.name!r} need {need} relay neurons; the {ctx.max_cores} core(s) hold {room} neurons")
        relays = 0
        for u, es in long_by_src.items():
            depth = max((a["delay"] - 1) // D for *_, a in es)
            chain = []
            prev = u
            for _ in range(depth):
                r = add_relay(g, "delay")
                g.add_edge(prev, r, weight=1, delay=D)
                chain.append(r)
                prev = r
            relays += depth
            for _, v, k, a in es:
                j = (a["delay"] - 1) // D
                g.remove_edge(u, v, k)
                extra = {"order": a["order"]} if "order" in a else {}
                g.add_edge(chain[j - 1], v, weight=a["weight"], delay=a["delay"] - j * D, **extra)
        ctx.note("relays", relays)
        ctx.note("long_synapses", sum(len(es) for es in long_by_src.values()))
        return relays > 0
