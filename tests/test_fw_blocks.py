"""Gateware blocks of the board firmware (UART, COBS, CRC, frame buffer) under amaranth.sim,
each against the software model of the protocol (``rtl(x) == ref(x)``)."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.firmware import protocol as proto
from spikeforge.firmware.framing import CobsDecoder, FrameReceiver, FrameSender
from spikeforge.firmware.uart import UartError, UartRx, UartTx, uart_divisor

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- UART
def _run_rx(m, rx, bench):
    """Run ``bench`` on design ``m``; collect the bytes and framing errors of receiver ``rx``."""
    got: list[int] = []
    errors: list[int] = []

    async def sink(ctx):
        ctx.set(rx.data.ready, 1)
        async for _c, _r, valid, payload, fe in ctx.tick().sample(rx.data.valid, rx.data.payload, rx.framing_error):
            if valid:
                got.append(payload)
            if fe:
                errors.append(1)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(sink, background=True)
    sim.run()
    return got, errors


def test_uart_divisor_errors():
    assert uart_divisor(36e6, 3_000_000) == 12
    assert uart_divisor(36e6, 115_200) == 312
    with pytest.raises(UartError, match="too fast"):
        uart_divisor(12e6, 4_000_000)
    with pytest.raises(UartError, match="off"):
        uart_divisor(12e6, 2_600_000)  # divisor 4.6 -> 5: 2.4 Mbaud, 7.7 % off
    with pytest.raises(UartError, match="baud = 0"):
        uart_divisor(12e6, 0)


@pytest.mark.parametrize("divisor", [4, 7, 12])
def test_uart_loopback(divisor):
    """TX -> line -> RX: every byte value arrives, back to back, with no framing error."""
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = list(range(256)) + [0x55, 0x00, 0xFF]

    async def bench(ctx):
        for b in sent:
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    got, errors = _run_rx(m, rx, bench)
    assert got == sent
    assert not errors


def test_uart_rx_baud_mismatch_and_glitch():
    """The receiver samples mid-bit: a 3.5 % slower or faster sender still decodes; a 1-clock glitch on an
    idle line and a broken stop bit produce no byte and leave it working."""
    div = 16
    m = Module()
    m.submodules.rx = rx = UartRx(div)

    async def bench(ctx):
        async def send(byte, speed, stop=1):  # speed: sender's bit time / the receiver's
            bits = [0] + [(byte >> i) & 1 for i in range(8)] + [stop]
            for k, bit in enumerate(bits):
                ctx.set(rx.rx, bit)
                await ctx.tick().repeat(round((k + 1) * div * speed) - round(k * div * speed))
            ctx.set(rx.rx, 1)
            await ctx.tick().repeat(2 * div)

        ctx.set(rx.rx, 0)  # glitch
        await ctx.tick()
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(3 * div)
        await send(0xA5, 1.035)
        await send(0x3C, 1.0, stop=0)
        await ctx.tick().repeat(4 * div)
        await send(0x81, 0.965)

    got, fe = _run_rx(m, rx, bench)
    assert got == [0xA5, 0x81]
    assert len(fe) == 1


# ----------------------------------------------------------------------------- COBS
CRC_PARAMS = proto.CRC_ALGORITHM(8)


def _seal(body: bytes) -> bytes:
    """The host's framing of a body: COBS(body + crc16 little-endian) + 0x00."""
    return proto.cobs_encode(body + proto.crc16(body).to_bytes(2, "little")) + b"\x00"


