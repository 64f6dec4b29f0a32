"""Seeded random networks and the catalogue of contract edge cases.

Every layer of the verification ladder (reference ⇔ image model ⇔ Amaranth sim ⇔ Verilator
⇔ virtual board ⇔ board) is exercised with the same generators, so a divergence found at one
level can be replayed at every other from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Leak, Network, Reset
from .reference import InputEvent

__all__ = ["Case", "bench_network", "edge_cases", "long_delay_wide_fanout", "random_case", "random_inputs",
           "random_network"]


@dataclass
class Case:
    """A network with the inputs and step count to run it on."""

    name: str
    network: Network
    inputs: list[InputEvent]
    steps: int


def random_network(
    rng: np.random.Generator | int,
    n_neurons: int = 16,
    n_synapses: int = 48,
    *,
    max_delay: int = 8,
    weight_range: tuple[int, int] = (-128, 127),
    threshold_range: tuple[int, int] = (0, 255),
    n_inputs: int | None = None,
    n_outputs: int | None = None,
    all_modes: bool = True,
    potential_bits: int = 16,
) -> Network:
    """A random integer network.

    Parameters
    ----------
    rng
        A generator or a seed.
    n_neurons, n_synapses
        Size (synapses are drawn with replacement, so parallel synapses occur).
    max_delay
        Delays are uniform in ``1..max_delay``.
    weight_range, threshold_range
        Inclusive ranges.
    n_inputs, n_outputs
        Port counts (default: about a quarter of the neurons each, at least one).
    all_modes
        Draw leak, reset, v_min, refractory and bias too; otherwise RISP-like neurons only
        (no leak, reset to zero, no refractory, no bias).
    potential_bits
        Potential width the parameters must fit.
    """
    rng = np.random.default_rng(rng)
    lo = -(1 << (potential_bits - 1))
    hi = (1 << (potential_bits - 1)) - 1
    net = Network(metadata={"provenance": {"generator": "spikeforge.netgen.random_network"}})
    for i in range(n_neurons):
        params: dict[str, object] = {"threshold": int(rng.integers(threshold_range[0], min(threshold_range[1], hi) + 1))}
        if all_modes:
            leak = rng.choice([Leak.NONE, Leak.NONE, Leak.FULL, Leak.SHIFT])
            params["leak"] = Leak(leak)
            if leak == Leak.SHIFT:
                params["leak_shift"] = int(rng.integers(1, 9))
            params["reset"] = Reset(rng.choice([Reset.ZERO, Reset.SUBTRACT]))
            if rng.random() < 0.5:
                params["v_min"] = int(rng.integers(max(lo, -300), 1))
            params["refractory"] = int(rng.choice([0, 0, 1, 2, 5]))
            if rng.random() < 0.25:
                params["bias"] = int(rng.integers(-20, 21))
        net.add_neuron(i, **params)  # type: ignore[arg-type]
    if n_neurons:
        pre = rng.integers(0, n_neurons, n_synapses)
        post = rng.integers(0, n_neurons, n_synapses)
        w = rng.integers(weight_range[0], weight_range[1] + 1, n_synapses)
        d = rng.integers(1, max_delay + 1, n_synapses)
        for a, b, ww, dd in zip(pre, post, w, d, strict=True):
            net.add_synapse(int(a), int(b), int(ww), int(dd))
        k_in = n_inputs if n_inputs is not None else max(1, n_neurons // 4)
        k_out = n_outputs if n_outputs is not None else max(1, n_neurons // 4)
        for i in range(min(k_in, n_neurons)):
            net.add_input(i)
        for i in range(min(k_out, n_neurons)):
            net.add_output(n_neurons - 1 - i)
    return net


def random_inputs(
    rng: np.random.Generator | int,
    network: Network,
    steps: int,
    density: float = 0.2,
    value_range: tuple[int, int] = (-50, 300),
) -> list[InputEvent]:
    """Random ``(input_index, time, value)`` events: each input at each step with ``density``."""
    rng = np.random.default_rng(rng)
    out: list[InputEvent] = []
    for t in range(steps):
        for i in range(len(network.inputs)):
            if rng.random() < density:
                out.append((i, t, int(rng.integers(value_range[0], value_range[1] + 1))))
    return out


def random_case(seed: int, n_neurons: int = 16, n_synapses: int = 48, steps: int = 40, **kw: object) -> Case:
    """A seeded random network with random inputs (replayable at every level from ``seed``)."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, n_neurons, n_synapses, **kw)  # type: ignore[arg-type]
    return Case(f"random-{seed}", net, random_inputs(rng, net, steps), steps)


