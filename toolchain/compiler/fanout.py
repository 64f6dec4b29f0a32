"""Fan-out and fan-in legalisation, and weights wider than the core's ``weight_bits``.

What the core limits (see :mod:`spikeforge.hdl.image`): a neuron's synapses of one delay are
one contiguous *segment* of the synapse table, of any length, so **there is no per-neuron
fan-out limit** on these cores — only the table size ``n_synapses``. The per-neuron limit is
on the **fan-in**: ``Σ|w|`` of the synapses onto a neuron must fit the exact accumulator
(``2**(accumulator_bits-1) - 1``), because one step may deliver all of them.

* :class:`SplitWeights` (exact) — a weight outside ``weight_bits`` becomes parallel synapses
  (same pre, post, delay) whose weights sum to it: they arrive in the same step into one exact
  sum. ``Σ|w|`` is unchanged, so it is legal whenever the fan-in fits.
* :class:`FanoutTree` (exact, optional ``max_fanout``) — for a target with a synapse-block
  limit (or to spread delivery), a neuron with more than ``max_fanout`` synapses hands its
  synapses of delay ≥ 2 to relay neurons fed with delay 1 (each relay then uses delay
  ``d − 1``); delay-1 synapses cannot move (a relay costs one step), and a neuron whose delay-1
  synapses alone exceed the limit, or that needs more relays than the limit leaves room for,
  is refused with the numbers.
* Fan-in: no relay can lower ``Σ|w|`` onto a neuron (relays forward the same events in the
  same steps), so a fan-in over the accumulator is legalised only by :class:`MergeParallel`
  (exact) or by quantizing to a smaller scale (lossy); otherwise it is refused.
"""

from __future__ import annotations

import networkx as nx

from .passes import CompileContext, CompileError, Pass, add_relay, pred, succ

__all__ = ["CheckFanIn", "FanoutTree", "SplitWeights"]


class SplitWeights(Pass):
    """Split weights outside the core's ``weight_bits`` into parallel synapses."""

    name = "split-weights"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        if ctx.source_clean("weight"):  # merging keeps sums in range; nothing else widens
            return False
        wlo, whi = ctx.config.limits().weight
        wide = [(u, v, k, a) for u, nbrs in succ(g).items() for v, kd in nbrs.items()
                for k, a in kd.items() if not wlo <= a["weight"] <= whi]
        added = 0
        for u, v, _k, a in wide:
            w = int(a["weight"])
            step = whi if w > 0 else wlo
            parts = []
            while not wlo <= w <= whi:
                parts.append(step)
                w -= step
            a["weight"] = w
            for p in parts:
                extra = {"order": a["order"]} if "order" in a else {}
                g.add_edge(u, v, weight=p, delay=a["delay"], **extra)
            added += len(parts)
        ctx.note("split", len(wide))
        ctx.note("synapses_added", added)
        return bool(wide)


class FanoutTree(Pass):
    """Limit every neuron to ``max_fanout`` synapses with one level of delay-1 relays."""

    name = "fanout"

    def __init__(self, max_fanout: int | None = None) -> None:
        if max_fanout is not None and max_fanout < 2:
            raise CompileError(f"max_fanout = {max_fanout} is out of range; allowed: >= 2 or None")
        self.max_fanout = max_fanout

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        F = self.max_fanout
        if F is None:
            return False
        relays = 0
        for u in [n for n in g.nodes if g.out_degree(n) > F]:
            out = list(g.out_edges(u, keys=True, data=True))
            movable = [e for e in out if e[3]["delay"] >= 2]
            stay = len(out) - len(movable)
            n_relays = -(-len(movable) // F)
            if stay + n_relays > F:
                raise CompileError(
                    f"neuron {u}: fan-out {len(out)} cannot be cut to max_fanout = {F}: "
                    f"{stay} synapses of delay 1 stay on it and {len(movable)} others need "
                    f"{n_relays} relays ({stay + n_relays} > {F}); raise max_fanout")
            for c in range(n_relays):
                r = add_relay(g, "fanout")
                g.add_edge(u, r, weight=1, delay=1)
                for _, v, k, a in movable[c * F:(c + 1) * F]:
                    g.remove_edge(u, v, k)
                    extra = {"order": a["order"]} if "order" in a else {}
                    g.add_edge(r, v, weight=a["weight"], delay=a["delay"] - 1, **extra)
            relays += n_relays
        ctx.note("relays", relays)
        return relays > 0


class CheckFanIn(Pass):
    """Refuse a fan-in ``Σ|w|`` over the accumulator (an analysis: never changes the graph)."""

    name = "fan-in"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        if ctx.source_clean("fan_in"):  # merge, prune, split and relays never raise a fan-in
            return False
        amax = ctx.config.limits().fan_in[1]
        fan: dict[int, int] = {}
        for v, preds in pred(g).items():
            fan[v] = sum(abs(a["weight"]) for kd in preds.values() for a in kd.values())
        worst = max(fan.items(), key=lambda kv: kv[1], default=(None, 0))
        ctx.note("max_fan_in", worst[1])
        over = [n for n, f in fan.items() if f > amax]
        if over:
            raise CompileError(
                f"neuron {worst[0]}: fan-in sum of |weight| = {worst[1]} could overflow the "
                f"{ctx.config.accumulator_bits}-bit accumulator of core {ctx.config.name!r} "
                f"(allowed: 0..{amax}; {len(over)} neuron(s) over); no relay lowers a fan-in: "
                "quantize with a smaller scale or use a core with more accumulator_bits")
        return False
