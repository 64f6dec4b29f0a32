"""The robot's closed loop through boards over a real pty: same trajectory as the reference model.

Default run: the emulated board (the protocol on the image model, its own process behind a
pseudo-terminal). Slow + verilator: the Verilator virtual board (the board design's RTL
behind a pseudo-terminal), step by step against the reference model.
"""

from __future__ import annotations

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.backends import (
    DeviceBackend,
    ReferenceBackend,
    emulated_backend,
    vboard_backend,
)
from spikeforge.toolchain.robot.arena import random_arena
from spikeforge.toolchain.robot.controllers import (
    SpikingController,
    evolved_network,
    spiking_braitenberg,
)
from spikeforge.toolchain.robot.task import random_robot_network
from spikeforge.toolchain.robot.world import run_episode


class _Motors:
    """Records the motor vector of every control step."""

    def __init__(self, inner: SpikingController) -> None:
        self.inner, self.motors = inner, []

    def reset(self, seed: int) -> None:
        self.inner.reset(seed)
        self.motors = []

    def act(self, sensors: np.ndarray) -> np.ndarray:
        m = self.inner.act(sensors)
        self.motors.append(m.tolist())
        return m


def _drive(net, backend, arena, steps, seed):
    ctrl = _Motors(SpikingController(net, backend, record=True))
    ep = run_episode(ctrl, arena, steps=steps, seed=seed)
    return ep, ctrl


def _assert_same_run(net, board_backend, steps: int, seed: int) -> None:
    arena = random_arena(seed)
    ep_b, c_b = _drive(net, board_backend, arena, steps, seed)
    ep_r, c_r = _drive(net, ReferenceBackend(net), arena, steps, seed)
    assert len(c_r.inner.output_log) > steps  # the controller does drive: many output spikes
    assert ep_r.distance > 0.2
    for k, (mb, mr) in enumerate(zip(c_b.motors, c_r.motors, strict=True)):
        assert mb == mr, f"control step {k}: board motors {mb} != reference {mr}"
    assert c_b.inner.input_log == c_r.inner.input_log
    assert c_b.inner.output_log == c_r.inner.output_log
    np.testing.assert_array_equal(ep_b.trajectory, ep_r.trajectory)
    assert (ep_b.coverage, ep_b.collisions, ep_b.contact_steps) == (ep_r.coverage, ep_r.collisions, ep_r.contact_steps)


def test_emulated_board_drives_the_reference_trajectory() -> None:
    # a hand-built controller, and a random one with hidden neurons, recurrence and delays
    nets = [spiking_braitenberg(), random_robot_network(np.random.default_rng(10), hidden=8, synapses=60)]
    for k, net in enumerate(nets):
        with emulated_backend(net, "tiny") as be:
            _assert_same_run(net, be, steps=30, seed=4 + k)
            assert be.frames > 0 and be.device.timestep == 30 * 8
            # a second episode after reset() starts from timestep 0 again
            be.reset()
            assert be.time == 0


def test_robot_cli_port_target_needs_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    from spikeforge.toolchain.cli import main

    assert main(["robot", "--controller", "spiking-braitenberg", "--backend", "port", "--steps", "2"]) != 0
    assert "--backend port needs --port" in capsys.readouterr().err


def test_robot_cli_port_target_on_a_served_board(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from spikeforge.sim.emuboard import serve_process
    from spikeforge.toolchain.cli import main

    with serve_process(preset("small"), port="pty") as board:
        assert main(["robot", "--controller", "spiking-braitenberg", "--backend", "port", "--port", board.url,
                     "--steps", "12", "--seed", "3", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert main(["robot", "--controller", "spiking-braitenberg", "--steps", "12", "--seed", "3", "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert got["controller"] == "spiking braitenberg on port"
    assert {k: got[k] for k in ("coverage", "collisions", "distance")} == \
        {k: ref[k] for k in ("coverage", "collisions", "distance")}


@pytest.mark.slow
@pytest.mark.verilator
def test_virtual_board_drives_the_reference_trajectory(tmp_path) -> None:
    for k, net in enumerate([spiking_braitenberg(), evolved_network()]):
        be = vboard_backend(net, "up5k")
        assert isinstance(be, DeviceBackend)
        with be:
            _assert_same_run(net, be, steps=120, seed=7 + k)
