"""NIR interchange: import NIR graphs into the IR (discretised at ``dt``) and export the IR to NIR.

NIR (``github.com/neuromorphs/NIR``, the ``nir`` package) describes spiking networks in
continuous time; files are HDF5 (:func:`nir.read` / :func:`nir.write`, never pickle). How each
continuous parameter maps onto the integer neuron contract is written out in
``docs/nir-mapping.md``; the short form:

==================  ==========================================================================
NIR node            IR
==================  ==========================================================================
``IF``              leak none; jump of a weight-``w`` spike ``r·w``; threshold ``v_threshold``
``LIF``             leak shift ``k`` with ``1 − 2⁻ᵏ`` nearest to ``exp(−dt/τ)``; jump ``r·w/τ``
``CubaLIF``         as LIF with ``τ_mem`` and gain ``r·w_in/τ_mem``: the synaptic current is
                    collapsed into an instantaneous jump (warned, with ``τ_syn/dt``)
``LI``              shift leak, reset by subtraction, threshold ``li_threshold``: its spike
                    count reads out the integrated potential (warned)
``I`` (Integrator)  leak none, reset by subtraction, threshold ``li_threshold`` (warned)
``Threshold``       leak full (memoryless), threshold ``threshold``
``Affine``          weights; its ``bias`` (a constant current) becomes the per-step neuron
                    bias ``gain·b·dt``
``Linear``, ``Scale``, ``Flatten``  composed into the synaptic weights
``Delay``           ``round(delay/dt)`` extra steps on the synapse (every synapse has 1)
``Input``           a port per element: bound straight to a neuron when the path is a 0/1
                    selection of gain 1, else through a relay neuron (one step later)
``Output``          the neurons selected by a 0/1 matrix on the path into it
==================  ==========================================================================

Gains above are the ``"impulse"`` reading; NIR leaves the spike convention to each tool, so
:func:`from_nir` takes a ``producer`` (:data:`PRODUCERS`; snnTorch: dt 1e-4, one step of
current ``Δv = r·w·dt/τ``, Euler decay ``1 − dt/τ``, ``tau = inf`` for no leak, subtract reset,
every neuron updated every step via a clock neuron) or an explicit ``spike`` (:class:`Convention`).

Reset: NIR 1.0 has only ``v_reset`` (reset to a value); the IR resets to 0 or subtracts θ.
``v_reset`` must be 0; ``reset="subtract"`` reads every spiking node as subtracting (snnTorch's
default), ``"zero"`` as resetting to 0, ``None`` (default) takes the producer's, else what a
spikeforge export recorded, else ``"zero"``. Thresholds: NIR fires on ``v > θ``, the IR on ``v ≥ θ``; the
value is carried over unchanged (the two differ only when ``v`` lands exactly on θ).

Export (:func:`to_nir`) groups neurons by leak into an ``IF`` (none), a ``LIF`` (shift) and a
``Threshold`` (full) node, one ``Linear`` per (source group, target group, delay) with a
``Delay`` node for delays above 1, an ``Affine`` from the ``Input`` carrying the input
selection and the biases, and a selection ``Linear`` into the ``Output``. What NIR has no field
for (reset by subtraction, ``v_min``, refractory, neuron ids and names, port names, the
network's metadata) travels in the graph's ``metadata["spikeforge"]`` (a JSON string), so
IR → NIR → IR is lossless for every network without parallel synapses of equal delay (those
are merged into one matrix entry). The continuous fields are still the source of the weights,
thresholds, biases and leaks on import: only the fields NIR lacks come from the metadata.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .fsutil import atomic_path
from .ir import SYNAPSES_MAX, Leak, Network, NetworkError, Reset

__all__ = [
    "PRODUCERS",
    "Convention",
    "NIRImportError",
    "SUPPORTED_NODES",
    "affine_chain",
    "from_nir",
    "read_nir",
    "to_nir",
    "write_nir",
]

log = logging.getLogger(__name__)

NEURON_NODES = ("IF", "LIF", "CubaLIF", "LI", "I", "Threshold")
TRANSFORM_NODES = ("Affine", "Linear", "Scale", "Delay", "Flatten")
#: NIR node types :func:`from_nir` imports.
SUPPORTED_NODES = ("Input", "Output", *TRANSFORM_NODES, *NEURON_NODES)
META_KEY = "spikeforge"
META_VERSION = 1


class NIRImportError(NetworkError):
    """A NIR graph cannot be imported (the message names the node, its type and why)."""


@dataclass(frozen=True)
class Convention:
    """How a producer of NIR files means its continuous parameters (NIR leaves it to the tools).

    Attributes
    ----------
    name
        The producer's name (``--producer``).
    dt
        Seconds per step the producer's parameters imply, or None (then the caller's ``dt``,
        a spikeforge export's recorded ``dt``, else 1e-3).
    spike
        ``"impulse"``: a spike of weight ``w`` is a Dirac impulse, ``Δv = r·w/τ`` (``r·w`` for
        IF); a bias ``b`` is a constant current, ``Δv = r·b·dt/τ`` per step; the decay per step
        is ``exp(−dt/τ)`` (the exact solution). ``"step"``: a spike of weight ``w`` is a current
        of ``w`` held for one step, ``Δv = r·w·dt/τ`` (``r·w·dt`` for IF), the same for a bias;
        the decay per step is ``1 − dt/τ`` (forward Euler).
    reset
        The reset the producer's neurons use (``"zero"`` or ``"subtract"``), or None (a
        spikeforge export's recorded reset, else zero).
    strict
        True when the producer fires on ``v > θ``: imported neurons that reset to zero are
        listed in ``metadata["strict_threshold"]``, which quantization turns into integer
        thresholds ``⌊θ·s⌋ + 1`` (a whole-number import gets ``θ + 1`` at once). Neurons that
        subtract θ keep ``v ≥ θ`` (the subtracted amount is the threshold in the contract, so
        ``θ + 1`` would subtract one unit too many at every spike); they differ from the
        producer only when ``v`` lands exactly on θ.
    every_step
        True when the producer updates and fires every neuron at every step, with or without
        input (snnTorch does: a neuron at ``v ≥ 2θ`` fires on consecutive steps). A spikeforge
        neuron fires only when touched, so the import adds one clock neuron (bias 1,
        threshold 1, leak full, name ``"clock"``) with a weight-0 synapse into every neuron.
    zero_reset_refractory
        Refractory steps given to neurons imported with reset to zero: snnTorch's zero reset
        acts on the step after the spike (``reset_delay``) and drops that step's input, which
        is the contract's reset to 0 with one refractory step.
    """

    name: str
    dt: float | None
    spike: str
    reset: str | None
    strict: bool = False
    every_step: bool = False
    zero_reset_refractory: int = 0


#: Producers whose NIR conventions :func:`from_nir` knows (``docs/nir-mapping.md``).
#: snnTorch 1.0 ``export_to_nir`` writes ``tau = dt/(1−beta)``, ``r = tau/dt`` with dt = 1e-4 and
#: feeds ``Linear`` outputs to ``Leaky`` as one step of current: one unit of weight moves ``v``
#: by ``r·dt/tau = 1``; its default reset subtracts the threshold; it fires on ``mem > θ``.
PRODUCERS: dict[str, Convention] = {
    "generic": Convention("generic", None, "impulse", None),
    "snntorch": Convention("snntorch", 1e-4, "step", "subtract", strict=True, every_step=True,
                           zero_reset_refractory=1),
}
SPIKE_CONVENTIONS = ("impulse", "step")


def _nir() -> Any:
    try:
        import nir
    except ImportError as e:  # pragma: no cover - nir is a dependency
        raise NIRImportError(f"the 'nir' package is needed for NIR files: {e}") from None
    return nir


def _kind(node: Any) -> str:
    return type(node).__name__


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


# ------------------------------------------------------------------------------ export
_GROUPS = (("if", Leak.NONE), ("lif", Leak.SHIFT), ("threshold", Leak.FULL))


def to_nir(net: Network, dt: float = 1.0) -> Any:
    """Export a network to a ``nir.NIRGraph`` (see the module docstring for the layout).

    Parameters
    ----------
    net
        Any valid network (integer or float).
    dt
        Seconds per timestep: sets the time constants, delays and bias currents.

    Raises
    ------
    NetworkError
        On an invalid network or ``dt <= 0``.
    """
    nir = _nir()
    net.validate()
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise NetworkError(f"dt = {dt!r} is out of range; allowed: a number > 0 (seconds per step)")
    groups: dict[str, list[int]] = {name: [] for name, _ in _GROUPS}
    of_leak = {leak: name for name, leak in _GROUPS}
    pos: dict[int, tuple[str, int]] = {}
    for n in net.neurons:
        g = of_leak[n.leak]
        pos[n.id] = (g, len(groups[g]))
        groups[g].append(n.id)
    used = [g for g, _ in _GROUPS if groups[g]]
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    n_in, n_out = len(net.inputs), len(net.outputs)
    nodes["input"] = nir.Input(input_type=np.array([max(1, n_in)]))
    nodes["output"] = nir.Output(output_type=np.array([max(1, n_out)]))
    meta_nodes: dict[str, Any] = {}
    for g in used:
        ns = [net.neuron(i) for i in groups[g]]
        size = len(ns)
        thr = np.array([float(n.threshold) for n in ns])
        gain = np.ones(size)
        if g == "if":
            nodes[g] = nir.IF(r=np.ones(size), v_threshold=thr, v_reset=np.zeros(size))
        elif g == "lif":
            tau = np.array([-dt / math.log1p(-(2.0 ** -n.leak_shift)) for n in ns])
            nodes[g] = nir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(size), v_threshold=thr,
                               v_reset=np.zeros(size))
        else:
            nodes[g] = nir.Threshold(threshold=thr)
        meta_nodes[g] = {
            "ids": groups[g],
            "reset": [n.reset.value for n in ns],
            "v_min": [n.v_min for n in ns],
            "refractory": [n.refractory for n in ns],
            "names": [n.name for n in ns],
        }
        # input selection and biases: one Affine from the Input into this group
        w_in = np.zeros((size, max(1, n_in)))
        for k, p in enumerate(net.inputs):
            gg, j = pos[p.neuron]
            if gg == g:
                w_in[j, k] = 1.0
        bias = np.array([float(n.bias) for n in ns]) / (gain * dt)
        nodes[f"in_{g}"] = nir.Affine(weight=w_in, bias=bias)
        edges += [("input", f"in_{g}"), (f"in_{g}", g)]
        # output selection
        w_out = np.zeros((max(1, n_out), size))
        for k, p in enumerate(net.outputs):
            gg, j = pos[p.neuron]
            if gg == g:
                w_out[k, j] = 1.0
        if w_out.any() or len(used) == 1:
            nodes[f"out_{g}"] = nir.Linear(weight=w_out)
            edges += [(g, f"out_{g}"), (f"out_{g}", "output")]
    mats: dict[tuple[str, str, int], np.ndarray] = {}
    merged = 0
    for s in net.synapses:
        (gs, i), (gt, j) = pos[s.pre], pos[s.post]
        key = (gs, gt, s.delay)
        if key not in mats:
            mats[key] = np.zeros((len(groups[gt]), len(groups[gs])))
        if mats[key][j, i] != 0:
            merged += 1
        mats[key][j, i] += float(s.weight)
    if merged:
        log.warning("%d parallel synapses (same pre, post and delay) were merged into one NIR "
                    "weight each: same behaviour, fewer synapses", merged)
    for (gs, gt, d), w in sorted(mats.items()):
        name = f"w_{gs}_{gt}_d{d}"
        nodes[name] = nir.Linear(weight=w)
        src = gs
        if d > 1:
            dname = f"delay_{gs}_{gt}_d{d}"
            nodes[dname] = nir.Delay(delay=np.full(len(groups[gs]), (d - 1) * dt))
            edges.append((gs, dname))
            src = dname
        edges += [(src, name), (name, gt)]
    meta = {
        "version": META_VERSION, "dt": dt, "integer": net.is_integer(),
        "order": net.neuron_ids, "nodes": meta_nodes,
        "zero_synapses": sorted({(s.pre, s.post, s.delay) for s in net.synapses if s.weight == 0}),
        "inputs": [[p.name, p.neuron] for p in net.inputs],
        "outputs": [[p.name, p.neuron] for p in net.outputs],
        "metadata": net.metadata,
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={META_KEY: json.dumps(meta)},
                        type_check=False)


def write_nir(net: Network, path: str | Path, dt: float = 1.0) -> None:
    """Export ``net`` (:func:`to_nir`) and write it as a NIR HDF5 file."""
    nir = _nir()
    graph = to_nir(net, dt)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)


# ------------------------------------------------------------------------------ import
@dataclass
class _Pop:
    """The IR neurons of one NIR neuron node."""

    name: str
    kind: str
    size: int
    threshold: np.ndarray
    gain: np.ndarray  # jump in v per unit of weight
    bias_gain: np.ndarray  # jump in v per step per unit of Affine bias
    leak: list[Leak]
    shift: list[int]
    reset: list[Reset]
    first_id: int = 0


Transfer = dict[int, np.ndarray]  # delay steps -> matrix [n_out, n_in]


def _size(node: Any, kind: str) -> int:
    if kind in ("IF", "I"):
        return _arr(node.r).size
    if kind == "Threshold":
        return _arr(node.threshold).size
    if kind == "CubaLIF":
        return max(_arr(node.r).size, _arr(node.tau_mem).size, _arr(node.v_threshold).size)
    if kind in ("LIF", "LI"):
        return max(_arr(node.r).size, _arr(node.tau).size,
                   _arr(node.v_threshold).size if kind == "LIF" else 1)
    raise AssertionError(kind)


def _bc(name: str, field: str, x: Any, n: int) -> np.ndarray:
    """``x`` as a vector of ``n`` (a scalar, e.g. snnTorch's shared ``beta``, is broadcast)."""
    a = _arr(x)
    if a.size == n:
        return a
    if a.size == 1:
        return np.full(n, a[0])
    raise NIRImportError(f"NIR node {name!r}: {field} has {a.size} values; the node has {n} neurons "
                         "(expected 1 or that many)")


def _decay(t: float, dt: float, spike: str) -> float:
    """The per-step decay of a time constant ``t`` (see :class:`Convention`)."""
    if math.isinf(t):
        return 1.0
    return math.exp(-dt / t) if spike == "impulse" else 1.0 - dt / t


def _shift_of(name: str, tau: np.ndarray, dt: float, spike: str = "impulse") -> tuple[list[Leak], list[int]]:
    leaks, shifts = [], []
    inexact: list[tuple[int, float, float, int, float]] = []
    approximate = 0
    for j, t in enumerate(tau):
        if math.isnan(t) or t <= 0:
            raise NIRImportError(f"NIR node {name!r}: tau[{j}] = {float(t)!r} is out of range; "
                                 "allowed: > 0 or inf (no leak)")
        alpha = _decay(float(t), dt, spike)
        if alpha >= 1.0:
            leaks.append(Leak.NONE)
            shifts.append(1)
            continue
        if alpha <= 0.0:
            if alpha < -1e-9:
                inexact.append((j, float(t), alpha, 0, 0.0))
            leaks.append(Leak.FULL)
            shifts.append(1)
            continue
        k = min(62, max(1, round(-math.log2(1.0 - alpha))))
        approx = 1.0 - 2.0 ** -k
        err = abs(approx - alpha)
        if err > 0.05 * (1.0 - alpha) + 1e-12:
            inexact.append((j, float(t), alpha, k, approx))
        elif err > 1e-5 * (1.0 - alpha):
            approximate += 1
        leaks.append(Leak.SHIFT)
        shifts.append(k)
    if inexact:
        j, t, alpha, k, approx = inexact[0]
        log.warning("NIR node %r: %d of %d time constants are not an exact shift leak at dt = %g s "
                    "(%s decay); e.g. tau[%d] = %g s decays by %.4f per step, the nearest shift leak "
                    "k = %d by %.4f; check --dt and --producer", name, len(inexact), len(tau), dt,
                    "exp(-dt/tau)" if spike == "impulse" else "1 - dt/tau", j, t, alpha, k, approx)
    if approximate:
        log.info("NIR node %r: %d time constants are within 5 %% of a shift leak (not exact)",
                 name, approximate)
    return leaks, shifts


def _gain(name: str, r: np.ndarray, tau: np.ndarray | None, dt: float, spike: str) -> np.ndarray:
    """Jump in ``v`` per unit of weight: ``r/τ`` (impulse) or ``r·dt/τ`` (step); ``r`` or ``r·dt``
    for IF (``tau`` None). ``r = τ = inf`` (snnTorch's beta = 1) reads ``r/τ`` as the limit of
    ``r = τ/dt``, i.e. ``1/dt``."""
    unit = 1.0 if spike == "impulse" else dt
    if tau is None:
        g = r * unit
    else:
        g = np.empty_like(r)
        for j, (rj, tj) in enumerate(zip(r, tau, strict=True)):
            if math.isinf(tj):
                if not math.isinf(rj):
                    raise NIRImportError(
                        f"NIR node {name!r}: tau[{j}] = inf with r[{j}] = {rj:g} gives no input "
                        "(r/tau = 0); write r = inf (r = tau/dt, snnTorch's rule) or an IF node")
                g[j] = unit / dt
            else:
                g[j] = rj / tj * unit
    # snnTorch stores r = τ/dt and τ in float32: r·dt/τ is 1 within float32 rounding; snap it, or
    # a weight equal to θ would land a hair above it and fire where the producer does not
    g = np.where(np.abs(g - 1.0) <= 1e-6, 1.0, g)
    if not np.all(np.isfinite(g)):
        j = int(np.argmax(~np.isfinite(g)))
        raise NIRImportError(f"NIR node {name!r}: the gain r/tau of neuron {j} is {g[j]!r}; "
                             "r and tau must be finite and > 0, or both inf")
    return g


def _population(name: str, node: Any, kind: str, dt: float, reset: str | None,
                li_threshold: float, spike: str = "impulse", size: int | None = None) -> _Pop:
    n = size if size is not None else _size(node, kind)
    default_reset = Reset(reset) if reset else Reset.ZERO
    per_step = dt if spike == "impulse" else 1.0  # bias current → jump per step, per unit of gain

    def check_zero(field: str, v: Any) -> None:
        a = _arr(v)
        if a.size and np.any(a != 0):
            raise NIRImportError(
                f"NIR node {name!r} ({kind}): {field} = {a[a != 0][0]:g} is not 0; the spikeforge "
                f"contract {'resets to 0 or subtracts θ' if field == 'v_reset' else 'leaks toward 0'}")

    def pop(thr: np.ndarray, gain: np.ndarray, leak: list[Leak], shift: list[int],
            rst: list[Reset], bias_gain: np.ndarray | None = None) -> _Pop:
        bg = gain * per_step if bias_gain is None else bias_gain
        return _Pop(name, kind, n, thr, gain, bg, leak, shift, rst)

    if kind == "IF":
        check_zero("v_reset", node.v_reset)
        return pop(_bc(name, "v_threshold", node.v_threshold, n),
                   _gain(name, _bc(name, "r", node.r, n), None, dt, spike),
                   [Leak.NONE] * n, [1] * n, [default_reset] * n)
    if kind == "I":
        log.warning("NIR node %r (I): an integrator has no threshold; imported as IF neurons with "
                    "reset by subtraction and threshold %g, whose spike count reads out v", name, li_threshold)
        return pop(np.full(n, li_threshold), _gain(name, _bc(name, "r", node.r, n), None, dt, spike),
                   [Leak.NONE] * n, [1] * n, [Reset.SUBTRACT] * n)
    if kind == "Threshold":
        return pop(_bc(name, "threshold", node.threshold, n), np.ones(n), [Leak.FULL] * n, [1] * n,
                   [default_reset] * n)
    if kind == "CubaLIF":
        tau_syn = _bc(name, "tau_syn", node.tau_syn, n)
        finite = tau_syn[np.isfinite(tau_syn)]
        log.warning("NIR node %r (CubaLIF): the synaptic current (tau_syn/dt = %.3g) is collapsed "
                    "into an instantaneous jump of the same total charge", name,
                    float(finite.max()) / dt if finite.size else math.inf)
        tau = _bc(name, "tau_mem", node.tau_mem, n)
        gain = _gain(name, _bc(name, "r", node.r, n), tau, dt, spike) * _bc(name, "w_in", node.w_in, n)
    else:
        tau = _bc(name, "tau", node.tau, n)
        gain = _gain(name, _bc(name, "r", node.r, n), tau, dt, spike)
    check_zero("v_leak", node.v_leak)
    leaks, shifts = _shift_of(name, tau, dt, spike)
    if kind == "LI":
        log.warning("NIR node %r (LI): a leaky integrator has no threshold; imported as leaky "
                    "neurons with reset by subtraction and threshold %g", name, li_threshold)
        return pop(np.full(n, li_threshold), gain, leaks, shifts, [Reset.SUBTRACT] * n)
    check_zero("v_reset", node.v_reset)
    return pop(_bc(name, "v_threshold", node.v_threshold, n), gain, leaks, shifts, [default_reset] * n)


def _check_dense(name: str, kind: str, rows: int, cols: int) -> None:
    """Refuse a dense ``rows x cols`` matrix larger than a network may hold, before building it."""
    if rows * cols > SYNAPSES_MAX:
        raise NIRImportError(f"NIR node {name!r} ({kind}): a {rows} x {cols} matrix ({rows * cols} weights) is out "
                             f"of range; allowed: at most {SYNAPSES_MAX} weights (the IR's SYNAPSES_MAX)")


def _transfer(name: str, node: Any, kind: str, dt: float, n_in: int | None) -> tuple[Transfer, int, int]:
    """The node's own transfer ``{delay: matrix}`` and its (input, output) sizes."""
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=float)
        if w.ndim != 2:
            raise NIRImportError(f"NIR node {name!r} ({kind}): weight has shape {w.shape}; "
                                 "spikeforge imports 2-D weights [n_out, n_in] only")
        _check_dense(name, kind, *w.shape)
        if kind == "Affine" and _arr(node.bias).size != w.shape[0]:
            raise NIRImportError(f"NIR node {name!r} (Affine): bias has {_arr(node.bias).size} values; "
                                 f"expected {w.shape[0]} (the rows of its weight)")
        return {0: w}, w.shape[1], w.shape[0]
    if kind == "Scale":
        s = _arr(node.scale)
        _check_dense(name, kind, s.size, s.size)
        return {0: np.diag(s)}, s.size, s.size
    if kind == "Delay":
        dl = _arr(node.delay)
        _check_dense(name, kind, dl.size, dl.size)
        steps = np.rint(dl / dt).astype(int)
        if np.any(steps < 0) or np.any(np.abs(steps * dt - dl) > 1e-6 * max(dt, 1e-12) + 1e-9 * np.abs(dl)):
            bad = dl[np.argmax(np.abs(steps * dt - dl))]
            log.warning("NIR node %r (Delay): delay %g s is not a whole number of dt = %g s steps; "
                        "rounded to %d", name, bad, dt, int(round(bad / dt)))
        steps = np.maximum(steps, 0)
        out: Transfer = {}
        for d in np.unique(steps):
            out[int(d)] = np.diag((steps == d).astype(float))
        return out, dl.size, dl.size
    if kind == "Flatten":
        if n_in is None:
            shape = node.input_type.get("input") if isinstance(node.input_type, dict) else None
            if shape is None:
                raise NIRImportError(f"NIR node {name!r} (Flatten): its input shape is unknown")
            n_in = int(np.prod(shape))
        _check_dense(name, kind, n_in, n_in)
        return {0: np.eye(n_in)}, n_in, n_in
    raise AssertionError(kind)


