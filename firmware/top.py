"""Board tops: UART → frame receiver → command engine → spiking core → frame sender → UART.

:class:`BoardCore`
    The whole board design between two pins (``rx`` in, ``tx`` out), platform-independent:
    the iCEBreaker / ULX3S tops, the Amaranth-sim tests and the Verilator virtual board
    (:mod:`spikeforge.sim.vboard`) all run this one component.
:class:`BoardTop`
    :class:`BoardCore` on a board: the ``sync`` domain from a PLL at ``clock_mhz`` (see
    :mod:`spikeforge.hdl.clocking`; the clock is constrained so nextpnr reports the fmax
    against it) and the board's UART pins (the FTDI bridge of the iCEBreaker and of the
    ULX3S). The baud is a build parameter; the divisor must be within 2 % (:func:`uart_divisor`).

Build parameters and their defaults (:attr:`~spikeforge.firmware.boards.Board.clock_mhz`): iCEBreaker 27 MHz (3 Mbaud =
9 clocks per bit; the full design fills 98.9 % of the UP5K's logic cells and routed at 29.4 MHz
against a 36 MHz target, the bare ``up5k`` core alone at ≈ 42 MHz), ULX3S-85F 45 MHz (15 per
bit; 48 MHz is not reachable from its 25 MHz oscillator within 1 %).

Booting alone (issue 8): every top takes an optional :class:`~spikeforge.hdl.image.CoreImage`
(``image``) that the core bakes into its memories' initial contents, so the board runs the
network from power-up with no host loading it (WRITE commands still replace it). EBR init is
free; SPRAM has no init on the iCE40, so a configuration with SPRAM memories (``up5k``) is
refused — a baked build uses an all-block-RAM configuration such as ``small`` or ``tiny``.
The image is part of the design, so it is part of every build cache key.
"""

from __future__ import annotations

import zlib
from typing import Any

from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.clocking import PLLClockDomain
from spikeforge.hdl.config import CoreConfig
from spikeforge.hdl.core import SpikingCore, check_bakeable
from spikeforge.hdl.image import CoreImage

from . import protocol as proto
from .boards import board as board_of
from .boards import board_of_family
from .build import build, get_platform
from .engine import CommandEngine
from .framing import FrameReceiver
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["DEFAULT_BAUD", "BoardCore", "BoardTop", "board_identify", "build_board", "build_id"]

#: Default UART baud (both boards' FTDI bridges carry 3 Mbaud).
DEFAULT_BAUD = 3_000_000
#: Frames the receive buffer holds besides the one executing (advertised by IDENTIFY).
RX_FRAMES = 2
#: A partial frame is dropped after this much line silence (seconds); 0: only the next 0x00
#: ends it (PROTOCOL.md's recovery, which the tests exercise). Off by default: on the UP5K the
#: timer's ~30 logic cells do not fit beside the ``up5k`` core.
IDLE_TIMEOUT_S = 0.0


def build_id(cfg: CoreConfig, baud: int, clock_hz: int) -> int:
    """The IDENTIFY ``build_id``: CRC-32 of the protocol version, core fingerprint, baud and clock."""
    doc = f"spikeforge-board v{proto.PROTOCOL_VERSION} {cfg.fingerprint()} {baud} {clock_hz}"
    return zlib.crc32(doc.encode())


def board_identify(cfg: CoreConfig, baud: int, clock_hz: int) -> proto.IdentifyInfo:
    """What the board design answers to IDENTIFY."""
    return proto.IdentifyInfo(cfg, rx_frames=RX_FRAMES, baud=baud, clock_hz=clock_hz,
                              build_id=build_id(cfg, baud, clock_hz))