def _send_rtl(body: bytes, start: int = 5, ready_prob: float = 1.0, seed: int = 0) -> bytes:
    m = Module()
    m.submodules.mem = mem = Memory(shape=8, depth=512, init=[0] * start + list(body))
    m.submodules.snd = snd = FrameSender(CRC_PARAMS, 9)
    rd, wr = mem.read_port(transparent_for=()), mem.write_port()
    m.d.comb += [rd.addr.eq(snd.rd_addr), snd.rd_data.eq(rd.data), wr.en.eq(snd.wr_en),
                 wr.addr.eq(snd.wr_addr), wr.data.eq(snd.wr_data)]
    out: list[int] = []
    rng = random.Random(seed)

    async def bench(ctx):
        await ctx.tick()
        ctx.set(snd.start, start)
        ctx.set(snd.length, len(body))
        ctx.set(snd.go, 1)
        await ctx.tick()
        ctx.set(snd.go, 0)
        await ctx.tick()
        await ctx.tick().until(~snd.busy)

    async def sink(ctx):
        async for _c, _r, valid, ready, payload in ctx.tick().sample(snd.wire.valid, snd.wire.ready, snd.wire.payload):
            if valid and ready:
                out.append(payload)
            ctx.set(snd.wire.ready, int(rng.random() < ready_prob))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(sink, background=True)
    sim.run()
    return bytes(out)


EDGE_BODIES = [b"\x00", b"\x01", b"\x00\x00", bytes(range(1, 252)), bytes(251), b"\x11\x00\x22",
               bytes([7] * 250) + b"\x00", b"\x00" + bytes([5] * 250)]


@pytest.mark.parametrize("body", EDGE_BODIES, ids=range(len(EDGE_BODIES)))
def test_frame_sender_edges(body):
    assert _send_rtl(body) == _seal(body)


@FAST
@given(st.binary(min_size=1, max_size=proto.MAX_BODY - proto.CRC_BYTES), st.floats(0.2, 1.0),
       st.integers(0, 255))
def test_frame_sender_random(body, ready_prob, start):
    assert _send_rtl(body, start, ready_prob) == _seal(body)


def _decode_rtl(wire: bytes) -> list[tuple[bytes, bool]]:
    dut = CobsDecoder()
    frames: list[tuple[bytes, bool]] = []
    cur: list[int] = []

    async def bench(ctx):
        for b in wire:
            ctx.set(dut.wire.payload, b)
            ctx.set(dut.wire.valid, 1)
            _, _, dv, d, end, ok = await ctx.tick().sample(dut.data_valid, dut.data, dut.end, dut.ok)
            if dv:
                cur.append(d)
            if end:
                frames.append((bytes(cur), bool(ok)))
                cur.clear()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return frames


@FAST
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=3))
def test_cobs_decoder_roundtrip(bodies):
    wire = b"".join(proto.cobs_encode(b) + b"\x00" for b in bodies)
    got = _decode_rtl(wire)
    assert [g for g, ok in got if ok] == [b for b in bodies]


@FAST
@given(st.binary(min_size=1, max_size=60))
def test_cobs_decoder_garbage_matches_ref(junk):
    """Any byte string: the decoder agrees with the software decoder on which frames are
    well-formed and on their contents."""
    wire = junk + b"\x00"
    for (got, ok), chunk in zip(_decode_rtl(wire), wire.split(b"\x00")[:-1], strict=True):
        try:
            want = proto.cobs_decode(chunk) if chunk else None
        except proto.ProtocolError:
            want = None
        assert ok == (want is not None), chunk
        if ok:
            assert got == want


