"""Weight splitting, fan-out relay trees and the fan-in refusal."""

from __future__ import annotations

import pytest
from compiler_helpers import SMALL, assert_same_spikes, networks, run_pass
from hypothesis import HealthCheck, given, settings

from spikeforge.toolchain.compiler import CompileError
from spikeforge.toolchain.compiler.fanout import CheckFanIn, FanoutTree, SplitWeights
from spikeforge.toolchain.ir import Network

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_wide_weights_split_into_parallel_synapses():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=700)
    net.add_neuron(2, threshold=10)
    net.add_input(0)
    net.add_synapse(0, 1, 1000, 2)
    net.add_synapse(0, 2, -300, 1)
    net.add_output(1)
    net.add_output(2)
    out, changed, ctx = run_pass(SplitWeights(), net)
    assert changed and ctx._notes["split"] == 2
    to1 = [s.weight for s in out.synapses if s.post == 1]
    to2 = [s.weight for s in out.synapses if s.post == 2]
    assert sum(to1) == 1000 and all(-128 <= w <= 127 for w in to1) and len(to1) == 8
    assert sum(to2) == -300 and all(-128 <= w <= 127 for w in to2) and len(to2) == 3
    assert all(s.delay == 2 for s in out.synapses if s.post == 1)
    assert assert_same_spikes(net, out) > 0


@FAST
@given(networks(max_delay=8, weight_range=(-2000, 2000), threshold_range=(0, 3000)))
def test_random_wide_weights(net):
    out, _, _ = run_pass(SplitWeights(), net)
    assert all(-128 <= s.weight <= 127 for s in out.synapses)
    assert_same_spikes(net, out)


def _star(n: int, delays: list[int]) -> Network:
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_input(0)
    for i in range(1, n + 1):
        net.add_neuron(i, threshold=1)
        net.add_synapse(0, i, 1 + i % 3, delays[i % len(delays)])
        net.add_output(i)
    return net


def test_fanout_tree_limits_out_degree_exactly():
    net = _star(40, [2, 3, 5, 2, 3, 5, 1, 2, 3, 5])
    out, changed, ctx = run_pass(FanoutTree(10), net)
    assert changed
    deg: dict[int, int] = {}
    for s in out.synapses:
        deg[s.pre] = deg.get(s.pre, 0) + 1
    assert max(deg.values()) <= 10
    # 4 synapses of delay 1 stay; 36 others go to ceil(36 / 10) = 4 relays
    assert ctx._notes["relays"] == len(out.metadata["compiler"]["relays"]) == 4
    assert assert_same_spikes(net, out) > 0


def test_fanout_tree_refuses_delay_one_overflow_with_numbers():
    net = _star(20, [1])
    with pytest.raises(CompileError, match=r"neuron 0: fan-out 20 .* max_fanout = 8: 20 synapses of delay 1"):
        run_pass(FanoutTree(8), net)
    with pytest.raises(CompileError, match="max_fanout = 1"):
        FanoutTree(1)


def test_fanout_none_is_a_no_op():
    net = _star(40, [2])
    out, changed, _ = run_pass(FanoutTree(None), net)
    assert not changed and out.to_dict() == net.to_dict()


@FAST
@given(networks(max_delay=8, max_synapses=80))
def test_random_fanout_trees(net):
    try:
        out, _, _ = run_pass(FanoutTree(6), net)
    except CompileError as e:
        assert "raise max_fanout" in str(e)
        return
    deg: dict[int, int] = {}
    for s in out.synapses:
        deg[s.pre] = deg.get(s.pre, 0) + 1
    assert max(deg.values(), default=0) <= 6
    assert_same_spikes(net, out, neurons=set(net.neuron_ids))


def test_fan_in_over_the_accumulator_is_refused_with_numbers():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=1)
    net.add_input(0)
    for _ in range(1100):  # 1100 * 127 = 139,700 > 131,071 (18-bit accumulator)
        net.add_synapse(0, 1, 127, 1)
    with pytest.raises(CompileError, match=r"neuron 1: fan-in sum of \|weight\| = 139700 .* 0\.\.131071"):
        run_pass(CheckFanIn(), net, SMALL)
    net.synapses = net.synapses[:1000]
    out, changed, ctx = run_pass(CheckFanIn(), net, SMALL)
    assert not changed and ctx._notes["max_fan_in"] == 127000
