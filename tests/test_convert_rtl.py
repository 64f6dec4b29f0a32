"""A converted digits network on the Verilator RTL core: same spikes, so same predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.codec import io_latency, io_of, output_raster
from spikeforge.toolchain.netgen import Case
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.train.convert import convert, load_task, snn_predict, train_mlp

BUILD = Path(__file__).resolve().parents[1] / "build" / "test_convert_rtl"


@pytest.mark.slow
@pytest.mark.verilator
def test_converted_digits_network_predicts_the_same_on_the_rtl_core():
    from spikeforge.sim.verify import verify_cases
    from spikeforge.toolchain.compiler import compile_network

    cfg = preset("up5k")
    d = load_task("digits")
    mlp = train_mlp(d.x_train, d.y_train, hidden=(32,), epochs=40, seed=0)
    net, _ = convert(mlp, d.x_train, cfg, timesteps=16)
    compiled = compile_network(net, cfg)  # the compiler takes it onto one up5k core
    assert len(compiled.images) == 1
    enc, dec = io_of(net)
    steps = enc.steps + io_latency(net)
    x, y = d.x_test[:12], d.y_test[:12]
    cases = [Case(f"digit-{k}", net, enc.encode(row), steps) for k, row in enumerate(x)]
    report = verify_cases(cases, cfg, build_dir=BUILD, timeout=3000)
    assert report.ok, report.summary()  # spike for spike, so the decoded classes are the same
    assert sum(c.spikes for c in report.cases) > 100 and sum(c.events for c in report.cases) > 1000
    ref = np.array([dec.decode(output_raster(net, simulate(net, c.inputs, steps))) for c in cases])
    batch, _ = snn_predict(net, x)
    np.testing.assert_array_equal(ref, batch)
    assert np.mean(ref == y) >= 0.75  # a working classifier, not a silent network
