"""The host driver (toolchain/deploy.py) against the emulated board, and the deploy / run /
flash command lines."""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.firmware import protocol as P
from spikeforge.firmware.boards import flash_command
from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.driver import run_commands
from spikeforge.hdl.image import lower
from spikeforge.hdl.protocol import Opcode
from spikeforge.sim.emuboard import EmuBoard, EmuSerial, serve
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.deploy import (
    Device,
    DeviceError,
    DeviceTimeout,
    NotABoardError,
    StateAdvancedError,
    WrongCoreError,
)
from spikeforge.toolchain.ir import Network, save_network
from spikeforge.toolchain.netgen import random_inputs, random_network
from spikeforge.toolchain.reference import simulate

CFG = preset("tiny")


def device(cfg: CoreConfig = CFG, tap=None, **kw) -> tuple[Device, EmuBoard]:
    board = EmuBoard(cfg, model_line=False)
    return Device(EmuSerial(board, tap), timeout=0.05, **kw), board


def busy_net(n: int = 20) -> Network:
    net = Network()
    for i in range(n):
        net.add_neuron(i, threshold=0, bias=1)  # fires every step
    net.add_input(0)
    return net


# ----------------------------------------------------------------------------- Device vs reference
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 32), st.integers(0, 96), st.integers(1, 80))
def test_simulate_on_the_emulated_board_equals_the_reference(seed, n, m, steps):
    net = random_network(seed, n, m, max_delay=CFG.max_delay)
    inputs = random_inputs(seed, net, steps)
    dev, _ = device()
    dev.load(lower(net, CFG))
    assert dev.simulate(inputs, steps).spikes == simulate(net, inputs, steps).spikes
    # the same image again, from a clean reset: the same spikes
    assert dev.simulate(inputs, steps).spikes == simulate(net, inputs, steps).spikes


def test_closed_loop_steps_equal_the_reference_window_by_window():
    net = random_network(3, 24, 80, max_delay=CFG.max_delay)
    dev, board = device()
    dev.load(lower(net, CFG))
    dev.reset()
    plan = [[(i, 5 + k % 7) for i in range(len(net.inputs)) if (i + k) % 3 == 0] for k in range(30)]
    flat = [(i, 4 * k, v) for k, evs in enumerate(plan) for i, v in evs]
    ref = simulate(net, flat, 4 * 30).spikes
    for k, evs in enumerate(plan):
        got = dev.step(evs, 4)
        assert sorted(got) == sorted(s for s in ref if 4 * k <= s[1] < 4 * k + 4)
    assert dev.timestep == 120
    ops = [op for _, op in board.stats.executed[-30:]]
    assert ops == [P.Op.STEP] * 30  # one frame per control step


def test_many_inputs_in_one_step_go_ahead_as_input_frames():
    net = Network()
    for i in range(31):
        net.add_neuron(i, threshold=3)
        net.add_input(i)
    dev, board = device()
    dev.load(lower(net, CFG))
    inputs = [(i, 2, 3) for i in range(31)] + [(i, 2, 1) for i in range(31)]  # 62 beats at t = 2
    assert dev.simulate(inputs, 6).spikes == simulate(net, inputs, 6).spikes
    assert P.Op.INPUT in [op for _, op in board.stats.executed]


def test_time_unwraps_across_many_wraps_of_a_narrow_timestep():
    cfg = CoreConfig(name="t8", n_neurons=8, n_synapses=16, max_delay=4, time_bits=8)
    net = Network()
    net.add_neuron(0, threshold=5, bias=1)  # fires every 6th step
    dev, _ = device(cfg, run_chunk=100)
    dev.load(lower(net, cfg))
    res = dev.simulate([], 1000)
    assert res.spikes == simulate(net, [], 1000).spikes and len(res.spikes) > 150
    assert dev.step([], 300) and dev.timestep == 1300


