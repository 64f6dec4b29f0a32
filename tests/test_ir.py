"""Network IR: JSON and networkx round-trips, validation messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.toolchain.ir import Network, NetworkError, load_network, save_network
from spikeforge.toolchain.netgen import random_network


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30), syn=st.integers(0, 120), floats=st.booleans())
def test_json_and_networkx_round_trip_lossless(seed, n, syn, floats):
    rng = np.random.default_rng(seed)
    net = random_network(rng, n, syn)
    if floats:  # float networks (from trainers, RISP-F) survive too
        for s in net.synapses:
            s.weight = float(s.weight) / 7.0
        for x in net.neurons:
            x.threshold = x.threshold / 3.0
    net.metadata["encoders"] = [{"kind": "rate", "max_spikes": 8}]
    back = Network.from_json(net.to_json())
    assert back == net
    assert Network.from_networkx(net.to_networkx()) == net


def test_file_round_trip(tmp_path):
    net = random_network(3, 10, 30)
    p = tmp_path / "n.json"
    save_network(net, p)
    assert load_network(p) == net
    assert not (tmp_path / "n.json.tmp").exists()


def test_is_integer():
    net = random_network(1, 5, 10)
    assert net.is_integer()
    net.synapses[0].weight = 0.5
    assert not net.is_integer()


def doc():
    return random_network(2, 4, 6).to_dict()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(version=99), "'version' = 99 is not supported"),
        (lambda d: d.update(format="other"), "'format' = 'other'"),
        (lambda d: d.pop("neurons"), "missing field 'neurons'"),
        (lambda d: d.update(bogus=1), "unknown field 'bogus'"),
        (lambda d: d["neurons"][1].update(threshold=-1), r"neuron 1: field 'threshold' = -1 is out of range; allowed: a number in 0..9007199254740992"),
        (lambda d: d["neurons"][1].update(id=0), "neuron 0: field 'id' = 0 is a duplicate"),
        (lambda d: d["neurons"][0].update(leak="sometimes"), "neuron 0: field 'leak' = 'sometimes' is not allowed"),
        (lambda d: d["neurons"][0].update(leak="shift", leak_shift=0), "leak_shift' = 0"),
        (lambda d: d["neurons"][0].update(v_min=5), "v_min' = 5"),
        (lambda d: d["neurons"][0].update(refractory=1.5), "refractory' = 1.5"),
        (lambda d: d["neurons"][0].pop("id"), "missing field 'id'"),
        (lambda d: d["synapses"][0].update(delay=0), r"synapse #0 .*field 'delay' = 0 is out of range; allowed: an integer in 1..1048576"),
        (lambda d: d["synapses"][0].update(post=77), "field 'post' = 77 names no neuron"),
        (lambda d: d["synapses"][0].update(weight="x"), "weight' = 'x'"),
        (lambda d: d["inputs"].append({"name": "in0", "neuron": 1}), "'in0' is a duplicate"),
        (lambda d: d["outputs"].append({"name": "o", "neuron": 9}), "'neuron' = 9 names no neuron"),
        (lambda d: d.update(neurons={}), "'neurons' is dict; expected a JSON array"),
    ],
)
def test_bad_documents_name_element_field_value(mutate, match):
    d = doc()
    mutate(d)
    with pytest.raises(NetworkError, match=match):
        Network.from_dict(d)


def test_bad_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{ not json")
    with pytest.raises(NetworkError, match=r"bad.json: invalid JSON at line 1"):
        load_network(p)
    p.write_text(json.dumps([1, 2]))
    with pytest.raises(NetworkError, match="top level is list"):
        load_network(p)
    with pytest.raises(NetworkError, match="cannot read"):
        load_network(tmp_path / "missing.json")
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NetworkError, match="not UTF-8"):
        load_network(p)


def test_schema_matches_the_loader():
    """The written schema and the loader agree on fields, defaults and enums."""
    from importlib.resources import files

    from spikeforge.toolchain.ir import FORMAT_NAME, FORMAT_VERSION, Leak, Neuron, Reset

    schema = json.loads(files("spikeforge.toolchain").joinpath("schema/network-v1.json").read_text())
    assert schema["properties"]["format"]["const"] == FORMAT_NAME
    assert schema["properties"]["version"]["const"] == FORMAT_VERSION
    nprops = schema["properties"]["neurons"]["items"]["properties"]
    written = random_network(0, 3, 3).to_dict()
    assert set(written) <= set(schema["properties"])
    assert set(written["neurons"][0]) <= set(nprops)
    assert set(written["synapses"][0]) == set(schema["properties"]["synapses"]["items"]["properties"])
    assert nprops["leak"]["enum"] == [m.value for m in Leak]
    assert nprops["reset"]["enum"] == [m.value for m in Reset]
    default = Neuron(id=0)
    for k in ("threshold", "leak", "leak_shift", "reset", "v_min", "refractory", "bias"):
        assert nprops[k]["default"] == getattr(default, k), k
