"""``spikeforge demo`` (the robot demo) and the shipped evolved controller."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.compiler import compile_network, design_rule_check
from spikeforge.toolchain.robot.controllers import evolved_network


def test_shipped_controller_fits_up5k_unchanged_and_records_its_provenance() -> None:
    net = evolved_network()
    assert design_rule_check(net, preset("up5k")).ok  # fits with no change
    res = compile_network(net, preset("up5k"), verify_steps=30)
    assert res.quantization is None or res.quantization.exact
    prov = net.metadata["provenance"]
    for key in ("task", "seed", "generation", "fitness", "recipe"):
        assert key in prov, key
    assert "spikeforge.toolchain.robot.train" in prov["recipe"]["command"]  # the module that trains it


def test_demo_quick_path_on_the_emulated_board(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    rc = main(["demo", "--quick", "--no-bitstream", "--no-verilator", "--out", str(out), "--steps", "30"])
    text = capsys.readouterr().out
    assert rc == 0, text
    for stage in ("train", "compile", "board", "drive", "reference", "plots"):
        assert f"{stage} done in" in text
    assert "board == reference at every control step" in text
    s = json.loads((out / "summary.json").read_text())
    assert s["trajectory_equals_reference"] is True and s["first_divergence"] is None
    assert s["board_run"] == s["reference_run"] and s["board_run"]["steps"] == 30
    assert s["latency_ms_mean"] > 0 and s["frames_per_control_step"] >= 1
    for p in ("trajectory.png", "raster.png", "controller.json", "refined.json"):
        assert (out / p).stat().st_size > 0


def test_demo_names_the_failing_stage(tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from spikeforge.toolchain.robot import demo

    def broken(*a, **k):
        raise OSError("no pty for you")

    monkeypatch.setattr("spikeforge.toolchain.backends.emulated_backend", broken)
    rc = demo.run_demo(tmp_path, bitstream=False, verilator=False, quick=True, steps=5, generations=1)
    text = capsys.readouterr().out
    assert rc == 1
    assert "stage 3 'board' failed" in text and "OSError: no pty for you" in text


def test_demo_refuses_bad_numbers(tmp_path) -> None:
    from spikeforge.toolchain.robot.demo import run_demo

    with pytest.raises(ValueError, match="steps = 0"):
        run_demo(tmp_path, steps=0, bitstream=False, verilator=False)


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.synth
def test_full_demo(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """``make demo``: bitstream, virtual board, 600 control steps, board == reference."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0, capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["trajectory_equals_reference"] is True
    assert s["bitstream"]["logic_cells"] <= s["bitstream"]["logic_cells_available"]
    assert np.isfinite(s["board_latency_ms_simulated"])
