"""THE core image layout: how a network lies in the spiking core's memories.

This module is the single definition of the memory contents, imported by the gateware
(:mod:`spikeforge.hdl.core` builds its ``lib.data`` layouts from :func:`layout`) and by the
host (:func:`lower`, :class:`CoreImage`, :func:`run_image`).

Memories (``N`` neurons, ``D`` = ``max_delay``, ``Db`` = ``delay_bits``)
------------------------------------------------------------------------
``params[N]`` (read-only while running) — :func:`param_fields`
    ``threshold`` (unsigned), ``v_min`` (signed P), ``bias`` (signed), ``leak``
    (0 none, 1 full, 2 shift), ``shift`` k (clamped to ``P - 1``), ``reset`` (0 zero,
    1 subtract), ``refractory`` r.
``index[N << Db]`` (read-only while running) — :func:`index_fields`
    entry ``(n << Db) | (d - 1)`` describes the *segment* of neuron ``n``'s synapses of delay
    ``d``: ``valid`` (the segment is non-empty) and ``start`` (its first synapse address).
``synapses[S]`` (read-only while running) — :func:`synapse_fields`
    ``post``, ``weight``, ``last`` (1 on the final synapse of a segment). The table is sorted
    by ``(pre, delay)``; a segment is contiguous and runs from ``start`` to the first ``last``.
``state[N]`` (dynamic) — :func:`state_fields`: ``v``, ``refr`` (refractory steps left),
    ``hist`` (bit ``j`` = the neuron fired ``j + 1`` steps before the next step).
``acc[N]`` (dynamic) — :func:`acc_fields`: ``acc`` (exact sum of the next step's events),
    ``touched``.

The step algorithm (what the hardware and :func:`run_image` do)
---------------------------------------------------------------
Step ``t``:

1. **Delivery.** For each neuron ``n`` queued by the previous neuron pass (``hist[n] ≠ 0``),
   in queue order, for each set bit ``j`` of ``hist[n]`` (ascending): if
   ``index[(n << Db) | j]`` is valid, stream its segment: ``acc[post] += weight``,
   ``touched[post] = 1``. (``INPUT`` commands add to ``acc``/``touched`` the same way, before.)
2. **Neuron pass**, ``n = 0 .. N-1``: leak, floor at ``v_min``; if ``refr > 0`` the neuron is
   refractory: ``refr -= 1``, no integration, not touched; else
   ``v = sat(v + bias + acc)`` and touched = ``touched | (bias ≠ 0)``; fire if touched and
   ``v ≥ threshold`` (reset, ``refr = r``); ``acc, touched = 0``;
   ``hist = ((hist << 1) | fire) mod 2**D``; if ``hist ≠ 0`` queue ``n`` for step ``t + 1``.

Configuration address map (``WRITE`` commands)
----------------------------------------------
``addr = (region << offset_bits) | offset`` with :class:`Region` ``PARAMS`` / ``INDEX`` /
``SYNAPSES`` and the offsets above; ``data`` is the packed word (LSB-first fields).
"""

from __future__ import annotations

import enum
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge.toolchain.ir import Leak, Network, NetworkError, Reset
from spikeforge.toolchain.reference import InputEvent, SimResult

from .config import CoreConfig

__all__ = [
    "IMAGE_FORMAT",
    "fit_report",
    "IMAGE_VERSION",
    "CoreImage",
    "Field",
    "ImageError",
    "ImageModel",
    "Region",
    "acc_fields",
    "index_fields",
    "layout",
    "lower",
    "offset_bits",
    "pack",
    "param_fields",
    "run_image",
    "state_fields",
    "synapse_fields",
    "unpack",
    "word_bits",
]

log = logging.getLogger(__name__)

IMAGE_FORMAT = "spikeforge.core-image"
IMAGE_VERSION = 1

LEAK_CODE = {Leak.NONE: 0, Leak.FULL: 1, Leak.SHIFT: 2}


