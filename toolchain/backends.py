"""Where a network runs, step by step: the :class:`Backend` protocol and its implementations.

A closed loop (the robot's controller, a host that streams sensor spikes) drives a network
through a *backend*, anything with

* ``reset()`` — forget all state (potentials, pending events, time back to 0);
* ``step(events, steps) -> spikes`` — apply input events ``(input_index, time_offset,
  value)`` (offsets relative to the current time, ``0 <= offset < steps``), advance
  ``steps`` timesteps and return the output spikes of those steps as
  ``(output_index, time_offset)`` pairs, sorted by time then index.

State carries over from one ``step`` to the next (spikes in flight, potentials), exactly as
on a board that keeps running, so the same loop gives the same spikes on every backend:

:class:`ReferenceBackend`
    The bit-exact reference model (one stateful
    :class:`~spikeforge.toolchain.reference.ReferenceSimulator`).
:class:`DeviceBackend`
    Any board a :class:`~spikeforge.toolchain.deploy.Device` talks to. On construction it
    compiles the network for the board's core (the
    :class:`~spikeforge.hdl.config.CoreConfig` IDENTIFY reports; :func:`compile_network`) and
    loads the image over the protocol (``Device.load`` checks the core again).

The protocol's STEP frame applies its inputs at the *current* timestep only, so a
rate-coded window with events at several time offsets is sent as one STEP frame per
distinct offset (``STEP(inputs at t, steps until the next offset)``), the last one running
to the end of the window: at most ``steps`` frames, each one round trip. Every frame's
reply carries the board's timestep and spike count, which ``Device`` checks.

Openers
-------
:func:`emulated_backend`
    The emulated board (:mod:`spikeforge.sim.emuboard`, the image model behind the
    protocol) served on a real pseudo-terminal.
:func:`vboard_backend`
    The Verilator virtual board (:mod:`spikeforge.sim.vboard`) on its pseudo-terminal.
:func:`port_backend`
    A real board (or any pyserial URL) at a port.

Each returns a backend that owns what it started; ``close()`` (or ``with``) stops it.

By name
-------
:func:`open_backend` ``(kind, network, **options)`` opens any of them by its name in
:data:`BACKENDS` (``reference``, ``emulated``, ``vboard``, ``port``; the options are the
fields of :class:`BackendOptions`); :func:`register_backend` adds a kind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import CoreImage
from spikeforge.toolchain.compiler import compile_network
from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.reference import DEFAULT_POTENTIAL_BITS, InputEvent, ReferenceSimulator

if TYPE_CHECKING:
    from spikeforge.toolchain.deploy import Device

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "DeviceBackend",
    "OutputSpike",
    "ReferenceBackend",
    "emulated_backend",
    "open_backend",
    "port_backend",
    "register_backend",
    "vboard_backend",
]

log = logging.getLogger(__name__)

OutputSpike = tuple[int, int]
"""``(output_index, time_offset)``."""


class Backend(Protocol):
    """Where a network runs, step by step (see the module docstring)."""

    def reset(self) -> None: ...

    def step(self, events: Sequence[InputEvent], steps: int) -> list[OutputSpike]: ...


def _check_offsets(events: Sequence[InputEvent], steps: int) -> None:
    for k, (_, dt, _) in enumerate(events):
        if not 0 <= dt < steps:
            raise ValueError(f"event #{k}: time_offset = {dt} is out of range; allowed: 0..{steps - 1}")


def _by_time(spikes: list[OutputSpike]) -> list[OutputSpike]:
    return sorted(spikes, key=lambda s: (s[1], s[0]))


class ReferenceBackend:
    """The bit-exact reference model as a backend (one stateful :class:`ReferenceSimulator`).

    Parameters
    ----------
    network
        An integer network.
    potential_bits
        Width of the saturating potential (the core's; 16 on every preset).
    """

    name = "reference"

    def __init__(self, network: Network, potential_bits: int = DEFAULT_POTENTIAL_BITS) -> None:
        if not network.is_integer():
            raise NetworkError("the reference backend runs integer networks; quantize this one first")
        self.network = network
        self.potential_bits = potential_bits
        pos = network.index_of()
        self._out_of = np.full(len(network.neurons), -1, dtype=np.int64)
        for k, p in enumerate(network.outputs):
            self._out_of[pos[p.neuron]] = k
        self.reset()

    def reset(self) -> None:
        """A fresh simulator: time 0, every potential 0, nothing in flight."""
        self._sim = ReferenceSimulator([self.network], self.potential_bits)

    @property
    def time(self) -> int:
        """Timesteps run since the last reset."""
        return self._sim.t

    def step(self, events: Sequence[InputEvent], steps: int) -> list[OutputSpike]:
        """Apply ``events`` (time offsets from now), run ``steps`` steps, return output spikes."""
        _check_offsets(events, steps)
        t0 = self._sim.t
        self._sim.add_inputs(0, [(i, t0 + dt, v) for i, dt, v in events])
        self._sim.run(steps)
        t, _, local = self._sim.spike_arrays(since=t0)
        k = self._out_of[local]
        keep = k >= 0
        return _by_time(list(zip(k[keep].tolist(), (t[keep] - t0).tolist(), strict=True)))


class DeviceBackend:
    """A network on a board behind a :class:`~spikeforge.toolchain.deploy.Device`.

    Parameters
    ----------
    network
        The network (integer or float: it is compiled for the board's core).
    device
        An identified device (``Device.open``).
    name
        Target name for reports (``emulated``, ``vboard``, ``port``).
    on_close
        Called by :meth:`close` after the device is closed (stops a served board).
    progress
        Show the load's progress bar.
    baked
        The image the board's bitstream already carries (``spikeforge build --network``,
        ``start_virtual_board(image=)``): attached (``Device.attach``), not loaded; it must be
        what compiling ``network`` for the board's core gives.

    Attributes
    ----------
    compiled
        The :class:`~spikeforge.toolchain.compiler.CompileResult` loaded on the board.
    load_report
        What ``Device.load`` did (frames, bytes, seconds); None for a ``baked`` board.
    frames, seconds
        STEP frames sent and wall seconds spent in :meth:`step` since the last :meth:`reset`.
    virtual_board
        The :class:`~spikeforge.sim.vboard.VirtualBoard` behind it (:func:`vboard_backend`:
        its simulated-time stats), else None.
    """

    def __init__(self, network: Network, device: Device, *, name: str = "board",
                 on_close: Callable[[], None] | None = None, progress: bool = False,
                 baked: CoreImage | None = None) -> None:
        self.name = name
        self.device = device
        self.virtual_board: Any = None
        self._on_close = on_close
        self.network = network
        cfg = device.config
        try:
            self.compiled = compile_network(network, cfg)
        except ValueError as e:
            raise NetworkError(f"the network does not compile for the board's core {cfg.name!r}: {e}") from None
        image = self.compiled.image
        self.image = image
        in_names = self._port_map([p.name for p in network.inputs], image.input_names, "input")
        self._in = {net_k: img_k for img_k, net_k in enumerate(in_names)}  # network input -> image input
        out_names = self._port_map([p.name for p in network.outputs], image.output_names, "output")
        # Device.step returns network neuron ids: map each output neuron id to its port index
        self._out_of = {image.neuron_ids[slot]: out_names[k] for k, slot in enumerate(image.outputs)}
        self.load_report: Any = None
        if baked is not None:
            if baked.to_dict() != image.to_dict():
                raise NetworkError(f"{name}: the board's baked image is not this controller compiled for core "
                                   f"{cfg.name!r}; rebuild the board with this network, or load it instead")
            device.attach(image)
            log.info("%s: runs its baked %d neurons, %d synapses (no load)", name, len(image.neuron_ids),
                     len(image.synapses))
        else:
            self.load_report = device.load(image, progress=progress)
            log.info("%s: loaded %d neurons, %d synapses (%d frames, %.3f s)", name, len(image.neuron_ids),
                     len(self.compiled.network.synapses), self.load_report.frames, self.load_report.seconds)
        self.reset()

    @staticmethod
    def _port_map(names: list[str], image_names: Sequence[str], what: str) -> list[int]:
        """Index in ``names`` of each image port (the compiler keeps port names)."""
        where = {n: k for k, n in enumerate(names)}
        if len(where) != len(names) or sorted(image_names) != sorted(names):
            raise NetworkError(f"the compiled image's {what} ports {list(image_names)} differ from the "
                               f"network's {names}; give every {what} port a unique name")
        return [where[n] for n in image_names]

    @property
    def time(self) -> int:
        """Timesteps run on the board since the last reset."""
        return int(self.device.timestep)

    def reset(self) -> None:
        """RESET the board: potentials, pending events and time back to 0 (the image stays)."""
        self.device.reset()
        self.frames = 0
        self.seconds = 0.0

    def step(self, events: Sequence[InputEvent], steps: int) -> list[OutputSpike]:
        """Apply ``events`` (time offsets from now), run ``steps`` steps, return output spikes.

        One STEP frame per distinct time offset of ``events`` (and one for leading steps
        without events).
        """
        t_start = time.perf_counter()
        _check_offsets(events, steps)
        by_offset: dict[int, list[tuple[int, int]]] = {}
        for i, dt, v in events:
            # the image's input port order may differ from the network's
            by_offset.setdefault(int(dt), []).append((self._in[int(i)], int(v)))
        t0 = self.device.timestep
        cuts = sorted(by_offset)
        if not cuts or cuts[0] != 0:
            cuts.insert(0, 0)
        raw: list[tuple[int, int]] = []
        for a, b in zip(cuts, [*cuts[1:], steps], strict=True):
            raw += self.device.step(by_offset.get(a, ()), b - a)
            self.frames += 1
        out = []
        for nid, t in raw:
            k = self._out_of.get(nid)
            if k is not None:
                out.append((k, t - t0))
        self.seconds += time.perf_counter() - t_start
        return _by_time(out)

    def close(self) -> None:
        """Close the device and stop what this backend started (idempotent)."""
        with contextlib.suppress(Exception):
            self.device.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def __enter__(self) -> DeviceBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _config(config: CoreConfig | str) -> CoreConfig:
    return preset(config) if isinstance(config, str) else config


def _open(network: Network, url: str, name: str, stop: Callable[[], None] | None, *, baud: int = 3_000_000,
          timeout: float = 1.0, progress: bool = False, baked: CoreImage | None = None) -> DeviceBackend:
    # Imported here, as the board servers in the openers below: they load Amaranth and pyserial
    # (a third of a second), and the CLI imports this module to list the backends at start-up.
    from spikeforge.toolchain.deploy import Device

    try:
        dev = Device.open(url, baud=baud, timeout=timeout)
    except BaseException:
        if stop is not None:
            stop()
        raise
    try:
        return DeviceBackend(network, dev, name=name, on_close=stop, progress=progress, baked=baked)
    except BaseException:
        dev.close()
        if stop is not None:
            stop()
        raise


def emulated_backend(network: Network, config: CoreConfig | str = "up5k", *, progress: bool = False) -> DeviceBackend:
    """``network`` on an emulated board of core ``config`` served on a pseudo-terminal.

    The board runs in its own process (:func:`~spikeforge.sim.emuboard.serve_process`), so it
    shares no interpreter lock with the host loop.
    """
    from spikeforge.sim.emuboard import serve_process  # start-up time: see _open

    board = serve_process(_config(config), port="pty")
    return _open(network, board.url, "emulated", board.close, progress=progress)


def vboard_backend(network: Network, config: CoreConfig | str = "up5k", *, build_dir: str | Path | None = None,
                   progress: bool = False, baked: bool = False) -> DeviceBackend:
    """``network`` on a Verilator virtual board of core ``config`` (built and cached on first use).

    ``baked``: compile ``network`` for ``config`` and bake it into the virtual board (an
    all-block-RAM core: the board a ``spikeforge build --network`` bitstream makes), so the
    board boots running it and nothing is loaded.

    Raises
    ------
    spikeforge.sim.vboard.VirtualBoardError
        When Verilator cannot build or start the board (the message says why).
    """
    from spikeforge.sim.vboard import start_virtual_board  # start-up time: see _open

    cfg = _config(config)
    image = compile_network(network, cfg).image if baked else None
    vb = start_virtual_board(cfg, build_dir=build_dir, image=image)
    backend = _open(network, vb.url, "vboard", vb.close, progress=progress, baked=image)
    backend.virtual_board = vb
    return backend


def port_backend(network: Network, port: str, *, baud: int = 3_000_000, timeout: float = 1.0,
                 progress: bool = False) -> DeviceBackend:
    """``network`` on the board at ``port`` (a tty, ``socket://host:port`` or any pyserial URL)."""
    return _open(network, port, "port", None, baud=baud, timeout=timeout, progress=progress)


# ----------------------------------------------------------------------------- by name
@dataclass(frozen=True)
class BackendOptions:
    """The options :func:`open_backend` passes on; each kind reads those it needs.

    Attributes
    ----------
    config
        ``emulated``, ``vboard``: the board's core (a preset name or a CoreConfig).
    port
        ``port``: a tty path or pyserial URL (required).
    baud, timeout
        ``port``: serial speed and reply timeout (seconds).
    build_dir
        ``vboard``: where the Verilator build is cached (default: ``$SPIKEFORGE_BUILD_DIR``
        or ``./build``).
    progress
        Board kinds: show the image load's progress bar.
    baked
        ``vboard``: bake the network into the board instead of loading it.
    """

    config: CoreConfig | str = "up5k"
    port: str | None = None
    baud: int = 3_000_000
    timeout: float = 1.0
    build_dir: str | Path | None = None
    progress: bool = False
    baked: bool = False


BackendFactory = Callable[[Network, BackendOptions], Backend]

#: kind → (factory(network, options) -> Backend, one-line description).
BACKENDS: dict[str, tuple[BackendFactory, str]] = {}


def register_backend(kind: str, factory: BackendFactory, description: str) -> None:
    """Make ``open_backend(kind, …)`` call ``factory(network, options)``."""
    BACKENDS[kind] = (factory, description)


def open_backend(kind: str, network: Network, **options: Any) -> Backend:
    """``network`` on the backend named ``kind`` (:data:`BACKENDS`).

    Parameters
    ----------
    kind
        ``reference``, ``emulated``, ``vboard``, ``port`` or a registered kind.
    network
        The network to run.
    **options
        Fields of :class:`BackendOptions`; each kind ignores those it does not use.

    Raises
    ------
    ValueError
        For an unknown kind or option, or a ``port`` backend without ``port``.
    """
    if kind not in BACKENDS:
        raise ValueError(f"backend {kind!r} is unknown; known: {', '.join(sorted(BACKENDS))}")
    names = {f.name for f in dataclasses.fields(BackendOptions)}
    if unknown := sorted(set(options) - names):
        raise ValueError(f"backend option(s) {', '.join(unknown)} unknown; known: {', '.join(sorted(names))}")
    factory, _ = BACKENDS[kind]
    return factory(network, BackendOptions(**options))


def _port(network: Network, o: BackendOptions) -> Backend:
    if not o.port:
        raise ValueError("the port backend needs port= (a tty path or pyserial URL, e.g. /dev/ttyUSB1 "
                         "or socket://host:port)")
    return port_backend(network, o.port, baud=o.baud, timeout=o.timeout, progress=o.progress)


register_backend("reference", lambda net, o: ReferenceBackend(net), "the bit-exact reference model (numpy)")
register_backend("emulated", lambda net, o: emulated_backend(net, o.config, progress=o.progress),
                 "the emulated board (protocol + image model) on a pty")
register_backend("vboard", lambda net, o: vboard_backend(net, o.config, build_dir=o.build_dir, progress=o.progress,
                                                         baked=o.baked),
                 "the Verilator virtual board on a pty (built on first use)")
register_backend("port", _port, "a real board (or any pyserial URL) at a port")
