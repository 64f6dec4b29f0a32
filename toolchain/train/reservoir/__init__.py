"""Reservoir computing: liquid state machines of the contract's neurons, with trained readouts.

* :mod:`.generator` — a seeded integer reservoir within a core's limits, its gains tuned by the
  firing rate measured in the reference model;
* :mod:`.readout` — state features, host readouts (logistic / ridge) and the classifier as
  output neurons on the core;
* :mod:`.tasks` — ``japanese-vowels``, ``mackey-glass``, ``digits-sequence``, ``module:callable``;
* :mod:`.train` — :func:`train_reservoir` and :func:`bench`.
"""

from .generator import (
    Reservoir,
    ReservoirError,
    ReservoirParams,
    build_reservoir,
    run_states,
    tune_gains,
)
from .readout import HostReadout, OnCoreReadout, attach_classifier, features, fit_host, frame_traces
from .tasks import BUILTIN, SeriesTask, SeriesTaskError, load_series_task, mackey_glass
from .train import DEFAULTS, ReservoirReport, bench, esn_baseline, nrmse, raw_floor, train_reservoir

__all__ = [
    "BUILTIN",
    "DEFAULTS",
    "HostReadout",
    "OnCoreReadout",
    "Reservoir",
    "ReservoirError",
    "ReservoirParams",
    "ReservoirReport",
    "SeriesTask",
    "SeriesTaskError",
    "attach_classifier",
    "bench",
    "build_reservoir",
    "esn_baseline",
    "features",
    "fit_host",
    "frame_traces",
    "load_series_task",
    "mackey_glass",
    "nrmse",
    "raw_floor",
    "run_states",
    "train_reservoir",
    "tune_gains",
]
