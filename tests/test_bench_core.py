"""spikeforge bench core: figures come from verified Verilator runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.hdl.config import PRESETS
from spikeforge.sim.bench import dense_network
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.reference import simulate


def test_dense_network_fires_every_neuron_every_step():
    cfg = PRESETS["tiny"]
    net = dense_network(cfg, spread_delays=True)
    assert len(net.synapses) == cfg.n_synapses // cfg.n_neurons * cfg.n_neurons
    r = simulate(net, [], 5)
    assert len(r.spike_times) == 5 * cfg.n_neurons


@pytest.mark.verilator
def test_bench_core_tiny(capsys, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_BUILD_DIR", str(Path(__file__).resolve().parents[1] / "build" / "test_bench_core"))
    assert main(["bench", "core", "--target", "tiny", "--no-build"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["case"] for x in lines] == ["dense-delay1", "dense-delay1..8", "sparse"]
    assert lines[0]["firing_rate"] == 1.0  # dense: every neuron fires every step
    for x in lines:
        assert x["verified"] and x["events"] > 0
        assert 0 < x["ops_per_clock"] <= 1.0
        assert 0 < x["firing_rate"] <= 1.0
