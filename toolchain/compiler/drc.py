"""Design-rule check: what in a network does not fit a core, and why.

The limits come from the core's :class:`~spikeforge.hdl.config.CoreConfig` and from
:func:`spikeforge.hdl.image.lower` (the one definition of what fits):

========================  ====================================================  ==============================
rule                      limit                                                 what the compiler does
========================  ====================================================  ==============================
integer values            threshold, bias, v_min, weight are integers           quantize (lossy, error reported)
neurons                   ``n_neurons`` per core (``× max_cores``)              partition (exact), else refuse
synapses                  ``n_synapses`` per core                               partition (exact), else refuse
delay                     ``1..max_delay``                                      relay chains (exact)
weight                    ``weight_bits`` signed                                parallel split (exact) if the
                                                                                fan-in allows, else quantize
threshold                 ``0..min(2**threshold_bits-1, 2**(P-1)-1)``           quantize (lossy)
bias                      ``bias_bits`` signed                                  quantize (lossy)
v_min                     ``potential_bits`` signed, ``<= 0``                   quantize (lossy)
refractory                ``0..2**refractory_bits-1``                           refuse
fan-in ``Σ|w|``           ``2**(accumulator_bits-1)-1`` per neuron              merge parallel synapses (exact),
                                                                                else quantize (lossy)
fan-out                   none: a neuron's synapses of one delay are one         (``max_fanout`` option builds
                          contiguous segment of any length                       relay trees for delays >= 2)
========================  ====================================================  ==============================
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.ir import Network, NetworkError

from .passes import CompileError

__all__ = ["DrcReport", "Violation", "design_rule_check"]

#: At most this many violations of one field are listed one by one (all are counted).
MAX_LISTED = 20


@dataclass
class Violation:
    """One thing that does not fit: element, field, value, limit, and the fix."""

    element: str
    field: str
    value: Any
    limit: str
    fix: str
    rule: str = ""

    def __str__(self) -> str:
        return f"{self.element}: {self.field} = {self.value} does not fit ({self.limit}); fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"element": self.element, "field": self.field, "value": self.value,
                "limit": self.limit, "fix": self.fix, "rule": self.rule}


@dataclass
class DrcReport:
    """Result of :func:`design_rule_check`.

    Attributes
    ----------
    config
        Name of the core checked against.
    violations
        Up to :data:`MAX_LISTED` violations per field, in network order.
    counts
        Number of violations per field (all of them).
    """

    config: str
    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the network fits the core as it is."""
        return not self.counts

    def summary(self) -> str:
        """One line per field, with the first offender and the count."""
        if self.ok:
            return f"fits core {self.config!r}"
        first: dict[str, Violation] = {}
        for v in self.violations:
            first.setdefault(v.rule, v)
        lines = [f"does not fit core {self.config!r} ({sum(self.counts.values())} violations):"]
        for f, n in self.counts.items():
            more = f" (and {n - 1} more)" if n > 1 else ""
            lines.append(f"  {first[f]}{more}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`CompileError` with :meth:`summary` if anything does not fit."""
        if not self.ok:
            raise CompileError(self.summary())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"config": self.config, "ok": self.ok, "counts": dict(self.counts),
                "violations": [v.to_dict() for v in self.violations]}

    def __str__(self) -> str:
        return self.summary()


def _is_int(x: Any) -> bool:
    """An ``int`` (what the reference model and lower() take; 3.0 must be quantized to 3)."""
    return isinstance(x, int) and not isinstance(x, bool)


_FIX = {
    "integer": "quantize the network (spikeforge.toolchain.compiler.quantize_network)",
    "threshold": "quantize with a smaller scale (lossy), or a core with more threshold_bits",
    "bias": "quantize with a smaller scale (lossy), or a core with more bias_bits",
    "v_min": "quantize with a smaller scale (lossy), or a core with more potential_bits",
    "refractory": "shorten the refractory period, or a core with more refractory_bits",
    "weight": "split into parallel synapses (exact) or quantize (lossy); compile_network does it",
    "delay": "split through relay neurons (exact); compile_network does it",
    "fan_in": "merge parallel synapses or quantize with a smaller scale; or a core with more accumulator_bits",
    "neurons": "partition over more cores (compile_network max_cores), prune dead neurons, or a bigger core",
    "synapses": "partition over more cores (compile_network max_cores), or a bigger core",
}


