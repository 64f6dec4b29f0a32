"""TENNLab RISP interchange: import, export, round trips, RISP rules, malformed files.

The behavioural tests re-enact the worked examples of TENNLab's ``markdown/risp.md`` with
integer (RISP-n) versions of its networks, and compare the reference model with a small
event-driven model of RISP written here from the description in that document.
"""

from __future__ import annotations

import copy
import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.toolchain.ir import Leak, Network, NetworkError, Reset
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.tennlab import (
    export_tennlab,
    import_tennlab,
    is_tennlab_document,
    read_tennlab,
    risp_preset,
    tennlab_inputs,
    tennlab_steps,
    write_tennlab,
)

FIXTURE = Path(__file__).parent / "data" / "risp_main_out.json"
MAIN, ON, OFF, OUT, BIAS = 0, 1, 2, 3, 4


def fixture_doc() -> dict:
    return json.loads(FIXTURE.read_text())


def row(res, nid, steps=None) -> str:
    steps = res.steps if steps is None else steps
    fired = {t for i, t in res.spikes if i == nid}
    return "".join("1" if t in fired else "0" for t in range(steps))


def with_params(doc: dict, **changes) -> dict:
    d = copy.deepcopy(doc)
    d["Associated_Data"]["proc_params"].update(changes)
    return d


def fixed_leak(doc: dict, mode: str) -> dict:
    """The fixture with leak_mode all/none (drop the Leak property and values)."""
    d = with_params(doc, leak_mode=mode)
    d["Properties"]["node_properties"] = [p for p in d["Properties"]["node_properties"] if p["name"] != "Leak"]
    for nd in d["Nodes"]:
        nd["values"] = nd["values"][:1]
    return d


# ----------------------------------------------------------------------------- import
def test_fixture_imports_to_the_expected_ir():
    net = read_tennlab(FIXTURE)
    assert net.is_integer()
    assert net.neuron_ids == [0, 4, 1, 2, 3]  # file order, TENNLab ids kept
    names = {n.id: n.name for n in net.neurons}
    assert names == {0: "Main", 1: "On", 2: "Off", 3: "Out", 4: "Bias"}
    for n in net.neurons:
        assert n.threshold == 2 and isinstance(n.threshold, int)
        assert n.v_min == -2
        assert n.reset is Reset.ZERO and n.refractory == 0 and n.bias == 0
        assert n.leak is (Leak.NONE if n.id == OUT else Leak.FULL)
    syn = {(s.pre, s.post): (s.weight, s.delay) for s in net.synapses}
    assert syn == {(0, 0): (2, 1), (1, 0): (2, 1), (2, 0): (-2, 1), (0, 3): (1, 1),
                   (0, 4): (2, 1), (4, 4): (2, 1)}
    assert [(p.name, p.neuron) for p in net.inputs] == [("in0", 0), ("in1", 1), ("in2", 2)]
    assert [(p.name, p.neuron) for p in net.outputs] == [("out0", 3), ("out1", 4)]
    meta = net.metadata["tennlab"]
    assert meta["proc_params"]["leak_mode"] == "configurable"
    assert meta["associated_data"]["other"]["sim_time"] == 10
    assert meta["node_extra"] == {"0": {"coords": [0.0, 1.0]}}
    assert meta["edge_extra"] == {"1->0": {"control_point": [0.5, 0.5]}}
    # The IR (with its metadata) survives the spikeforge file format too.
    assert Network.from_json(net.to_json()).to_dict() == net.to_dict()


def test_export_of_the_fixture_reproduces_the_file():
    doc = fixture_doc()
    out = export_tennlab(read_tennlab(FIXTURE))
    assert out == doc


def test_is_tennlab_document():
    assert is_tennlab_document(fixture_doc())
    assert not is_tennlab_document({"format": "spikeforge.network"})
    assert not is_tennlab_document([1, 2])


