"""Shrinking a failing case, with a pure-Python 'buggy implementation' as the thing under test."""

from __future__ import annotations

from spikeforge.toolchain.ir import Reset
from spikeforge.toolchain.netgen import random_case
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.shrink import shrink_case

from naive_model import naive_simulate


def buggy(case):
    """The naive model with a planted bug: subtract-reset neurons reset to zero."""
    net = case.network.copy()
    for n in net.neurons:
        n.reset = Reset.ZERO
    return naive_simulate(net, case.inputs, case.steps)[0]


def fails(cases):
    return [buggy(c) != simulate(c.network, c.inputs, c.steps).spikes for c in cases]


def test_shrinks_to_a_tiny_still_failing_case():
    seed = next(s for s in range(100) if fails([random_case(s, 20, 70, steps=40)])[0])
    case = random_case(seed, 20, 70, steps=40)
    calls = []

    def counting(cands):
        calls.append(len(cands))
        return fails(cands)

    small = shrink_case(case, counting, max_rounds=60)
    assert fails([small]) == [True]
    assert len(small.network.synapses) <= 3
    assert len(small.inputs) <= 6
    assert len(small.network.neurons) <= 3
    assert small.steps <= case.steps
    assert any(n.reset is Reset.SUBTRACT for n in small.network.neurons)
    assert len(calls) <= 60 and max(calls) <= 16


def test_nothing_to_shrink_returns_same_size():
    case = random_case(3, 4, 0, steps=3)
    small = shrink_case(case, lambda cs: [False] * len(cs))
    assert small.network == case.network and small.steps == case.steps