def test_a_lost_final_reply_is_recovered_without_running_twice():
    drop = {"n": 0}

    def tap(reply: bytes) -> bytes:
        r = P.decode_reply(reply[:-1])
        if r.op == P.Op.STEP and r.status == P.Status.OK and drop["n"] < 3:
            drop["n"] += 1
            return b""  # lost on the line
        return reply

    net = random_network(5, 16, 48, max_delay=CFG.max_delay)
    inputs = random_inputs(5, net, 40)
    dev, board = device(tap=tap)
    img = lower(net, CFG)
    dev.load(img)
    assert dev.simulate(inputs, 40).spikes == simulate(net, inputs, 40).spikes
    assert drop["n"] == 3 and board.stats.duplicates == 3 and dev.stats.duplicates == 3
    runs = [op for _, op in board.stats.executed if op in (P.Op.STEP, P.Op.RUN)]
    wanted = [c for c in run_commands(img, inputs, 40) if c.op == Opcode.RUN]  # one STEP each
    assert len(runs) == len(wanted) > 3


def test_lost_spike_stream_raises_state_advanced_and_reset_recovers():
    state = {"armed": True}

    def tap(reply: bytes) -> bytes:
        r = P.decode_reply(reply[:-1])
        if state["armed"] and r.status == P.Status.MORE:
            state["armed"] = False
            return b""
        return reply

    net = busy_net()
    dev, board = device(tap=tap)
    dev.load(lower(net, CFG))
    dev.reset()
    with pytest.raises(StateAdvancedError, match=r"sent 200 spikes, but 138 arrived.*reset\(\)"):
        dev.run(10)
    assert board.core.timestep == 10  # it did run, once
    assert dev.simulate([], 10).spikes == simulate(net, [], 10).spikes
    # simulate() knows the whole run: it runs it again by itself when spikes are lost
    state["armed"] = True
    assert dev.simulate([], 10).spikes == simulate(net, [], 10).spikes
    assert not state["armed"]


def test_an_image_for_another_core_is_refused_naming_both():
    net = random_network(1, 8, 10, max_delay=8)
    dev, board = device()
    with pytest.raises(WrongCoreError, match=r"image is for core 'small'.*board carries core 'tiny'"):
        dev.load(lower(net, preset("small")))
    assert board.stats.executed == []  # nothing was sent


def test_another_host_in_between_is_detected_and_the_session_reopened():
    board = EmuBoard(CFG, model_line=False)
    a = Device(EmuSerial(board), timeout=0.05)
    a.load(lower(busy_net(3), CFG))
    b = Device(EmuSerial(board), timeout=0.05)  # IDENTIFY with seq 0: the board's last is 0
    b._seq = 77
    b.identify()
    with pytest.raises(DeviceError, match="another host"):
        a.reset()
    a.reset()  # re-opens the session with IDENTIFY, then works
    assert a.step([], 2)


def test_loopback_is_not_a_board():
    t0 = time.monotonic()
    with pytest.raises(NotABoardError, match="loopback"):
        Device.open("loop://", timeout=0.05, retries=2)
    assert time.monotonic() - t0 < 5


def test_a_silent_port_times_out_within_the_bound():
    master, slave = os.openpty()
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match="no valid reply to IDENTIFY after 3 tries"):
            Device.open(os.ttyname(slave), timeout=0.1, retries=2)
        assert time.monotonic() - t0 < 3
    finally:
        os.close(master)
        os.close(slave)


def test_a_port_that_does_not_exist_is_named():
    with pytest.raises(DeviceError, match="cannot open port '/dev/nonexistent-spikeforge'"):
        Device.open("/dev/nonexistent-spikeforge")


def test_bad_arguments_are_named():
    dev, _ = device()
    with pytest.raises(DeviceError, match="load"):
        dev.step([(0, 1)], 1)
    dev.load(lower(busy_net(3), CFG))
    with pytest.raises(ValueError, match="input_index = 4 is out of range"):
        dev.step([(4, 1)], 1)
    with pytest.raises(ValueError, match="steps = -1"):
        dev.step([], -1)
    with pytest.raises(ValueError, match="timeout"):
        Device(EmuSerial(EmuBoard(CFG)), timeout=0)


def test_load_over_a_pty_with_the_line_model_runs_near_line_rate():
    """A smoke check of the pipelined load (the measured figure is `spikeforge bench link`)."""
    net = random_network(2, 32, 256, max_delay=CFG.max_delay)
    with serve(CFG, port="pty", baud=115200) as sb, Device.open(sb.url) as dev:
        rep = dev.load(lower(net, CFG))
        assert rep.frames > 1 and 0.5 < rep.payload_fraction <= 1.0
        assert dev.window == 4


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def files(tmp_path):
    net = random_network(11, 20, 60, max_delay=CFG.max_delay)
    netf = tmp_path / "net.json"
    save_network(net, netf)
    inf = tmp_path / "in.json"
    inf.write_text(json.dumps([list(e) for e in random_inputs(11, net, 50)]))
    return netf, inf


