"""The Verilator virtual board (the full board design, UART bit by bit) behind a real pty / TCP,
driven by the host's Device: spike for spike against the emulated board and the reference
model; random bytes and a host that vanishes mid-frame leave it responsive."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
import serial

from spikeforge.firmware import protocol as P
from spikeforge.hdl.config import preset
from spikeforge.hdl.image import lower
from spikeforge.sim.emuboard import serve
from spikeforge.sim.vboard import start_virtual_board
from spikeforge.toolchain.deploy import Device
from spikeforge.toolchain.netgen import random_case
from spikeforge.toolchain.reference import simulate

pytestmark = pytest.mark.verilator

CFG = preset("tiny")
BUILD = Path(__file__).resolve().parents[1] / "build" / "test_vboard"


@pytest.fixture(scope="module")
def vb():
    with start_virtual_board(CFG, build_dir=BUILD) as board:
        yield board


def _case(seed: int, steps: int = 40):
    return random_case(seed, 10, 30, steps=steps, max_delay=CFG.max_delay, threshold_range=(0, 6),
                       weight_range=(-3, 9))


def test_same_spikes_reference_emulated_and_virtual_board_over_a_pty(vb):
    """The 'done when' test: simulate == run on the emulated board == run on the Verilator
    virtual board over a real pseudo-terminal, for a few random networks with inputs."""
    assert vb.path and os.path.exists(vb.path)
    with Device.open(vb.path) as dev, serve(CFG, port="pty", model_line=False) as emu, Device.open(emu.url) as edev:
        assert dev.info.config == CFG and dev.info.rx_frames == 2 and dev.info.baud == 3_000_000
        fired = 0
        for seed in (1, 2, 3):
            case = _case(seed)
            img = lower(case.network, CFG)
            ref = simulate(case.network, case.inputs, steps=case.steps)
            dev.load(img)
            edev.load(img)
            got = dev.simulate(case.inputs, steps=case.steps)
            assert got.spikes == ref.spikes, seed
            assert edev.simulate(case.inputs, steps=case.steps).spikes == ref.spikes
            fired += len(ref.spikes)
        assert fired > 50
        c = dev.counters()
        assert c.frames_bad == 0 and c.rejected == 0 and c.timestep == 40
        assert c.frames_ok > 10 and c.cycles > 0 and c.events > 0
    st = vb.stats()
    assert st["tx_framing_errors"] == 0 and st["cycles"] > 10_000


def test_random_bytes_on_the_uart_then_the_board_answers_and_runs(vb):
    """Random bytes (with and without 0x00) straight onto the pty, then a host: IDENTIFY works,
    the garbage was counted and NAKed, and a network still runs like the reference."""
    rng = random.Random(7)
    with serial.serial_for_url(vb.path, timeout=0.2) as raw:
        for _ in range(20):
            raw.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))))
        raw.write(b"\x00")
        raw.flush()
        time.sleep(0.3)
        naks = [P.decode_reply(f) for f in P.FrameDecoder().feed(raw.read(65536))]
    assert naks and all(r.is_nak for r in naks)
    with Device.open(vb.path) as dev:
        before = dev.counters()
        assert before.frames_bad > 0
        case = _case(4)
        dev.load(lower(case.network, CFG))
        assert dev.simulate(case.inputs, steps=case.steps).spikes == simulate(case.network, case.inputs,
                                                                              steps=case.steps).spikes


def test_a_host_that_vanishes_mid_frame_leaves_the_board_responsive(vb):
    """Half a LOAD frame, then the host closes the port; the next host gets its answers (the
    partial frame is ended by the next 0x00 and NAKed, the host re-sends)."""
    frame = P.encode_request(5, P.Op.LOAD, bytes(range(1, 10)) * 20)
    with serial.serial_for_url(vb.path, timeout=0.1) as raw:
        raw.write(frame[: len(frame) // 2])
        raw.flush()
        time.sleep(0.05)
    with Device.open(vb.path) as dev:
        assert dev.info.config == CFG
        assert dev.counters().frames_bad >= 1  # the partial frame, ended by the next 0x00
        case = _case(5)
        dev.load(lower(case.network, CFG))
        assert dev.simulate(case.inputs, steps=case.steps).spikes == simulate(case.network, case.inputs,
                                                                              steps=case.steps).spikes


def test_tcp_mode():
    with start_virtual_board(CFG, tcp=0, build_dir=BUILD) as board:
        assert board.url.startswith("socket://") and board.port
        with Device.open(board.url) as dev:
            assert dev.info.config.name == "tiny"


@pytest.mark.slow
def test_many_random_networks_on_the_virtual_board(vb):
    with Device.open(vb.path) as dev:
        for seed in range(10, 40):
            case = _case(seed, steps=60)
            dev.load(lower(case.network, CFG))
            assert dev.simulate(case.inputs, steps=case.steps).spikes == simulate(
                case.network, case.inputs, steps=case.steps).spikes, seed
