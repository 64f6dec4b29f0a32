"""The benchmarks the README quotes print their figures (one JSON line each). Slow: they run
the real trainings and the Verilator virtual board; `make test-slow` runs them in CI."""

from __future__ import annotations

import json

import pytest

from spikeforge.toolchain.cli import main

pytestmark = pytest.mark.slow


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]


def test_bench_convert_meets_the_bars(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "convert"]) == 0
    lines = {(x["task"], x["activation"]): x for x in _lines(capsys)}
    assert len(lines) == 6 and all(x["bench"] == "convert" for x in lines.values())
    digits = lines[("digits", "clipped_relu")]
    assert digits["int_snn_accuracy"] >= 0.95
    assert digits["ann_accuracy"] - digits["int_snn_accuracy"] <= 0.015
    assert lines[("breast-cancer", "clipped_relu")]["int_snn_accuracy"] >= 0.95
    assert all(x["events_per_inference"] > 0 for x in lines.values())


@pytest.mark.verilator
def test_bench_board_prints_the_virtual_board_speed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "board", "--no-build"]) == 0
    lines = _lines(capsys)
    speed = [x for x in lines if x.get("case") == "virtual_board_speed"]
    assert speed and all(x["bench"] == "board" and x["cycles_per_s"] > 0 for x in speed)
