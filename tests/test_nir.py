"""NIR interchange: lossless round trips, graphs built with the nir package, refusals."""

from __future__ import annotations

import logging
import math

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.hdl.config import preset
from spikeforge.hdl.image import lower
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.ir import Leak, Network, Reset, load_network, save_network
from spikeforge.toolchain.netgen import random_inputs, random_network
from spikeforge.toolchain.nirio import (
    NIRImportError,
    affine_chain,
    from_nir,
    read_nir,
    to_nir,
    write_nir,
)
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.train.convert import MLP, convert


def _representable(net: Network) -> Network:
    """Drop parallel synapses of equal delay (NIR holds one weight per pre, post and delay)."""
    seen, keep = set(), []
    for s in net.synapses:
        if (s.pre, s.post, s.delay) not in seen:
            seen.add((s.pre, s.post, s.delay))
            keep.append(s)
    net.synapses = keep
    return net


def _canonical(net: Network) -> dict:
    d = net.to_dict()
    d["synapses"] = sorted((s["pre"], s["post"], s["delay"], s["weight"]) for s in d["synapses"])
    return d


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 20), m=st.integers(0, 60),
       dt=st.sampled_from([1.0, 1e-3, 0.25]))
def test_ir_nir_ir_round_trip_is_lossless(tmp_path, seed, n, m, dt):
    net = _representable(random_network(seed, n, m, max_delay=16))
    net.metadata["note"] = {"seed": seed}
    path = tmp_path / "net.nir"
    write_nir(net, path, dt=dt)
    back = read_nir(path)
    assert _canonical(back) == _canonical(net)
    rng = np.random.default_rng(seed)
    inputs = random_inputs(rng, net, 30) if net.inputs else []
    assert simulate(back, inputs, 30) == simulate(net, inputs, 30)


def test_export_uses_nir_nodes_for_each_leak_and_delay():
    net = Network()
    net.add_neuron(0, threshold=3, leak="none")
    net.add_neuron(1, threshold=5, leak="shift", leak_shift=2, bias=2)
    net.add_neuron(2, threshold=1, leak="full")
    net.add_synapse(0, 1, 7, 1)
    net.add_synapse(1, 2, -4, 3)
    net.add_input(0)
    net.add_output(2)
    g = to_nir(net, dt=1e-3)
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert kinds["if"] == "IF" and kinds["lif"] == "LIF" and kinds["threshold"] == "Threshold"
    assert kinds["delay_lif_threshold_d3"] == "Delay"
    np.testing.assert_allclose(g.nodes["delay_lif_threshold_d3"].delay, [2e-3])
    tau = g.nodes["lif"].tau[0]
    assert math.exp(-1e-3 / tau) == pytest.approx(0.75)  # v - v >> 2
    np.testing.assert_allclose(g.nodes["in_lif"].bias, [2 / 1e-3])
    assert g.nodes["w_if_lif_d1"].weight.tolist() == [[7.0]]


def _chain_graph() -> nir.NIRGraph:
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2])),
        "fc": nir.Affine(weight=np.array([[2.0, 1.0]]), bias=np.array([0.0])),
        "a": nir.IF(r=np.ones(1), v_threshold=np.array([3.0])),
        "lin": nir.Linear(weight=np.array([[1.0]])),
        "d": nir.Delay(delay=np.array([2e-3])),
        "b": nir.IF(r=np.ones(1), v_threshold=np.array([1.0])),
        "output": nir.Output(output_type=np.array([1])),
    }, edges=[("input", "fc"), ("fc", "a"), ("a", "lin"), ("lin", "d"), ("d", "b"), ("b", "output")])


