"""Image lowering, serialisation, load-time checks, and the image-level model vs the reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import CoreImage, ImageError, lower, run_image
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import edge_cases, random_inputs, random_network
from spikeforge.toolchain.reference import simulate

TINY = preset("tiny")
SMALL = preset("small")


@pytest.mark.parametrize("case", edge_cases(16, SMALL.max_delay, 16), ids=lambda c: c.name)
def test_edge_cases_match_reference(case):
    img = lower(case.network, SMALL)
    a = run_image(img, case.inputs, case.steps, record_potentials=True)
    b = simulate(case.network, case.inputs, case.steps, record_potentials=True)
    assert a == b
    assert a.events == b.events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 32),
    s=st.integers(0, 256),
    d=st.integers(1, 8),
    all_modes=st.booleans(),
)
def test_random_networks_match_reference(seed, n, s, d, all_modes):
    rng = np.random.default_rng(seed)
    net = random_network(rng, n, s, max_delay=d, all_modes=all_modes)
    ins = random_inputs(rng, net, 30)
    img = lower(net, TINY)
    a = run_image(img, ins, 30, record_potentials=True)
    b = simulate(net, ins, 30, record_potentials=True)
    assert a == b
    assert a.events == b.events


def test_dense_many_events_one_target_and_full_fan_out():
    net = Network()
    for i in range(32):
        net.add_neuron(i, threshold=0 if i < 31 else 500)
        net.add_input(i)
    for i in range(31):
        for d in range(1, 9):
            net.add_synapse(i, 31, (-1) ** i * 7, d)
    ins = [(i, t, 0) for i in range(31) for t in (0, 3)]
    img = lower(net, TINY)
    assert run_image(img, ins, 20) == simulate(net, ins, 20)


def _net(n=2, **kw):
    net = Network()
    for i in range(n):
        net.add_neuron(i, **kw)
    net.add_input(0)
    net.add_output(n - 1)
    return net


def test_lower_refuses_what_does_not_fit():
    with pytest.raises(ImageError, match="network has 40 neurons; core 'tiny' holds 32"):
        lower(_net(40), TINY)
    net = _net()
    net.add_synapse(0, 1, 200, 1)
    with pytest.raises(ImageError, match=r"weight = 200 does not fit core 'tiny'; allowed: -128\.\.127"):
        lower(net, TINY)
    net = _net()
    net.add_synapse(0, 1, 1, 9)
    with pytest.raises(ImageError, match=r"delay = 9 .* allowed: 1\.\.8"):
        lower(net, TINY)
    with pytest.raises(ImageError, match="threshold = 40000"):
        lower(_net(threshold=40000), TINY)
    with pytest.raises(ImageError, match="refractory = 16"):
        lower(_net(refractory=16), TINY)
    cfg = CoreConfig(name="narrow", accumulator_bits=16, n_synapses=1024)
    net = _net(2)
    for _ in range(300):
        net.add_synapse(0, 1, 127, 1)
    with pytest.raises(ImageError, match="fan-in sum of \\|weight\\| = 38100 could overflow"):
        lower(net, cfg)
    net = _net(2)
    net.add_synapse(0, 1, 0.5, 1)
    with pytest.raises(ImageError, match="non-integer"):
        lower(net, TINY)


def test_json_round_trip_and_load_checks():
    net = random_network(3, 20, 80, max_delay=8)
    img = lower(net, TINY)
    text = img.to_json()
    back = CoreImage.from_json(text, TINY)
    assert back == img
    assert back.writes() == img.writes()
    doc = json.loads(text)
    doc["synapses"][0] ^= 1
    with pytest.raises(ImageError, match="corrupted: crc32"):
        CoreImage.from_dict(doc)
    with pytest.raises(ImageError, match="core image is for core 'tiny'.*this core is 'small'"):
        CoreImage.from_json(text, SMALL)
    with pytest.raises(ImageError, match="not a core image"):
        CoreImage.from_dict({"format": "x"})


def test_empty_network():
    img = lower(Network(), TINY)
    assert run_image(img, [], 5) == simulate(Network(), [], 5)
    assert len(img.writes()) == TINY.n_neurons
