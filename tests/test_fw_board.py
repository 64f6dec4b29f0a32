"""The whole board design (UART → frames → command engine → core → replies → UART) under
amaranth.sim on the ``tiny`` core, bit by bit on the UART pins, against the emulated board
(the protocol's executable model) and the reference model."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.firmware import protocol as proto
from spikeforge.firmware.top import BoardCore
from spikeforge.hdl.config import preset
from spikeforge.hdl.driver import collect_result, load_commands, run_commands
from spikeforge.hdl.image import lower
from spikeforge.hdl.protocol import encode_command
from spikeforge.sim.emuboard import EmuBoard
from spikeforge.toolchain.netgen import random_case
from spikeforge.toolchain.reference import simulate

DIV = 4  # clocks per UART bit: the fastest the receiver allows, so the simulation is short
CLOCK_HZ = 4_000_000
BAUD = CLOCK_HZ // DIV
TINY = preset("tiny")


def run_board(chunks: list[bytes], expect: list[int] | None = None, *, idle_clocks: int = 600,
              idle_timeout_s: float = 0.0, gap_clocks: int = 0, max_wait: int = 200_000) -> bytes:
    """Send each chunk of bytes bit by bit on ``rx``; after chunk ``k`` wait until ``expect[k]``
    more reply frames have arrived (at most ``max_wait`` clocks), then until ``tx`` has been idle
    for ``idle_clocks``; return every byte seen on ``tx``."""
    dut = BoardCore(TINY, clock_hz=CLOCK_HZ, baud=BAUD, idle_timeout_s=idle_timeout_s)
    out = bytearray()
    state = {"quiet": 0}

    async def host(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(8)
        for k, chunk in enumerate(chunks):
            frames = out.count(0)
            for b in chunk:
                for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(DIV)
            if gap_clocks:
                await ctx.tick().repeat(gap_clocks)
            waited = 0
            while expect and out.count(0) < frames + expect[k] and waited < max_wait:
                await ctx.tick()
                waited += 1
            state["quiet"] = 0
            while state["quiet"] < idle_clocks:
                await ctx.tick()

    async def listener(ctx):
        # a software UART receiver on tx, sampling mid-bit
        while True:
            _c, _r, line = await ctx.tick().sample(dut.tx)
            if line:
                state["quiet"] += 1
                continue
            state["quiet"] = 0
            await ctx.tick().repeat(DIV // 2)
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(DIV)
                byte |= ctx.get(dut.tx) << i
            await ctx.tick().repeat(DIV)
            assert ctx.get(dut.tx) == 1, "stop bit"
            out.append(byte)
            await ctx.tick().repeat(DIV // 2 - 1)

    sim = Simulator(dut)
    sim.add_clock(1 / CLOCK_HZ)
    sim.add_testbench(host)
    sim.add_testbench(listener, background=True)
    sim.run()
    return bytes(out)


def replies(wire: bytes) -> list[proto.Reply]:
    dec = proto.FrameDecoder()
    return [proto.decode_reply(f) for f in dec.feed(wire)]


def comparable(r: proto.Reply) -> tuple:
    """What must agree between the gateware and the emulated board (IDENTIFY's build fields and
    the cycle counter legitimately differ)."""
    p = r.payload
    if r.op == proto.Op.IDENTIFY and r.status == proto.Status.OK:
        p = proto.IdentifyInfo.unpack(p).config.fingerprint().encode()
    elif r.op == proto.Op.READ_COUNTERS and r.status == proto.Status.OK:
        c = proto.Counters.unpack(p)
        p = proto.Counters(**{**c.__dict__, "cycles": 0}).pack()
    return (r.seq, r.op, r.status, p)


def emulate(chunks: list[bytes]) -> tuple[list[proto.Reply], list[int]]:
    """The emulated board's replies to ``chunks`` and how many reply frames each chunk earns."""
    emu = EmuBoard(TINY, model_line=False)
    out, per = [], []
    for c in chunks:
        rs = [r for _t, data in emu.receive(c) for r in replies(data)]
        out += rs
        per.append(len(rs))
    return out, per


