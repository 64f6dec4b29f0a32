"""Placement: a new neuron numbering and synapse order, the same spikes."""

from __future__ import annotations

import numpy as np
from compiler_helpers import SMALL, assert_same_spikes, networks, run_pass
from hypothesis import HealthCheck, given, settings

from spikeforge.hdl.image import ImageModel, lower
from spikeforge.toolchain.compiler.placement import Placement
from spikeforge.toolchain.ir import Network

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shuffled_chain(n: int, seed: int = 0) -> Network:
    ids = np.random.default_rng(seed).permutation(n).tolist()
    net = Network()
    for i in range(n):
        net.add_neuron(i, threshold=1)
    for a, b in zip(ids, ids[1:], strict=False):
        net.add_synapse(a, b, 1, 1)
    net.add_input(ids[0])
    net.add_output(ids[-1])
    return net


def test_chain_gets_consecutive_slots():
    net = _shuffled_chain(30)
    out, changed, ctx = run_pass(Placement(), net)
    assert changed
    assert ctx._notes["span_after"] == 1.0 < ctx._notes["span_before"]
    assert sorted(out.neuron_ids) == sorted(net.neuron_ids)
    assert assert_same_spikes(net, out, neurons=set(net.neuron_ids)) > 0


def test_segments_are_sorted_by_target_slot():
    net = Network()
    for i in range(10):
        net.add_neuron(i, threshold=1)
    net.add_input(0)
    for t in (9, 3, 7, 1, 5):
        net.add_synapse(0, t, 1, 2)
        net.add_output(t, f"o{t}")
    out, _, _ = run_pass(Placement(), net)
    img = lower(out, SMALL)
    m = ImageModel(img)
    slots = [s["post"] for s in m.segment(img.neuron_ids.index(0), 1)]
    assert slots == sorted(slots) and len(slots) == 5


@FAST
@given(networks(max_delay=8))
def test_random_networks_same_spikes(net):
    out, _, _ = run_pass(Placement(), net)
    assert sorted(out.neuron_ids) == sorted(net.neuron_ids)
    assert sorted((s.pre, s.post, s.weight, s.delay) for s in out.synapses) == sorted(
        (s.pre, s.post, s.weight, s.delay) for s in net.synapses)
    assert_same_spikes(net, out, neurons=set(net.neuron_ids))
    again, _, _ = run_pass(Placement(), net)
    assert again.to_dict() == out.to_dict()  # deterministic
