"""Plots of simulation results (matplotlib, Agg backend: no screen needed).

Only figure objects are used (no ``pyplot`` global state), so plotting is safe in tests and
threads and never opens a window.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .ir import Network
from .reference import SimResult

__all__ = ["raster_figure", "save_raster"]

log = logging.getLogger(__name__)

_MAX_TICKS = 40


def raster_figure(result: SimResult, network: Network, title: str | None = None) -> Figure:
    """A spike raster: one row per neuron (network order), one dot per spike.

    Output neurons are drawn in a highlight colour and their rows shaded; input neurons are
    marked on the y axis.

    Parameters
    ----------
    result
        What :func:`~spikeforge.toolchain.reference.simulate` returned.
    network
        The simulated network (for ports and ids).
    title
        Figure title (default: a summary of the run).
    """
    ids = [int(i) for i in result.neuron_ids]
    n = len(ids)
    row = {nid: k for k, nid in enumerate(ids)}
    outputs = {p.neuron for p in network.outputs}
    inputs = {p.neuron for p in network.inputs}
    out_rows = np.array(sorted(row[i] for i in outputs if i in row), dtype=np.int64)

    fig = Figure(figsize=(10, max(3.0, min(12.0, 0.25 * n + 1.5))), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for r in out_rows:
        ax.axhspan(r - 0.5, r + 0.5, color="tab:orange", alpha=0.12, linewidth=0)
    t, idx = result.spike_times, result.spike_index
    is_out = np.isin(idx, out_rows)
    size = 12 if n <= 100 else 2
    ax.scatter(t[~is_out], idx[~is_out], s=size, marker="|" if n <= 100 else ".",
               color="tab:blue", label="hidden / input neurons")
    ax.scatter(t[is_out], idx[is_out], s=size * 2, marker="|" if n <= 100 else ".",
               color="tab:red", label="output neurons")
    ax.set_xlim(-0.5, max(result.steps, 1) - 0.5)
    ax.set_ylim(-0.5, max(n, 1) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron (id)")
    if n <= _MAX_TICKS:
        ax.set_yticks(range(n))
        names = {x.id: x.name for x in network.neurons}
        labels = []
        for nid in ids:
            tag = ("in " if nid in inputs else "") + ("out " if nid in outputs else "")
            label = f"{tag}{nid}"
            labels.append(f"{names[nid]} ({label})" if names.get(nid) else label)
        ax.set_yticklabels(labels, fontsize=8)
        for lab, nid in zip(ax.get_yticklabels(), ids, strict=True):
            if nid in outputs:
                lab.set_color("tab:red")
    ax.set_title(title if title is not None else
                 f"spike raster: {n} neurons, {result.steps} steps, {len(t)} spikes")
    if len(t):
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def save_raster(result: SimResult, network: Network, path: str | Path, title: str | None = None) -> None:
    """Write :func:`raster_figure` to ``path`` (PNG, or any format matplotlib infers)."""
    fig = raster_figure(result, network, title)
    fig.savefig(str(path))
    log.info("wrote spike raster to %s", path)
