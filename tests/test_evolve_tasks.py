"""Trainer tasks against their oracles: the batched classification and cart-pole loops against
one-by-one reference-model runs, the numpy cart-pole against gymnasium, and the small
vectorised APIs they use (reference ``add_input_arrays``/``spike_arrays``, codec
``encode_arrays``/``decode_batch``) against the per-event ones."""

from __future__ import annotations

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.codec import (
    BinsEncoder,
    FirstSpikeDecoder,
    FlipFlopEncoder,
    RateEncoder,
    TTFSEncoder,
    WTADecoder,
    io_of,
    output_raster,
)
from spikeforge.toolchain.netgen import random_network
from spikeforge.toolchain.reference import ReferenceSimulator, simulate
from spikeforge.toolchain.train.evolve import EvolveConfig, Limits, initial_network, mutate
from spikeforge.toolchain.train.tasks import (
    CARTPOLE_SCALE,
    BreastCancerTask,
    CartPoleTask,
    VecCartPole,
    preprocess,
)


def _population(task, n: int, seed: int, mutations: int = 30, start: int = -1):  # type: ignore[no-untyped-def]
    """Mutated random networks; a small ``start`` leaves inputs unconnected (the eval view)."""
    cfg = EvolveConfig(start_hidden=3, start_synapses=start, mutations=3.0)
    lim = Limits.of(preset("up5k"), cfg, task.n_inputs, task.n_outputs)
    rng = np.random.default_rng(seed)
    nets = []
    for _ in range(n):
        net = initial_network(lim, cfg, rng, task.codec(), task.metadata)
        for _ in range(int(rng.integers(0, mutations))):
            net = mutate(net, lim, cfg, rng)
        nets.append(net)
    return nets


def test_reference_array_inputs_and_spike_arrays_match_the_per_event_api() -> None:
    rng = np.random.default_rng(0)
    nets = [random_network(rng, 12, 40, n_inputs=3, n_outputs=2) for _ in range(4)]
    runs = [nets[k % 4] for k in range(10)]
    ev = [[(int(rng.integers(3)), int(rng.integers(12)), int(rng.integers(-5, 40))) for _ in range(15)]
          for _ in range(10)]
    a = ReferenceSimulator(runs)
    for k, e in enumerate(ev):
        a.add_inputs(k, e)
    b = ReferenceSimulator(runs)
    flat = np.array([(k, i, t, v) for k, e in enumerate(ev) for i, t, v in e])
    b.add_input_arrays(flat[:, 0], flat[:, 1], flat[:, 2], flat[:, 3])
    a.run(20)
    b.run(20)
    assert a.results() == b.results()
    t, run, idx = b.spike_arrays(since=7)
    want = sorted((int(tt), k, int(i)) for k, r in enumerate(b.results())
                  for tt, i in zip(r.spike_times, r.spike_index, strict=True) if tt >= 7)
    assert sorted(zip(t.tolist(), run.tolist(), idx.tolist(), strict=True)) == want
    with pytest.raises(ValueError, match="input_index = 3 is out of range"):
        b.add_input_arrays(np.array([0]), np.array([3]), np.array([30]), np.array([1]))
    with pytest.raises(ValueError, match="time = 5 is out of range"):
        b.add_input_arrays(np.array([0]), np.array([0]), np.array([5]), np.array([1]))


@pytest.mark.parametrize("enc", [RateEncoder(3, 10, max_spikes=7), FlipFlopEncoder(3, 8, lo=-1, hi=1),
                                 TTFSEncoder(3, 5), BinsEncoder(3, 6, bins=3, spikes=2)], ids=lambda e: e.kind)
def test_encode_arrays_equals_encode(enc) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(1).uniform(-1.5, 1.5, (40, 3))
    got = sorted(zip(*[a.tolist() for a in enc.encode_arrays(x)], strict=True))
    assert got == sorted((k, i, t, v) for k, row in enumerate(x) for i, t, v in enc.encode(row))


@pytest.mark.parametrize("dec", [WTADecoder(3), FirstSpikeDecoder(3, default=2)], ids=lambda d: d.kind)
def test_vectorised_class_decoders_equal_decode(dec) -> None:  # type: ignore[no-untyped-def]
    r = np.random.default_rng(2).random((400, 6, 3)) < 0.15
    assert np.array_equal(dec.decode_batch(r), [dec.decode(x) for x in r])


