"""The evolutionary trainer's settings per built-in task (a user gets the README bars with no flags)."""

from __future__ import annotations

from typing import Any

from .evolve import EvolveConfig

__all__ = ["TASK_DEFAULTS", "default_config", "task_defaults"]

#: Defaults per built-in task. ``settings`` are :class:`~spikeforge.toolchain.train.evolve.EvolveConfig`
#: fields.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "xor": {"population": 30, "generations": 30, "target_fitness": 1.0, "settings": {}},
    "breast-cancer": {"population": 100, "generations": 60,
                      "settings": {"start_synapses": 16, "mutations": 3.0, "threshold_max": 1023}},
    "cartpole": {"population": 100, "generations": 60, "target_fitness": 1.0, "settings": {}},
}
_FALLBACK: dict[str, Any] = {"population": 100, "generations": 50, "settings": {}}


def task_defaults(spec: str) -> dict[str, Any]:
    """Population, generations, target fitness and settings of task ``spec`` (a plug-in task
    gets the fallback)."""
    return TASK_DEFAULTS.get(spec, _FALLBACK)


def default_config(spec: str, **overrides: Any) -> EvolveConfig:
    """The :class:`EvolveConfig` a task gets with no flags (``overrides`` win)."""
    d = task_defaults(spec)
    return EvolveConfig(**{"population": d["population"], **d["settings"], **overrides})