def _compose(after: Transfer, before: Transfer, where: str = "") -> Transfer:
    """``after ∘ before`` (delays add, matrices multiply); ``where`` names the nodes for errors."""
    out: Transfer = {}
    for da, ma in after.items():
        for db, mb in before.items():
            if ma is not None and mb is not None:
                if ma.shape[1] != mb.shape[0]:
                    raise NIRImportError(f"NIR graph: {where} gives {mb.shape[0]} values to a path that "
                                         f"takes {ma.shape[1]}")
                if ma.shape[0] * mb.shape[1] > SYNAPSES_MAX:
                    raise NIRImportError(f"NIR graph: {where} is a {ma.shape[0]} x {mb.shape[1]} matrix; allowed: "
                                         f"at most {SYNAPSES_MAX} weights (the IR's SYNAPSES_MAX)")
            m = mb if ma is None else ma if mb is None else ma @ mb
            out[da + db] = out[da + db] + m if da + db in out else m
    return out


def from_nir(graph: Any, dt: float | None = None, *, reset: str | None = None,
             li_threshold: float = 1.0, producer: str = "generic",
             spike: str | None = None) -> Network:
    """Import a ``nir.NIRGraph`` as a network, discretised at ``dt`` seconds per step.

    Parameters
    ----------
    graph
        The graph (see :data:`SUPPORTED_NODES`).
    dt
        Seconds per step (default: the ``dt`` a spikeforge export recorded, else 1e-3).
    reset
        ``"zero"`` or ``"subtract"`` for every spiking node, or None (see the module docstring).
    li_threshold
        Threshold given to ``LI`` and ``I`` nodes (NIR units).
    producer
        The tool that wrote the graph (a key of :data:`PRODUCERS`): its implied ``dt``, spike
        convention and reset are the defaults of ``dt``, ``spike`` and ``reset``.
    spike
        ``"impulse"`` or ``"step"`` (see :class:`Convention`); None: the producer's.

    Returns
    -------
    Network
        Integer when the graph came from an integer spikeforge network or every imported value
        is a whole number; else float (quantize it with the compiler before the reference
        model or a core).

    Raises
    ------
    NIRImportError
        On an unsupported node (named), a structure the IR cannot express, or a bad parameter.
    """
    if producer not in PRODUCERS:
        raise NIRImportError(f"producer = {producer!r} is not known; allowed: {', '.join(PRODUCERS)} "
                             "(or 'generic' with explicit dt, spike and reset)")
    conv = PRODUCERS[producer]
    spike = conv.spike if spike is None else spike
    if spike not in SPIKE_CONVENTIONS:
        raise NIRImportError(f"spike = {spike!r} is not allowed; allowed: {', '.join(SPIKE_CONVENTIONS)}")
    reset = conv.reset if reset is None else reset
    if reset not in (None, "zero", "subtract"):
        raise NIRImportError(f"reset = {reset!r} is not allowed; allowed: 'zero', 'subtract' or None")
    if dt is None:
        dt = conv.dt
    nodes: dict[str, Any] = dict(graph.nodes)
    bad = [f"{k!r} ({_kind(v)})" for k, v in nodes.items() if _kind(v) not in SUPPORTED_NODES]
    if bad:
        raise NIRImportError(
            f"NIR graph has unsupported node(s): {', '.join(bad)}; spikeforge imports "
            f"{', '.join(SUPPORTED_NODES)}")
    meta = _graph_meta(graph)
    if dt is None:
        dt = float(meta.get("dt", 1e-3)) if meta else 1e-3
    if not (math.isfinite(dt) and dt > 0):
        raise NIRImportError(f"dt = {dt!r} is out of range; allowed: a number > 0 (seconds per step)")
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        for x in (a, b):
            if x not in nodes:
                raise NIRImportError(f"NIR graph: edge ({a!r}, {b!r}) names no node {x!r}")
        succ[a].append(b)
    kinds = {k: _kind(v) for k, v in nodes.items()}
    pred: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        pred[b].append(a)
    pops: dict[str, _Pop] = {}
    next_id = 0
    for k in nodes:
        if kinds[k] in NEURON_NODES:
            pops[k] = _population(k, nodes[k], kinds[k], dt, reset, li_threshold, spike,
                                  _neighbour_size(k, nodes, kinds, pred, succ))
            pops[k].first_id = next_id
            next_id += pops[k].size

    memo: dict[str, list[tuple[str, Transfer]]] = {}
    visiting: set[str] = set()

    def downstream(x: str) -> list[tuple[str, Transfer]]:
        """Targets (neuron or Output nodes) reached from transform ``x``'s input, with transfers."""
        if x in memo:
            return memo[x]
        if x in visiting:
            raise NIRImportError(f"NIR graph: a loop through {x!r} has no neuron node on it; "
                                 "spikeforge needs a neuron in every cycle")
        visiting.add(x)
        own, _, _ = _transfer(x, nodes[x], kinds[x], dt, None)
        out = []
        for s in succ[x]:
            for t, m in _reach(s):
                out.append((t, _compose(m, own, f"node {x!r} ({kinds[x]}) -> {t!r}")))
        visiting.discard(x)
        memo[x] = out
        return out

    def _reach(s: str) -> list[tuple[str, Transfer]]:
        if kinds[s] in NEURON_NODES or kinds[s] == "Output":
            return [(s, {0: None})]  # type: ignore[dict-item]  # identity, sized later
        if kinds[s] == "Input":
            raise NIRImportError(f"NIR graph: an edge leads into Input node {s!r}")
        return downstream(s)

    def resolve(m: Transfer, n: int) -> Transfer:
        return {d: (np.eye(n) if v is None else v) for d, v in m.items()}

    # biases: each Affine's bias pushed to its targets
    bias_cur: dict[str, np.ndarray] = {k: np.zeros(p.size) for k, p in pops.items()}
    for k in nodes:
        if kinds[k] == "Affine":
            b = _arr(nodes[k].bias)
            _transfer(k, nodes[k], "Affine", dt, None)  # its shapes checked first
            for t, m in [tm for s in succ[k] for tm in _reach(s)]:
                if t not in pops:
                    continue
                for mat in m.values():
                    if (b.size if mat is None else mat.shape[1]) != b.size or \
                            (b.size if mat is None else mat.shape[0]) != pops[t].size:
                        raise NIRImportError(f"NIR graph: Affine {k!r} gives {b.size} values to {t!r}, "
                                             f"which has {pops[t].size} neurons")
                    bias_cur[t] = bias_cur[t] + (b if mat is None else mat @ b)

    net = Network()
    for k, p in pops.items():
        for j in range(p.size):
            net.add_neuron(p.first_id + j, threshold=float(p.threshold[j]), leak=p.leak[j],
                           leak_shift=p.shift[j], reset=p.reset[j],
                           bias=float(bias_cur[k][j] * p.bias_gain[j]), name=f"{k}[{j}]")
    out_sel: dict[int, int] = {}
    in_nodes = sorted(k for k in nodes if kinds[k] == "Input")
    out_nodes = sorted(k for k in nodes if kinds[k] == "Output")
    out_offset, acc = {}, 0
    for k in out_nodes:
        out_offset[k] = acc
        acc += int(np.prod(nodes[k].output_type["output"]))
    n_out_total = acc
    syn: list[tuple[int, int, float, int]] = []

    def connect(src_ids: list[int], targets: list[tuple[str, Transfer]], src: str) -> None:
        n_src = len(src_ids)
        for t, m in targets:
            m = resolve(m, n_src)
            if t in pops:
                p = pops[t]
                for d, mat in m.items():
                    if mat.shape != (p.size, n_src):
                        raise NIRImportError(f"NIR graph: the path {src!r} -> {t!r} maps {mat.shape[1]} "
                                             f"values onto {mat.shape[0]}; expected {n_src} -> {p.size}")
                    for j, i in np.argwhere(mat != 0):
                        syn.append((src_ids[i], p.first_id + int(j), float(mat[j, i] * p.gain[j]), 1 + d))
            else:  # an Output
                for d, mat in m.items():
                    if d:
                        log.warning("NIR graph: a Delay on the path into Output %r is ignored "
                                    "(outputs are neuron spikes)", t)
                    for r, i in np.argwhere(mat != 0):
                        if mat[r, i] != 1 or (out_offset[t] + r) in out_sel:
                            raise NIRImportError(
                                f"NIR graph: Output {t!r} element {r} is not a single neuron's spikes "
                                "(spikeforge outputs are neurons: put a neuron node before the Output)")
                        out_sel[out_offset[t] + int(r)] = src_ids[i]

    for k, p in pops.items():
        ids = list(range(p.first_id, p.first_id + p.size))
        targets: list[tuple[str, Transfer]] = []
        for s in succ[k]:
            targets += _reach(s)
        connect(ids, targets, k)

    next_id = max((n.id for n in net.neurons), default=-1) + 1
    for k in in_nodes:
        n_in = int(np.prod(nodes[k].input_type["input"]))
        targets = []
        for s in succ[k]:
            for t, m in _reach(s):
                if t not in pops:
                    raise NIRImportError(f"NIR graph: Input {k!r} reaches Output {t!r} with no neuron "
                                         "in between")
                targets.append((t, {d: (np.eye(n_in) if v is None else v) for d, v in m.items()}))
        binding = _selection(targets, pops, n_in)
        if binding is not None:
            for i in range(n_in):
                net.add_input(binding[i], f"{k}[{i}]" if len(in_nodes) > 1 or n_in > 1 else k)
            continue
        relays = list(range(next_id, next_id + n_in))
        next_id += n_in
        for i, r in enumerate(relays):
            net.add_neuron(r, threshold=1, leak="full", name=f"{k}[{i}]")
            net.add_input(r, f"{k}[{i}]")
        log.info("NIR Input %r drives its targets through %d relay neurons (one step later)", k, n_in)
        connect(relays, targets, k)
    for r in range(n_out_total):
        if r not in out_sel:
            raise NIRImportError(f"NIR graph: output element {r} is fed by no neuron")
        net.add_output(out_sel[r], f"out{r}")
    for pre, post, w, d in syn:
        net.add_synapse(pre, post, w, d)
    if meta:
        _apply_meta(net, meta, pops)
    else:
        spiking = [p.first_id + j for p in pops.values() if p.kind not in ("LI", "I") for j in range(p.size)]
        zero = [i for i in spiking if net.neuron(i).reset is Reset.ZERO]
        for i in zero:
            net.neuron(i).refractory = conv.zero_reset_refractory
        if conv.strict and zero:
            net.metadata["strict_threshold"] = zero
        if conv.every_step and spiking:
            clock = max(n.id for n in net.neurons) + 1
            net.add_neuron(clock, threshold=1, leak="full", bias=1, name="clock")
            for i in spiking:
                net.add_synapse(clock, i, 0, 1)
            log.info("NIR import (%s): clock neuron %d touches all %d neurons every step (weight-0 "
                     "synapses), as %s updates every neuron every step", conv.name, clock,
                     len(spiking), conv.name)
        _whole_numbers_to_int(net)
    net.validate()
    return net


