"""spikeforge image: fit report, image file, and refusal of bad images / networks."""

from __future__ import annotations

import json

from spikeforge.toolchain.cli import main
from spikeforge.toolchain.ir import save_network
from spikeforge.toolchain.netgen import random_network
from spikeforge.toolchain.robot.demo import braitenberg


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_image_round_trip_and_checks(tmp_path, capsys):
    net = tmp_path / "net.json"
    save_network(braitenberg(), net)
    img = tmp_path / "net.image.json"
    assert main(["image", str(net), "--target", "tiny", "-o", str(img), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["neurons"] == 5 and rep["synapses"] == 8 and rep["neuron_slots"] == 32
    assert main(["image", "--check", str(img), "--target", "tiny"]) == 0
    assert "valid core image" in capsys.readouterr().out
    # an image for another core
    assert main(["image", "--check", str(img), "--target", "small"]) == 2
    assert "is for core 'tiny'" in one_error_line(capsys)
    # a corrupted image: flip one synapse word
    doc = json.loads(img.read_text())
    doc["synapses"][0] ^= 1
    img.write_text(json.dumps(doc))
    assert main(["image", "--check", str(img), "--target", "tiny"]) == 2
    assert "corrupted" in one_error_line(capsys)
    img.write_text("{ nope")
    assert main(["image", "--check", str(img), "--target", "tiny"]) == 2
    assert "invalid JSON" in one_error_line(capsys)


def test_network_that_does_not_fit(tmp_path, capsys):
    p = tmp_path / "big.json"
    save_network(random_network(0, 40, 50), p)
    assert main(["image", str(p), "--target", "tiny", "-o", str(tmp_path / "x.json")]) == 2
    assert "network has 40 neurons; core 'tiny' holds 32" in one_error_line(capsys)
    assert not (tmp_path / "x.json").exists()
    net = braitenberg()
    net.synapses[0].delay = 12
    save_network(net, p)
    assert main(["image", str(p), "--target", "tiny"]) == 2
    assert "delay" in one_error_line(capsys)