# ----------------------------------------------------------------------------- RISP README traces
def test_configurable_leak_trace():
    """risp.md Test 6: Out does not leak and fires every other step."""
    net = read_tennlab(FIXTURE)
    res = simulate(net, tennlab_inputs(net, [(0, 0, 1.0)]), 10)
    assert row(res, MAIN) == "1111111111"
    assert row(res, OUT) == "0010101010"
    assert row(res, BIAS) == "0111111111"


def test_leak_all_trace():
    """risp.md Test 5: with leak "all", Out never gathers enough charge."""
    net = import_tennlab(fixed_leak(fixture_doc(), "all"))
    assert all(n.leak is Leak.FULL for n in net.neurons)
    res = simulate(net, tennlab_inputs(net, [(0, 0, 1.0)]), 10)
    assert row(res, MAIN) == "1111111111"
    assert row(res, OUT) == "0000000000"


def test_on_off_trace_without_leak():
    """risp.md Test 1 (Out weight made full, no leak): Off cancels, On restarts Main."""
    doc = fixed_leak(fixture_doc(), "none")
    for e in doc["Edges"]:
        if (e["from"], e["to"]) == (0, 3):
            e["values"][0] = 2.0
    net = import_tennlab(doc)
    spikes = [(0, 0, 1.0), (2, 10, 1.0), (1, 15, 1.0)]
    res = simulate(net, tennlab_inputs(net, spikes), 20)
    assert row(res, MAIN)[10:] == "1000001111"
    assert row(res, OFF)[10:] == "1000000000"
    assert row(res, OUT)[10:] == "1100000111"
    assert row(res, BIAS)[10:] == "1111111111"
    # On and Off together cancel each other: Main keeps firing.
    res = simulate(net, tennlab_inputs(net, [(0, 0, 1.0), (1, 5, 1.0), (2, 5, 1.0)]), 10)
    assert row(res, MAIN) == "1111111111"


def min_potential_net() -> Network:
    """risp.md Test 11 in RISP-10 integers: 0..3 → 4 with weights 10, -6, -5, -2."""
    nodes = [{"id": i, "values": [10.0]} for i in range(5)]
    edges = [{"from": i, "to": 4, "values": [w, 1.0]} for i, w in enumerate([10.0, -6.0, -5.0, -2.0])]
    doc = {
        "Properties": {
            "node_properties": [{"name": "Threshold", "type": 73, "index": 0, "size": 1,
                                 "min_value": 0.0, "max_value": 10.0}],
            "edge_properties": [
                {"name": "Weight", "type": 73, "index": 0, "size": 1, "min_value": -10.0, "max_value": 10.0},
                {"name": "Delay", "type": 73, "index": 1, "size": 1, "min_value": 1.0, "max_value": 15.0}],
            "network_properties": []},
        "Nodes": nodes, "Edges": edges, "Inputs": [0, 1, 2, 3], "Outputs": [4],
        "Network_Values": [],
        "Associated_Data": {"proc_params": risp_preset(10)},
    }
    return import_tennlab(doc)


def final_charge(net, inputs, steps, nid=4):
    res = simulate(net, inputs, steps, record_potentials=True)
    v = int(res.potentials[-1, net.index_of()[nid]])
    return max(v, net.neuron(nid).v_min)  # RISP clamps every charge at the end of run()


def test_min_potential_clamps_before_integration():
    net = min_potential_net()
    assert all(n.v_min == -10 for n in net.neurons)
    ins = lambda spikes: tennlab_inputs(net, spikes)  # noqa: E731
    assert final_charge(net, ins([(1, 0, 1), (1, 1, 1)]), 5) == -10  # not -12
    assert final_charge(net, ins([(0, 0, 1), (1, 0, 1), (2, 0, 1)]), 3) == -1  # 10 - 6 - 5
    four = [(3, t, 1) for t in range(4)] + [(0, 4, 1), (1, 4, 1), (2, 4, 1)]
    assert final_charge(net, ins(four), 6) == -9  # -8 + 10 - 6 - 5, in any order