def _neighbour_size(k: str, nodes: dict[str, Any], kinds: dict[str, str],
                    pred: dict[str, list[str]], succ: dict[str, list[str]]) -> int:
    """Neurons in node ``k``: its own parameter size, or, when its parameters are scalars (as
    snnTorch writes a shared ``beta``), the rows of the weight feeding it or the columns of the
    weight it feeds."""
    n = _size(nodes[k], kinds[k])
    if n != 1:
        return n
    for a in pred[k]:
        if kinds[a] in ("Affine", "Linear"):
            return int(np.asarray(nodes[a].weight).shape[0])
    for b in succ[k]:
        if kinds[b] in ("Affine", "Linear"):
            return int(np.asarray(nodes[b].weight).shape[-1])
    return n


def _whole_numbers_to_int(net: Network) -> None:
    """Make every threshold, bias and weight an int when all of them are whole numbers."""
    vals = [n.threshold for n in net.neurons] + [n.bias for n in net.neurons]
    vals += [s.weight for s in net.synapses]
    if all(float(v).is_integer() for v in vals):
        strict = set(net.metadata.pop("strict_threshold", []))
        for n in net.neurons:
            n.threshold, n.bias = int(n.threshold) + (n.id in strict), int(n.bias)
        for s in net.synapses:
            s.weight = int(s.weight)