# ----------------------------------------------------------------------------- frames
def _receive_rtl(wire: bytes, *, max_body=255, depth=512, gaps=9, idle_timeout=0,
                 ready_prob=1.0, tail=b"") -> tuple[list[bytes], int, int]:
    """Feed ``wire`` (one byte per ``gaps + 1`` clocks, as from a UART; then, after a silence of
    3 idle timeouts, ``tail``) to a FrameReceiver;
    return the committed bodies and the ok / bad counters."""
    dut = FrameReceiver(CRC_PARAMS, max_body=max_body, depth=depth, idle_timeout=idle_timeout)
    frames: list[bytes] = []
    cur: list[int] = []
    rng = random.Random(1)
    res = {"ok": 0, "bad": 0}

    async def bench(ctx):
        async def feed(data):
            for b in data:
                ctx.set(dut.wire.payload, b)
                ctx.set(dut.wire.valid, 1)
                await ctx.tick()
                ctx.set(dut.wire.valid, 0)
                if gaps:
                    await ctx.tick().repeat(gaps)

        await feed(wire)
        await ctx.tick().repeat(3 * idle_timeout + 5)
        await feed(tail)
        await ctx.tick().repeat(4 * (len(wire) + len(tail)) + 50)

    async def counters(ctx):
        async for _c, _r, ok, drop, kind in ctx.tick().sample(dut.ok, dut.drop, dut.drop_kind):
            res["ok"] += ok
            res["bad"] += drop and kind != 2

    async def sink(ctx):
        async for _c, _r, valid, ready, payload in ctx.tick().sample(dut.frame.valid, dut.frame.ready,
                                                                      dut.frame.payload):
            if valid and ready:
                cur.append(payload.data)
                if payload.last:
                    frames.append(bytes(cur))
                    cur.clear()
            ctx.set(dut.frame.ready, int(rng.random() < ready_prob))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_testbench(sink, background=True)
    sim.add_testbench(counters, background=True)
    sim.run()
    return frames, res["ok"], res["bad"]


def _model_receive(wire: bytes) -> tuple[list[bytes], int]:
    """What the protocol's software decoder accepts from ``wire`` (bodies without CRC) and
    how many non-empty frames it rejects."""
    good, bad = [], 0
    for chunk in wire.split(b"\x00")[:-1]:
        if not chunk:
            continue
        try:
            r = proto.decode_request(chunk)
        except proto.FrameError:
            bad += 1
            continue
        good.append(bytes([r.seq, r.op]) + r.payload)
    return good, bad


@FAST
@given(st.lists(st.one_of(st.binary(min_size=0, max_size=proto.MAX_PAYLOAD).map(lambda p: ("ok", p)),
                          st.binary(min_size=1, max_size=40).map(lambda g: ("junk", g))),
                min_size=1, max_size=5),
       st.floats(0.3, 1.0))
def test_frame_receiver_vs_host_decoder(items, ready_prob):
    """Valid frames mixed with garbage (each garbage run ends at a 0x00): the receiver commits
    exactly the frames the host's decoder accepts, in order, and counts the others."""
    wire = b""
    for k, (kind, blob) in enumerate(items):
        wire += proto.encode_request(k & 0xFF, 0x03, blob) if kind == "ok" else blob + b"\x00"
    want, want_bad = _model_receive(wire)
    got, n_ok, n_bad = _receive_rtl(wire, max_body=proto.MAX_BODY - proto.CRC_BYTES, ready_prob=ready_prob,
                                    gaps=9)
    assert got == want
    assert (n_ok, n_bad) == (len(want), want_bad)


def test_frame_receiver_overflow():
    """The engine reads nothing: two whole maximum frames fit, the third is dropped as an
    overflow (and counted apart from bad frames)."""
    frames = [proto.encode_request(k, 0x03, bytes([k + 1]) * proto.MAX_PAYLOAD) for k in range(3)]
    wire = b"".join(frames)
    got, n_ok, n_bad = _receive_rtl(wire, max_body=proto.MAX_BODY - proto.CRC_BYTES, ready_prob=0.0)
    assert (got, n_ok, n_bad) == ([], 2, 0)


def test_frame_receiver_timeout_drops_partial_frame():
    """A host that vanishes mid-frame: after the idle timeout the partial frame is dropped, so
    the next host's first frame is received whole (no delimiter needed in between)."""
    good = proto.encode_request(9, 0x01)
    wire = proto.encode_request(1, 0x03, b"\x05" * 30)[:12]
    got, n_ok, n_bad = _receive_rtl(wire, idle_timeout=50, tail=good, max_body=251)
    assert got == [bytes([9, 1])]
    assert (n_ok, n_bad) == (1, 1)
    # without the timeout the same bytes merge into one bad frame (the 0x00 resynchronises)
    got, n_ok, n_bad = _receive_rtl(wire, tail=good, max_body=251)
    assert (got, n_ok, n_bad) == ([], 0, 1)