def test_nir_graph_built_with_the_package_imports_and_simulates(tmp_path):
    path = tmp_path / "chain.nir"
    nir.write(path, _chain_graph())
    net = read_nir(path, dt=1e-3)
    assert net.is_integer()
    assert [p.name for p in net.inputs] == ["input[0]", "input[1]"]
    # relays (the Input feeds an Affine, not a 0/1 selection), then a (θ 3), then b (θ 1) over
    # a synapse of 1 + 2 steps. Input 0 at t = 0, 1, 2 and input 1 at t = 0: relays fire then;
    # a gets 2 + 1 = 3 at t = 1 (fires), 2 at t = 2, 2 more at t = 3 (fires); b fires 3 steps
    # after each spike of a: t = 4 and 6.
    res = simulate(net, [(0, 0, 1), (0, 1, 1), (0, 2, 1), (1, 0, 1)], 10)
    names = {n.id: n.name for n in net.neurons}
    spikes = [(names[i], t) for i, t in res.spikes]
    assert [t for name, t in spikes if name == "a[0]"] == [1, 3]
    assert [t for name, t in spikes if name == "b[0]"] == [4, 6]
    assert net.outputs[0].neuron == next(i for i, nm in names.items() if nm == "b[0]")


def test_every_supported_neuron_node_maps_to_the_contract(caplog):
    n = 2
    tau = np.full(n, 1.0 / math.log(2.0))  # decay 1/2 per step at dt = 1: shift k = 1
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([n])),
        "lif": nir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n), v_threshold=np.array([4.0, 6.0])),
        "scale": nir.Scale(scale=np.array([2.0, 3.0])),
        "cuba": nir.CubaLIF(tau_syn=np.full(n, 0.5), tau_mem=tau, r=tau.copy(), v_leak=np.zeros(n),
                            v_threshold=np.full(n, 2.0)),
        "flat": nir.Flatten(input_type={"input": np.array([n])}, start_dim=0),
        "li": nir.LI(tau=tau, r=tau.copy(), v_leak=np.zeros(n)),
        "integ": nir.I(r=np.ones(n)),
        "thr": nir.Threshold(threshold=np.full(n, 1.0)),
        "output": nir.Output(output_type=np.array([n])),
    }, edges=[("input", "lif"), ("lif", "scale"), ("scale", "cuba"), ("cuba", "flat"), ("flat", "li"),
              ("li", "integ"), ("integ", "thr"), ("thr", "output")], type_check=False)
    with caplog.at_level(logging.WARNING, logger="spikeforge"):
        net = from_nir(g, dt=1.0)
    warned = caplog.text
    assert "CubaLIF" in warned and "LI" in warned and "integrator" in warned
    by = {nn.name: nn for nn in net.neurons}
    assert by["lif[1]"].leak is Leak.SHIFT and by["lif[1]"].leak_shift == 1 and by["lif[1]"].threshold == 6
    assert by["li[0]"].reset is Reset.SUBTRACT and by["li[0]"].threshold == 1
    assert by["integ[0]"].leak is Leak.NONE and by["integ[0]"].reset is Reset.SUBTRACT
    assert by["thr[0]"].leak is Leak.FULL and by["thr[0]"].threshold == 1
    assert [p.neuron for p in net.inputs] == [by["lif[0]"].id, by["lif[1]"].id]  # bound directly
    w = {(s.pre, s.post): (s.weight, s.delay) for s in net.synapses}
    assert w[(by["lif[1]"].id, by["cuba[1]"].id)] == (3, 1)  # Scale 3, CubaLIF gain r·w_in/τ = 1
    assert w[(by["cuba[0]"].id, by["li[0]"].id)] == (1, 1)  # Flatten is the identity
    res = simulate(net, [(0, t, 3) for t in range(20)] + [(1, t, 4) for t in range(20)], 40)
    assert res.fire_counts[by["lif[0]"].id] > 0 and res.fire_counts[by["thr[0]"].id] > 0
    assert [p.neuron for p in net.outputs] == [by["thr[0]"].id, by["thr[1]"].id]


