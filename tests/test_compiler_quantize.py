"""Quantization: float networks onto the core's integer widths, error reported and bounded."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_helpers import SMALL, networks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.hdl.image import lower
from spikeforge.toolchain.compiler import CompileError, design_rule_check, quantize_network
from spikeforge.toolchain.compiler.quantize import layers, scale_inputs
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import random_inputs
from spikeforge.toolchain.reference import simulate

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _floated(net: Network, factor: float) -> Network:
    f = net.copy()
    for n in f.neurons:
        n.threshold = n.threshold * factor
        n.bias = n.bias * factor
        if n.v_min is not None:
            n.v_min = n.v_min * factor
    for s in f.synapses:
        s.weight = s.weight * factor
    return f


@FAST
@given(networks(max_delay=8))
def test_integer_network_that_fits_is_unchanged(net):
    q, rep = quantize_network(net, SMALL)
    assert q.to_dict()["neurons"] == net.to_dict()["neurons"]
    assert q.synapses == net.synapses
    assert rep.exact and rep.scales == [1.0] and rep.max_abs_weight_error == 0


@FAST
@given(networks(max_delay=8), st.floats(0.01, 50.0), st.sampled_from(["network", "layer"]))
def test_float_networks_fit_and_error_is_bounded(net, factor, granularity):
    src = _floated(net, factor)
    q, rep = quantize_network(src, SMALL, granularity=granularity)
    assert q.is_integer() and design_rule_check(q, SMALL).ok
    lower(q, SMALL)
    # Every rounding error is at most half a step of its neuron's scale, and the report is right.
    worst = 0.0
    for a, b in zip(src.synapses, q.synapses, strict=True):
        s = rep.neuron_scale[a.post]
        err = abs(b.weight / s - a.weight)
        assert err <= 0.5 / s + 1e-9
        worst = max(worst, err)
    assert rep.max_abs_weight_error == pytest.approx(worst, abs=1e-8)
    for a, b in zip(src.neurons, q.neurons, strict=True):
        s = rep.neuron_scale[a.id]
        assert abs(b.threshold / s - a.threshold) <= 0.5 / s + 1e-9
    if granularity == "network":
        assert len(set(rep.neuron_scale.values())) <= 1


def test_scale_is_the_largest_that_fits():
    net = Network()
    net.add_neuron(0, threshold=0.0)
    net.add_neuron(1, threshold=3.0)
    net.add_input(0)
    net.add_synapse(0, 1, 0.5, 1)
    net.add_synapse(0, 1, -0.25, 2)
    net.add_output(1)
    q, rep = quantize_network(net, SMALL)
    assert rep.scale == pytest.approx(127 / 0.5)
    assert [s.weight for s in q.synapses] == [127, -64]  # -63.5 rounds away from zero
    assert q.neurons[1].threshold == 762
    assert rep.max_abs_weight_error == pytest.approx(0.5 / 254, rel=1e-6)
    assert rep.input_scales == [pytest.approx(254.0)]
    assert not rep.exact


def test_layer_scales_each_layer_on_its_own():
    net = Network()
    for i in range(3):
        net.add_neuron(i, threshold=1.0)
    net.add_input(0)
    net.add_synapse(0, 1, 10.0, 1)    # layer 1: weights up to 10
    net.add_synapse(1, 2, 0.01, 1)    # layer 2: tiny weights, would round to 0 at scale 12.7
    net.add_output(2)
    assert layers(net) == {0: 0, 1: 1, 2: 2}
    qn, rn = quantize_network(net, SMALL, granularity="network")
    ql, rl = quantize_network(net, SMALL, granularity="layer")
    assert qn.synapses[1].weight == 0  # the network scale loses layer 2 entirely
    assert ql.synapses[1].weight == 127 and ql.synapses[0].weight == 127
    assert rl.max_abs_weight_error < rn.max_abs_weight_error


def test_output_change_reported_on_stimuli():
    rng = np.random.default_rng(3)
    from spikeforge.toolchain.netgen import random_network

    net = random_network(rng, 20, 80, max_delay=8, all_modes=False)
    src = _floated(net, 0.013)
    stim = [random_inputs(rng, net, 80, value_range=(0, 255)) for _ in range(4)]
    fstim = [[(i, t, v * 0.013) for i, t, v in seq] for seq in stim]
    q, rep = quantize_network(src, SMALL, fstim, steps=80)
    o = rep.output_spikes
    assert o["stimuli"] == 4 and o["steps"] == 80
    # independent recount: quantized run on its scaled inputs
    qs = scale_inputs(fstim, rep.input_scales)
    total = sum(len([1 for i, _t in simulate(q, s, 80).spikes if i in {p.neuron for p in q.outputs}])
                for s in qs)
    assert o["quantized"] == total
    assert o["ideal"] > 0
    assert o["changed"] >= abs(o["ideal"] - o["quantized"])
    assert q.metadata["quantization"]["output_spikes"] == o


def test_integer_source_with_too_wide_threshold_is_scaled_and_reported():
    net = Network()
    net.add_neuron(0, threshold=0)
    net.add_neuron(1, threshold=100000)
    net.add_input(0)
    net.add_synapse(0, 1, 50000, 1)
    net.add_output(1)
    q, rep = quantize_network(net, SMALL, [[(0, 0, 1), (0, 1, 1), (0, 5, 1)]], steps=10)
    assert q.neurons[1].threshold <= 32767 and q.synapses[0].weight <= 127
    assert rep.output_spikes["changed"] == 0 and rep.output_spikes["ideal"] == 1


def test_bad_granularity_and_invalid_network():
    with pytest.raises(CompileError, match="granularity = 'neuron'"):
        quantize_network(Network(), SMALL, granularity="neuron")  # type: ignore[arg-type]
    q, rep = quantize_network(Network(), SMALL)
    assert q.neurons == [] and rep.exact
