"""Board backends of the robot's closed loop: the network on a board, over the serial protocol.

:class:`DeviceBackend` follows :class:`spikeforge.toolchain.robot.controllers.Backend` (``reset()``,
``step(events, steps) -> spikes``) on any board a :class:`~spikeforge.toolchain.deploy.Device`
talks to. On construction it compiles the network for the board's core (the
:class:`~spikeforge.hdl.config.CoreConfig` IDENTIFY reports; :func:`compile_network`), and loads
the image over the protocol (``Device.load`` checks the core again). Per control step it
applies the encoded input events, runs the window and returns the output spikes.

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
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import CoreImage
from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.reference import InputEvent

__all__ = ["DeviceBackend", "emulated_backend", "port_backend", "vboard_backend"]

log = logging.getLogger(__name__)

OutputSpike = tuple[int, int]


class DeviceBackend:
    """A robot network on a board behind a :class:`~spikeforge.toolchain.deploy.Device`.

    Parameters
    ----------
    network
        The controller (integer or float: it is compiled for the board's core).
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
    """

    def __init__(self, network: Network, device: Any, *, name: str = "board",
                 on_close: Callable[[], None] | None = None, progress: bool = False,
                 baked: CoreImage | None = None) -> None:
        from spikeforge.toolchain.compiler import compile_network

        self.name = name
        self.device = device
        self._on_close = on_close
        self.network = network
        cfg = device.config
        try:
            self.compiled = compile_network(network, cfg)
        except ValueError as e:
            raise NetworkError(f"the controller does not compile for the board's core {cfg.name!r}: {e}") from None
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
        by_offset: dict[int, list[tuple[int, int]]] = {}
        for k, (i, dt, v) in enumerate(events):
            if not 0 <= dt < steps:
                raise ValueError(f"event #{k}: time_offset = {dt} is out of range; allowed: 0..{steps - 1}")
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
        return sorted(out, key=lambda s: (s[1], s[0]))

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
    from spikeforge.sim.emuboard import serve_process

    board = serve_process(_config(config), port="pty")
    return _open(network, board.url, "emulated", board.close, progress=progress)


def vboard_backend(network: Network, config: CoreConfig | str = "up5k", *, build_dir: Any = None,
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
    from spikeforge.sim.vboard import start_virtual_board

    cfg = _config(config)
    image = None
    if baked:
        from spikeforge.toolchain.compiler import compile_network

        image = compile_network(network, cfg).image
    vb = start_virtual_board(cfg, build_dir=build_dir, image=image)
    backend = _open(network, vb.url, "vboard", vb.close, progress=progress, baked=image)
    backend.virtual_board = vb  # type: ignore[attr-defined]  # for its simulated-time stats
    return backend


def port_backend(network: Network, port: str, *, baud: int = 3_000_000, timeout: float = 1.0,
                 progress: bool = False) -> DeviceBackend:
    """``network`` on the board at ``port`` (a tty, ``socket://host:port`` or any pyserial URL)."""
    return _open(network, port, "port", None, baud=baud, timeout=timeout, progress=progress)
