"""Encoders/decoders (toolchain/codec.py): hand-computed codes, round trips, metadata."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.toolchain.codec import (
    BinsEncoder,
    CountDecoder,
    FirstSpikeDecoder,
    FlipFlopEncoder,
    RateEncoder,
    TTFSEncoder,
    WTADecoder,
    attach_io,
    decoder_from_dict,
    encoder_from_dict,
    io_of,
    output_raster,
)
from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.reference import simulate


def test_rate_hand_computed() -> None:
    enc = RateEncoder(n_values=2, steps=10, max_spikes=5)
    assert enc.encode([1.0, 0.2]) == [(0, 0, 1), (0, 2, 1), (0, 4, 1), (0, 6, 1), (0, 8, 1), (1, 0, 1)]
    assert enc.encode([-3.0, 0.0]) == []  # clipped to lo: no spikes
    assert RateEncoder(n_values=1, steps=4, value=7).encode([1.0]) == [(0, t, 7) for t in range(4)]


def test_flip_flop_sign_picks_input() -> None:
    enc = FlipFlopEncoder(n_values=2, steps=4, lo=-1.0, hi=1.0)
    assert enc.n_inputs == 4
    ev = enc.encode([0.5, -1.0])
    assert ev == [(0, 0, 1), (0, 2, 1), (3, 0, 1), (3, 1, 1), (3, 2, 1), (3, 3, 1)]
    assert enc.encode([0.0, 0.0]) == []


def test_ttfs_larger_is_earlier() -> None:
    enc = TTFSEncoder(n_values=3, steps=11)
    assert enc.encode([1.0, 0.0, 0.5]) == [(0, 0, 1), (1, 10, 1), (2, 5, 1)]


def test_bins_one_hot() -> None:
    enc = BinsEncoder(n_values=2, steps=6, bins=3, spikes=2)
    assert enc.n_inputs == 6
    assert enc.encode([0.0, 1.0]) == [(0, 0, 1), (0, 3, 1), (5, 0, 1), (5, 3, 1)]


def test_wta_and_first_spike_ties() -> None:
    r = np.zeros((5, 3), dtype=bool)
    r[[1, 3], 1] = True
    r[[0, 4], 2] = True  # same count as output 1 but earlier
    assert WTADecoder(3).decode(r) == 2
    assert FirstSpikeDecoder(3).decode(r) == 2
    r[2, 1] = True  # output 1 now has most spikes
    assert WTADecoder(3).decode(r) == 1
    assert FirstSpikeDecoder(3).decode(r) == 2
    assert WTADecoder(3, default=2).decode(np.zeros((5, 3), dtype=bool)) == 2
    same = np.zeros((2, 3), dtype=bool)
    same[0, [1, 2]] = True
    assert WTADecoder(3).decode(same) == 1 and FirstSpikeDecoder(3).decode(same) == 1


def test_count_decoder_batch_equals_single() -> None:
    rng = np.random.default_rng(0)
    rs = rng.random((7, 12, 4)) < 0.3
    dec = CountDecoder(4, max_count=5, lo=-1.0, hi=1.0)
    assert np.allclose(dec.decode_batch(rs), [dec.decode(r) for r in rs])
    assert WTADecoder(4).decode_batch(rs).tolist() == [WTADecoder(4).decode(r) for r in rs]


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["rate", "flip_flop", "ttfs", "bins"]), n=st.integers(1, 5),
       steps=st.integers(1, 30), data=st.data())
def test_encoders_stay_in_window_and_round_trip(kind: str, n: int, steps: int, data: st.DataObject) -> None:
    klass = {"rate": RateEncoder, "flip_flop": FlipFlopEncoder, "ttfs": TTFSEncoder, "bins": BinsEncoder}[kind]
    enc = klass(n_values=n, steps=steps, lo=-2.0, hi=3.0)
    assert encoder_from_dict(enc.to_dict()) == enc
    x = data.draw(st.lists(st.floats(-10, 10), min_size=n, max_size=n))
    ev = enc.encode(x)
    assert all(0 <= i < enc.n_inputs and 0 <= t < steps for i, t, _ in ev)
    assert len(set(ev)) == len(ev)


def test_bad_parameters_name_the_value() -> None:
    with pytest.raises(NetworkError, match="steps = 0"):
        RateEncoder(n_values=1, steps=0)
    with pytest.raises(NetworkError, match="max_spikes = 9"):
        RateEncoder(n_values=1, steps=4, max_spikes=9)
    with pytest.raises(NetworkError, match="lo < hi"):
        TTFSEncoder(n_values=1, steps=4, lo=1.0, hi=1.0)
    with pytest.raises(NetworkError, match="unknown kind 'morse'"):
        encoder_from_dict({"kind": "morse"})
    with pytest.raises(NetworkError, match="unknown field"):
        decoder_from_dict({"kind": "wta", "n_outputs": 2, "colour": 1})
    with pytest.raises(ValueError, match="got 3 values, expected 2"):
        RateEncoder(n_values=2, steps=4).encode([1, 2, 3])
    with pytest.raises(ValueError, match="non-finite"):
        RateEncoder(n_values=1, steps=4).encode([float("nan")])


def _relay_net() -> Network:
    net = Network()
    for i in range(4):
        net.add_neuron(i, threshold=1)
    net.add_synapse(0, 2, weight=1, delay=1)
    net.add_synapse(1, 3, weight=1, delay=2)
    net.add_input(0, "a")
    net.add_input(1, "b")
    net.add_output(3, "y1")
    net.add_output(2, "y0")
    return net


def test_metadata_round_trip_and_output_raster() -> None:
    net = _relay_net()
    enc, dec = RateEncoder(n_values=2, steps=6, max_spikes=3), WTADecoder(2)
    attach_io(net, enc, dec)
    again = Network.from_json(net.to_json())
    assert io_of(again) == (enc, dec)
    res = simulate(net, enc.encode([1.0, 1 / 3]), steps=6)
    r = output_raster(net, res)
    # y1 (neuron 3) echoes input b two steps later, y0 (neuron 2) echoes a one step later
    assert r[:, 0].nonzero()[0].tolist() == [2] and r[:, 1].nonzero()[0].tolist() == [1, 3, 5]
    assert dec.decode(r) == 1
    assert output_raster(net, res, t0=3, steps=2)[:, 1].tolist() == [True, False]


def test_attach_and_io_of_check_port_counts() -> None:
    net = _relay_net()
    with pytest.raises(NetworkError, match="drives 3 inputs but the network has 2"):
        attach_io(net, RateEncoder(n_values=3, steps=4), WTADecoder(2))
    with pytest.raises(NetworkError, match="no encoder/decoder"):
        io_of(net)
    attach_io(net, RateEncoder(n_values=2, steps=4), WTADecoder(2))
    net.add_output(1)
    with pytest.raises(NetworkError, match="network has 2 / 3"):
        io_of(net)


def test_module_examples() -> None:
    import doctest

    import spikeforge.toolchain.codec as codec

    assert doctest.testmod(codec).failed == 0
