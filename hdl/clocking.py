"""PLL clocking for board tops: the ``sync`` domain at a chosen frequency from the board clock.

Divider math (written from the vendor PLL rules, no external tool needed):

iCE40 ``SB_PLL40_PAD`` / ``SB_PLL40_CORE``, ``SIMPLE`` feedback (iCE40 sysCLOCK PLL guide)
    ``f_pfd = f_in / (DIVR + 1)`` in 10..133 MHz (``DIVR`` 0..15);
    ``f_vco = f_pfd * (DIVF + 1)`` in 533..1066 MHz (``DIVF`` 0..127);
    ``f_out = f_vco / 2**DIVQ`` in 16..275 MHz (``DIVQ`` 1..6);
    ``FILTER_RANGE`` from ``f_pfd``: <17 → 1, <26 → 2, <44 → 3, <66 → 4, <101 → 5, else 6.
ECP5 ``EHXPLLL``, feedback from ``CLKOP``
    ``f_pfd = f_in / CLKI_DIV`` in 3.125..400 MHz (``CLKI_DIV`` 1..128);
    ``f_out = f_pfd * CLKFB_DIV`` (``CLKFB_DIV`` 1..80);
    ``f_vco = f_out * CLKOP_DIV`` in 400..800 MHz (``CLKOP_DIV`` 1..128);
    ``CLKOP_CPHASE = CLKOP_DIV - 1`` (zero phase), ``CLKOP_FPHASE = 0``.

Among the settings reaching the closest output frequency the search keeps the first found
(lowest input divider: highest phase-detector frequency, least jitter).

:class:`PLLClockDomain` creates ``sync`` from the board's default clock through the PLL, adds
the clock constraint (so nextpnr optimises for the target) and holds ``sync`` in reset until
the PLL has locked and ``hold_us`` more microseconds have passed (iCE40 block RAM reads zeroes
for ~3 µs after configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

__all__ = [
    "ECP5PLL",
    "ICE40PLL",
    "PLLClockDomain",
    "PLLError",
    "default_clock_mhz",
    "ecp5_pll",
    "ice40_pll",
    "pll_family",
]


class PLLError(ValueError):
    """No PLL setting reaches the requested frequency within tolerance."""


@dataclass(frozen=True)
class ICE40PLL:
    """``SB_PLL40_*`` settings (SIMPLE feedback)."""

    f_in: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_pfd(self) -> float:
        return self.f_in / (self.divr + 1)

    @property
    def f_vco(self) -> float:
        return self.f_pfd * (self.divf + 1)

    @property
    def f_out(self) -> float:
        return self.f_vco / (1 << self.divq)


@dataclass(frozen=True)
class ECP5PLL:
    """``EHXPLLL`` settings (feedback from ``CLKOP``)."""

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def clkop_cphase(self) -> int:
        return self.clkop_div - 1

    @property
    def f_pfd(self) -> float:
        return self.f_in / self.clki_div

    @property
    def f_out(self) -> float:
        return self.f_pfd * self.clkfb_div

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div


def _filter_range(f_pfd: float) -> int:
    for limit, code in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if f_pfd < limit:
            return code
    return 6


def _check(f_in: float, f_out: float, got: float, tolerance: float, what: str) -> None:
    if abs(got - f_out) > tolerance * f_out:
        raise PLLError(f"{what} PLL: no setting gives {f_out:g} MHz from {f_in:g} MHz "
                       f"(closest {got:.4g} MHz, tolerance {tolerance:.1%})")


def ice40_pll(f_in: float, f_out: float, *, tolerance: float = 0.01) -> ICE40PLL:
    """The ``SB_PLL40`` setting closest to ``f_out`` MHz from ``f_in`` MHz (SIMPLE feedback)."""
    if not 10 <= f_in <= 133:
        raise PLLError(f"iCE40 PLL: input {f_in:g} MHz is outside 10..133 MHz")
    if not 16 <= f_out <= 275:
        raise PLLError(f"iCE40 PLL: output {f_out:g} MHz is outside 16..275 MHz")
    best: ICE40PLL | None = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                cand = ICE40PLL(f_in, divr, divf, divq, _filter_range(f_pfd))
                if best is None or abs(cand.f_out - f_out) < abs(best.f_out - f_out) - 1e-9:
                    best = cand
    if best is None:  # pragma: no cover - excluded by the range checks above
        raise PLLError(f"iCE40 PLL: no setting for {f_in:g} -> {f_out:g} MHz")
    _check(f_in, f_out, best.f_out, tolerance, "iCE40")
    return best


def ecp5_pll(f_in: float, f_out: float, *, tolerance: float = 0.01) -> ECP5PLL:
    """The ``EHXPLLL`` setting closest to ``f_out`` MHz from ``f_in`` MHz (CLKOP feedback)."""
    if not 8 <= f_in <= 400:
        raise PLLError(f"ECP5 PLL: input {f_in:g} MHz is outside 8..400 MHz")
    if not 3.125 <= f_out <= 400:
        raise PLLError(f"ECP5 PLL: output {f_out:g} MHz is outside 3.125..400 MHz")
    best: ECP5PLL | None = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125 <= f_pfd <= 400:
            continue
        for clkfb_div in range(1, 81):
            out = f_pfd * clkfb_div
            if best is not None and abs(out - f_out) >= abs(best.f_out - f_out) - 1e-9:
                continue
            # any output divider putting the VCO in 400..800 MHz; prefer the highest VCO
            divs = [d for d in range(1, 129) if 400 <= out * d <= 800]
            if divs:
                best = ECP5PLL(f_in, clki_div, clkfb_div, divs[-1])
    if best is None:
        raise PLLError(f"ECP5 PLL: no setting for {f_in:g} -> {f_out:g} MHz")
    _check(f_in, f_out, best.f_out, tolerance, "ECP5")
    return best


def pll_family(platform: Any) -> str | None:
    """``"ice40"``, ``"ecp5"`` or ``None`` (no PLL support: simulation, other vendors)."""
    if platform is None:
        return None
    try:
        from amaranth.vendor import LatticePlatform, SiliconBluePlatform
    except ImportError:  # pragma: no cover
        return None
    if isinstance(platform, SiliconBluePlatform):
        return "ice40"
    if isinstance(platform, LatticePlatform) and getattr(platform, "family", None) == "ecp5":
        return "ecp5"
    return None


#: Default ``sync`` targets per family (MHz): what the core should reach after routing.
DEFAULT_MHZ = {"ice40": 48.0, "ecp5": 100.0}


def default_clock_mhz(platform: Any) -> float | None:
    """The default PLL target for ``platform`` (``None``: no PLL, use the board clock)."""
    return DEFAULT_MHZ.get(pll_family(platform) or "")


class PLLClockDomain(Elaboratable):
    """Drives the clock and reset of ``domain`` (defined by the parent: ``m.domains.sync =
    ClockDomain()``) at ``f_out`` MHz from the board clock through a PLL.

    ``sync`` is held in reset until the PLL reports lock plus ``hold_us`` microseconds.
    ``self.setting`` is the chosen :class:`ICE40PLL` / :class:`ECP5PLL` after elaboration.
    """

    def __init__(self, f_out: float, *, hold_us: float = 15.0, domain: str = "sync") -> None:
        self.f_out = float(f_out)
        self.hold_us = hold_us
        self.domain = domain
        self.setting: ICE40PLL | ECP5PLL | None = None

    def elaborate(self, platform: Any) -> Module:
        fam = pll_family(platform)
        if fam is None:
            raise PLLError(f"PLLClockDomain: no PLL support for platform {type(platform).__name__}")
        m = Module()
        f_in = platform.default_clk_frequency / 1e6
        clk_out = Signal(name=f"{self.domain}_pll_clk")
        lock = Signal()
        if fam == "ice40":
            s = ice40_pll(f_in, self.f_out)
            pad = platform.request(platform.default_clk, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=s.divr,
                p_DIVF=s.divf,
                p_DIVQ=s.divq,
                p_FILTER_RANGE=s.filter_range,
                i_PACKAGEPIN=pad.io,
                i_RESETB=Const(1, 1),
                i_BYPASS=Const(0, 1),
                o_PLLOUTGLOBAL=clk_out,
                o_LOCK=lock,
            )
        else:
            s = ecp5_pll(f_in, self.f_out)
            from amaranth.lib import io

            pad = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_buf = clk_buf = io.Buffer("i", pad)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_ICP_CURRENT="12",
                a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC",
                p_OUTDIVIDER_MUXD="DIVD",
                p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=s.clkop_div,
                p_CLKOP_CPHASE=s.clkop_cphase,
                p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP",
                p_CLKI_DIV=s.clki_div,
                p_CLKFB_DIV=s.clkfb_div,
                i_CLKI=clk_buf.i,
                i_CLKFB=clk_out,
                i_RST=Const(0, 1),
                i_STDBY=Const(0, 1),
                i_PHASESEL0=Const(0, 1),
                i_PHASESEL1=Const(0, 1),
                i_PHASEDIR=Const(1, 1),
                i_PHASESTEP=Const(1, 1),
                i_PHASELOADREG=Const(1, 1),
                i_PLLWAKESYNC=Const(0, 1),
                i_ENCLKOP=Const(0, 1),
                o_CLKOP=clk_out,
                o_LOCK=lock,
            )
        self.setting = s
        platform.add_clock_constraint(clk_out, s.f_out * 1e6)

        # reset-less counter in the PLL clock: lock (synchronised) + hold time -> ready
        por = f"{self.domain}_por"
        m.domains += ClockDomain(por, reset_less=True, local=True)
        m.d.comb += ClockSignal(por).eq(clk_out)
        lock_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(lock, lock_s, o_domain=por)
        hold = max(1, int(self.hold_us * s.f_out))
        timer = Signal(range(hold + 1))
        ready = Signal()
        with m.If(~lock_s):
            m.d[por] += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == hold):
            m.d[por] += ready.eq(1)
        with m.Else():
            m.d[por] += timer.eq(timer + 1)

        m.d.comb += ClockSignal(self.domain).eq(clk_out)
        m.submodules.reset_sync = ResetSynchronizer(~ready, domain=self.domain)
        return m
