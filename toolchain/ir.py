"""The spikeforge network IR: neurons, synapses, ports and metadata.

Every trainer produces a :class:`Network`; every compiler pass, the reference model, the
image lowering and the exporters consume one. The semantics of each field are the neuron
contract, specified once, with worked examples, in the docstring of
:mod:`spikeforge.toolchain.reference` (README "The neuron contract" and docs/architecture.md point
there; there is no second copy).

Neuron (per node, id ``i``)
    ``threshold``  θ ≥ 0; the neuron fires when touched and ``v >= θ``.
    ``leak``       ``"none"`` | ``"full"`` (v ← 0 each step) | ``"shift"`` (v ← v − (v >> k)).
    ``leak_shift`` k ≥ 1, used only when ``leak == "shift"``.
    ``reset``      ``"zero"`` (v ← 0 on firing) | ``"subtract"`` (v ← v − θ on firing).
    ``v_min``      floor the potential is clamped up to after leak (≤ 0), or ``None`` for the
                   bottom of the potential range.
    ``refractory`` r ≥ 0 steps after a spike during which inputs and bias are ignored.
    ``bias``       b, added every non-refractory step (and b ≠ 0 touches the neuron).

Synapse
    ``pre``, ``post`` neuron ids; ``weight`` w (signed); ``delay`` d ≥ 1 steps.

Ports
    ``inputs`` and ``outputs`` are ordered lists of named ports, each bound to one neuron.
    Input index ``k`` in an input file means ``inputs[k]``.

Values are integers for deployment, but a network may carry floats (straight from a trainer or
an imported RISP-F network); :meth:`Network.is_integer` tells which, and the compiler quantizes.

The on-disk format is JSON, versioned; its schema is ``toolchain/schema/network-v1.json``.

Limits
------
Every size the tools allocate is derived from numbers in a network, so the IR bounds them
before any work (a file cannot ask for gigabytes with one number): neuron ids in
``0 ..`` :data:`ID_MAX`, numeric values (threshold, bias, v_min, weight) of magnitude at most
:data:`VALUE_MAX` (exact in float64 and in the reference model's int64), delays in
``1 ..`` :data:`DELAY_MAX`, refractory periods in ``0 ..`` :data:`REFRACTORY_MAX`, and at most
:data:`NEURONS_MAX` neurons and :data:`SYNAPSES_MAX` synapses. A core's own, smaller limits are
:meth:`spikeforge.hdl.config.CoreConfig.limits`.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import networkx as nx

from .fsutil import write_atomic

__all__ = [
    "DELAY_MAX",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ID_MAX",
    "Leak",
    "METADATA_DEPTH_MAX",
    "NEURONS_MAX",
    "Network",
    "NetworkError",
    "Neuron",
    "Port",
    "REFRACTORY_MAX",
    "Reset",
    "SYNAPSES_MAX",
    "Synapse",
    "VALUE_MAX",
    "load_network",
    "read_json_file",
    "save_network",
]

FORMAT_NAME = "spikeforge.network"
FORMAT_VERSION = 1

Number = int | float

#: Largest neuron id (32-bit unsigned, as TENNLab node ids).
ID_MAX = 2**32 - 1
#: Largest magnitude of a threshold, bias, v_min or weight (exact in float64 and int64).
VALUE_MAX = 2**53
#: Largest synaptic delay in steps (the reference model keeps one pending slot per step of delay).
DELAY_MAX = 2**20
#: Largest refractory period in steps.
REFRACTORY_MAX = 2**31 - 1
#: Most neurons in one network.
NEURONS_MAX = 2**20
#: Most synapses in one network.
SYNAPSES_MAX = 2**20
#: Deepest nesting of ``metadata`` (lists and objects inside one another).
METADATA_DEPTH_MAX = 64


def _too_deep(doc: Any, limit: int) -> bool:
    """True when ``doc`` nests lists/dicts more than ``limit`` deep (iterative: no recursion)."""
    stack = [(doc, 0)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict | list):
            if d >= limit:
                return True
            stack.extend((y, d + 1) for y in (x.values() if isinstance(x, dict) else x))
    return False


class NetworkError(ValueError):
    """A network (or a network file) is invalid.

    The message names the element, the field, the bad value and what is allowed, so that the
    CLI can print it as one line.
    """


class Leak(StrEnum):
    """Leak mode of a neuron, applied at the start of every step."""

    NONE = "none"
    FULL = "full"
    SHIFT = "shift"


class Reset(StrEnum):
    """What firing does to the potential."""

    ZERO = "zero"
    SUBTRACT = "subtract"


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and abs(x) <= VALUE_MAX


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _integral(x: Number) -> bool:
    return _is_int(x) or (isinstance(x, float) and x.is_integer())


@dataclass
class Neuron:
    """One neuron. See the module docstring for the meaning of each field."""

    id: int
    threshold: Number = 1
    leak: Leak = Leak.NONE
    leak_shift: int = 1
    reset: Reset = Reset.ZERO
    v_min: Number | None = None
    refractory: int = 0
    bias: Number = 0
    name: str | None = None

    def __post_init__(self) -> None:
        # Accept plain strings for the enums (what JSON and users give).
        if not isinstance(self.leak, Leak):
            try:
                self.leak = Leak(self.leak)
            except ValueError:
                raise NetworkError(
                    f"neuron {self.id}: field 'leak' = {self.leak!r} is not allowed; "
                    f"allowed: {', '.join(m.value for m in Leak)}"
                ) from None
        if not isinstance(self.reset, Reset):
            try:
                self.reset = Reset(self.reset)
            except ValueError:
                raise NetworkError(
                    f"neuron {self.id}: field 'reset' = {self.reset!r} is not allowed; "
                    f"allowed: {', '.join(m.value for m in Reset)}"
                ) from None


@dataclass
class Synapse:
    """A directed connection ``pre → post`` carrying ``weight`` after ``delay`` steps."""

    pre: int
    post: int
    weight: Number = 1
    delay: int = 1


@dataclass
class Port:
    """A named input or output, bound to one neuron id."""

    name: str
    neuron: int


def show(value: Any, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters (a hostile file's value in one short line)."""
    try:
        r = repr(value)
    except ValueError:  # an int with more digits than Python converts
        r = f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    return r if len(r) <= width else r[: width - 3] + "..."


