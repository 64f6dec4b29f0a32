"""NIR import conventions per producer: snnTorch's one-step current against the generic impulse.

Every expectation below is worked out by hand from the producer's update rule (written in each
test), not from spikeforge.
"""

from __future__ import annotations

import logging

import nir
import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.compiler.quantize import quantize_network
from spikeforge.toolchain.ir import Leak, Network, Reset
from spikeforge.toolchain.nirio import PRODUCERS, NIRImportError, from_nir
from spikeforge.toolchain.reference import simulate

DT = 1e-4  # snnTorch's implied step


def _snn_lif(beta: float | np.ndarray, thr: float = 1.0) -> nir.LIF:
    """A LIF node exactly as snnTorch 1.0 ``export_to_nir`` writes one (float32 arithmetic)."""
    beta = np.asarray(beta, dtype=np.float32).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = DT / (1 - beta)
        r = tau / DT
    return nir.LIF(tau=tau, r=r, v_leak=np.zeros_like(beta),
                   v_threshold=np.full(beta.shape, thr, dtype=np.float32),
                   v_reset=np.zeros_like(beta))


def _graph(w: np.ndarray, b: np.ndarray, neuron: nir.NIRNode) -> nir.NIRGraph:
    n_out, n_in = w.shape
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([n_in])), "fc": nir.Affine(weight=w, bias=b),
               "lif": neuron, "output": nir.Output(output_type=np.array([n_out]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)


def _lif_neurons(net: Network) -> list:
    return [n for n in net.neurons if n.name.startswith("lif")]


def test_snntorch_weights_and_biases_are_one_step_of_current(caplog):
    # snnTorch: mem ← beta·mem + (W·s + b): one unit of weight or bias moves v by exactly 1.
    w = np.array([[0.5, 0.25], [-0.75, 0.125]], dtype=np.float32)
    b = np.array([0.1, -0.2], dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="spikeforge"):
        net = from_nir(_graph(w, b, _snn_lif(0.875)), producer="snntorch")
    assert not [r for r in caplog.records if "shift leak" in r.getMessage()]  # 0.875 is k = 3 exactly
    lif = _lif_neurons(net)
    assert len(lif) == 2  # scalar beta/threshold broadcast to the Affine's 2 rows
    assert [n.leak for n in lif] == [Leak.SHIFT, Leak.SHIFT] and [n.leak_shift for n in lif] == [3, 3]
    assert [n.reset for n in lif] == [Reset.SUBTRACT] * 2
    assert [n.bias for n in lif] == pytest.approx([0.1, -0.2], rel=1e-6)
    weights = {(net.neuron(s.pre).name, net.neuron(s.post).name): s.weight for s in net.synapses
               if net.neuron(s.pre).name != "clock"}
    # snnTorch updates every neuron every step: a clock touches each through a weight-0 synapse
    assert sorted((net.neuron(s.pre).name, s.weight) for s in net.synapses if s.post in {n.id for n in lif}
                  and net.neuron(s.pre).name == "clock") == [("clock", 0), ("clock", 0)]
    assert weights == pytest.approx({("input[0]", "lif[0]"): 0.5, ("input[1]", "lif[0]"): 0.25,
                                     ("input[0]", "lif[1]"): -0.75, ("input[1]", "lif[1]"): 0.125})


def test_generic_impulse_reading_of_the_same_file_differs_as_documented(caplog):
    # Impulse: Δv = r·w/τ = w/dt = 10⁴·w; bias current: r·b·dt/τ = b; decay exp(−dt/τ) = e^−0.125.
    w = np.array([[0.5]], dtype=np.float32)
    b = np.array([0.1], dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="spikeforge"):
        net = from_nir(_graph(w, b, _snn_lif(0.875)), dt=DT)
    (n,) = _lif_neurons(net)
    assert n.reset is Reset.ZERO
    assert n.bias == pytest.approx(0.1, rel=1e-6)
    assert net.synapses[0].weight == pytest.approx(5000.0, rel=1e-5)
    # e^−0.125 = 0.8825 is 6 % of (1 − 0.8825) away from 0.875: not a shift leak, said so.
    assert any("not an exact shift leak" in r.getMessage() for r in caplog.records)


def test_inexact_decay_is_still_warned_under_the_snntorch_convention(caplog):
    with caplog.at_level(logging.WARNING, logger="spikeforge"):
        net = from_nir(_graph(np.ones((1, 1)), np.zeros(1), _snn_lif(0.8)), producer="snntorch")
    assert _lif_neurons(net)[0].leak_shift == 2  # 0.75 is the nearest; 0.05 off
    assert any("not an exact shift leak" in r.getMessage() for r in caplog.records)


def test_snntorch_if_tau_inf_is_a_non_leaking_neuron_and_fires_as_snntorch_does():
    # snnTorch Leaky(beta=1) writes tau = r = inf. Weight 7/16 per step, threshold 1, subtract
    # reset, fire on mem > 1: cumulative 7(t+1)/16 gives spikes at t = 2, 4, 6, 9, 11 (t = 7
    # lands on 0.5 + 7/16 = 0.9375, t = 15 would be the first exact landing on 1).
    g = _graph(np.array([[0.4375]]), np.zeros(1), _snn_lif(1.0))
    assert np.isinf(g.nodes["lif"].tau).all() and np.isinf(g.nodes["lif"].r).all()
    net = from_nir(g, producer="snntorch")
    (n,) = _lif_neurons(net)
    assert n.leak is Leak.NONE and n.reset is Reset.SUBTRACT
    assert net.synapses[0].weight == pytest.approx(0.4375)
    # integer copy at scale 16 (the input relay keeps threshold 1 and value 1)
    n.threshold = 16
    net.synapses[0].weight = 7
    for m in net.neurons:
        m.threshold, m.bias = int(m.threshold), int(m.bias)
    res = simulate(net, [(0, t, 1) for t in range(12)], 13)
    got = [t for nid, t in res.spikes if nid == n.id]
    assert got == [t + 1 for t in (2, 4, 6, 9, 11)]  # one step later: through the input relay


def test_tau_inf_with_finite_r_is_refused_by_value():
    lif = nir.LIF(tau=np.array([np.inf]), r=np.array([2.0]), v_leak=np.zeros(1),
                  v_threshold=np.ones(1), v_reset=np.zeros(1))
    with pytest.raises(NIRImportError, match=r"tau\[0\] = inf with r\[0\] = 2.*r/tau = 0"):
        from_nir(_graph(np.ones((1, 1)), np.zeros(1), lif), producer="snntorch")


def test_unknown_producer_and_spike_convention_are_refused():
    g = _graph(np.ones((1, 1)), np.zeros(1), _snn_lif(0.5))
    with pytest.raises(NIRImportError, match="producer = 'lava'.*snntorch"):
        from_nir(g, producer="lava")
    with pytest.raises(NIRImportError, match="spike = 'dirac'.*impulse, step"):
        from_nir(g, spike="dirac")
    assert PRODUCERS["snntorch"].dt == DT


def test_explicit_flags_override_the_producer():
    g = _graph(np.array([[0.5]]), np.zeros(1), _snn_lif(0.875))
    net = from_nir(g, producer="snntorch", reset="zero", spike="impulse")
    (n,) = _lif_neurons(net)
    assert n.reset is Reset.ZERO and net.synapses[0].weight == pytest.approx(5000.0, rel=1e-5)
    # snnTorch's zero reset acts on the next step and drops its input: one refractory step;
    # it fires on mem > θ, which quantization keeps as ⌊θ·s⌋ + 1
    assert n.refractory == 1 and net.metadata["strict_threshold"] == [n.id]


def test_strict_thresholds_survive_quantization():
    # θ = 0.875 and an input of 0.875 (both exact in float32): v = θ must not fire (strict >).
    # At any scale s the integer threshold must exceed the integer input round(0.875·s).
    g = _graph(np.array([[0.875]], dtype=np.float32), np.zeros(1), _snn_lif(0.5, thr=0.875))
    net = from_nir(g, producer="snntorch", reset="zero")
    q, rep = quantize_network(net, preset("up5k"), granularity="layer")
    (n,) = _lif_neurons(q)
    w = next(s.weight for s in q.synapses if s.post == n.id and s.weight != 0)
    assert n.threshold == w + 1 and "strict_threshold" not in q.metadata
    # and the same graph read as non-strict (generic) rounds both to the same integer
    q2, _ = quantize_network(from_nir(g, dt=DT, spike="step", reset="zero"), preset("up5k"),
                             granularity="layer")
    (n2,) = _lif_neurons(q2)
    assert n2.threshold == next(s.weight for s in q2.synapses if s.post == n2.id)


def test_quantization_that_zeroes_thresholds_or_biases_warns_loudly(caplog):
    # Generic reading of an snnTorch file: weights 10⁴× the threshold, so at a scale that fits the
    # weights the threshold 1 and bias 0.1 round to 0.
    g = _graph(np.array([[0.5], [0.7]]), np.array([0.1, 0.1]), _snn_lif(0.875))
    net = from_nir(g, dt=DT)
    with caplog.at_level(logging.WARNING, logger="spikeforge"):
        quantize_network(net, preset("up5k"), granularity="layer")  # 3: the input relay too
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2 of 3 non-zero thresholds to 0" in m for m in msgs), msgs
    assert any("2 of 2 non-zero biases to 0" in m for m in msgs), msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spikeforge"):
        quantize_network(from_nir(g, producer="snntorch"), preset("up5k"), granularity="layer")
    assert not [r for r in caplog.records if "rounded" in r.getMessage()]
