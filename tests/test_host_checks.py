"""The host validates every reply of a board that lies (toolchain/deploy.py).

A tap rewrites the emulated board's replies the way a broken or hostile board would; the
Device must refuse each lie with one line that says what the board sent, never return it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from spikeforge.firmware.protocol import (
    Done,
    FrameDecoder,
    IdentifyInfo,
    Op,
    Reply,
    Status,
    decode_reply,
    encode_reply,
    encode_request,
    pack_spikes,
    unpack_spikes,
)
from spikeforge.hdl.config import preset
from spikeforge.hdl.image import lower
from spikeforge.sim.emuboard import EmuBoard, EmuSerial
from spikeforge.toolchain.deploy import Device, DeviceError, DeviceTimeout, NotABoardError
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.reference import simulate

CFG = preset("tiny")


def chain_image():
    return lower(chain_network(), CFG)


def chain_network() -> Network:
    net = Network()
    for i in range(4):
        net.add_neuron(i, threshold=1)
    for i in range(3):
        net.add_synapse(i, i + 1, 1, 1)
    net.add_input(0)
    net.add_output(3)
    return net


def rewriting(edit: Callable[[Reply], Reply | None]) -> Callable[[bytes], bytes]:
    """A tap that decodes each reply frame, lets ``edit`` change it, and encodes it again."""
    dec = FrameDecoder()

    def tap(data: bytes) -> bytes:
        out = b""
        for frame in dec.feed(data):
            r = edit(decode_reply(frame))
            if r is not None:
                out += encode_reply(r.seq, r.op, r.status, r.payload)
        return out

    return tap


def device(tap: Callable[[bytes], bytes] | None = None, **kw) -> Device:
    return Device(EmuSerial(EmuBoard(CFG, model_line=False), tap), timeout=0.05, **kw)


def add_spike(slot: int, t: int) -> Callable[[Reply], Reply]:
    """The final reply of every RUN/STEP gains one spike ``(slot, t)`` (and counts it)."""
    def edit(r: Reply) -> Reply:
        if r.op in (Op.RUN, Op.STEP) and r.status == Status.OK:
            done = Done.unpack(r.payload)
            spikes = unpack_spikes(r.payload[8:]) + [(slot, t)]
            payload = Done(done.timestep, done.count + 1).pack() + pack_spikes(spikes)
            return dataclasses.replace(r, payload=payload)
        return r
    return edit


@pytest.mark.parametrize("slot, t, needle", [
    (0, 50000, "spike at t = 50000 in a run of steps 0..9"),
    (30000, 3, "spike of slot 30000; its core has slots 0..31"),
    (20, 3, "spike of slot 20 at t = 3; the image uses slots 0..3"),
])
def test_lying_spikes_are_refused(slot, t, needle):
    dev = device(rewriting(add_spike(slot, t)), retries=0)
    dev.identify()
    dev.load(chain_image())
    with pytest.raises(DeviceError, match=re.escape(needle)):
        dev.simulate([(0, 0, 1)], steps=10)


def test_honest_board_still_runs():
    dev = device()
    dev.identify()
    dev.load(chain_image())
    net_result = simulate(chain_network(), [(0, 0, 1)], 10)
    assert dev.simulate([(0, 0, 1)], steps=10) == net_result and net_result.spike_times.size == 4


@pytest.mark.parametrize("field, value", [("baud", 0), ("rx_frames", 0)])
def test_identify_with_insane_fields_is_refused(field, value):
    def edit(r: Reply) -> Reply:
        if r.op == Op.IDENTIFY:
            info = dataclasses.replace(IdentifyInfo.unpack(r.payload), **{field: value})
            return dataclasses.replace(r, payload=info.pack())
        return r
    with pytest.raises(NotABoardError, match=f"{field} = {value}, which is out of range"):
        device(rewriting(edit)).identify()  # the constructor identifies the board


def test_a_garbage_line_error_counts_what_happened():
    ser = EmuSerial(EmuBoard(CFG, model_line=False))
    dev = Device(ser, timeout=0.5, retries=3)
    dev.identify()
    ser.tap = lambda b: b"\x13\x37\x00" * 3  # from now on the line spews garbage
    with pytest.raises(DeviceTimeout) as e:
        dev.counters()
    msg = str(e.value)
    assert "4 answered with undecodable frames or NAKs" in msg, msg
    assert "tries of 0.50 s" not in msg and "timed out" not in msg, msg


def test_unknown_op_0x7f_is_answered_but_is_no_nak():
    board = EmuBoard(CFG, model_line=False)
    frames = [f for _, reply in board.receive(encode_request(1, 0x7F), now=0.0)
              for f in FrameDecoder().feed(reply)]
    (r,) = [decode_reply(f) for f in frames]
    assert r.status == Status.UNKNOWN_OP and r.seq == 1
    assert not r.is_nak
