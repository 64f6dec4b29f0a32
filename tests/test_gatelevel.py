"""The iCE40 rungs of the ladder (sim.gatelevel): SPRAM-primitive RTL and the synth_ice40 netlist.

Both run the tb_core testbench under Verilator on yosys's iCE40 cell models and compare spike
for spike with the reference model. Measured on 2 cores (up5k-n256, 12 random networks + 26
edge cases, 16 garbage beats before each): ice40-rtl compiles in ~9 s and runs in ~20 s; the
netlist takes ~8 s of yosys, ~100 s of Verilator build and ~60 s of simulation.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from spikeforge.sim import gatelevel
from spikeforge.sim import verify as verify_mod
from spikeforge.sim.gatelevel import (
    TARGETS,
    ice40_cells_sim,
    ice40_rtl_verilog,
    ice40_test_config,
    netlist_cells,
    target_design,
    verify_target,
)
from spikeforge.sim.rtl import run_cocotb, to_verilog
from spikeforge.sim.verify import first_divergence
from spikeforge.toolchain.netgen import edge_cases, random_case
from spikeforge.toolchain.reference import simulate

# ".../verify" so that `spikeforge verify --build-dir build/test_gatelevel` reuses the builds.
BUILD = Path(__file__).resolve().parents[1] / "build" / "test_gatelevel" / "verify"


def ladder_cases(cfg, n_random=12, seed=100):
    """``n_random`` seeded random networks plus every edge case of the contract."""
    cases = [random_case(seed + k, 32, 96, steps=40, max_delay=cfg.max_delay) for k in range(n_random)]
    return cases + edge_cases(cfg.potential_bits, cfg.max_delay, min(cfg.n_neurons, 32))


def test_ice40_rtl_instantiates_spram_and_keeps_the_ports():
    from spikeforge.hdl.core import SpikingCore
    from spikeforge.hdl.spram_ice40 import spram_packing

    cfg = ice40_test_config()
    assert cfg.spram == ("index", "synapses")
    # the synapse table uses up5k's packing: 2 slots of 20 bits per 48-bit row (3 SPRAMs)
    from amaranth.hdl import Shape

    from spikeforge.hdl.image import layout, synapse_fields

    width = Shape.cast(layout(synapse_fields(cfg))).width
    assert spram_packing(width, cfg.n_synapses)[:3] == (2, 20, 3)
    text = ice40_rtl_verilog(cfg)
    assert text.count("SB_SPRAM256KA ") >= 4
    assert "SB_SPRAM256KA" not in to_verilog(SpikingCore(cfg), verify_mod.TOPLEVEL)
    assert f"module {verify_mod.TOPLEVEL}(" in text


def test_cells_sim_is_found_in_the_yosys_package():
    path = ice40_cells_sim()
    assert path.name == "cells_sim.v" and path.parent.name == "ice40"
    assert "module SB_SPRAM256KA" in path.read_text()


def test_bad_target_and_board_are_named():
    cfg = ice40_test_config()
    with pytest.raises(ValueError, match="unknown verification target 'ice40'.*ice40-rtl"):
        target_design("ice40", cfg, BUILD)
    with pytest.raises(ValueError, match="'ulx3s-85f' is not an iCE40 board.*icebreaker"):
        ice40_rtl_verilog(cfg, board="ulx3s-85f")
    assert TARGETS == ("rtl", "ice40-rtl", "ice40-netlist")


def test_run_cocotb_checks_extra_sources(tmp_path):
    with pytest.raises(TypeError, match="single path"):
        run_cocotb("module t; endmodule", "t", "some_tb", build_dir=tmp_path, extra_sources="a.v")
    with pytest.raises(FileNotFoundError, match="nope.v"):
        run_cocotb("module t; endmodule", "t", "some_tb", build_dir=tmp_path,
                   extra_sources=[tmp_path / "nope.v"])
    with pytest.raises(ValueError, match="public_depth"):
        run_cocotb("module t; endmodule", "t", "some_tb", build_dir=tmp_path, public_depth=0)


@pytest.mark.verilator
def test_ice40_rtl_matches_reference_with_garbage():
    """SB_SPRAM256KA models (MASKWREN slot writes) under random + edge-case networks."""
    cfg = ice40_test_config()
    cases = ladder_cases(cfg)
    t0 = time.monotonic()
    report = verify_target(cases, cfg, "ice40-rtl", build_dir=BUILD, garbage=16, seed=5)
    elapsed = time.monotonic() - t0
    assert report.ok, report.summary()
    assert report.target == "ice40-rtl" and "[ice40-rtl]" in report.summary()
    assert len(report.cases) == len(cases) >= 10 + 26
    assert sum(c.spikes for c in report.cases) > 300  # the comparison is not vacuous
    # synapses land in both slots of a row: networks with >= 2 synapses use odd addresses
    assert any(len(c.network.synapses) >= 2 for c in cases)
    print(f"ice40-rtl: compile {report.compile_seconds:.1f} s, run {report.run_seconds:.1f} s, "
          f"total {elapsed:.1f} s")


@pytest.mark.verilator
def test_ice40_rtl_divergence_is_caught_and_named(monkeypatch):
    """Negative control: make the oracle disagree; the ice40-rtl rung must fail and say where."""
    cfg = ice40_test_config()
    case = random_case(5, 16, 48, steps=40, max_delay=cfg.max_delay)
    wrong = case.network.copy()
    for s in wrong.synapses:
        s.weight = -s.weight
    bad = simulate(wrong, case.inputs, case.steps, potential_bits=cfg.potential_bits)
    assert first_divergence(simulate(case.network, case.inputs, case.steps,
                                     potential_bits=cfg.potential_bits), bad) is not None
    monkeypatch.setattr(verify_mod, "simulate", lambda *a, **k: bad)
    monkeypatch.setattr(verify_mod, "run_image", lambda *a, **k: bad)
    report = verify_target([case], cfg, "ice40-rtl", build_dir=BUILD)
    assert not report.ok
    assert report.cases[0].rung == "ice40-rtl"
    assert "FIRST DIVERGENCE" in report.summary() and "neuron" in report.summary()


@pytest.mark.verilator
def test_ice40_rtl_catches_a_broken_spram_model(tmp_path):
    """Negative control on the hardware side: an SPRAM model that drops MASKWREN must fail."""
    cfg = ice40_test_config()
    text = ice40_cells_sim().read_text()
    for nib in range(4):
        line = f"if (MASKWREN[{nib}]) mem[ADDRESS]"
        assert line in text, "cells_sim.v changed; update this negative control"
        text = text.replace(line, "if (1'b1) mem[ADDRESS]")
    broken = tmp_path / "cells_sim.v"
    broken.write_text(text)
    sim = target_design("ice40-rtl", cfg, BUILD)
    sim["extra_sources"] = (broken,)
    case = random_case(7, 24, 64, steps=30, max_delay=cfg.max_delay)
    report = verify_mod.verify_cases([case], cfg, build_dir=BUILD, **sim)
    assert not report.ok, "clobbering the neighbouring slot went unnoticed"
    assert report.cases[0].rung == "ice40-rtl"


@pytest.mark.verilator
def test_cli_verify_target_ice40_rtl(capsys):
    from spikeforge.toolchain.cli import main

    rc = main(["verify", "--rung", "ice40-rtl", "--random", "2", "--no-edge-cases", "--steps", "20",
               "--build-dir", str(BUILD.parent)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "[ice40-rtl]" in out and "2/2 cases match" in out and "up5k-n256" in out


def test_cli_verify_target_is_checked(capsys):
    from spikeforge.toolchain.cli import main

    assert main(["verify", "--rung", "ecp5-netlist"]) == 2
    assert "invalid choice: 'ecp5-netlist'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.synth
@pytest.mark.verilator
def test_ice40_netlist_matches_reference_with_garbage():
    """The yosys synth_ice40 netlist (LUT4/carry/DFF, SB_RAM40_4K, SPRAM) on the cell models."""
    cfg = ice40_test_config()
    t0 = time.monotonic()
    netlist = gatelevel.ice40_netlist(cfg, BUILD)
    synth_seconds = time.monotonic() - t0
    cells = netlist_cells(netlist)
    assert cells["SB_SPRAM256KA"] >= 4 and cells["SB_RAM40_4K"] >= 1 and cells["SB_LUT4"] > 100
    assert "always" not in netlist.read_text()  # primitives only, no behavioural logic left
    cases = ladder_cases(cfg)
    report = verify_target(cases, cfg, "ice40-netlist", build_dir=BUILD, garbage=16, seed=5,
                           timeout=3600)
    assert report.ok, report.summary()
    assert len(report.cases) == len(cases)
    assert sum(c.spikes for c in report.cases) > 300
    print(f"ice40-netlist: synth {synth_seconds:.1f} s, compile {report.compile_seconds:.1f} s, "
          f"run {report.run_seconds:.1f} s")
