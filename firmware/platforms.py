"""Amaranth platforms of the boards in :mod:`spikeforge.firmware.boards` that need a tweak."""

from __future__ import annotations

from amaranth_boards.ulx3s import ULX3S_85F_Platform

__all__ = ["ULX3S85FPlatform"]


class ULX3S85FPlatform(ULX3S_85F_Platform):
    """ULX3S with the LFE5U-85F, buildable without ``openFPGALoader`` installed.

    ``amaranth-boards`` adds ``openFPGALoader`` to ``required_tools`` of every ULX3S, so
    Amaranth's own :meth:`build` refuses to run without it even when not programming. The
    tool is only needed by :meth:`toolchain_program`, which still looks it up (through the
    ``OPENFPGALOADER`` environment variable or ``PATH``) when called.
    """

    @property
    def required_tools(self) -> list[str]:
        return [tool for tool in super().required_tools if tool != "openFPGALoader"]
