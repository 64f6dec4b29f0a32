"""Partitioning: networks larger than one core, routes between cores, the same spikes."""

from __future__ import annotations

import networkx as nx
import pytest
from compiler_helpers import networks
from hypothesis import HealthCheck, given, settings

from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.image import lower
from spikeforge.toolchain.compiler import CompileError, compile_network, simulate_deployment
from spikeforge.toolchain.compiler.partition import assign_cores
from spikeforge.toolchain.netgen import random_inputs, random_network
from spikeforge.toolchain.reference import simulate

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: 12 neurons and 40 synapses per core: small networks already need several cores.
MINI = CoreConfig(name="mini", n_neurons=12, n_synapses=40, max_delay=4)


def test_split_over_cores_with_routes_runs_like_the_whole():
    net = random_network(7, 40, 120, max_delay=4, all_modes=True)
    net.outputs = []
    for n in net.neurons:
        net.add_output(n.id)  # every neuron observable: nothing is pruned
    res = compile_network(net, MINI, max_cores=8)
    k = len(res.images)
    assert 4 <= k <= 8 and res.report["compiled"]["cores"] == k
    for part in res.core_networks:
        assert len(part.neurons) <= MINI.n_neurons and len(part.synapses) <= MINI.n_synapses
        lower(part, MINI)
    cross = sum(1 for s in res.network.synapses
                if res.core_of(s.pre) != res.core_of(s.post))
    assert len(res.routes) == cross > 0
    assert all(r.src_core != r.dst_core for r in res.routes)
    spikes = 0
    for seed in range(3):
        ins = random_inputs(seed, res.network, 60, density=0.3)
        whole = simulate(res.network, ins, 60)
        assert simulate_deployment(res, ins, 60, backend="image") == whole
        assert simulate_deployment(res, ins, 60, backend="reference") == whole
        spikes += len(whole.spike_times)
    assert spikes > 0


@FAST
@given(networks(max_neurons=30, max_synapses=90, max_delay=10))
def test_random_partitioned_deployments_equal_the_source(net):
    try:
        res = compile_network(net, MINI, max_cores=16, verify_steps=40)
    except CompileError as e:  # e.g. one neuron with more self-synapses than a table holds
        assert "do not fit a synapse table of 40" in str(e)
        return
    assert res.report["verify"]["ok"]
    outs = {p.name: p.neuron for p in net.outputs}
    compiled_outs = {p.name: p.neuron for p in res.network.outputs}
    for seed in range(2):
        ins = random_inputs(seed, net, 50, density=0.3)
        a = simulate(net, ins, 50)
        b = res.simulate(ins, 50)
        for name, nid in outs.items():
            assert [t for i, t in a.spikes if i == nid] == [t for i, t in b.spikes if i == compiled_outs[name]]


def test_too_many_neurons_for_all_cores_is_refused_with_numbers():
    net = random_network(1, 50, 10, max_delay=4)
    for n in net.neurons:
        net.add_output(n.id, f"keep{n.id}")  # nothing can be pruned
    with pytest.raises(CompileError, match=r"50 neurons .* holds 12, so it needs at least 5 cores, but max_cores = 2"):
        compile_network(net, MINI, max_cores=2)


def test_synapse_table_limit_splits_too():
    cfg = CoreConfig(name="syn", n_neurons=64, n_synapses=16, max_delay=4)
    net = random_network(2, 10, 60, max_delay=4, all_modes=False, threshold_range=(1, 50))
    res = compile_network(net, cfg, max_cores=10, verify_steps=30)
    assert all(len(p.synapses) <= 16 for p in res.core_networks)


def test_route_weight_must_fit_an_input_command():
    cfg = CoreConfig(name="narrow-input", n_neurons=4, n_synapses=40, max_delay=4, weight_bits=8, input_bits=4)
    net = random_network(3, 8, 30, max_delay=4, all_modes=False, weight_range=(20, 100))
    for n in net.neurons:
        net.add_output(n.id, f"o{n.id}")
    with pytest.raises(CompileError, match=r"weight \d+ is sent as an INPUT value, .* 4 bits \(-8\.\.7\)"):
        compile_network(net, cfg, max_cores=4)


def test_a_neuron_with_many_synapses_to_the_filled_core_starts_the_next_one():
    g = nx.MultiDiGraph()
    g.add_nodes_from([0, 1, 2])
    for _ in range(3):
        g.add_edge(0, 1, weight=1, delay=1)
    for _ in range(2):
        g.add_edge(1, 0, weight=1, delay=1)
    g.add_edge(2, 2, weight=1, delay=1)
    # 5 synapses between 0 and 1 do not fit a table of 4: 1 starts core 1, its self-synapses are 0
    assert assign_cores(g, n_neurons=8, n_synapses=4) == {0: 0, 1: 1, 2: 1}
    g.add_edge(2, 2, weight=1, delay=1)
    g.add_edge(2, 2, weight=1, delay=1)
    g.add_edge(2, 2, weight=1, delay=1)
    g.add_edge(2, 2, weight=1, delay=1)
    with pytest.raises(CompileError, match="neuron 2: 5 self-synapses do not fit a synapse table of 4"):
        assign_cores(g, n_neurons=8, n_synapses=4)
