"""Quantization: float (or too wide) networks to the core's integer widths.

A neuron's spikes do not change when its threshold, bias, floor and every weight *onto* it
are multiplied by the same positive scale (no leak, full leak; shift leak rounds, so it is
close but not exact). So a scale can be chosen per neuron group without touching the rest
of the network: ``granularity="network"`` uses one scale for everything, ``"layer"`` one per
layer (breadth-first distance from the input neurons; neurons no input reaches form the last
layer). Each group's scale is the largest one with which every rounded value fits the core:
``|w|·s ≤ 2**(weight_bits-1)-1``, ``θ·s`` within the threshold range, ``|b|·s`` within
``bias_bits``, ``|v_min|·s`` within the potential and ``Σ|w|·s`` within the accumulator.

An integer network whose values fit (its ``int`` weights may be wider than ``weight_bits``: the
compiler splits them exactly into parallel synapses) keeps scale 1 and is returned unchanged;
so does a float network whose values are integral and fit, weights included (``3.0`` → ``3``).

Input values scale with their input neuron's group: the report gives ``input_scales`` (one
per input port) and :func:`scale_inputs` applies them to stimuli.

The change in output spikes is measured against an *ideal* run: the source network at 1,024
times finer resolution (scale ``1024·s`` with a potential 10 bits wider, the same saturation
point), or the source itself when it is an integer network.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.ir import Network, NetworkError, Neuron, Port, Synapse
from spikeforge.toolchain.reference import InputEvent, simulate_batch

from .passes import CompileContext, CompileError, Pass, graph_to_network, network_to_graph, pred

__all__ = ["QuantizePass", "QuantizeReport", "layers", "quantize_network", "scale_inputs"]

log = logging.getLogger(__name__)

Granularity = Literal["network", "layer"]

#: Extra resolution of the ideal run the quantized network is compared with.
IDEAL_BITS = 10


@dataclass
class QuantizeReport:
    """What quantization did.

    Attributes
    ----------
    granularity
        ``"network"`` or ``"layer"``.
    scales
        Scale of each group (one for ``"network"``), group order.
    neuron_scale
        Scale applied to each neuron (by id).
    input_scales
        Scale of each input port's values (port order).
    exact
        True if no value was rounded (the quantized network is the source, scaled).
    max_abs_weight_error
        Largest ``|w_q / s - w|`` over synapses, in source units.
    max_rel_weight_error
        The same divided by the largest ``|w|`` of the source (0 if no weights).
    max_abs_param_error
        Largest rounding error of threshold, bias or v_min, in source units.
    output_spikes
        On the given stimuli: ``{"stimuli", "steps", "ideal", "quantized", "changed"}`` —
        output spikes of the ideal and the quantized run and the size of their symmetric
        difference; None when no stimuli were given.
    """

    granularity: str
    scales: list[float]
    neuron_scale: dict[int, float]
    input_scales: list[float]
    exact: bool
    max_abs_weight_error: float
    max_rel_weight_error: float
    max_abs_param_error: float
    output_spikes: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def scale(self) -> float:
        """The smallest group scale (the network scale for ``granularity="network"``)."""
        return min(self.scales) if self.scales else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (per-neuron scales left out)."""
        return {
            "granularity": self.granularity, "scales": [float(f"{s:.9g}") for s in self.scales],
            "input_scales": [float(f"{s:.9g}") for s in self.input_scales], "exact": self.exact,
            "max_abs_weight_error": self.max_abs_weight_error,
            "max_rel_weight_error": self.max_rel_weight_error,
            "max_abs_param_error": self.max_abs_param_error,
            "output_spikes": self.output_spikes, "notes": list(self.notes),
        }