def test_breast_cancer_split_and_batched_accuracy_equal_one_by_one() -> None:
    task = BreastCancerTask(margin_weight=0.0)
    assert (len(task.y_train), len(task.y_test)) == (455, 114)
    assert abs(task.y_train.mean() - task.y_test.mean()) < 0.01  # stratified
    nets = _population(task, 2, seed=4, start=12)
    fit = task.evaluate(nets, 0)
    enc, dec = io_of(nets[0])
    xs = preprocess(task.x_train, nets[0].metadata["preprocess"])
    for net, f in zip(nets, fit, strict=True):
        pred = [dec.decode(output_raster(net, simulate(net, enc.encode(x), enc.steps))) for x in xs[:25]]
        # the oracle on a subset: same predictions as the batched pass
        batched = task.predict(net, task.x_train[:25])
        assert np.array_equal(pred, batched)
        assert f == pytest.approx(float(np.mean(task.predict(net, task.x_train) == task.y_train)))


def test_vec_cartpole_matches_gymnasium_step_for_step() -> None:
    import gymnasium as gym

    seeds = [0, 1, 7, 123, 99999]
    rng = np.random.default_rng(0)
    vec = VecCartPole(seeds)
    envs = [gym.make("CartPole-v1") for _ in seeds]
    obs = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, seeds, strict=True)])
    assert np.array_equal(obs, vec.obs())
    done = np.zeros(len(seeds), bool)
    lengths = [0] * len(seeds)
    for _ in range(200):
        act = rng.integers(0, 2, len(seeds))
        term = vec.step(act)
        for k, e in enumerate(envs):
            if done[k]:
                continue
            o, _, t, trunc, _ = e.step(int(act[k]))
            lengths[k] += 1
            assert np.array_equal(o, vec.obs()[k]) and t == term[k]
            done[k] = t or trunc
        if done.all():
            break
    assert done.all() and vec.done.all()
    assert vec.steps.tolist() == lengths  # finished envs stay frozen


def _closed_loop_one(task: CartPoleTask, net, seed: int) -> int:  # type: ignore[no-untyped-def]
    """The oracle: gymnasium's env, the per-event encoder and the single-run simulator."""
    import gymnasium as gym

    env = gym.make("CartPole-v1", max_episode_steps=task.max_steps)
    obs, _ = env.reset(seed=seed)
    enc, dec = io_of(net)
    sim = ReferenceSimulator([net])
    steps = 0
    while True:
        t0 = sim.t
        sim.add_inputs(0, enc.shifted(enc.encode(obs / np.asarray(CARTPOLE_SCALE)), t0))
        sim.run(enc.steps)
        action = dec.decode(output_raster(net, sim.results()[0], t0, enc.steps))
        obs, _, term, trunc, _ = env.step(int(action))
        steps += 1
        if term or trunc:
            return steps


def test_cartpole_batched_closed_loop_equals_the_oracle() -> None:
    task = CartPoleTask(max_steps=120)
    nets = _population(task, 4, seed=3) + _population(task, 2, seed=8, start=4)
    seeds = [5, 11]
    got = task.episode_lengths(nets, seeds)
    want = [[_closed_loop_one(task, n, s) for s in seeds] for n in nets]
    assert got.tolist() == want
    assert task.episode_lengths(nets[2:3], seeds).tolist() == want[2:3]  # independent of the batch
    f = task.evaluate(nets, 42)
    assert f.shape == (6,) and ((0 < f) & (f <= 1)).all()


def test_margin_bonus_by_hand() -> None:
    from spikeforge.toolchain.codec import attach_io
    from spikeforge.toolchain.ir import Network
    from spikeforge.toolchain.train.tasks import ClassificationTask, XorTask

    x = XorTask()
    task = ClassificationTask("m", x.x_train, x.y_train, x.x_test, x.y_test, x.encoder, x.decoder,
                              margin_weight=1.0)
    net = Network()
    for i in range(4):
        net.add_neuron(i, threshold=1)
    net.add_input(0), net.add_input(1), net.add_output(2), net.add_output(3)
    net.add_synapse(0, 3, 1, 1), net.add_synapse(1, 3, 1, 1)
    attach_io(net, x.encoder, x.decoder)
    # out1 copies every input step (2 spikes per active input, once per step for both); out0 is
    # silent: predictions 0,1,1,1 (accuracy 3/4); margins 0, 2/4, 2/4, -2/4 (mean 1/8).
    assert task.evaluate([net], 0)[0] == pytest.approx(0.75 + 0.125)
    assert task.accuracy(net, "train") == 0.75