def _chain(n: int, **params: object) -> Network:
    net = Network()
    for i in range(n):
        net.add_neuron(i, **params)  # type: ignore[arg-type]
    net.add_input(0)
    net.add_output(n - 1)
    return net


def edge_cases(potential_bits: int = 16, max_delay: int = 16, n_max: int = 16) -> list[Case]:
    """The DESIGN.md §4 corners of the neuron contract, each as a small runnable case.

    Parameters
    ----------
    potential_bits
        Potential width the cases must fit (saturation cases push to its ends).
    max_delay
        Longest delay a target supports (the "longest delay" case uses it).
    n_max
        Largest neuron count a target holds (the "full fan-out" case uses it).
    """
    hi = (1 << (potential_bits - 1)) - 1
    lo = -(1 << (potential_bits - 1))
    w_hi = 127
    cases: list[Case] = []

    # Empty network: nothing at all.
    cases.append(Case("empty", Network(), [], 5))

    # One isolated neuron, no synapses: only inputs drive it.
    net = _chain(1, threshold=3)
    cases.append(Case("isolated", net, [(0, 0, 1), (0, 1, 2), (0, 3, 5)], 6))

    # Saturation at the top and bottom of the potential range (events sum exactly, then clamp).
    net = _chain(2, threshold=hi)
    net.neurons[1].threshold = hi
    net.add_synapse(0, 1, w_hi, 1)
    ins = [(0, t, hi) for t in range(3)] + [(0, 5, lo), (0, 6, lo), (0, 7, 1)]
    cases.append(Case("saturation", net, ins, 10))
    net = _chain(1, threshold=hi)
    net.add_input(0, "in1")
    ins = [(0, 0, hi - 10), (0, 1, 1000), (1, 1, -2000), (0, 2, 5), (0, 3, 5), (0, 4, 2000)]
    cases.append(Case("saturation-exact-sum", net, ins, 6))

    # v_min floor applied after leak, before integration.
    net = _chain(1, threshold=10, v_min=-4)
    cases.append(Case("v-min", net, [(0, 0, -10), (0, 1, 0), (0, 2, 14), (0, 3, 0)], 6))
    net = _chain(1, threshold=3, v_min=lo)
    cases.append(Case("v-min-bottom", net, [(0, 0, lo), (0, 1, lo), (0, 2, 5), (0, 3, hi)], 5))

    # Threshold 0: fires on any touch (even weight 0), never untouched.
    net = _chain(2, threshold=0)
    net.add_synapse(0, 1, 0, 2)
    cases.append(Case("threshold-0", net, [(0, 1, 0), (0, 4, -3)], 8))

    # Weight-0 events touch: a neuron charged earlier fires on a zero-weight arrival.
    net = _chain(3, threshold=5)
    net.add_input(1, "in1")
    net.add_synapse(0, 1, 0, 1)
    net.add_synapse(1, 2, 5, 1)
    cases.append(Case("weight-0-touch", net, [(1, 0, 7), (0, 2, 5)], 6))

    # Many events on one target in one step.
    n = min(n_max, 12)
    net = Network()
    for i in range(n):
        net.add_neuron(i, threshold=0)
        net.add_input(i)
    net.add_neuron(n, threshold=200)
    for i in range(n):
        net.add_synapse(i, n, 50 if i % 3 else -20, 1)
    net.add_output(n)
    cases.append(Case("fan-in", net, [(i, 0, 1) for i in range(n)] + [(i, 3, 1) for i in range(0, n, 2)], 6))

    # Longest delay, and every delay at once onto one target.
    net = _chain(2, threshold=0)
    net.add_synapse(0, 1, 1, max_delay)
    cases.append(Case("longest-delay", net, [(0, 0, 0), (0, 1, 0)], max_delay + 4))
    net = _chain(2, threshold=1000 if potential_bits > 11 else 100)
    net.neurons[0].threshold = 0
    for d in range(1, max_delay + 1):
        net.add_synapse(0, 1, 10 * d % 100, d)
    cases.append(Case("all-delays", net, [(0, 0, 0), (0, 3, 0)], max_delay + 6))

    # Full fan-out: one neuron drives every other neuron.
    n = n_max
    net = _chain(n, threshold=1)
    net.neurons[0].threshold = 0
    for j in range(1, n):
        net.add_synapse(0, j, 1 + j % 3, 1 + j % max_delay)
    net.add_output(0, "src")
    cases.append(Case("full-fan-out", net, [(0, 0, 0), (0, 2, 0)], max_delay + 4))

    # Self loop: a neuron that re-excites itself every step.
    net = _chain(1, threshold=1)
    net.add_synapse(0, 0, 1, 1)
    cases.append(Case("self-loop", net, [(0, 0, 1)], 8))

    # Every reset and leak mode.
    for reset in Reset:
        for leak, k in ((Leak.NONE, 1), (Leak.FULL, 1), (Leak.SHIFT, 1), (Leak.SHIFT, 3)):
            net = _chain(1, threshold=10, reset=reset, leak=leak, leak_shift=k)
            ins = [(0, 0, 25), (0, 1, 0), (0, 2, 4), (0, 3, 4), (0, 5, -7), (0, 6, 0), (0, 9, 0)]
            name = f"reset-{reset.value}-leak-{leak.value}" + (f"{k}" if leak is Leak.SHIFT else "")
            cases.append(Case(name, net, ins, 14))
    net = _chain(1, threshold=1000, leak=Leak.SHIFT, leak_shift=1)
    cases.append(Case("shift-leak-negative", net, [(0, 0, -100), (0, 8, 0), (0, 10, 1000)], 12))

    # Refractory: inputs and bias ignored for r steps after a spike.
    net = _chain(1, threshold=3, refractory=2)
    cases.append(Case("refractory", net, [(0, t, 5) for t in range(8)], 10))
    net = _chain(1, threshold=4, refractory=1, bias=2)
    cases.append(Case("refractory-bias", net, [], 12))

    # Bias alone touches and drives; negative bias with a floor.
    net = _chain(1, threshold=5, bias=2)
    cases.append(Case("bias", net, [], 10))
    net = _chain(1, threshold=5, bias=-3, v_min=-7)
    cases.append(Case("bias-negative", net, [(0, 4, 20)], 8))
    return cases


