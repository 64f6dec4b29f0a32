"""ANN-to-SNN conversion: train a small MLP in numpy, then run it as integrate-and-fire neurons.

The trainer (:func:`train_mlp`) is a plain numpy multilayer perceptron: Adam, minibatches,
softmax cross-entropy, hidden activations ``relu``, ``clipped_relu`` or ``softlif``, optional
Gaussian training noise on the hidden activations. Soft-LIF is the smoothed LIF rate curve of
Hunsberger & Eliasmith (2015, arXiv 1510.08829)::

    r(j) = 1 / (τ_ref + τ_RC · log(1 + 1/ρ(j − 1))),   ρ(x) = σ · log(1 + e^{x/σ})

used as ``softlif(a) = amplitude · r(a + 1)`` (so the soft threshold sits at ``a = 0``, as for
ReLU; ``amplitude = 1 / r(2)`` with the hard maximum, so that ``softlif(1) ≈ 1``).

Conversion (:func:`convert`) follows Diehl et al. (2015) and Rueckauer et al. (2017, the SNN
Toolbox), re-derived here for the spikeforge neuron contract:

* **Data-based normalisation.** ``λ_l`` = the ``percentile``-th percentile (default 99.9) of
  layer ``l``'s positive activations on the training data (``λ_0 = 1``: inputs are rates in
  ``[0, 1]``). ``W̃_l = W_l · λ_{l−1} / λ_l``, ``b̃_l = b_l / λ_l``: a unit activation of
  ``λ_l`` becomes one spike per timestep.
* **Neurons.** Input port ``k`` is a *relay* neuron (threshold 1, fires at the step of each
  input event of value 1). Every layer is a set of IF neurons: leak none, **reset by
  subtraction** (the residual charge is kept, so the rate is a linear function of the input
  current up to one spike per step), the layer bias as the neuron's ``bias`` parameter.
* **Soft-LIF → LIF** (``neuron="lif"``, the default for soft-LIF MLPs; Hunsberger &
  Eliasmith's swap): hidden layers become the contract's own LIF neurons — shift leak ``k``,
  refractory ``r`` steps, reset to zero — whose rate for a constant drive *is* the LIF curve
  with ``τ_RC = −1/ln(1 − 2⁻ᵏ)`` and ``τ_ref ≈ r + ½`` steps (:func:`lif_softlif_params`; the
  CLI trains with ``k = 4, r = 2``). The soft threshold ``j = a + 1`` becomes a bias of one
  threshold current ``θ(1 − 2⁻ᵏ)``; no data normalisation is needed (the LIF saturates by
  itself); a spike per step of a LIF layer stands for ``amplitude / dt`` of its activation.
  The output layer stays IF. Measured (T = 32, up5k): digits 98.22 % = the ANN; breast cancer
  76 % (90 % at T = 64) — its hidden units sit near threshold, where LIF rates are low and
  steep, so short windows resolve them badly.
* **Timing.** Every synapse has delay 1, so layer ``l`` sees the spikes of layer ``l − 1`` one
  step later; with ``L`` weight layers the output lags the input by ``L`` steps. A sample is
  presented for ``T`` steps and the network runs ``R = T + L`` steps; the decoder reads the
  whole run (``metadata["io"]["latency"] = L``). The bias acts on every one of the ``R``
  steps, so the per-step bias is scaled by ``T / R``.
* **Touch rule.** A neuron only fires when touched (an event, or ``b ≠ 0``); a neuron whose
  bias rounds to 0 could keep a charge ≥ θ unfired when its inputs fall silent. Conversion gives
  such neurons a bias of ``+1`` (``touch_bias=True``, the default): 1/θ of a spike per step,
  negligible at θ ≈ 100, and every neuron is checked every step, as the ANN intends. (Measured
  on the test splits at T = 32: digits 97.56 % with, 97.78 % without; breast cancer 95.10 %
  both — the hidden layers' rounding bias already touches nearly every neuron.)
* **Quantization** to a :class:`~spikeforge.hdl.config.CoreConfig` (here, not in the compiler:
  the scale is conversion-specific). Per layer, the threshold is ``θ_l = ⌊w_max / max|W̃_l|⌋``
  with ``w_max = 2**(weight_bits − 1) − 1``, weights ``round(W̃_l · θ_l)`` (zeros dropped),
  biases ``round(b̃_l · θ_l · T / R)`` clipped to ``bias_bits`` (a warning says how many).
  The result is checked with :func:`spikeforge.hdl.image.lower`.
* **Input coding.** ``rate``: :class:`~spikeforge.toolchain.codec.PhasedRateEncoder` with
  ``max_spikes = T`` and phase ½ (value ``x̂`` gives ``round(x̂ T)`` spikes, centred in their
  intervals: with phase 0 every input fires at t = 0, and that synchronous volley drives
  transients that IF neurons cannot take back — on breast cancer (T = 32) float / integer SNN
  90.9 / 92.3 % with phase 0, 95.1 / 95.1 % with phase ½). Hidden layers get half a
  threshold over the run (``+0.5/R`` per step) so their counts round instead of floor; the
  output layer does not (a loser's extra spike hurts WTA more). ``ttfs``:
  :class:`~spikeforge.toolchain.codec.TTFSEncoder`, one event per value at
  ``round((1 − x̂)(T − 1))``; the relay has a weight-1, delay-1 self-synapse, so it *latches*
  and fires every step from its first spike on — a rate again inside the network, for one input
  event per value on the wire. The constant extra spikes this adds are taken out of the first
  layer's bias.
* **Decoder.** :class:`~spikeforge.toolchain.codec.WTADecoder` over the output neurons.

Every stage is evaluated (:func:`evaluate`): ANN accuracy, a float SNN (a numpy simulation of
the same IF dynamics, including the touch rule and the one-step-per-layer timing, with the
unquantized weights), the integer SNN **in the reference model** (one
:func:`~spikeforge.toolchain.reference.simulate_batch` over the whole test split), accuracy
against the number of timesteps, and synaptic events per inference.

Weights trained elsewhere convert too: :meth:`MLP.from_arrays` takes a list of ``[out, in]``
weight arrays (and biases), :func:`spikeforge.toolchain.nirio.affine_chain` reads them from a
NIR graph of ``Affine``/``Linear`` layers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.image import lower
from spikeforge.toolchain.codec import (
    Encoder,
    PhasedRateEncoder,
    TTFSEncoder,
    WTADecoder,
    attach_io,
    io_latency,
    io_of,
    output_raster,
)
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.reference import simulate_batch

__all__ = [
    "ACTIVATIONS",
    "TASKS",
    "ConversionReport",
    "ConvertError",
    "Dataset",
    "Evaluation",
    "MLP",
    "convert",
    "evaluate",
    "float_snn_predict",
    "lif_softlif_params",
    "load_task",
    "provenance",
    "save_curve_plot",
    "snn_predict",
    "softlif",
    "softlif_grad",
    "train_mlp",
]

log = logging.getLogger(__name__)

ACTIVATIONS = ("relu", "clipped_relu", "softlif")
TASKS = ("digits", "breast-cancer")
ENCODINGS = ("rate", "ttfs")

#: Soft-LIF defaults (seconds): Hunsberger & Eliasmith's LIF constants.
TAU_RC = 0.02
TAU_REF = 0.002
SIGMA = 0.02


class ConvertError(ValueError):
    """Bad conversion input (the message names the value and what is allowed)."""


# ------------------------------------------------------------------------------ soft-LIF
def _lif_rate(j: np.ndarray, tau_rc: float, tau_ref: float) -> float:
    """Hard LIF rate at a scalar current (for the amplitude)."""
    return float(1.0 / (tau_ref + tau_rc * np.log1p(1.0 / (j - 1.0))))


def softlif(a: ArrayLike, *, tau_rc: float = TAU_RC, tau_ref: float = TAU_REF,
            sigma: float = SIGMA) -> np.ndarray:
    """Soft-LIF activation ``amplitude · r(a + 1)`` (see the module docstring).

    Parameters
    ----------
    a
        Pre-activations.
    tau_rc, tau_ref
        Membrane and refractory time constants (seconds).
    sigma
        Smoothing of the hard maximum (``σ → 0`` gives the LIF rate curve).

    Returns
    -------
    numpy.ndarray
        Rates scaled so that ``softlif(1) ≈ 1``; 0 far below threshold.
    """
    r, _ = _softlif_both(np.asarray(a, dtype=float), tau_rc, tau_ref, sigma, grad=False)
    return r


def softlif_grad(a: ArrayLike, *, tau_rc: float = TAU_RC, tau_ref: float = TAU_REF,
                 sigma: float = SIGMA) -> np.ndarray:
    """Derivative of :func:`softlif` with respect to ``a`` (analytic).

    ``dr/dj = r² · τ_RC · ρ'(j − 1) / (p (p + 1))`` with ``p = ρ(j − 1)`` and
    ``ρ'(x) = 1 / (1 + e^{−x/σ})``.
    """
    _, g = _softlif_both(np.asarray(a, dtype=float), tau_rc, tau_ref, sigma, grad=True)
    return g


def _softlif_both(a: np.ndarray, tau_rc: float, tau_ref: float, sigma: float,
                  grad: bool) -> tuple[np.ndarray, np.ndarray]:
    amp = 1.0 / _lif_rate(np.float64(2.0), tau_rc, tau_ref)
    x = a  # j - 1 with j = a + 1
    p = sigma * np.logaddexp(0.0, x / sigma)
    ok = p > 1e-300
    ps = np.where(ok, p, 1.0)
    with np.errstate(over="ignore", divide="ignore"):
        r = np.where(ok, 1.0 / (tau_ref + tau_rc * np.log1p(1.0 / ps)), 0.0)
    if not grad:
        return amp * r, np.zeros(0)
    dp = 0.5 * (1.0 + np.tanh(x / (2.0 * sigma)))  # sigmoid(x / sigma), overflow-free
    g = np.where(ok, r * r * tau_rc * dp / (ps * (ps + 1.0)), 0.0)
    return amp * r, amp * g


def _act(name: str, a: np.ndarray, lif: dict[str, float] | None = None) -> np.ndarray:
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "clipped_relu":
        return np.clip(a, 0.0, 1.0)
    return softlif(a, **(lif or {}))


def _act_grad(name: str, a: np.ndarray, lif: dict[str, float] | None = None) -> np.ndarray:
    if name == "relu":
        return (a > 0).astype(float)
    if name == "clipped_relu":
        return ((a > 0) & (a < 1)).astype(float)
    return softlif_grad(a, **(lif or {}))


#: Seconds per step the soft-LIF time constants are measured against when an MLP becomes LIF
#: neurons (only the ratios τ/dt matter).
LIF_DT = 1e-3


def lif_softlif_params(leak_shift: int = 4, refractory: int = 2, sigma: float = SIGMA) -> dict[str, float]:
    """Soft-LIF constants that the contract's LIF neuron realises exactly (at :data:`LIF_DT`).

    A neuron with shift leak ``k`` (decay ``α = 1 − 2⁻ᵏ`` per step), reset to zero and
    ``refractory`` steps, driven by a constant ``J`` per step, fires every
    ``r + ⌈τ ln(1 + 1/(j − 1))⌉`` steps with ``τ = −1/ln α`` and ``j = J / (θ (1 − α))``: the LIF
    rate curve with ``τ_RC = τ`` and ``τ_ref = r`` (+ ½ step for the ceiling, on average).
    """
    if not (isinstance(leak_shift, int) and 1 <= leak_shift <= 15):
        raise ConvertError(f"leak_shift = {leak_shift!r} is out of range; allowed: 1..15")
    if not (isinstance(refractory, int) and 0 <= refractory <= 15):
        raise ConvertError(f"refractory = {refractory!r} is out of range; allowed: 0..15")
    alpha = 1.0 - 2.0 ** -leak_shift
    return {"tau_rc": -LIF_DT / math.log(alpha), "tau_ref": (refractory + 0.5) * LIF_DT, "sigma": sigma}


def _lif_of(params: dict[str, float]) -> tuple[int, int]:
    """The (leak_shift, refractory) nearest to soft-LIF constants (warns when inexact)."""
    p = {"tau_rc": TAU_RC, "tau_ref": TAU_REF, "sigma": SIGMA, **params}
    alpha = math.exp(-LIF_DT / p["tau_rc"])
    k = max(1, min(15, round(-math.log2(1.0 - alpha))))
    r = max(0, round(p["tau_ref"] / LIF_DT - 0.5))
    exact = lif_softlif_params(k, r, p["sigma"])
    if any(abs(exact[key] - p[key]) > 1e-3 * exact[key] for key in ("tau_rc", "tau_ref")):
        log.warning("soft-LIF tau_rc = %g s, tau_ref = %g s are not an exact LIF of the contract at "
                    "dt = %g s; using shift leak k = %d, refractory %d (train with "
                    "lif_softlif_params(%d, %d) to match)", p["tau_rc"], p["tau_ref"], LIF_DT, k, r, k, r)
    return k, r


# ------------------------------------------------------------------------------ the MLP
@dataclass
class MLP:
    """A multilayer perceptron: ``h_l = act(W_l h_{l−1} + b_l)``, linear output layer.

    Attributes
    ----------
    weights
        ``[n_out, n_in]`` arrays, input layer first (the NIR ``Affine`` convention).
    biases
        One vector per layer.
    activation
        Hidden activation, one of :data:`ACTIVATIONS`.
    softlif_params
        ``tau_rc``, ``tau_ref``, ``sigma`` of the soft-LIF (defaults: :data:`TAU_RC`…).
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str = "relu"
    softlif_params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConvertError(f"activation = {self.activation!r} is not allowed; allowed: {', '.join(ACTIVATIONS)}")
        if not self.weights:
            raise ConvertError("an MLP needs at least one weight layer; got an empty list")
        if len(self.biases) != len(self.weights):
            raise ConvertError(f"got {len(self.biases)} bias vectors for {len(self.weights)} weight layers")
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ConvertError(f"layer {k}: weight shape {w.shape} and bias shape {b.shape} do not match; "
                                   "need weight [n_out, n_in] and bias [n_out]")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ConvertError(f"layer {k}: non-finite weight or bias")
            if k and w.shape[1] != self.weights[k - 1].shape[0]:
                raise ConvertError(f"layer {k}: takes {w.shape[1]} inputs but layer {k - 1} gives "
                                   f"{self.weights[k - 1].shape[0]}")

    @classmethod
    def from_arrays(cls, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike] | None = None,
                    activation: str = "relu") -> MLP:
        """An MLP from weights trained elsewhere (``[n_out, n_in]`` arrays; zero biases if None)."""
        ws = [np.asarray(w, dtype=float) for w in weights]
        bs = ([np.zeros(w.shape[0]) for w in ws] if biases is None
              else [np.asarray(b, dtype=float).reshape(-1) for b in biases])
        return cls(ws, bs, activation)

    @property
    def sizes(self) -> list[int]:
        """Layer widths, input first."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    def activations(self, x: ArrayLike) -> list[np.ndarray]:
        """Every layer's output for ``x`` (``[batch, n_in]``): hidden activations, then logits."""
        h = np.asarray(x, dtype=float)
        out = []
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            a = h @ w.T + b
            h = a if k == len(self.weights) - 1 else _act(self.activation, a, self.softlif_params)
            out.append(h)
        return out

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Class index per row."""
        return self.activations(x)[-1].argmax(axis=1)

    def save(self, path: str | Path) -> None:
        """Write as ``.npz`` (plain float arrays, no pickle)."""
        arrays = {f"w{k}": w for k, w in enumerate(self.weights)}
        arrays.update({f"b{k}": b for k, b in enumerate(self.biases)})
        lif = {f"softlif_{k}": np.array(float(v)) for k, v in self.softlif_params.items()}
        np.savez(path, activation=np.array(self.activation), **lif, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> MLP:
        """Read what :meth:`save` wrote (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("w"))
            lif = {k.removeprefix("softlif_"): float(z[k]) for k in z.files if k.startswith("softlif_")}
            return cls([z[f"w{k}"] for k in range(n)], [z[f"b{k}"] for k in range(n)], str(z["activation"]),
                       lif)