class ImageError(ValueError):
    """A network does not fit a core, or an image is corrupt / for another core."""


class Region(enum.IntEnum):
    """Configuration address regions (high bits of a ``WRITE`` address)."""

    PARAMS = 0
    INDEX = 1
    SYNAPSES = 2


REGION_BITS = 2


@dataclass(frozen=True)
class Field:
    """One bit field of a memory word (fields are packed LSB first, in list order)."""

    name: str
    width: int
    signed: bool = False


def param_fields(cfg: CoreConfig) -> list[Field]:
    """Fields of a ``params`` word."""
    return [
        Field("threshold", cfg.threshold_bits),
        Field("v_min", cfg.potential_bits, True),
        Field("bias", cfg.bias_bits, True),
        Field("leak", 2),
        Field("shift", cfg.shift_bits),
        Field("reset", 1),
        Field("refractory", cfg.refractory_bits),
    ]


def index_fields(cfg: CoreConfig) -> list[Field]:
    """Fields of an ``index`` entry."""
    return [Field("start", cfg.syn_addr_bits), Field("valid", 1)]


def synapse_fields(cfg: CoreConfig) -> list[Field]:
    """Fields of a ``synapses`` entry."""
    return [Field("post", cfg.neuron_bits), Field("weight", cfg.weight_bits, True), Field("last", 1)]


def state_fields(cfg: CoreConfig) -> list[Field]:
    """Fields of a ``state`` word (dynamic, not part of the image)."""
    return [
        Field("v", cfg.potential_bits, True),
        Field("refr", cfg.refractory_bits),
        Field("hist", cfg.max_delay),
    ]


def acc_fields(cfg: CoreConfig) -> list[Field]:
    """Fields of an ``acc`` word (dynamic, not part of the image)."""
    return [Field("acc", cfg.accumulator_bits, True), Field("touched", 1)]


def word_bits(fields: Sequence[Field]) -> int:
    """Total width of a word."""
    return sum(f.width for f in fields)


def layout(fields: Sequence[Field]) -> Any:
    """The ``amaranth.lib.data.StructLayout`` of a word (imported lazily: hosts need no HDL)."""
    from amaranth.hdl import signed, unsigned
    from amaranth.lib import data

    return data.StructLayout({f.name: (signed if f.signed else unsigned)(f.width) for f in fields})


def pack(fields: Sequence[Field], values: dict[str, int]) -> int:
    """Pack field values into an integer word (values are checked against the widths)."""
    word, pos = 0, 0
    for f in fields:
        v = int(values.get(f.name, 0))
        lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
        if not lo <= v <= hi:
            raise ImageError(f"field '{f.name}' = {v} does not fit {f.width} bits; allowed: {lo}..{hi}")
        word |= (v & ((1 << f.width) - 1)) << pos
        pos += f.width
    return word


def unpack(fields: Sequence[Field], word: int) -> dict[str, int]:
    """Inverse of :func:`pack`."""
    out, pos = {}, 0
    for f in fields:
        v = (word >> pos) & ((1 << f.width) - 1)
        if f.signed and v >> (f.width - 1):
            v -= 1 << f.width
        out[f.name] = v
        pos += f.width
    return out


def offset_bits(cfg: CoreConfig) -> int:
    """Width of the offset part of a configuration address."""
    return max(cfg.neuron_bits, cfg.neuron_bits + cfg.delay_bits, cfg.syn_addr_bits)


def config_address(cfg: CoreConfig, region: Region, offset: int) -> int:
    """The ``WRITE`` address of ``offset`` in ``region``."""
    return (int(region) << offset_bits(cfg)) | offset


