"""The evolutionary trainer: genome operators stay inside the core, runs are reproducible and
resumable, bad tasks are reported per individual, the tiny XOR task is solved."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence

import numpy as np
import pytest

from spikeforge.firmware.boards import resolve_target
from spikeforge.hdl.config import CoreConfig, preset
from spikeforge.hdl.image import lower
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.codec import io_of
from spikeforge.toolchain.ir import Network, load_network
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.train.evolve import (
    EvolveConfig,
    EvolveError,
    Limits,
    check_limits,
    crossover,
    evolve,
    hardware_check,
    initial_network,
    load_checkpoint,
    mutate,
    pareto_front,
    tournament,
)
from spikeforge.toolchain.train.parallel import DaskEvaluator, PoolEvaluator, SerialEvaluator
from spikeforge.toolchain.train.tasks import XorTask, load_task

# A core with tight budgets and narrow fields, so repair and the limits are exercised.
NARROW = CoreConfig(name="narrow", n_neurons=12, n_synapses=24, max_delay=3, weight_bits=4,
                    threshold_bits=6, potential_bits=8, accumulator_bits=8, bias_bits=4,
                    input_bits=8, refractory_bits=2)
ALL_OPS = {"add_neuron": 1, "remove_neuron": 1, "add_synapse": 1, "remove_synapse": 1, "threshold": 1,
           "weight": 1, "delay": 1, "leak": 1, "reset": 1, "refractory": 1, "bias": 1}


def _fits(net: Network, lim: Limits, core: CoreConfig) -> None:
    check_limits(net, lim)
    lower(net, core)  # the image's own definition of what fits
    hardware_check(net, core)  # the compiler's design-rule check when present
    simulate(net, [(0, 0, 1), (1, 1, 1)], 6, potential_bits=core.potential_bits)


@pytest.mark.parametrize("core", [NARROW, preset("tiny")], ids=lambda c: c.name)
def test_mutations_stay_valid_and_inside_the_core(core: CoreConfig) -> None:
    cfg = EvolveConfig(population=4, rates=ALL_OPS, mutations=3.0, start_hidden=2, start_synapses=10,
                       refractory_max=7)
    lim2 = Limits.of(core, cfg, 2, 2)
    assert lim2.threshold[1] <= (1 << core.threshold_bits) - 1 and lim2.weight == (
        -(1 << (core.weight_bits - 1)), (1 << (core.weight_bits - 1)) - 1)
    rng = np.random.default_rng(3)
    task = XorTask()
    seen_ops = set()
    for _ in range(6):
        net = initial_network(lim2, cfg, rng, task.codec())
        _fits(net, lim2, core)
        for _ in range(60):
            before = (len(net.neurons), len(net.synapses))
            net = mutate(net, lim2, cfg, rng)
            _fits(net, lim2, core)
            seen_ops.add((len(net.neurons) > before[0], len(net.synapses) < before[1]))
            assert io_of(net)[0].n_inputs == 2  # codec metadata survives
        assert len(net.neurons) <= core.n_neurons and len(net.synapses) <= core.n_synapses
    assert (True, False) in seen_ops  # neurons were added somewhere


def test_crossover_children_are_valid_and_inherit() -> None:
    cfg = EvolveConfig(population=4, rates=ALL_OPS, start_hidden=3, start_synapses=12)
    core = NARROW
    lim = Limits.of(core, cfg, 2, 2)
    rng = np.random.default_rng(5)
    for _ in range(30):
        a = initial_network(lim, cfg, rng)
        b = initial_network(lim, cfg, rng)
        child = crossover(a, b, lim, rng)
        _fits(child, lim, core)
        assert [p.neuron for p in child.inputs] == [p.neuron for p in a.inputs]
        keys = {(s.pre, s.post, s.weight, s.delay) for s in child.synapses}
        shared = {(s.pre, s.post, s.weight, s.delay) for s in a.synapses} & {
            (s.pre, s.post, s.weight, s.delay) for s in b.synapses}
        io = {0, 1, 2, 3}
        assert {k for k in shared if k[0] in io and k[1] in io} <= keys or len(child.synapses) == lim.max_synapses


def test_limits_refuse_io_over_budget_and_bad_settings() -> None:
    with pytest.raises(EvolveError, match="budget is 12"):
        Limits.of(NARROW, EvolveConfig(), 10, 4)
    with pytest.raises(EvolveError, match="population = 1"):
        EvolveConfig(population=1)
    with pytest.raises(EvolveError, match="unknown operator 'grow'"):
        EvolveConfig(rates={"grow": 1.0})
    with pytest.raises(ValueError, match="--target 'nope': is neither a preset"):
        resolve_target("nope")
    assert resolve_target("icebreaker").config.name == "up5k"


def test_tournament_and_pareto() -> None:
    rng = np.random.default_rng(0)
    scores = np.array([0.1, 0.9, 0.5])
    picks = [tournament(scores, 3, rng) for _ in range(200)]
    assert np.bincount(picks, minlength=3)[1] > 100
    pts = [(0.5, 10), (0.7, 20), (0.6, 30), (0.9, 40), (0.9, 50), (0.4, 5)]
    assert [pts[i] for i in pareto_front(pts)] == [(0.4, 5), (0.5, 10), (0.7, 20), (0.9, 40)]


def test_xor_is_solved() -> None:
    res = evolve(XorTask(), preset("tiny"), EvolveConfig(population=30), generations=30, seed=2,
                 progress=False, target_fitness=1.0)
    assert res.best_fitness == 1.0
    assert res.info["train_accuracy"] == 1.0
    enc, dec = io_of(res.best)
    from spikeforge.toolchain.codec import output_raster

    for x, y in ([0, 0], 0), ([0, 1], 1), ([1, 0], 1), ([1, 1], 0):  # the oracle, sample by sample
        r = simulate(res.best, enc.encode(x), enc.steps)
        assert dec.decode(output_raster(res.best, r)) == y
    prov = res.best.metadata["provenance"]
    assert prov["task"] == "xor" and prov["seed"] == 2 and prov["fitness"] == 1.0
    lower(res.best, preset("tiny"))


def _run_doc(run_dir) -> dict:  # type: ignore[no-untyped-def]
    doc = load_checkpoint(run_dir)
    return {"population": doc["population"], "rng": doc["rng"], "generation": doc["generation"],
            "best": doc["best"], "pareto": doc["pareto"],
            "history": [{k: v for k, v in h.items() if k != "seconds"} for h in doc["history"]]}


def test_same_seed_same_run_and_exact_resume(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = EvolveConfig(population=16, crossover_rate=0.5)
    task, core = XorTask(steps=6), preset("tiny")
    kw = {"progress": False, "seed": 7}
    evolve(task, core, cfg, generations=4, run_dir=tmp_path / "a", **kw)
    evolve(task, core, cfg, generations=4, run_dir=tmp_path / "b", **kw)
    assert _run_doc(tmp_path / "a") == _run_doc(tmp_path / "b")
    evolve(task, core, cfg, generations=2, run_dir=tmp_path / "c", **kw)
    assert load_checkpoint(tmp_path / "c")["generation"] == 1
    res = evolve(task, core, None, generations=4, run_dir=tmp_path / "c", resume=True, progress=False)
    assert res.generations == 4
    assert _run_doc(tmp_path / "a") == _run_doc(tmp_path / "c")
    assert (tmp_path / "c" / "fitness.png").stat().st_size > 1000
    with pytest.raises(EvolveError, match="not 'cartpole'"):
        evolve(task, core, None, generations=5, run_dir=tmp_path / "c", resume=True, task_spec="cartpole")


def test_workers_give_the_same_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = EvolveConfig(population=12)
    task, core = XorTask(steps=6), preset("tiny")
    evolve(task, core, cfg, generations=3, run_dir=tmp_path / "serial", seed=4, progress=False)
    with PoolEvaluator(task, 2) as ev:
        evolve(task, core, cfg, generations=3, run_dir=tmp_path / "pool", seed=4, progress=False, evaluator=ev)
    assert _run_doc(tmp_path / "serial") == _run_doc(tmp_path / "pool")


# ------------------------------------------------------------------------- bad tasks
class MoodyTask:
    """Fitness = synapse count / 100, except for networks with a marked synapse count."""

    name = "moody"
    n_inputs = 2
    n_outputs = 1

    def __init__(self, mode: str, bad: int = 3) -> None:
        self.mode, self.bad = mode, bad

    def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray:
        out = []
        for n in networks:
            if len(n.synapses) == self.bad:
                if self.mode == "raise":
                    raise RuntimeError("boom in the task")
                if self.mode == "hang":
                    time.sleep(60)
                out.append(math.nan)
            else:
                out.append(len(n.synapses) / 100)
        return np.array(out)


def _population(n: int = 8) -> list[Network]:
    cfg = EvolveConfig(population=n, start_synapses=0)
    lim = Limits.of(preset("tiny"), cfg, 2, 1)
    rng = np.random.default_rng(0)
    nets = [initial_network(lim, cfg, rng) for _ in range(n)]
    for k, net in enumerate(nets):
        for _ in range(k):
            net.add_synapse(0, 2, 1, 1)
    return nets


@pytest.mark.parametrize("mode", ["raise", "nan", "hang"])
def test_bad_task_is_reported_per_individual(mode: str) -> None:
    nets = _population()
    ids = [100 + k for k in range(len(nets))]
    with SerialEvaluator(MoodyTask(mode), timeout=0.5) as ev:
        ev.workers = 2  # two chunks: one fails as a whole, then one by one
        fit, errors = ev.evaluate(nets, ids, 0)
    assert [e.individual for e in errors] == [103]
    assert fit[3] == -math.inf and np.allclose(np.delete(fit, 3), np.delete(np.arange(8) / 100, 3))
    want = {"raise": "boom in the task", "nan": "not a finite number", "hang": "timeout of 0.5 s"}[mode]
    assert want in errors[0].message and "individual 103" in str(errors[0])


@pytest.mark.slow
def test_pool_kills_a_hung_worker_and_goes_on() -> None:
    nets = _population()
    with PoolEvaluator(MoodyTask("hang"), 2, timeout=3.0) as ev:
        t0 = time.perf_counter()
        fit, errors = ev.evaluate(nets, list(range(8)), 0)
        assert time.perf_counter() - t0 < 40
        assert [e.individual for e in errors] == [3] and "timeout" in errors[0].message
        fit2, errors2 = ev.evaluate(nets[:3], [0, 1, 2], 0)  # the restarted pool still works
    assert not errors2 and np.allclose(fit2, [0, 0.01, 0.02])


def test_run_survives_a_failing_individual(caplog) -> None:  # type: ignore[no-untyped-def]
    res = evolve(MoodyTask("raise", bad=1), preset("tiny"), EvolveConfig(population=10, start_synapses=0),
                 generations=3, seed=0, progress=False)
    assert any("boom in the task" in e for e in res.errors)
    assert "individual" in res.errors[0]


def test_unreachable_scheduler_fails_fast() -> None:
    t0 = time.perf_counter()
    with pytest.raises(EvolveError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        DaskEvaluator(XorTask(), "tcp://127.0.0.1:9", connect_timeout=2.0)
    assert time.perf_counter() - t0 < 20


def test_dask_local_cluster_gives_the_serial_fitness() -> None:
    from distributed import LocalCluster

    task = XorTask(steps=6)
    cfg = EvolveConfig(population=10, start_hidden=2, start_synapses=8)
    lim = Limits.of(preset("tiny"), cfg, 2, 2)
    rng = np.random.default_rng(1)
    nets = [initial_network(lim, cfg, rng, task.codec()) for _ in range(10)]
    want, _ = SerialEvaluator(task).evaluate(nets, list(range(10)), 0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            DaskEvaluator(task, cluster.scheduler_address) as ev:
        assert ev.workers == 2
        got, errors = ev.evaluate(nets, list(range(10)), 0)
    assert not errors and np.array_equal(got, want)


# ------------------------------------------------------------------------- plug-ins
def xor_like(networks: Sequence[Network], seed: int) -> list[float]:
    """A plain fitness function plug-in: fewer synapses is better."""
    return [1.0 / (1 + len(n.synapses)) for n in networks]


xor_like.n_inputs = 3  # type: ignore[attr-defined]
xor_like.n_outputs = 1  # type: ignore[attr-defined]


def test_plugins_function_and_class() -> None:
    t = load_task("test_evolve:xor_like")
    assert (t.n_inputs, t.n_outputs) == (3, 1)
    assert load_task("test_evolve:xor_like", n_inputs=5, n_outputs=2).n_inputs == 5
    cfg = EvolveConfig(population=10, rates={"remove_synapse": 1.0, "weight": 1.0})
    res = evolve(t, preset("tiny"), cfg, generations=6, progress=False)
    assert res.best_fitness == 1.0  # every synapse removed
    from spikeforge.toolchain.train.tasks import TaskError

    with pytest.raises(TaskError, match="cannot import module 'no_such_mod'"):
        load_task("no_such_mod:f")
    with pytest.raises(TaskError, match="has no attribute 'nope'"):
        load_task("test_evolve:nope")
    with pytest.raises(TaskError, match="unknown; allowed: xor"):
        load_task("chess")


def test_plugin_from_a_file_path_via_the_cli(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "my_fit_task.py"
    src.write_text("def fitness(networks, seed):\n    return [-len(n.synapses) for n in networks]\n")
    out = tmp_path / "net.json"
    assert main(["train", "evolve", "--task", f"{src}:fitness", "--inputs", "2", "--outputs", "1",
                 "--target", "tiny", "--generations", "2", "--population", "4", "--workers", "1",
                 "-o", str(out), "--no-progress"]) == 0
    net = load_network(out)
    assert len(net.inputs) == 2 and len(net.outputs) == 1
    assert net.metadata["provenance"]["task"] == f"{src}:fitness"
    capsys.readouterr()
    assert main(["train", "evolve", "--task", f"{src}:fitness", "--target", "tiny", "-o", str(out)]) == 2
    assert "n_inputs = None is invalid" in capsys.readouterr().err


# ------------------------------------------------------------------------- CLI
def test_cli_train_evolve_and_resume(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "xor.json"
    argv = ["train", "evolve", "--task", "xor", "--target", "tiny", "-o", str(out), "--workers", "1",
            "--generations", "2", "--population", "12", "--no-progress", "--target-fitness", "2"]
    assert main(argv) == 0
    net = load_network(out)
    io_of(net)
    assert net.metadata["provenance"]["generation"] in (0, 1)
    run = tmp_path / "xor.json.run"
    assert json.loads((run / "checkpoint.json").read_text())["generation"] == 1
    assert (run / "fitness.png").exists() and (run / "pareto.json").exists()
    assert "fits core 'tiny'" in capsys.readouterr().out
    assert main(["train", "evolve", "-o", str(out), "--resume", str(run), "--generations", "3",
                 "--workers", "1", "--no-progress", "--target-fitness", "2"]) == 0
    assert json.loads((run / "checkpoint.json").read_text())["generation"] == 2
    capsys.readouterr()
    assert main(["train", "evolve", "--task", "xor", "--target", "nope", "-o", str(out)]) == 2
    assert "--target 'nope': is neither a preset" in capsys.readouterr().err
    assert main(["train", "evolve", "-o", str(out), "--resume", str(run), "--generations", "2"]) == 2
    assert "already holds 3 generations" in capsys.readouterr().err
    assert main(["train", "evolve", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_evolve_prints_one_json_line_per_figure(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["bench", "evolve", "--population", "4"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    cases = [d["case"] for d in lines]
    assert cases[0] == "single-process" and cases[1].startswith("process-pool") and cases[2].startswith("dask-local")
    assert all(d["evaluations_per_s"] > 0 for d in lines[:3]) and lines[3]["env_steps_per_s"] > 0


def test_robot_task_plugs_in_with_its_named_ports() -> None:
    """The robot task (toolchain/robot/task.py) against this trainer: its new_network() template."""
    from spikeforge.toolchain.robot.task import RobotTask

    task = RobotTask(n_arenas=1, steps=20)
    tmpl = task.new_network()
    res = evolve(task, preset("up5k"), EvolveConfig(population=4, start_synapses=6), generations=2,
                 seed=0, progress=False)
    net = res.best
    assert [p.name for p in net.inputs] == [p.name for p in tmpl.inputs]
    assert [p.name for p in net.outputs] == [p.name for p in tmpl.outputs]
    assert net.neurons[:len(tmpl.inputs)] == tmpl.neurons[:len(tmpl.inputs)]  # inputs kept as given
    assert "robot_task" in net.metadata and io_of(net)
    hardware_check(net, preset("up5k"))
    bad = Network()
    bad.add_neuron(0), bad.add_neuron(1)
    bad.add_input(1), bad.add_output(0)
    with pytest.raises(EvolveError, match="must start with its 1 input neurons"):
        initial_network(Limits.of(preset("tiny"), EvolveConfig(), 1, 1), EvolveConfig(),
                        np.random.default_rng(0), template=bad)


def test_a_task_broken_for_everyone_stops_the_run_quickly() -> None:
    class Broken(MoodyTask):
        def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray:
            raise RuntimeError("no data")

    nets = _population()
    with SerialEvaluator(Broken("raise")) as ev:
        ev.workers = 2
        fit, errors = ev.evaluate(nets, list(range(8)), 0)
    assert np.isneginf(fit).all() and len(errors) == 8
    assert "no data" in errors[0].message and "failed on every individual tried" in errors[-1].message
    with pytest.raises(EvolveError, match="every individual failed to evaluate; first error: individual 0: "
                                          "RuntimeError: no data"):
        evolve(Broken("raise"), preset("tiny"), EvolveConfig(population=6), generations=2, progress=False)
