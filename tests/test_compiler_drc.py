"""Design-rule check: agrees with what lower() accepts, and names what does not fit."""

from __future__ import annotations

import pytest
from compiler_helpers import SMALL, networks
from hypothesis import HealthCheck, given, settings

from spikeforge.hdl.config import PRESETS
from spikeforge.hdl.image import ImageError, lower
from spikeforge.toolchain.compiler import CompileError, design_rule_check
from spikeforge.toolchain.ir import Network

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(networks(max_neurons=70, max_synapses=120, max_delay=10, weight_range=(-150, 150),
                threshold_range=(0, 40000)))
def test_drc_ok_exactly_when_lower_accepts(net):
    rep = design_rule_check(net, SMALL)
    try:
        lower(net, SMALL)
        lowered = True
    except ImageError:
        lowered = False
    assert rep.ok == lowered, rep.summary()
    assert rep.ok == (not rep.violations)


def _one(**kw) -> Network:
    net = Network()
    net.add_neuron(0, **kw.pop("neuron", {}))
    net.add_neuron(1)
    net.add_synapse(0, 1, kw.pop("weight", 1), kw.pop("delay", 1))
    return net


@pytest.mark.parametrize("net, field, value, limit", [
    (_one(delay=20), "delay", 20, "1..8 (max_delay)"),
    (_one(weight=200), "weight", 200, "-128..127 (weight_bits = 8)"),
    (_one(weight=0.5), "weight", 0.5, "an integer"),
    (_one(neuron={"threshold": 40000}), "threshold", 40000, "0..32767"),
    (_one(neuron={"bias": -40000}), "bias", -40000, "-32768..32767"),
    (_one(neuron={"refractory": 16}), "refractory", 16, "0..15"),
    (_one(neuron={"threshold": 2.5}), "threshold", 2.5, "an integer"),
    (_one(weight=3.0), "weight", 3.0, "an integer"),  # lower() takes ints only
])
def test_each_violation_names_element_field_value_limit_fix(net, field, value, limit):
    rep = design_rule_check(net, SMALL)
    assert not rep.ok
    (v,) = rep.violations
    assert (v.field, v.value, v.limit) == (field, value, limit)
    assert v.element in ("neuron 0", "synapse #0 (0->1)") and v.fix
    with pytest.raises(CompileError, match=f"{field} = {value}"):
        rep.raise_if_failed()


def test_sizes_and_fan_in_and_counts():
    cfg = PRESETS["tiny"]
    net = Network()
    for i in range(40):
        net.add_neuron(i)
    for k in range(300):
        net.add_synapse(k % 40, 0, 127, 1 + k % 20)
    rep = design_rule_check(net, cfg)
    assert rep.counts["neurons"] == 1 and rep.counts["synapses"] == 1
    assert rep.counts["delay"] == 300 * 12 // 20  # delays 9..20
    assert len([v for v in rep.violations if v.field == "delay"]) == 20  # listed: capped
    assert rep.counts.get("fan_in") is None  # 300 * 127 = 38,100 fits 18 bits
    s = rep.summary()
    assert "neurons = 40" in s and "holds 32" in s and "(and 179 more)" in s
    assert design_rule_check(net, cfg, max_cores=2).counts.get("neurons") is None
    rep.to_dict()  # JSON-able


def test_empty_and_invalid():
    assert design_rule_check(Network(), SMALL).ok
    bad = _one()
    bad.synapses[0].post = 7
    with pytest.raises(CompileError, match="names no neuron"):
        design_rule_check(bad, SMALL)
