"""Fault tests: a proxy between host and board corrupts, drops, duplicates and delays bytes and
injects garbage; every command either completes with the reference model's result or fails
with a clear error, nothing is applied twice, and the board stays responsive.

The default run drives the emulated board through a few thousand faults (about 10 s); the
Verilator virtual board gets a smaller set under ``slow`` + ``verilator``. The counts are
reported by ``spikeforge bench link`` (case ``faults``)."""

from __future__ import annotations

import logging
import time

import pytest

from spikeforge.firmware import protocol as P
from spikeforge.hdl.config import preset
from spikeforge.sim.emuboard import serve
from spikeforge.sim.faultproxy import FAULT_KINDS, FaultProxy
from spikeforge.toolchain.faultcampaign import run_fault_campaign

CFG = preset("tiny")


def _check(r: dict, min_faults: int) -> None:
    assert r["faults"] >= min_faults, r
    assert r["wrong"] == 0, r  # never silently wrong
    assert r["unrecovered"] == 0, r
    assert r["responsive"], r
    assert all(v > 0 for k, v in r["faults_by_kind"].items()), r["faults_by_kind"]
    assert r["completed"].get("run_ok", 0) > 0 and r["completed"].get("step_ok", 0) > 0, r
    for kind, msg in r["error_examples"].items():  # the errors that did happen are clear
        assert r["failed_clearly"][kind] > 0 and len(msg) > 40, msg


def test_thousands_of_faults_against_the_emulated_board():
    t0 = time.monotonic()
    r = run_fault_campaign(CFG, seed=7, target_faults=2500, max_seconds=40, min_per_kind=1)
    logging.getLogger(__name__).info("fault campaign: %s", r)
    _check(r, 2500)
    assert r["exactly_once"] is True, r  # board-side: no STEP/RUN executed twice
    assert r["board_counts"]["duplicates_not_reexecuted"] > 0 and r["board_counts"]["frames_bad"] > 0
    assert time.monotonic() - t0 < 60


def test_fault_proxy_injects_what_it_counts():
    with serve(CFG, port="tcp:0", model_line=False) as sb, \
            FaultProxy(sb.url, rate=1.0, seed=1, kinds=("drop",), directions=("to_board",)) as px:
        import socket

        host, port = px.url[len("socket://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(P.encode_request(0, P.Op.IDENTIFY))
            time.sleep(0.2)
        assert px.summary()["to_board.drop"] == len(P.encode_request(0, P.Op.IDENTIFY))
        assert sb.board.stats.frames_ok == 0
    with pytest.raises(ValueError, match="fault kind 'melt' is unknown"):
        FaultProxy("socket://127.0.0.1:1", kinds=("melt",))
    assert set(FAULT_KINDS) == {"corrupt", "drop", "duplicate", "delay", "garbage"}


@pytest.mark.slow
def test_a_long_fault_campaign_against_the_emulated_board():
    r = run_fault_campaign(CFG, seed=11, target_faults=20_000, max_seconds=300, rate=0.002, host_rate=0.01,
                           min_per_kind=1)
    _check(r, 20_000)
    assert r["exactly_once"] is True


@pytest.mark.slow
@pytest.mark.verilator
def test_faults_against_the_verilator_virtual_board():
    from spikeforge.sim.vboard import start_virtual_board

    with start_virtual_board(CFG, baud=3_000_000, tcp=0) as vb:
        url = vb.url if vb.url.startswith("socket://") else vb.path
        # a lower fault rate on the reply line than the emulated campaign's: set when the gateware
        # re-sent only a duplicate's Done record (it now re-sends the whole final reply)
        r = run_fault_campaign(CFG, seed=3, target_faults=300, max_seconds=600, upstream=url, timeout=0.5,
                               host_rate=0.003, min_per_kind=1)  # every kind, even at this low reply-line rate
    _check(r, 300)


def test_min_per_kind_goes_on_until_every_kind_occurred():
    """With a target of one fault, only ``min_per_kind`` makes every kind occur (both directions)."""
    r = run_fault_campaign(CFG, seed=5, target_faults=1, max_seconds=60, host_rate=0.02, min_per_kind=1)
    assert all(v >= 1 for v in r["faults_by_kind"].values()), r["faults_by_kind"]
    assert len(r["faults_by_kind"]) == 2 * len(FAULT_KINDS)
    assert r["wrong"] == 0 and r["unrecovered"] == 0