# ---------------------------------------------------------------------------- lowering
def lower(network: Network, config: CoreConfig) -> CoreImage:
    """Lay a network out in the memories of a core.

    Neuron ``i`` of the network (network order) goes to core slot ``i``.

    Raises
    ------
    ImageError
        When the network does not fit: too many neurons or synapses, a field out of the core's
        widths, a delay over ``max_delay``, or a fan-in whose ``Σ|w|`` could overflow the
        accumulator. The message says what does not fit and what the core allows.
    """
    cfg = config
    try:
        network.validate()
    except NetworkError as e:
        raise ImageError(str(e)) from None
    if not network.is_integer():
        raise ImageError(
            "network has non-integer parameters; quantize it first (spikeforge.toolchain.compiler)"
        )
    n = len(network.neurons)
    if n > cfg.n_neurons:
        raise ImageError(f"network has {n} neurons; core {cfg.name!r} holds {cfg.n_neurons}")
    if len(network.synapses) > cfg.n_synapses:
        raise ImageError(
            f"network has {len(network.synapses)} synapses; core {cfg.name!r} holds {cfg.n_synapses}"
        )
    lim = cfg.limits()
    pf = param_fields(cfg)

    def check(el: str, name: str, v: int) -> None:
        why = lim.check(name, v)
        if why:
            raise ImageError(f"{el}: {name} = {v} does not fit core {cfg.name!r}; {why}")

    params = []
    for nn in network.neurons:
        el = f"neuron {nn.id}"
        th = int(nn.threshold)
        check(el, "threshold", th)
        vmin = lim.v_min[0] if nn.v_min is None else int(nn.v_min)
        check(el, "v_min", vmin)
        b = int(nn.bias)
        check(el, "bias", b)
        check(el, "refractory", nn.refractory)
        k = min(nn.leak_shift, cfg.potential_bits - 1) if nn.leak is Leak.SHIFT else 0
        params.append(pack(pf, {
            "threshold": th, "v_min": vmin, "bias": b, "leak": LEAK_CODE[nn.leak], "shift": k,
            "reset": int(nn.reset is Reset.SUBTRACT), "refractory": nn.refractory,
        }))

    idx = network.index_of()
    fan_in = [0] * n
    syns = []
    for k, s in enumerate(network.synapses):
        el = f"synapse #{k} ({s.pre}->{s.post})"
        w = int(s.weight)
        check(el, "weight", w)
        check(el, "delay", s.delay)
        fan_in[idx[s.post]] += abs(w)
        syns.append((idx[s.pre], s.delay, k, idx[s.post], w))
    acc_max = lim.fan_in[1]
    for i, f in enumerate(fan_in):
        if f > acc_max:
            raise ImageError(
                f"neuron {network.neurons[i].id}: fan-in sum of |weight| = {f} could overflow the "
                f"{cfg.accumulator_bits}-bit accumulator of core {cfg.name!r}; allowed: 0..{acc_max}"
            )
    syns.sort()
    sf = synapse_fields(cfg)
    xf = index_fields(cfg)
    table: list[int] = []
    index: dict[int, int] = {}
    for pos, (pre, d, _k, post, w) in enumerate(syns):
        key = (pre << cfg.delay_bits) | (d - 1)
        if key not in index:
            index[key] = pack(xf, {"start": pos, "valid": 1})
        last = pos + 1 == len(syns) or syns[pos + 1][:2] != (pre, d)
        table.append(pack(sf, {"post": post, "weight": w, "last": int(last)}))
    index_list = [index.get(a, 0) for a in range(n << cfg.delay_bits)]
    return CoreImage(
        config=cfg,
        neuron_ids=[nn.id for nn in network.neurons],
        inputs=[idx[p.neuron] for p in network.inputs],
        outputs=[idx[p.neuron] for p in network.outputs],
        input_names=[p.name for p in network.inputs],
        output_names=[p.name for p in network.outputs],
        params=params,
        index=index_list,
        synapses=table,
        fan_in=fan_in,
    )


