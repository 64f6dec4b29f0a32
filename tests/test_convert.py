"""ANN-to-SNN conversion: soft-LIF, the trainer, conversion by hand, the accuracy bars."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.hdl.image import lower
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.codec import (
    NetworkError,
    PhasedRateEncoder,
    RateEncoder,
    TTFSEncoder,
    WTADecoder,
    attach_io,
    encoder_from_dict,
    io_latency,
    io_of,
)
from spikeforge.toolchain.ir import Network, load_network
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.train.convert import (
    MLP,
    ConvertError,
    convert,
    evaluate,
    float_snn_predict,
    load_task,
    snn_predict,
    softlif,
    softlif_grad,
    train_mlp,
)

UP5K = preset("up5k")


# ------------------------------------------------------------------------------ soft-LIF
def _hard_lif(j: np.ndarray, tau_rc: float = 0.02, tau_ref: float = 0.002) -> np.ndarray:
    out = np.zeros_like(j)
    m = j > 1
    out[m] = 1.0 / (tau_ref + tau_rc * np.log1p(1.0 / (j[m] - 1.0)))
    return out


def test_softlif_derivative_matches_finite_differences():
    a = np.linspace(-0.5, 3.0, 141)
    h = 1e-6
    fd = (softlif(a + h) - softlif(a - h)) / (2 * h)
    g = softlif_grad(a)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-6)
    assert g.max() > 0.5  # not a flat curve: the check compares real slopes


@pytest.mark.parametrize("sigma", [0.05, 0.5])
def test_softlif_derivative_other_smoothing(sigma):
    a = np.linspace(-1.0, 2.0, 61)
    h = 1e-6
    fd = (softlif(a + h, sigma=sigma) - softlif(a - h, sigma=sigma)) / (2 * h)
    np.testing.assert_allclose(softlif_grad(a, sigma=sigma), fd, rtol=1e-4, atol=1e-6)


def test_softlif_tends_to_the_lif_rate_curve():
    a = np.array([-1.0, -0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
    amp = 1.0 / _hard_lif(np.array([2.0]))[0]
    hard = amp * _hard_lif(a + 1.0)
    np.testing.assert_allclose(softlif(a, sigma=1e-4), hard, atol=2e-3)
    assert softlif(np.array([1.0]), sigma=1e-6)[0] == pytest.approx(1.0, abs=1e-6)
    # smoothing: strictly positive and increasing where the hard curve is 0
    s = softlif(np.array([-0.2, -0.1, 0.0]), sigma=0.05)
    assert np.all(s > 0) and np.all(np.diff(s) > 0)
    assert np.all(np.isfinite(softlif_grad(np.array([-50.0, 0.0, 50.0]))))


# ------------------------------------------------------------------------------ trainer
def test_train_mlp_learns_a_separable_task_with_every_activation():
    rng = np.random.default_rng(1)
    x = rng.random((300, 4))
    y = (x[:, 0] + x[:, 1] > x[:, 2] + x[:, 3]).astype(int)
    for act in ("relu", "clipped_relu", "softlif"):
        losses: list[float] = []
        m = train_mlp(x, y, hidden=(16,), activation=act, epochs=30, seed=0, noise=0.05,
                      progress=lambda e, loss, losses=losses: losses.append(loss))
        assert losses[-1] < losses[0]
        assert np.mean(m.predict(x) == y) > 0.9, act


def test_mlp_checks_shapes_and_saves_without_pickle(tmp_path):
    with pytest.raises(ConvertError, match="activation = 'tanh'"):
        MLP.from_arrays([np.ones((2, 3))], activation="tanh")
    with pytest.raises(ConvertError, match="layer 1: takes 4 inputs but layer 0 gives 2"):
        MLP.from_arrays([np.ones((2, 3)), np.ones((1, 4))])
    m = MLP.from_arrays([np.arange(6.0).reshape(2, 3), np.ones((1, 2))], [[0.5, -0.5], [0.1]])
    p = tmp_path / "m.npz"
    m.save(p)
    with np.load(p, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    back = MLP.load(p)
    assert back.activation == "relu" and back.sizes == [3, 2, 1]
    for a, b in zip(back.weights + back.biases, m.weights + m.biases, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ conversion
def test_tiny_hand_set_network_converts_to_hand_computed_spikes():
    # 1 input -> 1 hidden -> 1 output. On x = 1: hidden activation 0.5 (λ1 = 0.5), logit 1.0
    # (λ2 = 1). Normalised weights are both 1.0, so θ = ⌊127 / 1⌋ = 127 and w = 127.
    # T = 4, L = 2, R = 6: hidden bias = round(127 · 0.5 / 6) = 11 (half a threshold over the
    # run); the output bias rounds to 0 and becomes the touch bias +1.
    mlp = MLP.from_arrays([[[0.5]], [[2.0]]], [[0.0], [0.0]])
    net, rep = convert(mlp, np.array([[1.0]]), UP5K, timesteps=4)
    assert rep.thresholds == [127, 127] and rep.latency == 2
    h, o = net.neurons[1], net.neurons[2]
    assert (h.threshold, h.bias, h.reset.value, h.leak.value) == (127, 11, "subtract", "none")
    assert (o.threshold, o.bias) == (127, 1)
    assert [(s.pre, s.post, s.weight, s.delay) for s in net.synapses] == [(0, 1, 127, 1), (1, 2, 127, 1)]
    enc, dec = io_of(net)
    assert isinstance(enc, PhasedRateEncoder) and isinstance(dec, WTADecoder)
    assert io_latency(net) == 2
    # By hand: the relay fires at t = 0..3 (phase ½ of a 1-step gap). Hidden v (bias 11 every
    # step, +127 one step after each relay spike): t0 11; t1 149 -> fire, 22; t2 160 -> fire,
    # 33; t3 171 -> fire, 44; t4 182 -> fire, 55; t5 66. Output (bias 1, +127 a step after each
    # hidden spike): t0 1; t1 2; t2 130 -> fire, 3; t3 131 -> fire, 4; t4 132 -> fire; t5 133 -> fire.
    res = simulate(net, enc.encode([1.0]), 6)
    assert res.spikes == [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3),
                          (1, 4), (2, 4), (2, 5)]
    pred, events = snn_predict(net, np.array([[1.0]]))
    assert pred.tolist() == [0] and events.tolist() == [8]


def test_conversion_fits_the_core_and_records_its_codes():
    rng = np.random.default_rng(0)
    mlp = MLP.from_arrays([rng.normal(0, 2, (20, 8)), rng.normal(0, 2, (3, 20))],
                          [rng.normal(0, 1, 20), rng.normal(0, 1, 3)])
    x = rng.random((50, 8))
    net, rep = convert(mlp, x, UP5K, timesteps=8)
    lower(net, UP5K)  # fits
    wmax = 127
    assert max(abs(s.weight) for s in net.synapses) <= wmax
    assert all(abs(n.bias) <= 511 for n in net.neurons)
    assert all(s.delay == 1 for s in net.synapses)
    assert net.is_integer() and len(net.inputs) == 8 and len(net.outputs) == 3
    conv = net.metadata["conversion"]
    assert conv["timesteps"] == 8 and conv["latency"] == 2 and conv["sizes"] == [8, 20, 3]
    back = Network.from_json(net.to_json())
    assert io_of(back)[0] == io_of(net)[0] and io_latency(back) == 2
    # a float SNN of the same structure exists and runs
    pred, counts = float_snn_predict(rep, x[:5])
    assert pred.shape == (5,) and counts.shape == (5, 3)


def test_conversion_errors_name_the_value():
    mlp = MLP.from_arrays([np.ones((2, 3)), np.ones((2, 2))])
    x = np.ones((4, 3))
    with pytest.raises(ConvertError, match="encoding = 'phase'"):
        convert(mlp, x, UP5K, encoding="phase")
    with pytest.raises(ConvertError, match="timesteps = 0"):
        convert(mlp, x, UP5K, timesteps=0)
    with pytest.raises(ConvertError, match=r"shape \(4, 2\); the MLP takes \[n, 3\]"):
        convert(mlp, np.ones((4, 2)), UP5K)
    from spikeforge.hdl.image import ImageError

    with pytest.raises(ImageError, match="core 'tiny' holds 32"):
        convert(MLP.from_arrays([np.ones((30, 10)), np.ones((2, 30))]), np.ones((3, 10)), preset("tiny"))


# ------------------------------------------------------------------------------ the bars
@pytest.fixture(scope="module")
def digits():
    d = load_task("digits")
    mlp = train_mlp(d.x_train, d.y_train, hidden=(128,), epochs=40, seed=0)
    net, rep = convert(mlp, d.x_train, UP5K, timesteps=32)
    return d, mlp, net, rep


def test_digits_integer_snn_meets_the_bar_on_up5k(digits):
    d, mlp, net, rep = digits
    lower(net, UP5K)
    ev = evaluate(mlp, net, rep, d.x_test, d.y_test, curve_steps=(8,))
    assert ev.int_snn >= 0.95, ev
    assert ev.ann - ev.int_snn <= 0.015, ev
    assert ev.float_snn >= 0.95, ev
    assert 1_000 < ev.events_per_inference < 200_000
    assert 0.8 < dict(ev.curve)[8] <= ev.int_snn + 0.01  # fewer steps, no better


def test_ttfs_input_code_converts_too(digits):
    d, mlp, _, _ = digits
    net, rep = convert(mlp, d.x_train, UP5K, timesteps=32, encoding="ttfs")
    assert isinstance(io_of(net)[0], TTFSEncoder)
    assert any(s.pre == s.post for s in net.synapses)  # the latching relays
    x, y = d.x_test[:150], d.y_test[:150]
    pred, _ = snn_predict(net, x)
    assert np.mean(pred == y) >= 0.9


def test_breast_cancer_integer_snn_meets_the_bar():
    d = load_task("breast-cancer")
    mlp = train_mlp(d.x_train, d.y_train, hidden=(128,), epochs=40, seed=0)
    net, rep = convert(mlp, d.x_train, UP5K, timesteps=32)
    ev = evaluate(mlp, net, rep, d.x_test, d.y_test)
    assert ev.int_snn >= 0.95, ev


# ------------------------------------------------------------------------------ codec additions
def test_phased_rate_encoder_centres_spikes_and_round_trips():
    enc = PhasedRateEncoder(n_values=2, steps=8)
    assert enc.encode([0.25, 0.0]) == [(0, 2, 1), (0, 6, 1)]
    assert PhasedRateEncoder(n_values=1, steps=8, phase=0.0).encode([0.25]) == \
        RateEncoder(n_values=1, steps=8).encode([0.25])
    assert encoder_from_dict(enc.to_dict()) == enc
    with pytest.raises(NetworkError, match="phase = 1.0"):
        PhasedRateEncoder(n_values=1, steps=4, phase=1.0)


def test_attach_io_latency():
    net = Network()
    net.add_neuron(0)
    net.add_input(0)
    net.add_output(0)
    attach_io(net, RateEncoder(1, 4), WTADecoder(1))
    assert io_latency(net) == 0 and "latency" not in net.metadata["io"]
    attach_io(net, RateEncoder(1, 4), WTADecoder(1), latency=3)
    assert io_latency(net) == 3
    with pytest.raises(NetworkError, match="latency = -1"):
        attach_io(net, RateEncoder(1, 4), WTADecoder(1), latency=-1)


# ------------------------------------------------------------------------------ CLI
def test_cli_train_convert_writes_a_network_and_a_plot(tmp_path, capsys):
    out, png, npz = tmp_path / "bc.json", tmp_path / "bc.png", tmp_path / "bc.npz"
    rc = main(["train", "convert", "--task", "breast-cancer", "--epochs", "8", "--hidden", "16",
               "--timesteps", "8", "-o", str(out), "--plot", str(png), "--save-weights", str(npz)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "integer SNN" in text and "synaptic events per inference" in text
    net = load_network(out)
    prov = net.metadata["provenance"]
    assert prov["task"] == "breast-cancer" and 0.5 < prov["int_snn_accuracy"] <= 1.0
    assert len(prov["input_scaling"]["lo"]) == 30
    assert png.read_bytes()[:4] == b"\x89PNG"
    # converting the saved weights again gives the same network
    out2 = tmp_path / "bc2.json"
    assert main(["train", "convert", "--task", "breast-cancer", "--timesteps", "8", "--weights", str(npz),
                 "-o", str(out2)]) == 0
    a, b = json.loads(out.read_text()), json.loads(out2.read_text())
    assert a["neurons"] == b["neurons"] and a["synapses"] == b["synapses"]


def test_cli_train_convert_bad_option(capsys):
    assert main(["train", "convert", "--hidden", "a,b", "-o", "x.json"]) == 2
    assert "--hidden = 'a,b'" in capsys.readouterr().err


def test_float_snn_runs_the_reference_dynamics():
    # With thresholds of 64 every float value is a multiple of 1/64, so the float SNN's sums are
    # exact and it must agree spike count for spike count with the integer network in the
    # reference model (same structure, delays, reset by subtraction, touch rule, window).
    from spikeforge.toolchain.codec import output_raster
    from spikeforge.toolchain.reference import simulate_batch
    from spikeforge.toolchain.train.convert import ConversionReport

    rng = np.random.default_rng(3)
    sizes, theta, T = [6, 9, 4], 64, 12
    ws = [rng.integers(1, 60, (b, a)) * rng.choice([-1, 1], (b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [rng.integers(-20, 21, b) for b in sizes[1:]]
    rep = ConversionReport([1.0, 1.0], [theta, theta], T, 2, "rate",
                           scaled=[(w / theta, b / theta) for w, b in zip(ws, bs, strict=True)])
    net = Network()
    for i in range(6):
        net.add_neuron(i, threshold=1)
        net.add_input(i)
    base = [0, 6, 15]
    for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
        for j in range(w.shape[0]):
            net.add_neuron(base[k + 1] + j, threshold=theta, reset="subtract", bias=int(b[j]))
            for i in range(w.shape[1]):
                net.add_synapse(base[k] + i, base[k + 1] + j, int(w[j, i]), 1)
    for j in range(4):
        net.add_output(15 + j)
    enc = PhasedRateEncoder(n_values=6, steps=T, max_spikes=T)
    attach_io(net, enc, WTADecoder(4), latency=2)
    x = rng.random((40, 6))
    pred_f, counts_f = float_snn_predict(rep, x)
    results = simulate_batch(net, enc.encode_batch(x), T + 2)
    counts_i = np.stack([output_raster(net, r).sum(axis=0) for r in results])
    np.testing.assert_array_equal(counts_f, counts_i)
    assert counts_i.sum() > 40  # the outputs do fire
    np.testing.assert_array_equal(pred_f, snn_predict(net, x)[0])


# ------------------------------------------------------------------------------ soft-LIF -> LIF
def test_softlif_mlp_becomes_contract_lif_neurons_with_hand_computed_spikes():
    from spikeforge.toolchain.train.convert import lif_softlif_params

    # k = 1 (decay 1/2), refractory 1. Hidden layer: W̃ = (1 − α) W = 0.5, b̃ = (1 − α)(b + 1)
    # = 0.5, so θ = ⌊127 / 0.5⌋ = 254, w = 127, bias = 127.
    mlp = MLP([np.array([[1.0]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)], "softlif",
              lif_softlif_params(1, 1))
    net, rep = convert(mlp, np.array([[1.0]]), UP5K, timesteps=8)
    h = net.neurons[1]
    assert (h.threshold, h.bias, h.leak.value, h.leak_shift, h.refractory, h.reset.value) == \
        (254, 127, "shift", 1, 1, "zero")
    assert net.synapses[0].weight == 127 and rep.kinds == ["lif", "if"]
    assert net.metadata["conversion"]["lif"] == {"leak_shift": 1, "refractory": 1}
    # By hand, the relay firing at t = 0..7: t0 v = 127 (bias); t1 127 - 63 = 64, + 127 + 127 =
    # 318 -> fire, v = 0; t2 refractory; t3 0 + 254 -> fire; t4 refractory; t5 fire; t6; t7
    # fire; t8 refractory (the relay's last spike, sent at t7, is ignored); t9 only the bias: 127.
    res = simulate(net, io_of(net)[0].encode([1.0]), 10)
    assert [t for i, t in res.spikes if i == 1] == [1, 3, 5, 7]


def test_lif_needs_a_softlif_mlp_and_warns_on_inexact_constants(caplog):
    mlp = MLP.from_arrays([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ConvertError, match="neuron = 'lif' needs an MLP trained with activation 'softlif'"):
        convert(mlp, np.ones((4, 3)), UP5K, neuron="lif")
    soft = MLP.from_arrays([np.ones((2, 3)), np.ones((2, 2))], activation="softlif")  # 20 ms / 2 ms
    net, _ = convert(soft, np.ones((4, 3)), UP5K)
    assert "not an exact LIF" in caplog.text and net.neurons[3].leak_shift == 4


def test_softlif_digits_converts_to_lif_at_the_ann_level(tmp_path):
    from spikeforge.toolchain.train.convert import lif_softlif_params

    d = load_task("digits")
    mlp = train_mlp(d.x_train, d.y_train, hidden=(64,), activation="softlif", noise=0.1, epochs=40,
                    seed=0, softlif_params=lif_softlif_params(4, 2))
    mlp.save(tmp_path / "s.npz")
    assert MLP.load(tmp_path / "s.npz").softlif_params == mlp.softlif_params
    net, rep = convert(mlp, d.x_train, UP5K, timesteps=32)
    lower(net, UP5K)
    pred, _ = snn_predict(net, d.x_test)
    ann, snn = np.mean(mlp.predict(d.x_test) == d.y_test), np.mean(pred == d.y_test)
    assert snn >= 0.97 and ann - snn <= 0.01, (ann, snn)