def bench_network(neurons: int = 1000, synapses: int = 20000, seed: int = 0,
                  max_delay: int = 16) -> tuple[Network, list[InputEvent]]:
    """A random integer network with sustained activity, and the inputs that start it.

    Uniform random ``pre``/``post``; delays uniform in ``1..max_delay``; weights uniform in
    ``-7..8``; thresholds in ``8..16``; ``v_min = -16``; no leak. With a fan-out of 20 this
    keeps roughly a fifth of the neurons firing each step once 5 % of them (the inputs) are
    kicked for the first 5 steps.
    """
    rng = np.random.default_rng(seed)
    thr = rng.integers(8, 17, neurons)
    pre = rng.integers(0, neurons, synapses)
    post = rng.integers(0, neurons, synapses)
    w = rng.integers(-7, 9, synapses)
    d = rng.integers(1, max_delay + 1, synapses)
    net = Network()
    for i in range(neurons):
        net.add_neuron(i, threshold=int(thr[i]), v_min=-16)
    for a, b, c, e in zip(pre.tolist(), post.tolist(), w.tolist(), d.tolist(), strict=True):
        net.add_synapse(a, b, c, e)
    n_in = max(1, neurons // 20)
    for i in range(n_in):
        net.add_input(i)
    net.metadata["provenance"] = {"generator": "spikeforge bench_network", "seed": seed}
    inputs = [(k, t, 20) for k in range(n_in) for t in range(5)]
    return net, inputs


def long_delay_wide_fanout(seed: int = 0, neurons: int = 600, hubs: int = 20, fan_out: int = 300,
                           max_delay: int = 60) -> Network:
    """Float weights; ``hubs`` neurons with ``fan_out`` synapses each, of delays 1..``max_delay``;
    plus 4 random synapses per neuron of delays 1..16."""
    rng = np.random.default_rng(seed)
    net = Network(metadata={"provenance": {"generator": "spikeforge bench compile", "seed": seed}})
    for i in range(neurons):
        net.add_neuron(i, threshold=float(rng.uniform(0.5, 3.0)))
    for h in range(hubs):
        for t in rng.choice(neurons, fan_out, replace=False).tolist():
            net.add_synapse(h, int(t), float(rng.normal(0.4, 0.3)), int(rng.integers(1, max_delay + 1)))
    for _ in range(4 * neurons):
        a, b = rng.integers(0, neurons, 2).tolist()
        net.add_synapse(a, b, float(rng.normal(0.2, 0.4)), int(rng.integers(1, 17)))
    for i in range(hubs):
        net.add_input(i)
    for i in range(neurons - 30, neurons):
        net.add_output(i)
    return net
