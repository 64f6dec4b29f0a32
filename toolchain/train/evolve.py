"""Hardware-aware evolutionary training of spiking networks (EONS-class).

The genome is an IR :class:`~spikeforge.toolchain.ir.Network`; evolution runs on the bit-exact
reference model and every individual stays inside a :class:`~spikeforge.hdl.config.CoreConfig`
(field widths, delays, neuron and synapse budgets, accumulator fan-in), so the winner loads
onto the core with no quantization step and no loss.

Genome layout
-------------
The first ``I`` neurons are the input neurons (fixed: θ = 1 relays, or the task's
``new_network()`` ones; never a synapse onto them), the next ``O`` the output neurons, then
hidden neurons. Every parameter of output
and hidden neurons (threshold, leak none/full/shift k, refractory, bias) and of synapses
(weight, delay) is searched within :class:`Limits`.

Operators (relative rates in :class:`EvolveConfig`)
---------------------------------------------------
``add_neuron`` (a hidden neuron wired in: one synapse in, one out), ``remove_neuron``,
``add_synapse``, ``remove_synapse``, ``threshold``, ``weight`` (Gaussian step or fresh draw),
``delay``, ``leak``, ``reset`` (zero ↔ subtract), ``refractory``, ``bias``. A child gets ``1 + Poisson(mutations - 1)``
operators. Crossover is a *merge* in the EONS spirit: the child takes the shared inputs and
outputs (output parameters from either parent), the hidden neurons of both parents, and each
synapse of the union with probability ½ (synapses both parents have are kept); it is then
repaired back into the budgets.

Selection: elitism (the ``elites`` best survive unchanged), tournament of ``tournament`` on the
score ``fitness − size_penalty · size`` (size = neurons + synapses). Every generation's
(fitness, size) points feed a Pareto archive (higher fitness, smaller size).

Runs are reproducible: all randomness comes from one ``numpy`` Generator seeded with ``seed``;
the evaluation seed of generation ``g`` is derived from ``(seed, g)``; fitness never depends on
how the population is split over workers. A checkpoint (JSON: population, fitness, RNG state,
history, best, Pareto archive) is written every generation, and :func:`evolve` with
``resume=True`` continues from it exactly.

Example
-------
>>> from spikeforge.hdl.config import preset
>>> from spikeforge.toolchain.train.tasks import XorTask
>>> res = evolve(XorTask(), preset("tiny"), EvolveConfig(population=20), generations=3,
...              seed=1, progress=False)
>>> 0.0 <= res.best_fitness <= 1.0
True
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.codec import attach_io
from spikeforge.toolchain.compiler import design_rule_check
from spikeforge.toolchain.fsutil import write_atomic
from spikeforge.toolchain.ir import (
    Leak,
    Network,
    NetworkError,
    Neuron,
    Reset,
    Synapse,
    read_json_file,
)

from .parallel import EvolveError, SerialEvaluator

__all__ = [
    "CHECKPOINT_FORMAT",
    "EvolveConfig",
    "EvolveError",
    "EvolveResult",
    "Limits",
    "check_limits",
    "crossover",
    "evolve",
    "hardware_check",
    "initial_network",
    "load_checkpoint",
    "mutate",
    "network_size",
    "pareto_front",
    "repair",
    "tournament",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "spikeforge.evolve-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.json"

OPERATORS = ("add_neuron", "remove_neuron", "add_synapse", "remove_synapse", "threshold", "weight",
             "delay", "leak", "reset", "refractory", "bias")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class EvolveConfig:
    """Evolution settings (all JSON-able; stored in checkpoints).

    Parameters
    ----------
    population
        Individuals per generation.
    elites
        Best individuals copied unchanged into the next generation.
    tournament
        Tournament size of parent selection.
    crossover_rate
        Probability that a child is a merge of two parents (then mutated).
    mutations
        Mean number of operators applied to a child (at least one).
    rates
        Relative rate of each operator (:data:`OPERATORS`); missing ones are 0.
    start_hidden
        Hidden neurons of a starting network.
    start_synapses
        Random synapses of a starting network; ``-1``: every input to every output.
    size_penalty
        ``c`` of the score ``fitness − c · size`` used for selection.
    max_neurons, max_synapses
        Budgets below the core's (None: the core's).
    threshold_max
        Largest threshold searched (None: ``2 · (2**(weight_bits-1) - 1)``, capped by the core).
    max_delay
        Longest delay searched (None: the core's ``max_delay``).
    refractory_max
        Longest refractory period searched (capped by the core's width).
    weight_sigma
        Standard deviation of a weight step, as a fraction of the weight range.
    """

    population: int = 100
    elites: int = 2
    tournament: int = 3
    crossover_rate: float = 0.2
    mutations: float = 2.0
    rates: dict[str, float] = field(default_factory=lambda: {
        "add_neuron": 0.04, "remove_neuron": 0.03, "add_synapse": 0.12, "remove_synapse": 0.08,
        "threshold": 0.2, "weight": 0.45, "delay": 0.03, "leak": 0.03, "reset": 0.02, "refractory": 0.01,
        "bias": 0.0})
    start_hidden: int = 0
    start_synapses: int = -1
    size_penalty: float = 0.0
    max_neurons: int | None = None
    max_synapses: int | None = None
    threshold_max: int | None = None
    max_delay: int | None = None
    refractory_max: int = 3
    weight_sigma: float = 0.08

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise EvolveError(f"evolve setting {name} = {getattr(self, name)!r} is invalid; allowed: {allowed}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        need("population", is_int(self.population) and self.population >= 2, "an integer >= 2")
        need("elites", is_int(self.elites) and 0 <= self.elites < self.population, "0 .. population-1")
        need("tournament", is_int(self.tournament) and self.tournament >= 1, "an integer >= 1")
        need("crossover_rate", 0.0 <= self.crossover_rate <= 1.0, "a number in 0..1")
        need("mutations", self.mutations >= 1.0, "a number >= 1")
        need("start_hidden", is_int(self.start_hidden) and self.start_hidden >= 0, "an integer >= 0")
        need("start_synapses", is_int(self.start_synapses) and self.start_synapses >= -1, "-1 or an integer >= 0")
        need("size_penalty", self.size_penalty >= 0 and math.isfinite(self.size_penalty), "a number >= 0")
        need("weight_sigma", 0 < self.weight_sigma <= 1, "a number in (0, 1]")
        need("refractory_max", is_int(self.refractory_max) and self.refractory_max >= 0, "an integer >= 0")
        for name in ("max_neurons", "max_synapses", "threshold_max", "max_delay"):
            v = getattr(self, name)
            need(name, v is None or (is_int(v) and v >= 1), "null or an integer >= 1")
        bad = sorted(set(self.rates) - set(OPERATORS))
        if bad:
            raise EvolveError(f"evolve setting rates: unknown operator {bad[0]!r}; allowed: {', '.join(OPERATORS)}")
        if any(not (isinstance(v, int | float) and v >= 0) for v in self.rates.values()) or not sum(self.rates.values()) > 0:
            raise EvolveError(f"evolve setting rates = {self.rates!r}: each rate must be >= 0 and one > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvolveConfig:
        """Inverse of :meth:`to_dict` (unknown keys are refused)."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise EvolveError(f"evolve settings: unknown key {bad[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(**d)


@dataclass(frozen=True)
class Limits:
    """What one individual may hold: the core's budgets and field ranges (plus search caps)."""

    n_inputs: int
    n_outputs: int
    max_neurons: int
    max_synapses: int
    weight: tuple[int, int]
    threshold: tuple[int, int]
    delay: tuple[int, int]
    refractory: tuple[int, int]
    bias: tuple[int, int]
    shift: tuple[int, int]
    fan_in: int
    v_min: int

    @classmethod
    def of(cls, core: CoreConfig, cfg: EvolveConfig, n_inputs: int, n_outputs: int,
           input_value: int = 1) -> Limits:
        """Limits for a task's I/O on ``core`` with the search caps of ``cfg``.

        Raises
        ------
        EvolveError
            When the task's inputs and outputs alone do not fit the budgets.
        """
        lim = core.limits()
        wmax = lim.weight[1]
        thr = min(lim.threshold[1], cfg.threshold_max if cfg.threshold_max is not None else 2 * wmax)
        bb = lim.bias[1] + 1
        n_max = min(lim.neurons, cfg.max_neurons or lim.neurons)
        s_max = min(lim.synapses, cfg.max_synapses or lim.synapses)
        if n_inputs + n_outputs > n_max:
            raise EvolveError(f"the task needs {n_inputs} inputs + {n_outputs} outputs = {n_inputs + n_outputs} "
                              f"neurons; the budget is {n_max} (core {core.name!r}, max_neurons)")
        acc = lim.fan_in[1]
        return cls(
            n_inputs=n_inputs, n_outputs=n_outputs, max_neurons=n_max, max_synapses=s_max,
            weight=(-wmax - 1, wmax), threshold=(0, thr),
            delay=(1, min(lim.delay[1], cfg.max_delay or lim.delay[1])),
            refractory=(0, min(lim.refractory[1], cfg.refractory_max)),
            bias=(-min(bb, thr), min(bb - 1, thr)), shift=(1, min(8, core.potential_bits - 1)),
            fan_in=acc - abs(input_value), v_min=-thr)


def network_size(net: Network) -> int:
    """Neurons + synapses (the size of the size penalty and the Pareto front)."""
    return len(net.neurons) + len(net.synapses)


# --------------------------------------------------------------------------- genome ops
def _clone(net: Network) -> Network:
    """A deep copy, faster than ``copy.deepcopy`` for the IR's flat dataclasses."""
    return Network(
        neurons=[copy.copy(n) for n in net.neurons], synapses=[copy.copy(s) for s in net.synapses],
        inputs=[copy.copy(p) for p in net.inputs], outputs=[copy.copy(p) for p in net.outputs],
        metadata=copy.deepcopy(net.metadata))


def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _random_neuron(nid: int, lim: Limits, rng: np.random.Generator) -> Neuron:
    lo, hi = lim.threshold
    reset = Reset.SUBTRACT if rng.random() < 0.5 else Reset.ZERO
    return Neuron(id=nid, threshold=_ri(rng, max(lo, 1), max(1, hi // 2)), v_min=lim.v_min, reset=reset)


def _random_synapse(pre: int, post: int, lim: Limits, rng: np.random.Generator) -> Synapse:
    return Synapse(pre=pre, post=post, weight=_ri(rng, *lim.weight), delay=1)


def _hidden_ids(net: Network, lim: Limits) -> list[int]:
    return [n.id for n in net.neurons[lim.n_inputs + lim.n_outputs:]]


def initial_network(lim: Limits, cfg: EvolveConfig, rng: np.random.Generator,
                    codec: tuple[Any, Any] | None = None, metadata: dict[str, Any] | None = None,
                    template: Network | None = None) -> Network:
    """A random starting network: the I/O neurons, ``start_hidden`` hidden ones and synapses.

    Parameters
    ----------
    lim
        Budgets and ranges.
    cfg
        ``start_hidden`` and ``start_synapses`` (``-1``: every input to every output).
    rng
        Randomness.
    codec
        ``(encoder, decoder)`` recorded with :func:`~spikeforge.toolchain.codec.attach_io`.
    metadata
        More metadata (a task's ``metadata``).
    template
        A task's ``new_network()``: its input neurons, output neurons, port names, parameters
        and metadata are kept (its first ``n_inputs`` neurons must be the input ports' neurons
        in port order, the next ``n_outputs`` the output ports'); otherwise inputs are relays
        named ``in<k>`` and outputs random neurons named ``out<k>``.

    Raises
    ------
    EvolveError
        When ``template`` does not have that layout.
    """
    ni, no = lim.n_inputs, lim.n_outputs
    if template is not None:
        net = _clone(template)
        ids = net.neuron_ids
        if [p.neuron for p in net.inputs] != ids[:ni] or [p.neuron for p in net.outputs] != ids[ni:ni + no]:
            raise EvolveError(f"the task's new_network() must start with its {ni} input neurons, then its "
                              f"{no} output neurons, in port order; got inputs {[p.neuron for p in net.inputs]}, "
                              f"outputs {[p.neuron for p in net.outputs]}, neurons {ids[:ni + no]}")
    else:
        net = Network()
        for i in range(ni):
            net.add_neuron(i, threshold=1, name=f"in{i}")
            net.add_input(i)
        for k in range(no):
            n = _random_neuron(ni + k, lim, rng)
            n.name = f"out{k}"
            net.neurons.append(n)
            net.add_output(ni + k)
    top = max(net.neuron_ids)
    for h in range(min(cfg.start_hidden, lim.max_neurons - len(net.neurons))):
        net.neurons.append(_random_neuron(top + 1 + h, lim, rng))
    ids = net.neuron_ids
    posts = ids[ni:]
    if cfg.start_synapses == -1:
        for i in ids[:ni]:
            for o in ids[ni:ni + no]:
                net.synapses.append(_random_synapse(i, o, lim, rng))
    else:
        for _ in range(cfg.start_synapses):
            net.synapses.append(_random_synapse(ids[int(rng.integers(len(ids)))],
                                                posts[int(rng.integers(len(posts)))], lim, rng))
    if metadata:
        net.metadata.update(copy.deepcopy(metadata))
    if codec is not None and "io" not in net.metadata:
        attach_io(net, codec[0], codec[1])
    return repair(net, lim, rng)


def _step(rng: np.random.Generator, v: int, span: tuple[int, int], sigma: float) -> int:
    lo, hi = span
    return int(min(hi, max(lo, v + round(float(rng.normal(0.0, max(1.0, sigma * (hi - lo))))))))


def mutate(net: Network, lim: Limits, cfg: EvolveConfig, rng: np.random.Generator) -> Network:
    """A mutated copy of ``net`` (``1 + Poisson(mutations − 1)`` operators), repaired to ``lim``."""
    child = _clone(net)
    ops = [o for o in OPERATORS if cfg.rates.get(o, 0) > 0]
    p = np.array([cfg.rates[o] for o in ops], dtype=float)
    p /= p.sum()
    count = 1 + int(rng.poisson(cfg.mutations - 1.0))
    for _ in range(count):
        _apply(child, ops[int(rng.choice(len(ops), p=p))], lim, cfg, rng)
    return repair(child, lim, rng)


def _apply(net: Network, op: str, lim: Limits, cfg: EvolveConfig, rng: np.random.Generator) -> None:
    io = lim.n_inputs + lim.n_outputs
    ids = net.neuron_ids
    posts = ids[lim.n_inputs:]
    mutable = net.neurons[lim.n_inputs:]  # outputs and hidden
    if op == "add_neuron":
        if len(net.neurons) >= lim.max_neurons or len(net.synapses) + 2 > lim.max_synapses:
            return
        nid = max(ids) + 1
        net.neurons.append(_random_neuron(nid, lim, rng))
        net.synapses.append(_random_synapse(ids[int(rng.integers(len(ids)))], nid, lim, rng))
        net.synapses.append(_random_synapse(nid, posts[int(rng.integers(len(posts)))], lim, rng))
    elif op == "remove_neuron":
        hidden = ids[io:]
        if hidden:
            gone = hidden[int(rng.integers(len(hidden)))]
            net.neurons = [n for n in net.neurons if n.id != gone]
            net.synapses = [s for s in net.synapses if s.pre != gone and s.post != gone]
    elif op == "add_synapse":
        if len(net.synapses) < lim.max_synapses:
            post = posts[int(rng.integers(len(posts)))] if posts else None
            if post is not None:
                net.synapses.append(_random_synapse(ids[int(rng.integers(len(ids)))], post, lim, rng))
    elif op == "remove_synapse":
        if net.synapses:
            del net.synapses[int(rng.integers(len(net.synapses)))]
    elif op == "weight":
        if net.synapses:
            s = net.synapses[int(rng.integers(len(net.synapses)))]
            s.weight = (_ri(rng, *lim.weight) if rng.random() < 0.1
                        else _step(rng, int(s.weight), lim.weight, cfg.weight_sigma))
    elif op == "delay":
        if net.synapses:
            s = net.synapses[int(rng.integers(len(net.synapses)))]
            s.delay = int(min(lim.delay[1], max(lim.delay[0], s.delay + (1 if rng.random() < 0.5 else -1))))
    elif mutable:
        n = mutable[int(rng.integers(len(mutable)))]
        if op == "threshold":
            n.threshold = (_ri(rng, *lim.threshold) if rng.random() < 0.1
                           else _step(rng, int(n.threshold), lim.threshold, cfg.weight_sigma))
        elif op == "leak":
            kind = int(rng.integers(3))
            n.leak = (Leak.NONE, Leak.FULL, Leak.SHIFT)[kind]
            n.leak_shift = _ri(rng, *lim.shift) if kind == 2 else 1
        elif op == "reset":
            n.reset = Reset.ZERO if n.reset is Reset.SUBTRACT else Reset.SUBTRACT
        elif op == "refractory":
            n.refractory = _ri(rng, *lim.refractory)
        elif op == "bias":
            n.bias = 0 if n.bias and rng.random() < 0.5 else _ri(rng, *lim.bias)


def crossover(a: Network, b: Network, lim: Limits, rng: np.random.Generator) -> Network:
    """Merge two parents (see the module docstring) and repair the child to ``lim``."""
    io = lim.n_inputs + lim.n_outputs
    child = _clone(a)
    for k in range(lim.n_inputs, io):  # output parameters from either parent
        if rng.random() < 0.5:
            src = b.neurons[k]
            child.neurons[k] = copy.copy(src)
    remap = {n.id: n.id for n in b.neurons[:io]}
    top = max(child.neuron_ids)
    for n in b.neurons[io:]:
        top += 1
        remap[n.id] = top
        nn = copy.copy(n)
        nn.id = top
        child.neurons.append(nn)
    keys_a = {(s.pre, s.post, s.weight, s.delay) for s in a.synapses}
    keys_b = {(remap[s.pre], remap[s.post], s.weight, s.delay) for s in b.synapses}
    syns = []
    for key in sorted(keys_a | keys_b):
        if (key in keys_a and key in keys_b) or rng.random() < 0.5:
            syns.append(Synapse(pre=key[0], post=key[1], weight=key[2], delay=key[3]))
    child.synapses = syns
    # Drop hidden neurons left without any synapse.
    used = {s.pre for s in syns} | {s.post for s in syns}
    child.neurons = child.neurons[:io] + [n for n in child.neurons[io:] if n.id in used]
    return repair(child, lim, rng)


def repair(net: Network, lim: Limits, rng: np.random.Generator) -> Network:
    """Bring ``net`` inside ``lim`` (in place; returns it): budgets, ranges, fan-in.

    Extra hidden neurons and synapses are dropped at random; parameters are clamped; synapses
    onto input neurons are dropped; a neuron whose ``Σ|w|`` fan-in could overflow the
    accumulator loses random incoming synapses.
    """
    io = lim.n_inputs + lim.n_outputs
    while len(net.neurons) > lim.max_neurons:
        gone = net.neurons.pop(io + int(rng.integers(len(net.neurons) - io))).id
        net.synapses = [s for s in net.synapses if s.pre != gone and s.post != gone]
    inputs = set(net.neuron_ids[:lim.n_inputs])
    net.synapses = [s for s in net.synapses if s.post not in inputs]
    while len(net.synapses) > lim.max_synapses:
        del net.synapses[int(rng.integers(len(net.synapses)))]

    def clamp(v: int, span: tuple[int, int]) -> int:
        return int(min(span[1], max(span[0], int(v))))

    for n in net.neurons[lim.n_inputs:]:
        n.threshold = clamp(n.threshold, lim.threshold)
        n.refractory = clamp(n.refractory, lim.refractory)
        n.bias = clamp(n.bias, lim.bias)
        n.leak_shift = clamp(n.leak_shift, lim.shift) if n.leak is Leak.SHIFT else 1
        n.v_min = lim.v_min
    for s in net.synapses:
        s.weight = clamp(s.weight, lim.weight)
        s.delay = clamp(s.delay, lim.delay)
    fan: dict[int, int] = {}
    for s in net.synapses:
        fan[s.post] = fan.get(s.post, 0) + abs(int(s.weight))
    if fan and max(fan.values()) > lim.fan_in:
        for post in [p for p, f in fan.items() if f > lim.fan_in]:
            while fan[post] > lim.fan_in:
                mine = [k for k, s in enumerate(net.synapses) if s.post == post]
                k = mine[int(rng.integers(len(mine)))]
                fan[post] -= abs(int(net.synapses[k].weight))
                del net.synapses[k]
    return net


def check_limits(net: Network, lim: Limits) -> None:
    """Raise :class:`EvolveError` naming the first element of ``net`` outside ``lim``."""
    net.validate()
    if len(net.neurons) > lim.max_neurons or len(net.synapses) > lim.max_synapses:
        raise EvolveError(f"network has {len(net.neurons)} neurons / {len(net.synapses)} synapses; "
                          f"budget {lim.max_neurons} / {lim.max_synapses}")
    for n in net.neurons[lim.n_inputs:]:
        for name, span in (("threshold", lim.threshold), ("refractory", lim.refractory), ("bias", lim.bias)):
            v = getattr(n, name)
            if not span[0] <= v <= span[1]:
                raise EvolveError(f"neuron {n.id}: {name} = {v} outside {span[0]}..{span[1]}")
    fan: dict[int, int] = {}
    for k, s in enumerate(net.synapses):
        if not (lim.weight[0] <= s.weight <= lim.weight[1] and lim.delay[0] <= s.delay <= lim.delay[1]):
            raise EvolveError(f"synapse #{k} ({s.pre}->{s.post}): weight {s.weight} / delay {s.delay} "
                              f"outside {lim.weight} / {lim.delay}")
        fan[s.post] = fan.get(s.post, 0) + abs(int(s.weight))
    if fan and max(fan.values()) > lim.fan_in:
        raise EvolveError(f"fan-in Σ|w| = {max(fan.values())} over the accumulator limit {lim.fan_in}")


def hardware_check(net: Network, core: CoreConfig) -> None:
    """The compiler's design-rule check of ``net`` on ``core`` (nothing may need changing).

    Raises
    ------
    EvolveError
        Listing what does not fit ``core``.
    """
    rep = design_rule_check(net, core)
    if not rep.ok:
        raise EvolveError(f"network fails the design-rule check for core {core.name!r}: "
                          + "; ".join(str(v) for v in rep.violations[:3]))


# --------------------------------------------------------------------------- selection
def tournament(scores: np.ndarray, k: int, rng: np.random.Generator) -> int:
    """Index of the best of ``k`` individuals drawn at random (ties: the first drawn)."""
    pick = rng.integers(0, len(scores), size=k)
    return int(pick[int(np.argmax(scores[pick]))])


def pareto_front(points: Sequence[tuple[float, int]]) -> list[int]:
    """Indices of the non-dominated ``(fitness, size)`` points (higher fitness, smaller size).

    Among equal points only the first is kept. Sorted by size.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    front, best = [], -math.inf
    for i in order:
        f = points[i][0]
        if f > best:
            front.append(i)
            best = f
    return front


# --------------------------------------------------------------------------- the run
@dataclass
class EvolveResult:
    """Outcome of :func:`evolve`.

    Attributes
    ----------
    best
        The best network found (codec metadata and provenance in its metadata).
    best_fitness, best_generation
        Its fitness and the generation it was evaluated in.
    history
        Per generation: ``generation``, ``best``, ``mean``, ``best_size``, ``errors``,
        ``evaluations``, ``seconds``.
    pareto
        ``[{"fitness", "size", "network"}]``, the non-dominated individuals seen.
    info
        The task's ``info(best)`` (e.g. test accuracy), or ``{}``.
    generations
        Generations evaluated in total (including before a resume).
    """

    best: Network
    best_fitness: float
    best_generation: int
    history: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    generations: int = 0
    errors: list[str] = field(default_factory=list)


def _eval_seed(seed: int, generation: int) -> int:
    return int(np.random.SeedSequence([seed, generation]).generate_state(1)[0])


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _save_json(path: Path, doc: Any) -> None:
    write_atomic(path, json.dumps(doc, separators=(",", ":")))


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Read and check ``run_dir/checkpoint.json``.

    Raises
    ------
    EvolveError
        When it is missing, not a spikeforge evolve checkpoint, or of another version.
    """
    p = Path(run_dir) / CHECKPOINT_FILE
    if not p.exists():
        raise EvolveError(f"{p}: no checkpoint here; is {run_dir} a run directory?")
    doc = read_json_file(p, EvolveError, "checkpoint")
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise EvolveError(f"{p}: not a spikeforge evolve checkpoint (field 'format' must be {CHECKPOINT_FORMAT!r})")
    if doc.get("version") != CHECKPOINT_VERSION:
        raise EvolveError(f"{p}: checkpoint version {doc.get('version')!r}; this spikeforge reads {CHECKPOINT_VERSION}")
    return doc


def evolve(
    task: Any,
    core: CoreConfig,
    config: EvolveConfig | None = None,
    *,
    generations: int = 50,
    seed: int = 0,
    evaluator: Any = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    target_fitness: float | None = None,
    on_generation: Callable[[int, Network, float], bool | None] | None = None,
    task_spec: str | None = None,
    time_limit: float | None = None,
    initial: Sequence[Network] | None = None,
) -> EvolveResult:
    """Evolve networks for ``task`` that fit ``core``.

    Parameters
    ----------
    task
        A task (:mod:`spikeforge.toolchain.train.tasks` protocol).
    core
        The core every individual must fit.
    config
        Evolution settings (ignored on resume: the checkpoint's are used).
    generations
        Total generations (a resumed run continues up to this number).
    seed
        Seed of the whole run (ignored on resume).
    evaluator
        A :mod:`~spikeforge.toolchain.train.parallel` evaluator (default: in-process).
    run_dir
        Directory for ``checkpoint.json`` (every generation), ``fitness.png`` and
        ``pareto.json``; None for no files.
    resume
        Continue the run in ``run_dir``.
    overwrite
        Start afresh in a ``run_dir`` that already holds a run's checkpoint (without it, or
        ``resume``, such a run is refused: nothing is lost by forgetting ``--resume``).
    progress
        Show a tqdm bar with best/mean fitness.
    target_fitness
        Stop once the best fitness reaches this.
    on_generation
        Called as ``f(generation, best_of_generation, its_fitness)``; returning True stops.
    task_spec
        How the task was named (recorded; a resume checks it matches).
    time_limit
        Stop after this many seconds (checked between generations).
    initial
        Starting networks (e.g. a controller to refine): generation 0 holds them, repaired
        into the limits with the task's codec recorded, and mutants of them fill the rest of
        the population (ignored on resume). Their first ``n_inputs`` neurons must be the
        inputs and the next ``n_outputs`` the outputs, as in a genome.

    Raises
    ------
    EvolveError
        Bad settings, an unusable checkpoint, or a whole generation that failed to evaluate.
    """
    from tqdm import tqdm

    if not isinstance(generations, int) or generations < 1:
        raise EvolveError(f"generations = {generations!r} is invalid; allowed: an integer >= 1")
    own_eval = evaluator is None
    evaluator = evaluator or SerialEvaluator(task)
    rdir = Path(run_dir) if run_dir is not None else None
    spec = task_spec or getattr(task, "name", "task")
    codec = task.codec() if hasattr(task, "codec") else None
    extra = getattr(task, "metadata", None) or {}
    in_value = int(codec[0].value) if codec is not None else 1

    if not resume and not overwrite and rdir is not None and (rdir / CHECKPOINT_FILE).exists():
        raise EvolveError(f"{rdir} already holds a run ({CHECKPOINT_FILE}); continue it with --resume {rdir}, "
                          "start afresh with --overwrite, or give another run directory")
    if resume:
        if rdir is None:
            raise EvolveError("resume needs the run directory")
        doc = load_checkpoint(rdir)
        if doc["task"] != spec:
            raise EvolveError(f"{rdir}: the checkpoint is for task {doc['task']!r}, not {spec!r}")
        config = EvolveConfig.from_dict(doc["config"])
        core = CoreConfig.from_dict(doc["core"])
        seed = int(doc["seed"])
        rng = np.random.default_rng()
        rng.bit_generator.state = doc["rng"]
        gen = int(doc["generation"])
        next_id = int(doc["next_id"])
        pop = [Network.from_dict(d["network"]) for d in doc["population"]]
        ids = [int(d["id"]) for d in doc["population"]]
        fit = np.array([-math.inf if d["fitness"] is None else d["fitness"] for d in doc["population"]])
        history, pareto, errors = doc["history"], doc["pareto"], doc.get("errors", [])
        best_doc = doc["best"]
        best = Network.from_dict(best_doc["network"])
        best_fit, best_gen = float(best_doc["fitness"]), int(best_doc["generation"])
        log.info("resuming %s at generation %d", rdir, gen + 1)
    else:
        config = config or EvolveConfig()
        rng = np.random.default_rng(seed)
        gen, next_id = -1, 0
        pop, ids = [], []
        fit = np.zeros(0)
        history, pareto, errors = [], [], []
        best, best_fit, best_gen = None, -math.inf, -1
    lim = Limits.of(core, config, task.n_inputs, task.n_outputs, in_value)
    if rdir is not None:
        rdir.mkdir(parents=True, exist_ok=True)

    def checkpoint() -> None:
        if rdir is None:
            return
        _save_json(rdir / CHECKPOINT_FILE, {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "task": spec,
            "config": config.to_dict(), "core": core.to_dict(), "seed": seed, "generation": gen,
            "rng": rng.bit_generator.state, "next_id": next_id,
            "population": [{"id": i, "fitness": _finite(f), "network": n.to_dict()}
                           for i, n, f in zip(ids, pop, fit, strict=True)],
            "history": history, "pareto": pareto, "errors": errors[-100:],
            "best": {"fitness": best_fit, "generation": best_gen, "network": best.to_dict()},
        })

    def breed() -> tuple[list[Network], list[int]]:
        score = fit - config.size_penalty * np.array([network_size(n) for n in pop])
        elite = [int(i) for i in np.argsort(-score, kind="stable")[:config.elites]]
        nxt = [pop[i] for i in elite]
        while len(nxt) < config.population:
            a = pop[tournament(score, config.tournament, rng)]
            if rng.random() < config.crossover_rate:
                b = pop[tournament(score, config.tournament, rng)]
                child = mutate(crossover(a, b, lim, rng), lim, config, rng)
            else:
                child = mutate(a, lim, config, rng)
            nxt.append(child)
        return nxt, [ids[i] for i in elite]

    start = time.perf_counter()
    bar = tqdm(total=generations, initial=gen + 1, desc=f"evolve {spec}", unit="gen",
               disable=not progress, dynamic_ncols=True, leave=False)
    try:
        while gen + 1 < generations:
            if gen >= 0 and target_fitness is not None and best_fit >= target_fitness:
                break
            if time_limit is not None and time.perf_counter() - start > time_limit:
                log.warning("time limit of %.0f s reached after generation %d", time_limit, gen)
                break
            t0 = time.perf_counter()
            if gen < 0:
                template = task.new_network() if hasattr(task, "new_network") else None
                pop = (_seeded_population(initial, lim, config, rng, codec, extra) if initial else
                       [initial_network(lim, config, rng, codec, extra, template) for _ in range(config.population)])
                new_ids = list(range(config.population))
            else:
                pop, elite_ids = breed()
                new_ids = elite_ids + list(range(next_id, next_id + config.population - config.elites))
            next_id = max(next_id, max(new_ids) + 1)
            ids = new_ids
            gen += 1
            fit, errs = evaluator.evaluate(pop, ids, _eval_seed(seed, gen))
            for e in errs:
                msg = f"generation {gen}: {e}"
                log.warning("%s", msg)
                errors.append(msg)
            ok = np.isfinite(fit)
            if not ok.any():
                raise EvolveError(f"generation {gen}: every individual failed to evaluate; first error: "
                                  f"{errs[0] if errs else 'no fitness'}")
            k = int(np.argmax(np.where(ok, fit, -math.inf)))
            if fit[k] > best_fit:
                best, best_fit, best_gen = _clone(pop[k]), float(fit[k]), gen
            sizes = [network_size(n) for n in pop]
            cand = [(p["fitness"], p["size"]) for p in pareto] + [(float(f), s) for f, s in zip(fit, sizes, strict=True) if math.isfinite(f)]
            nets = [p["network"] for p in pareto] + [n for n, f in zip(pop, fit, strict=True) if math.isfinite(f)]
            pareto = [{"fitness": cand[i][0], "size": cand[i][1],
                       "network": nets[i] if isinstance(nets[i], dict) else nets[i].to_dict()}
                      for i in pareto_front(cand)]
            history.append({"generation": gen, "best": float(fit[k]), "mean": float(fit[ok].mean()),
                            "best_size": sizes[k], "errors": len(errs), "evaluations": len(pop),
                            "seconds": round(time.perf_counter() - t0, 4)})
            checkpoint()
            bar.update(1)
            bar.set_postfix(best=f"{best_fit:.4g}", mean=f"{fit[ok].mean():.4g}", size=sizes[k])
            if on_generation is not None and on_generation(gen, pop[k], float(fit[k])):
                break
    finally:
        bar.close()
        if own_eval:
            evaluator.close()
    return _finish(task, core, config, spec, seed, best, best_fit, best_gen, history, pareto, errors, rdir, gen)


def _seeded_population(initial: Sequence[Network], lim: Limits, config: EvolveConfig, rng: np.random.Generator,
                       codec: tuple[Any, Any] | None, extra: dict[str, Any]) -> list[Network]:
    """Generation 0 from starting networks: the networks themselves, then mutants of them."""
    seeds = []
    for k, net in enumerate(initial):
        if len(net.inputs) != lim.n_inputs or len(net.outputs) != lim.n_outputs:
            raise EvolveError(f"starting network #{k} has {len(net.inputs)} inputs / {len(net.outputs)} outputs; "
                              f"the task has {lim.n_inputs} / {lim.n_outputs}")
        io = [p.neuron for p in net.inputs] + [p.neuron for p in net.outputs]
        if net.neuron_ids[:len(io)] != io:
            raise EvolveError(f"starting network #{k}: its first neurons {net.neuron_ids[:len(io)]} are not its "
                              f"input then output neurons {io} (the genome layout)")
        s = _clone(net)
        s.metadata.update(copy.deepcopy(extra))
        if codec is not None:
            attach_io(s, codec[0], codec[1])
        seeds.append(repair(s, lim, rng))
    pop = seeds[:config.population]
    while len(pop) < config.population:
        pop.append(mutate(seeds[len(pop) % len(seeds)], lim, config, rng))
    return pop


def _finish(task: Any, core: CoreConfig, config: EvolveConfig, spec: str, seed: int, best: Network | None,
            best_fit: float, best_gen: int, history: list[dict[str, Any]], pareto: list[dict[str, Any]],
            errors: list[str], rdir: Path | None, gen: int) -> EvolveResult:
    if best is None:
        raise EvolveError("no generation was evaluated")
    hardware_check(best, core)
    info = task.info(best) if hasattr(task, "info") else {}
    best.metadata["provenance"] = {
        "trainer": "spikeforge.toolchain.train.evolve", "task": spec, "seed": seed,
        "generation": best_gen, "fitness": best_fit, "core": core.name, "info": info,
        "settings": config.to_dict(),
    }
    try:
        best.validate()
    except NetworkError as e:  # pragma: no cover - a bug, not a user error
        raise EvolveError(f"best network is invalid: {e}") from None
    if rdir is not None:
        _save_json(rdir / "pareto.json", pareto)
        try:
            plot_history(history, rdir / "fitness.png", title=f"{spec} on {core.name}")
        except Exception as e:  # a plot must never lose a finished run
            log.warning("could not write the fitness plot: %s", e)
    return EvolveResult(best=best, best_fitness=best_fit, best_generation=best_gen, history=history,
                        pareto=pareto, info=info, generations=gen + 1, errors=errors)


def plot_history(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Write a PNG of best and mean fitness per generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = [h["generation"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(g, [h["best"] for h in history], label="best")
    ax.plot(g, [h["mean"] for h in history], label="mean")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

