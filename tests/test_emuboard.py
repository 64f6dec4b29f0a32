"""The emulated board (sim/emuboard.py): the protocol's board-side rules byte for byte, the
core against the reference model, and its pty / TCP transports."""

from __future__ import annotations

import os
import socket
import time

import pytest
import serial

from spikeforge.firmware import protocol as P
from spikeforge.hdl.config import preset
from spikeforge.hdl.driver import load_commands
from spikeforge.hdl.image import lower
from spikeforge.hdl.protocol import Command, Opcode, encode_command
from spikeforge.sim.emuboard import EmuBoard, serve
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import edge_cases, random_case
from spikeforge.toolchain.reference import simulate

CFG = preset("tiny")


def replies(board: EmuBoard, wire: bytes) -> list[P.Reply]:
    return [P.decode_reply(r[:-1]) for _, r in board.receive(wire, now=0.0)]


def req(seq: int, op: int, payload: bytes = b"") -> bytes:
    return P.encode_request(seq, op, payload)


def identify(board: EmuBoard, seq: int = 0) -> P.IdentifyInfo:
    (r,) = replies(board, req(seq, P.Op.IDENTIFY))
    assert (r.seq, r.op, r.status) == (seq, P.Op.IDENTIFY, P.Status.OK)
    return P.IdentifyInfo.unpack(r.payload)


def load(board: EmuBoard, image, seq: int) -> int:
    """Load with raw frames; returns the next seq."""
    beats = [encode_command(CFG, c) for c in load_commands(image) if c.op == Opcode.WRITE]
    per = P.beats_per_frame(CFG)
    for i in range(0, len(beats), per):
        (r,) = replies(board, req(seq, P.Op.LOAD, P.pack_beats(CFG, beats[i:i + per])))
        assert (r.seq, r.status) == (seq, P.Status.OK)
        seq = P.seq_after(seq)
    (r,) = replies(board, req(seq, P.Op.RESET))
    assert r.status == P.Status.OK
    return P.seq_after(seq)


def chain_net(n: int = 3) -> Network:
    net = Network()
    for i in range(n):
        net.add_neuron(i, threshold=1)
    for i in range(n - 1):
        net.add_synapse(i, i + 1, 1, 1)
    net.add_input(0)
    net.add_output(n - 1)
    return net


def test_identify_reports_the_config_and_opens_the_session():
    b = EmuBoard(CFG, baud=115200, rx_frames=3, model_line=False)
    info = identify(b, seq=41)
    assert info.config == CFG and info.baud == 115200 and info.rx_frames == 3
    assert b.last == 41
    (r,) = replies(b, req(42, P.Op.RESET))
    assert r.status == P.Status.OK and P.Done.unpack(r.payload) == P.Done(0, 0)


def test_duplicate_is_not_executed_again_and_out_of_sequence_is_refused():
    b = EmuBoard(CFG, model_line=False)
    identify(b, 0)
    seq = load(b, lower(chain_net(), CFG), 1)
    beat = encode_command(CFG, Command.input(CFG, 0, 1))
    frame = req(seq, P.Op.STEP, P.steps_payload(5, P.pack_beats(CFG, [beat])))
    (first,) = replies(b, frame)
    assert first.status == P.Status.OK
    done = P.Done.unpack(first.payload)
    assert done.timestep == 5 and done.count == 3  # neurons 0, 1, 2 fire at t = 0, 1, 2
    assert P.unpack_spikes(first.payload[8:]) == [(0, 0), (1, 1), (2, 2)]
    (dup,) = replies(b, frame)  # retransmission: same answer, not run again
    assert (dup.seq, dup.op, dup.status, dup.payload) == (seq, P.Op.STEP, P.Status.DUPLICATE, first.payload)
    assert b.core.timestep == 5 and b.stats.input_beats == 1 and b.stats.duplicates == 1
    (bad,) = replies(b, req(P.seq_after(seq, 2), P.Op.RUN, P.steps_payload(1)))
    assert bad.status == P.Status.BAD_SEQ and bad.payload == bytes([P.seq_after(seq)])
    assert b.core.timestep == 5
    (ok,) = replies(b, req(P.seq_after(seq), P.Op.RUN, P.steps_payload(1)))
    assert ok.status == P.Status.OK and P.Done.unpack(ok.payload).timestep == 6


