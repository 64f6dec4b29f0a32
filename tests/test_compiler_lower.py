"""compile_network end to end: any network to core images, checked against the source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compiler_helpers import networks
from hypothesis import HealthCheck, given, settings

from spikeforge.hdl.config import PRESETS
from spikeforge.hdl.image import CoreImage, run_image
from spikeforge.toolchain.compiler import CompileError, compile_network, design_rule_check
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import Case, random_inputs, random_network
from spikeforge.toolchain.reference import simulate

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TINY = PRESETS["tiny"]
BUILD = Path(__file__).resolve().parents[1] / "build" / "test_verify"


def long_wide_float(seed: int, n: int, fan_out: int, max_delay: int, *, floats: bool = True) -> Network:
    """Delays up to ``max_delay``, one neuron with ``fan_out`` synapses, float weights."""
    net = random_network(seed, n, 3 * n, max_delay=max_delay, all_modes=False, threshold_range=(20, 200))
    hub = net.neurons[0].id
    for k in range(fan_out):
        net.add_synapse(hub, net.neurons[1 + k % (n - 1)].id, 40 + k % 50, 1 + (7 * k) % max_delay)
    net.outputs = []
    for nn in net.neurons[-max(1, n // 3):]:
        net.add_output(nn.id)
    if floats:
        for s in net.synapses:
            s.weight = s.weight * 0.731
        for nn in net.neurons:
            nn.threshold = nn.threshold * 0.731
    return net


@FAST
@given(networks(max_neurons=14, max_synapses=50, max_delay=40))
def test_random_integer_networks_compile_and_run_like_the_source(net):
    res = compile_network(net, TINY, max_cores=4, verify_steps=50)
    assert res.report["verify"]["ok"] and res.report["quantization"]["exact"]
    for img in res.images:
        assert CoreImage.from_json(img.to_json(), TINY).checksum() == img.checksum()
    if len(res.images) == 1:
        ins = random_inputs(5, net, 60)
        src = simulate(net, ins, 60)
        got = run_image(res.image, ins, 60)
        outs = {p.name: p.neuron for p in net.outputs}
        for name, slot in zip(res.image.output_names, res.image.outputs, strict=True):
            want = [t for i, t in src.spikes if i == outs[name]]
            assert want == [t for i, t in zip(got.spike_index, got.spike_times, strict=True) if i == slot]


def test_long_delays_wide_fan_out_float_weights_on_tiny():
    net = long_wide_float(3, 12, 60, 30)
    assert not design_rule_check(net, TINY).ok
    res = compile_network(net, TINY, max_cores=2, verify_steps=60)
    r = res.report
    assert r["compiled"]["relays"] > 0 and not r["quantization"]["exact"]
    assert r["source"]["drc"]["delay"] > 0 and r["source"]["drc"]["integer"] > 0
    assert design_rule_check(res.network, TINY, max_cores=2).counts.keys() <= {"neurons", "synapses"}
    json.dumps(r)
    mem = r["memory"][0]
    assert mem["synapses"]["words"] == len(res.images[0].synapses) <= mem["synapses"]["capacity"]


@pytest.mark.parametrize("build", [
    lambda: Network(),
    lambda: _isolated(),
    lambda: _self_loops_and_cycle(),
])
def test_edge_networks_compile(build):
    net = build()
    res = compile_network(net, TINY, verify_steps=20)
    assert len(res.images) == 1
    assert [p.name for p in res.network.outputs] == [p.name for p in net.outputs]


def _isolated() -> Network:
    net = Network()
    for i in range(5):
        net.add_neuron(i, threshold=2)
    net.add_input(0)
    net.add_output(0)
    return net


def _self_loops_and_cycle() -> Network:
    net = Network()
    for i in range(4):
        net.add_neuron(i, threshold=1)
    net.add_input(0)
    net.add_synapse(0, 0, 1, 20)
    net.add_synapse(0, 1, 1, 9)
    net.add_synapse(1, 2, 1, 1)
    net.add_synapse(2, 0, -1, 30)
    net.add_synapse(3, 3, 5, 1)
    net.add_output(2)
    return net


def test_refusals_name_the_numbers():
    net = Network()
    for i in range(100):
        net.add_neuron(i, threshold=1)
        net.add_input(i)
    with pytest.raises(CompileError, match=r"100 neurons .* holds 32, so it needs at least 4 cores, but max_cores = 3"):
        compile_network(net, TINY, max_cores=3)
    bad = _isolated()
    bad.neurons[1].refractory = 99
    with pytest.raises(CompileError, match=r"refractory = 99 does not fit \(0..15\)"):
        compile_network(bad, TINY)
    with pytest.raises(CompileError, match="max_cores = 0"):
        compile_network(_isolated(), TINY, max_cores=0)


def test_verify_catches_a_broken_lowering(monkeypatch):
    from spikeforge.toolchain.compiler import lower as lower_mod
    from spikeforge.toolchain.compiler.passes import EquivalenceError

    net = random_network(4, 10, 30, max_delay=8, all_modes=False, threshold_range=(1, 40))
    real = lower_mod.lower

    def broken(part, cfg):
        part = part.copy()
        for s in part.synapses:
            s.weight = -s.weight
        return real(part, cfg)

    monkeypatch.setattr(lower_mod, "lower", broken)
    with pytest.raises(EquivalenceError, match="core images differ"):
        compile_network(net, TINY, verify_steps=50,
                        stimuli=[[(i, t, 50) for i in range(len(net.inputs)) for t in range(0, 40, 2)]])


def _verilator_check(net: Network, cfg, steps: int, seed: int = 0):
    from spikeforge.sim.verify import verify_cases

    res = compile_network(net, cfg, verify_steps=steps)
    assert len(res.images) == 1
    ins = random_inputs(seed, res.network, steps, density=0.3, value_range=(0, 200))
    report = verify_cases([Case("compiled", res.network, ins, steps)], cfg, build_dir=BUILD)
    assert report.ok, report.summary()
    assert sum(c.spikes for c in report.cases) > 0
    return res, ins


@pytest.mark.verilator
def test_compiled_network_runs_on_the_tiny_core_rtl():
    net = long_wide_float(1, 10, 20, 25, floats=False)
    res, ins = _verilator_check(net, TINY, 60)
    # integer source: the core equals the source network on every output
    src, got = simulate(net, ins, 60), simulate(res.network, ins, 60)
    out_src = {p.name: p.neuron for p in net.outputs}
    out_got = {p.name: p.neuron for p in res.network.outputs}
    for name in out_src:
        assert [t for i, t in src.spikes if i == out_src[name]] == [t for i, t in got.spikes if i == out_got[name]]


@pytest.mark.slow
@pytest.mark.verilator
def test_delays_60_fan_out_300_float_weights_on_up5k_rtl():
    net = long_wide_float(2, 200, 300, 60)
    res, _ = _verilator_check(net, PRESETS["up5k"], 120)
    assert res.report["compiled"]["relays"] > 0 and not res.report["quantization"]["exact"]
    integer = long_wide_float(2, 200, 300, 60, floats=False)
    _verilator_check(integer, PRESETS["up5k"], 120, seed=1)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(max_neurons=24, max_synapses=90, max_delay=50))
def test_sweep_many_random_networks_through_every_pass(net):
    """Hundreds of random networks, every pass checked and the images run from memory."""
    res = compile_network(net, TINY, max_cores=6, verify_steps=60)
    assert res.report["verify"]["ok"]
    assert all(r.checked or not r.changed for r in res.records if r.name not in ("quantize", "fan-in"))
