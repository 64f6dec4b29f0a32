"""Prune and merge: dead neurons, inert synapses and parallel synapses, outputs unchanged."""

from __future__ import annotations

from compiler_helpers import SMALL, assert_same_spikes, networks, run_pass
from hypothesis import HealthCheck, given, settings

from spikeforge.toolchain.compiler.prune import MergeParallel, PruneDead, PruneZeroWeights
from spikeforge.toolchain.ir import Network

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _net() -> Network:
    net = Network()
    for i in range(7):
        net.add_neuron(i, threshold=2)
    net.add_input(0)
    net.add_synapse(0, 1, 3, 1)
    net.add_synapse(1, 2, 3, 1)
    net.add_output(2)
    net.add_synapse(3, 2, 5, 1)   # 3 is never touched: never fires
    net.add_synapse(0, 4, 3, 1)   # 4 reaches no output
    net.add_synapse(4, 5, 3, 1)   # 5 reaches no output
    net.add_synapse(6, 6, 3, 1)   # 6: self loop, never touched
    return net


def test_dead_neurons_and_their_synapses_go():
    net = _net()
    out, changed, ctx = run_pass(PruneDead(), net)
    assert changed
    assert sorted(out.neuron_ids) == [0, 1, 2]
    assert [(s.pre, s.post) for s in out.synapses] == [(0, 1), (1, 2)]
    assert ctx._notes["neurons"] == 4
    assert_same_spikes(net, out)


def test_never_firing_by_threshold():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=10, leak="full")   # at most 4 + 5 = 9 per step: never fires
    net.add_neuron(2, threshold=1)
    net.add_neuron(3, threshold=1)                  # only negative input: never fires
    net.add_input(0)
    net.add_synapse(0, 1, 4, 1)
    net.add_synapse(0, 1, 5, 2)
    net.add_synapse(1, 2, 9, 1)
    net.add_synapse(0, 3, -4, 1)
    net.add_synapse(3, 2, 9, 1)
    net.add_output(2)
    out, _, _ = run_pass(PruneDead(), net)
    assert sorted(out.neuron_ids) == [0, 2]
    assert_same_spikes(net, out)


def test_without_outputs_only_never_firing_neurons_go():
    net = _net()
    net.outputs = []
    out, _, _ = run_pass(PruneDead(), net)
    assert 4 in out.neuron_ids and 5 in out.neuron_ids and 3 not in out.neuron_ids


def test_zero_weight_kept_where_it_touches_removed_where_bias_touches():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=0)              # weight-0 event makes it fire: keep
    net.add_neuron(2, threshold=50, bias=1)     # touched by its bias anyway: drop
    net.add_input(0)
    net.add_synapse(0, 1, 0, 1)
    net.add_synapse(0, 2, 0, 3)
    net.add_output(1)
    net.add_output(2)
    out, changed, _ = run_pass(PruneZeroWeights(), net)
    assert changed and [(s.pre, s.post) for s in out.synapses] == [(0, 1)]
    assert assert_same_spikes(net, out) > 0


def test_parallel_synapses_merge_when_the_sum_fits():
    net = Network()
    for i in range(3):
        net.add_neuron(i, threshold=0 if i == 0 else 100)
    net.add_input(0)
    net.add_synapse(0, 1, 60, 2)
    net.add_synapse(0, 1, 50, 2)
    net.add_synapse(0, 1, 50, 3)     # other delay: stays
    net.add_synapse(0, 2, 100, 1)
    net.add_synapse(0, 2, 100, 1)    # 200 > 127: stays split
    net.add_output(1)
    net.add_output(2)
    out, changed, _ = run_pass(MergeParallel(), net)
    assert changed
    assert sorted((s.post, s.delay, s.weight) for s in out.synapses) == [
        (1, 2, 110), (1, 3, 50), (2, 1, 100), (2, 1, 100)]
    assert_same_spikes(net, out)


@FAST
@given(networks(max_delay=8))
def test_random_networks_keep_observable_spikes(net):
    out = net
    for p in (MergeParallel(), PruneZeroWeights(), PruneDead()):
        out, _, _ = run_pass(p, out, SMALL)
    assert len(out.neurons) <= len(net.neurons) and len(out.synapses) <= len(net.synapses)
    assert_same_spikes(net, out)


@FAST
@given(networks(max_delay=4, max_synapses=30, weight_range=(-3, 3), threshold_range=(0, 4)))
def test_random_small_weights_with_zeros_and_parallels(net):
    out = net
    for p in (MergeParallel(), PruneZeroWeights(), PruneDead()):
        out, _, _ = run_pass(p, out, SMALL)
    assert_same_spikes(net, out)


@FAST
@given(networks(max_delay=8, max_synapses=40, weight_range=(-5, 5), threshold_range=(0, 12)))
def test_prune_dead_reaches_its_fixed_point_in_one_application(net):
    out, _, _ = run_pass(PruneDead(), net)
    again, changed, _ = run_pass(PruneDead(), out)
    assert not changed and again.to_dict() == out.to_dict()
