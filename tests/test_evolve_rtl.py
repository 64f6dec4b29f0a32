"""The evolved breast-cancer network on the RTL core: it lowers onto the up5k preset with no
change and classifies the test split on Verilator exactly as on the reference model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.hdl.image import lower, run_image
from spikeforge.toolchain.codec import io_of, output_raster
from spikeforge.toolchain.compiler import compile_network
from spikeforge.toolchain.netgen import Case
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.train.evolve import evolve, hardware_check
from spikeforge.toolchain.train.task_defaults import TASK_DEFAULTS, default_config
from spikeforge.toolchain.train.tasks import BreastCancerTask, preprocess

BUILD = Path(__file__).resolve().parents[1] / "build" / "test_evolve_rtl"


@pytest.mark.slow
@pytest.mark.verilator
def test_trained_breast_cancer_network_same_accuracy_on_verilator() -> None:
    from spikeforge.sim.verify import verify_cases

    core = preset("up5k")
    task = BreastCancerTask()
    res = evolve(task, core, default_config("breast-cancer"), generations=TASK_DEFAULTS["breast-cancer"]["generations"],
                 seed=0, progress=False, time_limit=900)  # what `spikeforge train evolve` does
    net = res.best
    hardware_check(net, core)
    lower(net, core)  # fits as evolved: no quantization step
    compiled = compile_network(net, core)
    assert compiled.quantization is None and len(compiled.images) == 1
    dep = compiled.network  # what is loaded onto the core
    assert [p.name for p in dep.outputs] == [p.name for p in net.outputs]
    enc, dec = io_of(net)
    xs = preprocess(task.x_test, net.metadata["preprocess"])
    cases, preds = [], []
    for k, x in enumerate(xs):
        inputs = enc.encode(x)
        ref = simulate(net, inputs, enc.steps, potential_bits=core.potential_bits)
        out = simulate(dep, inputs, enc.steps, potential_bits=core.potential_bits)
        assert np.array_equal(output_raster(dep, out), output_raster(net, ref))
        assert run_image(compiled.images[0], inputs, enc.steps) == out  # the image-level rung
        preds.append(dec.decode(output_raster(net, ref)))
        cases.append(Case(f"bc-test-{k}", dep, inputs, enc.steps))
    ref_acc = float(np.mean(np.array(preds) == task.y_test))
    assert ref_acc == pytest.approx(res.info["test_accuracy"]) and ref_acc >= 0.95
    report = verify_cases(cases, core, build_dir=BUILD, timeout=3000)
    # Every output spike at every step matched on the RTL, so the RTL's decoded answers, and
    # its test accuracy, are the reference model's.
    assert report.ok, report.summary()
    assert len(report.cases) == len(task.y_test) and sum(c.spikes for c in report.cases) > len(cases)
