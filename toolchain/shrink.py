"""Shrink a failing case to a small one that still fails (delta debugging on networks).

A divergence found on a 24-neuron random network is hard to read; the same divergence on 3
neurons and 4 synapses usually names the bug. :func:`shrink_case` removes steps, inputs,
synapses and neurons while a *batch predicate* says the smaller case still fails. The
predicate takes many candidates at once, so an expensive oracle (a Verilator session) is
started once per round, not once per candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from .ir import Network
from .netgen import Case

__all__ = ["shrink_case"]

log = logging.getLogger(__name__)

BatchPredicate = Callable[[Sequence[Case]], Sequence[bool]]


def _without_synapses(case: Case, drop: set[int]) -> Case:
    net = case.network.copy()
    net.synapses = [s for k, s in enumerate(net.synapses) if k not in drop]
    return Case(case.name, net, list(case.inputs), case.steps)


def _without_inputs(case: Case, drop: set[int]) -> Case:
    return Case(case.name, case.network, [e for k, e in enumerate(case.inputs) if k not in drop], case.steps)


def _without_neuron(case: Case, nid: int) -> Case:
    """Drop a neuron, its synapses and ports; input events are re-indexed to the ports left."""
    net: Network = case.network.copy()
    keep = [k for k, p in enumerate(net.inputs) if p.neuron != nid]
    new_index = {old: new for new, old in enumerate(keep)}
    net.inputs = [net.inputs[k] for k in keep]
    net.outputs = [p for p in net.outputs if p.neuron != nid]
    net.neurons = [n for n in net.neurons if n.id != nid]
    net.synapses = [s for s in net.synapses if s.pre != nid and s.post != nid]
    inputs = [(new_index[i], t, v) for i, t, v in case.inputs if i in new_index]
    return Case(case.name, net, inputs, case.steps)


def _truncate(case: Case, steps: int) -> Case:
    return Case(case.name, case.network, [e for e in case.inputs if e[1] < steps], steps)


def _chunks(n: int, parts: int) -> list[set[int]]:
    size = max(1, -(-n // parts))
    return [set(range(i, min(n, i + size))) for i in range(0, n, size)]


def shrink_case(
    case: Case,
    fails: BatchPredicate,
    *,
    max_rounds: int = 40,
    batch: int = 16,
) -> Case:
    """Return a smaller case for which ``fails`` still holds.

    Parameters
    ----------
    case
        A case for which ``fails([case]) == [True]``.
    fails
        Batch predicate: one bool per candidate, True where the candidate still fails.
    max_rounds
        Upper bound on predicate calls.
    batch
        Most candidates offered per call.

    Returns
    -------
    Case
        The smallest failing case found (``case`` itself if nothing smaller fails). Named
        ``<name>-shrunk``.
    """
    cur = case
    rounds = 0

    def first_failing(cands: list[Case]) -> Case | None:
        nonlocal rounds
        for k in range(0, len(cands), batch):
            if rounds >= max_rounds:
                return None
            part = cands[k : k + batch]
            rounds += 1
            for c, bad in zip(part, fails(part), strict=True):
                if bad:
                    return c
        return None

    # Fewer steps: try halving down towards 1.
    steps_cands = []
    s = cur.steps
    while s > 1:
        s = s // 2
        steps_cands.append(s)
    cands = [_truncate(cur, s2) for s2 in reversed(steps_cands)]
    found = first_failing(cands)
    if found is not None:
        cur = found
    # Then delta-debug: neurons first (each takes its synapses along), then synapses and inputs
    # in ever finer chunks, until a whole pass removes nothing.
    progress = True
    while progress and rounds < max_rounds:
        progress = False
        found = first_failing([_without_neuron(cur, n.id) for n in cur.network.neurons])
        if found is None and cur.steps > 1:
            shorter = sorted({cur.steps // 2, (3 * cur.steps) // 4, cur.steps - 1} - {0})
            found = first_failing([_truncate(cur, k) for k in shorter])
        if found is not None:
            cur, progress = found, True
            continue
        for parts in (2, 4, 8, 16, 32, 64):
            n_syn, n_in = len(cur.network.synapses), len(cur.inputs)
            if parts > 2 * max(n_syn, n_in):
                break
            cands = [_without_synapses(cur, d) for d in _chunks(n_syn, min(parts, n_syn))] if n_syn else []
            cands += [_without_inputs(cur, d) for d in _chunks(n_in, min(parts, n_in))] if n_in else []
            found = first_failing(cands)
            if found is not None:
                cur, progress = found, True
                break
    log.info("shrunk %s: %d→%d neurons, %d→%d synapses, %d→%d inputs, %d→%d steps in %d rounds",
             case.name, len(case.network.neurons), len(cur.network.neurons), len(case.network.synapses),
             len(cur.network.synapses), len(case.inputs), len(cur.inputs), case.steps, cur.steps, rounds)
    return Case(f"{case.name}-shrunk", cur.network, cur.inputs, cur.steps)
