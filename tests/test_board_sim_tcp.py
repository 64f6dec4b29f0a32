"""The TCP board-sim serves one host at a time, tells the next one so, and drops an idle host."""

from __future__ import annotations

import socket
import time

import pytest

from spikeforge.sim.emuboard import serve
from spikeforge.toolchain.deploy import BoardError, Device


def test_a_second_host_is_told_busy_not_left_hanging():
    with serve("tiny", port="tcp:0", idle_timeout=30.0) as sb:
        first = Device.open(sb.url, timeout=0.2, retries=2)
        try:
            t0 = time.monotonic()
            with pytest.raises(BoardError, match="serving another host"):
                Device.open(sb.url, timeout=0.2, retries=2)
            assert time.monotonic() - t0 < 5
            assert first.counters() is not None  # the first host is still served
        finally:
            first.close()


def test_an_idle_host_is_dropped_for_the_next_one():
    with serve("tiny", port="tcp:0", idle_timeout=0.5) as sb:
        idle = socket.create_connection(("127.0.0.1", sb.port))  # connects and says nothing
        try:
            time.sleep(1.5)
            dev = Device.open(sb.url, timeout=0.5, retries=2)
            assert dev.info is not None and dev.info.config.name == "tiny"
            dev.close()
        finally:
            idle.close()
