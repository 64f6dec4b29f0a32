"""Train a liquid state machine for a series task, evaluate it, and benchmark it.

:func:`train_reservoir` builds and tunes the reservoir (:mod:`.generator`), runs the training
and test series through the integer network in the reference model, fits the host readout on
the chosen features and, for classification, the on-core readout on the ``total`` features
(:mod:`.readout`), then runs the test split again through the whole network — reservoir and
output neurons — and decodes the output spikes: that is the on-core accuracy, what the FPGA
computes (the reference model is its bit-exact oracle).

:func:`bench` returns one figure dict per task: host and on-core figures, events per inference,
training seconds, the floor (a logistic / linear model on the raw inputs) and, when the optional
``reservoirpy`` is installed, its echo state network with the same number of units on the same
splits (float, non-spiking).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import lower
from spikeforge.toolchain.codec import SeriesEncoder, io_of
from spikeforge.toolchain.ir import Network

from .generator import ReservoirParams, build_reservoir, run_states, tune_gains
from .readout import attach_classifier, features, fit_host, frame_traces, span_of
from .tasks import SeriesTask, load_series_task

__all__ = ["DEFAULTS", "ReservoirReport", "bench", "esn_baseline", "nrmse", "raw_floor", "train_reservoir"]

log = logging.getLogger(__name__)

#: Per-task defaults of the generator and readout (measured choices; see README).
DEFAULTS: dict[str, dict[str, Any]] = {
    "japanese-vowels": {"params": {"n_neurons": 400, "connectivity": 0.1, "leak_shift": 2,
                                   "leak_shift_max": 5, "target_rate": 0.1, "input_fraction": 0.1}, "c": 1.0},
    "mackey-glass": {"params": {"n_neurons": 300, "connectivity": 0.1, "leak_shift": 2, "leak_shift_max": 5,
                                "target_rate": 0.06, "input_fraction": 0.5}, "alpha": 1.0, "frame_steps": 16},
    "digits-sequence": {"params": {"n_neurons": 400, "connectivity": 0.1, "leak_shift": 2,
                                   "leak_shift_max": 5, "target_rate": 0.06}, "c": 0.1},
}


#: Shifts k of the decayed traces (t ← t − (t >> k) + 256·counts, per frame) the regression readout reads.
TRACE_SHIFTS = (1, 2, 4)


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root-mean-square error over the target's standard deviation."""
    return float(np.sqrt(np.mean((pred - target) ** 2)) / np.std(target))