def train_mlp(x: ArrayLike, y: ArrayLike, *, hidden: Sequence[int] = (128,), activation: str = "relu",
              epochs: int = 40, batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 1e-4,
              noise: float = 0.0, seed: int = 0, softlif_params: dict[str, float] | None = None,
              progress: Callable[[int, float], None] | None = None) -> MLP:
    """Train an MLP classifier with Adam on softmax cross-entropy.

    Parameters
    ----------
    x, y
        Training inputs ``[n, n_in]`` (rates in ``[0, 1]``) and integer labels ``[n]``.
    hidden
        Hidden layer widths.
    activation
        One of :data:`ACTIVATIONS`.
    epochs, batch_size, lr, weight_decay
        Adam over shuffled minibatches; L2 decay on the weights (small weights quantize well).
    noise
        Standard deviation of Gaussian noise added to hidden activations while training
        (Hunsberger & Eliasmith: robustness to spiking variability); 0 for none.
    seed
        Initialisation, shuffling and noise.
    softlif_params
        Soft-LIF constants (``tau_rc``, ``tau_ref``, ``sigma``); :func:`lif_softlif_params` gives
        ones the contract's LIF neuron realises.
    progress
        Called after each epoch with ``(epoch, mean loss)``.
    """
    if activation not in ACTIVATIONS:
        raise ConvertError(f"activation = {activation!r} is not allowed; allowed: {', '.join(ACTIVATIONS)}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if v < 1:
            raise ConvertError(f"{name} = {v} is out of range; allowed: an integer >= 1")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=int)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ConvertError(f"x has shape {x.shape} and y {y.shape}; need x [n, n_in] and y [n]")
    rng = np.random.default_rng(seed)
    n_cls = int(y.max()) + 1
    sizes = [x.shape[1], *hidden, n_cls]
    ws = [rng.normal(0, math.sqrt(2.0 / a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [np.zeros(b) for b in sizes[1:]]
    params = [p for pair in zip(ws, bs, strict=True) for p in pair]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    onehot = np.eye(n_cls)[y]
    nl = len(ws)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            h, pre, hs = x[idx], [], [x[idx]]
            for k in range(nl):
                a = h @ ws[k].T + bs[k]
                pre.append(a)
                if k < nl - 1:
                    h = _act(activation, a, softlif_params)
                    if noise > 0:
                        h = h + rng.normal(0, noise, h.shape)
                    hs.append(h)
            z = a - a.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            losses.append(float(-np.mean(np.log(p[np.arange(len(idx)), y[idx]] + 1e-12))))
            delta = (p - onehot[idx]) / len(idx)
            grads: list[np.ndarray] = []
            for k in range(nl - 1, -1, -1):
                gw = delta.T @ hs[k] + weight_decay * ws[k]
                gb = delta.sum(axis=0)
                grads[:0] = [gw, gb]
                if k:
                    delta = (delta @ ws[k]) * _act_grad(activation, pre[k - 1], softlif_params)
            step += 1
            for i, (prm, g) in enumerate(zip(params, grads, strict=True)):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mh = m[i] / (1 - b1 ** step)
                vh = v[i] / (1 - b2 ** step)
                prm -= lr * mh / (np.sqrt(vh) + eps)
        if progress is not None:
            progress(epoch, float(np.mean(losses)))
    return MLP(ws, bs, activation, dict(softlif_params or {}))


# ------------------------------------------------------------------------------ data
@dataclass
class Dataset:
    """A classification task split for conversion.

    Attributes
    ----------
    name
        Task name.
    x_train, x_test
        Inputs scaled to ``[0, 1]`` (rates).
    y_train, y_test
        Labels.
    lo, hi
        Per-feature raw range mapped to ``[0, 1]`` (``x̂ = (x − lo) / (hi − lo)``, clipped); the
        deployed encoder takes ``x̂``, and these are recorded in the network's provenance.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def load_task(task: str, *, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """Load a scikit-learn toy task (offline), stratified train/test split, scaled to ``[0, 1]``.

    ``digits``: 8×8 images, 16 grey levels, 10 classes (scaled by the fixed range 0..16).
    ``breast-cancer``: 30 features, 2 classes (min-max of the training split, test clipped).
    """
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split

    if task not in TASKS:
        raise ConvertError(f"task = {task!r} is not known; allowed: {', '.join(TASKS)}")
    data = load_digits() if task == "digits" else load_breast_cancer()
    xtr, xte, ytr, yte = train_test_split(data.data.astype(float), data.target.astype(int),
                                          test_size=test_size, random_state=seed, stratify=data.target)
    if task == "digits":
        lo, hi = np.zeros(xtr.shape[1]), np.full(xtr.shape[1], 16.0)
    else:
        lo, hi = xtr.min(axis=0), xtr.max(axis=0)
        hi = np.where(hi > lo, hi, lo + 1.0)

    def scale(a: np.ndarray) -> np.ndarray:
        return np.clip((a - lo) / (hi - lo), 0.0, 1.0)

    return Dataset(task, scale(xtr), ytr, scale(xte), yte, lo, hi)


# ------------------------------------------------------------------------------ conversion
@dataclass
class ConversionReport:
    """What conversion chose.

    Attributes
    ----------
    lambdas
        Normalisation scale ``λ_l`` per weight layer.
    thresholds
        Integer threshold per weight layer.
    timesteps, latency
        Presentation window ``T`` and output lag ``L`` (run ``T + L`` steps).
    encoding
        ``"rate"`` or ``"ttfs"``.
    clipped_biases
        Biases clipped to the core's ``bias_bits``.
    zero_weights_dropped
        Synapses whose weight rounded to 0.
    scaled
        The normalised float layers ``(W̃_l, b̃_l per step)`` the float SNN runs (threshold 1).
    kinds
        ``"if"`` or ``"lif"`` per weight layer (the output layer is always IF).
    lif
        ``(leak_shift, refractory)`` of the LIF layers.
    """

    lambdas: list[float]
    thresholds: list[int]
    timesteps: int
    latency: int
    encoding: str
    clipped_biases: int = 0
    zero_weights_dropped: int = 0
    scaled: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)
    kinds: list[str] = field(default_factory=list)
    lif: tuple[int, int] = (4, 2)


def _encoder(encoding: str, n: int, steps: int) -> Encoder:
    if encoding == "rate":
        return PhasedRateEncoder(n_values=n, steps=steps, max_spikes=steps, phase=0.5)
    return TTFSEncoder(n_values=n, steps=steps)


def convert(mlp: MLP, x_norm: ArrayLike, config: CoreConfig, *, timesteps: int = 32,
            encoding: str = "rate", percentile: float = 99.9, output_percentile: float | None = None,
            neuron: str | None = None, touch_bias: bool = True,
            check_fit: bool = True) -> tuple[Network, ConversionReport]:
    """Convert a trained MLP into an integer spiking network for ``config``.

    Parameters
    ----------
    mlp
        The ANN (any activation; each becomes an IF neuron whose rate approximates a ReLU
        clipped at one spike per step).
    x_norm
        Data for the normalisation (training inputs, rates in ``[0, 1]``).
    config
        The core the network must fit (weight, bias and threshold widths; capacity).
    timesteps
        Presentation window ``T`` per sample.
    encoding
        ``"rate"`` or ``"ttfs"`` (see the module docstring).
    percentile
        Percentile of positive activations that becomes one spike per step.
    output_percentile
        The same for the output layer (default: ``percentile``).
    neuron
        Hidden neurons: ``"if"`` (data-normalised IF, reset by subtraction) or ``"lif"`` (the
        contract's LIF — shift leak, refractory period, reset to zero — realising the soft-LIF
        rate curve the MLP was trained with, Hunsberger & Eliasmith's swap; needs
        ``activation == "softlif"``). Default: ``"lif"`` for soft-LIF MLPs, else ``"if"``.
    touch_bias
        Give neurons whose bias rounds to 0 a bias of +1 (see the module docstring).
    check_fit
        Check the result with :func:`spikeforge.hdl.image.lower`.

    Returns
    -------
    (Network, ConversionReport)
        The network (encoder, decoder and latency in ``metadata["io"]``) and the report.

    Raises
    ------
    ConvertError
        On a bad argument; :class:`~spikeforge.hdl.image.ImageError` when the network does not
        fit ``config`` (too many neurons or synapses).
    """
    if encoding not in ENCODINGS:
        raise ConvertError(f"encoding = {encoding!r} is not allowed; allowed: {', '.join(ENCODINGS)}")
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ConvertError(f"timesteps = {timesteps!r} is out of range; allowed: an integer >= 1")
    if not 0 < percentile <= 100:
        raise ConvertError(f"percentile = {percentile} is out of range; allowed: (0, 100]")
    if neuron is None:
        neuron = "lif" if mlp.activation == "softlif" else "if"
    if neuron not in ("if", "lif"):
        raise ConvertError(f"neuron = {neuron!r} is not allowed; allowed: 'if', 'lif'")
    if neuron == "lif" and mlp.activation != "softlif":
        raise ConvertError(f"neuron = 'lif' needs an MLP trained with activation 'softlif', not "
                           f"{mlp.activation!r}; use neuron = 'if'")
    k_lif, r_lif = _lif_of(mlp.softlif_params) if neuron == "lif" else (4, 2)
    alpha = 1.0 - 2.0 ** -k_lif
    amp = 1.0 / _lif_rate(np.float64(2.0), mlp.softlif_params.get("tau_rc", TAU_RC),
                          mlp.softlif_params.get("tau_ref", TAU_REF))
    x = np.asarray(x_norm, dtype=float)
    if x.ndim != 2 or x.shape[1] != mlp.sizes[0]:
        raise ConvertError(f"normalisation data has shape {x.shape}; the MLP takes [n, {mlp.sizes[0]}]")
    n_layers = len(mlp.weights)
    T, L = timesteps, n_layers
    R = T + L
    acts = mlp.activations(x)
    lambdas, prev = [], 1.0
    scaled: list[tuple[np.ndarray, np.ndarray]] = []
    kinds = ["lif" if neuron == "lif" and k < n_layers - 1 else "if" for k in range(n_layers)]
    for k, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        if kinds[k] == "lif":
            # j = a + 1 in units of the threshold current θ(1 − α); one spike per step of the
            # layer below stands for ``prev`` of its activation; this layer's activation
            # h = amp · r(j) is h · dt / amp spikes per step
            scaled.append(((1.0 - alpha) * w * prev, (1.0 - alpha) * (b + 1.0)))
            prev = amp / LIF_DT
            lambdas.append(prev)
            continue
        a = acts[k]
        pos = a[a > 0]
        pct = output_percentile if (k == n_layers - 1 and output_percentile is not None) else percentile
        lam = float(np.percentile(pos, pct)) if pos.size else 1.0
        lam = lam if lam > 0 else 1.0
        lambdas.append(lam)
        ws = w * prev / lam
        bs = b / lam * (T / R)  # per-step bias: it acts on all R steps of the run
        if k < n_layers - 1:  # half a threshold over the run: hidden counts round, not floor
            bs = bs + 0.5 / R
        if k == 0 and encoding == "ttfs":
            # layer 1 gets R - 1 - t_i = x̂ (T - 1) + L events from a latched relay instead of
            # x̂ T: take the extra L - x̂ (x̂ at its training mean) out of the bias
            bs = bs - ws @ (L - x.mean(axis=0)) / R
        scaled.append((ws, bs))
        prev = lam
    lim = config.limits()
    wmax, bmax, tmax = lim.weight[1], lim.bias[1], lim.threshold[1]
    net = Network()
    sizes = mlp.sizes
    ids: list[list[int]] = []
    nid = 0
    for n in sizes:
        ids.append(list(range(nid, nid + n)))
        nid += n
    for i in ids[0]:
        net.add_neuron(i, threshold=1, name=f"in{i}")
        net.add_input(i, f"x{i}")
        if encoding == "ttfs":
            net.add_synapse(i, i, 1, 1)
    thresholds, clipped, dropped = [], 0, 0
    for k, (ws, bs) in enumerate(scaled):
        lif = kinds[k] == "lif"
        peak = float(np.abs(ws).max()) if ws.size else 0.0
        theta = int(min(tmax, max(1, math.floor(wmax / peak)) if peak > 0 else wmax))
        thresholds.append(theta)
        wq = np.rint(ws * theta).astype(np.int64)
        bq = np.rint(bs * theta).astype(np.int64)
        clipped += int(np.sum(np.abs(bq) > bmax))
        bq = np.clip(bq, -bmax, bmax)
        if touch_bias:
            bq = np.where(bq == 0, 1, bq)
        last = k == n_layers - 1
        mode: dict[str, Any] = ({"leak": "shift", "leak_shift": k_lif, "refractory": r_lif}
                                if lif else {"reset": "subtract"})
        for j, i in enumerate(ids[k + 1]):
            net.add_neuron(i, threshold=theta, bias=int(bq[j]), name=f"out{j}" if last else f"h{k + 1}_{j}",
                           **mode)
        pre, post = ids[k], ids[k + 1]
        nz = np.argwhere(wq != 0)
        dropped += int(wq.size - len(nz))
        for j, i in nz:
            net.add_synapse(pre[i], post[j], int(wq[j, i]), 1)
    for j, i in enumerate(ids[-1]):
        net.add_output(i, f"class{j}")
    if clipped:
        log.warning("%d biases did not fit bias_bits = %d of core %r and were clipped to ±%d",
                    clipped, config.bias_bits, config.name, bmax)
    enc = _encoder(encoding, sizes[0], T)
    attach_io(net, enc, WTADecoder(n_outputs=sizes[-1]), latency=L)
    net.metadata["conversion"] = {
        "method": "data-based normalisation, IF reset-by-subtraction (Rueckauer et al. 2017)",
        "activation": mlp.activation, "percentile": percentile, "lambdas": lambdas,
        "thresholds": thresholds, "timesteps": T, "latency": L, "run_steps": R,
        "encoding": encoding, "config": config.name, "sizes": sizes, "neurons": kinds,
        **({"lif": {"leak_shift": k_lif, "refractory": r_lif}} if neuron == "lif" else {}),
    }
    net.validate()
    if check_fit:
        lower(net, config)
    report = ConversionReport(lambdas, thresholds, T, L, encoding, clipped, dropped, scaled, kinds,
                              (k_lif, r_lif))
    return net, report


# ------------------------------------------------------------------------------ running
def _input_trains(encoding: str, x: np.ndarray, T: int, R: int) -> np.ndarray:
    """``[R, batch, n_in]`` relay spikes, exactly as the relays fire in the integer network."""
    enc = _encoder(encoding, x.shape[1], T)
    s = np.zeros((R, len(x), x.shape[1]), dtype=bool)
    for b, events in enumerate(enc.encode_batch(x)):
        for i, t, _v in events:
            if t < R:
                if encoding == "ttfs":
                    s[t:, b, i] = True
                else:
                    s[t, b, i] = True
    return s


def float_snn_predict(report: ConversionReport, x: ArrayLike, timesteps: int | None = None,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The float SNN: the converted network's IF dynamics in numpy, with unquantized weights.

    Same structure, timing (one step per layer), reset by subtraction, touch rule (a neuron is
    touched when any presynaptic neuron spiked or its bias is nonzero) and WTA decoding as the
    integer network, but threshold 1 and the normalised float weights and biases.

    Returns
    -------
    (predictions, output counts ``[batch, n_out]``)
    """
    x = np.asarray(x, dtype=float)
    T = report.timesteps if timesteps is None else timesteps
    L = report.latency
    R = T + L
    s_in = _input_trains(report.encoding, x, T, R)
    prev_spk = s_in  # [R, batch, n]
    kinds = report.kinds or ["if"] * len(report.scaled)
    k_lif, r_lif = report.lif
    alpha = 1.0 - 2.0 ** -k_lif
    for (ws, bs), kind in zip(report.scaled, kinds, strict=True):
        lif = kind == "lif"
        v = np.zeros((len(x), ws.shape[0]))
        refr_until = np.full(v.shape, -1)
        spk = np.zeros((R, len(x), ws.shape[0]), dtype=bool)
        silent = np.zeros(prev_spk.shape[1:], dtype=bool)
        for t in range(R):  # the bias acts from step 0; spikes of step t - 1 arrive at t
            pre = prev_spk[t - 1] if t else silent
            if lif:
                v *= alpha  # the exact exponential the integer shift leak approximates
                active = refr_until < t
                v = np.where(active, v + pre.astype(float) @ ws.T + bs, v)
                touched = (pre.any(axis=1, keepdims=True) | (bs != 0)) & active
                f = touched & (v >= 1.0)
                v[f] = 0.0
                refr_until[f] = t + r_lif
            else:
                v += pre.astype(float) @ ws.T + bs
                touched = pre.any(axis=1, keepdims=True) | (bs != 0)
                f = touched & (v >= 1.0)
                v -= f
            spk[t] = f
        prev_spk = spk
    raster = np.transpose(prev_spk, (1, 0, 2))
    counts = raster.sum(axis=1)
    dec = WTADecoder(n_outputs=raster.shape[2])
    return dec.decode_batch(raster), counts


def snn_predict(net: Network, x: ArrayLike, timesteps: int | None = None, *,
                potential_bits: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The integer SNN in the reference model: the whole batch in one ``simulate_batch``.

    Parameters
    ----------
    net
        A converted network (encoder, decoder and latency in its metadata).
    x
        Inputs ``[batch, n_in]`` in ``[0, 1]``.
    timesteps
        Presentation window (default: the one the network was converted for).

    Returns
    -------
    (predictions, synaptic events per sample)
    """
    enc, dec = io_of(net)
    if timesteps is not None and timesteps != enc.steps:
        enc = _encoder("ttfs" if isinstance(enc, TTFSEncoder) else "rate", enc.n_values, timesteps)
    R = enc.steps + io_latency(net)
    results = simulate_batch(net, enc.encode_batch(np.asarray(x, dtype=float)), R,
                             potential_bits=potential_bits)
    rasters = np.stack([output_raster(net, r) for r in results])
    return dec.decode_batch(rasters), np.array([r.events for r in results])


@dataclass
class Evaluation:
    """Accuracy at every stage (fractions in ``[0, 1]``) and cost."""

    ann: float
    float_snn: float
    int_snn: float
    events_per_inference: float
    curve: list[tuple[int, float]] = field(default_factory=list)

    def steps_within(self, points: float = 1.0) -> int | None:
        """Fewest timesteps on :attr:`curve` whose integer-SNN accuracy is within ``points``
        percentage points of the ANN (None if none is)."""
        for t, acc in sorted(self.curve):
            if acc >= self.ann - points / 100.0:
                return t
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (accuracies rounded to 4 digits)."""
        return {"ann_accuracy": round(self.ann, 4), "float_snn_accuracy": round(self.float_snn, 4),
                "int_snn_accuracy": round(self.int_snn, 4),
                "events_per_inference": round(self.events_per_inference, 1),
                "curve": [[t, round(a, 4)] for t, a in self.curve]}


def evaluate(mlp: MLP, net: Network, report: ConversionReport, x: ArrayLike, y: ArrayLike, *,
             curve_steps: Sequence[int] = (), potential_bits: int = 16) -> Evaluation:
    """Evaluate every stage on ``(x, y)``.

    Parameters
    ----------
    mlp, net, report
        The ANN, and what :func:`convert` made of it.
    x, y
        Test inputs (``[0, 1]``) and labels.
    curve_steps
        Windows ``T`` for the accuracy-vs-timesteps curve (integer SNN, reference model).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=int)
    ann = float(np.mean(mlp.predict(x) == y))
    fpred, _ = float_snn_predict(report, x)
    ipred, events = snn_predict(net, x, potential_bits=potential_bits)
    curve = []
    for t in curve_steps:
        p, _ = snn_predict(net, x, t, potential_bits=potential_bits)
        curve.append((int(t), float(np.mean(p == y))))
    return Evaluation(ann, float(np.mean(fpred == y)), float(np.mean(ipred == y)),
                      float(events.mean()), curve)


def save_curve_plot(ev: Evaluation, path: str | Path, title: str = "") -> None:
    """Accuracy against timesteps (integer SNN), with the ANN level, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ts = [t for t, _ in ev.curve]
    ax.plot(ts, [100 * a for _, a in ev.curve], "o-", label="integer SNN (reference model)")
    ax.axhline(100 * ev.ann, color="k", ls="--", lw=1, label="ANN")
    ax.axhline(100 * ev.ann - 1, color="grey", ls=":", lw=1, label="ANN − 1 point")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("timesteps per sample (T)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "accuracy vs timesteps")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)


def provenance(net: Network, data: Dataset, ev: Evaluation, extra: dict[str, Any] | None = None) -> None:
    """Record task, accuracies, timesteps and the input scaling in ``net.metadata``."""
    net.metadata["provenance"] = {
        "trainer": "spikeforge.toolchain.train.convert",
        "task": data.name,
        "input_scaling": {"lo": data.lo.tolist(), "hi": data.hi.tolist(),
                          "note": "encoder input is (x - lo) / (hi - lo), clipped to [0, 1]"},
        **ev.to_dict(),
        **(extra or {}),
    }
