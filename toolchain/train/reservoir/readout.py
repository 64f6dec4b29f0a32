"""Readouts of a reservoir: features on the host, and the classifier as output neurons on the core.

State features (from the spike counts per frame that :func:`.generator.run_states` returns, i.e.
what a board streaming its spikes reports):

``total``
    spikes of each neuron over the whole series;
``windows``
    spikes of each neuron in ``K`` equal parts of the sample's own span (plus ``total``);
``trace``
    per frame, each neuron's count and its shift-decayed traces ``z ← z − (z >> k) + 256·count``
    for every ``k`` in ``trace_shifts`` (integer, as a core's leaky neuron would hold them).

**Host readouts** (:func:`fit_host`): scikit-learn's ``LogisticRegression`` (classification) or
``Ridge`` (regression) on standardised features.

**On the core** (:func:`attach_classifier`): one output neuron per class receives every source
neuron's spikes through a synapse of weight ``Wq[c, i]`` (delay 1; leak none, reset to zero), so
at the end of the series its potential is ``Σ_i Wq[c, i] · n_i`` — the linear readout of the
``total`` features. The intercept is folded into the threshold, ``θ_c = θ₀ − bq[c]``, with
``θ₀`` above every training score, so no output fires during the series. At step ``T_end =
frames · frame_steps`` the encoder's ``go`` marker fires a latching relay (threshold 1,
self-synapse of weight 1): it adds the same ramp to every output each step (``m`` synapses of weight ``g``,
delays ``1 … m``, sized for about ``ramp_target`` steps), so the output with the highest score ``S_c + bq[c]`` reaches
its threshold first: a :class:`~spikeforge.toolchain.codec.FirstSpikeDecoder` reads the class
(ties: most spikes, then lowest index). ``Wq = round(s · W)``, ``bq = round(s · b)`` with one
scale ``s`` that keeps weights within the core's weight range and training scores within half
the potential range.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.codec import FirstSpikeDecoder, SeriesEncoder, attach_io
from spikeforge.toolchain.ir import Network

from .generator import Reservoir, ReservoirError

__all__ = ["HostReadout", "OnCoreReadout", "attach_classifier", "features", "fit_host", "frame_traces",
           "span_of"]

log = logging.getLogger(__name__)


def span_of(x: np.ndarray) -> np.ndarray:
    """Real (non-padding) frames of each sample of ``x`` ``[samples, frames, channels]``."""
    return (~np.isnan(x).all(axis=2)).sum(axis=1)


def frame_traces(counts: np.ndarray, shifts: tuple[int, ...] = (1, 3)) -> np.ndarray:
    """``[samples, frames, n · (1 + len(shifts))]``: each frame's counts and shift-decayed traces."""
    c = counts.astype(np.int64)
    out = [c]
    for k in shifts:
        z = np.zeros_like(c[:, 0])
        tr = np.empty_like(c)
        for f in range(c.shape[1]):
            z = z - (z >> k) + (c[:, f] << 8)
            tr[:, f] = z
        out.append(tr)
    return np.concatenate(out, axis=2)


def features(counts: np.ndarray, kind: str, *, span: np.ndarray | None = None, windows: int = 2,
             end: int | None = None) -> np.ndarray:
    """Per-sample features ``[samples, d]`` from frame counts ``[samples, frames, n]``.

    Parameters
    ----------
    kind
        ``"total"`` or ``"windows"`` (classification; see the module docstring).
    span
        Real frames per sample (for ``windows``), from :func:`span_of`.
    end
        Frames of the series (counts past it, e.g. the decision phase, are ignored).
    """
    c = counts[:, :end].astype(float)
    total = c.sum(axis=1)
    if kind == "total":
        return total
    if kind != "windows":
        raise ReservoirError(f"feature kind = {kind!r}; allowed: 'total', 'windows'")
    if span is None:
        raise ReservoirError("windows features need the span of each sample (span_of(x))")
    frames = c.shape[1]
    out = [total]
    cum = np.concatenate([np.zeros((len(c), 1, c.shape[2])), np.cumsum(c, axis=1)], axis=1)
    for k in range(windows):
        a = np.rint(frames - span + span * k / windows).astype(int)
        b = np.rint(frames - span + span * (k + 1) / windows).astype(int)
        rows = np.arange(len(c))
        out.append(cum[rows, b] - cum[rows, a])
    return np.concatenate(out, axis=1)


