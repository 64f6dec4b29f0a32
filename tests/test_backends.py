"""The backends by name (``open_backend``) and the board backend's own checks.

The closed loop through every backend, against the reference model, is in
``test_robot_boards.py``.
"""

from __future__ import annotations

import pytest

from spikeforge.toolchain.backends import (
    DeviceBackend,
    ReferenceBackend,
    emulated_backend,
    open_backend,
)
from spikeforge.toolchain.ir import NetworkError
from spikeforge.toolchain.robot.controllers import new_robot_network, spiking_braitenberg


def test_board_backend_refusals() -> None:
    net = new_robot_network()  # plus a chain of 30 live hidden neurons: 43 neurons > tiny's 32
    prev = 7  # bias
    for h in range(13, 43):
        net.add_neuron(h, threshold=1)
        net.add_synapse(prev, h, 1, 1)
        prev = h
    net.add_synapse(prev, 9, 1, 1)
    with pytest.raises(NetworkError, match="does not compile for the board's core 'tiny'"):
        emulated_backend(net, "tiny")
    with emulated_backend(spiking_braitenberg(), "tiny") as be:
        with pytest.raises(ValueError, match="time_offset = 8 is out of range"):
            be.step([(0, 8, 1)], 8)


def test_board_backend_runs_windows_without_events() -> None:
    net = spiking_braitenberg()
    with emulated_backend(net, "tiny") as be:
        ref = ReferenceBackend(net)
        for events in ([], [(8, 3, 1)], [(8, 0, 1), (8, 7, 1), (2, 7, 1)]):
            assert be.step(events, 8) == ref.step(events, 8)
        assert be.time == ref.time == 24


def test_open_backend_by_name() -> None:
    """The name -> backend registry: the same steps on the emulated board as on the reference."""
    net = spiking_braitenberg()
    ref = open_backend("reference", net)
    assert isinstance(ref, ReferenceBackend)
    with open_backend("emulated", net, config="tiny") as be:
        assert isinstance(be, DeviceBackend) and be.name == "emulated"
        events = [(8, 0, 1), (8, 5, 1), (2, 5, 1)]
        assert be.step(events, 8) == ref.step(events, 8)


def test_open_backend_refusals() -> None:
    net = spiking_braitenberg()
    with pytest.raises(ValueError, match="backend 'fpga' is unknown; known: emulated, port, reference, vboard"):
        open_backend("fpga", net)
    with pytest.raises(ValueError, match="option\\(s\\) speed unknown"):
        open_backend("reference", net, speed=3)
    with pytest.raises(ValueError, match="the port backend needs port="):
        open_backend("port", net)