def design_rule_check(net: Network, config: CoreConfig, *, max_cores: int = 1) -> DrcReport:
    """Check a network against a core; list what does not fit and how to fix it.

    Parameters
    ----------
    net
        Any valid network (float or integer).
    config
        The target core.
    max_cores
        Cores the network may be spread over (neuron and synapse totals are checked against
        ``max_cores ×`` one core's capacity).

    Returns
    -------
    DrcReport
        ``.ok`` is True when the network can be lowered as it is (with ``max_cores = 1``):
        exactly when :func:`spikeforge.hdl.image.lower` accepts it. Values must be ``int``
        (``3.0`` is reported: quantization turns it into ``3`` exactly).

    Raises
    ------
    CompileError
        If the network itself is invalid (the message names the element).
    """
    try:
        net.validate()
    except NetworkError as e:
        raise CompileError(f"invalid network: {e}") from None
    rep = DrcReport(config=config.name)
    counts: Counter[str] = Counter()

    def add(element: str, fieldname: str, value: Any, limit: str, key: str | None = None) -> None:
        key = key or fieldname
        counts[key] += 1
        if counts[key] <= MAX_LISTED:
            rep.violations.append(Violation(element, fieldname, value, limit, _FIX[key], key))

    lim = config.limits()
    n, m = len(net.neurons), len(net.synapses)
    cap_n, cap_s = config.n_neurons * max_cores, config.n_synapses * max_cores
    where = f"core {config.name!r}" + (f" × {max_cores}" if max_cores > 1 else "")
    if n > cap_n:
        add("network", "neurons", n, f"{where} holds {cap_n}", "neurons")
    if m > cap_s:
        add("network", "synapses", m, f"{where} holds {cap_s}", "synapses")
    for nn in net.neurons:
        el = f"neuron {nn.id}"
        for fname in ("threshold", "bias", "v_min"):
            v = getattr(nn, fname)
            if v is None:
                continue
            if not _is_int(v):
                add(el, fname, v, "an integer", "integer")
                continue
            a, b = lim[fname]
            if not a <= v <= b:
                add(el, fname, v, f"{a}..{b}")
        a, b = lim.refractory
        if not a <= nn.refractory <= b:
            add(el, "refractory", nn.refractory, f"{a}..{b}")
    if m:
        wl = [s.weight for s in net.synapses]
        w = np.array(wl, dtype=np.float64)
        d = np.array([s.delay for s in net.synapses], dtype=np.int64)
        a, b = lim.weight
        all_int = set(map(type, wl)) <= {int}  # one C-level pass: the common case, nothing to list
        nonint = np.array([] if all_int else [k for k, x in enumerate(wl) if not _is_int(x)], dtype=np.int64)
        for k in nonint[:MAX_LISTED]:
            s = net.synapses[k]
            add(f"synapse #{k} ({s.pre}->{s.post})", "weight", s.weight, "an integer", "integer")
        if len(nonint) > MAX_LISTED:
            counts["integer"] += len(nonint) - MAX_LISTED
        for key, bad, vals, limit in (
            ("weight", np.flatnonzero((w < a) | (w > b)), w, f"{a}..{b} (weight_bits = {config.weight_bits})"),
            ("delay", np.flatnonzero(d > config.max_delay), d, f"1..{config.max_delay} (max_delay)"),
        ):
            for k in bad[:MAX_LISTED]:
                s = net.synapses[k]
                v = vals[k]
                add(f"synapse #{k} ({s.pre}->{s.post})", key, int(v) if float(v).is_integer() else float(v), limit)
            if len(bad) > MAX_LISTED:
                counts[key] += len(bad) - MAX_LISTED
        idx = net.index_of()
        post = np.array([idx[s.post] for s in net.synapses], dtype=np.int64)
        fan = np.bincount(post, weights=np.abs(w), minlength=n)
        amax = lim.fan_in[1]
        for i in np.flatnonzero(fan > amax):
            add(f"neuron {net.neurons[i].id}", "fan_in", round(float(fan[i]), 6),
                f"sum of |weight| <= {amax} ({config.accumulator_bits}-bit accumulator)")
    rep.counts = dict(counts)
    return rep