@dataclass
class ReservoirReport:
    """Figures of one trained reservoir (JSON-able through :meth:`to_dict`)."""

    task: str
    kind: str
    host: float
    onchip: float | None
    onchip_float: float | None
    events_per_inference: float
    train_seconds: float
    neurons: int
    synapses: int
    reservoir: dict[str, Any] = field(default_factory=dict)
    readout: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``host``/``onchip`` are accuracies, or the NRMSE for regression)."""
        metric = "accuracy" if self.kind == "classification" else "nrmse"
        d = {"task": self.task, "metric": metric, f"host_{metric}": round(self.host, 4),
             "events_per_inference": round(self.events_per_inference, 1),
             "train_seconds": round(self.train_seconds, 2), "neurons": self.neurons,
             "synapses": self.synapses, "reservoir": self.reservoir, "readout": self.readout}
        if self.onchip is not None:
            d[f"onchip_{metric}"] = round(self.onchip, 4)
            d[f"onchip_float_{metric}"] = round(self.onchip_float or 0.0, 4)
        return d


def _encoder(task: SeriesTask, params: ReservoirParams, frames: int, frame_steps: int,
             mode: str) -> SeriesEncoder:
    return SeriesEncoder(n_values=task.channels * frames, steps=frames * frame_steps, channels=task.channels,
                         frames=frames, frame_steps=frame_steps, value=params.input_threshold, mode=mode,
                         push_pull=True, extra_inputs=1 if task.kind == "classification" else 0)


def train_reservoir(task: SeriesTask | str, config: CoreConfig | str = "up5k",
                    params: ReservoirParams | None = None, *, frame_steps: int | None = None,
                    mode: str = "current", host_features: str = "windows", windows: int = 2,
                    c: float | None = None, alpha: float | None = None,
                    progress: bool = False) -> tuple[Network, ReservoirReport]:
    """Build, tune and read out a reservoir for ``task`` on ``config``.

    Parameters
    ----------
    task
        A :class:`SeriesTask` or a name for :func:`load_series_task`.
    config
        The core (or preset name); every value fits its :meth:`~CoreConfig.limits`.
    params
        Generator parameters (default: :data:`DEFAULTS` of the task, else ``ReservoirParams()``).
    frame_steps
        Steps per frame (default: the task's).
    mode
        Input encoding: ``"current"`` (INPUT values every step) or ``"rate"``.
    host_features
        ``"windows"`` or ``"total"`` for the host classifier (regression uses traces).
    windows
        Parts of each series for ``windows`` features.
    c, alpha
        Logistic inverse regularisation / ridge strength.
    progress
        Show progress bars.

    Returns
    -------
    (Network, ReservoirReport)
        Classification: reservoir + output neurons, encoder and first-spike decoder in
        ``metadata["io"]``. Regression: the reservoir, with the encoder and the host ridge
        readout (``metadata["io"]["readout"]``) recorded.
    """
    t0 = time.perf_counter()
    task = load_series_task(task) if isinstance(task, str) else task
    cfg = preset(config) if isinstance(config, str) else config
    dflt = DEFAULTS.get(task.name, {})
    params = params or ReservoirParams(**dflt.get("params", {}))
    c = dflt.get("c", 1.0) if c is None else c
    alpha = dflt.get("alpha", 1.0) if alpha is None else alpha
    fs = frame_steps or dflt.get("frame_steps", task.frame_steps)
    xtr, xte = task.scaled(task.x_train), task.scaled(task.x_test)
    if task.kind == "regression":  # one run: the test frames continue the training frames
        xtr = np.concatenate([xtr, xte], axis=1)
    enc = _encoder(task, params, xtr.shape[1], fs, mode)
    res = build_reservoir(enc, cfg, params)
    tune_x = xtr
    if task.kind == "regression":  # tune on the first 500 frames (the rest padding: silent, cheap)
        tune_x = xtr.copy()
        tune_x[:, 500:] = np.nan
    tune_gains(res, tune_x, cfg)
    n_in = len(res.inputs)
    sources = res.inputs[: enc.channels * 2] + res.neurons  # relays and reservoir: the network's state
    pos = res.network.index_of()
    cols = [pos[i] for i in sources]
    extra = 1 if task.kind == "classification" else 0  # + step T_end, the readout's decision step
    ctr, etr, _ = run_states(res.network, enc, xtr, potential_bits=cfg.potential_bits, steps=enc.steps + extra,
                             progress=progress)
    info: dict[str, Any] = {"task": task.metadata(), "reservoir": res.info(), "frame_steps": fs, "mode": mode}
    if task.kind == "regression":
        n_tr = task.x_train.shape[1]
        f = frame_traces(ctr[:, :, cols], TRACE_SHIFTS)[0].astype(float)
        ytr = task.y_train[0]
        keep = ~np.isnan(ytr)
        ro = fit_host(f[:n_tr][keep], ytr[keep], "regression", alpha=alpha)
        pred = ro.predict(f[n_tr:])
        host = nrmse(pred, task.y_test[0])
        w, b = ro.linear()
        net = res.network
        net.metadata["io"] = {"encoder": enc.to_dict(), "readout": {
            "kind": "host_ridge", "features": "frame counts and shift-decayed traces of the sources",
            "trace_shifts": list(TRACE_SHIFTS), "sources": sources, "weights": w[0].round(8).tolist(),
            "bias": float(b[0])}}
        net.metadata["reservoir"] = info
        lower(net, cfg)
        report = ReservoirReport(task.name, task.kind, host, None, None, float(etr[0]) / xtr.shape[1],
                                 time.perf_counter() - t0, len(net.neurons), len(net.synapses), res.info(),
                                 {"kind": "ridge", "alpha": alpha, "test_frames": int(task.x_test.shape[1])})
        return net, report
    cte, _, _ = run_states(res.network, enc, xte, potential_bits=cfg.potential_bits, steps=enc.steps + 1,
                           progress=progress)
    sp_tr, sp_te = span_of(task.x_train), span_of(task.x_test)
    ftr = features(ctr[:, :, cols], host_features, span=sp_tr, windows=windows)
    fte = features(cte[:, :, cols], host_features, span=sp_te, windows=windows)
    host = float(np.mean(fit_host(ftr, task.y_train, "classification", c=c).predict(fte) == task.y_test))
    ttr = features(ctr[:, :, cols], "total")  # steps 0 … T_end: what the outputs integrate
    tte = features(cte[:, :, cols], "total")
    ro = fit_host(ttr, task.y_train, "classification", c=c)
    onchip_float = float(np.mean(ro.predict(tte) == task.y_test))
    w, b = ro.linear()
    net, oc = attach_classifier(res, sources, w, b, ttr, cfg, task.classes)
    enc2, dec = io_of(net)
    _, ev, raster = run_states(net, enc2, xte, potential_bits=cfg.potential_bits, outputs=oc.outputs,
                               progress=progress)
    assert raster is not None
    onchip = float(np.mean(dec.decode_batch(raster) == task.y_test))
    net.metadata["reservoir"] = {**info, "readout": oc.info(), "n_inputs_channels": n_in - 1}
    lower(net, cfg)
    report = ReservoirReport(task.name, task.kind, host, onchip, onchip_float, float(ev.mean()),
                             time.perf_counter() - t0, len(net.neurons), len(net.synapses), res.info(),
                             {"host": {"kind": "logistic", "features": host_features, "windows": windows,
                                       "c": c}, "onchip": oc.info()})
    net.metadata["provenance"] = {"trainer": "spikeforge.toolchain.train.reservoir", **report.to_dict()}
    return net, report


def raw_floor(task: SeriesTask) -> float:
    """The floor: logistic regression on the raw (padded, zero-filled) series, or a linear
    one-step predictor from the current value (accuracy or NRMSE on the test split)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if task.kind == "regression":
        u, y = task.x_train[0, :, 0], task.y_train[0]
        keep = ~np.isnan(y)
        lr = LinearRegression().fit(u[keep, None], y[keep])
        return nrmse(lr.predict(task.x_test[0, :, :1]), task.y_test[0])
    xtr = np.nan_to_num(task.x_train).reshape(len(task.x_train), -1)
    xte = np.nan_to_num(task.x_test).reshape(len(task.x_test), -1)
    sc = StandardScaler().fit(xtr)
    lr = LogisticRegression(max_iter=5000).fit(sc.transform(xtr), task.y_train)
    return float(lr.score(sc.transform(xte), task.y_test))


def esn_baseline(task: SeriesTask, units: int, seed: int = 0) -> float | None:
    """reservoirpy's echo state network with ``units`` units on the same splits (None if
    reservoirpy is not installed). Classification: logistic regression on the mean state over
    each series (and the mean over each half); regression: ridge one-step prediction."""
    try:
        import reservoirpy
        from reservoirpy.nodes import Reservoir as RPReservoir
    except ImportError:
        return None
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    quiet = getattr(reservoirpy, "verbosity", None)  # reservoirpy < 0.4 prints progress unless told
    if quiet is not None:
        quiet(0)
    esn = RPReservoir(units, lr=0.3, sr=0.9, seed=seed)
    if task.kind == "regression":
        u = task.scaled(np.concatenate([task.x_train, task.x_test], axis=1))[0]
        states = esn.run(u)
        n_tr = task.x_train.shape[1]
        y = task.y_train[0]
        keep = ~np.isnan(y)
        rd = Ridge(alpha=1e-6).fit(states[:n_tr][keep], y[keep])
        return nrmse(rd.predict(states[n_tr:]), task.y_test[0])

    started = False

    def feats(x: np.ndarray) -> np.ndarray:
        nonlocal started
        out = []
        for s in task.scaled(x):
            s = s[~np.isnan(s).all(axis=1)]
            if started:  # reservoirpy >= 0.4 cannot reset a node before its first run
                esn.reset()
            started = True
            st = esn.run(s)
            h = len(st) // 2
            out.append(np.concatenate([st.mean(axis=0), st[:h].mean(axis=0), st[h:].mean(axis=0)]))
        return np.array(out)

    ftr, fte = feats(task.x_train), feats(task.x_test)
    sc = StandardScaler().fit(ftr)
    lr = LogisticRegression(max_iter=5000).fit(sc.transform(ftr), task.y_train)
    return float(lr.score(sc.transform(fte), task.y_test))


def bench(tasks: tuple[str, ...] = ("japanese-vowels", "mackey-glass", "digits-sequence"),
          config: CoreConfig | str = "up5k", *, machine: dict[str, Any] | None = None,
          progress: bool = False) -> list[dict[str, Any]]:
    """One figure dict per task: the reservoir's host and on-core figures, the floor and the ESN.

    Parameters
    ----------
    tasks
        Task names.
    config
        Target core.
    machine
        A description of the machine copied into every dict (default:
        :func:`spikeforge.sim.bench.machine_description`).
    """
    from spikeforge.sim.bench import machine_description

    machine = machine_description() if machine is None else machine
    out = []
    for name in tasks:
        task = load_series_task(name)
        net, rep = train_reservoir(task, config, progress=progress)
        d = {"bench": "reservoir", **rep.to_dict(), "config": config if isinstance(config, str) else config.name}
        d["floor_raw_inputs"] = round(raw_floor(task), 4)
        esn = esn_baseline(task, rep.reservoir["params"]["n_neurons"])
        if esn is None:
            log.warning("reservoirpy is not installed: no ESN comparison (pip install 'spikeforge[bench]')")
            d["esn_reservoirpy"] = "not installed (pip install 'spikeforge[bench]')"
        else:
            d["esn_reservoirpy"] = round(esn, 4)
        d["machine"] = machine
        out.append(d)
    return out
