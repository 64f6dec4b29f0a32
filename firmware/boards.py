"""The board table: every fact about a supported board, written once.

A :class:`Board` holds what the rest of the toolchain needs to know about one FPGA board: its
Amaranth platform, FPGA family, the core preset it gets by default, the core clock of the board
design, the bitstream file suffix, the presets a *baked* build (a network in block-RAM init)
may use, the programmers that can flash it, and the other names it answers to. :data:`BOARDS`
is the table; :func:`board` looks a name (or alias) up.

A *target* is what the user names with ``--target``: a board (``icebreaker``: the board with
its default core), a board and a core (``icebreaker:tiny``, ``ulx3s:my_core.json``), a core
preset (``small``) or a CoreConfig JSON file. :func:`resolve_target` turns any of them into a
:class:`Target` (the :class:`~spikeforge.hdl.config.CoreConfig`, and the :class:`Board` or
``None``), with errors that name the value and list the boards and presets.

Examples
--------
>>> board("ulx3s").name, board("ulx3s").default_preset
('ulx3s-85f', 'ecp5-85f')
>>> t = resolve_target("icebreaker:tiny")
>>> t.board.name, t.config.name
('icebreaker', 'tiny')
>>> resolve_target("small").board is None
True
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge.hdl.config import PRESETS, ConfigError, CoreConfig

__all__ = [
    "BOARDS",
    "Board",
    "FlashTool",
    "Target",
    "board",
    "board_names",
    "board_of_family",
    "flash_command",
    "load_config_file",
    "resolve_target",
]


@dataclass(frozen=True)
class FlashTool:
    """A programmer that can write a board's bitstream.

    Attributes
    ----------
    name
        Executable name (looked up on ``PATH``).
    flash_args
        Arguments before the bitstream that write the SPI flash (survives power-off).
    sram_args
        Arguments before the bitstream that load the FPGA's configuration RAM only.
    """

    name: str
    flash_args: tuple[str, ...]
    sram_args: tuple[str, ...]


@dataclass(frozen=True)
class Board:
    """One supported FPGA board.

    Attributes
    ----------
    name
        Canonical name (``icebreaker``, ``ulx3s-85f``).
    family
        FPGA family: ``"ice40"`` or ``"ecp5"``.
    platform_ref
        ``"module:Class"`` of its Amaranth platform (imported by :attr:`platform` on use).
    default_preset
        Core preset the board gets when no core is named.
    clock_mhz
        Default ``sync`` clock of the board design (from the PLL).
    bitstream_suffix
        File suffix of its bitstream (``.bin``, ``.bit``).
    baked_presets
        All-block-RAM presets a baked build (``build --network``) may pick, smallest first.
    flash_tools
        Programmers that can flash it, preferred first.
    aliases
        Other names it answers to.
    """

    name: str
    family: str
    platform_ref: str
    default_preset: str
    clock_mhz: float
    bitstream_suffix: str
    baked_presets: tuple[str, ...]
    flash_tools: tuple[FlashTool, ...]
    aliases: tuple[str, ...] = ()

    @property
    def platform(self) -> type:
        """The Amaranth platform class (imported here, not at module import: amaranth and
        amaranth-boards are slow to import and most users of the table never build)."""
        module, _, cls = self.platform_ref.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def config(self) -> CoreConfig:
        """The default core: the preset :attr:`default_preset`."""
        return PRESETS[self.default_preset]


#: The supported boards by canonical name.
BOARDS: Mapping[str, Board] = {
    b.name: b for b in (
        Board("icebreaker", "ice40", "amaranth_boards.icebreaker:ICEBreakerPlatform", "up5k", 27.0, ".bin",
              ("tiny", "small"),
              (FlashTool("openFPGALoader", ("-b", "icebreaker", "-f"), ("-b", "icebreaker")),
               FlashTool("iceprog", (), ("-S",)))),
        Board("ulx3s-85f", "ecp5", "spikeforge.firmware.platforms:ULX3S85FPlatform", "ecp5-85f", 45.0, ".bit",
              ("tiny", "small", "ecp5-85f"),
              (FlashTool("openFPGALoader", ("-b", "ulx3s", "-f"), ("-b", "ulx3s")),),
              aliases=("ulx3s",)),
    )
}


def board_names(*, aliases: bool = False) -> list[str]:
    """Canonical board names (and with ``aliases``, every alias after them)."""
    names = list(BOARDS)
    return names + [a for b in BOARDS.values() for a in b.aliases] if aliases else names


def _allowed() -> str:
    alias = ", ".join(f"{a} = {b.name}" for b in BOARDS.values() for a in b.aliases)
    return f"boards: {', '.join(BOARDS)}" + (f" ({alias})" if alias else "") + f"; presets: {', '.join(PRESETS)}"


def board(name: str) -> Board:
    """The :class:`Board` called ``name`` (a canonical name or an alias).

    Raises
    ------
    ValueError
        Naming ``name`` and listing the boards.
    """
    for b in BOARDS.values():
        if name == b.name or name in b.aliases:
            return b
    raise ValueError(f"unknown board {name!r}; allowed: {', '.join(board_names(aliases=True))}")


def board_of_family(family: str) -> Board:
    """The first board of FPGA ``family`` in the table (its defaults stand for the family)."""
    for b in BOARDS.values():
        if b.family == family:
            return b
    raise ValueError(f"no board of FPGA family {family!r}; families: "
                     f"{', '.join(sorted({b.family for b in BOARDS.values()}))}")


# ----------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """A resolved ``--target``: the core and, when the spec named one, the board."""

    config: CoreConfig
    board: Board | None
    spec: str


def load_config_file(path: str | Path) -> CoreConfig:
    """A :class:`CoreConfig` from a JSON file.

    Raises
    ------
    ValueError
        Naming the file: unreadable, invalid JSON, or an invalid configuration.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{p}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: invalid JSON at line {e.lineno}: {e.msg}") from None
    try:
        return CoreConfig.from_dict(doc)
    except ConfigError as e:
        raise ValueError(f"{p}: {e}") from None