def test_threshold_inclusive_false_is_threshold_plus_one():
    doc = with_params(fixed_leak(fixture_doc(), "none"), threshold_inclusive=False)
    net = import_tennlab(doc)
    assert all(n.threshold == 3 for n in net.neurons)
    res = simulate(net, tennlab_inputs(net, [(0, 0, 1.0)]), 3)  # 2 is not > 2
    assert row(res, MAIN) == "000"
    res = simulate(net, tennlab_inputs(net, [(0, 0, 1.0), (0, 1, 0.5)]), 3)  # 2 + 1 > 2
    assert row(res, MAIN) == "010"
    assert export_tennlab(net) == doc


def test_spike_value_factor_floor_and_default():
    """risp.md Test 10: RISP-10, factor defaults to max_weight, values are floored."""
    net = min_potential_net()
    assert tennlab_inputs(net, [(0, 0, 1.0), (0, 1, 0.1), (0, 2, 0.09), (1, 3, 0.55)]) == [
        (0, 0, 10), (0, 1, 1), (0, 2, 0), (1, 3, 5)]
    doc = export_tennlab(net)
    doc["Associated_Data"]["proc_params"]["spike_value_factor"] = 4
    assert tennlab_inputs(import_tennlab(doc), [(0, 0, 0.6)]) == [(0, 0, 2)]
    assert tennlab_inputs(net, [(0, 0, 7)], normalized=False) == [(0, 0, 7)]
    with pytest.raises(ValueError, match="value = 1.5 is out of range"):
        tennlab_inputs(net, [(0, 0, 1.5)])
    with pytest.raises(ValueError, match="input_id = 9"):
        tennlab_inputs(net, [(9, 0, 1)])


def test_weights_array_and_inputs_from_weights():
    doc = fixed_leak(fixture_doc(), "none")
    pp = doc["Associated_Data"]["proc_params"]
    del pp["min_weight"], pp["max_weight"]
    pp.update(weights=[-2, 1, 2], inputs_from_weights=True)
    doc["Properties"]["edge_properties"][1].update(min_value=0.0, max_value=2.0)
    index = {-2.0: 0.0, 1.0: 1.0, 2.0: 2.0}
    for e in doc["Edges"]:
        e["values"][0] = index[e["values"][0]]
    net = import_tennlab(doc)
    assert {(s.pre, s.post): s.weight for s in net.synapses}[(2, 0)] == -2
    assert {(s.pre, s.post): s.weight for s in net.synapses}[(0, 3)] == 1
    # normalised x → weights[min(int(x * 3), 2)]; raw values are indices
    assert tennlab_inputs(net, [(0, 0, 0.0), (0, 1, 0.5), (0, 2, 1.0)]) == [(0, 0, -2), (0, 1, 1), (0, 2, 2)]
    assert tennlab_inputs(net, [(0, 0, 1)], normalized=False) == [(0, 0, 1)]
    assert export_tennlab(net) == doc


def test_run_time_inclusive_steps():
    net = read_tennlab(FIXTURE)
    assert tennlab_steps(net, 5) == 5
    assert tennlab_steps(import_tennlab(with_params(fixture_doc(), run_time_inclusive=True)), 5) == 6


