"""The framed serial protocol (firmware/protocol.py): CRC, COBS, frames, payload layouts, and a
hypothesis fuzz of the host-side parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import crc as amcrc
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.firmware import protocol as P
from spikeforge.hdl.config import PRESETS, CoreConfig, preset
from spikeforge.hdl.protocol import Opcode, pack_command

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- CRC
def test_crc_is_the_amaranth_catalog_algorithm():
    assert P.CRC_ALGORITHM is amcrc.catalog.CRC16_IBM_SDLC
    assert P.crc16(b"123456789") == 0x906E  # the catalogue's check value
    assert P.crc16(b"123456789") == P.CRC_ALGORITHM(8).compute(b"123456789")


@FAST
@given(st.binary(max_size=300))
def test_crc_table_equals_amaranth_compute(data):
    assert P.crc16(data) == P.CRC_ALGORITHM(8).compute(data)
    # continuing a running CRC equals one pass
    k = len(data) // 2
    assert P.crc16(data[k:], P.crc16(data[:k])) == P.crc16(data)


@FAST
@given(st.binary(min_size=1, max_size=P.MAX_BODY - 2))
def test_crc_of_a_valid_body_is_the_constant_residue(data):
    body = data + P.crc16(data).to_bytes(2, "little")
    assert P.crc16(body) == P.CRC_GOOD == 0x0F47
    assert P.CRC_RESIDUE == P.CRC_ALGORITHM(8).residue() == 0xF0B8


@FAST
@given(st.binary(min_size=2, max_size=P.MAX_BODY - 2), st.integers(1, 8))
def test_zero_bytes_appended_to_a_valid_body_are_detected(data, k):
    """The weakness of zero-residue CRCs (found by the fault campaign) is not ours."""
    body = data + P.crc16(data).to_bytes(2, "little")
    assert P.crc16(body + bytes(k)) != P.CRC_GOOD
    frame = P.cobs_encode(body) + b"\x01"  # a stray COBS code before the delimiter
    with pytest.raises(P.FrameError):
        P.decode_request(frame)


@FAST
@given(st.binary(min_size=3, max_size=P.MAX_BODY - 2), st.data())
def test_crc_detects_every_single_byte_error_in_a_body(data, draw):
    body = bytearray(data + P.crc16(data).to_bytes(2, "little"))
    i = draw.draw(st.integers(0, len(body) - 1))
    body[i] ^= draw.draw(st.integers(1, 255))
    assert P.crc16(body) != P.CRC_GOOD


def test_crc_gateware_match_detected_on_a_frame_body():
    """What the gateware does: feed every body byte (CRC included) to crc.Processor and check
    ``match_detected`` at the end."""
    body = P.cobs_decode(P.encode_request(9, P.Op.RUN, P.steps_payload(300))[:-1])
    m = Module()
    m.submodules.crc = proc = amcrc.Processor(P.CRC_ALGORITHM(8))
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        ctx.set(proc.start, 1)
        await ctx.tick()
        ctx.set(proc.start, 0)
        for b in body:
            ctx.set(proc.data, b)
            ctx.set(proc.valid, 1)
            await ctx.tick()
        ctx.set(proc.valid, 0)
        await ctx.tick()
        seen.append((ctx.get(proc.match_detected), ctx.get(proc.crc)))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [(1, P.CRC_GOOD)]


# ----------------------------------------------------------------------------- COBS
@FAST
@given(st.binary(max_size=600))
def test_cobs_round_trip_and_no_zero(data):
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert P.cobs_decode(enc) == data


@FAST
@given(st.binary(max_size=P.MAX_BODY))
def test_cobs_of_a_body_is_one_byte_longer_and_never_uses_code_ff(data):
    enc = P.cobs_encode(data)
    assert len(enc) == len(data) + 1 == P.encoded_size(len(data)) - 1
    i = 0
    while i < len(enc):  # walk the code chain
        assert enc[i] != 0xFF
        i += enc[i]
    assert i == len(enc)


@pytest.mark.parametrize("bad, why", [
    (b"", "empty"),
    (b"\x03\x01\x00", "zero byte"),
    (b"\x05\x01\x02", "runs past the end"),
])
def test_cobs_decode_errors_name_the_problem(bad, why):
    with pytest.raises(P.FrameError, match=why):
        P.cobs_decode(bad)


# ----------------------------------------------------------------------------- frames
@FAST
@given(st.integers(0, 255), st.sampled_from(list(P.Op)), st.binary(max_size=P.MAX_PAYLOAD))
def test_request_round_trip(seq, op, payload):
    wire = P.encode_request(seq, op, payload)
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert len(wire) <= P.MAX_ENCODED + 1
    assert P.decode_request(wire[:-1]) == P.Request(seq, op, payload)


@FAST
@given(st.integers(0, 255), st.sampled_from([*P.Op, P.NAK_OP]), st.sampled_from(list(P.Status)),
       st.binary(max_size=P.MAX_REPLY_PAYLOAD))
def test_reply_round_trip(seq, op, status, payload):
    wire = P.encode_reply(seq, op, status, payload)
    r = P.decode_reply(wire[:-1])
    assert (r.seq, r.op, r.status, r.payload) == (seq, op, status, payload)
    nak_status = status in (P.Status.BAD_CRC, P.Status.BAD_FRAME, P.Status.OVERFLOW)
    assert r.is_nak == (op == P.NAK_OP and nak_status)  # 0xFF + UNKNOWN_OP answers op 0x7F


def test_frame_limits_and_errors():
    with pytest.raises(P.ProtocolError, match="too long"):
        P.encode_request(0, P.Op.LOAD, bytes(P.MAX_PAYLOAD + 1))
    with pytest.raises(P.ProtocolError, match="too long"):
        P.encode_reply(0, P.Op.RUN, P.Status.OK, bytes(P.MAX_REPLY_PAYLOAD + 1))
    with pytest.raises(P.ProtocolError, match="'seq' = 256"):
        P.encode_request(256, P.Op.RUN)
    wire = bytearray(P.encode_request(1, P.Op.RUN, b"\x01\x00"))
    wire[2] ^= 0x40
    with pytest.raises(P.FrameError, match="CRC mismatch") as e:
        P.decode_request(bytes(wire[:-1]))
    assert e.value.kind == P.Status.BAD_CRC
    with pytest.raises(P.FrameError, match="too short"):
        P.decode_request(P.cobs_encode(b"\x01\x02"))
    with pytest.raises(P.FrameError, match="too long"):
        P.decode_request(b"\x01" * (P.MAX_ENCODED + 1))
    # a request echoed back (loopback) is not a reply
    with pytest.raises(P.FrameError, match="lacks the reply flag"):
        P.decode_reply(P.encode_request(1, P.Op.IDENTIFY, b"\x00")[:-1])


@FAST
@given(st.lists(st.binary(min_size=1, max_size=P.MAX_PAYLOAD), max_size=6), st.data())
def test_frame_decoder_splits_any_chunking_the_same(payloads, draw):
    wire = b"".join(P.encode_request(k, P.Op.LOAD, p) for k, p in enumerate(payloads))
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    dec = P.FrameDecoder()
    frames = []
    prev = 0
    for c in [*cuts, len(wire)]:
        frames += dec.feed(wire[prev:c])
        prev = c
    assert [P.decode_request(f).payload for f in frames] == payloads
    assert dec.pending == 0


def test_frame_decoder_bounds_overlong_garbage_and_skips_empty_frames():
    dec = P.FrameDecoder()
    out = dec.feed(b"\x00\x00" + b"\x07" * 10_000)
    assert out == [] and dec.pending == 0  # over-long: dropped as it came, nothing held
    out = dec.feed(b"\x00" + P.encode_request(3, P.Op.RESET))
    assert len(out) == 2
    with pytest.raises(P.FrameError, match="too long"):
        P.decode_request(out[0])
    assert P.decode_request(out[1]) == P.Request(3, P.Op.RESET)


# ----------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("name", list(PRESETS))
def test_identify_round_trip_for_every_preset(name):
    info = P.IdentifyInfo(preset(name), rx_frames=3, baud=3_000_000, clock_hz=42_000_000, build_id=0xDEADBEEF)
    b = info.pack()
    assert len(b) == P.IDENTIFY_BYTES == 62
    assert P.IdentifyInfo.unpack(b) == info
    assert P.fingerprint_bytes(info.config).hex() == info.config.fingerprint()


def test_identify_refuses_bad_magic_version_fingerprint_and_long_names():
    b = bytearray(P.IdentifyInfo(preset("tiny")).pack())
    with pytest.raises(P.ProtocolError, match="magic"):
        P.IdentifyInfo.unpack(b"XXXX" + bytes(b[4:]))
    with pytest.raises(P.ProtocolError, match="protocol version 9"):
        P.IdentifyInfo.unpack(bytes(b[:4]) + b"\x09" + bytes(b[5:]))
    b2 = bytearray(b)
    b2[20] ^= 1  # a fingerprint byte
    with pytest.raises(P.ProtocolError, match="fingerprint"):
        P.IdentifyInfo.unpack(bytes(b2))
    b3 = bytearray(b)
    b3[28] = 0  # n_neurons = 0 (low byte; tiny has 32)
    with pytest.raises(P.ProtocolError, match="invalid core configuration"):
        P.IdentifyInfo.unpack(bytes(b3))
    with pytest.raises(P.ProtocolError, match="at most 16"):
        P.IdentifyInfo(CoreConfig(name="a-very-long-core-name")).pack()


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_done_round_trip(t, n):
    assert P.Done.unpack(P.Done(t, n).pack()) == P.Done(t, n)


def test_counters_round_trip_and_wrap():
    c = P.Counters(2**32 + 5, 7, 8, 2**16 + 1, 2, 3, 4, 5, 6, 7)
    u = P.Counters.unpack(c.pack())
    assert len(c.pack()) == P.COUNTERS_BYTES == 26
    assert (u.timestep, u.core_errors, u.spikes) == (5, 1, 7)
    with pytest.raises(P.ProtocolError, match="expected 26"):
        P.Counters.unpack(b"\x00" * 25)


@pytest.mark.parametrize("name", list(PRESETS))
def test_beats_pack_round_trip_and_frame_fill(name):
    cfg = preset(name)
    nb = P.beat_bytes(cfg)
    beats = [pack_command(cfg, op, a, d) for op, a, d in
             [(1, 0, 0), (2, 3, 0xFFFF), (1, (1 << 10) - 1, (1 << 40) - 1)]]
    data = P.pack_beats(cfg, beats)
    assert len(data) == 3 * nb and P.unpack_beats(cfg, data) == beats
    assert P.beats_per_frame(cfg) * nb <= P.MAX_PAYLOAD < (P.beats_per_frame(cfg) + 1) * nb
    forced = P.force_op(cfg, beats[1], Opcode.WRITE)
    assert forced & 7 == Opcode.WRITE.value and forced >> 3 == beats[1] >> 3
    with pytest.raises(P.ProtocolError, match="whole number"):
        P.unpack_beats(cfg, data[:-1])


@FAST
@given(st.sampled_from(list(PRESETS)), st.data())
def test_beat_encoder_equals_pack_command(name, draw):
    cfg = preset(name)
    from spikeforge.hdl.protocol import addr_bits, data_bits

    op = draw.draw(st.integers(0, 7))
    addr = draw.draw(st.integers(0, (1 << addr_bits(cfg)) - 1))
    data = draw.draw(st.integers(0, (1 << data_bits(cfg)) - 1))
    assert P.beat_encoder(cfg)(op, addr, data) == pack_command(cfg, op, addr, data)
    with pytest.raises(ValueError, match="addr"):
        P.beat_encoder(cfg)(1, 1 << addr_bits(cfg), 0)


def test_payload_length_rules():
    cfg = preset("tiny")
    nb = P.beat_bytes(cfg)
    ok, bad = P.Status.OK, P.Status.BAD_LENGTH
    assert P.check_payload_length(P.Op.IDENTIFY, 0, cfg) == ok
    assert P.check_payload_length(P.Op.IDENTIFY, 1, cfg) == bad
    assert P.check_payload_length(P.Op.RESET, 8, cfg) == ok
    assert P.check_payload_length(P.Op.RESET, 4, cfg) == bad
    assert P.check_payload_length(P.Op.LOAD, 2 * nb, cfg) == ok
    assert P.check_payload_length(P.Op.LOAD, 0, cfg) == bad
    assert P.check_payload_length(P.Op.LOAD, nb + 1, cfg) == bad
    assert P.check_payload_length(P.Op.STEP, 2, cfg) == ok
    assert P.check_payload_length(P.Op.STEP, 2 + nb, cfg) == ok
    assert P.check_payload_length(P.Op.RUN, 3, cfg) == bad
    assert P.check_payload_length(0x42, 0, cfg) == P.Status.UNKNOWN_OP


@FAST
@given(st.integers(0, 10**9), st.integers(0, 2**16 - 1))
def test_unwrap_time_recovers_any_step_within_a_run(start, dt):
    t = start + dt
    assert P.unwrap_time(t & 0xFFFF, start, 16) == t
    spikes = P.unpack_spikes(P.pack_spikes([(5, t)]))
    assert spikes == [(5, t & 0xFFFF)]


def test_spike_payload_sizes():
    assert P.SPIKES_PER_MORE * P.SPIKE_BYTES <= P.MAX_REPLY_PAYLOAD
    assert P.DONE_BYTES + P.SPIKES_PER_FINAL * P.SPIKE_BYTES <= P.MAX_REPLY_PAYLOAD
    with pytest.raises(P.ProtocolError, match="whole number"):
        P.unpack_spikes(b"\x00" * 5)
    with pytest.raises(P.ProtocolError, match="steps = 65536"):
        P.steps_payload(65536)


def test_protocol_md_examples_are_what_the_module_sends():
    """The worked byte examples of PROTOCOL.md §7 are generated by this module."""
    text = (ROOT / "firmware" / "PROTOCOL.md").read_text()
    cfg = preset("tiny")

    def hexline(label: str) -> bytes:
        m = re.search(re.escape(label) + r"\s+((?:[0-9a-f]{2} )+[0-9a-f]{2})", text)
        assert m, label
        return bytes.fromhex(m.group(1))

    assert hexline("IDENTIFY seq 0") == P.encode_request(0, P.Op.IDENTIFY)
    assert hexline("RUN 10 steps, seq 1") == P.encode_request(1, P.Op.RUN, P.steps_payload(10))
    load = P.pack_beats(cfg, [pack_command(cfg, Opcode.WRITE.value, 5, 0x1234)])
    assert hexline("LOAD 1 beat, seq 2") == P.encode_request(2, P.Op.LOAD, load)
    final = P.Done(10, 1).pack() + P.pack_spikes([(3, 9)])
    assert hexline("final reply of RUN") == P.encode_reply(1, P.Op.RUN, P.Status.OK, final)
    assert hexline("NAK (bad CRC), last 7") == P.encode_reply(0, P.NAK_OP, P.Status.BAD_CRC, b"\x07")


# ----------------------------------------------------------------------------- fuzz of the host parser
_PARSERS = (P.Done.unpack, P.Counters.unpack, P.IdentifyInfo.unpack, P.unpack_spikes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=300),
    st.builds(lambda s, o, c, p: P.encode_reply(s, o, c, p), st.integers(0, 255),
              st.sampled_from([*P.Op, P.NAK_OP]), st.integers(0, 255), st.binary(max_size=80)),
), max_size=8))
def test_fuzz_host_parser_never_crashes(chunks):
    """Random bytes and valid replies in any mix: the host's parser yields replies or raises
    FrameError/ProtocolError, never anything else, and holds a bounded amount of memory."""
    dec = P.FrameDecoder()
    for chunk in chunks:
        for frame in dec.feed(chunk):
            assert len(frame) <= P.MAX_ENCODED + 1
            try:
                r = P.decode_reply(frame)
            except P.FrameError:
                continue
            assert 0 <= r.seq <= 255 and len(r.payload) <= P.MAX_REPLY_PAYLOAD
            for parse in _PARSERS:
                try:
                    parse(r.payload)
                except P.ProtocolError:
                    pass
        assert dec.pending <= P.MAX_ENCODED
