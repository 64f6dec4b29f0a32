"""The reference model against hand-checked examples and an independent naive model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.netgen import edge_cases, random_case, random_inputs, random_network
from spikeforge.toolchain.reference import (
    ReferenceSimulator,
    simulate,
    simulate_batch,
    simulate_population,
)

from naive_model import naive_simulate


def one(threshold=5, **kw) -> Network:
    net = Network()
    net.add_neuron(0, threshold=threshold, **kw)
    net.add_input(0)
    net.add_input(0, "in1")
    return net


def pots(net, inputs, steps, bits=16):
    return simulate(net, inputs, steps, potential_bits=bits, record_potentials=True).potentials[:, 0].tolist()


# ---------------------------------------------------------------- hand-checked worked examples
def test_integrate_and_fire_inclusive():
    r = simulate(one(5), [(0, 0, 3), (0, 1, 3)], 3, record_potentials=True)
    assert r.spikes == [(0, 1)]
    assert r.potentials[:, 0].tolist() == [3, 0, 0]


def test_threshold_zero_fires_only_when_touched():
    r = simulate(one(0), [(0, 2, 0)], 5)
    assert r.spikes == [(0, 2)]


def test_untouched_never_fires_even_above_threshold():
    # subtract reset leaves v >= θ, but with no event next step the neuron stays silent
    net = one(10, reset="subtract")
    r = simulate(net, [(0, 0, 35)], 4, record_potentials=True)
    assert r.spikes == [(0, 0)]
    assert r.potentials[:, 0].tolist() == [25, 25, 25, 25]
    r = simulate(net, [(0, 0, 35), (0, 1, 0), (0, 2, 0)], 4)
    assert r.spikes == [(0, 0), (0, 1), (0, 2)]


def test_v_min_clamps_before_integration():
    assert pots(one(10, v_min=-4), [(0, 0, -10), (0, 2, 1)], 3) == [-10, -4, -3]


def test_shift_leak_rounds_toward_minus_infinity():
    assert pots(one(1000, leak="shift", leak_shift=1), [(0, 0, 100)], 9) == [100, 50, 25, 13, 7, 4, 2, 1, 1]
    assert pots(one(1000, leak="shift", leak_shift=1), [(0, 0, -3)], 4) == [-3, -1, 0, 0]


def test_full_leak_zeroes_each_step():
    net = one(3, leak="full")
    r = simulate(net, [(0, 0, 2), (0, 1, 2)], 3)
    assert r.spikes == []
    assert simulate(net, [(0, 0, 2), (1, 0, 2)], 3).spikes == [(0, 0)]


def test_saturation_is_exact_sum_then_clamp():
    net = one(32767)
    assert pots(net, [(0, 0, 32000), (0, 1, 1000), (1, 1, -2000)], 2) == [32000, 31000]
    # saturates to 32767 == θ, so it fires (and resets) exactly then
    assert simulate(net, [(0, 0, 32000), (0, 1, 1000)], 2).spikes == [(0, 1)]
    assert simulate(net, [(0, 0, 32000), (0, 1, 766)], 2).spikes == []
    assert pots(one(32767, v_min=None), [(0, 0, -40000)], 1) == [-32768]
    assert pots(one(127, reset="subtract"), [(0, 0, 200)], 1, bits=8) == [0]
    assert pots(one(100), [(0, 0, 30), (0, 1, -300)], 2, bits=8) == [30, -128]


def test_reset_subtract():
    assert pots(one(10, reset="subtract"), [(0, 0, 25)], 1) == [15]


def test_refractory_ignores_events_and_bias():
    r = simulate(one(3, refractory=2), [(0, t, 5) for t in range(8)], 8)
    assert [t for _, t in r.spikes] == [0, 3, 6]
    r = simulate(one(4, refractory=1, bias=2), [], 8)
    assert [t for _, t in r.spikes] == [1, 4, 7]


def test_bias_touches():
    r = simulate(one(5, bias=2), [], 6)
    assert [t for _, t in r.spikes] == [2, 5]


def test_delay_and_weight_zero_event():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=0)
    net.add_synapse(0, 1, 0, 3)
    net.add_input(0)
    r = simulate(net, [(0, 1, 0)], 6)
    assert r.spikes == [(0, 1), (1, 4)]
    assert r.events == 1


def test_parallel_synapses_sum():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=10)
    net.add_synapse(0, 1, 5, 2)
    net.add_synapse(0, 1, 5, 2)
    net.add_input(0)
    assert simulate(net, [(0, 0, 0)], 4).spikes == [(0, 0), (1, 2)]


def test_state_persists_across_runs():
    case = random_case(7, 20, 80, steps=30)
    whole = simulate(case.network, case.inputs, 30)
    sim = ReferenceSimulator([case.network])
    sim.add_inputs(0, [e for e in case.inputs if e[1] < 10])
    sim.run(10)
    sim.add_inputs(0, [e for e in case.inputs if e[1] >= 10])
    sim.run(20)
    assert sim.results()[0] == whole


# ---------------------------------------------------------------- independent naive model
@pytest.mark.parametrize("case", edge_cases(), ids=lambda c: c.name)
def test_edge_cases_match_naive(case):
    spikes, p = naive_simulate(case.network, case.inputs, case.steps)
    r = simulate(case.network, case.inputs, case.steps, record_potentials=True)
    assert r.spikes == spikes
    assert r.potentials.tolist() == p


def test_edge_cases_are_not_trivial():
    # Every edge case but "empty" must produce at least one spike, or it tests nothing.
    silent = [c.name for c in edge_cases() if c.name != "empty" and not simulate(c.network, c.inputs, c.steps).spikes]
    assert silent == []


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 24), syn=st.integers(0, 100), bits=st.sampled_from([8, 12, 16]))
def test_random_networks_match_naive(seed, n, syn, bits):
    rng = np.random.default_rng(seed)
    hi = (1 << (bits - 1)) - 1
    net = random_network(rng, n, syn, max_delay=6, threshold_range=(0, min(255, hi)), potential_bits=bits)
    ins = random_inputs(rng, net, 30, value_range=(-60, min(300, hi)))
    spikes, p = naive_simulate(net, ins, 30, bits)
    r = simulate(net, ins, 30, potential_bits=bits, record_potentials=True)
    assert r.spikes == spikes
    assert r.potentials.tolist() == p


# ---------------------------------------------------------------- batches and populations
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 6))
def test_batch_equals_one_by_one(seed, batch):
    rng = np.random.default_rng(seed)
    net = random_network(rng, 20, 90)
    seqs = [random_inputs(rng, net, 25) for _ in range(batch)]
    got = simulate_batch(net, seqs, 25, record_potentials=True)
    want = [simulate(net, s, 25, record_potentials=True) for s in seqs]
    assert got == want


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), pop=st.integers(1, 6))
def test_population_equals_one_by_one(seed, pop):
    rng = np.random.default_rng(seed)
    nets = [random_network(rng, int(rng.integers(1, 20)), int(rng.integers(0, 80))) for _ in range(pop)]
    seqs = [random_inputs(rng, n, 25) for n in nets]
    got = simulate_population(nets, seqs, 25)
    want = [simulate(n, s, 25) for n, s in zip(nets, seqs, strict=True)]
    assert got == want
    assert [g.events for g in got] == [w.events for w in want]
    shared = [(0, t, 100) for t in range(0, 25, 3)]
    got = simulate_population(nets, None, 25, shared_inputs=shared)
    assert got == [simulate(n, shared, 25) for n in nets]


# ---------------------------------------------------------------- bad input
def test_rejects_float_network():
    net = one(2.5)
    with pytest.raises(NetworkError, match="quantize"):
        simulate(net, [], 1)


def test_rejects_parameters_wider_than_potential():
    with pytest.raises(NetworkError, match=r"threshold.*300.*8-bit"):
        simulate(one(300), [], 1, potential_bits=8)


@pytest.mark.parametrize(
    "inputs, match",
    [([(5, 0, 1)], "input_index = 5"), ([(0, -1, 1)], "time = -1"), ([(0, 0, 1.5)], "not an integer"), ([(0, 0)], "triple"), ([(0, 0, 10**30)], r"value = 10{30}|value = 1000000000000000000000000000000 is out of range")],
)
def test_rejects_bad_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        simulate(one(1), inputs, 1)
