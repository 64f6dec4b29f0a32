"""Core configurations: the generic parameters one spiking-core bitstream is built for.

A :class:`CoreConfig` fixes the capacity (neurons, synapses, delays) and every field width of
the core. One bitstream is synthesised per config; a network is data loaded into it (see
:mod:`spikeforge.hdl.image`). The named presets are in :data:`PRESETS`.

Widths
------
``potential_bits`` P
    signed potential ``v`` (saturating, ``[-2**(P-1), 2**(P-1)-1]``); also the width of
    ``v_min``.
``threshold_bits``
    unsigned threshold; ``threshold_bits = P - 1`` is lossless (θ ≤ ``hi``).
``weight_bits``
    signed synaptic weight.
``bias_bits``
    signed per-neuron bias.
``accumulator_bits`` A
    signed exact accumulator of one step's events (synaptic weights plus external inputs) per
    neuron; the image refuses networks whose fan-in ``Σ|w|`` could overflow it.
``input_bits``
    signed value of one ``INPUT`` command.
``refractory_bits``
    refractory period ``r`` (``0 .. 2**refractory_bits - 1``).
``time_bits``
    the timestep counter carried by every output spike (wraps).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["PRESETS", "ConfigError", "CoreConfig", "Limits", "preset"]

#: Memories of the core; ``CoreConfig.spram`` names the ones put in iCE40 SPRAM.
MEMORIES = ("params", "state", "acc", "index", "synapses", "queue")


class ConfigError(ValueError):
    """A :class:`CoreConfig` field is out of range (the message names field, value, range)."""


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


def _signed(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Limits:
    """What fits one core: the inclusive ``(lo, hi)`` of every value a network element may take.

    The one home of these ranges: the image layout, the design-rule check, quantisation, the
    host driver and the trainers all read them from :meth:`CoreConfig.limits`.

    Attributes
    ----------
    neurons, synapses
        Capacity of one core.
    threshold
        ``0 .. min(2**threshold_bits - 1, 2**(P-1) - 1)``.
    bias
        ``bias_bits`` signed.
    v_min
        ``-2**(P-1) .. 0`` (a floor at or below zero).
    potential
        ``potential_bits`` signed: the saturating range of ``v``.
    refractory
        ``0 .. 2**refractory_bits - 1``.
    weight
        ``weight_bits`` signed.
    delay
        ``1 .. max_delay``.
    fan_in
        ``0 .. 2**(accumulator_bits-1) - 1``: the largest ``Σ|w|`` (plus inputs) one neuron may
        receive in one step without overflowing the accumulator.
    input
        ``input_bits`` signed: one ``INPUT`` value.
    reasons
        For each range above, the config field(s) that set it (``"weight_bits = 8"``), for
        error messages.
    """

    neurons: int
    synapses: int
    threshold: tuple[int, int]
    bias: tuple[int, int]
    v_min: tuple[int, int]
    potential: tuple[int, int]
    refractory: tuple[int, int]
    weight: tuple[int, int]
    delay: tuple[int, int]
    fan_in: tuple[int, int]
    input: tuple[int, int]
    reasons: dict[str, str]

    def __getitem__(self, name: str) -> tuple[int, int]:
        """The range of field ``name`` (``KeyError`` naming the fields if unknown)."""
        if name not in self.reasons:
            raise KeyError(f"no limit {name!r}; known: {', '.join(self.reasons)}")
        return getattr(self, name)

    def check(self, name: str, value: int) -> str | None:
        """``None`` if ``value`` is within the range of ``name``, else why not (``"allowed: a..b
        (weight_bits = 8)"``)."""
        lo, hi = self[name]
        return None if lo <= value <= hi else f"allowed: {lo}..{hi} ({self.reasons[name]})"


@dataclass(frozen=True)
class CoreConfig:
    """Generic parameters of one spiking core.

    Parameters
    ----------
    name
        Preset name (informational; part of the fingerprint).
    n_neurons
        Neuron slots ``N`` (2..65536).
    n_synapses
        Synapse table capacity (1..2**20).
    max_delay
        Longest synaptic delay ``D`` (1..16); delays run ``1..D``.
    weight_bits, threshold_bits, potential_bits, accumulator_bits, bias_bits, input_bits,
    refractory_bits, time_bits
        Field widths, see the module docstring.
    spram
        Names of memories mapped onto iCE40 SB_SPRAM256KA when built for an iCE40 platform
        (subset of ``("index", "synapses")``: the read-only-while-running tables).
    """

    name: str = "custom"
    n_neurons: int = 32
    n_synapses: int = 256
    max_delay: int = 8
    weight_bits: int = 8
    threshold_bits: int = 15
    potential_bits: int = 16
    accumulator_bits: int = 18
    bias_bits: int = 16
    input_bits: int = 16
    refractory_bits: int = 4
    time_bits: int = 32
    spram: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.spram, list):
            object.__setattr__(self, "spram", tuple(self.spram))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> CoreConfig:
        """Raise :class:`ConfigError` naming the first bad field."""

        def rng(field: str, lo: int, hi: int) -> None:
            v = getattr(self, field)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(
                    f"CoreConfig {self.name!r}: field '{field}' = {v!r} is out of range; allowed: {lo}..{hi}"
                )

        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"CoreConfig: field 'name' = {self.name!r}; allowed: a non-empty string")
        rng("n_neurons", 2, 1 << 16)
        rng("n_synapses", 1, 1 << 20)
        rng("max_delay", 1, 16)
        rng("weight_bits", 2, 16)
        rng("potential_bits", 4, 32)
        rng("threshold_bits", 1, self.potential_bits - 1)
        rng("accumulator_bits", self.potential_bits, 40)
        rng("bias_bits", 2, self.potential_bits)
        rng("input_bits", 2, self.accumulator_bits)
        rng("refractory_bits", 1, 16)
        rng("time_bits", 8, 48)
        for m in self.spram:
            if m not in ("index", "synapses"):
                raise ConfigError(
                    f"CoreConfig {self.name!r}: field 'spram' contains {m!r}; allowed: 'index', 'synapses'"
                )
        return self

    # ------------------------------------------------------------------ derived widths
    @property
    def neuron_bits(self) -> int:
        """Width of a neuron index."""
        return max(1, _clog2(self.n_neurons))

    @property
    def delay_bits(self) -> int:
        """Width of ``d - 1`` (the low part of an index-table address)."""
        return max(1, _clog2(self.max_delay))

    @property
    def syn_addr_bits(self) -> int:
        """Width of a synapse-table address."""
        return max(1, _clog2(self.n_synapses))

    @property
    def index_depth(self) -> int:
        """Entries of the segment index: one per (neuron, delay slot)."""
        return self.n_neurons << self.delay_bits

    @property
    def shift_bits(self) -> int:
        """Width of the leak shift ``k`` (clamped to ``P - 1``, which is lossless)."""
        return max(1, (self.potential_bits - 1).bit_length())

    @property
    def potential_range(self) -> tuple[int, int]:
        """``(lo, hi)`` of the potential."""
        return _signed(self.potential_bits)

    def limits(self) -> Limits:
        """The :class:`Limits` of this core: what a network element may hold to fit it."""
        p = self.potential_bits
        lo, hi = self.potential_range
        return Limits(
            neurons=self.n_neurons,
            synapses=self.n_synapses,
            threshold=(0, min(hi, (1 << self.threshold_bits) - 1)),
            bias=_signed(self.bias_bits),
            v_min=(lo, 0),
            potential=(lo, hi),
            refractory=(0, (1 << self.refractory_bits) - 1),
            weight=_signed(self.weight_bits),
            delay=(1, self.max_delay),
            fan_in=(0, _signed(self.accumulator_bits)[1]),
            input=_signed(self.input_bits),
            reasons={
                "threshold": f"threshold_bits = {self.threshold_bits}",
                "bias": f"bias_bits = {self.bias_bits}",
                "v_min": f"potential_bits = {p}",
                "potential": f"potential_bits = {p}",
                "refractory": f"refractory_bits = {self.refractory_bits}",
                "weight": f"weight_bits = {self.weight_bits}",
                "delay": f"max_delay = {self.max_delay}",
                "fan_in": f"{self.accumulator_bits}-bit accumulator",
                "input": f"input_bits = {self.input_bits}",
            },
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        d = asdict(self)
        d["spram"] = list(self.spram)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoreConfig:
        """Inverse of :meth:`to_dict` (unknown fields are refused)."""
        if not isinstance(d, dict):
            raise ConfigError(f"CoreConfig: got {type(d).__name__}; expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"CoreConfig: unknown field '{unknown[0]}'; allowed: {', '.join(sorted(known))}")
        return cls(**d)

    def fingerprint(self) -> str:
        """Stable hash (16 hex digits) of every field: images carry it to refuse mismatches."""
        doc = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


PRESETS: dict[str, CoreConfig] = {
    c.name: c
    for c in (
        # Fast to simulate (Amaranth sim, Verilator): small memories, all features.
        CoreConfig(name="tiny", n_neurons=32, n_synapses=256, max_delay=8),
        CoreConfig(name="small", n_neurons=128, n_synapses=2048, max_delay=16, accumulator_bits=19),
        # iCE40UP5K (iCEBreaker): synapse table in 3 SPRAMs (2 slots of 24 bits per 48-bit
        # word), segment index in 1 SPRAM (16K x 16), neuron memories in EBR.
        CoreConfig(
            name="up5k",
            n_neurons=1024,
            n_synapses=32768,
            max_delay=16,
            accumulator_bits=19,
            bias_bits=10,
            spram=("index", "synapses"),
        ),
        # ECP5-85F (ULX3S): everything in block RAM.
        CoreConfig(
            name="ecp5-85f",
            n_neurons=4096,
            n_synapses=65536,
            max_delay=16,
            accumulator_bits=20,
            refractory_bits=8,
        ),
    )
}


def preset(name: str) -> CoreConfig:
    """The named preset (``ConfigError`` listing the names if unknown)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"no core preset {name!r}; allowed: {', '.join(PRESETS)}") from None