# ---------------------------------------------------------------------------- the image
@dataclass
class CoreImage:
    """A network lowered for one :class:`CoreConfig`: memory contents plus port maps.

    Attributes
    ----------
    config
        The core it is for (its fingerprint is checked when loading).
    neuron_ids
        Network neuron id of each used core slot (slot ``i`` = ``neuron_ids[i]``).
    inputs, outputs
        Core slot of each input / output port (port order).
    params, index, synapses
        Packed memory words: ``params`` for the used slots, ``index`` for the used slots'
        entries (``len(neuron_ids) << delay_bits``), ``synapses`` from address 0.
    fan_in
        ``Σ|w|`` onto each used slot (the driver checks inputs against the accumulator).
    """

    config: CoreConfig
    neuron_ids: list[int]
    inputs: list[int]
    outputs: list[int]
    input_names: list[str]
    output_names: list[str]
    params: list[int]
    index: list[int]
    synapses: list[int]
    fan_in: list[int] = field(default_factory=list)

    # ------------------------------------------------------------------ serialisation
    def _body(self) -> dict[str, Any]:
        return {
            "format": IMAGE_FORMAT,
            "version": IMAGE_VERSION,
            "config": self.config.to_dict(),
            "fingerprint": self.config.fingerprint(),
            "neuron_ids": list(self.neuron_ids),
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "params": list(self.params),
            "index": list(self.index),
            "synapses": list(self.synapses),
            "fan_in": list(self.fan_in),
        }

    @staticmethod
    def _crc(body: dict[str, Any]) -> int:
        return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())

    def checksum(self) -> int:
        """crc32 of the canonical JSON body."""
        return self._crc(self._body())

    def to_dict(self) -> dict[str, Any]:
        """JSON document (with ``crc32``)."""
        body = self._body()
        return {**body, "crc32": self._crc(body)}

    def to_json(self) -> str:
        """Serialise (JSON, no pickle)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, doc: Any, config: CoreConfig | None = None) -> CoreImage:
        """Parse and check an image document.

        Raises
        ------
        ImageError
            Wrong format or version, bad checksum (corrupted), or (when ``config`` is given) an
            image built for another core.
        """
        if not isinstance(doc, dict) or doc.get("format") != IMAGE_FORMAT:
            raise ImageError(f"not a core image: field 'format' must be {IMAGE_FORMAT!r}")
        if doc.get("version") != IMAGE_VERSION:
            raise ImageError(
                f"core image version {doc.get('version')!r} is not supported; this spikeforge reads {IMAGE_VERSION}"
            )
        body = {k: v for k, v in doc.items() if k != "crc32"}
        crc = cls._crc(body)
        if doc.get("crc32") != crc:
            raise ImageError(
                f"core image is corrupted: crc32 is {doc.get('crc32')!r} but the contents hash to {crc}"
            )
        try:
            cfg = CoreConfig.from_dict(doc["config"])
            img = cls(
                config=cfg,
                neuron_ids=[int(x) for x in doc["neuron_ids"]],
                inputs=[int(x) for x in doc["inputs"]],
                outputs=[int(x) for x in doc["outputs"]],
                input_names=[str(x) for x in doc["input_names"]],
                output_names=[str(x) for x in doc["output_names"]],
                params=[int(x) for x in doc["params"]],
                index=[int(x) for x in doc["index"]],
                synapses=[int(x) for x in doc["synapses"]],
                fan_in=[int(x) for x in doc.get("fan_in", [])],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ImageError(f"core image is malformed: {e}") from None
        if cfg.fingerprint() != doc.get("fingerprint"):
            raise ImageError("core image is corrupted: its config does not match its fingerprint")
        if config is not None:
            img.check_config(config)
        return img.validate()

    @classmethod
    def from_json(cls, text: str, config: CoreConfig | None = None) -> CoreImage:
        """Parse a JSON string (see :meth:`from_dict`)."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ImageError(f"core image: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        return cls.from_dict(doc, config)

    def validate(self) -> CoreImage:
        """Check every count, slot, word and field against :meth:`CoreConfig.limits` of the image's core.

        A CRC only says that nobody changed the file by accident; this says that what it holds
        fits the core it names (a hand-edited image with a recomputed CRC is refused here). Every
        reader of an image calls it: ``image --check``, the driver before loading, ``run``, the
        emulated board.

        Returns
        -------
        CoreImage
            ``self``, so calls chain.

        Raises
        ------
        ImageError
            Naming the list, the entry, the field, its value and the limit.
        """
        cfg = self.config
        lim = cfg.limits()
        n = len(self.neuron_ids)

        def bad(what: str, value: object, allowed: str) -> ImageError:
            return ImageError(f"core image: {what} = {value} is out of range; allowed: {allowed} (core {cfg.name!r})")

        if n > lim.neurons:
            raise bad("neuron count (len of neuron_ids)", n, f"at most {lim.neurons} (n_neurons)")
        for name, want in (("params", n), ("index", n << cfg.delay_bits)):
            if len(getattr(self, name)) != want:
                raise bad(f"len of {name}", len(getattr(self, name)), f"{want} for {n} neurons")
        if len(self.synapses) > lim.synapses:
            raise bad("len of synapses", len(self.synapses), f"at most {lim.synapses} (n_synapses)")
        if self.fan_in and len(self.fan_in) != n:
            raise bad("len of fan_in", len(self.fan_in), f"0 or {n}")
        if len(set(self.neuron_ids)) != n or any(not 0 <= x < 1 << 32 for x in self.neuron_ids):
            raise ImageError("core image: neuron_ids must be distinct integers in 0..2**32-1")
        for kind, slots, names in (("inputs", self.inputs, self.input_names),
                                   ("outputs", self.outputs, self.output_names)):
            if len(names) != len(slots):
                raise bad(f"len of {kind[:-1]}_names", len(names), f"{len(slots)} (one per {kind[:-1]})")
            for k, slot in enumerate(slots):
                if not 0 <= slot < n:
                    raise bad(f"{kind}[{k}] (a core slot)", slot, f"0..{n - 1}")
        for name, fields, words in (("params", param_fields(cfg), self.params),
                                    ("index", index_fields(cfg), self.index),
                                    ("synapses", synapse_fields(cfg), self.synapses)):
            top = 1 << word_bits(fields)
            for a, w in enumerate(words):
                if not 0 <= w < top:
                    raise bad(f"{name}[{a}]", w, f"0..{top - 1} ({word_bits(fields)}-bit word)")
        for a, w in enumerate(self.params):
            f = unpack(param_fields(cfg), w)
            for name in ("threshold", "v_min", "refractory"):
                why = lim.check(name, f[name])
                if why:
                    raise ImageError(f"core image: params[{a}] field '{name}' = {f[name]} is out of range; {why}")
            if f["leak"] not in LEAK_CODE.values():
                raise bad(f"params[{a}] field 'leak'", f["leak"], ", ".join(map(str, sorted(LEAK_CODE.values()))))
        for a, w in enumerate(self.index):
            f = unpack(index_fields(cfg), w)
            if f["valid"] and not f["start"] < len(self.synapses):
                raise bad(f"index[{a}] field 'start'", f["start"], f"0..{len(self.synapses) - 1} (the synapse table)")
        for a, w in enumerate(self.synapses):
            f = unpack(synapse_fields(cfg), w)
            if not f["post"] < n:
                raise bad(f"synapses[{a}] field 'post'", f["post"], f"0..{n - 1} (the used slots)")
        for k, f in enumerate(self.fan_in):
            why = lim.check("fan_in", f)
            if why:
                raise ImageError(f"core image: fan_in[{k}] = {f} is out of range; {why}")
        return self

    def check_config(self, config: CoreConfig) -> None:
        """Refuse to load into a core built for another config."""
        if config.fingerprint() != self.config.fingerprint():
            raise ImageError(
                f"core image is for core {self.config.name!r} (fingerprint {self.config.fingerprint()}); "
                f"this core is {config.name!r} (fingerprint {config.fingerprint()})"
            )

    # ------------------------------------------------------------------ loading
    def writes(self, full: bool = False) -> list[tuple[int, int]]:
        """The ``(address, data)`` ``WRITE`` commands that load this image.

        Every parameter slot is written (unused slots get all-zero parameters); the index is
        written for the used slots (``full=True``: every slot), the synapse table as used.
        Follow the writes with ``CLEAR`` to start from a clean state.
        """
        cfg = self.config
        out = []
        for n in range(cfg.n_neurons):
            out.append((config_address(cfg, Region.PARAMS, n), self.params[n] if n < len(self.params) else 0))
        n_index = cfg.index_depth if full else len(self.index)
        for a in range(n_index):
            out.append((config_address(cfg, Region.INDEX, a), self.index[a] if a < len(self.index) else 0))
        for a, w in enumerate(self.synapses):
            out.append((config_address(cfg, Region.SYNAPSES, a), w))
        return out

    def memories(self) -> dict[str, list[int]]:
        """Full-depth contents of the read-only memories (for block-RAM init / models)."""
        cfg = self.config
        return {
            "params": self.params + [0] * (cfg.n_neurons - len(self.params)),
            "index": self.index + [0] * (cfg.index_depth - len(self.index)),
            "synapses": self.synapses + [0] * (cfg.n_synapses - len(self.synapses)),
        }


