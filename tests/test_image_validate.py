"""Forged core images (contents edited, CRC recomputed) are refused by every reader.

``CoreImage.validate`` checks counts, slots, words and fields against ``CoreConfig.limits()``;
``image --check``, ``Device.load``/``attach`` (deploy and run) and the image model the
emulated board and ``run_image`` use all call it.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from spikeforge.hdl.config import preset
from spikeforge.hdl.image import CoreImage, ImageError, ImageModel, lower
from spikeforge.sim.emuboard import EmuBoard, EmuSerial
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.deploy import Device
from spikeforge.toolchain.ir import Network

CFG = preset("tiny")


def small_image() -> CoreImage:
    net = Network()
    for i in range(4):
        net.add_neuron(i, threshold=1)
    for i in range(3):
        net.add_synapse(i, i + 1, 1, 1 + i)
    net.add_input(0)
    net.add_output(3)
    return lower(net, CFG)


def forge(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The image document after ``edit``, with its crc32 recomputed (what an attacker does)."""
    doc = small_image().to_dict()
    edit(doc)
    body = {k: v for k, v in doc.items() if k != "crc32"}
    doc["crc32"] = zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    return doc


def _grow(doc: dict[str, Any], n: int) -> None:
    doc["neuron_ids"] = list(range(n))
    doc["params"] = [doc["params"][0]] * n
    doc["index"] = [0] * (n << CFG.delay_bits)
    doc["fan_in"] = [0] * n


FORGERIES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("40 neurons on 32", lambda d: _grow(d, 40), "neuron count (len of neuron_ids) = 40 is out of range; allowed: at most 32"),
    ("input slot", lambda d: d.update(inputs=[60000]), "inputs[0] (a core slot) = 60000 is out of range; allowed: 0..3"),
    ("output slot", lambda d: d.update(outputs=[-1]), "outputs[0] (a core slot) = -1"),
    ("short ids", lambda d: d.update(neuron_ids=d["neuron_ids"][:2]), "len of params = 4 is out of range; allowed: 2"),
    ("index word 2**40", lambda d: d["index"].__setitem__(0, 2**40), "index[0] = 1099511627776 is out of range"),
    ("synapse table", lambda d: d.update(synapses=d["synapses"] * 100), "len of synapses = 300 is out of range; allowed: at most 256"),
    ("synapse post", lambda d: d["synapses"].__setitem__(0, 31), "synapses[0] field 'post' = 31"),
    ("index start", lambda d: d["index"].__setitem__(1, (1 << (CFG.syn_addr_bits)) | 200), "index[1] field 'start' = 200"),
    ("names", lambda d: d.update(input_names=[]), "len of input_name"),
    ("fan_in", lambda d: d["fan_in"].__setitem__(0, 2**40), "fan_in[0] = 1099511627776 is out of range"),
]


@pytest.mark.parametrize("name, edit, needle", FORGERIES, ids=[f[0] for f in FORGERIES])
def test_forged_image_refused_on_parse(name, edit, needle):
    with pytest.raises(ImageError, match=re.escape(needle)):
        CoreImage.from_dict(forge(edit))


@pytest.mark.parametrize("name, edit, needle", FORGERIES[:3], ids=[f[0] for f in FORGERIES[:3]])
def test_image_check_refuses_forged_image(tmp_path, capsys, name, edit, needle):
    p = tmp_path / "img.json"
    p.write_text(json.dumps(forge(edit)))
    assert main(["image", "--check", str(p), "--target", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "valid" not in err


def _in_memory_forgery() -> CoreImage:
    img = small_image()
    img.inputs = [60000]  # an image built in code, not read from a file
    return img


def test_device_load_and_attach_refuse_a_forged_image():
    dev = Device(EmuSerial(EmuBoard(CFG, model_line=False)), timeout=0.05)
    with pytest.raises(ImageError, match=r"inputs\[0\]"):
        dev.load(_in_memory_forgery())
    with pytest.raises(ImageError, match=r"inputs\[0\]"):
        dev.attach(_in_memory_forgery())


def test_image_model_refuses_a_forged_image():
    img = small_image()
    img.synapses = img.synapses + [(1 << 40)]
    with pytest.raises(ImageError, match=r"synapses\[3\] = 1099511627776"):
        ImageModel(img)


def test_a_lowered_image_validates():
    assert small_image().validate() is not None
    CoreImage.from_dict(small_image().to_dict())