def test_float_network_imports_as_float():
    doc = fixed_leak(fixture_doc(), "none")
    doc["Associated_Data"]["proc_params"] = {
        "min_weight": -1, "max_weight": 1, "leak_mode": "none", "min_threshold": -1,
        "max_threshold": 1, "min_potential": -1, "max_delay": 15, "discrete": False}
    for p in doc["Properties"]["node_properties"] + doc["Properties"]["edge_properties"]:
        if p["name"] in ("Threshold", "Weight"):
            p.update(type=68, min_value=-1.0, max_value=1.0)
    for nd in doc["Nodes"]:
        nd["values"] = [1.0]
    for e in doc["Edges"]:
        e["values"][0] = 0.5 if (e["from"], e["to"]) == (0, 3) else math.copysign(1.0, e["values"][0])
    net = import_tennlab(doc)
    assert not net.is_integer()
    assert all(isinstance(n.threshold, float) and n.v_min == -1.0 for n in net.neurons)
    assert {(s.pre, s.post): s.weight for s in net.synapses}[(0, 3)] == 0.5
    assert tennlab_inputs(net, [(0, 0, 0.25)]) == [(0, 0, 0.25)]
    assert export_tennlab(net) == doc
    excl = import_tennlab(with_params(doc, threshold_inclusive=False))
    assert excl.neurons[0].threshold == pytest.approx(1.0 + 1e-7)
    with pytest.raises(NetworkError, match="non-integer"):
        simulate(net, [], 5)


# ----------------------------------------------------------------------------- RISP rules, randomised
def risp_model(net: Network, inputs, steps):
    """RISP's step as risp.md describes it, event driven (independent of the reference model)."""
    nrn = {n.id: n for n in net.neurons}
    out = defaultdict(list)
    for s in net.synapses:
        out[s.pre].append(s)
    events = defaultdict(list)
    for i, t, v in inputs:
        events[t].append((net.inputs[i].neuron, v))
    charge = dict.fromkeys(nrn, 0)
    spikes = []
    for t in range(steps):
        es = events.pop(t, [])
        for nid, _ in es:  # leak, then min_potential, only for neurons with events
            if nrn[nid].leak is Leak.FULL:
                charge[nid] = 0
        for nid, _ in es:
            charge[nid] = max(charge[nid], nrn[nid].v_min)
        for nid, v in es:
            charge[nid] += v
        for nid in sorted({nid for nid, _ in es}, key=list(nrn).index):
            if charge[nid] >= nrn[nid].threshold:
                spikes.append((nid, t))
                charge[nid] = 0
                for s in out[nid]:
                    events[t + s.delay].append((s.post, s.weight))
    spikes.sort(key=lambda x: (x[1], list(nrn).index(x[0])))
    return spikes


@st.composite
def risp_docs(draw, discrete=True):
    """Random RISP network documents (RISP-n presets, every leak mode)."""
    n = draw(st.integers(1, 10))
    size = draw(st.integers(1, 15))
    leak_mode = draw(st.sampled_from(["none", "all", "configurable"]))
    params = risp_preset(size, positive=draw(st.booleans()), leak_mode=leak_mode)
    if not discrete:
        params.update(discrete=False, min_weight=float(params["min_weight"]),
                      max_weight=float(params["max_weight"]))
    params["threshold_inclusive"] = draw(st.booleans())
    ids = draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n, unique=True))
    num = (st.integers if discrete else lambda a, b: st.floats(a, b, allow_nan=False))
    thr = num(max(0, params["min_threshold"]), params["max_threshold"])
    nodes = []
    for i in ids:
        vals = [float(draw(thr))]
        if leak_mode == "configurable":
            vals.append(float(draw(st.booleans())))
        nodes.append({"id": i, "values": vals})
    pairs = draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), unique=True, max_size=25))
    wts = num(params["min_weight"], params["max_weight"])
    edges = [{"from": a, "to": b, "values": [float(draw(wts)), float(draw(st.integers(1, params["max_delay"])))]}
             for a, b in pairs]
    num_type = 73 if discrete else 68
    props = {
        "node_properties": [{"name": "Threshold", "type": num_type, "index": 0, "size": 1,
                             "min_value": float(params["min_threshold"]), "max_value": float(params["max_threshold"])}],
        "edge_properties": [
            {"name": "Weight", "type": num_type, "index": 0, "size": 1,
             "min_value": float(params["min_weight"]), "max_value": float(params["max_weight"])},
            {"name": "Delay", "type": 73, "index": 1, "size": 1, "min_value": 1.0,
             "max_value": float(params["max_delay"])}],
        "network_properties": []}
    if leak_mode == "configurable":
        props["node_properties"].append({"name": "Leak", "type": 66, "index": 1, "size": 1,
                                         "min_value": 0.0, "max_value": 1.0})
    return {
        "Properties": props, "Nodes": nodes, "Edges": edges,
        "Inputs": draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4)),
        "Outputs": draw(st.lists(st.sampled_from(ids), max_size=4)),
        "Network_Values": [],
        "Associated_Data": {"other": {"proc_name": "risp"}, "proc_params": params},
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=risp_docs(), data=st.data())
def test_risp_rules_hold_through_an_import(doc, data):
    net = import_tennlab(doc)
    spikes = data.draw(st.lists(st.tuples(st.integers(0, len(net.inputs) - 1), st.integers(0, 20),
                                          st.floats(0, 1)), max_size=30))
    inputs = tennlab_inputs(net, spikes)
    ref = simulate(net, inputs, 30, potential_bits=24)
    assert ref.spikes == risp_model(net, inputs, 30)