def test_dt_sets_the_shift_leak_and_warns_when_it_is_inexact(caplog):
    def lif_graph(tau: float) -> nir.NIRGraph:
        return nir.NIRGraph.from_list(nir.LIF(tau=np.array([tau]), r=np.array([tau]), v_leak=np.zeros(1),
                                              v_threshold=np.array([1.0])))

    k_of = {}
    for dt in (1e-3, 5e-3):
        k_of[dt] = from_nir(lif_graph(0.02), dt=dt).neurons[0].leak_shift
    assert k_of[1e-3] == 4  # exp(-1/20) = 0.951 ~ 1 - 2**-4
    assert k_of[5e-3] == 2  # exp(-1/4) = 0.779 ~ 1 - 2**-2
    assert "nearest shift leak" in caplog.text
    caplog.clear()
    exact = -1e-3 / math.log1p(-(2.0 ** -3))
    assert from_nir(lif_graph(exact), dt=1e-3).neurons[0].leak_shift == 3
    assert "nearest shift leak" not in caplog.text


def test_reset_mode_is_explicit():
    g = _chain_graph()
    assert all(n.reset is Reset.ZERO for n in from_nir(g, dt=1e-3).neurons)
    sub = from_nir(g, dt=1e-3, reset="subtract")
    assert {n.name: n.reset for n in sub.neurons}["a[0]"] is Reset.SUBTRACT
    with pytest.raises(NIRImportError, match="reset = 'soft'"):
        from_nir(g, reset="soft")


def test_unsupported_nodes_are_refused_by_name():
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 4, 4])),
        "conv1": nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 3, 3)), stride=1, padding=0,
                            dilation=1, groups=1, bias=np.zeros(1)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "output": nir.Output(output_type=np.array([1, 1, 1])),
    }, edges=[("input", "conv1"), ("conv1", "pool"), ("pool", "output")], type_check=False)
    with pytest.raises(NIRImportError, match=r"'conv1' \(Conv2d\), 'pool' \(SumPool2d\)"):
        from_nir(g)


@pytest.mark.parametrize("field,node", [
    ("v_reset", nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.array([0.5]))),
    ("v_leak", nir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.array([-0.2]), v_threshold=np.ones(1))),
])
def test_parameters_outside_the_contract_are_refused(field, node):
    with pytest.raises(NIRImportError, match=f"{field} = "):
        from_nir(nir.NIRGraph.from_list(node), dt=1.0)


def test_output_must_be_neuron_spikes():
    g = nir.NIRGraph.from_list(nir.IF(r=np.ones(2), v_threshold=np.ones(2)),
                               nir.Affine(weight=np.array([[1.0, 2.0]]), bias=np.zeros(1)))
    with pytest.raises(NIRImportError, match="put a neuron node before the Output"):
        from_nir(g, dt=1.0)


def test_read_nir_names_the_file_on_garbage(tmp_path):
    p = tmp_path / "x.nir"
    p.write_text("not hdf5")
    with pytest.raises(NIRImportError, match=str(p)):
        read_nir(p)