def test_bad_frames_are_nakked_with_the_last_seq_and_counted():
    b = EmuBoard(CFG, model_line=False)
    identify(b, 7)
    wire = bytearray(req(8, P.Op.RUN, P.steps_payload(3)))
    wire[3] ^= 0x10
    out = replies(b, b"\x55\x66\x00" + bytes(wire))  # garbage, then a frame with a bad CRC
    assert [(r.op, r.status, r.payload) for r in out] == [
        (P.NAK_OP, P.Status.BAD_FRAME, b"\x07"), (P.NAK_OP, P.Status.BAD_CRC, b"\x07")]
    assert b.stats.frames_bad == 2 and b.core.timestep == 0
    out = replies(b, b"\x00\x00" + b"\x02\x01\x02\x00")  # empty frames ignored; COBS error
    assert [(r.op, r.status) for r in out] == [(P.NAK_OP, P.Status.BAD_FRAME)]
    c = P.Counters.unpack(replies(b, req(99, P.Op.READ_COUNTERS))[0].payload)
    assert (c.frames_bad, c.frames_ok, c.timestep) == (3, 2, 0)


@pytest.mark.parametrize("op, payload, status", [
    (0x33, b"", P.Status.UNKNOWN_OP),
    (P.Op.RUN, b"\x01", P.Status.BAD_LENGTH),
    (P.Op.LOAD, b"\x01\x02\x03", P.Status.BAD_LENGTH),
    (P.Op.RESET, bytes(8), P.Status.WRONG_CORE),
])
def test_refused_requests_name_the_problem_and_change_nothing(op, payload, status):
    b = EmuBoard(CFG, model_line=False)
    identify(b, 0)
    (r,) = replies(b, req(1, op, payload))
    assert (r.seq, r.op, r.status) == (1, op, status)
    assert b.last == 0 and b.stats.executed == []


def test_reset_with_the_right_fingerprint_is_accepted():
    b = EmuBoard(CFG, model_line=False)
    identify(b, 0)
    (r,) = replies(b, req(1, P.Op.RESET, P.fingerprint_bytes(CFG)))
    assert r.status == P.Status.OK


