"""Generate a corpus of hostile input files (networks, inputs, core images, NIR, TENNLab).

Run as a script (``python tests/hostile_corpus.py DIR``) or call :func:`generate`. Every file is
derived, deterministically, from one small valid file of its kind by one hostile edit: wrong
types, huge and non-finite numbers, missing and unknown fields, deep nesting, truncation, bytes
that are not UTF-8, forged image contents with a recomputed CRC, mismatched NIR shapes. The
test ``tests/test_hostile_corpus.py`` walks each through the commands that read it.
"""

from __future__ import annotations

import copy
import json
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Values that replace one field at a time.
HOSTILE_VALUES: list[Any] = [
    None, True, "1", "", [], {}, [1], -1, 0, 2**31, 2**32, 2**53 + 1, 10**30, -(10**30), 1e308, -1e308, 1e-308,
    0.5, -0.5, 3.5, 1e9, 2**20 + 1, "nan", "inf",
]


def _valid_network() -> dict[str, Any]:
    return {"format": "spikeforge.network", "version": 1,
            "neurons": [{"id": 0, "threshold": 1}, {"id": 1, "threshold": 2, "leak": "shift", "leak_shift": 2},
                        {"id": 2, "threshold": 1, "refractory": 1, "bias": 0}],
            "synapses": [{"pre": 0, "post": 1, "weight": 2, "delay": 1}, {"pre": 1, "post": 2, "weight": 1, "delay": 3}],
            "inputs": [{"name": "a", "neuron": 0}], "outputs": [{"name": "z", "neuron": 2}], "metadata": {}}


def _valid_tennlab() -> dict[str, Any]:
    return {
        "Properties": {
            "node_properties": [{"name": "Threshold", "type": 73, "index": 0, "size": 1, "min_value": 0.0,
                                 "max_value": 1.0}],
            "edge_properties": [{"name": "Weight", "type": 73, "index": 0, "size": 1, "min_value": -1.0,
                                 "max_value": 1.0},
                                {"name": "Delay", "type": 73, "index": 1, "size": 1, "min_value": 1.0,
                                 "max_value": 15.0}],
            "network_properties": []},
        "Nodes": [{"id": 0, "values": [1.0]}, {"id": 1, "values": [1.0]}],
        "Edges": [{"from": 0, "to": 1, "values": [1.0, 3.0]}],
        "Inputs": [0], "Outputs": [1], "Network_Values": [],
        "Associated_Data": {"other": {"proc_name": "risp"},
                            "proc_params": {"discrete": True, "fire_like_ravens": False, "leak_mode": "none",
                                            "max_delay": 15, "max_threshold": 1, "max_weight": 1,
                                            "min_potential": -1, "min_threshold": 0, "min_weight": -1,
                                            "run_time_inclusive": False, "spike_value_factor": 1,
                                            "threshold_inclusive": True}}}


