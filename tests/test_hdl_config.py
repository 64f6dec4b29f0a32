"""CoreConfig: presets, validation, serialisation, fingerprint."""

from __future__ import annotations

import pytest

from spikeforge.hdl.config import PRESETS, ConfigError, CoreConfig, preset


def test_presets_meet_their_targets():
    up = preset("up5k")
    assert up.n_neurons >= 1024 and up.n_synapses >= 32768 and up.max_delay == 16
    assert up.weight_bits == 8 and up.potential_bits >= 16
    assert preset("tiny").n_neurons <= 32 and preset("tiny").n_synapses <= 256
    assert set(PRESETS) >= {"tiny", "small", "up5k", "ecp5-85f"}


def test_round_trip_and_fingerprint():
    for c in PRESETS.values():
        assert CoreConfig.from_dict(c.to_dict()) == c
        assert CoreConfig.from_dict(c.to_dict()).fingerprint() == c.fingerprint()
    fps = {c.fingerprint() for c in PRESETS.values()}
    assert len(fps) == len(PRESETS)
    # stable across runs: a fixed value for a fixed config
    assert CoreConfig().fingerprint() == CoreConfig().fingerprint()


def test_validation_names_field_value_and_range():
    with pytest.raises(ConfigError, match=r"'max_delay' = 17 is out of range; allowed: 1\.\.16"):
        CoreConfig(max_delay=17)
    with pytest.raises(ConfigError, match="threshold_bits"):
        CoreConfig(threshold_bits=16, potential_bits=16)
    with pytest.raises(ConfigError, match="unknown field 'foo'"):
        CoreConfig.from_dict({"foo": 1})
    with pytest.raises(ConfigError, match="no core preset 'nope'"):
        preset("nope")


@pytest.mark.parametrize("name", ["tiny", "small", "up5k", "ecp5-85f"])
def test_limits_are_what_the_image_layout_and_drc_accept(name):
    """CoreConfig.limits() is the one home of the ranges: at each bound the image layout and the
    design-rule check accept the value, one past it they both refuse it, naming the limit."""
    from spikeforge.hdl.image import ImageError, lower
    from spikeforge.toolchain.compiler import design_rule_check
    from spikeforge.toolchain.ir import Network, NetworkError

    cfg = preset(name)
    lim = cfg.limits()
    assert lim.neurons == cfg.n_neurons and lim.synapses == cfg.n_synapses
    assert lim.delay == (1, cfg.max_delay) and lim.potential == cfg.potential_range

    def net(neuron=None, synapse=None):
        n = Network()
        n.add_neuron(0, **{"threshold": 1, **(neuron or {})})
        n.add_neuron(1, threshold=1)
        n.add_synapse(0, 1, **(synapse or {"weight": 1}))
        return n

    cases = [("threshold", "neuron", "threshold"), ("bias", "neuron", "bias"),
             ("v_min", "neuron", "v_min"), ("refractory", "neuron", "refractory"),
             ("weight", "synapse", "weight"), ("delay", "synapse", "delay")]
    for field, where, key in cases:
        lo, hi = lim[field]
        for v, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False)):
            kw = {where: {key: v} if where == "neuron" else {"weight": 1, key: v}}
            if field == "weight":
                kw = {"synapse": {"weight": v}}
            n = net(**kw)
            try:
                n.validate()
            except NetworkError:
                continue  # the IR itself refuses it (a negative threshold, a delay of 0)
            assert design_rule_check(n, cfg).ok is ok, (field, v)
            if ok:
                lower(n, cfg)
            else:
                with pytest.raises(ImageError, match=field):
                    lower(n, cfg)
            assert (lim.check(field, v) is None) is ok
    assert "weight_bits" in lim.check("weight", lim.weight[1] + 1)
    with pytest.raises(KeyError, match="no limit 'nope'"):
        lim["nope"]


def test_up5k_limits_by_hand():
    lim = preset("up5k").limits()  # 8-bit weights, 10-bit bias, 16-bit v, 15-bit θ, 19-bit acc
    assert lim.weight == (-128, 127) and lim.bias == (-512, 511)
    assert lim.threshold == (0, 32767) and lim.v_min == (-32768, 0)
    assert lim.fan_in == (0, 2**18 - 1) and lim.input == (-32768, 32767)
    assert lim.refractory == (0, 15) and lim.delay == (1, 16)