@settings(max_examples=150, deadline=None)
@given(doc=risp_docs())
def test_file_import_export_round_trip(doc):
    net = import_tennlab(doc)
    out = export_tennlab(net)
    assert out == doc
    assert import_tennlab(out).to_dict() == net.to_dict()


@settings(max_examples=60, deadline=None)
@given(doc=risp_docs(discrete=False))
def test_float_round_trip(doc):
    net = import_tennlab(doc)
    assert not net.is_integer() or not net.neurons
    again = import_tennlab(export_tennlab(net))
    if doc["Associated_Data"]["proc_params"]["threshold_inclusive"]:
        assert export_tennlab(again) == export_tennlab(net)
    else:  # θ ± 1e-7 in floating point: equal to the last bits
        for a, b in zip(again.neurons, net.neurons, strict=True):
            assert a.threshold == pytest.approx(b.threshold, abs=1e-12)


@st.composite
def representable_networks(draw):
    """Random IR networks RISP can express (no TENNLab metadata: parameters are derived)."""
    n = draw(st.integers(1, 10))
    net = Network()
    vmin = draw(st.integers(-20, 0))
    leaks = draw(st.sampled_from(["none", "full", "mixed"]))
    for i in draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True)):
        leak = leaks if leaks != "mixed" else draw(st.sampled_from(["none", "full"]))
        net.add_neuron(i, threshold=draw(st.integers(0, 30)), leak=leak, v_min=vmin,
                       name=draw(st.none() | st.text(max_size=5)))
    ids = net.neuron_ids
    for a, b in draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), unique=True, max_size=25)):
        net.add_synapse(a, b, draw(st.integers(-30, 30)), draw(st.integers(1, 20)))
    for i in draw(st.lists(st.sampled_from(ids), max_size=4)):
        net.add_input(i)
    for i in draw(st.lists(st.sampled_from(ids), max_size=4)):
        net.add_output(i)
    return net


@settings(max_examples=150, deadline=None)
@given(net=representable_networks())
def test_export_import_export_is_lossless(net):
    doc = export_tennlab(net)
    back = import_tennlab(doc)
    assert export_tennlab(back) == doc
    strip = lambda d: {k: v for k, v in d.items() if k != "metadata"}  # noqa: E731
    assert strip(back.to_dict()) == strip(net.to_dict())
    assert doc["Associated_Data"]["proc_params"]["discrete"] is True


def test_write_and_read(tmp_path):
    net = read_tennlab(FIXTURE)
    write_tennlab(net, tmp_path / "n.json")
    assert json.loads((tmp_path / "n.json").read_text()) == fixture_doc()


