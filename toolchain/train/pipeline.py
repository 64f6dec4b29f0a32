"""The ANN-to-SNN conversion run end to end: train (or load) an MLP, convert, evaluate.

What ``spikeforge train convert`` and ``spikeforge bench convert`` run; the method is in
:mod:`spikeforge.toolchain.train.convert`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.nirio import affine_chain

from .convert import (
    MLP,
    ConvertError,
    Dataset,
    Evaluation,
    convert,
    evaluate,
    lif_softlif_params,
    load_task,
    provenance,
    train_mlp,
)

__all__ = ["load_weights", "parse_hidden", "train_and_convert"]

log = logging.getLogger(__name__)


def parse_hidden(spec: str) -> tuple[int, ...]:
    """Hidden widths from ``"128"`` or ``"64,32"``; :class:`ConvertError` naming the value."""
    try:
        hidden = tuple(int(h) for h in str(spec).split(",") if h.strip())
    except ValueError:
        raise ConvertError(f"--hidden = {spec!r} is not a comma-separated list of integers") from None
    if any(h < 1 for h in hidden):
        raise ConvertError(f"--hidden = {spec!r}: every width must be >= 1")
    return hidden


def load_weights(path: str, activation: str) -> MLP:
    """A trained MLP from an ``.npz`` (``MLP.save``) or a NIR file of Affine/Linear layers."""
    if path.endswith(".npz"):
        return MLP.load(path)
    import nir  # h5py behind it: only for NIR weights

    ws, bs = affine_chain(nir.read(path, type_check=False))
    return MLP.from_arrays(ws, bs, activation)


def train_and_convert(task: str, cfg: CoreConfig, *, hidden: Sequence[int] = (128,),
                      activation: str = "clipped_relu", timesteps: int = 32, epochs: int = 40,
                      noise: float = 0.0, encoding: str = "rate", neuron: str | None = None,
                      percentile: float = 99.9, weights: str | None = None, seed: int = 0,
                      curve_steps: Sequence[int] = (2, 4, 8, 16, 32, 64),
                      progress: bool = True) -> tuple[MLP, Any, Evaluation, Dataset]:
    """Train (or load ``weights``), convert for ``cfg`` and evaluate on the test split.

    Returns
    -------
    (mlp, network, evaluation, dataset)
    """
    data = load_task(task, seed=seed)
    t0 = time.perf_counter()
    if weights:
        mlp = load_weights(weights, activation)
    else:
        bar = None
        if progress:
            bar = tqdm(total=epochs, desc=f"train {task}", unit="epoch", file=sys.stderr, disable=None, leave=False)

        def tick(epoch: int, loss: float) -> None:
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.update(1)

        lif = lif_softlif_params(4, 2) if activation == "softlif" else None
        mlp = train_mlp(data.x_train, data.y_train, hidden=tuple(hidden), activation=activation, epochs=epochs,
                        noise=noise, seed=seed, softlif_params=lif, progress=tick)
        if bar is not None:
            bar.close()
    train_s = time.perf_counter() - t0
    net, report = convert(mlp, data.x_train, cfg, timesteps=timesteps, encoding=encoding,
                          percentile=percentile, neuron=neuron)
    t0 = time.perf_counter()
    ev = evaluate(mlp, net, report, data.x_test, data.y_test, curve_steps=tuple(curve_steps),
                  potential_bits=cfg.potential_bits)
    provenance(net, data, ev, {"timesteps": timesteps, "config": cfg.name,
                               "train_seconds": round(train_s, 2), "seed": seed})
    log.info("evaluated in %.1f s", time.perf_counter() - t0)
    return mlp, net, ev, data