def test_long_spike_streams_come_in_more_frames_of_62():
    net = Network()
    for i in range(20):
        net.add_neuron(i, threshold=0, bias=1)  # every neuron fires every step
    img = lower(net, CFG)
    b = EmuBoard(CFG, model_line=False)
    identify(b, 0)
    seq = load(b, img, 1)
    out = replies(b, req(seq, P.Op.RUN, P.steps_payload(10)))  # 200 spikes
    assert [r.status for r in out] == [P.Status.MORE] * 3 + [P.Status.OK]
    assert [len(r.payload) // 4 for r in out[:3]] == [62, 62, 62]
    done = P.Done.unpack(out[-1].payload)
    spikes = [s for r in out[:3] for s in P.unpack_spikes(r.payload)] + P.unpack_spikes(out[-1].payload[8:])
    assert done.count == len(spikes) == 200
    ref = simulate(net, [], 10)
    assert sorted((t, n) for n, t in spikes) == sorted((t, n) for n, t in ref.spikes)


def test_line_model_paces_replies_and_overflows_a_flooded_buffer():
    b = EmuBoard(CFG, baud=1_000_000, rx_frames=2)
    identify(b, 0)
    frames = [req(P.seq_after(0, k + 1), P.Op.RUN, P.steps_payload(0)) for k in range(4)]
    out = b.receive(b"".join(frames), now=100.0)
    # each 8-byte frame takes 80 us; replies leave after their own line time
    assert all(t > 100.0 for t, _ in out) and [t for t, _ in out] == sorted(t for t, _ in out)
    assert out[0][0] == pytest.approx(100.0 + 8 * 10e-6 + len(out[0][1]) * 10e-6)
    assert b.stats.overflows == 0  # frames execute as they arrive: nothing waits
    b2 = EmuBoard(CFG, baud=1_000_000, rx_frames=1)
    identify(b2, 0)
    # a RUN that streams many replies keeps the board busy; frames behind it overflow
    net = Network()
    for i in range(30):
        net.add_neuron(i, threshold=0, bias=1)
    seq = load(b2, lower(net, CFG), 1)
    burst = [req(P.seq_after(seq, k), P.Op.RUN, P.steps_payload(20)) for k in range(4)]
    out2 = [P.decode_reply(r[:-1]) for _, r in b2.receive(b"".join(burst), now=1e6)]
    assert b2.stats.overflows >= 1
    assert any(r.is_nak and r.status == P.Status.OVERFLOW for r in out2)


def _model_cases():
    cases = [random_case(seed, 16, 48, steps=50, max_delay=CFG.max_delay) for seed in range(8)]
    return cases + edge_cases(CFG.potential_bits, CFG.max_delay, 16)


@pytest.mark.parametrize("case", _model_cases(), ids=lambda c: c.name)
def test_emulated_core_equals_the_reference(case):
    """Raw frames (no Device): LOAD, then one STEP per input time, spikes == reference."""
    img = lower(case.network, CFG)
    b = EmuBoard(CFG, model_line=False)
    identify(b, 0)
    seq = load(b, img, 1)
    by_t: dict[int, list[int]] = {}
    for i, t, v in case.inputs:
        by_t.setdefault(t, []).append(encode_command(CFG, Command.input(CFG, img.inputs[i], v)))
    spikes = []
    t = 0
    while t < case.steps:
        nxt = min([u for u in by_t if u > t] + [case.steps])
        out = replies(b, req(seq, P.Op.STEP, P.steps_payload(nxt - t, P.pack_beats(CFG, by_t.get(t, [])))))
        seq = P.seq_after(seq)
        assert out[-1].status == P.Status.OK
        spikes += [s for r in out[:-1] for s in P.unpack_spikes(r.payload)] + P.unpack_spikes(out[-1].payload[8:])
        t = nxt
    ref = simulate(case.network, case.inputs, case.steps)
    got = sorted((t, img.neuron_ids[n]) for n, t in spikes)
    assert got == sorted((t, i) for i, t in ref.spikes)


def test_served_on_a_real_pty_and_on_tcp():
    for port in ("pty", "tcp:0"):
        with serve(CFG, port=port, model_line=False) as sb:
            ser = serial.serial_for_url(sb.url, timeout=2)
            ser.write(req(5, P.Op.IDENTIFY))
            data = b""
            t0 = time.monotonic()
            while not data.endswith(b"\x00") and time.monotonic() - t0 < 5:
                data += ser.read(1)
            ser.close()
            info = P.IdentifyInfo.unpack(P.decode_reply(data[:-1]).payload)
            assert info.config == CFG
            if port == "pty":
                assert sb.path.startswith("/dev/") and os.path.exists(sb.path)
            else:
                assert sb.url.startswith("socket://127.0.0.1:")


def test_board_recovers_from_a_host_that_vanishes_mid_frame():
    with serve(CFG, port="tcp:0", model_line=False) as sb:
        with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as s:
            half = req(1, P.Op.RUN, P.steps_payload(3))
            s.sendall(half[: len(half) // 2])  # ... and the host disappears
        time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as s:
            s.sendall(req(9, P.Op.IDENTIFY))  # no leading 0x00: the partial frame swallows it
            s.sendall(req(9, P.Op.IDENTIFY))
            data = b""
            t0 = time.monotonic()
            while data.count(b"\x00") < 2 and time.monotonic() - t0 < 5:
                data += s.recv(4096)
        out = [P.decode_reply(f) for f in data.split(b"\x00")[:2]]
        assert out[0].is_nak  # the half frame + the first IDENTIFY: one bad frame
        assert out[1].op == P.Op.IDENTIFY and out[1].status == P.Status.OK
        assert sb.board.core.timestep == 0  # the half RUN never ran


def test_serve_rejects_bad_ports():
    with pytest.raises(ValueError, match="allowed: 'pty' or 'tcp:PORT'"):
        serve(CFG, port="udp:5")
    with pytest.raises(ValueError, match="0..65535"):
        serve(CFG, port="tcp:99999")