def layers(net: Network) -> dict[int, int]:
    """Layer of each neuron: breadth-first distance from the input neurons (unreached: last)."""
    succ: dict[int, list[int]] = {n.id: [] for n in net.neurons}
    for s in net.synapses:
        succ[s.pre].append(s.post)
    dist: dict[int, int] = {}
    q: deque[int] = deque()
    for p in net.inputs:
        if p.neuron not in dist:
            dist[p.neuron] = 0
            q.append(p.neuron)
    while q:
        u = q.popleft()
        for v in succ[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    last = max(dist.values(), default=-1) + 1
    return {n.id: dist.get(n.id, last) for n in net.neurons}


def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (symmetric for negative weights)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _round1(x: float) -> int:
    """:func:`_round` of one number."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _integral(x: Any) -> bool:
    return x is None or float(x).is_integer()


def _fits_as_is(net: Network, config: CoreConfig) -> bool:
    """Integer values that fit (weights may exceed weight_bits: split exactly later)."""
    lim = config.limits()
    for n in net.neurons:
        if not (_integral(n.threshold) and _integral(n.bias) and _integral(n.v_min)):
            return False
        a, b = lim.threshold
        if not a <= n.threshold <= b:
            return False
        a, b = lim.bias
        if not a <= n.bias <= b:
            return False
        if n.v_min is not None and n.v_min < lim.v_min[0]:
            return False
    if not all(float(s.weight).is_integer() for s in net.synapses):
        return False
    if not net.is_integer():  # a float source is brought into weight_bits, not split
        wlo, whi = lim.weight
        if not all(wlo <= s.weight <= whi for s in net.synapses):
            return False
    fan: dict[int, float] = {}
    for s in net.synapses:
        fan[s.post] = fan.get(s.post, 0) + abs(s.weight)
    return max(fan.values(), default=0) <= lim.fan_in[1]


def _graph_fits_as_is(g: nx.MultiDiGraph, config: CoreConfig) -> bool:
    """:func:`_fits_as_is` on the graph form, with every value already an ``int``."""
    lim = config.limits()
    (t0, t1), (b0, b1), v0 = lim.threshold, lim.bias, lim.v_min[0]
    for _, a in g.nodes(data=True):
        th, b, vm = a.get("threshold", 1), a.get("bias", 0), a.get("v_min")
        if type(th) is not int or type(b) is not int or not (vm is None or type(vm) is int):
            return False
        if not (t0 <= th <= t1 and b0 <= b <= b1 and (vm is None or vm >= v0)):
            return False
    amax = lim.fan_in[1]
    for preds in pred(g).values():
        f = 0
        for kd in preds.values():
            for a in kd.values():
                w = a["weight"]
                if type(w) is not int:
                    return False
                f += abs(w)
        if f > amax:
            return False
    return True


def _clone(net: Network) -> Network:
    """A copy of the neurons, synapses and ports (a deep copy is 10x slower on big networks)."""
    return Network(
        neurons=[Neuron(n.id, n.threshold, n.leak, n.leak_shift, n.reset, n.v_min, n.refractory, n.bias, n.name)
                 for n in net.neurons],
        synapses=[Synapse(s.pre, s.post, s.weight, s.delay) for s in net.synapses],
        inputs=[Port(p.name, p.neuron) for p in net.inputs],
        outputs=[Port(p.name, p.neuron) for p in net.outputs],
        metadata=copy.deepcopy(net.metadata),
    )


def _as_int(net: Network) -> Network:
    out = _clone(net)
    for n in out.neurons:
        n.threshold, n.bias = int(n.threshold), int(n.bias)
        if n.v_min is not None:
            n.v_min = int(n.v_min)
    for s in out.synapses:
        s.weight = int(s.weight)
    return out


def _strict(x: float) -> int:
    """The least integer ``> x`` (``x`` within 1e-9 of an integer counts as that integer)."""
    r = round(x)
    return int(r) + 1 if abs(x - r) <= 1e-9 * max(1.0, abs(x)) else math.floor(x) + 1


def _scaled(net: Network, scale: dict[int, float], potential_lo: int | None = None) -> Network:
    """The network with each neuron's θ, b, v_min and in-weights times its scale, rounded.

    A neuron listed in ``metadata["strict_threshold"]`` fires on ``v > θ`` (NIR's and snnTorch's
    rule, TENNLab's ``threshold_inclusive: false``): its integer threshold is ``⌊θ·s⌋ + 1``, so
    that ``v_q ≥ θ_q`` ⇔ ``v_q > θ·s`` for every integer ``v_q`` (a plain rounding would make an
    input equal to θ fire)."""
    out = _clone(net)
    strict = set(net.metadata.get("strict_threshold", []))
    out.metadata.pop("strict_threshold", None)
    for n in out.neurons:
        s = scale[n.id]
        n.threshold = _strict(n.threshold * s) if n.id in strict else _round1(n.threshold * s)
        n.bias = _round1(n.bias * s)
        if n.v_min is not None:
            v = _round1(n.v_min * s)
            n.v_min = max(v, potential_lo) if potential_lo is not None else v
    if out.synapses:
        w = np.array([x.weight for x in out.synapses], dtype=np.float64)
        sc = np.array([scale[x.post] for x in out.synapses])
        q = _round(w * sc).astype(np.int64)
        for x, v in zip(out.synapses, q.tolist(), strict=True):
            x.weight = v
    return out


def scale_inputs(stimuli: Sequence[Sequence[InputEvent]] | Sequence[Sequence[tuple[int, int, float]]],
                 input_scales: Sequence[float]) -> list[list[InputEvent]]:
    """Stimuli in source units → integer input values of the quantized network."""
    out = []
    for seq in stimuli:
        out.append([(int(i), int(t), _round1(v * input_scales[i])) for i, t, v in seq])
    return out


def _group_scales(net: Network, config: CoreConfig, groups: dict[int, int]) -> dict[int, float]:
    lim = config.limits()
    wmax, amax = lim.weight[1], lim.fan_in[1]
    tmax, bmax = lim.threshold[1], lim.bias[1]
    vmin_lo = -lim.v_min[0]
    best: dict[int, float] = {}

    def cap(gid: int, limit: float, value: float) -> None:
        if value > 0:
            best[gid] = min(best.get(gid, math.inf), limit / value)

    for n in net.neurons:
        gid = groups[n.id]
        best.setdefault(gid, math.inf)
        cap(gid, tmax, float(n.threshold))
        cap(gid, bmax, abs(float(n.bias)))
        if n.v_min is not None:
            cap(gid, vmin_lo, -float(n.v_min))
    fan: dict[int, float] = {}
    for s in net.synapses:
        cap(groups[s.post], wmax, abs(float(s.weight)))
        fan[s.post] = fan.get(s.post, 0.0) + abs(float(s.weight))
    for nid, f in fan.items():
        cap(groups[nid], amax, f)
    return {g: (1.0 if math.isinf(s) else s) for g, s in best.items()}


def _warn_collapse(net: Network, q: Network, scale: dict[int, float]) -> None:
    """Log a warning when non-zero thresholds or biases became 0 (the network's behaviour changes:
    a threshold of 0 fires on any event, a lost bias stops a neuron that fired on its own)."""
    for field_ in ("threshold", "bias"):
        lost = [(a, b) for a, b in zip(net.neurons, q.neurons, strict=True)
                if float(getattr(a, field_)) != 0 and int(getattr(b, field_)) == 0]
        if lost:
            a = lost[0][0]
            log.warning("quantization rounded %d of %d non-zero %s to 0 (e.g. neuron %d: %s %g at "
                        "scale %.4g); the integer network behaves differently: for a NIR import check "
                        "--producer and --dt, else use a wider core (--target)",
                        len(lost), sum(1 for n in net.neurons if float(getattr(n, field_)) != 0),
                        "thresholds" if field_ == "threshold" else "biases", a.id, field_, float(getattr(a, field_)), scale[a.id])


def quantize_network(
    net: Network,
    config: CoreConfig,
    stimuli: Sequence[Sequence[tuple[int, int, float]]] | None = None,
    *,
    granularity: Granularity = "network",
    steps: int = 100,
) -> tuple[Network, QuantizeReport]:
    """Quantize a network to the integer widths of a core.

    Parameters
    ----------
    net
        Any valid network (float values allowed).
    config
        The target core (widths of threshold, bias, potential, weight, accumulator).
    stimuli
        Optional input sequences ``[(input_index, time, value), …]`` in the source network's
        units; the report then gives the change in output spikes on them.
    granularity
        ``"network"`` (one scale) or ``"layer"`` (one scale per layer, see :func:`layers`).
    steps
        Steps to run each stimulus for the output-spike comparison.

    Returns
    -------
    (Network, QuantizeReport)
        The integer network (same ids, ports, synapse order; metadata gains
        ``"quantization"``) and the report.

    Raises
    ------
    CompileError
        On an invalid network, an unknown granularity, or a value that cannot be represented
        at any scale (e.g. a threshold so small relative to the weights that it rounds to 0
        while the weights must shrink: reported, not refused) — the message names it.
    """
    try:
        net.validate()
    except NetworkError as e:
        raise CompileError(f"invalid network: {e}") from None
    if granularity not in ("network", "layer"):
        raise CompileError(f"granularity = {granularity!r} is not allowed; allowed: 'network', 'layer'")
    notes: list[str] = []
    if _fits_as_is(net, config):
        q = _as_int(net)
        scale = {n.id: 1.0 for n in net.neurons}
        scales = [1.0]
        notes.append("integer network that fits: unchanged (scale 1)")
    else:
        groups = ({n.id: 0 for n in net.neurons} if granularity == "network" else layers(net))
        gs = _group_scales(net, config, groups)
        lo = config.potential_range[0]
        amax = config.limits().fan_in[1]
        for _ in range(60):
            scale = {n.id: gs[groups[n.id]] for n in net.neurons}
            q = _scaled(net, scale, lo)
            fan: dict[int, int] = {}
            for s in q.synapses:
                fan[s.post] = fan.get(s.post, 0) + abs(int(s.weight))
            over = {groups[k] for k, f in fan.items() if f > amax}
            if not over:
                break
            for gid in over:  # rounding pushed a fan-in over the accumulator: shrink a little
                gs[gid] *= 0.999
        else:  # pragma: no cover - the shrink converges long before
            raise CompileError("quantization could not fit the fan-in into the accumulator")
        scales = [gs[g] for g in sorted(gs)]
    # Errors in source units.
    w = np.array([float(s.weight) for s in net.synapses])
    wq = np.array([float(s.weight) for s in q.synapses])
    sc = np.array([scale[s.post] for s in net.synapses])
    werr = float(np.max(np.abs(wq / sc - w))) if len(w) else 0.0
    wtop = float(np.max(np.abs(w))) if len(w) else 0.0
    perr = 0.0
    for a, b in zip(net.neurons, q.neurons, strict=True):
        s = scale[a.id]
        for f in ("threshold", "bias", "v_min"):
            x, y = getattr(a, f), getattr(b, f)
            if x is not None and y is not None:
                perr = max(perr, abs(y / s - float(x)))
    for a in net.neurons:
        th = scale[a.id] * float(a.threshold)
        if th > 0 and _round1(th) == 0:
            notes.append(f"neuron {a.id}: threshold {a.threshold} rounds to 0 at scale {scale[a.id]:.4g}")
            break
    _warn_collapse(net, q, scale)
    exact = werr == 0.0 and perr == 0.0
    in_scales = [scale[p.neuron] for p in net.inputs]
    rep = QuantizeReport(
        granularity=granularity, scales=scales, neuron_scale=scale, input_scales=in_scales,
        exact=exact, max_abs_weight_error=round(werr, 9),
        max_rel_weight_error=round(werr / wtop, 9) if wtop else 0.0,
        max_abs_param_error=round(perr, 9), notes=notes,
    )
    q.metadata = dict(q.metadata)
    q.metadata["quantization"] = rep.to_dict()
    if stimuli:
        rep.output_spikes = _output_change(net, q, config, stimuli, scale, steps)
        q.metadata["quantization"]["output_spikes"] = rep.output_spikes
    log.info("quantized: %s scale %.6g, weight error %.4g (%.2f %%), exact %s", granularity,
             rep.scale, werr, 100 * rep.max_rel_weight_error, exact)
    return q, rep


def _output_change(src: Network, q: Network, config: CoreConfig,
                   stimuli: Sequence[Sequence[tuple[int, int, float]]],
                   scale: dict[int, float], steps: int) -> dict[str, int]:
    P = config.potential_bits
    in_scales = [scale[p.neuron] for p in src.inputs]
    exact_src = all(_integral(v) for n in src.neurons for v in (n.threshold, n.bias, n.v_min)) and all(
        float(s.weight).is_integer() for s in src.synapses) and all(s == 1.0 for s in scale.values())
    if exact_src:
        ideal, ideal_bits = _as_int(src), P
        ideal_stim = scale_inputs(stimuli, [1.0] * len(src.inputs))
    else:
        f = float(1 << IDEAL_BITS)
        ideal_bits = min(62, P + IDEAL_BITS)
        ideal = _scaled(src, {k: v * f for k, v in scale.items()}, -(1 << (ideal_bits - 1)))
        ideal_stim = scale_inputs(stimuli, [s * f for s in in_scales])
    try:
        ra = simulate_batch(ideal, ideal_stim, steps, potential_bits=ideal_bits)
    except NetworkError:
        ra = simulate_batch(ideal, ideal_stim, steps, potential_bits=62)
    rb = simulate_batch(q, scale_inputs(stimuli, in_scales), steps, potential_bits=P)
    outs = {p.neuron for p in src.outputs}
    a_tot = b_tot = changed = 0
    for x, y in zip(ra, rb, strict=True):
        sa = {(i, t) for i, t in x.spikes if i in outs}
        sb = {(i, t) for i, t in y.spikes if i in outs}
        a_tot += len(sa)
        b_tot += len(sb)
        changed += len(sa ^ sb)
    return {"stimuli": len(stimuli), "steps": steps, "ideal": a_tot, "quantized": b_tot, "changed": changed}


class QuantizePass(Pass):
    """Quantize the graph to the target core (inexact: error in ``ctx.data["quantize"]``)."""

    name = "quantize"
    exact = False

    def __init__(self, granularity: Granularity = "network",
                 stimuli: Sequence[Sequence[tuple[int, int, float]]] | None = None, steps: int = 100) -> None:
        self.granularity = granularity
        self.stimuli = stimuli
        self.steps = steps

    def apply(self, g: nx.MultiDiGraph, ctx: CompileContext) -> bool:
        # The source's design-rule check (an analysis compile_network runs first) already says
        # whether every value is an int that fits; otherwise look at the graph.
        if ctx.data.get("source_values_fit") or _graph_fits_as_is(g, ctx.config):
            ctx.data["quantize"] = None
            return False
        net = graph_to_network(g)
        q, rep = quantize_network(net, ctx.config, self.stimuli, granularity=self.granularity, steps=self.steps)
        ctx.data["quantize"] = rep
        ctx.note("scale", round(rep.scale, 6))
        ctx.note("weight_err", rep.max_abs_weight_error)
        if rep.output_spikes is not None:
            ctx.note("out_changed", rep.output_spikes["changed"])
        ng = network_to_graph(q)
        ng.graph.update({k: v for k, v in g.graph.items() if k not in ng.graph})
        relay = {n: a for n, a in g.nodes(data=True) if a.get("relay")}
        g.clear()
        g.update(ng)
        g.graph.update(ng.graph)
        for n, a in relay.items():
            g.nodes[n].update({k: a[k] for k in ("relay", "relay_kind") if k in a})
        return True
