"""Bitstreams of the full board design (UART, framing, command engine, core) via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.firmware.boards import board
from spikeforge.firmware.top import build_board
from spikeforge.hdl.config import preset
from spikeforge.toolchain.cli import main

BUILD = Path(__file__).resolve().parents[1] / "build" / "test_fw_build"


@pytest.mark.slow
@pytest.mark.synth
def test_tiny_board_design_for_icebreaker_via_cli(capsys):
    rc = main(["build", "--target", "icebreaker:tiny", "--json", "--build-dir", str(BUILD)])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["name"] == "board_tiny"
    assert 0 < rep["logic_cells"] <= 5280 and rep["ebr"] >= 2
    (clk,) = rep["fmax"].values()
    assert clk["constraint_mhz"] == pytest.approx(board("icebreaker").clock_mhz, rel=0.01)
    assert clk["achieved_mhz"] >= clk["constraint_mhz"]


def test_bad_baud_is_a_clear_error(capsys):
    """Refused before any tool runs, naming the baud, the clock and the fix."""
    rc = main(["build", "--target", "icebreaker:tiny", "--baud", "10000000", "--build-dir", str(BUILD)])
    assert rc == 2 and "--baud 10000000" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.synth
def test_up5k_board_design_fits_the_ice40up5k_and_meets_timing():
    r = build_board("icebreaker", preset("up5k"), build_dir=BUILD)
    assert r.logic_cells <= 5280 and r.ebr <= 30 and r.spram <= 4
    assert r.timing_met, r.fmax


@pytest.mark.slow
@pytest.mark.synth
def test_ecp5_board_design_meets_timing():
    r = build_board("ulx3s-85f", preset("ecp5-85f"), build_dir=BUILD)
    assert r.timing_met, r.fmax
