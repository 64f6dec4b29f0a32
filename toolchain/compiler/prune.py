"""Prune: dead neurons, synapses that change nothing, and parallel synapses merged.

All three passes are exact (every observable spike is unchanged):

* :class:`MergeParallel` — synapses with the same ``pre``, ``post`` and ``delay`` deliver in
  the same step into one exact sum, so they become one synapse carrying the sum (kept apart
  when the sum would not fit ``weight_bits``). A merged weight of 0 still touches.
* :class:`PruneZeroWeights` — a weight-0 synapse only *touches* its target; it is removed when
  the target has a bias ≠ 0 (then the target is touched every step it is not refractory, and
  a refractory neuron ignores events anyway). Elsewhere it is kept: it can make a neuron fire.
* :class:`PruneDead` (to its fixed point, by a work list) — a neuron that can never fire loses its outgoing
  synapses (and, unless it is a port, the neuron goes too): it is never touched (no input
  port, no incoming synapse, bias 0), or its potential can never reach θ (``θ > 0`` and no
  positive weight or bias; or full leak and ``bias⁺ + Σ w⁺ < θ``). When the network has
  outputs, neurons with no path to an output (and not ports) are removed.
"""

from __future__ import annotations

import networkx as nx

from .passes import CompileContext, Pass, pred, succ

__all__ = ["MergeParallel", "PruneDead", "PruneZeroWeights"]


def _ports(g: nx.MultiDiGraph) -> tuple[set[int], set[int]]:
    return ({n for _, n in g.graph.get("inputs", [])}, {n for _, n in g.graph.get("outputs", [])})


class MergeParallel(Pass):
    """Merge parallel synapses (same pre, post, delay) whose summed weight fits the core."""

    name = "merge"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        wlo, whi = ctx.config.limits().weight
        groups: dict[tuple[int, int, int], list[tuple[int, int, int, dict]]] = {}
        for u, nbrs in succ(g).items():
            for v, kd in nbrs.items():
                if len(kd) > 1:
                    for k, a in kd.items():
                        groups.setdefault((u, v, a["delay"]), []).append((u, v, k, a))
        merged = 0
        for es in groups.values():
            if len(es) < 2:
                continue
            total = sum(a["weight"] for *_, a in es)
            if not wlo <= total <= whi or any(abs(a["weight"]) > whi or a["weight"] < wlo for *_, a in es):
                continue
            es[0][3]["weight"] = total
            for u, v, k, _ in es[1:]:
                g.remove_edge(u, v, k)
            merged += len(es) - 1
        ctx.note("merged", merged)
        return merged > 0


class PruneZeroWeights(Pass):
    """Remove weight-0 synapses onto neurons with a bias ≠ 0 (touched every step anyway)."""

    name = "prune-zero"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        biased = {n for n, b in g.nodes(data="bias") if b}
        drop = [(u, v, k) for v, preds in pred(g).items() if v in biased
                for u, kd in preds.items() for k, a in kd.items() if a["weight"] == 0]
        g.remove_edges_from(drop)
        ctx.note("zero_synapses", len(drop))
        return bool(drop)


def _never_fires(g: nx.MultiDiGraph, n: int, inputs: set[int]) -> bool:
    if n in inputs:
        return False
    a = g.nodes[n]
    bias = a.get("bias", 0)
    preds = pred(g)[n]
    if not preds and bias == 0:
        return True  # never touched
    th = a.get("threshold", 1)
    if a.get("leak") != "full":
        # v starts at 0 and only a positive weight or bias can raise it
        return th > 0 and bias <= 0 and not any(e["weight"] > 0 for kd in preds.values() for e in kd.values())
    pos = max(bias, 0) + sum(max(e["weight"], 0) for kd in preds.values() for e in kd.values())
    return pos < th if th > 0 else False


def _synapses_of(g: nx.MultiDiGraph, nodes: set[int]) -> int:
    """Number of synapses with an end in ``nodes`` (what removing them removes)."""
    out, inc = succ(g), pred(g)
    return sum(sum(map(len, out[n].values())) + sum(len(kd) for u, kd in inc[n].items() if u not in nodes)
               for n in nodes)


class PruneDead(Pass):
    """Remove neurons that never fire or never reach an output.

    It reaches its own fixed point with a work list (a neuron whose inputs were cut is looked
    at again), so one application leaves nothing for a second one to do.
    """

    name = "prune-dead"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        inputs, outputs = _ports(g)
        ports = inputs | outputs
        out, inc = succ(g), pred(g)
        cut, dropped = self._cut_never_firing(g, list(g.nodes), inputs)
        if outputs:
            keep = set(outputs)
            stack = list(outputs)
            while stack:
                u = stack.pop()
                for p in inc[u]:
                    if p not in keep:
                        keep.add(p)
                        stack.append(p)
            unreachable = {n for n in g.nodes if n not in keep and n not in ports}
        else:
            unreachable = set()
        touched = {v for n in unreachable for v in out[n] if v not in unreachable}
        dropped += _synapses_of(g, unreachable)
        g.remove_nodes_from(unreachable)
        more, more_dropped = self._cut_never_firing(g, list(touched), inputs)
        cut, dropped = cut + more, dropped + more_dropped
        silent = {n for n in g.nodes if n not in ports and not out[n] and _never_fires(g, n, inputs)}
        dropped += _synapses_of(g, silent)
        g.remove_nodes_from(silent)
        gone = len(unreachable) + len(silent)
        ctx.note("neurons", gone)
        ctx.note("synapses", dropped)
        return bool(cut) or bool(gone)

    @staticmethod
    def _cut_never_firing(g: nx.MultiDiGraph, todo: list[int], inputs: set[int]) -> tuple[int, int]:
        """Drop the outgoing synapses of never-firing neurons; recheck their targets.
        Returns (neurons cut off, synapses dropped)."""
        out = succ(g)
        cut = dropped = 0
        while todo:
            n = todo.pop()
            if n in g and out[n] and _never_fires(g, n, inputs):
                targets = [v for v in out[n] if v != n]
                drop = [(n, v, k) for v, kd in out[n].items() for k in kd]
                g.remove_edges_from(drop)
                cut += 1
                dropped += len(drop)
                todo.extend(targets)
        return cut, dropped
