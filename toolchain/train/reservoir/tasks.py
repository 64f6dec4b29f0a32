"""Time-series tasks for the reservoir trainer: what a liquid state machine is fed and scored on.

A :class:`SeriesTask` holds series ``[samples, frames, channels]`` (shorter series padded with
all-NaN frames at the front), the raw-value range the encoder scales to ``[0, 1]``, and either
class labels (``kind == "classification"``) or one target per frame (``kind ==
"regression"``; NaN where there is none, e.g. the washout).

Built in (:data:`BUILTIN`):

``japanese-vowels``
    UCI Japanese Vowels (Kudo, Toyama & Shimbo 1999; CC BY 4.0): 12 LPC cepstrum
    coefficients per frame, 7–29 frames, 9 speakers; the standard split of 270 training and
    370 test utterances. The copy in ``data/japanese_vowels.npz`` was made from the ``.ts``
    files in the sktime 1.2.0 wheel by ``scripts/make_japanese_vowels.py`` (no download at
    run time).
``mackey-glass``
    The Mackey–Glass delay differential equation ``dx/dt = a x(t−τ)/(1 + x(t−τ)^n) − b x``
    with ``a = 0.2, b = 0.1, n = 10, τ = 17``, integrated here (:func:`mackey_glass`, RK4 with
    ``dt = 0.1``, the delayed value linearly interpolated on the grid, constant history 1.2),
    sampled every time unit; the first 500 samples are dropped. One-step prediction:
    frame ``t`` carries ``x(t)``, its target is ``x(t + 1)``. 2,000 training frames
    (the first 100 a washout), then 1,000 test frames, run as one series.
``digits-sequence``
    scikit-learn's 8×8 digits fed row by row (8 frames of 8 pixels); stratified 80/20 split,
    seed 0.

A plug-in ``module:callable`` (:func:`load_series_task`) names a function or class that
returns a :class:`SeriesTask`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from spikeforge.toolchain.train.tasks import import_plugin

__all__ = [
    "BUILTIN",
    "SeriesTask",
    "SeriesTaskError",
    "digits_sequence",
    "japanese_vowels",
    "load_series_task",
    "mackey_glass",
    "mackey_glass_task",
]


class SeriesTaskError(ValueError):
    """A task cannot be built or loaded (the message names the value and the fix)."""


@dataclass
class SeriesTask:
    """Series and targets of one task.

    Attributes
    ----------
    name
        Task name (recorded in the trained network).
    kind
        ``"classification"`` or ``"regression"``.
    x_train, x_test
        ``[samples, frames, channels]`` float; all-NaN frames are padding (at the front).
    y_train, y_test
        Labels ``[samples]`` (classification) or targets ``[samples, frames]`` (regression, NaN
        where a frame has no target).
    lo, hi
        Per-channel raw range mapped to ``[0, 1]`` by the encoder (values outside are clipped).
    classes
        Class names (classification).
    frame_steps
        Suggested steps per frame.
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    classes: list[str] = field(default_factory=list)
    frame_steps: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise SeriesTaskError(f"task {self.name!r}: kind = {self.kind!r}; allowed: 'classification', "
                                  "'regression'")
        for what in ("x_train", "x_test"):
            x = getattr(self, what)
            if x.ndim != 3:
                raise SeriesTaskError(f"task {self.name!r}: {what} has shape {x.shape}; expected "
                                      "[samples, frames, channels]")
        if self.x_train.shape[2] != self.x_test.shape[2]:
            raise SeriesTaskError(f"task {self.name!r}: x_train has {self.x_train.shape[2]} channels, "
                                  f"x_test {self.x_test.shape[2]}; give both the same channels")
        if self.kind == "classification":  # one window for every sample: pad to the longest
            frames = max(self.x_train.shape[1], self.x_test.shape[1])
            self.x_train, self.x_test = (np.concatenate([np.full((len(x), frames - x.shape[1], x.shape[2]), np.nan),
                                                         x], axis=1) for x in (self.x_train, self.x_test))
        self.lo = np.broadcast_to(np.asarray(self.lo, float), (self.channels,)).copy()
        self.hi = np.broadcast_to(np.asarray(self.hi, float), (self.channels,)).copy()
        if not np.all(self.hi > self.lo):
            raise SeriesTaskError(f"task {self.name!r}: need hi > lo for every channel")

    @property
    def channels(self) -> int:
        """Values per frame."""
        return int(self.x_train.shape[2])

    @property
    def frames(self) -> int:
        """Frames of the longest series."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.classes) if self.kind == "classification" else 0

    def scaled(self, x: np.ndarray) -> np.ndarray:
        """``x`` mapped to the encoder's ``[0, 1]`` (NaN padding kept)."""
        return (x - self.lo) / (self.hi - self.lo)

    def metadata(self) -> dict[str, Any]:
        """JSON-able facts recorded in the trained network."""
        return {"name": self.name, "kind": self.kind, "classes": self.classes,
                "train_samples": int(len(self.x_train)), "test_samples": int(len(self.x_test)),
                "preprocess": {"kind": "affine", "offset": self.lo.tolist(),
                               "scale": (self.hi - self.lo).tolist()}}


