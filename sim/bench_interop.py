"""Interop benchmark: NIR files another tool wrote, against what that tool computed on them.

The files and the tool's own outputs are recorded together by ``scripts/make_nir_fixtures.py``
(the tool itself is an optional extra; the recordings are committed under ``tests/data/nir``).
Each function here imports a file with the producer's documented flags, runs it on the reference
model and compares with the recording; :func:`bench_nir` yields one figure (a JSON-able dict) per
comparison, and ``spikeforge bench nir`` prints them. The tests assert the same comparisons.

Timing convention: the other tool passes a step's input through every layer in that step; here
the input relays and then each synapse take one step, so layer ``k`` (1 = first hidden) is read
``k`` steps later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.toolchain.compiler.quantize import quantize_network
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.nirio import read_nir
from spikeforge.toolchain.reference import SimResult, simulate_batch

__all__ = ["bench_nir", "digits_agreement", "layer_ids", "layer_raster", "load_recording"]


def load_recording(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a recording (``.npz``, read without pickle)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def layer_ids(net: Network, node: str) -> list[int]:
    """Ids of the neurons a NIR import made for node ``node`` (named ``node[i]``)."""
    return [n.id for n in net.neurons if n.name.startswith(f"{node}[")]


def layer_raster(res: SimResult, ids: list[int], steps: int, lag: int) -> np.ndarray:
    """``[steps, len(ids)]`` 0/1 spikes of neurons ``ids``, read ``lag`` steps after they fired."""
    col = {nid: k for k, nid in enumerate(ids)}
    out = np.zeros((steps, len(ids)), dtype=np.uint8)
    for nid, t in res.spikes:
        if nid in col and 0 <= t - lag < steps:
            out[t - lag, col[nid]] = 1
    return out


def digits_agreement(q: Network, input_scales: list[float], rec: dict[str, np.ndarray]) -> tuple[float, float]:
    """``(argmax agreement with the tool's output counts, our accuracy)`` of a quantised digits
    network on the recorded test split (``in_bits``: packed input spikes; ``counts``; ``y``)."""
    x = np.unpackbits(rec["in_bits"], axis=-1)[:, :, :64]  # [N, T, 64]
    steps = int(rec["steps"])
    batch = [[(int(i), int(t), int(round(input_scales[i]))) for t, i in zip(*np.nonzero(xs), strict=True)]
             for xs in x]
    out_ids = [p.neuron for p in q.outputs]
    col = {nid: k for k, nid in enumerate(out_ids)}
    counts = np.zeros((len(batch), len(out_ids)), dtype=int)
    for b, res in enumerate(simulate_batch(q, batch, steps + 2, potential_bits=24)):
        for nid, _t in res.spikes:
            if nid in col:
                counts[b, col[nid]] += 1
    pred = counts.argmax(1)
    return float((pred == rec["counts"].argmax(1)).mean()), float((pred == rec["y"]).mean())


def _if_cells(data: Path, cfg: CoreConfig) -> dict[str, Any]:
    """The snnTorch IF network through ``cfg``'s quantisation: raster cells that differ."""
    rec = load_recording(data / "snntorch_if.npz")
    x, spk1, spk2 = rec["in"], rec["spk1"], rec["spk2"]
    steps, n_batch, _ = x.shape
    net = read_nir(data / "snntorch_if.nir", producer="snntorch")
    q, rep = quantize_network(net, cfg, granularity="layer")
    hidden, out = layer_ids(q, "1"), layer_ids(q, "3")
    batch = [[(int(i), int(t), int(round(rep.input_scales[i]))) for t, i in zip(*np.nonzero(x[:, b, :]), strict=True)]
             for b in range(n_batch)]
    h = o = 0
    for b, res in enumerate(simulate_batch(q, batch, steps + 2, potential_bits=cfg.potential_bits)):
        h += int((layer_raster(res, hidden, steps, 1) != spk1[:, b]).sum())
        o += int((layer_raster(res, out, steps, 2) != spk2[:, b]).sum())
    return {"case": "snntorch_if", "core": cfg.name, "hidden_cells_differ": h, "hidden_cells": int(spk1.size),
            "output_cells_differ": o, "output_cells": int(spk2.size)}


def bench_nir(data: str | Path = "tests/data/nir", config: CoreConfig | str = "up5k") -> Iterator[dict[str, Any]]:
    """One figure per recorded NIR file: our import against the producing tool's own outputs.

    Parameters
    ----------
    data
        The folder of the recordings (``tests/data/nir`` in the repository).
    config
        The core whose quantisation the networks go through.

    Raises
    ------
    FileNotFoundError
        When ``data`` holds no recordings (naming the folder and the script that makes them).
    """
    data = Path(data)
    if not (data / "snntorch_digits.npz").is_file():
        raise FileNotFoundError(f"{data}: no NIR recordings here; give the repository's tests/data/nir, or "
                                "make them with scripts/make_nir_fixtures.py (the [fixtures] extra)")
    cfg = preset(config) if isinstance(config, str) else config
    rec = load_recording(data / "snntorch_digits.npz")
    tool_acc = round(float((rec["counts"].argmax(1) == rec["y"]).mean()), 4)
    # the documented flags, then the generic reading the README gave before (impulse spikes)
    for flags, kw in (("--producer snntorch", {"producer": "snntorch"}),
                      ("--dt 1e-4 --reset subtract", {"dt": 1e-4, "reset": "subtract"})):
        net = read_nir(data / "snntorch_digits.nir", **kw)
        q, rep = quantize_network(net, cfg, granularity="layer")
        agree, acc = digits_agreement(q, rep.input_scales, rec)
        yield {"bench": "nir", "case": "snntorch_digits", "flags": flags, "core": cfg.name,
               "samples": int(len(rec["y"])), "argmax_agreement": round(agree, 4), "accuracy": round(acc, 4),
               "tool_accuracy": tool_acc}
    yield {"bench": "nir", **_if_cells(data, cfg)}
