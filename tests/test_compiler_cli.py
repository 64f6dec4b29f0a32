"""``spikeforge compile``, ``spikeforge bench compile`` and ``verify --network`` compiling first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.hdl.config import PRESETS, preset
from spikeforge.hdl.image import CoreImage, run_image
from spikeforge.sim.bench import bench_compile
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.compiler import fit
from spikeforge.toolchain.ir import load_network, save_network
from spikeforge.toolchain.netgen import long_delay_wide_fanout, random_inputs, random_network
from spikeforge.toolchain.reference import simulate

DATA = Path(__file__).parent / "data"


def _long(tmp_path: Path) -> Path:
    net = random_network(3, 8, 30, max_delay=20, all_modes=False, threshold_range=(1, 60))
    path = tmp_path / "long.json"
    save_network(net, path)
    return path


def _big(tmp_path: Path) -> Path:
    """40 neurons, every one an output (nothing to prune): more than a tiny core holds."""
    net = random_network(5, 40, 100, max_delay=8)
    for n in net.neurons:
        net.add_output(n.id, f"o{n.id}")
    src = tmp_path / "big.json"
    save_network(net, src)
    return src


def test_compile_writes_image_report_network_and_dumps(tmp_path, capsys):
    src = _long(tmp_path)
    img, rep, out = tmp_path / "i.json", tmp_path / "r.json", tmp_path / "c.json"
    code = main(["compile", str(src), "--target", "tiny", "-o", str(img), "--report", str(rep),
                 "--network-out", str(out), "--dump-after", "delays", "--dump-dir", str(tmp_path / "d"),
                 "--verify-steps", "40"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "delays" in text and "relays" in text and "verified" in text
    image = CoreImage.from_json(img.read_text(), PRESETS["tiny"])
    report = json.loads(rep.read_text())
    assert report["compiled"]["relays"] > 0 and report["verify"]["ok"]
    assert [p["pass"] for p in report["passes"]][:2] == ["quantize", "merge"]
    assert list((tmp_path / "d").glob("*-delays.json"))
    compiled = load_network(out)
    ins = random_inputs(0, compiled, 50)
    assert run_image(image, ins, 50).spikes == simulate(compiled, ins, 50).spikes


def test_compile_tennlab_auto_detected_and_json(tmp_path, capsys):
    tl = sorted(DATA.glob("risp*.json"))
    assert tl, "the TENNLab sample network is missing"
    code = main(["compile", str(tl[0]), "--target", "icebreaker", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert doc["config"] == "up5k" and doc["compiled"]["cores"] == 1


def test_deployment_file_for_several_cores(tmp_path, capsys):
    src = _big(tmp_path)
    out = tmp_path / "deploy.json"
    assert main(["compile", str(src), "--target", "tiny", "--max-cores", "3", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "spikeforge.deployment" and len(doc["images"]) == 2 and doc["routes"]
    for d in doc["images"]:
        CoreImage.from_dict(d, PRESETS["tiny"])
    capsys.readouterr()


def test_refusal_exit_code_2_with_numbers(tmp_path, capsys):
    src = _big(tmp_path)
    assert main(["compile", str(src), "--target", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "40 neurons" in err and "holds 32" in err and "max_cores = 1" in err
    assert main(["compile", str(src), "--target", "nope"]) == 2
    assert "neither a preset" in capsys.readouterr().err


def test_help_has_examples(capsys):
    assert main(["compile", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out


def test_bench_compile_prints_one_json_line_per_case(monkeypatch, capsys):
    small = [("tiny-case", random_network(0, 10, 30, max_delay=4), PRESETS["tiny"], 1),
             ("ldwf", long_delay_wide_fanout(0, neurons=40, hubs=2, fan_out=30, max_delay=30), PRESETS["up5k"], 1)]
    lines = list(bench_compile(cases=small))
    assert [x["case"] for x in lines] == ["tiny-case", "ldwf"]
    assert all(x["seconds"] > 0 and x["peak_mb"] > 0 and x["bench"] == "compile" for x in lines)
    assert lines[1]["relays"] > 0


def test_fit_network_compiles_only_what_does_not_fit():
    net = random_network(1, 10, 30, max_delay=4)
    assert fit(net, preset("tiny"), prune=False).network is net
    long = random_network(1, 10, 30, max_delay=30)
    fitted = fit(long, preset("tiny"), prune=False).network
    assert fitted.max_delay <= 8 and fitted.metadata["compiler"]["relays"]
    assert set(long.neuron_ids) <= set(fitted.neuron_ids)  # verify keeps every source neuron
    floaty = random_network(1, 10, 30, max_delay=4)
    for s in floaty.synapses:
        s.weight *= 0.5
    assert fit(floaty, prune=False).network.is_integer()


@pytest.mark.verilator
def test_verify_network_compiles_a_network_that_does_not_fit(tmp_path, capsys):
    src = _long(tmp_path)
    code = main(["verify", "--network", str(src), "--target", "tiny", "--steps", "40",
                 "--build-dir", str(Path(__file__).resolve().parents[1] / "build" / "test_verify_cli")])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
