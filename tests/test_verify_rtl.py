"""The RTL core on Verilator, spike for spike against the reference model (sim.verify)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikeforge.hdl.config import PRESETS
from spikeforge.sim import verify as verify_mod
from spikeforge.sim.verify import first_divergence, garbage_words, verify_cases
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.netgen import edge_cases, random_case
from spikeforge.toolchain.reference import simulate

BUILD = Path(__file__).resolve().parents[1] / "build" / "test_verify"


def cases_for(cfg, n_random, seed=0, neurons=16, synapses=48, steps=40):
    cs = [random_case(seed + k, min(neurons, cfg.n_neurons), synapses, steps=steps, max_delay=cfg.max_delay)
          for k in range(n_random)]
    return cs + edge_cases(cfg.potential_bits, cfg.max_delay, min(cfg.n_neurons, 32))


@pytest.mark.verilator
def test_tiny_core_matches_reference_with_garbage_and_pressure():
    cfg = PRESETS["tiny"]
    cases = cases_for(cfg, 16)
    report = verify_cases(cases, cfg, build_dir=BUILD, garbage=24, pressure=True, seed=3)
    assert report.ok, report.summary()
    assert len(report.cases) == len(cases)
    assert sum(c.spikes for c in report.cases) > 200  # the comparison is not vacuous
    assert all(c.events >= 0 and c.busy_cycles > 0 for c in report.cases if c.spikes)
    assert sum(c.events for c in report.cases) > 0  # synapses really delivered on the RTL


@pytest.mark.verilator
def test_divergence_is_caught_and_named(monkeypatch):
    """Negative control: make the oracle disagree; verify must fail and name the spot."""
    cfg = PRESETS["tiny"]
    case = random_case(5, 16, 48, steps=40, max_delay=cfg.max_delay)
    wrong = case.network.copy()
    for s in wrong.synapses:
        s.weight = -s.weight
    bad = simulate(wrong, case.inputs, case.steps)
    assert first_divergence(simulate(case.network, case.inputs, case.steps), bad) is not None
    monkeypatch.setattr(verify_mod, "simulate", lambda *a, **k: bad)
    monkeypatch.setattr(verify_mod, "run_image", lambda *a, **k: bad)
    report = verify_cases([case], cfg, build_dir=BUILD)
    assert not report.ok
    assert report.cases[0].rung == "rtl"
    assert "FIRST DIVERGENCE" in report.summary() and "neuron" in report.summary()


def test_garbage_words_cover_every_opcode():
    import random

    cfg = PRESETS["tiny"]
    words = garbage_words(cfg, random.Random(0), 400)
    assert {w & 7 for w in words} == set(range(8))


@pytest.mark.verilator
def test_cli_verify_exit_codes(capsys, tmp_path):
    rc = main(["verify", "--random", "2", "--no-edge-cases", "--steps", "20", "--build-dir", str(BUILD.parent / "test_verify_cli")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2/2 cases match" in out


def test_cli_verify_bad_config(capsys):
    assert main(["verify", "--target", "nonesuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a preset" in err[0]


def test_cli_verify_network_too_big(capsys, tmp_path):
    from spikeforge.toolchain.ir import save_network
    from spikeforge.toolchain.netgen import random_network

    p = tmp_path / "big.json"
    save_network(random_network(0, 40, 50), p)
    assert main(["verify", "--network", str(p), "--target", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "40" in err[0], err


@pytest.mark.slow
@pytest.mark.verilator
def test_small_core_random_sweep():
    """Hundreds of random networks on the 'small' preset, with garbage and stream pressure."""
    cfg = PRESETS["small"]
    cases = cases_for(cfg, 300, seed=1000, neurons=48, synapses=200, steps=60)
    report = verify_cases(cases, cfg, build_dir=BUILD, garbage=16, pressure=True, seed=11, timeout=3000)
    assert report.ok, report.summary()


@pytest.mark.slow
@pytest.mark.verilator
def test_cli_verify_shrinks_a_failure(capsys, tmp_path, monkeypatch):
    """Plant a bug in the oracle (subtract reset treated as reset to zero): verify fails and
    --shrink writes a minimal network that still disagrees with the RTL."""
    from spikeforge.toolchain.ir import Reset, load_network

    real = verify_mod.simulate

    def buggy(net, *a, **k):
        net = net.copy()
        for n in net.neurons:
            n.reset = Reset.ZERO
        return real(net, *a, **k)

    monkeypatch.setattr(verify_mod, "simulate", buggy)
    out = tmp_path / "small.json"
    rc = main(["verify", "--random", "4", "--no-edge-cases", "--steps", "30", "--garbage", "0",
               "--shrink", str(out), "--build-dir", str(BUILD.parent / "test_verify_cli")])
    text = capsys.readouterr().out
    assert rc == 1
    assert "shrunk to" in text and "replay: spikeforge verify" in text
    small = load_network(out)
    assert len(small.neurons) <= 3
    assert any(n.reset is Reset.SUBTRACT for n in small.neurons)
    assert (tmp_path / "small.inputs.json").exists()


def test_cli_verify_network_fits_no_preset(capsys, tmp_path):
    from spikeforge.toolchain.ir import save_network
    from spikeforge.toolchain.netgen import random_network

    p = tmp_path / "huge.json"
    save_network(random_network(0, 5000, 10), p)
    assert main(["verify", "--network", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fits no core" in err[0] and "5000 neurons" in err[0]


@pytest.mark.parametrize("name", ["tiny", "up5k"])
def test_core_cases_fit_the_core_and_are_seeded(name):
    """What `spikeforge verify` runs: every random case lowers onto the core as it is."""
    from spikeforge.hdl.image import lower
    from spikeforge.sim.verify import core_cases

    cfg = PRESETS[name]
    cases = core_cases(cfg, 5, seed=3, steps=20)
    assert len(cases) == 5 + len(core_cases(cfg, 0))
    assert len(core_cases(cfg, 5, seed=3, steps=20, edge=False)) == 5
    for c in cases[:5]:
        lower(c.network, cfg)
        assert c.steps == 20 and len(c.network.neurons) <= 24 and len(c.network.synapses) <= 72
    assert [c.network.to_dict() for c in cases[:5]] == [c.network.to_dict() for c in core_cases(cfg, 5, 3, 20)[:5]]
