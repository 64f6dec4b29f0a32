"""The pass manager: fixed points, records, dumps, and the spike-for-spike check catching a bad pass."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from compiler_helpers import SMALL

from spikeforge.toolchain.compiler import CompileError, EquivalenceError, Flow, Pass, PassManager
from spikeforge.toolchain.compiler.delays import LegaliseDelays
from spikeforge.toolchain.compiler.fanout import FanoutTree
from spikeforge.toolchain.compiler.lower import default_flow
from spikeforge.toolchain.compiler.passes import (
    CompileContext,
    graph_to_network,
    network_to_graph,
    same_behaviour,
)
from spikeforge.toolchain.ir import Network, load_network
from spikeforge.toolchain.netgen import random_network


class CountDown(Pass):
    """Changes the graph three times, then reaches its fixed point."""

    name = "countdown"
    fixed_point = True

    def __init__(self) -> None:
        self.left = 3

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        ctx.note("steps", 1)
        if self.left:
            self.left -= 1
            return True
        return False


class Forever(Pass):
    name = "forever"
    fixed_point = True

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        return True


class FlipWeights(Pass):
    """A deliberately wrong 'exact' pass: the manager's check must catch it."""

    name = "flip"

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        for _, _, a in g.edges(data=True):
            a["weight"] = -a["weight"]
        return g.number_of_edges() > 0


def _net() -> Network:
    net = random_network(11, 12, 40, max_delay=20, all_modes=False, threshold_range=(1, 60))
    return net


def test_fixed_point_records_and_table():
    pm = PassManager(CompileContext(SMALL))
    pm.run(Flow("t", [CountDown()]), network_to_graph(_net()))
    (rec,) = pm.records
    assert rec.changed and rec.iterations == 4 and rec.notes["steps"] == 4
    assert "countdown" in pm.table() and rec.to_dict()["pass"] == "countdown"


def test_runaway_pass_is_stopped():
    pm = PassManager(CompileContext(SMALL), max_iterations=5)
    with pytest.raises(CompileError, match="'forever' did not reach a fixed point in 5 iterations"):
        pm.run(Flow("t", [Forever()]), network_to_graph(_net()))


def test_check_catches_a_pass_that_changes_spikes():
    net = _net()
    pm = PassManager(CompileContext(SMALL), check_steps=60)
    with pytest.raises(EquivalenceError, match="pass 'flip' changed the network's behaviour"):
        pm.run(Flow("t", [LegaliseDelays(), FlipWeights()]), network_to_graph(net))
    assert pm.records[0].checked  # the exact delay pass was checked and passed


def test_dump_after(tmp_path):
    net = _net()
    pm = PassManager(CompileContext(SMALL), dump_after=["delays"], dump_dir=tmp_path)
    pm.run(Flow("t", [LegaliseDelays()]), network_to_graph(net))
    (path,) = pm.dumps
    dumped = load_network(path)
    assert dumped.max_delay <= SMALL.max_delay and dumped.metadata["compiler"]["relays"]
    assert json.loads(path.read_text())["format"] == "spikeforge.network"
    with pytest.raises(CompileError, match="--dump-after 'nope' names no pass .* allowed: delays"):
        PassManager(CompileContext(SMALL), dump_after=["nope"]).run(
            Flow("t", [LegaliseDelays()]), network_to_graph(net))


def test_graph_round_trip_keeps_everything():
    net = _net()
    net.neurons[0].name = "first"
    back = graph_to_network(network_to_graph(net))
    assert back.to_dict() == net.to_dict()


def test_same_behaviour_reports_the_difference():
    net = _net()
    other = net.copy()
    for s in other.synapses:
        s.weight = -s.weight
    stim = [[(0, t, 60) for t in range(0, 30, 3)]]
    assert same_behaviour(net, net.copy(), stim, 40, 16) is None
    assert "spikes" in same_behaviour(net, other, stim, 40, 16)


def _odd_networks() -> list[Network]:
    empty = Network()
    isolated = Network()
    for i in range(3):
        isolated.add_neuron(i)
    isolated.add_input(0)
    isolated.add_output(2)
    loops = Network()
    for i in range(3):
        loops.add_neuron(i, threshold=1)
    loops.add_input(0)
    loops.add_synapse(0, 0, 1, 30)
    loops.add_synapse(0, 1, 200, 1)
    loops.add_synapse(1, 2, 1, 12)
    loops.add_synapse(2, 0, -1, 1)
    loops.add_synapse(2, 2, 0, 3)
    loops.add_output(2)
    return [empty, isolated, loops]


@pytest.mark.parametrize("name", [p.name for p in default_flow().passes])
def test_no_pass_crashes_on_empty_isolated_self_loops_and_cycles(name):
    from compiler_helpers import assert_same_spikes, run_pass

    for net in _odd_networks():
        (p,) = [q for q in default_flow(max_fanout=2).passes if q.name == name]
        try:
            out, _, _ = run_pass(p, net)
        except CompileError as e:  # only a refusal with numbers is acceptable
            assert isinstance(p, FanoutTree) and "max_fanout" in str(e)
            continue
        if p.exact:
            assert_same_spikes(net, out)


def test_network_to_graph_equals_to_networkx():
    from spikeforge.toolchain.netgen import random_network as rn

    for seed in range(5):
        net = rn(seed, 30, 200, max_delay=40)  # parallel synapses and self loops included
        fast, ref = network_to_graph(net), net.to_networkx()
        assert list(fast.nodes(data=True)) == list(ref.nodes(data=True))
        assert list(fast.edges(keys=True, data=True)) == list(ref.edges(keys=True, data=True))
        assert sorted(fast.in_edges(keys=True, data=True)) == sorted(ref.in_edges(keys=True, data=True))
        assert {k: v for k, v in fast.graph.items() if not k.startswith("_")} == ref.graph
        fast.remove_edge(net.synapses[0].pre, net.synapses[0].post)  # networkx methods still work
        assert fast.number_of_edges() == len(net.synapses) - 1