def test_affine_chain_feeds_the_converter():
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = rng.normal(size=(12, 5)), rng.normal(size=12), rng.normal(size=(3, 12)), rng.normal(size=3)
    g = nir.NIRGraph.from_list(nir.Affine(weight=w1, bias=b1), nir.IF(r=np.ones(12), v_threshold=np.ones(12)),
                               nir.Affine(weight=w2, bias=b2), nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    ws, bs = affine_chain(g)
    np.testing.assert_array_equal(ws[0], w1)
    np.testing.assert_array_equal(bs[1], b2)
    net, _ = convert(MLP.from_arrays(ws, bs), rng.random((40, 5)), preset("up5k"), timesteps=8)
    lower(net, preset("up5k"))
    with pytest.raises(NIRImportError, match="Input nodes"):
        affine_chain(nir.NIRGraph(nodes={}, edges=[], type_check=False))


def test_cli_import_export_nir_and_tennlab(tmp_path, capsys):
    net = _representable(random_network(5, 10, 30, all_modes=True))
    src = tmp_path / "net.json"
    save_network(net, src)
    assert main(["export", "nir", str(src), "-o", str(tmp_path / "n.nir"), "--dt", "0.002"]) == 0
    assert main(["import", "nir", str(tmp_path / "n.nir"), "-o", str(tmp_path / "back.json")]) == 0
    assert _canonical(load_network(tmp_path / "back.json")) == _canonical(net)
    risp = random_network(6, 8, 20, all_modes=False)
    pairs: set[tuple[int, int]] = set()
    risp.synapses = [s for s in risp.synapses if not ((s.pre, s.post) in pairs or pairs.add((s.pre, s.post)))]
    save_network(risp, tmp_path / "r.json")
    assert main(["export", "tennlab", str(tmp_path / "r.json"), "-o", str(tmp_path / "t.json")]) == 0
    assert main(["import", "tennlab", str(tmp_path / "t.json"), "-o", str(tmp_path / "r2.json")]) == 0
    assert [n.threshold for n in load_network(tmp_path / "r2.json").neurons] == [n.threshold for n in risp.neurons]
    out = capsys.readouterr().out
    assert "integer" in out
    bad = tmp_path / "bad.nir"
    nir.write(bad, nir.NIRGraph.from_list(nir.Conv1d(input_shape=4, weight=np.ones((1, 1, 2)), stride=1,
                                                     padding=0, dilation=1, groups=1, bias=np.zeros(1))))
    assert main(["import", "nir", str(bad), "-o", str(tmp_path / "x.json")]) == 2
    assert "(Conv1d)" in capsys.readouterr().err


def test_cli_import_quantizes_a_float_graph_for_a_core(tmp_path, capsys):
    g = nir.NIRGraph.from_list(
        nir.Affine(weight=np.array([[0.8, -0.3], [0.25, 0.6]]), bias=np.zeros(2)),
        nir.LIF(tau=np.full(2, 0.02), r=np.full(2, 0.02), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        nir.Linear(weight=np.array([[1.5, -0.7]])), nir.IF(r=np.ones(1), v_threshold=np.ones(1)))
    src = tmp_path / "f.nir"
    nir.write(src, g)
    assert main(["import", "nir", str(src), "-o", str(tmp_path / "f.json")]) == 0
    assert not load_network(tmp_path / "f.json").is_integer()
    assert main(["import", "nir", str(src), "-o", str(tmp_path / "q.json"), "--target", "up5k"]) == 0
    assert "quantized for up5k" in capsys.readouterr().out
    q = load_network(tmp_path / "q.json")
    assert q.is_integer()
    lower(q, preset("up5k"))
    by = {n.name: n for n in q.neurons}
    assert by["lif[0]"].leak_shift == 4  # tau 20 ms at the default dt of 1 ms
    w = {(s.pre, s.post): s.weight for s in q.synapses}
    ratio = w[(by["lif[1]"].id, by["if[0]"].id)] / w[(by["lif[0]"].id, by["if[0]"].id)]
    assert ratio == pytest.approx(-0.7 / 1.5, abs=0.02)  # one scale per layer keeps the ratios


def test_cli_train_convert_takes_weights_from_a_nir_file(tmp_path, capsys):
    from spikeforge.toolchain.train.convert import load_task, train_mlp

    d = load_task("breast-cancer")
    mlp = train_mlp(d.x_train, d.y_train, hidden=(16,), epochs=15, seed=1)
    (w1, w2), (b1, b2) = mlp.weights, mlp.biases
    g = nir.NIRGraph.from_list(nir.Affine(weight=w1, bias=b1), nir.IF(r=np.ones(16), v_threshold=np.ones(16)),
                               nir.Affine(weight=w2, bias=b2), nir.IF(r=np.ones(2), v_threshold=np.ones(2)))
    src = tmp_path / "mlp.nir"
    nir.write(src, g)
    out = tmp_path / "bc.json"
    assert main(["train", "convert", "--task", "breast-cancer", "--weights", str(src), "--activation", "relu",
                 "--timesteps", "16", "-o", str(out)]) == 0
    net = load_network(out)
    assert len(net.neurons) == 30 + 16 + 2
    ann = float(np.mean(mlp.predict(d.x_test) == d.y_test))
    assert net.metadata["provenance"]["ann_accuracy"] == pytest.approx(ann, abs=1e-4)
    assert "integer SNN" in capsys.readouterr().out