def test_cli_run_prints_what_simulate_prints(files, capsys):
    netf, inf = files
    with serve(CFG, port="pty", model_line=False) as sb:
        for extra in (["--json"], []):
            assert main(["simulate", str(netf), "--inputs", str(inf), "--steps", "50", *extra]) == 0
            want = capsys.readouterr().out
            assert main(["run", str(netf), "--port", sb.url, "--inputs", str(inf), "--steps", "50", *extra]) == 0
            assert capsys.readouterr().out == want


def test_cli_deploy_then_run_without_reloading(files, tmp_path, capsys):
    netf, inf = files
    img = tmp_path / "net.image.json"
    assert main(["image", str(netf), "--target", "tiny", "-o", str(img)]) == 0
    capsys.readouterr()
    with serve(CFG, port="tcp:0", model_line=False) as sb:
        assert main(["deploy", str(img), "--port", sb.url, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["core"] == "tiny" and doc["beats"] > 0 and doc["frames"] >= 1
        n_exec = len(sb.board.stats.executed)
        assert main(["run", str(img), "--no-load", "--port", sb.url, "--inputs", str(inf), "--steps", "50",
                     "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert not any(op == P.Op.LOAD for _, op in sb.board.stats.executed[n_exec:])
    assert main(["simulate", str(netf), "--inputs", str(inf), "--steps", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == got


def test_cli_deploy_refuses_an_image_for_another_core(files, tmp_path, capsys):
    netf, _ = files
    img = tmp_path / "small.image.json"
    assert main(["image", str(netf), "--target", "small", "-o", str(img)]) == 0
    capsys.readouterr()
    with serve(CFG, port="pty", model_line=False) as sb:
        assert main(["deploy", str(img), "--port", sb.url]) == 2
    err = capsys.readouterr().err
    assert "core 'small'" in err and "core 'tiny'" in err


def test_cli_run_needs_the_network(capsys):
    assert main(["run", "--port", "loop://", "--steps", "5"]) == 2
    assert "needs the NETWORK" in capsys.readouterr().err


def test_flash_dry_run_prints_the_command(tmp_path, capsys):
    bit = tmp_path / "top.bin"
    assert main(["flash", str(bit), "--target", "icebreaker", "--dry-run"]) == 0
    out = capsys.readouterr().out.split()
    assert out[0].endswith(("openFPGALoader", "iceprog")) and out[-1] == str(bit)
    assert main(["flash", str(tmp_path / "top.bit"), "--target", "ulx3s-85f", "--sram", "--dry-run"]) == 0
    assert capsys.readouterr().out.split()[1:] == ["-b", "ulx3s", str(tmp_path / "top.bit")]


def test_flash_command_choice():
    none = lambda name: None  # noqa: E731 - a which() that finds nothing
    only_iceprog = lambda name: "/opt/bin/iceprog" if name == "iceprog" else None  # noqa: E731
    assert flash_command("a.bin", "icebreaker", which=none) == ["openFPGALoader", "-b", "icebreaker", "-f", "a.bin"]
    assert flash_command("a.bin", "icebreaker", which=only_iceprog) == ["/opt/bin/iceprog", "a.bin"]
    assert flash_command("a.bin", "icebreaker", which=only_iceprog, sram=True) == ["/opt/bin/iceprog", "-S", "a.bin"]
    with pytest.raises(ValueError, match="'.bit' file"):
        flash_command("a.bin", "ulx3s-85f", which=none)
    with pytest.raises(ValueError, match="--tool iceprog cannot program ulx3s-85f"):
        flash_command("a.bit", "ulx3s-85f", tool="iceprog", which=none)


def test_flash_without_a_programmer_says_how_to_install(tmp_path, capsys, monkeypatch):
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\xff" * 64)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["flash", str(bit), "--target", "icebreaker"]) == 1
    err = capsys.readouterr().err
    assert "openFPGALoader or iceprog is not on PATH" in err and "apt install openfpgaloader" in err
    assert "--dry-run" in err


def test_flash_runs_the_programmer(tmp_path, capsys, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "args.txt"
    tool = bindir / "openFPGALoader"
    tool.write_text(f"#!{sys.executable}\nimport sys\nopen({str(log)!r}, 'w').write(' '.join(sys.argv[1:]))\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\xff" * 64)
    monkeypatch.setenv("PATH", str(bindir))
    assert main(["flash", str(bit), "--target", "ulx3s-85f"]) == 0
    assert log.read_text() == f"-b ulx3s -f {bit}"
    assert "flashed" in capsys.readouterr().out


def test_board_sim_emulated_serves_a_pty_the_cli_can_use(files, capsys):
    import signal
    import subprocess

    netf, inf = files
    exe = os.path.join(os.path.dirname(sys.executable), "spikeforge")
    proc = subprocess.Popen([exe, "board-sim", "--target", "tiny", "--emulated"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().startswith("emulated board: core 'tiny'")
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/")
        assert main(["run", str(netf), "--port", path, "--inputs", str(inf), "--steps", "30", "--json"]) == 0
        got = capsys.readouterr().out
        assert main(["simulate", str(netf), "--inputs", str(inf), "--steps", "30", "--json"]) == 0
        assert capsys.readouterr().out == got
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert json.loads(out.strip().splitlines()[-1])["emulated_board"]["executed"] > 0


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_line_faults_in_process_never_give_a_wrong_result(seed):
    """Deterministic, thread-free fault fuzz: every byte each way may be dropped, flipped or
    doubled; every call returns the reference's result or raises a DeviceError naming the
    port, and the board runs each STEP/RUN at most once per request the host made."""
    import random

    from spikeforge.toolchain.faultcampaign import CountingDevice

    rng = random.Random(seed)

    def mangle(data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            u = rng.random()
            if u < 0.003:
                continue  # drop
            if u < 0.006:
                b ^= rng.randrange(1, 256)  # corrupt
            out.append(b)
            if 0.006 <= u < 0.009:
                out.append(b)  # duplicate
        return bytes(out)

    net = random_network(seed % 1000, 16, 48, max_delay=CFG.max_delay)
    inputs = random_inputs(seed % 1000, net, 30)
    board = EmuBoard(CFG, model_line=False)
    dev = CountingDevice(EmuSerial(board, tap=mangle, tap_in=mangle), timeout=0.01, retries=30, identify=False)
    for _ in range(3):
        try:
            if dev.info is None or dev.image is None:
                dev.identify()
                dev.load(lower(net, CFG))
            assert dev.simulate(inputs, 30).spikes == simulate(net, inputs, 30).spikes
        except DeviceError as e:
            assert str(e).startswith("emu:tiny")  # names the port
    runs = sum(1 for _, op in board.stats.executed if op in (P.Op.STEP, P.Op.RUN))
    done = dev.outcomes["completed"] + dev.outcomes["executed_lost_spikes"]
    assert done <= runs <= done + dev.outcomes["unknown"]


def test_a_babbling_port_cannot_hold_the_host():
    """A port that keeps sending valid but unrelated replies: the host still gives up in time."""

    class Babbler(EmuSerial):
        def read(self, n: int = 1) -> bytes:
            return P.encode_reply(200, P.Op.READ_COUNTERS, P.Status.OK, bytes(26))

    board = EmuBoard(CFG, model_line=False)
    dev = Device(EmuSerial(board), timeout=0.05, retries=2)
    dev.load(lower(busy_net(3), CFG))
    dev._ser = Babbler(board)
    dev._ser._rx = bytearray()
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout):
        dev.run(2)
    with pytest.raises(DeviceTimeout):
        dev.reset()
    assert time.monotonic() - t0 < 5


def test_bench_link_prints_its_figures(capsys):
    """`spikeforge bench link` (emulated board only): one JSON line per figure, the closed loop
    equal to the reference, the fault campaign with nothing wrong."""
    assert main(["bench", "link", "--target", "tiny", "--no-build", "--control-steps", "10"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    by_case = {x["case"]: x for x in lines}
    assert [x["bench"] for x in lines] == ["link"] * 3 and set(by_case) == {"load", "closed_loop", "faults"}
    assert 0 < by_case["load"]["payload_fraction_wall"] <= 1
    assert by_case["closed_loop"]["matches_reference"] is True and by_case["closed_loop"]["control_steps"] == 10
    f = by_case["faults"]
    assert f["faults"] > 0 and f["wrong"] == 0 and f["unrecovered"] == 0 and f["responsive"] is True
