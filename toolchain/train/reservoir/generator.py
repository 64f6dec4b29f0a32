"""A seeded integer liquid state machine that fits a core, and a simulator that reads its state.

Structure (neuron ids in this order)
------------------------------------
* **Input relays** ``0 … n_in − 1``: one per encoder input (:class:`~spikeforge.toolchain.codec.
  SeriesEncoder`). A channel relay is an IF neuron (no leak, reset by subtraction) of threshold
  ``input_threshold``, so a *current* of ``round(x̂ · θ_in)`` per step makes it fire at rate
  ``x̂`` (a sigma-delta), and a *rate* event of ``θ_in`` fires it once. Marker inputs (the
  readout's ``go``) follow the channel inputs.
* **Reservoir** ``n_in … n_in + N − 1``: LIF neurons of the contract (shift leak ``k``, reset to
  zero, refractory ``r``), a fraction ``excitatory`` of them excitatory (positive out-weights),
  the rest inhibitory (negative, ``inhibition`` times stronger). Connectivity is ``random``
  (each ordered pair with probability ``connectivity``) or ``distance`` (neurons on a 3-D grid,
  Maass et al. 2002: probability ``connectivity · exp(−(d/λ)²)``). Each synapse has a delay in
  ``1 … max_delay``: uniform at random, or growing with distance for ``distance``.
  Each input relay drives a random ``input_fraction`` of the reservoir.
* Readout output neurons are appended by :mod:`.readout`.

Weights are ``round(g · u)`` with ``u`` drawn once (``|u| ∈ [0.5, 1]``): the two gains ``g_in``
(input synapses) and ``g_rec`` (recurrent) are **tuned on the integer network in the reference
model** (:func:`tune_gains`): bisection of ``g_in`` with the recurrent synapses silent until the
input-driven rate is ``input_share`` of the target, then of ``g_rec`` until the mean reservoir
rate on training samples is ``target_rate`` spikes per neuron per step. The spectral radius of
the integer recurrent matrix over the threshold is reported beside it (it is not what is tuned).
Every value is checked against :meth:`~spikeforge.hdl.config.CoreConfig.limits`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.codec import SeriesEncoder
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.reference import ReferenceSimulator
from spikeforge.toolchain.train.tasks import MAX_GLOBAL_NEURONS

__all__ = ["Reservoir", "ReservoirError", "ReservoirParams", "build_reservoir", "run_states", "tune_gains"]

log = logging.getLogger(__name__)


class ReservoirError(ValueError):
    """Bad reservoir parameters or a reservoir that does not fit the core (names value and fix)."""


@dataclass(frozen=True)
class ReservoirParams:
    """Parameters of the generator (JSON-able; recorded in the network's metadata).

    Attributes
    ----------
    n_neurons
        Reservoir size ``N``.
    excitatory
        Fraction of excitatory neurons.
    topology
        ``"random"`` or ``"distance"``.
    connectivity
        Connection probability (``random``), or its peak ``C`` (``distance``).
    lam
        Length scale λ of ``distance`` connectivity, in grid units.
    max_delay
        Longest synaptic delay (0: the core's ``max_delay``).
    delays
        ``"random"`` (uniform in ``1 … max_delay``) or ``"distance"``.
    threshold, leak_shift, refractory
        Reservoir neurons' θ, shift leak ``k`` and refractory steps.
    leak_shift_max
        If > ``leak_shift``: each neuron's ``k`` is drawn uniformly from ``leak_shift …
        leak_shift_max`` (a spread of time constants, more memory).
    inhibition
        Inhibitory weights are this many times the excitatory ones.
    input_fraction
        Fraction of the reservoir each input relay drives.
    input_threshold
        θ of the input relays (the current of a full-scale value per step).
    target_rate, input_share
        Tuning targets (see the module docstring).
    tune_samples
        Training samples the tuning simulates.
    seed
        Seed of every random draw.
    """

    n_neurons: int = 400
    excitatory: float = 0.8
    topology: str = "random"
    connectivity: float = 0.1
    lam: float = 2.0
    max_delay: int = 0
    delays: str = "random"
    threshold: int = 128
    leak_shift: int = 3
    leak_shift_max: int = 0
    refractory: int = 1
    inhibition: float = 2.0
    input_fraction: float = 0.3
    input_threshold: int = 32
    target_rate: float = 0.08
    input_share: float = 0.5
    tune_samples: int = 32
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class Reservoir:
    """A generated reservoir: the integer network and what it was made of.

    Attributes
    ----------
    network
        Inputs and reservoir, integer, with input ports ``in<k>`` (no outputs yet).
    encoder
        The series encoder that feeds it.
    inputs, neurons
        Ids of the input relays and of the reservoir neurons.
    params
        The generator parameters.
    g_in, g_rec
        The tuned gains (weight units per unit of ``u``).
    rate
        Measured mean reservoir rate (spikes per neuron per step) on the tuning samples.
    spectral_radius
        ``ρ(W_rec) / θ`` of the integer recurrent weights.
    """

    network: Network
    encoder: SeriesEncoder
    inputs: list[int]
    neurons: list[int]
    params: ReservoirParams
    g_in: float = 0.0
    g_rec: float = 0.0
    rate: float = 0.0
    spectral_radius: float = 0.0
    shape: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def info(self) -> dict[str, Any]:
        """JSON-able facts for the network's metadata."""
        return {"params": self.params.to_dict(), "g_in": round(self.g_in, 4), "g_rec": round(self.g_rec, 4),
                "rate": round(self.rate, 5), "spectral_radius": round(self.spectral_radius, 4),
                "reservoir_neurons": [self.neurons[0], self.neurons[-1]],
                "synapses": len(self.network.synapses)}


def _check(params: ReservoirParams, config: CoreConfig, n_in: int) -> int:
    lim = config.limits()
    bad = [(name, v, lim.check(name, v)) for name, v in (
        ("threshold", params.threshold), ("threshold", params.input_threshold),
        ("refractory", params.refractory)) if lim.check(name, v)]
    if bad:
        name, v, why = bad[0]
        raise ReservoirError(f"reservoir {name} = {v} does not fit core {config.name!r}; {why}")
    if params.topology not in ("random", "distance"):
        raise ReservoirError(f"topology = {params.topology!r}; allowed: 'random', 'distance'")
    if params.delays not in ("random", "distance"):
        raise ReservoirError(f"delays = {params.delays!r}; allowed: 'random', 'distance'")
    for name in ("excitatory", "connectivity", "input_fraction", "input_share"):
        v = getattr(params, name)
        if not 0.0 < v <= 1.0:
            raise ReservoirError(f"{name} = {v} is out of range; allowed: (0, 1]")
    if not 1 <= params.leak_shift < config.potential_bits:
        raise ReservoirError(f"leak_shift = {params.leak_shift} is out of range; allowed: 1..{config.potential_bits - 1}")
    d_max = params.max_delay or lim.delay[1]
    if lim.check("delay", d_max):
        raise ReservoirError(f"max_delay = {d_max} does not fit core {config.name!r}; {lim.check('delay', d_max)}")
    if n_in + params.n_neurons > lim.neurons:
        raise ReservoirError(f"{n_in} inputs + {params.n_neurons} reservoir neurons exceed the {lim.neurons} "
                             f"neurons of core {config.name!r}; lower n_neurons")
    return d_max


def build_reservoir(encoder: SeriesEncoder, config: CoreConfig, params: ReservoirParams = ReservoirParams(),
                    *, g_in: float = 1.0, g_rec: float = 1.0) -> Reservoir:
    """Draw a reservoir for ``encoder``'s inputs (untuned gains; see :func:`tune_gains`).

    Raises
    ------
    ReservoirError
        On a parameter out of range or a reservoir too big for ``config``.
    """
    n_in = encoder.n_inputs
    d_max = _check(params, config, n_in)
    rng = np.random.default_rng(params.seed)
    n = params.n_neurons
    exc = rng.random(n) < params.excitatory
    k_hi = max(params.leak_shift, params.leak_shift_max)
    if k_hi >= config.potential_bits:
        raise ReservoirError(f"leak_shift_max = {k_hi} is out of range; allowed: below potential_bits = "
                             f"{config.potential_bits}")
    leak = rng.integers(params.leak_shift, k_hi + 1, n)
    if params.topology == "random":
        mask = rng.random((n, n)) < params.connectivity
        dist = rng.random((n, n))  # only orders delays for delays="distance"
    else:
        side = int(np.ceil(n ** (1 / 3)))
        grid = np.stack(np.unravel_index(rng.permutation(side ** 3)[:n], (side,) * 3), axis=1).astype(float)
        dist = np.linalg.norm(grid[:, None, :] - grid[None, :, :], axis=2)
        mask = rng.random((n, n)) < params.connectivity * np.exp(-((dist / params.lam) ** 2))
    np.fill_diagonal(mask, False)
    pre, post = np.nonzero(mask)  # synapse pre -> post
    mag = rng.uniform(0.5, 1.0, len(pre))
    sign = np.where(exc[pre], 1.0, -params.inhibition)
    if params.delays == "random":
        delay = rng.integers(1, d_max + 1, len(pre))
    else:
        d = dist[pre, post]
        delay = 1 + np.floor((d / max(float(d.max()), 1e-9)) * (d_max - 1) + 0.5).astype(np.int64)
    n_ch = encoder.channels * (2 if encoder.push_pull else 1)
    budget = config.limits().synapses
    if len(pre) + n_ch * n * params.input_fraction > 0.9 * budget:
        raise ReservoirError(f"the reservoir draws {len(pre)} recurrent and ~{int(n_ch * n * params.input_fraction)} "
                             f"input synapses; core {config.name!r} holds {budget} (and the readout needs "
                             "some): lower connectivity, input_fraction or n_neurons")
    in_pre, in_post = np.nonzero(rng.random((n_ch, n)) < params.input_fraction)
    in_mag = rng.uniform(0.5, 1.0, len(in_pre))
    shape = {"pre": pre, "post": post, "u": mag * sign, "delay": delay, "in_pre": in_pre, "in_post": in_post,
             "in_u": in_mag, "exc": exc, "leak": leak}
    res = Reservoir(Network(), encoder, list(range(n_in)), list(range(n_in, n_in + n)), params, shape=shape)
    _materialise(res, config, g_in, g_rec)
    return res


def _materialise(res: Reservoir, config: CoreConfig, g_in: float, g_rec: float, radius: bool = True) -> None:
    """(Re)build ``res.network`` with gains ``g_in``, ``g_rec`` (weights clipped to the core's)."""
    lim = config.limits()
    p, s = res.params, res.shape
    n_in = len(res.inputs)
    enc = res.encoder
    n_ch = enc.channels * (2 if enc.push_pull else 1)
    net = Network()
    for i in res.inputs:
        if i < n_ch:
            net.add_neuron(i, threshold=p.input_threshold, reset="subtract", name=f"in{i}")
        else:
            net.add_neuron(i, threshold=1, name=f"marker{i - n_ch}")
        net.add_input(i, f"in{i}")
    for k in res.neurons:
        net.add_neuron(k, threshold=p.threshold, leak="shift", leak_shift=int(s["leak"][k - n_in]),
                       refractory=p.refractory, name=f"{'e' if s['exc'][k - n_in] else 'i'}{k - n_in}")
    wlo, whi = lim.weight
    w_in = np.clip(np.rint(g_in * s["in_u"]), wlo, whi).astype(np.int64)
    for a, b, w in zip(s["in_pre"], s["in_post"], w_in, strict=True):
        if w:
            net.add_synapse(int(a), n_in + int(b), int(w), 1)
    w_rec = np.clip(np.rint(g_rec * s["u"]), wlo, whi).astype(np.int64)
    for a, b, w, d in zip(s["pre"], s["post"], w_rec, s["delay"], strict=True):
        if w:
            net.add_synapse(n_in + int(a), n_in + int(b), int(w), int(d))
    res.network, res.g_in, res.g_rec = net, float(g_in), float(g_rec)
    if radius:
        m = np.zeros((len(res.neurons),) * 2)
        np.add.at(m, (s["post"], s["pre"]), w_rec)
        res.spectral_radius = float(np.abs(np.linalg.eigvals(m)).max() / p.threshold) if len(m) else 0.0


def run_states(net: Network, encoder: SeriesEncoder, x: np.ndarray, *, potential_bits: int = 16,
               steps: int | None = None, frame_steps: int | None = None, outputs: list[int] | None = None,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Run every sample of ``x`` through ``net`` in the reference model (batched, fresh state each).

    Parameters
    ----------
    net
        The network (reservoir, maybe with a readout).
    encoder
        Its series encoder; ``x`` is ``[samples, frames, channels]`` scaled to the encoder's range.
    steps
        Steps to run (default ``encoder.steps``).
    frame_steps
        Bin width of the returned counts (default the encoder's).
    outputs
        Neuron ids whose spike raster is returned at step resolution.

    Returns
    -------
    (counts, events, raster)
        ``counts[s, f, i]``: spikes of neuron ``i`` (network order) in bin ``f`` of sample ``s``
        (int16); ``events[s]``: synaptic events of the run; ``raster[s, t, k]``: output ``k``
        fired at ``t`` (or None).
    """
    steps = encoder.steps if steps is None else steps
    fs = frame_steps or encoder.frame_steps
    n = len(net.neurons)
    bins = -(-steps // fs)
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    counts = np.zeros((len(x), bins, n), dtype=np.int16)
    events = np.zeros(len(x), dtype=np.int64)
    pos = net.index_of()
    cols = np.array([pos[o] for o in outputs], dtype=np.int64) if outputs else None
    raster = np.zeros((len(x), steps, len(cols)), dtype=bool) if cols is not None else None
    per = max(1, MAX_GLOBAL_NEURONS // max(1, n))
    chunks = range(0, len(x), per)
    for a in tqdm(chunks, desc="reservoir", unit="batch", disable=not progress or len(chunks) < 2):
        xs = x[a:a + per]
        sim = ReferenceSimulator([net] * len(xs), potential_bits)
        sim.add_input_arrays(*encoder.encode_arrays(xs))
        sim.run(steps)
        t, run, idx = sim.spike_arrays()
        np.add.at(counts, (a + run, t // fs, idx), 1)
        events[a:a + len(xs)] = sim.events
        if cols is not None and raster is not None:
            col = np.full(n, -1)
            col[cols] = np.arange(len(cols))
            keep = col[idx] >= 0
            raster[a + run[keep], t[keep], col[idx[keep]]] = True
    return counts, events, raster


def _rate(res: Reservoir, x: np.ndarray, config: CoreConfig) -> float:
    counts, _, _ = run_states(res.network, res.encoder, x, potential_bits=config.potential_bits)
    n_in = len(res.inputs)
    active = (~np.isnan(x).all(axis=2)).sum() * res.encoder.frame_steps  # steps with input, all samples
    return float(counts[:, :, n_in:].sum()) / max(1, active) / len(res.neurons)


def _bisect(f: Any, target: float, hi: float, iters: int = 7) -> float:
    """Smallest-ish g in [0, hi] with f(g) ≈ target (f increasing); hi if never reached."""
    if f(hi) < target:
        return hi
    lo = 0.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def tune_gains(res: Reservoir, x: np.ndarray, config: CoreConfig) -> Reservoir:
    """Tune ``g_in`` then ``g_rec`` on samples ``x`` to the target rates (see the module docstring).

    The rate is measured on the integer network in the reference model; a target the weight
    range cannot reach is logged and the largest gain kept.
    """
    p = res.params
    whi = config.limits().weight[1]
    x = x[: p.tune_samples]

    def rate_in(g: float) -> float:
        _materialise(res, config, g, 0.0, radius=False)
        return _rate(res, x, config)

    g_in = _bisect(rate_in, p.target_rate * p.input_share, float(whi))

    def rate_rec(g: float) -> float:
        _materialise(res, config, g_in, g, radius=False)
        return _rate(res, x, config)

    g_rec = _bisect(rate_rec, p.target_rate, float(whi))
    _materialise(res, config, g_in, g_rec)
    res.rate = _rate(res, x, config)
    if abs(res.rate - p.target_rate) > 0.5 * p.target_rate:
        log.warning("reservoir rate %.4f spikes/neuron/step is far from target_rate %.4f (g_in %.1f, g_rec "
                    "%.1f of at most %d); change threshold or connectivity", res.rate, p.target_rate, g_in,
                    g_rec, whi)
    log.info("reservoir tuned: g_in %.2f, g_rec %.2f, rate %.4f, spectral radius %.3f", g_in, g_rec,
             res.rate, res.spectral_radius)
    return res