def _pad_front(series: list[np.ndarray], frames: int) -> np.ndarray:
    out = np.full((len(series), frames, series[0].shape[1]), np.nan)
    for k, s in enumerate(series):
        out[k, frames - len(s):] = s
    return out


def japanese_vowels() -> SeriesTask:
    """The UCI Japanese Vowels task (270 train / 370 test, 9 speakers, 12 channels)."""
    with resources.files("spikeforge.toolchain.train").joinpath("data/japanese_vowels.npz").open("rb") as f:
        d = np.load(f, allow_pickle=False)
        frames, lengths, labels, n_train = d["frames"], d["lengths"], d["labels"], int(d["n_train"])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    series = [frames[bounds[k]:bounds[k + 1]].astype(float) for k in range(len(lengths))]
    x = _pad_front(series, int(lengths.max()))
    xtr = x[:n_train]
    flat = np.concatenate(series[:n_train])
    mu, sd = flat.mean(axis=0), flat.std(axis=0)
    return SeriesTask("japanese-vowels", "classification", xtr, labels[:n_train].astype(np.int64),
                      x[n_train:], labels[n_train:].astype(np.int64), mu - 2 * sd, mu + 2 * sd,
                      [f"speaker{k + 1}" for k in range(9)], frame_steps=4)


def mackey_glass(n: int, *, tau: float = 17.0, a: float = 0.2, b: float = 0.1, power: float = 10.0,
                 dt: float = 0.1, sample_every: float = 1.0, x0: float = 1.2) -> np.ndarray:
    """``n`` samples of the Mackey–Glass series (see the module docstring for the integrator).

    Parameters
    ----------
    n
        Samples returned (spaced ``sample_every`` time units).
    tau, a, b, power
        The equation's constants.
    dt
        RK4 step; ``tau`` and ``sample_every`` must be multiples of it.
    x0
        Constant history on ``[−τ, 0]``.
    """
    lag = round(tau / dt)
    every = round(sample_every / dt)
    if not (math.isclose(lag * dt, tau) and math.isclose(every * dt, sample_every)) or lag < 1:
        raise SeriesTaskError(f"tau = {tau} and sample_every = {sample_every} must be multiples of dt = {dt}")
    steps = n * every
    x = np.empty(lag + steps + 1)
    x[:lag + 1] = x0

    def f(xt: float, xd: float) -> float:
        return a * xd / (1.0 + xd ** power) - b * xt

    for k in range(lag, lag + steps):
        d0, d1 = x[k - lag], x[k - lag + 1]
        dh = 0.5 * (d0 + d1)
        xk = x[k]
        k1 = f(xk, d0)
        k2 = f(xk + 0.5 * dt * k1, dh)
        k3 = f(xk + 0.5 * dt * k2, dh)
        k4 = f(xk + dt * k3, d1)
        x[k + 1] = xk + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + every::every][:n]


def mackey_glass_task(train: int = 2000, test: int = 1000, washout: int = 100, transient: int = 500,
                      frame_steps: int = 4) -> SeriesTask:
    """One-step Mackey–Glass prediction (τ = 17) as one series: train frames, then test frames."""
    x = mackey_glass(transient + train + test + 1)[transient:]
    u, target = x[:-1], x[1:]
    lo, hi = float(u[:train].min()), float(u[:train].max())
    ytr = target[:train].copy()
    ytr[:washout] = np.nan
    # the test frames continue the training run (the reservoir state carries over)
    return SeriesTask("mackey-glass", "regression", u[None, :train, None], ytr[None],
                      u[None, train:, None], target[None, train:], lo, hi, frame_steps=frame_steps)


def digits_sequence(test_size: float = 0.2, seed: int = 0) -> SeriesTask:
    """scikit-learn's digits, one 8-pixel row per frame (stratified split)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(float)  # [n, 8 rows, 8 columns]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_size, stratify=d.target,
                                          random_state=seed)
    return SeriesTask("digits-sequence", "classification", xtr, ytr.astype(np.int64), xte,
                      yte.astype(np.int64), 0.0, 16.0, [str(k) for k in range(10)], frame_steps=4)


BUILTIN: dict[str, Callable[[], SeriesTask]] = {
    "japanese-vowels": japanese_vowels,
    "mackey-glass": mackey_glass_task,
    "digits-sequence": digits_sequence,
}


def load_series_task(spec: str) -> SeriesTask:
    """A built-in task by name, or ``module:callable`` returning a :class:`SeriesTask`.

    Raises
    ------
    SeriesTaskError
        Unknown name, module or attribute, or a callable that returns no SeriesTask.
    """
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if ":" not in spec:
        raise SeriesTaskError(f"task {spec!r} is unknown; allowed: {', '.join(BUILTIN)} or module:callable")
    obj = import_plugin(spec, SeriesTaskError)
    task = obj() if callable(obj) else obj
    if not isinstance(task, SeriesTask):
        raise SeriesTaskError(f"task {spec!r} gave a {type(task).__name__}; it must return a "
                              "spikeforge.toolchain.train.reservoir.SeriesTask")
    return task
