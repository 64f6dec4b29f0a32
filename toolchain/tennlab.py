"""TENNLab interchange: import RISP network JSON into the IR and export the IR back.

Sources (read for facts, nothing copied): the TENNLab open framework,
``github.com/TENNLab-UTK/framework-open``: ``markdown/network_json_format.md`` (the file
layout), ``markdown/properties.md`` (the ``Properties`` pack), ``markdown/risp.md`` (RISP's
parameters, presets and worked examples) and ``src/risp.cpp`` (what the simulator does with
them).

The TENNLab network file
------------------------
A JSON object with ``Nodes`` (``{"id", "values", "name"?, "coords"?}``), ``Edges``
(``{"from", "to", "values", "control_point"?}``), ``Inputs`` and ``Outputs`` (node ids; input
*k* is ``Inputs[k]``), ``Network_Values``, ``Properties`` (``node_properties``,
``edge_properties``, ``network_properties``: each a list of ``{"name", "type", "index",
"size", "min_value", "max_value"}`` saying which slot of ``values`` holds what; ``type`` is 73
``'I'`` integer, 68 ``'D'`` double, 66 ``'B'`` boolean) and ``Associated_Data`` (``proc_params``
for the processor, ``other`` with ``proc_name``/``app_name``/``sim_time``…, ``encoder_array``
and so on). RISP reads node property ``Threshold`` (plus ``Leak`` when ``leak_mode`` is
``"configurable"``) and edge properties ``Weight`` and ``Delay``.

RISP semantics and how they map onto the IR
-------------------------------------------
=======================  ==============================================================
RISP (``proc_params``)   spikeforge IR
=======================  ==============================================================
``Threshold`` θ          ``threshold = θ`` when ``threshold_inclusive`` (default true).
                         When false RISP fires on ``charge > θ``; for ``discrete``
                         networks that is ``charge >= θ + 1``, so the IR gets θ + 1. For
                         float networks RISP itself uses ``θ + 1e-7`` and so do we
                         (float round trips may then differ in the last bit).
``leak_mode``            ``"none"`` → leak none; ``"all"`` → leak ``full``;
                         ``"configurable"`` → per node: ``Leak != 0`` → ``full``.
``min_potential``        ``v_min`` of every neuron (RISP requires it ≤ 0).
(fixed)                  ``reset = "zero"``, ``refractory = 0``, ``bias = 0``.
``Weight``, ``Delay``    synapse ``weight``, ``delay``; with a ``weights`` array the edge's
                         ``Weight`` is an index into it and the IR holds the weight itself.
``discrete``             true: integer IR values; false: float IR values (a RISP-F network
                         imports as a float network, :meth:`Network.is_integer` is False).
=======================  ==============================================================

RISP's step, as ``risp.cpp`` implements it: for each neuron with events at ``t``, leak (set
charge to 0) and clamp charge up to ``min_potential``; add all of ``t``'s events; a neuron that
had events and has ``charge >= threshold`` fires, its charge becomes 0, each synapse sends its
weight to arrive at ``t + delay``. The spikeforge reference model leaks and clamps *every*
neuron every step; since both operations are idempotent and an untouched neuron never fires,
spikes are identical; only the potential of an untouched neuron read between steps may differ
(RISP normalises all charges at the end of each ``run()`` call, so run-end charges agree).
RISP's charge is an unbounded double; the reference model saturates at its potential width
(choose ``potential_bits`` large enough).

Inputs: ``apply_spikes()`` takes normalised values ``x ∈ [0, 1]``; a discrete RISP adds
``floor(x · spike_value_factor)`` (a float RISP ``x · spike_value_factor``), with
``spike_value_factor`` defaulting to ``max_weight``; with ``inputs_from_weights`` the value is
``weights[min(int(x · len(weights)), len(weights) − 1)]``. :func:`tennlab_inputs` converts.
``run_time_inclusive`` makes ``run(d)`` run ``d + 1`` steps: :func:`tennlab_steps`.

Not expressible, refused with :class:`~spikeforge.toolchain.ir.NetworkError`: negative
thresholds (RISP-F allows ``min_threshold < 0``; the IR needs θ ≥ 0), noise (``noisy_stddev``,
``stds``: the reference model is deterministic; ``allow_noise=True`` drops it with a
warning), parallel edges on export, and on export every IR feature RISP lacks (``subtract``
reset, ``shift`` leak, refractory, bias, non-uniform ``v_min``).

``fire_like_ravens``: RISP *reports* a spike one step after the step in which it is decided,
while delivery (``t + delay``) and the charge reset are unchanged. The reference model gives
the decision time; :func:`tennlab_result` moves spikes to RISP's reported time (and
``spikeforge simulate`` does so for a RISP network).

``threshold_inclusive: false`` in a float (RISP-F) network: the neurons are listed in
``metadata["strict_threshold"]``, so quantization gives them ``⌊θ·s⌋ + 1`` and ``> θ`` survives
(θ = 0.9 and an input of 0.9 no longer round to the same integer and fire).

Where the sources disagree: ``risp.md`` (Test 11) says the potential is clamped to
``min_potential`` "at the end of integration"; ``risp.cpp`` clamps a neuron's charge *before*
adding a step's events (and again at the end of each ``run()``). Spikes follow the code, and
so does this module (and DESIGN.md §3); the document's examples agree with both readings.

Not confirmed from the sources (stated, not guessed silently): that TENNLab forbids two edges
with the same ``from``/``to`` (we refuse them on import and export); how RISP treats a
``Delay`` of 0 or a threshold outside ``[min_threshold, max_threshold]`` (it does not check;
we refuse both, naming the value); the exact contents of the RISP-F+ preset file (not
provided by :func:`risp_preset`).

Everything the export needs and the IR has no field for (``proc_params``, ``Properties``,
``Network_Values``, the rest of ``Associated_Data``, node ``coords``, edge
``control_point``…) is kept in ``network.metadata["tennlab"]``, so export → import → export is
lossless.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import write_atomic
from .ir import Leak, Network, NetworkError, Neuron, Port, Reset, Synapse, read_json_file
from .reference import SimResult

__all__ = [
    "NETWORK_FORMATS",
    "load_any",
    "export_tennlab",
    "import_tennlab",
    "is_tennlab_document",
    "read_tennlab",
    "risp_preset",
    "tennlab_inputs",
    "tennlab_result",
    "tennlab_steps",
    "write_tennlab",
]

log = logging.getLogger(__name__)

#: ``Property.type`` codes: the ASCII of 'I', 'D', 'B'.
TYPE_INT, TYPE_DOUBLE, TYPE_BOOL = 73, 68, 66

#: The float RISP's stand-in for ``>`` with ``threshold_inclusive = false``.
FLOAT_EXCLUSIVE_EPSILON = 1e-7

_NODE_PROPS = {"Threshold", "Leak"}
_EDGE_PROPS = {"Weight", "Delay"}
_PROC_KEYS = {
    "min_weight", "max_weight", "max_delay", "min_threshold", "max_threshold", "min_potential",
    "noisy_stddev", "spike_value_factor", "leak_mode", "fire_like_ravens", "run_time_inclusive",
    "threshold_inclusive", "discrete", "weights", "inputs_from_weights", "noisy_seed", "stds",
    "log",
}
_TOP_REQUIRED = ("Properties", "Nodes", "Edges", "Inputs", "Outputs")
_TOP_OPTIONAL = ("Network_Values", "Associated_Data")

Number = int | float


# ----------------------------------------------------------------------------- helpers
def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _integral(x: Any) -> bool:
    return _num(x) and float(x).is_integer()


def _fmt(x: Any) -> str:
    return repr(x)


def is_tennlab_document(doc: Any) -> bool:
    """True when ``doc`` looks like a TENNLab network (it has ``Nodes`` and ``Edges`` keys)."""
    return isinstance(doc, Mapping) and "Nodes" in doc and "Edges" in doc


def risp_preset(n: int, *, positive: bool = False, leak_mode: str = "none") -> dict[str, Any]:
    """The ``proc_params`` of the RISP-*n* (or RISP-*n*\\ + with ``positive``) preset.

    From ``markdown/risp.md``: RISP-*n* has weights in ``[-n, n]``, thresholds in ``[0, n]``,
    ``min_potential = -n``; RISP-*n*\\ + has weights in ``[1, n]``, thresholds in ``[1, n]``,
    ``min_potential = 0``; both have ``max_delay = max(n, 15)`` and are discrete.

    Parameters
    ----------
    n
        The preset's size (≥ 1).
    positive
        RISP-*n*\\ + (positive weights only).
    leak_mode
        ``"none"`` (the presets' value), ``"all"`` or ``"configurable"``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"risp_preset: n = {n!r} is out of range; allowed: an integer >= 1")
    if leak_mode not in ("none", "all", "configurable"):
        raise ValueError(f"risp_preset: leak_mode = {leak_mode!r}; allowed: none, all, configurable")
    lo = 1 if positive else -n
    return {
        "min_weight": lo,
        "max_weight": n,
        "leak_mode": leak_mode,
        "min_threshold": 1 if positive else 0,
        "max_threshold": n,
        "min_potential": 0 if positive else -n,
        "max_delay": max(n, 15),
        "discrete": True,
    }


@dataclass
class _Risp:
    """Validated RISP processor parameters (with RISP's defaults filled in)."""

    discrete: bool
    min_weight: float | None
    max_weight: float | None
    min_threshold: float
    max_threshold: float
    min_potential: float
    max_delay: int
    leak_mode: str
    threshold_inclusive: bool
    run_time_inclusive: bool
    fire_like_ravens: bool
    spike_value_factor: float | None
    weights: list[float]
    inputs_from_weights: bool
    noisy: bool

    def value(self, x: float) -> Number:
        """A value in the IR's type: int for discrete networks, float otherwise."""
        return int(x) if self.discrete else float(x)


def _parse_proc_params(pp: Any, where: str = "proc_params") -> _Risp:
    if not isinstance(pp, Mapping):
        raise NetworkError(f"{where}: is {type(pp).__name__}; expected a JSON object")
    unknown = sorted(set(pp) - _PROC_KEYS)
    if unknown:
        raise NetworkError(
            f"{where}: unknown RISP parameter '{unknown[0]}'; allowed: {', '.join(sorted(_PROC_KEYS))}"
        )
    for key in ("max_delay", "min_threshold", "max_threshold", "min_potential", "discrete"):
        if key not in pp:
            raise NetworkError(f"{where}: missing RISP parameter '{key}' (RISP requires it)")

    def number(key: str, default: Any = None) -> Any:
        v = pp.get(key, default)
        if v is not None and not _num(v):
            raise NetworkError(f"{where}: '{key}' = {_fmt(v)} is not a finite number")
        return v

    def boolean(key: str, default: bool) -> bool:
        v = pp.get(key, default)
        if not isinstance(v, bool):
            raise NetworkError(f"{where}: '{key}' = {_fmt(v)} is not a boolean (true/false)")
        return v

    discrete = boolean("discrete", False)
    max_delay = number("max_delay")
    if not _integral(max_delay) or max_delay < 1:
        raise NetworkError(f"{where}: 'max_delay' = {_fmt(max_delay)} is out of range; allowed: an integer >= 1")
    min_thr, max_thr, min_pot = number("min_threshold"), number("max_threshold"), number("min_potential")
    if min_pot > 0:
        raise NetworkError(f"{where}: 'min_potential' = {_fmt(min_pot)} is out of range; allowed: <= 0 (as RISP requires)")
    if min_thr > max_thr:
        raise NetworkError(f"{where}: 'min_threshold' = {_fmt(min_thr)} exceeds 'max_threshold' = {_fmt(max_thr)}")
    leak_mode = pp.get("leak_mode", "none")
    if leak_mode not in ("none", "all", "configurable"):
        raise NetworkError(f"{where}: 'leak_mode' = {_fmt(leak_mode)} is not allowed; allowed: none, all, configurable")
    weights_raw = pp.get("weights", [])
    if not isinstance(weights_raw, list) or not all(_num(w) for w in weights_raw):
        raise NetworkError(f"{where}: 'weights' = {_fmt(weights_raw)} is not an array of numbers")
    weights = [float(w) for w in weights_raw]
    min_w = max_w = None
    if weights:
        if "min_weight" in pp or "max_weight" in pp:
            raise NetworkError(f"{where}: 'weights' cannot be given with 'min_weight'/'max_weight' (RISP refuses it)")
        if "inputs_from_weights" not in pp:
            raise NetworkError(f"{where}: 'weights' is given, so 'inputs_from_weights' is required")
        if any(b < a for a, b in zip(weights, weights[1:], strict=False)):
            raise NetworkError(f"{where}: 'weights' = {_fmt(weights_raw)} must be sorted ascending")
        ifw = boolean("inputs_from_weights", False)
        if not ifw and "spike_value_factor" not in pp:
            raise NetworkError(f"{where}: 'inputs_from_weights' is false, so 'spike_value_factor' is required")
        if ifw and "spike_value_factor" in pp:
            raise NetworkError(f"{where}: 'inputs_from_weights' is true, so 'spike_value_factor' must not be given")
    else:
        for key in ("min_weight", "max_weight"):
            if key not in pp:
                raise NetworkError(f"{where}: missing RISP parameter '{key}' (required without 'weights')")
        if "inputs_from_weights" in pp:
            raise NetworkError(f"{where}: 'inputs_from_weights' needs a 'weights' array")
        ifw = False
        min_w, max_w = number("min_weight"), number("max_weight")
        if min_w > max_w:
            raise NetworkError(f"{where}: 'min_weight' = {_fmt(min_w)} exceeds 'max_weight' = {_fmt(max_w)}")
    if discrete:
        for key, v in (("min_weight", min_w), ("max_weight", max_w), ("min_potential", min_pot),
                       ("min_threshold", min_thr), ("max_threshold", max_thr)):
            if v is not None and not _integral(v):
                raise NetworkError(f"{where}: '{key}' = {_fmt(v)} is not an integer, but 'discrete' is true")
        if not all(float(w).is_integer() for w in weights):
            raise NetworkError(f"{where}: 'weights' = {_fmt(weights_raw)} must be integers, as 'discrete' is true")
    svf = number("spike_value_factor")
    if svf is None and not weights:
        svf = max_w  # RISP's default
    stds = pp.get("stds", [])
    noisy_stddev = number("noisy_stddev", 0)
    if not isinstance(stds, list) or not all(_num(s) for s in stds):
        raise NetworkError(f"{where}: 'stds' = {_fmt(stds)} is not an array of numbers")
    if stds and len(stds) != len(weights):
        raise NetworkError(f"{where}: 'stds' has {len(stds)} entries but 'weights' has {len(weights)}")
    return _Risp(
        discrete=discrete,
        min_weight=min_w,
        max_weight=max_w,
        min_threshold=min_thr,
        max_threshold=max_thr,
        min_potential=min_pot,
        max_delay=int(max_delay),
        leak_mode=leak_mode,
        threshold_inclusive=boolean("threshold_inclusive", True),
        run_time_inclusive=boolean("run_time_inclusive", False),
        fire_like_ravens=boolean("fire_like_ravens", False),
        spike_value_factor=svf,
        weights=weights,
        inputs_from_weights=ifw,
        noisy=bool(noisy_stddev) or any(s != 0 for s in stds),
    )


@dataclass
class _Prop:
    name: str
    type: int
    index: int
    size: int
    min_value: float
    max_value: float


def _parse_props(doc: Any, kind: str, allowed: set[str]) -> tuple[dict[str, _Prop], int]:
    """Parse one property list; return ``{name: prop}`` and the length of ``values``."""
    where = f"Properties.{kind}"
    if not isinstance(doc, list):
        raise NetworkError(f"{where}: is {type(doc).__name__}; expected a JSON array")
    props: dict[str, _Prop] = {}
    for k, p in enumerate(doc):
        if not isinstance(p, Mapping):
            raise NetworkError(f"{where}[{k}]: is {type(p).__name__}; expected a JSON object")
        for key in ("name", "type", "index", "size", "min_value", "max_value"):
            if key not in p:
                raise NetworkError(f"{where}[{k}]: missing field '{key}'")
        name = p["name"]
        if name not in allowed:
            raise NetworkError(
                f"{where}[{k}]: property '{name}' is not a RISP property; allowed: {', '.join(sorted(allowed))}"
            )
        if name in props:
            raise NetworkError(f"{where}[{k}]: property '{name}' is a duplicate")
        if p["type"] not in (TYPE_INT, TYPE_DOUBLE, TYPE_BOOL):
            raise NetworkError(f"{where}[{k}] ({name}): field 'type' = {_fmt(p['type'])}; allowed: 73 (I), 68 (D), 66 (B)")
        for key in ("index", "size"):
            if not _integral(p[key]) or p[key] < 0:
                raise NetworkError(f"{where}[{k}] ({name}): field '{key}' = {_fmt(p[key])}; allowed: an integer >= 0")
        if p["size"] != 1:
            raise NetworkError(f"{where}[{k}] ({name}): field 'size' = {_fmt(p['size'])}; RISP properties have size 1")
        for key in ("min_value", "max_value"):
            if not _num(p[key]):
                raise NetworkError(f"{where}[{k}] ({name}): field '{key}' = {_fmt(p[key])} is not a finite number")
        props[name] = _Prop(name, int(p["type"]), int(p["index"]), 1, p["min_value"], p["max_value"])
    slots = sorted(p.index for p in props.values())
    if slots != list(range(len(slots))):
        raise NetworkError(f"{where}: property indices {slots} do not cover 0..{len(slots) - 1} contiguously")
    return props, len(slots)


def _values(el: str, v: Any, n: int) -> list[float]:
    if not isinstance(v, list):
        raise NetworkError(f"{el}: field 'values' is {type(v).__name__}; expected a JSON array")
    if len(v) != n:
        raise NetworkError(f"{el}: field 'values' has {len(v)} entries; the Properties define {n}")
    for x in v:
        if not _num(x):
            raise NetworkError(f"{el}: field 'values' holds {_fmt(x)}; expected finite numbers")
    return v


def _node_id(el: str, field: str, v: Any) -> int:
    if not _integral(v) or not 0 <= v < 2**32:
        raise NetworkError(f"{el}: field '{field}' = {_fmt(v)} is out of range; allowed: an integer in 0..2**32-1")
    return int(v)


def _in_range(el: str, field: str, v: float, lo: float | None, hi: float | None, hint: str = "") -> None:
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise NetworkError(
            f"{el}: field '{field}' = {_fmt(v)} is out of range; allowed: {_fmt(lo)}..{_fmt(hi)}{hint}"
        )


# ----------------------------------------------------------------------------- import
def import_tennlab(
    doc: Any,
    *,
    proc_params: Mapping[str, Any] | None = None,
    allow_noise: bool = False,
) -> Network:
    """Build an IR network from a TENNLab RISP network document.

    Parameters
    ----------
    doc
        The parsed JSON (a dict).
    proc_params
        RISP parameters to use when the file has no ``Associated_Data.proc_params`` (or to
        override them).
    allow_noise
        Import a noisy network (``noisy_stddev``/``stds``) without its noise instead of
        refusing it.

    Returns
    -------
    Network
        Neurons keep their TENNLab ids and names; ports are ``in<k>``/``out<k>`` in the order
        of ``Inputs``/``Outputs``; ``metadata["tennlab"]`` holds what :func:`export_tennlab`
        needs.

    Raises
    ------
    NetworkError
        On a malformed file or anything the IR cannot express (the message names the node or
        edge, the field and the value).
    """
    if not isinstance(doc, Mapping):
        raise NetworkError(f"TENNLab network: top level is {type(doc).__name__}; expected a JSON object")
    for key in _TOP_REQUIRED:
        if key not in doc:
            raise NetworkError(f"TENNLab network: missing field '{key}'")
    unknown = sorted(set(doc) - set(_TOP_REQUIRED) - set(_TOP_OPTIONAL))
    if unknown:
        raise NetworkError(
            f"TENNLab network: unknown field '{unknown[0]}'; allowed: {', '.join(_TOP_REQUIRED + _TOP_OPTIONAL)}"
        )
    assoc = doc.get("Associated_Data", {})
    if not isinstance(assoc, Mapping):
        raise NetworkError(f"TENNLab network: field 'Associated_Data' is {type(assoc).__name__}; expected a JSON object")
    other = assoc.get("other", {})
    proc_name = other.get("proc_name") if isinstance(other, Mapping) else None
    if proc_name is not None and proc_name != "risp":
        raise NetworkError(
            f"TENNLab network: Associated_Data.other.proc_name = {proc_name!r}; spikeforge imports RISP networks only"
        )
    pp_doc = proc_params if proc_params is not None else assoc.get("proc_params")
    if pp_doc is None:
        raise NetworkError(
            "TENNLab network: no Associated_Data.proc_params; give the RISP parameters (proc_params=...)"
        )
    risp = _parse_proc_params(pp_doc)
    if risp.noisy:
        if not allow_noise:
            raise NetworkError(
                "proc_params: the network is noisy ('noisy_stddev' or 'stds'); the reference model is "
                "deterministic (import with allow_noise=True to drop the noise)"
            )
        log.warning("TENNLab import: dropping RISP noise (noisy_stddev/stds); the IR is deterministic")
    if risp.fire_like_ravens:
        log.warning(
            "TENNLab import: fire_like_ravens is set; RISP reports each spike one step later than "
            "the reference model (delivery times are the same)"
        )

    props = doc["Properties"]
    if not isinstance(props, Mapping):
        raise NetworkError(f"TENNLab network: field 'Properties' is {type(props).__name__}; expected a JSON object")
    for key in ("node_properties", "edge_properties"):
        if key not in props:
            raise NetworkError(f"Properties: missing field '{key}'")
    nprops, nvals = _parse_props(props["node_properties"], "node_properties", _NODE_PROPS)
    eprops, evals = _parse_props(props["edge_properties"], "edge_properties", _EDGE_PROPS)
    if "Threshold" not in nprops:
        raise NetworkError("Properties.node_properties: missing the 'Threshold' property RISP needs")
    for name in ("Weight", "Delay"):
        if name not in eprops:
            raise NetworkError(f"Properties.edge_properties: missing the '{name}' property RISP needs")
    if risp.leak_mode == "configurable" and "Leak" not in nprops:
        raise NetworkError("Properties.node_properties: leak_mode is 'configurable' but there is no 'Leak' property")
    if risp.leak_mode != "configurable" and "Leak" in nprops:
        raise NetworkError(
            f"Properties.node_properties: a 'Leak' property needs leak_mode 'configurable' (it is {risp.leak_mode!r})"
        )

    meta: dict[str, Any] = {
        "proc_params": copy.deepcopy(dict(pp_doc)),
        "properties": copy.deepcopy(dict(props)),
        "network_values": copy.deepcopy(doc.get("Network_Values", [])),
        "associated_data": {k: copy.deepcopy(v) for k, v in assoc.items() if k != "proc_params"},
        "node_extra": {},
        "edge_extra": {},
    }

    # Nodes
    nodes = doc["Nodes"]
    if not isinstance(nodes, list):
        raise NetworkError(f"TENNLab network: field 'Nodes' is {type(nodes).__name__}; expected a JSON array")
    net = Network()
    seen: set[int] = set()
    strict: list[int] = []
    v_min = risp.value(risp.min_potential)
    for k, nd in enumerate(nodes):
        el = f"node #{k}"
        if not isinstance(nd, Mapping):
            raise NetworkError(f"{el}: is {type(nd).__name__}; expected a JSON object")
        for key in ("id", "values"):
            if key not in nd:
                raise NetworkError(f"{el}: missing field '{key}'")
        nid = _node_id(el, "id", nd["id"])
        el = f"node {nid}"
        if nid in seen:
            raise NetworkError(f"{el}: field 'id' = {nid} is a duplicate; node ids must be unique")
        seen.add(nid)
        vals = _values(el, nd["values"], nvals)
        name = nd.get("name")
        if name is not None and not isinstance(name, str):
            raise NetworkError(f"{el}: field 'name' = {_fmt(name)} is not a string")
        thr = vals[nprops["Threshold"].index]
        if risp.discrete and not float(thr).is_integer():
            raise NetworkError(f"{el}: Threshold = {_fmt(thr)} is not an integer, but 'discrete' is true")
        _in_range(el, "Threshold", thr, risp.min_threshold, risp.max_threshold, " (proc_params min/max_threshold)")
        if thr < 0:
            raise NetworkError(
                f"{el}: Threshold = {_fmt(thr)} is negative; spikeforge thresholds are >= 0 (not expressible)"
            )
        theta: Number = risp.value(thr)
        if not risp.threshold_inclusive:
            theta = theta + 1 if risp.discrete else theta + FLOAT_EXCLUSIVE_EPSILON
            if not risp.discrete:  # quantization keeps "> θ": integer threshold ⌊θ·s⌋ + 1
                strict.append(nid)
        if risp.leak_mode == "configurable":
            leak = Leak.FULL if vals[nprops["Leak"].index] != 0 else Leak.NONE
        else:
            leak = Leak.FULL if risp.leak_mode == "all" else Leak.NONE
        net.neurons.append(Neuron(id=nid, threshold=theta, leak=leak, reset=Reset.ZERO,
                                  v_min=v_min, refractory=0, bias=0, name=name))
        extra = {kk: copy.deepcopy(vv) for kk, vv in nd.items() if kk not in ("id", "values", "name")}
        if extra:
            meta["node_extra"][str(nid)] = extra

    # Edges
    edges = doc["Edges"]
    if not isinstance(edges, list):
        raise NetworkError(f"TENNLab network: field 'Edges' is {type(edges).__name__}; expected a JSON array")
    pairs: set[tuple[int, int]] = set()
    for k, ed in enumerate(edges):
        el = f"edge #{k}"
        if not isinstance(ed, Mapping):
            raise NetworkError(f"{el}: is {type(ed).__name__}; expected a JSON object")
        for key in ("from", "to", "values"):
            if key not in ed:
                raise NetworkError(f"{el}: missing field '{key}'")
        a, b = _node_id(el, "from", ed["from"]), _node_id(el, "to", ed["to"])
        el = f"edge #{k} ({a}->{b})"
        for field, end in (("from", a), ("to", b)):
            if end not in seen:
                raise NetworkError(f"{el}: field '{field}' = {end} names no node")
        if (a, b) in pairs:
            raise NetworkError(f"{el}: a second edge {a}->{b}; TENNLab networks have one edge per pair")
        pairs.add((a, b))
        vals = _values(el, ed["values"], evals)
        wv = vals[eprops["Weight"].index]
        if risp.weights:
            if not _integral(wv) or not 0 <= wv < len(risp.weights):
                raise NetworkError(
                    f"{el}: Weight = {_fmt(wv)} is out of range; allowed: an index 0..{len(risp.weights) - 1} "
                    "into proc_params 'weights'"
                )
            w: Number = risp.value(risp.weights[int(wv)])
        else:
            if risp.discrete and not float(wv).is_integer():
                raise NetworkError(f"{el}: Weight = {_fmt(wv)} is not an integer, but 'discrete' is true")
            _in_range(el, "Weight", wv, risp.min_weight, risp.max_weight, " (proc_params min/max_weight)")
            w = risp.value(wv)
        dv = vals[eprops["Delay"].index]
        if not _integral(dv):
            raise NetworkError(f"{el}: Delay = {_fmt(dv)} is not an integer")
        _in_range(el, "Delay", dv, 1, risp.max_delay, " (1..proc_params max_delay)")
        net.synapses.append(Synapse(pre=a, post=b, weight=w, delay=int(dv)))
        extra = {kk: copy.deepcopy(vv) for kk, vv in ed.items() if kk not in ("from", "to", "values")}
        if extra:
            meta["edge_extra"][f"{a}->{b}"] = extra

    # Ports
    for field, ports, prefix in (("Inputs", net.inputs, "in"), ("Outputs", net.outputs, "out")):
        ids = doc[field]
        if not isinstance(ids, list):
            raise NetworkError(f"TENNLab network: field '{field}' is {type(ids).__name__}; expected a JSON array")
        for k, v in enumerate(ids):
            nid = _node_id(f"{field}[{k}]", "id", v)
            if nid not in seen:
                raise NetworkError(f"{field}[{k}]: node id {nid} names no node")
            ports.append(Port(name=f"{prefix}{k}", neuron=nid))
    net.metadata["tennlab"] = meta
    if strict:
        net.metadata["strict_threshold"] = strict
    return net.validate()


def read_tennlab(path: str | Path, **kwargs: Any) -> Network:
    """Read a TENNLab RISP network file (see :func:`import_tennlab` for ``kwargs``).

    Raises
    ------
    NetworkError
        If the file cannot be read, is not JSON, or is not a valid RISP network; the message
        starts with the path.
    """
    p = Path(path)
    doc = read_json_file(p)
    try:
        return import_tennlab(doc, **kwargs)
    except NetworkError as e:
        raise NetworkError(f"{p}: {e}") from None


# ----------------------------------------------------------------------------- export
def _derive_proc_params(net: Network, potential_bits: int) -> dict[str, Any]:
    """RISP parameters that fit ``net`` (used when it was not imported from TENNLab)."""
    discrete = net.is_integer()
    leaks = {n.leak for n in net.neurons}
    leak_mode = "none" if leaks <= {Leak.NONE} else "all" if leaks == {Leak.FULL} else "configurable"
    vmins = {n.v_min for n in net.neurons}
    if len(vmins) > 1:
        bad = next(n for n in net.neurons if n.v_min != net.neurons[0].v_min)
        raise NetworkError(
            f"neuron {bad.id}: field 'v_min' = {bad.v_min!r} differs from neuron {net.neurons[0].id}'s "
            f"{net.neurons[0].v_min!r}; RISP has one min_potential for all neurons"
        )
    vmin = next(iter(vmins)) if vmins else 0
    if vmin is None:
        vmin = -(1 << (potential_bits - 1))
    big = max([abs(s.weight) for s in net.synapses] + [n.threshold for n in net.neurons] + [1])
    if discrete:
        big = int(big)
    else:
        big, vmin = float(big), float(vmin)
    return {
        "min_weight": -big,
        "max_weight": big,
        "leak_mode": leak_mode,
        "min_threshold": 0 if discrete else 0.0,
        "max_threshold": big,
        "min_potential": vmin,
        "max_delay": max(15, net.max_delay),
        "discrete": discrete,
    }


def _risp_properties(risp: _Risp) -> dict[str, Any]:
    """The PropertyPack RISP declares for these parameters."""
    num_type = TYPE_INT if risp.discrete else TYPE_DOUBLE

    def prop(name: str, typ: int, index: int, lo: float, hi: float) -> dict[str, Any]:
        return {"name": name, "type": typ, "index": index, "size": 1,
                "min_value": float(lo), "max_value": float(hi)}

    nodes = [prop("Threshold", num_type, 0, risp.min_threshold, risp.max_threshold)]
    if risp.leak_mode == "configurable":
        nodes.append(prop("Leak", TYPE_BOOL, 1, 0, 1))
    if risp.weights:
        weight = prop("Weight", TYPE_INT, 0, 0, len(risp.weights) - 1)
    else:
        weight = prop("Weight", num_type, 0, risp.min_weight, risp.max_weight)  # type: ignore[arg-type]
    return {
        "node_properties": nodes,
        "edge_properties": [weight, prop("Delay", TYPE_INT, 1, 1, risp.max_delay)],
        "network_properties": [],
    }


def export_tennlab(net: Network, *, potential_bits: int = 16) -> dict[str, Any]:
    """The TENNLab RISP network document of ``net``.

    A network imported by :func:`import_tennlab` exports with its original parameters,
    properties and associated data; any other network gets RISP parameters derived from its
    values (RISP-*n* style: weights in ``[-n, n]``, thresholds in ``[0, n]``, ``max_delay``
    at least 15, ``discrete`` when every value is an integer).

    Parameters
    ----------
    net
        The network.
    potential_bits
        Used only for a network with ``v_min = None`` and no TENNLab metadata: RISP needs a
        ``min_potential``, and ``None`` means the bottom of a ``potential_bits``-wide potential.

    Raises
    ------
    NetworkError
        For anything RISP cannot express, naming the neuron or synapse, the field and the
        value: a ``subtract`` reset, a ``shift`` leak, a refractory period, a bias, a ``v_min``
        other than ``min_potential``, a leak the ``leak_mode`` forbids, a value outside the
        RISP parameter ranges, a non-integer value in a discrete network, parallel synapses.
    """
    net.validate()
    meta = net.metadata.get("tennlab")
    if meta is not None and not isinstance(meta, Mapping):
        raise NetworkError(f"network: metadata['tennlab'] is {type(meta).__name__}; expected a JSON object")
    meta = meta or {}
    pp_doc = meta.get("proc_params") or _derive_proc_params(net, potential_bits)
    risp = _parse_proc_params(pp_doc, "metadata['tennlab']['proc_params']")
    props_doc = meta.get("properties") or _risp_properties(risp)
    nprops, nvals = _parse_props(props_doc.get("node_properties", []), "node_properties", _NODE_PROPS)
    eprops, evals = _parse_props(props_doc.get("edge_properties", []), "edge_properties", _EDGE_PROPS)
    if "Threshold" not in nprops or "Weight" not in eprops or "Delay" not in eprops:
        raise NetworkError("metadata['tennlab']['properties']: needs Threshold, Weight and Delay properties")
    if (risp.leak_mode == "configurable") != ("Leak" in nprops):
        raise NetworkError(
            "metadata['tennlab']['properties']: a 'Leak' property goes with leak_mode 'configurable' only"
        )
    node_extra = meta.get("node_extra", {})
    edge_extra = meta.get("edge_extra", {})

    nodes = []
    for n in net.neurons:
        el = f"neuron {n.id}"
        if n.id >= 2**32:
            raise NetworkError(f"{el}: field 'id' = {n.id} is out of range; TENNLab ids are 32-bit")
        if n.reset is not Reset.ZERO:
            raise NetworkError(f"{el}: field 'reset' = {n.reset.value!r} is not expressible in RISP (allowed: 'zero')")
        if n.leak is Leak.SHIFT:
            raise NetworkError(f"{el}: field 'leak' = 'shift' is not expressible in RISP (allowed: none, full)")
        if n.refractory != 0:
            raise NetworkError(f"{el}: field 'refractory' = {n.refractory} is not expressible in RISP (allowed: 0)")
        if n.bias != 0:
            raise NetworkError(f"{el}: field 'bias' = {n.bias!r} is not expressible in RISP (allowed: 0)")
        vmin = n.v_min if n.v_min is not None else -(1 << (potential_bits - 1))
        if vmin != risp.min_potential:
            raise NetworkError(
                f"{el}: field 'v_min' = {n.v_min!r} is not expressible in RISP: every neuron must have "
                f"v_min = min_potential = {_fmt(risp.min_potential)}"
            )
        if risp.leak_mode == "all" and n.leak is not Leak.FULL:
            raise NetworkError(f"{el}: field 'leak' = {n.leak.value!r} but leak_mode is 'all' (allowed: full)")
        if risp.leak_mode == "none" and n.leak is not Leak.NONE:
            raise NetworkError(f"{el}: field 'leak' = {n.leak.value!r} but leak_mode is 'none' (allowed: none)")
        thr = n.threshold
        if risp.discrete and not isinstance(thr, int):
            raise NetworkError(f"{el}: field 'threshold' = {thr!r} is not an integer, but 'discrete' is true")
        if not risp.threshold_inclusive:
            thr = thr - 1 if risp.discrete else thr - FLOAT_EXCLUSIVE_EPSILON
        _in_range(el, "threshold", thr, risp.min_threshold, risp.max_threshold,
                  " (proc_params min/max_threshold" + ("" if risp.threshold_inclusive else ", exclusive: file value") + ")")
        vals = [0.0] * nvals
        vals[nprops["Threshold"].index] = float(thr)
        if "Leak" in nprops:
            vals[nprops["Leak"].index] = 1.0 if n.leak is Leak.FULL else 0.0
        nd: dict[str, Any] = {"id": n.id}
        if n.name is not None:
            nd["name"] = n.name
        nd["values"] = vals
        nd.update(copy.deepcopy(node_extra.get(str(n.id), {})))
        nodes.append(nd)

    edges = []
    pairs: set[tuple[int, int]] = set()
    for k, s in enumerate(net.synapses):
        el = f"synapse #{k} ({s.pre}->{s.post})"
        if (s.pre, s.post) in pairs:
            raise NetworkError(f"{el}: a second synapse {s.pre}->{s.post}; RISP allows one per pair (merge them)")
        pairs.add((s.pre, s.post))
        if risp.discrete and not isinstance(s.weight, int):
            raise NetworkError(f"{el}: field 'weight' = {s.weight!r} is not an integer, but 'discrete' is true")
        if risp.weights:
            try:
                wv = float(risp.weights.index(float(s.weight)))
            except ValueError:
                raise NetworkError(
                    f"{el}: field 'weight' = {s.weight!r} is not one of proc_params 'weights' {risp.weights}"
                ) from None
        else:
            _in_range(el, "weight", s.weight, risp.min_weight, risp.max_weight, " (proc_params min/max_weight)")
            wv = float(s.weight)
        _in_range(el, "delay", s.delay, 1, risp.max_delay, " (1..proc_params max_delay)")
        vals = [0.0] * evals
        vals[eprops["Weight"].index] = wv
        vals[eprops["Delay"].index] = float(s.delay)
        ed: dict[str, Any] = {"from": s.pre, "to": s.post, "values": vals}
        ed.update(copy.deepcopy(edge_extra.get(f"{s.pre}->{s.post}", {})))
        edges.append(ed)

    assoc = copy.deepcopy(meta.get("associated_data", {"other": {"proc_name": "risp"}}))
    assoc["proc_params"] = copy.deepcopy(dict(pp_doc))
    return {
        "Properties": copy.deepcopy(dict(props_doc)),
        "Nodes": nodes,
        "Edges": edges,
        "Inputs": [p.neuron for p in net.inputs],
        "Outputs": [p.neuron for p in net.outputs],
        "Network_Values": copy.deepcopy(meta.get("network_values", [])),
        "Associated_Data": assoc,
    }


def write_tennlab(net: Network, path: str | Path, **kwargs: Any) -> None:
    """Export ``net`` (see :func:`export_tennlab`) and write it as JSON, atomically."""
    doc = export_tennlab(net, **kwargs)
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


# ----------------------------------------------------------------------------- running
def _risp_of(net: Network, potential_bits: int = 16) -> _Risp:
    meta = net.metadata.get("tennlab") or {}
    pp = meta.get("proc_params") if isinstance(meta, Mapping) else None
    return _parse_proc_params(pp or _derive_proc_params(net, potential_bits))


def tennlab_inputs(
    net: Network,
    spikes: Iterable[Sequence[Number]],
    *,
    normalized: bool = True,
) -> list[tuple[int, int, Number]]:
    """Convert TENNLab ``apply_spikes()`` spikes into reference-model inputs.

    Parameters
    ----------
    net
        The network (its ``metadata["tennlab"]["proc_params"]``, else derived parameters).
    spikes
        ``(input_id, time, value)`` triples as given to RISP's ``apply_spikes()``.
    normalized
        True (RISP's default): ``value ∈ [0, 1]`` is scaled: ``floor(value ·
        spike_value_factor)`` for a discrete network, ``value · spike_value_factor`` for a float
        one, or ``weights[min(int(value · len(weights)), len(weights) − 1)]`` with
        ``inputs_from_weights``. False: ``value`` is used as is (an index into ``weights``
        with ``inputs_from_weights``).

    Returns
    -------
    list of (input_index, time, value)
        Integers for a discrete network (ready for :func:`~spikeforge.toolchain.reference.simulate`).

    Raises
    ------
    ValueError
        On an input id the network lacks, a negative or non-integer time, or a value out of
        range.
    """
    risp = _risp_of(net)
    out: list[tuple[int, int, Number]] = []
    for k, sp in enumerate(spikes):
        if len(sp) != 3:
            raise ValueError(f"spike #{k}: expected (input_id, time, value), got {sp!r}")
        i, t, x = sp
        if not _integral(i) or not 0 <= i < len(net.inputs):
            raise ValueError(f"spike #{k}: input_id = {i!r} is out of range; allowed: 0..{len(net.inputs) - 1}")
        if not _integral(t) or t < 0:
            raise ValueError(f"spike #{k}: time = {t!r} is out of range; allowed: an integer >= 0")
        if not _num(x):
            raise ValueError(f"spike #{k}: value = {x!r} is not a finite number")
        if normalized and not 0 <= x <= 1:
            raise ValueError(f"spike #{k}: value = {x!r} is out of range; allowed: 0..1 (normalized)")
        if risp.inputs_from_weights:
            n = len(risp.weights)
            if normalized:
                idx = min(int(x * n), n - 1)
            else:
                if not _integral(x) or not 0 <= x < n:
                    raise ValueError(f"spike #{k}: value = {x!r} is out of range; allowed: a weight index 0..{n - 1}")
                idx = int(x)
            v: Number = risp.weights[idx]
        elif normalized:
            assert risp.spike_value_factor is not None  # set whenever inputs_from_weights is false
            v = x * risp.spike_value_factor
            if risp.discrete:
                v = math.floor(v)
        else:
            v = x
        if risp.discrete:
            if not float(v).is_integer():
                raise ValueError(f"spike #{k}: value = {x!r} is not an integer, but the network is discrete")
            v = int(v)
        else:
            v = float(v)
        out.append((int(i), int(t), v))
    return out


def tennlab_steps(net: Network, duration: int) -> int:
    """Steps RISP's ``run(duration)`` performs: ``duration + 1`` with ``run_time_inclusive``."""
    if not isinstance(duration, int) or duration < 0:
        raise ValueError(f"duration = {duration!r} is out of range; allowed: an integer >= 0")
    return duration + 1 if _risp_of(net).run_time_inclusive else duration


def tennlab_result(net: Network, result: SimResult) -> SimResult:
    """The spikes of a reference-model run as RISP reports them.

    With ``fire_like_ravens`` RISP decides a spike at step ``t`` (delivery at ``t + delay`` and
    the charge reset are unchanged) but reports it at ``t + 1`` ("neurons fire the timestep
    after", TENNLab's RAVENS note): every spike time moves one step later and a spike decided at
    the run's last step falls outside it (RISP reports it at step 0 of the next ``run()``).
    Without ``fire_like_ravens`` the result is returned unchanged.

    Parameters
    ----------
    net
        The network (its ``metadata["tennlab"]["proc_params"]``).
    result
        What :func:`~spikeforge.toolchain.reference.simulate` returned for ``net``.
    """
    if not _risp_of(net).fire_like_ravens:
        return result
    keep = result.spike_times + 1 < result.steps
    return SimResult(neuron_ids=result.neuron_ids, steps=result.steps,
                     spike_times=result.spike_times[keep] + 1, spike_index=result.spike_index[keep],
                     potentials=result.potentials, events=result.events)


#: What :func:`load_any` reads: ``auto`` tells TENNLab from spikeforge JSON by its keys.
NETWORK_FORMATS = ("auto", "spikeforge", "tennlab")


def load_any(path: str | Path, fmt: str = "auto") -> Network:
    """Load a network file as spikeforge JSON or TENNLab RISP JSON (what every command and the
    robot's ``spiking:PATH`` controllers read).

    Parameters
    ----------
    path
        The file.
    fmt
        ``"spikeforge"``, ``"tennlab"``, or ``"auto"`` (TENNLab when the document has ``Nodes``
        and ``Edges`` keys).

    Raises
    ------
    NetworkError
        With the path first, on an unreadable file, invalid JSON or an invalid network.
    """
    if fmt not in NETWORK_FORMATS:
        raise NetworkError(f"network format {fmt!r} is unknown; allowed: {', '.join(NETWORK_FORMATS)}")
    p = Path(path)
    doc = read_json_file(p)
    try:
        if fmt == "tennlab" or (fmt == "auto" and is_tennlab_document(doc)):
            net = import_tennlab(doc)
            log.info("%s: TENNLab RISP network", p)
        else:
            net = Network.from_dict(doc)
    except NetworkError as e:
        raise NetworkError(f"{p}: {str(e).removeprefix('network file: ')}") from None
    log.info("%s: %d neurons, %d synapses, %d inputs, %d outputs", p, len(net.neurons),
             len(net.synapses), len(net.inputs), len(net.outputs))
    return net
