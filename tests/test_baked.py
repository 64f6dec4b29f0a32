"""A network baked into the bitstream (issue 8 item 5): the core boots already running it.

The baked core (its memories initialised from the image, no WRITE issued) must answer exactly
as the same core loaded with the image's WRITE commands and as the reference model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spikeforge.hdl.amsim import run_commands_sim
from spikeforge.hdl.config import ConfigError, preset
from spikeforge.hdl.core import SpikingCore
from spikeforge.hdl.driver import collect_result, load_commands, run_commands
from spikeforge.hdl.image import ImageError, lower
from spikeforge.hdl.protocol import Opcode
from spikeforge.toolchain.netgen import random_case
from spikeforge.toolchain.reference import simulate

TINY = preset("tiny")
BUILD = Path(__file__).resolve().parents[1] / "build" / "test_baked"
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.mark.parametrize("seed", range(3))
def test_baked_core_matches_loaded_core_and_reference(seed):
    c = random_case(seed, 24, 100, 30, max_delay=8)
    img = lower(c.network, TINY)
    run = run_commands(img, c.inputs, c.steps)
    assert all(cmd.op != Opcode.WRITE for cmd in run)
    baked = run_commands_sim(TINY, run, image=img)
    loaded = run_commands_sim(TINY, load_commands(img) + run)
    got_baked = collect_result(img, baked.beats, c.steps)
    assert baked.beats == loaded.beats
    assert got_baked == collect_result(img, loaded.beats, c.steps)
    assert got_baked == simulate(c.network, c.inputs, c.steps)
    assert baked.beats, "the case should make the network spike"

    assert baked.errors == 0 and baked.timestep == c.steps


def test_baked_core_can_still_be_reloaded():
    """WRITE commands replace the baked network (a baked board is still a loadable board)."""
    a = random_case(10, 20, 80, 25, max_delay=8)
    b = random_case(11, 20, 80, 25, max_delay=8)
    img_a, img_b = lower(a.network, TINY), lower(b.network, TINY)
    run = run_commands_sim(TINY, load_commands(img_b, full=True) + run_commands(img_b, b.inputs, b.steps),
                           image=img_a)
    assert collect_result(img_b, run.beats, b.steps) == simulate(b.network, b.inputs, b.steps)


def test_baking_refuses_spram_config():
    up5k = preset("up5k")
    img = lower(random_case(0, 8, 10, 5).network, up5k)
    with pytest.raises(ConfigError, match=r"SPRAM.*cannot\s+initialise.*all block RAM"):
        SpikingCore(up5k, image=img)


def test_baking_refuses_image_for_other_config():
    img = lower(random_case(0, 8, 10, 5).network, TINY)
    with pytest.raises(ImageError, match="'tiny'.*'small'"):
        SpikingCore(preset("small"), image=img)


def test_board_design_carries_the_image():
    """The image is in the design text, so every cache key hashing it (bitstream, vboard) changes."""
    from amaranth.back import rtlil

    from spikeforge.firmware.top import BoardCore

    img_a = lower(random_case(0, 8, 10, 5).network, TINY)
    img_b = lower(random_case(1, 8, 10, 5).network, TINY)
    texts = [rtlil.convert(BoardCore(TINY, clock_hz=12e6, image=i), ports=None) for i in (None, img_a, img_b)]
    assert len(set(texts)) == 3


def test_board_design_refuses_spram():
    from spikeforge.firmware.top import BoardTop

    up5k = preset("up5k")
    with pytest.raises(ConfigError, match="SPRAM"):
        BoardTop(up5k, image=lower(random_case(0, 8, 10, 5).network, up5k))


def _vb_case(seed: int, steps: int = 40):
    return random_case(seed, 10, 30, steps=steps, max_delay=TINY.max_delay, threshold_range=(0, 6),
                       weight_range=(-3, 9))


@pytest.mark.slow
@pytest.mark.verilator
def test_baked_virtual_board_answers_like_a_loaded_one():
    """The Verilator virtual board built with a baked image answers IDENTIFY and runs the
    network with no LOAD (Device.attach) exactly as a virtual board loaded over serial and as
    the reference model; a second network loaded over serial replaces the baked one."""
    from spikeforge.sim.vboard import start_virtual_board
    from spikeforge.toolchain.deploy import Device, WrongCoreError

    case = _vb_case(1)
    img = lower(case.network, TINY)
    ref = simulate(case.network, case.inputs, steps=case.steps)
    assert len(ref.spikes) > 10
    with start_virtual_board(TINY, build_dir=BUILD, image=img) as baked, \
            start_virtual_board(TINY, build_dir=BUILD) as plain:
        with Device.open(baked.path) as dev, Device.open(plain.path) as pdev:
            assert dev.info.config == TINY
            before = dev.counters()
            dev.attach(img)
            got = dev.simulate(case.inputs, steps=case.steps)
            assert got.spikes == ref.spikes
            assert dev.counters().frames_ok > before.frames_ok  # no LOAD: only RESET/STEP/RUN
            pdev.load(img)
            assert pdev.simulate(case.inputs, steps=case.steps).spikes == got.spikes
            # the baked board is still loadable: a different network over serial
            other = _vb_case(2)
            img2 = lower(other.network, TINY)
            dev.load(img2)
            assert dev.simulate(other.inputs, steps=other.steps).spikes == simulate(
                other.network, other.inputs, steps=other.steps).spikes
            with pytest.raises(WrongCoreError, match="attach the image"):
                dev.attach(lower(case.network, preset("small")))


# ------------------------------------------------------------------------------ spikeforge build --network
def _net_file(tmp_path, seed: int = 3, n: int = 12, syn: int = 30):
    from spikeforge.toolchain.ir import save_network

    path = tmp_path / f"net{seed}.json"
    save_network(random_case(seed, n, syn, 10, max_delay=8).network, path)
    return path


def test_build_network_refuses_spram_config(tmp_path, capsys):
    from spikeforge.toolchain.cli import main

    rc = main(["build", "--board", "icebreaker", "--config", "up5k", "--network", str(_net_file(tmp_path)),
               "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "'up5k' keeps index and synapses in SPRAM" in err
    assert "cannot initialise" in err and "--config tiny or small" in err


def test_build_network_refuses_bench_top(tmp_path, capsys):
    from spikeforge.toolchain.cli import main

    rc = main(["build", "--target", "icebreaker", "--top", "bench", "--network", str(_net_file(tmp_path)),
               "--build-dir", str(tmp_path)])
    assert rc == 2 and "needs --top board" in capsys.readouterr().err


def test_compile_for_baking_picks_smallest_all_bram_preset(tmp_path):
    from spikeforge.firmware.boards import board
    from spikeforge.toolchain.compiler import fit
    from spikeforge.toolchain.ir import load_network

    baked = [preset(n) for n in board("icebreaker").baked_presets]
    assert fit(load_network(_net_file(tmp_path)), baked, bake=True).image.config.name == "tiny"
    big = load_network(_net_file(tmp_path, seed=4, n=60, syn=200))  # more neurons than 'tiny' has
    img = fit(big, baked, bake=True).image
    assert img.config.name == "small" and not img.config.spram
    assert fit(big, preset("small"), bake=True).image.config.name == "small"


@pytest.mark.slow
@pytest.mark.synth
def test_build_icebreaker_with_baked_network(tmp_path, capsys):
    """``spikeforge build --board icebreaker --network`` builds the board design with the
    network in block RAM, reports the resources, and writes the image beside the bitstream."""
    import json

    from spikeforge.hdl.image import CoreImage
    from spikeforge.toolchain.cli import main

    net = _net_file(tmp_path)
    rc = main(["build", "--target", "icebreaker", "--network", str(net), "--json", "--build-dir", str(BUILD)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "core 'tiny'" in out.err
    rep = json.loads(out.out)
    assert rep["core"]["preset"] == "tiny" and rep["spram"] == 0
    assert 0 < rep["logic_cells"] <= rep["logic_cells_available"]
    img = CoreImage.from_json(open(rep["baked"]["image"]).read())
    assert img.config == TINY and len(img.neuron_ids) == rep["baked"]["neurons"]


def test_device_attach_checks_the_core_and_sends_nothing():
    """Device.attach takes the port map of a baked board's image without loading it."""
    from spikeforge.sim.emuboard import serve
    from spikeforge.toolchain.deploy import Device, WrongCoreError

    img = lower(random_case(0, 8, 10, 5).network, TINY)
    with serve(TINY, port="pty", model_line=False) as emu, Device.open(emu.url) as dev:
        before = dev.counters().frames_ok
        with pytest.raises(WrongCoreError, match="'small'.*'tiny'.*attach the image"):
            dev.attach(lower(random_case(0, 8, 10, 5).network, preset("small")))
        dev.attach(img)
        assert dev.image is img
        assert dev.counters().frames_ok == before + 1  # only the READ_COUNTERS of this check


