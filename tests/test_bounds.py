"""Resource bounds before work: one number in a file cannot make a command allocate gigabytes.

Each case runs the CLI in a child process under a 1 GiB address-space limit and a time limit,
and expects exit code 2 with one line that names the element, field, value and limit (before
the bounds, each of these ran out of memory, hung or raised a Python exception).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MEMORY = 1 << 30
TIMEOUT = 60


def _limit() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process under :data:`MEMORY` and :data:`TIMEOUT`."""
    code = "import sys; from spikeforge.toolchain.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, preexec_fn=_limit, cwd=cwd, env=env)


def assert_refused(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one line on stderr, no Python exception name, and every needle in it."""
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, err[-2000:])
    assert len(err.splitlines()) == 1, err[-2000:]
    assert "Error:" not in err.removeprefix("spikeforge: error:"), err
    for n in needles:
        assert n in err, (n, err)


def two_neurons(**syn: object) -> dict:
    return {"format": "spikeforge.network", "version": 1,
            "neurons": [{"id": 0}, {"id": 1}],
            "synapses": [{"pre": 0, "post": 1, "weight": 1, "delay": 1, **syn}],
            "inputs": [{"name": "a", "neuron": 0}], "outputs": [{"name": "b", "neuron": 1}]}


def write(tmp_path: Path, name: str, doc: object) -> str:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(p)


@pytest.mark.parametrize("command", [["simulate", "--steps", "10"], ["compile"], ["verify", "--steps", "10"]])
def test_huge_delay_is_refused_by_the_ir(tmp_path, command):
    f = write(tmp_path, "net.json", two_neurons(delay=10**9))
    args = [command[0], *(["--network", f] if command[0] == "verify" else [f]), *command[1:]]
    assert_refused(run_cli(*args, "-o", str(tmp_path / "o.json")) if command == ["compile"] else run_cli(*args),
                   "synapse #0", "'delay'", "1000000000", "1..1048576")


def test_long_delay_within_the_ir_refused_before_relays_are_built(tmp_path):
    f = write(tmp_path, "net.json", two_neurons(delay=10**6))
    r = run_cli("compile", f, "--target", "tiny", "-o", str(tmp_path / "o.json"))
    assert_refused(r, "1000000 steps", "124999 relay neurons", "hold 32 neurons")


def test_verify_network_refuses_long_delay_fast(tmp_path):
    f = write(tmp_path, "net.json", two_neurons(delay=10**6))
    assert_refused(run_cli("verify", "--network", f, "--steps", "10", "--target", "tiny"), "relay neurons")


@pytest.mark.parametrize("field, value, needle", [
    ("weight", 1e308, "'weight' = 1e+308"),
    ("weight", 10**30, "'weight' = 1000000000000000000000000000000"),
])
def test_huge_values_refused(tmp_path, field, value, needle):
    f = write(tmp_path, "net.json", two_neurons(**{field: value}))
    assert_refused(run_cli("compile", f, "-o", str(tmp_path / "o.json")), needle, "9007199254740992")


def test_huge_threshold_and_id_refused(tmp_path):
    doc = two_neurons()
    doc["neurons"][1]["threshold"] = 1e308
    assert_refused(run_cli("compile", write(tmp_path, "t.json", doc)), "neuron 1", "'threshold' = 1e+308")
    doc = two_neurons()
    doc["neurons"][0]["id"] = 10**30
    assert_refused(run_cli("simulate", write(tmp_path, "i.json", doc)), "'id' = 1000000000000000000000000000000",
                   "4294967295")
    text = json.dumps(two_neurons()).replace('{"id": 0}', '{"id": ' + "9" * 5000 + "}", 1)
    assert_refused(run_cli("simulate", write(tmp_path, "j.json", text)), "j.json")  # > 4300 digits


def test_deeply_nested_json_refused(tmp_path):
    assert_refused(run_cli("simulate", write(tmp_path, "deep.json", "[" * 100000 + "]" * 100000)),
                   "nested too deeply")
    doc = two_neurons()
    doc["metadata"] = {"x": json.loads("[" * 900 + "]" * 900)}
    assert_refused(run_cli("compile", write(tmp_path, "meta.json", doc)), "'metadata'", "64 levels")


def test_huge_input_value_refused(tmp_path):
    f = write(tmp_path, "net.json", two_neurons())
    ins = write(tmp_path, "in.json", [[0, 0, 10**30]])
    assert_refused(run_cli("simulate", f, "--inputs", ins), "input #0", "value = 1000000000000000000000000000000")


def test_verify_steps_with_a_bad_input_index(tmp_path):
    f = write(tmp_path, "net.json", two_neurons())
    ins = write(tmp_path, "in.json", [[5, 0, 1]])
    r = run_cli("compile", f, "--verify-steps", "5", "--inputs", ins, "-o", str(tmp_path / "o.json"))
    assert_refused(r, "input_index = 5", "1 inputs")


def test_quantization_scale_reported_not_rounded_to_zero(tmp_path):
    doc = two_neurons(weight=2**53)
    doc["neurons"][1]["threshold"] = 0.5
    r = run_cli("compile", write(tmp_path, "n.json", doc), "-o", str(tmp_path / "o.json"), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0 < min(rep["quantization"]["scales"]) < 1e-12


def _nir_graph(w: np.ndarray, bias: np.ndarray, n_neurons: int):
    nir = pytest.importorskip("nir")
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([w.shape[1]])), "aff": nir.Affine(weight=w, bias=bias),
               "lif": nir.IF(r=np.ones(n_neurons), v_threshold=np.ones(n_neurons), v_reset=np.zeros(n_neurons)),
               "output": nir.Output(output_type=np.array([n_neurons]))},
        edges=[("input", "aff"), ("aff", "lif"), ("lif", "output")], type_check=False)


@pytest.mark.parametrize("shape, bias, neurons, needle", [
    ((2000, 2000), 2000, 2000, "2000 x 2000 matrix (4000000 weights)"),
    ((3, 4), 3, 5, "Affine 'aff' gives 3 values to 'lif', which has 5 neurons"),
    ((3, 4), 7, 3, "bias has 7 values; expected 3"),
])
def test_nir_sizes_checked_before_work(tmp_path, shape, bias, neurons, needle):
    nir = pytest.importorskip("nir")
    p = tmp_path / "g.nir"
    nir.write(str(p), _nir_graph(np.ones(shape), np.zeros(bias), neurons))
    assert_refused(run_cli("import", "nir", str(p), "-o", str(tmp_path / "x.json"), "--dt", "1"), needle)
