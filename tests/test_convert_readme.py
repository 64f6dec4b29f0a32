"""spikeforge convert, and the README's Python example stays true."""

from __future__ import annotations

import json
import re
from pathlib import Path

from spikeforge.toolchain.cli import main
from spikeforge.toolchain.ir import load_network, save_network
from spikeforge.toolchain.robot.demo import braitenberg

ROOT = Path(__file__).resolve().parents[1]


def test_convert_round_trip(tmp_path, capsys):
    src = ROOT / "tests" / "data" / "risp_main_out.json"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["convert", str(src), str(a), "--to", "spikeforge"]) == 0
    assert load_network(a).neuron_ids  # a valid spikeforge file
    assert main(["convert", str(a), str(b), "--to", "tennlab"]) == 0
    assert json.loads(b.read_text()) == json.loads(src.read_text())


def test_convert_refuses_what_risp_cannot_express(tmp_path, capsys):
    p = tmp_path / "n.json"
    save_network(braitenberg(), p)
    out = tmp_path / "out.json"
    assert main(["convert", str(p), str(out), "--to", "tennlab"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neuron" in err[0]
    assert not out.exists()  # nothing half-written


def test_readme_python_example(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()[0]
    promised = re.search(r"print\(res\.fire_counts, res\.spikes\[:3\]\)\s+# (.*)", code).group(1)
    assert printed == promised
