"""The ``spikeforge`` command line, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.toolchain.cli import main
from spikeforge.toolchain.cli.bench import BENCH_CASES
from spikeforge.toolchain.ir import Network, save_network
from spikeforge.toolchain.tennlab import read_tennlab

FIXTURE = Path(__file__).parent / "data" / "risp_main_out.json"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def net_file(tmp_path) -> Path:
    net = Network()
    net.add_neuron(10, threshold=2)
    net.add_neuron(11, threshold=1)
    net.add_neuron(12, threshold=5)  # never fires
    net.add_synapse(10, 11, 1, 2)
    net.add_input(10)
    net.add_output(11, "y")
    p = tmp_path / "net.json"
    save_network(net, p)
    return p


@pytest.fixture
def inputs_file(tmp_path) -> Path:
    p = tmp_path / "in.json"
    p.write_text(json.dumps([[0, 0, 2], [0, 3, 1], [0, 4, 1]]))
    return p


# ----------------------------------------------------------------------------- simulate
def test_simulate_json(capsys, net_file, inputs_file):
    code, out, err = run(capsys, "simulate", str(net_file), "--inputs", str(inputs_file),
                         "--steps", "10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"fire_counts", "spikes"}
    assert doc["fire_counts"] == {"10": 2, "11": 2, "12": 0}
    assert doc["spikes"] == [[10, 0], [11, 2], [10, 4], [11, 6]]


def test_simulate_summary(capsys, net_file, inputs_file):
    code, out, err = run(capsys, "simulate", str(net_file), "--inputs", str(inputs_file), "--steps", "10")
    assert code == 0, err
    assert "steps: 10" in out and "spikes: 4" in out
    assert "y  neuron 11: 2" in out


def test_simulate_tennlab_auto_and_raster(capsys, tmp_path):
    ins = tmp_path / "in.json"
    ins.write_text("[[0, 0, 2]]")
    png = tmp_path / "raster.png"
    code, out, err = run(capsys, "simulate", str(FIXTURE), "--inputs", str(ins), "--steps", "10",
                         "--json", "--raster", str(png))
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc["fire_counts"]) == {str(n.id) for n in read_tennlab(FIXTURE).neurons}
    assert doc["fire_counts"]["3"] == 4  # Out fires every other step
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_simulate_format_forced(capsys, net_file):
    code, _, err = run(capsys, "simulate", str(net_file), "--format", "tennlab")
    assert code == 2
    assert "missing field 'Properties'" in err
    code, _, err = run(capsys, "simulate", str(FIXTURE), "--format", "spikeforge")
    assert code == 2
    assert "--format tennlab" in err


def test_help_teaches(capsys):
    for argv in (["--help"], ["simulate", "--help"], ["bench", "--help"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert "example" in out
    _, out, _ = run(capsys, "bench", "--help")
    assert "--neurons" not in out  # sizes are hidden


# ----------------------------------------------------------------------------- errors
def _network_doc(**changes) -> str:
    doc = {"format": "spikeforge.network", "version": 1,
           "neurons": [{"id": 0, "threshold": 1}, {"id": 1, "threshold": 1}],
           "synapses": [{"pre": 0, "post": 1, "weight": 1, "delay": 1}],
           "inputs": [{"name": "in0", "neuron": 0}], "outputs": []}
    doc.update(changes)
    return json.dumps(doc)


BAD_NETWORKS = {
    "invalid json": ("{ \"format\": ", "invalid JSON"),
    "missing field": (json.dumps({"format": "spikeforge.network", "version": 1}), "missing field 'neurons'"),
    "unknown version": (_network_doc(version=7), "'version' = 7 is not supported"),
    "out of range": (_network_doc(neurons=[{"id": 0, "threshold": -3}, {"id": 1}]), "'threshold' = -3"),
    "dangling synapse": (_network_doc(synapses=[{"pre": 0, "post": 9}]), "'post' = 9 names no neuron"),
    "duplicate id": (_network_doc(neurons=[{"id": 0}, {"id": 0}]), "is a duplicate"),
    "tennlab dangling": (FIXTURE.read_text().replace('"to": 3', '"to": 33'), "names no node"),
    "not utf8": (b"\xff\xfe\x00", "not a text file"),
}


@pytest.mark.parametrize("case", sorted(BAD_NETWORKS))
def test_bad_network_files(capsys, tmp_path, case):
    text, message = BAD_NETWORKS[case]
    p = tmp_path / "bad.json"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    code, out, err = run(capsys, "simulate", str(p))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("spikeforge: error: ")
    assert str(p) in err and message in err
    assert "Traceback" not in err


BAD_INPUTS = {
    "invalid json": ("[[0, 0", "invalid JSON"),
    "not a list": ('{"a": 1}', "expected a JSON array"),
    "not a triple": ("[[0, 1]]", "input #0 = [0, 1] is not an [input_index, time, value] triple"),
    "float value": ("[[0, 1, 0.5]]", "value = 0.5 is not an integer"),
    "bad index": ("[[5, 0, 1]]", "input_index = 5 is out of range"),
    "negative time": ("[[0, -1, 1]]", "time = -1 is out of range"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_files(capsys, tmp_path, net_file, case):
    text, message = BAD_INPUTS[case]
    p = tmp_path / "in.json"
    p.write_text(text)
    code, out, err = run(capsys, "simulate", str(net_file), "--inputs", str(p))
    assert code == 2
    assert err.count("\n") == 1 and message in err and str(p) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["simulate"], "the following arguments are required: NETWORK"),
    (["simulate", "x.json", "--steps", "many"], "invalid int value: 'many'"),
    (["simulate", "x.json", "--format", "nir"], "invalid choice: 'nir'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
    (["bench", "warp"], "invalid choice: 'warp'"),
    (["simulate", "MISSING.json"], "MISSING.json: cannot read"),
])
def test_bad_options(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert err.startswith("spikeforge: error: ")


def test_bad_option_values(capsys, net_file):
    for argv, message in ((["--steps", "-1"], "--steps = -1"), (["--potential-bits", "99"], "--potential-bits = 99")):
        code, _, err = run(capsys, "simulate", str(net_file), *argv)
        assert code == 2 and message in err and err.count("\n") == 1


def test_float_network_is_refused_in_one_line(capsys, tmp_path):
    p = tmp_path / "f.json"
    p.write_text(_network_doc(neurons=[{"id": 0, "threshold": 0.5}, {"id": 1}]))
    code, _, err = run(capsys, "simulate", str(p))
    assert code == 2 and "non-integer" in err and err.count("\n") == 1


def test_runtime_failure_is_exit_1(capsys, net_file, tmp_path):
    code, _, err = run(capsys, "simulate", str(net_file), "--raster", str(tmp_path / "no" / "dir" / "r.png"))
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("spikeforge: error: ")


def test_debug_reraises(net_file, tmp_path):
    bad = tmp_path / "in.json"
    bad.write_text("[[0]]")
    with pytest.raises(Exception, match="triple"):
        main(["--debug", "simulate", str(net_file), "--inputs", str(bad)])


def test_verbose_logs_to_stderr(capsys, net_file):
    code, _, err = run(capsys, "-v", "simulate", str(net_file))
    assert code == 0
    assert "spikeforge: INFO:" in err


# ----------------------------------------------------------------------------- bench
def test_bench_sim_tiny(capsys):
    code, out, err = run(capsys, "bench", "sim", "--neurons", "40", "--synapses", "400",
                         "--steps", "30", "--runs", "3")
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["case"] for x in lines] == ["single", "batch3", "population3"]
    for x in lines:
        assert x["bench"] == "sim" and x["neurons"] == 40 and x["synapses"] == 400 and x["steps"] == 30
        assert x["events"] > 0 and x["seconds"] > 0 and x["events_per_s"] > 0
        assert 0 < x["firing_rate"] <= 1
        assert x["machine"]["cores"] >= 1 and x["machine"]["cpu"]
    assert lines[0]["events"] * 3 == lines[1]["events"]  # a batch is three copies of one run


def test_bench_has_room_for_more_cases():
    assert "sim" in BENCH_CASES