def test_board_identify_and_protocol_errors_match_emulator():
    """IDENTIFY, unknown op, bad length, bad seq, duplicate, empty run, garbage (NAK), a bad
    CRC, WRONG_CORE, RESET after a run, counters: the gateware's replies equal the emulated
    board's."""
    req = proto.encode_request
    bad_crc = bytearray(req(3, proto.Op.RUN, b"\x01\x00"))
    bad_crc[2] ^= 0x40
    chunks = [
        req(7, proto.Op.IDENTIFY),
        req(8, 0x33),
        req(8, proto.Op.RUN, b"\x01"),
        req(9, proto.Op.RUN, b"\x00\x00"),
        req(8, proto.Op.RUN, b"\x00\x00"),
        req(8, proto.Op.RUN, b"\x00\x00"),
        b"\x17\x99\x00",
        bytes(bad_crc),
        req(9, proto.Op.RESET, b"\x00" * 8),
        req(9, proto.Op.RESET, proto.fingerprint_bytes(TINY)),
        req(10, proto.Op.RUN, b"\x05\x00"),
        req(11, proto.Op.RESET),  # its Done must say timestep 0 (the clear has finished)
        req(12, proto.Op.READ_COUNTERS),
    ]
    want, per = emulate(chunks)
    got = replies(run_board(chunks, per))
    assert [comparable(r) for r in got] == [comparable(r) for r in want]
    info = proto.IdentifyInfo.unpack(got[0].payload)
    assert (info.config, info.baud, info.clock_hz, info.rx_frames) == (TINY, BAUD, CLOCK_HZ, 2)


def test_board_runs_network_like_reference():
    """LOAD (several frames), RESET, STEPs with inputs and a retransmitted STEP (DUPLICATE with its
    spikes) through the UART: replies == the emulated board's, spikes == the reference's."""
    case = random_case(8, 6, 14, steps=12, max_delay=4, threshold_range=(0, 4), weight_range=(-2, 8))
    img = lower(case.network, TINY)
    ins = case.inputs
    ref = simulate(case.network, ins, steps=12)
    cmds = load_commands(img) + run_commands(img, ins, 12)
    # one request per command group: LOADs of the writes, then INPUT/RUN as the host would
    beats = [encode_command(TINY, c) for c in cmds]
    req, chunks, seq = proto.encode_request, [], 0
    load = [b for b, c in zip(beats, cmds, strict=True) if c.op.name == "WRITE"]
    per = proto.beats_per_frame(TINY)
    chunks.append(req(seq, proto.Op.IDENTIFY))
    for k in range(0, len(load), per):
        seq += 1
        chunks.append(req(seq, proto.Op.LOAD, proto.pack_beats(TINY, load[k:k + per])))
    seq += 1
    chunks.append(req(seq, proto.Op.RESET))
    pend: list[int] = []
    for b, c in zip(beats, cmds, strict=True):
        if c.op.name == "INPUT":
            pend.append(b)
        elif c.op.name == "RUN":
            seq += 1
            chunks.append(req(seq, proto.Op.STEP, proto.steps_payload(c.data, proto.pack_beats(TINY, pend))))
            pend = []
    chunks.append(chunks[-1])  # a retransmission: DUPLICATE re-sends the final reply, spikes included
    want, per = emulate(chunks)
    got = replies(run_board(chunks, per))
    assert [comparable(r) for r in got] == [comparable(r) for r in want]
    spikes = []
    t0 = 0
    for r in got:
        if r.op == proto.Op.STEP and r.status in (proto.Status.OK, proto.Status.MORE):
            data = r.payload if r.status == proto.Status.MORE else r.payload[proto.DONE_BYTES:]
            spikes += [(n, proto.unwrap_time(t, t0, 16)) for n, t in proto.unpack_spikes(data)]
            if r.status == proto.Status.OK:
                t0 = proto.Done.unpack(r.payload).timestep
    res = collect_result(img, spikes, 12)
    assert res.spikes == ref.spikes
    assert len(ref.spikes) > 10, "the case must fire"


@pytest.mark.slow
def test_board_random_garbage_then_identify():
    """Random bytes on the UART, then the board still answers IDENTIFY (after a 0x00)."""
    rng = random.Random(5)
    junk = bytes(rng.randrange(256) for _ in range(300))
    got = replies(run_board([junk, b"\x00" + proto.encode_request(1, proto.Op.IDENTIFY)]))
    assert got[-1].op == proto.Op.IDENTIFY and got[-1].status == proto.Status.OK
    assert all(r.is_nak for r in got[:-1])
