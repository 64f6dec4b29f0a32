"""Reservoir computing (toolchain/train/reservoir): the series code, the generator within a core's
limits and tuned on the reference model, the on-core readout (its decision equals the integer
argmax it was built from), the compiler taking it onto up5k, and the emulated board agreeing
with the reference model spike for spike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.hdl.image import lower
from spikeforge.toolchain.codec import SeriesEncoder, encoder_from_dict, io_of, output_raster
from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.train.reservoir import (
    ReservoirError,
    ReservoirParams,
    SeriesTask,
    SeriesTaskError,
    attach_classifier,
    build_reservoir,
    features,
    fit_host,
    load_series_task,
    mackey_glass,
    run_states,
    train_reservoir,
    tune_gains,
)
from spikeforge.toolchain.train.reservoir.tasks import digits_sequence, japanese_vowels

UP5K = preset("up5k")
BUILD = Path(__file__).resolve().parents[1] / "build" / "test_reservoir"


# ----------------------------------------------------------------------------- the series code
def test_series_encoder_hand_computed() -> None:
    enc = SeriesEncoder(n_values=6, steps=8, channels=2, frames=3, frame_steps=2, value=4, push_pull=True,
                        extra_inputs=1, markers=((4, 6, 1),))
    x = np.array([[np.nan, np.nan], [1.0, 0.5], [0.0, 0.25]])  # 2 real frames: they fill steps 2..5
    assert enc.n_inputs == 5
    assert enc.encode(x) == [(0, 2, 4), (0, 3, 4), (1, 2, 2), (1, 3, 2), (1, 4, 1), (1, 5, 1),
                             (2, 4, 4), (2, 5, 4),  # push-pull of channel 0: 1 − x̂
                             (3, 2, 2), (3, 3, 2), (3, 4, 3), (3, 5, 3), (4, 6, 1)]
    rate = dataclasses.replace(enc, mode="rate", push_pull=False, extra_inputs=0, markers=(), value=9)
    assert rate.encode(x) == [(0, 2, 9), (0, 3, 9), (1, 2, 9)]  # round(0.25·2) = 0 (half to even)
    assert encoder_from_dict(enc.to_dict()) == enc
    s, i, t, v = enc.encode_arrays(np.stack([x, x]))
    assert len(s) == 2 * len(enc.encode(x)) and set(s.tolist()) == {0, 1}


def test_series_encoder_refuses_bad_values() -> None:
    with pytest.raises(NetworkError, match="n_values"):
        SeriesEncoder(n_values=5, steps=8, channels=2, frames=3)
    with pytest.raises(NetworkError, match="steps = 4 is shorter"):
        SeriesEncoder(n_values=6, steps=4, channels=2, frames=3, frame_steps=2)
    with pytest.raises(NetworkError, match="marker"):
        SeriesEncoder(n_values=2, steps=2, channels=2, frames=1, markers=((5, 0, 1),))
    enc = SeriesEncoder(n_values=2, steps=2, channels=2, frames=1)
    with pytest.raises(ValueError, match="padding frame"):
        enc.encode([np.nan, 1.0])


# ----------------------------------------------------------------------------- tasks
def test_mackey_glass_converges_with_the_step_and_stays_in_range() -> None:
    a = mackey_glass(300)
    b = mackey_glass(300, dt=0.05)
    assert np.max(np.abs(a - b)) < 1e-3  # RK4: halving dt changes nothing visible
    assert 0.2 < a.min() and a.max() < 1.5 and a.std() > 0.1  # the chaotic τ = 17 attractor
    with pytest.raises(SeriesTaskError, match="multiples of dt"):
        mackey_glass(10, tau=17.05)


def test_japanese_vowels_is_the_standard_split() -> None:
    t = japanese_vowels()
    assert t.x_train.shape[0] == 270 and t.x_test.shape[0] == 370 and t.channels == 12
    assert sorted(set(t.y_train.tolist())) == list(range(9)) and np.bincount(t.y_train).tolist() == [30] * 9
    lengths = (~np.isnan(t.x_test).all(axis=2)).sum(axis=1)
    assert lengths.min() >= 7 and lengths.max() <= 29 and t.frames == 29


def plugin_task() -> SeriesTask:
    d = digits_sequence()
    return SeriesTask("plug", "classification", d.x_train[:100], d.y_train[:100], d.x_test[:5], d.y_test[:5],
                      0.0, 16.0, [str(k) for k in range(10)])


def test_plugin_tasks_load_and_errors_name_the_fix() -> None:
    assert load_series_task(f"{__name__}:plugin_task").name == "plug"
    with pytest.raises(SeriesTaskError, match="allowed: japanese-vowels"):
        load_series_task("nope")
    with pytest.raises(SeriesTaskError, match="no attribute"):
        load_series_task(f"{__name__}:missing")


# ----------------------------------------------------------------------------- generator
def _small(n: int = 60, **kw: object) -> tuple[SeriesTask, SeriesEncoder, object]:
    d = digits_sequence()
    enc = SeriesEncoder(n_values=64, steps=32, channels=8, frames=8, frame_steps=4, value=32, push_pull=True,
                        extra_inputs=1)
    res = build_reservoir(enc, UP5K, ReservoirParams(n_neurons=n, tune_samples=16, **kw))  # type: ignore[arg-type]
    return d, enc, res


def test_generator_is_seeded_within_limits_and_dale() -> None:
    _, enc, res = _small(leak_shift_max=4)
    _, _, again = _small(leak_shift_max=4)
    assert res.network.to_dict() == again.network.to_dict()  # seeded
    lim = UP5K.limits()
    n_in = len(res.inputs)
    sign: dict[int, int] = {}
    for s in res.network.synapses:
        assert lim.weight[0] <= s.weight <= lim.weight[1] and lim.delay[0] <= s.delay <= lim.delay[1]
        if s.pre >= n_in:
            assert sign.setdefault(s.pre, np.sign(s.weight)) == np.sign(s.weight)  # Dale's law
    assert {np.sign(v) for v in sign.values()} == {-1, 1}
    assert len({s.delay for s in res.network.synapses}) > 8  # the core's delays are used
    assert {n.leak_shift for n in res.network.neurons[n_in:]} == {3, 4}
    lower(res.network, UP5K)
    with pytest.raises(ReservoirError, match="exceed the 1024 neurons"):
        build_reservoir(enc, UP5K, ReservoirParams(n_neurons=1020))
    with pytest.raises(ReservoirError, match="threshold = 40000"):
        build_reservoir(enc, UP5K, ReservoirParams(threshold=40000))
    with pytest.raises(ReservoirError, match="lower connectivity"):
        build_reservoir(enc, UP5K, ReservoirParams(n_neurons=900, connectivity=0.2))


def test_tuning_reaches_the_target_rate_measured_on_the_reference_model() -> None:
    d, _, res = _small(target_rate=0.05)
    x = d.scaled(d.x_train[:16])
    tune_gains(res, x, UP5K)  # type: ignore[arg-type]
    counts, _, _ = run_states(res.network, res.encoder, x)  # type: ignore[attr-defined]
    rate = counts[:, :, len(res.inputs):].sum() / (16 * 32 * 60)  # type: ignore[attr-defined]
    assert rate == pytest.approx(0.05, rel=0.3) and res.rate == pytest.approx(rate)  # type: ignore[attr-defined]
    assert res.g_rec > 0 and res.spectral_radius > 0  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- on-core readout
@pytest.fixture(scope="module")
def small_classifier() -> tuple[Network, SeriesTask, np.ndarray, np.ndarray, list[int]]:
    d, enc, res = _small(n=80, target_rate=0.06)
    xtr, xte = d.scaled(d.x_train[:300]), d.scaled(d.x_test[:40])
    tune_gains(res, xtr, UP5K)  # type: ignore[arg-type]
    sources = res.neurons  # type: ignore[attr-defined]
    pos = res.network.index_of()  # type: ignore[attr-defined]
    cols = [pos[i] for i in sources]
    ctr, _, _ = run_states(res.network, enc, xtr, steps=33)  # type: ignore[attr-defined]
    cte, _, _ = run_states(res.network, enc, xte, steps=33)  # type: ignore[attr-defined]
    ftr, fte = features(ctr[:, :, cols], "total"), features(cte[:, :, cols], "total")
    w, b = fit_host(ftr, d.y_train[:300], "classification", c=0.1).linear()
    net, oc = attach_classifier(res, sources, w, b, ftr, UP5K, d.classes)  # type: ignore[arg-type]
    return net, d, fte, xte, oc.outputs


def test_on_core_readout_decides_the_integer_argmax(small_classifier) -> None:
    net, d, fte, xte, outs = small_classifier
    enc, dec = io_of(net)
    _, _, raster = run_states(net, enc, xte, outputs=outs)
    got = dec.decode_batch(raster)
    # the integer scores the readout was built from: Wq · counts + (θ0 − θ_c)
    pos = {n.id: n for n in net.neurons}
    th = np.array([pos[o].threshold for o in outs])
    wq = np.zeros((len(outs), fte.shape[1]))
    n_in = len(net.inputs)  # the reservoir neurons (the features' sources) follow the inputs
    src = {n_in + k: k for k in range(fte.shape[1])}
    for s in net.synapses:
        if s.post in outs and s.pre in src:
            wq[outs.index(s.post), src[s.pre]] = s.weight
    score = fte @ wq.T - th
    best = score.max(axis=1, keepdims=True)
    go = net.inputs[-1].neuron
    step = sum(s.weight for s in net.synapses if s.pre == go and s.post == outs[0])  # the ramp's largest step
    clear = np.sort(score, axis=1)[:, -2] < best[:, 0] - step  # no tie within one ramp step
    assert clear.sum() >= 20
    # the quench leaves a few reservoir spikes in flight after T_end (recurrent delays up to 16),
    # which move a score now and then: nearly every clear decision is the integer argmax
    assert np.mean(got[clear] == score.argmax(axis=1)[clear]) >= 0.85
    assert np.mean(got == d.y_test[:40]) >= 0.4  # a working classifier (chance: 0.1), not a silent one
    # θ0 is above every training score: hardly a test sample fires an output before the go marker
    assert raster[:, : enc.frames * enc.frame_steps].any(axis=(1, 2)).mean() <= 0.1


def test_on_core_readout_compiles_onto_up5k_and_the_emulated_board_agrees(small_classifier) -> None:
    from spikeforge.sim.emuboard import EmuBoard, EmuSerial
    from spikeforge.toolchain.compiler import compile_network
    from spikeforge.toolchain.deploy import Device

    net, _, _, xte, _ = small_classifier
    result = compile_network(net, UP5K)
    assert len(result.images) == 1
    enc, dec = io_of(net)
    dev = Device(EmuSerial(EmuBoard(UP5K, model_line=False)), timeout=0.05)
    dev.load(result.image)
    cnet = result.network
    for row in xte[:3]:
        ev = enc.encode(row)
        ref = simulate(cnet, ev, enc.steps)
        got = dev.simulate(ev, enc.steps)
        assert got.spikes == ref.spikes and len(ref.spikes) > 100
        # the compiled outputs fire as the source network's: the same decoded class
        src = output_raster(net, simulate(net, ev, enc.steps))
        np.testing.assert_array_equal(output_raster(cnet, got), src)
        assert src.any() and dec.decode(src) == dec.decode(output_raster(cnet, got))


# ----------------------------------------------------------------------------- end to end
def test_train_reservoir_on_a_small_plugin_task() -> None:
    t = plugin_task()
    net, rep = train_reservoir(t, "up5k", ReservoirParams(n_neurons=40, tune_samples=8))
    assert rep.onchip is not None and 0.0 <= rep.onchip <= 1.0 and rep.events_per_inference > 0
    enc, dec = io_of(net)
    assert enc.kind == "series" and dec.kind == "first_spike" and len(net.outputs) == 10
    assert net.metadata["reservoir"]["reservoir"]["params"]["n_neurons"] == 40
    lower(net, UP5K)


@pytest.mark.slow
def test_japanese_vowels_bar_with_the_readout_on_the_core() -> None:
    net, rep = train_reservoir("japanese-vowels", "up5k")
    assert rep.onchip is not None and rep.onchip >= 0.95  # issue 20 bar (measured 0.9649)
    assert rep.host >= 0.95 and rep.train_seconds < 300


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 20 bar (NRMSE <= 0.1) not met yet: 0.167 measured")
def test_mackey_glass_one_step_bar() -> None:
    _, rep = train_reservoir("mackey-glass", "up5k")
    assert rep.host <= 0.1 and rep.train_seconds < 300  # issue 20 bar: NOT met yet (measured 0.167)


@pytest.mark.slow
@pytest.mark.verilator
def test_japanese_vowels_subset_on_the_verilator_rtl(small_classifier) -> None:
    from spikeforge.sim.verify import verify_cases
    from spikeforge.toolchain.compiler import compile_network
    from spikeforge.toolchain.netgen import Case

    net, _, _, xte, _ = small_classifier
    compiled = compile_network(net, UP5K)
    enc, _ = io_of(net)
    cases = [Case(f"series-{k}", compiled.network, enc.encode(row), enc.steps) for k, row in enumerate(xte[:8])]
    report = verify_cases(cases, UP5K, build_dir=BUILD, timeout=3000)
    assert report.ok, report.summary()


def test_cli_train_reservoir_writes_a_network(tmp_path, capsys) -> None:
    import json

    from spikeforge.toolchain.cli import main
    from spikeforge.toolchain.ir import load_network

    out = tmp_path / "lsm.json"
    assert main(["train", "reservoir", "--task", f"{__name__}:plugin_task", "--target", "up5k", "-o", str(out)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    net = load_network(out)
    assert line["task"] == "plug" and io_of(net)[1].kind == "first_spike" and len(net.outputs) == 10