# ----------------------------------------------------------------------------- export refusals
def small_net(**neuron) -> Network:
    net = Network()
    net.add_neuron(0, threshold=3, v_min=-4)
    net.add_neuron(7, **{"threshold": 3, "v_min": -4, **neuron})
    net.add_synapse(0, 7, 2, 1)
    net.add_input(0)
    return net


@pytest.mark.parametrize("neuron, words", [
    ({"reset": "subtract"}, ["neuron 7", "'reset'", "'subtract'"]),
    ({"leak": "shift", "leak_shift": 2}, ["neuron 7", "'leak'", "'shift'"]),
    ({"refractory": 2}, ["neuron 7", "'refractory'", "= 2"]),
    ({"bias": 1}, ["neuron 7", "'bias'", "= 1"]),
    ({"v_min": -3}, ["neuron 7", "'v_min'", "-3"]),
])
def test_export_refuses_what_risp_cannot_express(neuron, words):
    with pytest.raises(NetworkError) as e:
        export_tennlab(small_net(**neuron))
    for w in words:
        assert w in str(e.value)


def test_export_refuses_parallel_synapses_and_out_of_range():
    net = small_net()
    net.add_synapse(0, 7, 1, 2)
    with pytest.raises(NetworkError, match=r"synapse #1 \(0->7\).*one per pair"):
        export_tennlab(net)
    net = read_tennlab(FIXTURE)
    net.synapses[0].weight = 5
    with pytest.raises(NetworkError, match=r"synapse #0 \(0->0\): field 'weight' = 5 is out of range; allowed: -2..2"):
        export_tennlab(net)
    net = read_tennlab(FIXTURE)
    net.neurons[0].leak = Leak.FULL
    import_ok = import_tennlab(fixed_leak(fixture_doc(), "none"))
    import_ok.neurons[2].leak = Leak.FULL
    with pytest.raises(NetworkError, match=r"neuron 1: field 'leak' = 'full' but leak_mode is 'none'"):
        export_tennlab(import_ok)


# ----------------------------------------------------------------------------- malformed files
def _drop(key):
    return lambda d: d.pop(key)