@pytest.mark.slow
@pytest.mark.verilator
def test_baked_virtual_board_drives_the_robot_like_the_reference():
    """A robot that runs alone: the shipped evolved controller baked into a virtual board (no
    load) drives the same trajectory, control step for control step, as the reference model."""
    import numpy as np

    from spikeforge.toolchain.backends import ReferenceBackend, vboard_backend
    from spikeforge.toolchain.robot.arena import random_arena
    from spikeforge.toolchain.robot.controllers import SpikingController, evolved_network
    from spikeforge.toolchain.robot.world import run_episode

    net = evolved_network()
    arena = random_arena(7)
    runs = []
    with vboard_backend(net, "tiny", build_dir=BUILD, baked=True) as be:
        assert be.load_report is None and be.device.image is be.image
        for backend in (be, ReferenceBackend(net)):
            ep = run_episode(SpikingController(net, backend), arena, steps=120, seed=7)
            runs.append(ep)
    a, b = runs
    assert a.distance > 0.2  # the controller does drive
    np.testing.assert_array_equal(a.trajectory, b.trajectory)
    assert (a.coverage, a.collisions) == (b.coverage, b.collisions)


def test_robot_backend_refuses_a_baked_image_of_another_controller():
    from spikeforge.sim.emuboard import serve
    from spikeforge.toolchain.backends import DeviceBackend
    from spikeforge.toolchain.compiler import compile_network
    from spikeforge.toolchain.deploy import Device
    from spikeforge.toolchain.ir import NetworkError
    from spikeforge.toolchain.robot.controllers import evolved_network, spiking_braitenberg

    other = lower(random_case(0, 8, 10, 5).network, TINY)
    with serve(TINY, port="pty", model_line=False) as emu, Device.open(emu.url) as dev:
        with pytest.raises(NetworkError, match="baked image is not this controller"):
            DeviceBackend(spiking_braitenberg(), dev, baked=other)
        img = compile_network(evolved_network(), TINY).image
        be = DeviceBackend(evolved_network(), dev, baked=img)
        assert be.load_report is None and dev.image is be.image and be.image.to_dict() == img.to_dict()
