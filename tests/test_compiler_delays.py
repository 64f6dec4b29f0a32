"""Delay legalisation: relay chains keep every spike time exact."""

from __future__ import annotations

from compiler_helpers import SMALL, assert_same_spikes, networks, run_pass
from hypothesis import HealthCheck, given, settings

from spikeforge.toolchain.compiler.delays import LegaliseDelays
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.reference import simulate

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_one_long_synapse_fires_exactly_d_steps_later():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=5)
    net.add_synapse(0, 1, 7, 40)
    net.add_input(0)
    net.add_output(1)
    out, changed, ctx = run_pass(LegaliseDelays(), net)
    assert changed
    # 40 = 4*8 + 8: relays fire at +8, +16, +24, +32; the last hop has delay 8.
    relays = out.metadata["compiler"]["relays"]
    assert len(relays) == 4 and ctx._notes["relays"] == 4
    assert all(s.delay <= SMALL.max_delay for s in out.synapses)
    assert [s.weight for s in out.synapses if s.post == 1] == [7]
    res = simulate(out, [(0, 3, 0), (0, 4, 0)], 60)
    assert [t for i, t in res.spikes if i == 1] == [43, 44]
    assert [t for i, t in res.spikes if i == relays[0]] == [11, 12]
    assert not set(relays) & {p.neuron for p in out.inputs + out.outputs}


def test_chain_is_shared_per_source():
    net = Network()
    for i in range(4):
        net.add_neuron(i, threshold=1)
    net.add_input(0)
    for i, d in ((1, 9), (2, 17), (3, 25)):
        net.add_synapse(0, i, 1, d)
        net.add_output(i)
    out, _, _ = run_pass(LegaliseDelays(), net)
    assert len(out.metadata["compiler"]["relays"]) == 3  # floor((25-1)/8) = 3, shared
    assert_same_spikes(net, out)


def test_short_delays_unchanged():
    net = Network()
    net.add_neuron(0)
    net.add_neuron(1)
    net.add_synapse(0, 1, 1, SMALL.max_delay)
    out, changed, _ = run_pass(LegaliseDelays(), net)
    assert not changed and out.to_dict() == net.to_dict()


@FAST
@given(networks(max_delay=60))
def test_random_networks_keep_every_spike(net):
    out, changed, _ = run_pass(LegaliseDelays(), net, max_cores=16)  # room for every relay chain
    assert all(s.delay <= SMALL.max_delay for s in out.synapses)
    by_src: dict[int, int] = {}
    for s in net.synapses:
        by_src[s.pre] = max(by_src.get(s.pre, 0), (s.delay - 1) // SMALL.max_delay)
    assert len(out.metadata.get("compiler", {}).get("relays", [])) == sum(by_src.values())
    assert changed == (net.max_delay > SMALL.max_delay)
    # every original neuron is observable here: relays must not change any of them
    assert_same_spikes(net, out, neurons=set(net.neuron_ids))
