"""NIR files written by other tools (tests/data/nir, made by scripts/make_nir_fixtures.py) against
what those tools computed on the same inputs (recorded beside them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeforge.hdl.config import preset
from spikeforge.sim.bench_interop import digits_agreement, layer_ids, layer_raster, load_recording
from spikeforge.toolchain.compiler.quantize import quantize_network
from spikeforge.toolchain.ir import Leak, Network, Reset
from spikeforge.toolchain.nirio import read_nir
from spikeforge.toolchain.reference import simulate_batch

DATA = Path(__file__).parent / "data" / "nir"


def _load(name: str) -> dict[str, np.ndarray]:
    return load_recording(DATA / f"{name}.npz")


def _integer_copy(net: Network, scale: float) -> Network:
    """The float import times ``scale`` (a power of two that makes every value whole), as ints;
    input relays and the clock keep their unit values."""
    keep = {n.id for n in net.neurons if n.name == "clock" or n.name.startswith("input")}
    for n in net.neurons:
        s = 1 if n.id in keep else scale
        th, b = n.threshold * s, n.bias * s
        assert th == int(th) and b == int(b), (n.name, th, b)
        n.threshold, n.bias = int(th), int(b)
    for syn in net.synapses:
        w = syn.weight * (1 if syn.post in keep else scale)
        assert w == int(w), (syn, w)
        syn.weight = int(w)
    net.metadata.pop("strict_threshold", None)
    return net


def test_snntorch_if_network_matches_snntorch_spike_for_spike():
    rec = _load("snntorch_if")
    x, spk1, spk2 = rec["in"], rec["spk1"], rec["spk2"]
    steps, n_batch, _ = x.shape
    assert spk1.sum() > 100 and spk2.sum() > 20  # the recording is not silent
    net = read_nir(DATA / "snntorch_if.nir", producer="snntorch")
    hidden, out = layer_ids(net, "1"), layer_ids(net, "3")
    assert len(hidden) == 8 and len(out) == 4
    assert all(net.neuron(i).leak is Leak.NONE and net.neuron(i).reset is Reset.SUBTRACT
               for i in hidden + out)
    q = _integer_copy(net, 4096)
    batch = [[(int(i), int(t), 1) for t, i in zip(*np.nonzero(x[:, b, :]), strict=True)]
             for b in range(n_batch)]
    # snnTorch passes a step's input through both layers in that step; here the input relays,
    # then each synapse, take a step: hidden spikes 1 step later, outputs 2.
    results = simulate_batch(q, batch, steps + 2, potential_bits=24)
    for b, res in enumerate(results):
        np.testing.assert_array_equal(layer_raster(res, hidden, steps, 1), spk1[:, b], err_msg=f"sample {b}")
        np.testing.assert_array_equal(layer_raster(res, out, steps, 2), spk2[:, b], err_msg=f"sample {b}")


def test_without_the_clock_an_untouched_neuron_misses_snntorch_repeat_spikes():
    # The clock neuron is what makes the match above exact: snnTorch fires a neuron at v ≥ 2θ
    # on consecutive steps with no input; a contract neuron fires only when touched.
    rec = _load("snntorch_if")
    x, spk1 = rec["in"], rec["spk1"]
    net = _integer_copy(read_nir(DATA / "snntorch_if.nir", producer="snntorch"), 4096)
    clock = next(n.id for n in net.neurons if n.name == "clock")
    net.synapses = [s for s in net.synapses if s.pre != clock]
    hidden = layer_ids(net, "1")
    batch = [[(int(i), int(t), 1) for t, i in zip(*np.nonzero(x[:, b, :]), strict=True)]
             for b in range(x.shape[1])]
    got = np.stack([layer_raster(r, hidden, x.shape[0], 1) for r in simulate_batch(net, batch, x.shape[0] + 2,
                                                                            potential_bits=24)], 1)
    assert got.sum() < spk1.sum()


def test_snntorch_lif_digits_mlp_agrees_with_snntorch():
    rec = _load("snntorch_digits")
    snn_acc = float((rec["counts"].argmax(1) == rec["y"]).mean())
    assert snn_acc > 0.9  # a trained network, or agreement would mean little
    net = read_nir(DATA / "snntorch_digits.nir", producer="snntorch")
    assert {n.leak_shift for n in net.neurons if n.leak is Leak.SHIFT} == {3}  # beta 0.875, exact
    q, rep = quantize_network(net, preset("up5k"), granularity="layer")
    agree, acc = digits_agreement(q, rep.input_scales, rec)
    assert agree >= 0.97, (agree, acc, snn_acc)
    assert abs(acc - snn_acc) <= 0.01, (agree, acc, snn_acc)


def test_cli_import_with_the_documented_flags_is_quiet_and_the_wrong_ones_are_loud(tmp_path, capsys):
    from spikeforge.toolchain.cli import main

    src, out = str(DATA / "snntorch_digits.nir"), str(tmp_path / "net.json")
    capsys.readouterr()
    assert main(["import", "nir", src, "-o", out, "--producer", "snntorch", "--target", "up5k"]) == 0
    err = capsys.readouterr().err
    assert "rounded" not in err and "not an exact shift leak" not in err, err
    # the flags of the old README (a Dirac reading at dt 1e-4): thresholds and biases collapse
    assert main(["import", "nir", src, "-o", out, "--dt", "1e-4", "--reset", "subtract",
                 "--target", "up5k"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: quantization rounded" in err and "thresholds to 0" in err and "biases to 0" in err, err


def test_bench_nir_prints_the_agreement_figures(tmp_path, capsys):
    """The README's interop figures come from `spikeforge bench nir`, one JSON line per file."""
    import json

    from spikeforge.toolchain.cli import main

    assert main(["bench", "nir", "--data", str(DATA)]) == 0
    digits, generic, if_net = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    assert generic["flags"] == "--dt 1e-4 --reset subtract" and generic["argmax_agreement"] < 0.5
    assert digits["case"] == "snntorch_digits" and digits["samples"] == 540
    assert digits["argmax_agreement"] >= 0.97 and abs(digits["accuracy"] - digits["tool_accuracy"]) <= 0.01
    assert if_net["case"] == "snntorch_if" and if_net["hidden_cells"] == 5120
    assert 0 < if_net["hidden_cells_differ"] < if_net["hidden_cells"] // 10  # close, not exact, at 8 bits
    assert main(["bench", "nir", "--data", str(tmp_path)]) == 2
    assert "no NIR recordings here" in capsys.readouterr().err