class BoardCore(wiring.Component):
    """The board design between its two UART pins.

    Parameters
    ----------
    cfg
        The core configuration.
    clock_hz
        The ``sync`` clock frequency (for the UART divisor, the idle timeout and IDENTIFY).
    baud
        UART baud rate.
    idle_timeout_s
        Line silence after which a partial frame is dropped (0: only the next ``0x00``
        resynchronises).
    image
        A network baked into the core (:class:`~spikeforge.hdl.core.SpikingCore`): the board
        boots running it.

    Members
    -------
    rx : In(1)
        UART line from the host (idle high).
    tx : Out(1)
        UART line to the host.
    idle : Out(1)
        Nothing in flight anywhere (no byte being received or sent, no frame pending, the
        engine and the core idle): the virtual board stops simulated time while it is high.
        Unconnected on a real board (synthesis removes it).
    """

    def __init__(self, cfg: CoreConfig, *, clock_hz: float, baud: int = DEFAULT_BAUD,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, image: CoreImage | None = None) -> None:
        if image is not None:  # refuse early, not at elaboration
            check_bakeable(cfg, image)
        self.cfg = cfg
        self.image = image
        self.clock_hz = int(round(clock_hz))
        self.baud = int(baud)
        self.divisor = uart_divisor(clock_hz, baud)
        self.idle_timeout = int(idle_timeout_s * clock_hz)
        self.info = board_identify(cfg, self.baud, self.clock_hz)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "idle": Out(1)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.submodules.receiver = rcv = FrameReceiver(
            proto.CRC_ALGORITHM(8), max_body=proto.MAX_BODY - proto.CRC_BYTES, depth=512,
            idle_timeout=self.idle_timeout)
        m.submodules.engine = eng = CommandEngine(self.cfg, self.info.pack())
        m.submodules.core = core = SpikingCore(self.cfg, image=self.image)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.data, rcv.wire)
        wiring.connect(m, rcv.frame, eng.frame)
        wiring.connect(m, eng.cmd, core.cmd)
        wiring.connect(m, core.spikes, eng.spikes)
        wiring.connect(m, eng.wire, utx.data)
        m.d.comb += [
            eng.length.eq(rcv.length), eng.rx_ok.eq(rcv.ok), eng.drop.eq(rcv.drop),
            eng.drop_kind.eq(rcv.drop_kind),
            eng.core_busy.eq(core.busy), eng.timestep.eq(core.timestep), eng.events.eq(core.events),
            eng.cycles.eq(core.cycles), eng.errors.eq(core.errors),
            self.idle.eq(eng.idle & rcv.idle & ~urx.busy & ~urx.data.valid & utx.data.ready & ~core.busy),
        ]
        return m


def pll_output_hz(family: str, f_in_hz: float, mhz: float) -> float:
    """The frequency (Hz) the ``family`` PLL really makes for a ``mhz`` target from ``f_in_hz``."""
    from spikeforge.hdl.clocking import ecp5_pll, ice40_pll

    return (ice40_pll if family == "ice40" else ecp5_pll)(f_in_hz / 1e6, mhz).f_out * 1e6


class BoardTop(Elaboratable):
    """:class:`BoardCore` on a board, for :func:`spikeforge.firmware.build.build`.

    Parameters
    ----------
    cfg
        The core configuration.
    clock_mhz
        PLL output for the ``sync`` domain (``None``: the board's default,
        :attr:`Board.clock_mhz` of the platform family's board).
    baud
        UART baud rate.
    image
        A network baked into the core's block RAM (see :class:`BoardCore`).
    """

    def __init__(self, cfg: CoreConfig, *, clock_mhz: float | None = None, baud: int = DEFAULT_BAUD,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, image: CoreImage | None = None) -> None:
        if image is not None:
            check_bakeable(cfg, image)
        self.cfg, self.clock_mhz, self.baud, self.idle_timeout_s = cfg, clock_mhz, baud, idle_timeout_s
        self.image = image
        self.board: BoardCore | None = None

    def elaborate(self, platform: Any) -> Module:
        from spikeforge.hdl.clocking import pll_family

        m = Module()
        fam = pll_family(platform)
        if fam is None:
            raise ValueError(f"BoardTop: platform {type(platform).__name__} has no supported PLL; "
                             "use an iCE40 or ECP5 board (icebreaker, ulx3s-85f)")
        mhz = self.clock_mhz or board_of_family(fam).clock_mhz
        m.domains.sync = ClockDomain("sync")
        m.submodules.pll = PLLClockDomain(mhz)
        # the UART divisor uses the frequency the PLL really makes
        m.submodules.board = self.board = BoardCore(
            self.cfg, clock_hz=pll_output_hz(fam, platform.default_clk_frequency, mhz), baud=self.baud,
            idle_timeout_s=self.idle_timeout_s, image=self.image)
        uart = platform.request("uart", 0)
        m.d.comb += [self.board.rx.eq(uart.rx.i), uart.tx.o.eq(self.board.tx)]
        return m


def build_board(board: str, cfg: CoreConfig, *, build_dir: Any, baud: int = DEFAULT_BAUD,
                clock_mhz: float | None = None, seed: int | None = None, cache: bool = True,
                image: CoreImage | None = None) -> Any:
    """Synthesise, place and route the board design (:class:`BoardTop`) for ``board``.

    Returns the :class:`~spikeforge.firmware.build.BuildResult` (cached by design hash under
    ``build_dir``; the hash covers the RTLIL, so a baked ``image`` is in the key). Timing
    failures do not raise: check ``result.timing_met``.
    """
    spec = board_of(board)
    mhz = clock_mhz or spec.clock_mhz
    # refuse an impossible baud before any tool runs
    uart_divisor(pll_output_hz(spec.family, get_platform(spec.name).default_clk_frequency, mhz), baud)
    top = BoardTop(cfg, clock_mhz=mhz, baud=baud, image=image)
    name = f"board_{cfg.name.replace('-', '_')}" + ("_baked" if image is not None else "")
    return build(top, spec.name, build_dir=build_dir, name=name, cache=cache,
                 seed=seed, allow_timing_fail=True)
