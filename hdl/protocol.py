"""The core's command and spike-stream protocol: opcodes and field widths, defined once.

The gateware (:mod:`spikeforge.hdl.core`) and every host (driver, cocotb testbench, UART
firmware, serial host) import this module.

Command beat (``lib.data.StructLayout``, LSB first): ``op`` (3 bits, :class:`Opcode`),
``addr`` (:func:`addr_bits`), ``data`` (:func:`data_bits`).

========  =====================================  ==========================================
opcode    addr                                   data
========  =====================================  ==========================================
NOP (0)   —                                      —
WRITE (1) ``(region << offset_bits) | offset``   packed memory word (see :mod:`.image`)
INPUT (2) core neuron slot                       value, two's complement in ``input_bits``
RUN (3)   —                                      number of steps (0 = nothing)
CLEAR (4) —                                      —  (zero v, refractory, history, pending
                                                 events and the timestep; keep the image)
========  =====================================  ==========================================

Opcodes 5..7, out-of-range regions / offsets / neurons are ignored and counted in ``errors``.

Spike beat: ``neuron`` (core slot, ``neuron_bits``) and ``time`` (timestep, ``time_bits``,
wrapping).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from .config import CoreConfig
from .image import (
    REGION_BITS,
    index_fields,
    offset_bits,
    param_fields,
    synapse_fields,
    word_bits,
)

__all__ = [
    "Command",
    "Opcode",
    "addr_bits",
    "command_layout",
    "data_bits",
    "decode_spike",
    "encode_command",
    "pack_command",
    "spike_layout",
]


class Opcode(enum.Enum, shape=3):  # shape == OP_BITS
    """Command opcodes."""

    NOP = 0
    WRITE = 1
    INPUT = 2
    RUN = 3
    CLEAR = 4


def addr_bits(cfg: CoreConfig) -> int:
    """Width of the ``addr`` field."""
    return REGION_BITS + offset_bits(cfg)


def data_bits(cfg: CoreConfig) -> int:
    """Width of the ``data`` field (widest memory word, input value, or 16)."""
    return max(
        word_bits(param_fields(cfg)),
        word_bits(index_fields(cfg)),
        word_bits(synapse_fields(cfg)),
        cfg.input_bits,
        16,
    )


def command_layout(cfg: CoreConfig) -> data.StructLayout:
    """Layout of one command beat."""
    return data.StructLayout({"op": Opcode, "addr": unsigned(addr_bits(cfg)), "data": unsigned(data_bits(cfg))})


def spike_layout(cfg: CoreConfig) -> data.StructLayout:
    """Layout of one output spike beat."""
    return data.StructLayout({"neuron": unsigned(cfg.neuron_bits), "time": unsigned(cfg.time_bits)})


@dataclass(frozen=True)
class Command:
    """One command as the host sees it (``data`` already in its unsigned wire form)."""

    op: Opcode
    addr: int = 0
    data: int = 0

    @classmethod
    def write(cls, addr: int, word: int) -> Command:
        """``WRITE(addr, word)``."""
        return cls(Opcode.WRITE, addr, word)

    @classmethod
    def input(cls, cfg: CoreConfig, neuron: int, value: int) -> Command:
        """``INPUT(neuron, value)`` (``ValueError`` if ``value`` does not fit ``input_bits``)."""
        lo, hi = cfg.limits().input
        if not lo <= value <= hi:
            raise ValueError(f"input value {value} does not fit input_bits = {cfg.input_bits}; allowed: {lo}..{hi}")
        return cls(Opcode.INPUT, neuron, value & ((1 << cfg.input_bits) - 1))

    @classmethod
    def run(cls, steps: int) -> Command:
        """``RUN(steps)``."""
        return cls(Opcode.RUN, 0, steps)

    @classmethod
    def clear(cls) -> Command:
        """``CLEAR``."""
        return cls(Opcode.CLEAR)


def max_run_steps(cfg: CoreConfig) -> int:
    """Largest step count of one ``RUN``."""
    return (1 << data_bits(cfg)) - 1


OP_BITS = 3
"""Width of the ``op`` field (``Opcode`` values 0..7; 5..7 are undefined and ignored)."""


def pack_command(cfg: CoreConfig, op: int, addr: int, data: int) -> int:
    """A raw command beat from field values, any ``op`` in ``0 .. 2**OP_BITS - 1`` (testbenches
    use the undefined ones to check the core ignores them)."""
    ab, db = addr_bits(cfg), data_bits(cfg)
    if not 0 <= op < (1 << OP_BITS):
        raise ValueError(f"command op = {op} does not fit {OP_BITS} bits")
    if not 0 <= addr < (1 << ab):
        raise ValueError(f"command addr = {addr} does not fit {ab} bits")
    if not 0 <= data < (1 << db):
        raise ValueError(f"command data = {data} does not fit {db} bits")
    return op | (addr << OP_BITS) | (data << (OP_BITS + ab))


def encode_command(cfg: CoreConfig, cmd: Command) -> int:
    """The command beat as an integer (``op`` in the low bits)."""
    return pack_command(cfg, int(cmd.op.value), cmd.addr, cmd.data)


def decode_spike(cfg: CoreConfig, beat: int) -> tuple[int, int]:
    """``(neuron, time)`` of a spike beat given as an integer."""
    return beat & ((1 << cfg.neuron_bits) - 1), beat >> cfg.neuron_bits