# ---------------------------------------------------------------------------- image-level model
class ImageModel:
    """A cycle-free model of the core that runs FROM THE DECODED MEMORY CONTENTS.

    It follows the step algorithm of the module docstring (the hardware's order) with the
    hardware's widths, so it checks the image layout and the algorithm against the reference.
    """

    def __init__(self, image: CoreImage, record_potentials: bool = False) -> None:
        cfg = self.cfg = image.config
        self.image = image.validate()
        mem = image.memories()
        self.params = [unpack(param_fields(cfg), w) for w in mem["params"]]
        self.index = [unpack(index_fields(cfg), w) for w in mem["index"]]
        self.syn = [unpack(synapse_fields(cfg), w) for w in mem["synapses"]]
        self.record_potentials = record_potentials
        self.clear()

    def clear(self) -> None:
        """Zero the dynamic state (the ``CLEAR`` command)."""
        n = self.cfg.n_neurons
        self.t = 0
        self.v = [0] * n
        self.refr = [0] * n
        self.hist = [0] * n
        self.acc = [0] * n
        self.touched = [False] * n
        self.queue: list[int] = []
        self.spikes: list[tuple[int, int]] = []
        self.pots: list[list[int]] = []
        self.delivered = 0

    def _add(self, n: int, value: int) -> None:
        a = self.cfg.accumulator_bits
        s = self.acc[n] + value
        s &= (1 << a) - 1
        self.acc[n] = s - (1 << a) if s >> (a - 1) else s
        self.touched[n] = True

    def input(self, slot: int, value: int) -> None:
        """The ``INPUT`` command: add ``value`` to slot's events of the next step."""
        self._add(slot, value)

    def segment(self, n: int, j: int) -> list[dict[str, int]]:
        """Synapses of neuron ``n`` with delay ``j + 1`` (as the streamer reads them)."""
        e = self.index[(n << self.cfg.delay_bits) | j]
        out = []
        if e["valid"]:
            a = e["start"]
            while True:
                s = self.syn[a]
                out.append(s)
                if s["last"]:
                    break
                a += 1
        return out

    def step(self) -> None:
        """Run one step."""
        cfg = self.cfg
        lo, hi = cfg.potential_range
        for n in self.queue:
            h = self.hist[n]
            for j in range(cfg.max_delay):
                if h >> j & 1:
                    for s in self.segment(n, j):
                        self._add(s["post"], s["weight"])
                        self.delivered += 1
        self.queue = []
        mask = (1 << cfg.max_delay) - 1
        for n in range(cfg.n_neurons):
            p = self.params[n]
            v = self.v[n]
            if p["leak"] == 1:
                v = 0
            elif p["leak"] == 2:
                v = v - (v >> p["shift"])
            v = max(v, p["v_min"])
            fire = False
            if self.refr[n] > 0:
                self.refr[n] -= 1
            else:
                v = min(hi, max(lo, v + p["bias"] + self.acc[n]))
                if (self.touched[n] or p["bias"] != 0) and v >= p["threshold"]:
                    fire = True
                    v = v - p["threshold"] if p["reset"] else 0
                    self.refr[n] = p["refractory"]
            self.v[n] = v
            self.acc[n] = 0
            self.touched[n] = False
            self.hist[n] = ((self.hist[n] << 1) | fire) & mask
            if self.hist[n]:
                self.queue.append(n)
            if fire:
                self.spikes.append((n, self.t))
        if self.record_potentials:
            self.pots.append(self.v[: len(self.image.neuron_ids)])
        self.t += 1

    def result(self) -> SimResult:
        """The run so far as a :class:`SimResult` (network order)."""
        img = self.image
        n = len(img.neuron_ids)
        sp = sorted((t, i) for i, t in self.spikes if i < n)
        fan = [0] * n
        for i in range(n):
            fan[i] = sum(len(self.segment(i, j)) for j in range(self.cfg.max_delay))
        return SimResult(
            neuron_ids=np.array(img.neuron_ids, dtype=np.int64),
            steps=self.t,
            spike_times=np.array([t for t, _ in sp], dtype=np.int64),
            spike_index=np.array([i for _, i in sp], dtype=np.int64),
            potentials=np.array(self.pots, dtype=np.int64).reshape(self.t, n) if self.record_potentials else None,
            events=sum(fan[i] for _, i in sp),
        )