def _set(path, value):
    def f(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return f


MALFORMED = [
    ("no Nodes", _drop("Nodes"), "missing field 'Nodes'"),
    ("no Properties", _drop("Properties"), "missing field 'Properties'"),
    ("unknown top key", _set(["Extra"], 1), "unknown field 'Extra'"),
    ("Nodes not a list", _set(["Nodes"], {}), "field 'Nodes' is dict"),
    ("node without values", lambda d: d["Nodes"][1].pop("values"), "node #1: missing field 'values'"),
    ("bad id", _set(["Nodes", 0, "id"], -1), "node #0: field 'id' = -1 is out of range"),
    ("duplicate id", _set(["Nodes", 1, "id"], 0), "node 0: field 'id' = 0 is a duplicate"),
    ("short values", _set(["Nodes", 2, "values"], [1.0]), "node 1: field 'values' has 1 entries"),
    ("text value", _set(["Nodes", 2, "values"], ["x", 1.0]), "holds 'x'"),
    ("threshold range", _set(["Nodes", 2, "values"], [9.0, 1.0]), "node 1: field 'Threshold' = 9.0 is out of range"),
    ("fractional threshold", _set(["Nodes", 2, "values"], [1.5, 1.0]), "node 1: Threshold = 1.5 is not an integer"),
    ("dangling edge", _set(["Edges", 3, "to"], 99), "edge #3 (0->99): field 'to' = 99 names no node"),
    ("duplicate edge", _set(["Edges", 1, "from"], 0), "edge #1 (0->0): a second edge"),
    ("weight range", _set(["Edges", 0, "values"], [3.0, 1.0]), "edge #0 (0->0): field 'Weight' = 3.0 is out of range"),
    ("delay zero", _set(["Edges", 0, "values"], [1.0, 0.0]), "field 'Delay' = 0.0 is out of range; allowed: 1..15"),
    ("dangling input", _set(["Inputs"], [0, 42]), "Inputs[1]: node id 42 names no node"),
    ("unknown property", lambda d: d["Properties"]["node_properties"].append(
        {"name": "Bias", "type": 68, "index": 2, "size": 1, "min_value": 0, "max_value": 1}),
     "property 'Bias' is not a RISP property"),
    ("no proc_params", lambda d: d["Associated_Data"].pop("proc_params"), "no Associated_Data.proc_params"),
    ("other processor", _set(["Associated_Data", "other", "proc_name"], "caspian"), "'caspian'"),
    ("missing min_potential", lambda d: d["Associated_Data"]["proc_params"].pop("min_potential"),
     "missing RISP parameter 'min_potential'"),
    ("positive min_potential", _set(["Associated_Data", "proc_params", "min_potential"], 1), "'min_potential' = 1"),
    ("bad leak mode", _set(["Associated_Data", "proc_params", "leak_mode"], "some"), "'leak_mode' = 'some'"),
    ("noisy", _set(["Associated_Data", "proc_params", "noisy_stddev"], 0.1), "noisy"),
    ("unknown param", _set(["Associated_Data", "proc_params", "speed"], 3), "unknown RISP parameter 'speed'"),
    ("leak without configurable", _set(["Associated_Data", "proc_params", "leak_mode"], "all"),
     "'Leak' property needs leak_mode 'configurable'"),
]


@pytest.mark.parametrize("name, mutate, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_documents(name, mutate, message):
    doc = fixture_doc()
    mutate(doc)
    with pytest.raises(NetworkError) as e:
        import_tennlab(doc)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_negative_threshold_is_refused():
    doc = fixed_leak(fixture_doc(), "none")
    doc["Associated_Data"]["proc_params"]["min_threshold"] = -2
    doc["Nodes"][0]["values"] = [-1.0]
    with pytest.raises(NetworkError, match="node 0: Threshold = -1.0 is negative"):
        import_tennlab(doc)


def test_noise_can_be_dropped():
    doc = with_params(fixed_leak(fixture_doc(), "none"), discrete=False, noisy_stddev=0.1)
    assert not import_tennlab(doc, allow_noise=True).is_integer()


def test_read_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(NetworkError, match=r"bad\.json: invalid JSON at line 1"):
        read_tennlab(bad)
    with pytest.raises(NetworkError, match="cannot read"):
        read_tennlab(tmp_path / "missing.json")
    with pytest.raises(NetworkError, match="top level is list"):
        import_tennlab([])


# ----------------------------------------------------------------------------- RISP modes (issue 14)
def _cli_simulate(tmp_path, doc: dict, raw_inputs, steps: int, capsys) -> dict:
    from spikeforge.toolchain.cli import main

    net_path, in_path = tmp_path / "risp.json", tmp_path / "in.json"
    net_path.write_text(json.dumps(doc))
    in_path.write_text(json.dumps([list(x) for x in raw_inputs]))
    capsys.readouterr()
    assert main(["simulate", str(net_path), "--inputs", str(in_path), "--steps", str(steps), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _row(spikes, nid: int, steps: int) -> str:
    fired = {t for i, t in spikes if i == nid}
    return "".join("1" if t in fired else "0" for t in range(steps))


def test_fire_like_ravens_spikes_are_reported_at_risps_time(tmp_path, capsys):
    """risp.md Test 6 with fire_like_ravens: RISP prints each spike one step after it is decided
    (delivery unchanged), so Out's 0010101010 reads 0001010101 and Main's tenth spike falls in
    the next run: a 10-step run counts 9 Main spikes, not 10."""
    doc = with_params(fixture_doc(), fire_like_ravens=True)
    net = import_tennlab(doc)
    raw = tennlab_inputs(net, [(0, 0, 1.0)])
    out = _cli_simulate(tmp_path, doc, raw, 10, capsys)
    assert _row(out["spikes"], MAIN, 10) == "0111111111"
    assert _row(out["spikes"], OUT, 10) == "0001010101"
    assert out["fire_counts"][str(MAIN)] == 9
    plain = _cli_simulate(tmp_path, fixture_doc(), raw, 10, capsys)
    assert _row(plain["spikes"], OUT, 10) == "0010101010"  # without the flag: decision time


def test_run_time_inclusive_runs_one_more_step_in_the_cli(tmp_path, capsys):
    """run_time_inclusive: RISP's run(10) performs 11 steps (Main fires at each of them)."""
    doc = with_params(fixture_doc(), run_time_inclusive=True)
    raw = tennlab_inputs(import_tennlab(doc), [(0, 0, 1.0)])
    out = _cli_simulate(tmp_path, doc, raw, 10, capsys)
    assert out["fire_counts"][str(MAIN)] == 11


def _float_pair(threshold: float, weight: float, inclusive: bool) -> dict:
    """A RISP-F network In → Out (weight, delay 1), both with ``threshold``."""
    doc = fixed_leak(fixture_doc(), "none")
    doc["Associated_Data"]["proc_params"] = {
        "min_weight": -1, "max_weight": 1, "leak_mode": "none", "min_threshold": 0,
        "max_threshold": 1, "min_potential": -1, "max_delay": 15, "discrete": False,
        "threshold_inclusive": inclusive}
    for p in doc["Properties"]["node_properties"] + doc["Properties"]["edge_properties"]:
        if p["name"] in ("Threshold", "Weight"):
            p.update(type=68, min_value=-1.0 if p["name"] == "Weight" else 0.0, max_value=1.0)
    doc["Nodes"] = [{"id": 0, "values": [0.0]}, {"id": 1, "values": [threshold]}]
    doc["Edges"] = [{"from": 0, "to": 1, "values": [weight, 1.0]}]
    doc["Inputs"], doc["Outputs"] = [0], [1]
    return doc


@pytest.mark.parametrize("inclusive, fires", [(True, True), (False, False)])
def test_strict_threshold_survives_quantization(inclusive, fires):
    """θ = 0.9 and a spike of weight 0.9: RISP fires on ``>=`` (inclusive) but not on ``>``. After
    quantization both 0.9s are the same integer; the strict threshold must stay one above it."""
    from spikeforge.hdl.config import preset
    from spikeforge.toolchain.compiler.quantize import quantize_network, scale_inputs

    net = import_tennlab(_float_pair(0.9, 0.9, inclusive))
    q, rep = quantize_network(net, preset("up5k"), granularity="layer")
    assert q.is_integer()
    res = simulate(q, scale_inputs([[(0, 0, 1.0)]], rep.input_scales)[0], 5)
    assert row(res, 0) == "10000"
    assert row(res, 1) == ("01000" if fires else "00000")


def test_load_any_reads_both_formats_and_names_the_file(tmp_path):
    """One loader for every command (and the robot's spiking:PATH): format by its keys, or forced."""
    from spikeforge.toolchain.ir import Network, NetworkError, save_network
    from spikeforge.toolchain.tennlab import load_any, write_tennlab

    net = Network()
    net.add_neuron(0, threshold=1)
    net.add_neuron(1, threshold=2)
    net.add_synapse(0, 1, weight=3)
    net.add_input(0)
    net.add_output(1)
    save_network(net, tmp_path / "sf.json")
    write_tennlab(net, tmp_path / "risp.json")
    a, b = load_any(tmp_path / "sf.json"), load_any(tmp_path / "risp.json")
    assert "tennlab" not in a.metadata and "tennlab" in b.metadata  # read as TENNLab by its keys
    assert [s.weight for s in b.synapses] == [3]
    with pytest.raises(NetworkError, match=r"risp\.json: "):
        load_any(tmp_path / "risp.json", "spikeforge")
    with pytest.raises(NetworkError, match="network format 'nir' is unknown"):
        load_any(tmp_path / "sf.json", "nir")
