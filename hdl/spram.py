"""Memory construction: behavioural ``lib.memory.Memory`` everywhere, iCE40 SPRAM on request.

:func:`make_memory` returns an object with ``read_port()`` / ``write_port()`` like
:class:`amaranth.lib.memory.Memory`. On an iCE40 platform, memories named in
``CoreConfig.spram`` become :class:`SPRAMMemory` (hard SB_SPRAM256KA blocks); everywhere else
(amaranth.sim, Verilator, ECP5) the same logic runs on a behavioural memory.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module
from amaranth.lib import memory

from .config import CoreConfig
from .spram_ice40 import SPRAMMemory

__all__ = ["make_memory"]


def _is_ice40(platform: Any) -> bool:
    if platform is None:
        return False
    try:
        from amaranth.vendor import SiliconBluePlatform
    except ImportError:  # pragma: no cover
        return False
    return isinstance(platform, SiliconBluePlatform)


def make_memory(
    m: Module, name: str, cfg: CoreConfig, shape: Any, depth: int, platform: Any, emulate_spram: bool = False,
    init: list[Any] | None = None,
) -> Any:
    """Create memory ``name`` as a submodule of ``m`` and return it.

    ``emulate_spram``: build the SPRAM packing logic on behavioural 16K x 16 blocks (for
    simulation of the iCE40 memory mapping). ``init``: initial contents (one constant
    initialiser of ``shape`` per word, e.g. a dict of field values); SPRAM has none, so a
    memory named in ``cfg.spram`` refuses it.
    """
    if init and name in cfg.spram:
        raise ValueError(f"memory {name!r} of core {cfg.name!r} is in SPRAM, which the iCE40 bitstream cannot "
                         "initialise; use a core configuration whose memories are all block RAM")
    if name in cfg.spram and (emulate_spram or _is_ice40(platform)):
        mem = SPRAMMemory(shape=shape, depth=depth, emulate=emulate_spram)
    else:
        mem = memory.Memory(shape=shape, depth=depth, init=init or [])
    m.submodules[name] = mem
    return mem