def _core(spec: str) -> CoreConfig | None:
    """A preset or config file by name; None when ``spec`` is neither."""
    if spec in PRESETS:
        return PRESETS[spec]
    p = Path(spec)
    if p.suffix == ".json" or p.exists():
        return load_config_file(p)
    return None


def resolve_target(spec: str, option: str = "--target") -> Target:
    """Resolve a target spec: ``BOARD``, ``BOARD:CORE``, a preset or a CoreConfig JSON file.

    ``BOARD`` is a board name or alias (its default core); ``CORE`` a preset or JSON file.

    Parameters
    ----------
    spec
        The value the user gave.
    option
        The option it came from, for the error messages.

    Raises
    ------
    ValueError
        Naming ``option`` and ``spec``, and listing the allowed boards and presets.
    """
    head, sep, core = spec.partition(":")
    try:
        if any(spec == n or (sep and head == n) for n in board_names(aliases=True)):
            b = board(head)
            cfg = _core(core) if sep else b.config
            if cfg is None:
                raise ValueError(f"core {core!r} is neither a preset nor a JSON file")
            return Target(cfg, b, spec)
        cfg = _core(spec)
    except ValueError as e:
        raise ValueError(f"{option} {spec!r}: {e}; {_allowed()}") from None
    if cfg is None:
        raise ValueError(f"{option} {spec!r}: is neither a preset nor a board nor a CoreConfig JSON file; "
                         f"{_allowed()}; or BOARD:PRESET, BOARD:FILE")
    return Target(cfg, None, spec)


# ----------------------------------------------------------------------------- flashing
def flash_command(bitstream: str | Path, board_name: str, *, tool: str | None = None, sram: bool = False,
                  which: Callable[[str], Any] = shutil.which) -> list[str]:
    """The programmer command line for ``bitstream`` on a board.

    Parameters
    ----------
    bitstream
        The bitstream file (its suffix must be the board's :attr:`Board.bitstream_suffix`).
    board_name
        A board name or alias.
    tool
        A programmer of the board's :attr:`Board.flash_tools`; default: the first of them found
        on ``PATH`` (or the first, when none is: the caller decides what to do).
    sram
        Load into the FPGA's configuration RAM only (lost at power-off) instead of the flash.
    which
        ``shutil.which``-like lookup (tests pass a fake).

    Raises
    ------
    ValueError
        Unknown board, a tool the board cannot use, or a bitstream with the wrong suffix.
    """
    b = board(board_name)
    if Path(bitstream).suffix != b.bitstream_suffix:
        raise ValueError(f"{bitstream}: a {b.name} bitstream is a '{b.bitstream_suffix}' file "
                         f"(spikeforge build --target {b.name})")
    options = list(b.flash_tools)
    if tool is not None:
        options = [o for o in options if o.name.lower() == tool.lower()]
        if not options:
            raise ValueError(f"--tool {tool} cannot program {b.name}; allowed: "
                             f"{', '.join(o.name for o in b.flash_tools)}")
    found = [o for o in options if which(o.name)]
    t = (found or options)[0]
    exe = which(t.name) or t.name
    return [exe, *(t.sram_args if sram else t.flash_args), str(bitstream)]