def _err(element: str, fieldname: str, value: Any, allowed: str) -> NetworkError:
    return NetworkError(f"{element}: field '{fieldname}' = {show(value)} is out of range; allowed: {allowed}")


@dataclass
class Network:
    """A spiking network: the IR every spikeforge stage exchanges.

    Parameters
    ----------
    neurons
        The neurons, in a fixed order (the order is kept by files and simulators; ids need
        not be contiguous, so imported TENNLab node ids survive).
    synapses
        The synapses; parallel synapses (same pre and post) are allowed.
    inputs, outputs
        Named ports, each bound to a neuron id.
    metadata
        Free-form JSON-serialisable data. Conventional keys: ``"encoders"``, ``"decoders"``,
        ``"provenance"``, ``"tennlab"`` (what a TENNLab import needs to export back).
    """

    neurons: list[Neuron] = field(default_factory=list)
    synapses: list[Synapse] = field(default_factory=list)
    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    def add_neuron(self, id: int | None = None, **params: Any) -> Neuron:
        """Append a neuron (next free id when ``id`` is None) and return it."""
        if id is None:
            id = max((n.id for n in self.neurons), default=-1) + 1
        n = Neuron(id=id, **params)
        self.neurons.append(n)
        return n

    def add_synapse(self, pre: int, post: int, weight: Number = 1, delay: int = 1) -> Synapse:
        """Append a synapse and return it."""
        s = Synapse(pre=pre, post=post, weight=weight, delay=delay)
        self.synapses.append(s)
        return s

    def add_input(self, neuron: int, name: str | None = None) -> Port:
        """Bind a new input port (named ``in<k>`` by default) to ``neuron``."""
        p = Port(name=name if name is not None else f"in{len(self.inputs)}", neuron=neuron)
        self.inputs.append(p)
        return p

    def add_output(self, neuron: int, name: str | None = None) -> Port:
        """Bind a new output port (named ``out<k>`` by default) to ``neuron``."""
        p = Port(name=name if name is not None else f"out{len(self.outputs)}", neuron=neuron)
        self.outputs.append(p)
        return p

    # ------------------------------------------------------------------ queries
    @property
    def neuron_ids(self) -> list[int]:
        """Neuron ids in network order."""
        return [n.id for n in self.neurons]

    def neuron(self, id: int) -> Neuron:
        """The neuron with this id (``KeyError`` if none)."""
        for n in self.neurons:
            if n.id == id:
                return n
        raise KeyError(id)

    def index_of(self) -> dict[int, int]:
        """Map neuron id → position in :attr:`neurons`."""
        return {n.id: i for i, n in enumerate(self.neurons)}

    @property
    def max_delay(self) -> int:
        """Largest synaptic delay (0 for a network without synapses)."""
        return max((s.delay for s in self.synapses), default=0)

    def is_integer(self) -> bool:
        """True when every numeric parameter is an integer (ready for the reference model)."""
        for n in self.neurons:
            if not (_is_int(n.threshold) and _is_int(n.bias)):
                return False
            if n.v_min is not None and not _is_int(n.v_min):
                return False
        return all(_is_int(s.weight) for s in self.synapses)

    def copy(self) -> Network:
        """A deep copy."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ validation
    def validate(self) -> Network:
        """Check every element; raise :class:`NetworkError` naming the first bad one.

        Returns the network itself so calls can chain.
        """
        for what, items, most in (("neurons", self.neurons, NEURONS_MAX), ("synapses", self.synapses, SYNAPSES_MAX)):
            if len(items) > most:
                raise NetworkError(f"network: {len(items)} {what} is out of range; allowed: at most {most}")
        seen: set[int] = set()
        for pos, n in enumerate(self.neurons):
            el = f"neuron {n.id}" if _is_int(n.id) and 0 <= n.id <= ID_MAX else f"neuron #{pos}"
            if not _is_int(n.id) or not 0 <= n.id <= ID_MAX:
                raise _err(el, "id", n.id, f"an integer in 0..{ID_MAX}")
            if n.id in seen:
                raise NetworkError(f"{el}: field 'id' = {n.id} is a duplicate; neuron ids must be unique")
            seen.add(n.id)
            if not _is_number(n.threshold) or n.threshold < 0:
                raise _err(el, "threshold", n.threshold, f"a number in 0..{VALUE_MAX}")
            n.__post_init__()  # coerce plain strings assigned after construction
            if not isinstance(n.leak, Leak):
                raise _err(el, "leak", n.leak, ", ".join(m.value for m in Leak))
            if n.leak is Leak.SHIFT and (not _is_int(n.leak_shift) or not 1 <= n.leak_shift <= 62):
                raise _err(el, "leak_shift", n.leak_shift, "an integer in 1..62")
            if not isinstance(n.reset, Reset):
                raise _err(el, "reset", n.reset, ", ".join(m.value for m in Reset))
            if n.v_min is not None and (not _is_number(n.v_min) or n.v_min > 0):
                raise _err(el, "v_min", n.v_min, f"null or a number in -{VALUE_MAX}..0")
            if not _is_int(n.refractory) or not 0 <= n.refractory <= REFRACTORY_MAX:
                raise _err(el, "refractory", n.refractory, f"an integer in 0..{REFRACTORY_MAX}")
            if not _is_number(n.bias):
                raise _err(el, "bias", n.bias, f"a number in -{VALUE_MAX}..{VALUE_MAX}")
            if n.name is not None and not isinstance(n.name, str):
                raise _err(el, "name", n.name, "null or a string")
        for k, s in enumerate(self.synapses):
            el = f"synapse #{k}"
            for end in ("pre", "post"):
                v = getattr(s, end)
                if not _is_int(v) or v not in seen:
                    raise NetworkError(
                        f"{el}: field '{end}' = {show(v)} names no neuron; "
                        f"allowed: one of the {len(seen)} neuron ids"
                    )
            el = f"synapse #{k} ({s.pre}->{s.post})"
            if not _is_number(s.weight):
                raise _err(el, "weight", s.weight, f"a number in -{VALUE_MAX}..{VALUE_MAX}")
            if not _is_int(s.delay) or not 1 <= s.delay <= DELAY_MAX:
                raise _err(el, "delay", s.delay, f"an integer in 1..{DELAY_MAX}")
        for kind, ports in (("input", self.inputs), ("output", self.outputs)):
            names: set[str] = set()
            for k, p in enumerate(ports):
                el = f"{kind} port #{k} ({show(p.name)})"
                if not isinstance(p.name, str) or not p.name:
                    raise _err(el, "name", p.name, "a non-empty string")
                if p.name in names:
                    raise NetworkError(f"{el}: field 'name' = {show(p.name)} is a duplicate; {kind} port names must be unique")
                names.add(p.name)
                if not _is_int(p.neuron) or p.neuron not in seen:
                    raise NetworkError(
                        f"{el}: field 'neuron' = {p.neuron!r} names no neuron; "
                        f"allowed: one of the {len(seen)} neuron ids"
                    )
        if not isinstance(self.metadata, dict):
            raise _err("network", "metadata", type(self.metadata).__name__, "a JSON object")
        return self

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON document (format ``spikeforge.network``, version 1)."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "neurons": [
                {
                    "id": n.id,
                    "threshold": n.threshold,
                    "leak": n.leak.value,
                    "leak_shift": n.leak_shift,
                    "reset": n.reset.value,
                    "v_min": n.v_min,
                    "refractory": n.refractory,
                    "bias": n.bias,
                    **({"name": n.name} if n.name is not None else {}),
                }
                for n in self.neurons
            ],
            "synapses": [
                {"pre": s.pre, "post": s.post, "weight": s.weight, "delay": s.delay}
                for s in self.synapses
            ],
            "inputs": [{"name": p.name, "neuron": p.neuron} for p in self.inputs],
            "outputs": [{"name": p.name, "neuron": p.neuron} for p in self.outputs],
            "metadata": copy.deepcopy(self.metadata),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Network:
        """Build and validate a network from its JSON document.

        Raises
        ------
        NetworkError
            On a wrong format tag, an unknown version, a missing or unknown field, or any
            value :meth:`validate` refuses.
        """
        if not isinstance(doc, Mapping):
            raise NetworkError(f"network file: top level is {type(doc).__name__}; expected a JSON object")
        fmt = doc.get("format")
        if fmt != FORMAT_NAME:
            raise NetworkError(
                f"network file: field 'format' = {fmt!r}; expected {FORMAT_NAME!r} "
                "(for a TENNLab network use --format tennlab)"
            )
        ver = doc.get("version")
        if ver != FORMAT_VERSION:
            raise NetworkError(
                f"network file: field 'version' = {ver!r} is not supported; this spikeforge reads version {FORMAT_VERSION}"
            )
        _check_keys("network file", doc, required={"format", "version", "neurons"},
                    optional={"synapses", "inputs", "outputs", "metadata"})
        neurons = [_neuron_from(i, d) for i, d in enumerate(_list(doc, "neurons", "network file"))]
        synapses = [_synapse_from(i, d) for i, d in enumerate(_list(doc, "synapses", "network file"))]
        inputs = [_port_from("input", i, d) for i, d in enumerate(_list(doc, "inputs", "network file"))]
        outputs = [_port_from("output", i, d) for i, d in enumerate(_list(doc, "outputs", "network file"))]
        metadata = doc.get("metadata", {})
        if _too_deep(metadata, METADATA_DEPTH_MAX):
            raise NetworkError(f"network file: field 'metadata' nests deeper than {METADATA_DEPTH_MAX} levels")
        net = cls(neurons=neurons, synapses=synapses, inputs=inputs, outputs=outputs,
                  metadata=copy.deepcopy(metadata) if metadata is not None else {})
        return net.validate()

    def to_json(self, indent: int | None = 1) -> str:
        """Serialise to a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Network:
        """Parse a JSON string (see :meth:`from_dict`)."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise NetworkError(f"network file: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        except RecursionError:
            raise NetworkError("network file: JSON nested too deeply") from None
        return cls.from_dict(doc)

    # ------------------------------------------------------------------ networkx
    def to_networkx(self) -> nx.MultiDiGraph:
        """A ``MultiDiGraph``: nodes are neuron ids with the neuron fields as attributes,
        edges carry ``weight``, ``delay`` and ``order`` (position in the synapse list); ports and metadata live in ``graph``."""
        g = nx.MultiDiGraph()
        for n in self.neurons:
            g.add_node(n.id, threshold=n.threshold, leak=n.leak.value, leak_shift=n.leak_shift,
                       reset=n.reset.value, v_min=n.v_min, refractory=n.refractory, bias=n.bias,
                       name=n.name)
        for k, s in enumerate(self.synapses):
            g.add_edge(s.pre, s.post, weight=s.weight, delay=s.delay, order=k)
        g.graph["inputs"] = [(p.name, p.neuron) for p in self.inputs]
        g.graph["outputs"] = [(p.name, p.neuron) for p in self.outputs]
        g.graph["metadata"] = copy.deepcopy(self.metadata)
        return g

    @classmethod
    def from_networkx(cls, g: nx.DiGraph | nx.MultiDiGraph) -> Network:
        """Inverse of :meth:`to_networkx` (missing node/edge attributes take defaults)."""
        net = cls()
        for nid, attrs in g.nodes(data=True):
            params = {k: v for k, v in attrs.items() if k in _NEURON_FIELDS}
            net.neurons.append(Neuron(id=nid, **params))
        edges: Iterable[tuple[Any, Any, dict[str, Any]]] = g.edges(data=True)
        # Keep the original synapse order where it was recorded (``order`` attribute).
        edges = sorted(edges, key=lambda e: e[2].get("order", float("inf")))
        for u, v, attrs in edges:
            net.synapses.append(Synapse(pre=u, post=v, weight=attrs.get("weight", 1), delay=attrs.get("delay", 1)))
        net.inputs = [Port(name, nid) for name, nid in g.graph.get("inputs", [])]
        net.outputs = [Port(name, nid) for name, nid in g.graph.get("outputs", [])]
        net.metadata = copy.deepcopy(g.graph.get("metadata", {}))
        return net.validate()


_NEURON_FIELDS = ("threshold", "leak", "leak_shift", "reset", "v_min", "refractory", "bias", "name")


def _check_keys(el: str, d: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    missing = sorted(required - d.keys())
    if missing:
        raise NetworkError(f"{el}: missing field '{missing[0]}'")
    unknown = sorted(d.keys() - required - optional)
    if unknown:
        raise NetworkError(
            f"{el}: unknown field '{unknown[0]}'; allowed: {', '.join(sorted(required | optional))}"
        )


def _list(doc: Mapping[str, Any], key: str, el: str) -> list[Any]:
    v = doc.get(key, [])
    if not isinstance(v, list):
        raise NetworkError(f"{el}: field '{key}' is {type(v).__name__}; expected a JSON array")
    return v


def _obj(el: str, d: Any) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise NetworkError(f"{el}: is {type(d).__name__}; expected a JSON object")
    return d


def _neuron_from(i: int, d: Any) -> Neuron:
    el = f"neuron #{i}"
    d = _obj(el, d)
    _check_keys(el if "id" not in d else f"neuron {show(d['id'])}", d, {"id"}, set(_NEURON_FIELDS))
    return Neuron(id=d["id"], **{k: d[k] for k in _NEURON_FIELDS if k in d})


def _synapse_from(i: int, d: Any) -> Synapse:
    el = f"synapse #{i}"
    d = _obj(el, d)
    _check_keys(el, d, {"pre", "post"}, {"weight", "delay"})
    return Synapse(pre=d["pre"], post=d["post"], weight=d.get("weight", 1), delay=d.get("delay", 1))


def _port_from(kind: str, i: int, d: Any) -> Port:
    el = f"{kind} port #{i}"
    d = _obj(el, d)
    _check_keys(el, d, {"name", "neuron"}, set())
    return Port(name=d["name"], neuron=d["neuron"])


def read_json_file(path: str | Path, error: type[Exception] = NetworkError, what: str = "") -> Any:
    """Parse a JSON file; any failure raises ``error`` with one line that starts with the path.

    Parameters
    ----------
    path
        The file.
    error
        Exception class to raise (the callers' typed error).
    what
        Optional noun for the messages (``"inputs file"``), e.g. "cannot read inputs file".
    """
    p = Path(path)
    noun = f" {what}" if what else ""
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"{p}: cannot read{noun}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{p}:{noun or ' file'} is not a text file (not UTF-8)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise error(f"{p}: JSON nested too deeply; allowed: about {sys.getrecursionlimit()} levels") from None
    except ValueError as e:  # an integer literal longer than Python converts (4300 digits)
        raise error(f"{p}: invalid JSON: {e}") from None


def load_network(path: str | Path) -> Network:
    """Read a spikeforge network JSON file.

    Raises
    ------
    NetworkError
        If the file cannot be read or is not a valid network (the message says why).
    """
    doc = read_json_file(path)
    try:
        return Network.from_dict(doc)
    except NetworkError as e:
        msg = str(e).removeprefix("network file: ")
        raise NetworkError(f"{Path(path)}: {msg}") from None


def save_network(net: Network, path: str | Path) -> None:
    """Validate and write a network as JSON (atomically: a failed write loses nothing)."""
    net.validate()
    write_atomic(path, net.to_json() + "\n")