@dataclass
class HostReadout:
    """A fitted host readout: standardisation and a scikit-learn linear model."""

    model: Any
    mean: np.ndarray
    scale: np.ndarray

    def _z(self, f: np.ndarray) -> np.ndarray:
        return (f - self.mean) / self.scale

    def predict(self, f: np.ndarray) -> np.ndarray:
        """Class or value per row of features ``f``."""
        return self.model.predict(self._z(f))

    def linear(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W [classes, d], b [classes])`` on the raw (unstandardised) features."""
        coef = np.atleast_2d(self.model.coef_) / self.scale
        icpt = np.atleast_1d(self.model.intercept_) - coef @ self.mean
        return coef, icpt


def fit_host(f: np.ndarray, y: np.ndarray, kind: str, *, c: float = 1.0, alpha: float = 1.0) -> HostReadout:
    """Fit a logistic (classification, inverse regularisation ``c``) or ridge (regression,
    ``alpha``) readout on standardised features ``f``."""
    from sklearn.linear_model import LogisticRegression, Ridge

    mean = f.mean(axis=0)
    scale = f.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (f - mean) / scale
    model = (LogisticRegression(C=c, max_iter=5000).fit(z, y) if kind == "classification"
             else Ridge(alpha=alpha).fit(z, y))
    return HostReadout(model, mean, scale)


@dataclass
class OnCoreReadout:
    """What :func:`attach_classifier` appended (JSON-able through :meth:`info`)."""

    outputs: list[int]
    go: int
    scale: float
    theta0: int
    ramp_weight: int
    ramp_synapses: int
    ramp_steps: int
    zero_weights: int

    def info(self) -> dict[str, Any]:
        """JSON-able form."""
        return dataclasses.asdict(self)


def attach_classifier(res: Reservoir, sources: list[int], w: np.ndarray, b: np.ndarray,
                      f_train: np.ndarray, config: CoreConfig, classes: list[str],
                      *, ramp_target: int = 24) -> tuple[Network, OnCoreReadout]:
    """The reservoir with the linear classifier ``argmax(W f + b)`` as output neurons on the core.

    Parameters
    ----------
    res
        The tuned reservoir (its encoder has one extra input, the ``go`` marker).
    sources
        Neuron ids whose total spike counts are the features (columns of ``w``).
    w, b
        Float readout on raw total counts (:meth:`HostReadout.linear`).
    f_train
        Training features: ``total`` counts of ``sources`` over steps ``0 … T_end`` (inclusive:
        the go relay fires at ``T_end`` and, from ``T_end + 1`` on, inhibits every source that is
        not an input relay with the most negative weight each step, so the liquid falls silent
        and the scores stay as they were); sets the scale and ``θ₀``.
    ramp_target
        Aim for a decision phase of about this many steps.

    Returns
    -------
    (Network, OnCoreReadout)
        A copy of the network with outputs ``class<k>``; ``metadata["io"]`` holds the encoder
        (window extended by the decision phase, ``go`` marker at ``T_end``) and a first-spike
        decoder.
    """
    lim = config.limits()
    wmax = lim.weight[1]
    hi = lim.potential[1]
    enc: SeriesEncoder = res.encoder
    if enc.extra_inputs < 1:
        raise ReservoirError("the reservoir's encoder has no marker input for the readout's go signal; "
                             "build it with SeriesEncoder(extra_inputs=1)")
    if w.shape[0] != len(classes):
        raise ReservoirError(f"the readout has {w.shape[0]} rows for {len(classes)} classes; every class "
                             "must occur in the training labels")
    b = b - b.mean()  # a constant common to every class changes no argmax
    s = min(wmax / max(float(np.abs(w).max()), 1e-12), 0.5 * hi / max(float(np.abs(f_train @ w.T).max()), 1e-12))
    thr_hi = min(lim.threshold[1], hi)
    for _ in range(60):  # shrink until every θ_c = θ0 − bq[c] fits the threshold range
        wq = np.clip(np.rint(s * w), -wmax, wmax).astype(np.int64)
        bq = np.rint(s * b).astype(np.int64)
        sq = f_train @ wq.T
        theta0 = int(max((sq + bq).max(), bq.max())) + 1  # above every training score: no early spike
        th = theta0 - bq
        if th.max() <= thr_hi:
            break
        s *= 0.8
    else:
        raise ReservoirError(f"the readout's thresholds do not fit core {config.name!r} "
                             f"({lim.reasons['threshold']}); use fewer features or a stronger regularisation")
    gap = float((theta0 - (sq + bq).max(axis=1)).max())  # the slowest training decision
    # ramp step g per synapse: about ramp_target steps cover 1.5 × that gap (finer steps: finer
    # decisions); m parallel synapses when one weight is not enough
    need = max(1, math.ceil(1.5 * gap / ramp_target))
    m = max(1, min(lim.delay[1], math.ceil(need / wmax)))
    g = min(wmax, math.ceil(need / m))
    ramp, j = 0, 0
    while ramp < 1.5 * gap + g * m:
        j += 1
        ramp += g * min(j, m)
    net = res.network.copy()
    go_port = enc.channels * (2 if enc.push_pull else 1)  # the first extra input
    go = net.inputs[go_port].neuron
    net.add_synapse(go, go, 1, 1)
    relays = {p.neuron for p in net.inputs}
    for i in sources:  # the go relay quenches the liquid: the scores freeze at the decision
        if i not in relays:
            net.add_synapse(go, int(i), lim.weight[0], 1)
    top = max(net.neuron_ids) + 1
    outs = list(range(top, top + len(classes)))
    for k, o in enumerate(outs):
        net.add_neuron(o, threshold=int(th[k]), name=f"class{k}")
        for i, wv in zip(sources, wq[k], strict=True):
            if wv:
                net.add_synapse(int(i), o, int(wv), 1)
        for d in range(1, m + 1):
            net.add_synapse(go, o, g, d)
        net.add_output(o, f"class{k}")
    t_end = enc.frames * enc.frame_steps
    window = t_end + j + 1
    enc2 = dataclasses.replace(enc, steps=window, markers=((go_port, t_end, 1),))
    attach_io(net, enc2, FirstSpikeDecoder(n_outputs=len(classes)))
    info = OnCoreReadout(outs, go, float(s), int(theta0), g, m, j + 1, int((wq == 0).sum()))
    log.info("on-core readout: scale %.3g, theta0 %d, ramp %d synapses x %d steps, %d of %d weights zero",
             s, theta0, m, j + 1, info.zero_weights, wq.size)
    return net, info