def _network_variants() -> Iterator[tuple[str, Any]]:
    base = _valid_network()
    for where, key in [("neurons", "id"), ("neurons", "threshold"), ("neurons", "bias"), ("neurons", "v_min"),
                       ("neurons", "refractory"), ("neurons", "leak_shift"), ("synapses", "weight"),
                       ("synapses", "delay"), ("synapses", "pre")]:
        for k, v in enumerate(HOSTILE_VALUES):
            doc = copy.deepcopy(base)
            doc[where][0 if where == "synapses" else 1][key] = v
            yield f"net-{where}-{key}-{k}.json", doc
    for name, edit in [("no-neurons", lambda d: d.pop("neurons")), ("format", lambda d: d.update(format="x")),
                       ("version", lambda d: d.update(version=99)), ("unknown", lambda d: d.update(extra=1)),
                       ("ports", lambda d: d.update(inputs=[{"name": "a", "neuron": 99}])),
                       ("dup-id", lambda d: d["neurons"].append({"id": 0})),
                       ("meta-deep", lambda d: d.update(metadata={"x": json.loads("[" * 500 + "]" * 500)})),
                       ("neurons-obj", lambda d: d.update(neurons={"0": {}})),
                       ("leak", lambda d: d["neurons"][0].update(leak="sometimes"))]:
        doc = copy.deepcopy(base)
        edit(doc)
        yield f"net-{name}.json", doc
    text = json.dumps(base)
    yield "net-truncated.json", text[: len(text) // 2]
    yield "net-empty.json", ""
    yield "net-deep.json", "[" * 50000 + "]" * 50000
    yield "net-bigint.json", text.replace('"id": 0', '"id": ' + "9" * 5000, 1)
    yield "net-binary.json", b"\xff\xfe\x00garbage\x80"
    yield "net-top-list.json", [base]


def _inputs_variants() -> Iterator[tuple[str, Any]]:
    for k, v in enumerate(HOSTILE_VALUES):
        for pos in range(3):
            t = [0, 0, 1]
            t[pos] = v
            yield f"in-{pos}-{k}.json", [t]
    yield "in-not-list.json", {"a": 1}
    yield "in-short.json", [[0, 0]]
    yield "in-deep.json", "[" * 50000 + "]" * 50000


def _image_variants() -> Iterator[tuple[str, Any]]:
    from spikeforge.hdl.config import preset
    from spikeforge.hdl.image import lower
    from spikeforge.toolchain.ir import Network

    img = lower(Network.from_dict(_valid_network()), preset("tiny")).to_dict()

    def forged(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        doc = copy.deepcopy(img)
        edit(doc)
        body = {k: v for k, v in doc.items() if k != "crc32"}
        doc["crc32"] = zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        return doc

    for key in ("neuron_ids", "inputs", "outputs", "params", "index", "synapses", "fan_in"):
        for k, v in enumerate([[], [-1], [2**40], [10**30], ["x"], None, [None], 7]):
            yield f"img-{key}-{k}.json", forged(lambda d, key=key, v=v: d.update({key: v}))
    yield "img-bad-crc.json", {**img, "crc32": 1}
    yield "img-config.json", forged(lambda d: d["config"].update(n_neurons=10**9))


def _tennlab_variants() -> Iterator[tuple[str, Any]]:
    base = _valid_tennlab()
    for k, v in enumerate(HOSTILE_VALUES):
        for name, edit in [("node-id", lambda d, v=v: d["Nodes"][0].update(id=v)),
                           ("node-value", lambda d, v=v: d["Nodes"][0].update(values=[v])),
                           ("delay", lambda d, v=v: d["Edges"][0].update(values=[1.0, v])),
                           ("max-delay", lambda d, v=v: d["Associated_Data"]["proc_params"].update(max_delay=v))]:
            doc = copy.deepcopy(base)
            edit(doc)
            yield f"tl-{name}-{k}.json", doc


def _nir_variants(out: Path) -> list[str]:
    try:
        import nir
        import numpy as np
    except ImportError:  # pragma: no cover - nir is a dependency
        return []
    made = []
    for name, (rows, cols, bias, neurons) in {"big": (1100, 1000, 1100, 1100), "shape": (3, 4, 3, 5),
                                              "bias": (3, 4, 7, 3), "ok": (3, 4, 3, 3)}.items():
        g = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([cols])),
                   "aff": nir.Affine(weight=np.ones((rows, cols)), bias=np.zeros(bias)),
                   "lif": nir.IF(r=np.ones(neurons), v_threshold=np.ones(neurons), v_reset=np.zeros(neurons)),
                   "output": nir.Output(output_type=np.array([neurons]))},
            edges=[("input", "aff"), ("aff", "lif"), ("lif", "output")], type_check=False)
        p = out / f"nir-{name}.nir"
        nir.write(str(p), g)
        made.append(p.name)
    for name, data in {"nir-empty.nir": b"", "nir-garbage.nir": b"\x89HDF\r\n\x1a\nnot really"}.items():
        (out / name).write_bytes(data)
        made.append(name)
    return made


def generate(out: str | Path) -> dict[str, list[str]]:
    """Write the corpus into ``out``; return the file names by kind (network, inputs, image,
    tennlab, nir)."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, list[str]] = {}
    for kind, gen in (("network", _network_variants), ("inputs", _inputs_variants), ("image", _image_variants),
                      ("tennlab", _tennlab_variants)):
        names = []
        for name, doc in gen():
            p = d / name
            if isinstance(doc, bytes):
                p.write_bytes(doc)
            else:
                p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
            names.append(name)
        kinds[kind] = names
    kinds["nir"] = _nir_variants(d)
    (d / "valid-net.json").write_text(json.dumps(_valid_network()))
    return kinds


if __name__ == "__main__":  # pragma: no cover
    kinds = generate(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    sys.stdout.write(json.dumps({k: len(v) for k, v in kinds.items()}) + "\n")