def _selection(targets: list[tuple[str, Transfer]], pops: dict[str, _Pop], n_in: int) -> list[int] | None:
    """Input element → neuron id when every element feeds exactly one neuron with weight·gain 1
    and no delay; else None (relays are needed)."""
    bind: dict[int, int] = {}
    for t, m in targets:
        p = pops[t]
        for d, mat in m.items():
            for j, i in np.argwhere(mat != 0):
                if d != 0 or mat[j, i] * p.gain[j] != 1.0 or i in bind:
                    return None
                bind[int(i)] = p.first_id + int(j)
    if len(bind) != n_in:
        return None
    return [bind[i] for i in range(n_in)]


def _graph_meta(graph: Any) -> dict[str, Any] | None:
    md = getattr(graph, "metadata", None)
    if not isinstance(md, dict) or META_KEY not in md:
        return None
    raw = md[META_KEY]
    if isinstance(raw, np.ndarray):
        raw = raw.item()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        doc = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise NIRImportError(f"NIR graph: metadata[{META_KEY!r}] is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("version") != META_VERSION:
        raise NIRImportError(f"NIR graph: metadata[{META_KEY!r}] has version {doc.get('version')!r}; "
                             f"this spikeforge reads {META_VERSION}")
    return doc


def _apply_meta(net: Network, meta: dict[str, Any], pops: dict[str, _Pop]) -> None:
    """Restore what NIR has no field for (ids, names, reset, v_min, refractory, ports, metadata)."""
    remap: dict[int, int] = {}
    for g, info in meta.get("nodes", {}).items():
        if g not in pops:
            raise NIRImportError(f"NIR graph: metadata names node {g!r}, which the graph lacks")
        p = pops[g]
        if len(info["ids"]) != p.size:
            raise NIRImportError(f"NIR graph: metadata of node {g!r} lists {len(info['ids'])} neurons; "
                                 f"the node has {p.size}")
        for j, nid in enumerate(info["ids"]):
            remap[p.first_id + j] = int(nid)
            n = net.neuron(p.first_id + j)
            n.reset = Reset(info["reset"][j])
            n.v_min = info["v_min"][j]
            n.refractory = int(info["refractory"][j])
            n.name = info["names"][j]
    if set(remap) != {n.id for n in net.neurons}:
        raise NIRImportError("NIR graph: its spikeforge metadata does not cover every neuron")
    integer = bool(meta.get("integer"))
    for n in net.neurons:
        n.id = remap[n.id]
        if integer:
            n.threshold, n.bias = _to_int(n.threshold), _to_int(n.bias)
    for s in net.synapses:
        s.pre, s.post = remap[s.pre], remap[s.post]
        if integer:
            s.weight = _to_int(s.weight)
    have = {(s.pre, s.post, s.delay) for s in net.synapses}
    for pre, post, d in meta.get("zero_synapses", []):
        if (pre, post, d) not in have:  # a weight-0 synapse touches its target: keep it
            net.add_synapse(pre, post, 0 if integer else 0.0, d)
    order = {nid: k for k, nid in enumerate(meta.get("order", []))}
    net.neurons.sort(key=lambda n: order.get(n.id, len(order)))
    net.synapses.sort(key=lambda s: (s.pre, s.post, s.delay))
    ins, outs = meta.get("inputs", []), meta.get("outputs", [])
    if len(ins) != len(net.inputs) and not (len(ins) == 0 and len(net.inputs) == 1):
        raise NIRImportError(f"NIR graph: metadata lists {len(ins)} inputs; the graph has {len(net.inputs)}")
    for k, (name, nid) in enumerate(ins):
        if remap.get(net.inputs[k].neuron) != nid:
            raise NIRImportError(f"NIR graph: input {name!r} is bound to neuron {nid} in the metadata "
                                 "but not in the graph")
        net.inputs[k].name, net.inputs[k].neuron = name, nid
    net.inputs = net.inputs[:len(ins)]
    outs_now = [p for p in net.outputs]
    net.outputs = []
    for k, (name, nid) in enumerate(outs):
        if k >= len(outs_now) or remap.get(outs_now[k].neuron) != nid:
            raise NIRImportError(f"NIR graph: output {name!r} is neuron {nid} in the metadata "
                                 "but not in the graph")
        net.add_output(nid, name)
    net.metadata = meta.get("metadata", {})


def _to_int(x: float) -> int:
    r = round(x)
    if abs(x - r) > 1e-6 * max(1.0, abs(x)):
        raise NIRImportError(f"NIR graph says it holds an integer network but a value is {x!r}")
    return int(r)


def read_nir(path: str | Path, dt: float | None = None, **kwargs: Any) -> Network:
    """Read a NIR HDF5 file (:func:`nir.read`) and import it (:func:`from_nir`).

    Raises
    ------
    NIRImportError
        With the path first, on an unreadable file or a graph that cannot be imported.
    """
    nir = _nir()
    p = Path(path)
    try:
        graph = nir.read(str(p), type_check=False)
    except OSError as e:
        raise NIRImportError(f"{p}: cannot read NIR file: {e}") from None
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise NIRImportError(f"{p}: not a NIR graph this nir version reads: {e}") from None
    try:
        return from_nir(graph, dt, **kwargs)
    except NetworkError as e:
        raise NIRImportError(f"{p}: {e}") from None


def affine_chain(graph: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights and biases of a feed-forward NIR graph ``Input → (Affine|Linear → neuron)* →
    Output``, for :meth:`spikeforge.toolchain.train.convert.MLP.from_arrays`.

    Neuron, Flatten and Output nodes are skipped; ``Linear`` layers get zero biases.

    Raises
    ------
    NIRImportError
        When the graph is not a single chain or holds no weight layer.
    """
    nodes = dict(graph.nodes)
    succ: dict[str, list[str]] = defaultdict(list)
    indeg: dict[str, int] = defaultdict(int)
    for a, b in graph.edges:
        succ[a].append(b)
        indeg[b] += 1
    starts = [k for k, v in nodes.items() if _kind(v) == "Input"]
    if len(starts) != 1:
        raise NIRImportError(f"NIR graph has {len(starts)} Input nodes; an affine chain has one")
    ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    cur, seen = starts[0], set()
    while succ[cur]:
        if len(succ[cur]) != 1 or cur in seen:
            raise NIRImportError(f"NIR graph: node {cur!r} branches or loops; an affine chain is a line")
        seen.add(cur)
        cur = succ[cur][0]
        kind = _kind(nodes[cur])
        if kind in ("Affine", "Linear"):
            w = np.asarray(nodes[cur].weight, dtype=float)
            ws.append(w)
            bs.append(_arr(nodes[cur].bias) if kind == "Affine" else np.zeros(w.shape[0]))
        elif kind not in (*NEURON_NODES, "Flatten", "Output"):
            raise NIRImportError(f"NIR node {cur!r} ({kind}) cannot be part of an affine chain")
    if not ws:
        raise NIRImportError("NIR graph holds no Affine or Linear layer")
    return ws, bs