def run_image(
    image: CoreImage,
    inputs: Sequence[InputEvent] = (),
    steps: int = 100,
    *,
    record_potentials: bool = False,
) -> SimResult:
    """Simulate a core image from its memory contents; equals ``reference.simulate``.

    Parameters
    ----------
    image
        The image (its config gives the widths).
    inputs
        ``(input_index, time, value)`` triples (``input_index`` into ``image.inputs``).
    steps
        Steps to run from t = 0.
    record_potentials
        Also return ``v`` after every step.
    """
    m = ImageModel(image, record_potentials)
    by_t: dict[int, list[tuple[int, int]]] = {}
    for i, t, v in inputs:
        if not 0 <= i < len(image.inputs):
            raise ImageError(f"input index {i} is out of range; the image has {len(image.inputs)} inputs")
        by_t.setdefault(int(t), []).append((image.inputs[i], int(v)))
    for t in range(steps):
        for slot, v in by_t.get(t, ()):
            m.input(slot, v)
        m.step()
    return m.result()


def fit_report(image: CoreImage) -> dict[str, Any]:
    """How much of its core an image uses (what ``spikeforge image`` prints)."""
    cfg = image.config
    acc_max = cfg.limits().fan_in[1]
    return {
        "config": cfg.name,
        "fingerprint": cfg.fingerprint(),
        "neurons": len(image.neuron_ids), "neuron_slots": cfg.n_neurons,
        "synapses": len(image.synapses), "synapse_capacity": cfg.n_synapses,
        "inputs": len(image.inputs), "outputs": len(image.outputs),
        "max_fan_in_abs_weight": max(image.fan_in, default=0), "accumulator_max": acc_max,
        "config_writes": len(image.writes()),
        "crc32": f"{image.checksum():08x}",
    }
