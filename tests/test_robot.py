"""Robot controllers, the reference backend, the population task and the robot CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikeforge.toolchain.backends import ReferenceBackend
from spikeforge.toolchain.codec import TTFSEncoder, WTADecoder, attach_io, io_of
from spikeforge.toolchain.ir import Network, NetworkError
from spikeforge.toolchain.reference import simulate
from spikeforge.toolchain.robot.arena import load_arena, random_arena
from spikeforge.toolchain.robot.controllers import (
    Braitenberg,
    RandomWalk,
    SpikingController,
    new_robot_network,
    robot_io,
    spiking_braitenberg,
)
from spikeforge.toolchain.robot.task import (
    RobotTask,
    random_robot_network,
    run_population,
    test_arenas,
)
from spikeforge.toolchain.robot.world import MOTOR_NAMES, SENSOR_NAMES, run_episode


# ----------------------------------------------------------------------------- baselines
def test_braitenberg_collides_less_than_the_random_walk() -> None:
    arenas = [random_arena((11, k)) for k in range(4)]
    rw = [run_episode(RandomWalk(), a, steps=400, seed=k, record=False) for k, a in enumerate(arenas)]
    br = [run_episode(Braitenberg(), a, steps=400, seed=k, record=False) for k, a in enumerate(arenas)]
    assert sum(e.collisions for e in br) < sum(e.collisions for e in rw)
    assert sum(e.contact_steps for e in br) < sum(e.contact_steps for e in rw) / 5
    # and it still roams: it covers at least as much as the random walk
    assert np.mean([e.coverage for e in br]) >= np.mean([e.coverage for e in rw])


def test_baseline_motor_vectors() -> None:
    sensors = np.zeros(len(SENSOR_NAMES))
    sensors[7] = 1.0
    m = Braitenberg().act(sensors)
    assert m.tolist() == [1.0, 0.0, 1.0, 0.0]            # nothing near: full ahead
    sensors[2] = 1.0                                      # wall dead ahead: spin right
    m = Braitenberg().act(sensors)
    assert m[0] > 0 and m[3] > 0 and m[2] == 0
    rw = RandomWalk()
    rw.reset(4)
    a = [rw.act(sensors).tolist() for _ in range(50)]
    rw.reset(4)
    assert a == [rw.act(sensors).tolist() for _ in range(50)]
    assert all(0 <= v <= 1 for row in a for v in row)


# ----------------------------------------------------------------------------- spiking
def test_robot_network_ports_and_io() -> None:
    net = new_robot_network(6)
    assert [p.name for p in net.inputs] == list(SENSOR_NAMES)
    assert [p.name for p in net.outputs] == list(MOTOR_NAMES)
    enc, dec = io_of(net)
    assert (enc.kind, enc.steps, enc.n_values, dec.kind, dec.max_count) == ("rate", 6, 9, "count", 6)
    assert io_of(Network.from_json(net.to_json()))[0] == enc        # survives the file
    assert robot_io(6) == (enc, dec)


def test_spiking_controller_equals_a_direct_reference_run() -> None:
    """The closed loop on the reference backend, replayed open loop through simulate()."""
    rng = np.random.default_rng(5)
    for net in (spiking_braitenberg(), random_robot_network(rng), random_robot_network(rng)):
        ctrl = SpikingController(net, record=True)
        ep = run_episode(ctrl, load_arena("pillars"), steps=150, seed=2)
        assert ep.steps == 150
        total = 150 * ctrl.steps
        res = simulate(net, ctrl.input_log, total)
        out_ids = {p.neuron: k for k, p in enumerate(net.outputs)}
        expected = sorted((out_ids[n], t) for n, t in res.spikes if n in out_ids)
        assert sorted(ctrl.output_log) == expected
        assert len(ctrl.input_log) > 150          # the bias input alone spikes every timestep


def test_reference_backend_keeps_state_across_steps() -> None:
    net = Network()
    net.add_neuron(0, threshold=3)              # integrates: fires on every 3rd input
    net.add_synapse(0, 0, 0, 5)                 # a self-loop in flight across windows
    net.add_input(0)
    net.add_output(0)
    be = ReferenceBackend(net)
    assert be.step([(0, 0, 1), (0, 1, 1)], 2) == []
    assert be.step([(0, 0, 1)], 2) == [(0, 0)]
    assert be.step([], 4) == []                 # the weight-0 self event touches at t = 7, v = 0 < 3
    assert be.time == 8
    be.reset()
    assert be.time == 0 and be.step([(0, 0, 3)], 1) == [(0, 0)]
    with pytest.raises(ValueError, match="time_offset = 3 is out of range; allowed: 0..1"):
        be.step([(0, 3, 1)], 2)


def test_spiking_controller_refuses_wrong_io() -> None:
    net = new_robot_network()
    del net.metadata["io"]
    with pytest.raises(NetworkError, match="no encoder/decoder"):
        SpikingController(net)
    net = new_robot_network()
    attach_io(net, TTFSEncoder(n_values=9, steps=8), WTADecoder(n_outputs=4))
    with pytest.raises(NetworkError, match="'count' decoder of 4"):
        SpikingController(net)
    net = new_robot_network()
    with pytest.raises(ValueError, match="steps_per_control = 5 differs"):
        SpikingController(net, steps_per_control=5)
    float_net = new_robot_network()
    float_net.add_synapse(7, 9, 0.5, 1)
    with pytest.raises(NetworkError, match="integer networks"):
        SpikingController(float_net)


# ----------------------------------------------------------------------------- task
def test_population_run_equals_single_closed_loops() -> None:
    """A robot in the batched population follows the SpikingController trajectory exactly."""
    rng = np.random.default_rng(1)
    nets = [random_robot_network(rng), spiking_braitenberg(), random_robot_network(rng, hidden=3)]
    arenas = [random_arena((21, k)) for k in range(2)]
    world = run_population(nets, arenas, steps=120, seeds=[7, 8], record=True)
    eps = world.episodes()
    for p, net in enumerate(nets):
        for a, arena in enumerate(arenas):
            single = run_episode(SpikingController(net), arena, steps=120, seed=[7, 8][a])
            batched = eps[p * len(arenas) + a]
            assert np.array_equal(single.trajectory, batched.trajectory), (p, a)
            assert single.summary() == batched.summary()


def test_task_interface_and_fitness() -> None:
    task = RobotTask(n_arenas=2, steps=150)
    assert (task.name, task.n_inputs, task.n_outputs) == ("robot", 9, 4)
    seed_net = task.new_network()
    assert io_of(seed_net) == task.codec()
    assert task.metadata["robot_task"]["sensors"] == list(SENSOR_NAMES)
    rng = np.random.default_rng(3)
    pop = [spiking_braitenberg(), seed_net, random_robot_network(rng, task)]
    fit = task.evaluate(pop, seed=4)
    assert fit.shape == (3,) and np.isfinite(fit).all()
    # deterministic, and a network's fitness does not depend on the rest of the population
    assert np.array_equal(task.evaluate(pop, seed=4), fit)
    assert task.evaluate([pop[2], pop[0]], seed=4).tolist() == [fit[2], fit[0]]
    # the bare seed network never moves (no synapses): zero distance, coverage of its start only
    info = task.info(seed_net, seed=4)
    assert all(a["distance"] == 0 and a["collisions"] == 0 for a in info["arenas"])
    # the hand-built avoider roams without hitting anything and scores best
    info = task.info(pop[0], seed=4)
    assert info["collisions"] == 0 and info["coverage"] > 0.05
    assert fit[0] == max(fit) and info["fitness"] == pytest.approx(fit[0])
    assert [a["arena"] for a in info["arenas"]] == [a.name for a in task.arenas_for(4)]
    assert task.arenas_for(4)[0].name != task.arenas_for(5)[0].name
    assert {a.name for a in test_arenas(3)}.isdisjoint({a.name for a in task.arenas_for(0)})


def test_task_fitness_penalises_collisions() -> None:
    task = RobotTask(arenas=[load_arena("two-rooms")], steps=50, collision_penalty=0.5, contact_penalty=1.0)
    w = task.run([spiking_braitenberg()], seed=0)
    w.collisions[:] = 2
    w.contact_steps[:] = 25
    assert task.fitness_of(w)[0] == pytest.approx(w.coverage[0] - 1.0 - 0.5)


def test_task_refuses_networks_without_robot_io() -> None:
    net = new_robot_network()
    attach_io(net, robot_io()[0], WTADecoder(n_outputs=4))
    with pytest.raises(NetworkError, match="network #1: its I/O"):
        RobotTask(steps=5).evaluate([new_robot_network(), net], seed=0)
    with pytest.raises(NetworkError, match="encoder window 4 differs"):
        RobotTask(steps=5).evaluate([new_robot_network(), new_robot_network(4)], seed=0)


# ----------------------------------------------------------------------------- CLI
def test_cli_robot_runs_and_plots(tmp_path, capsys) -> None:
    from spikeforge.toolchain.cli import main
    from spikeforge.toolchain.ir import save_network

    net_path = tmp_path / "sb.json"
    save_network(spiking_braitenberg(), net_path)
    png = tmp_path / "run.png"
    assert main(["robot", "--network", str(net_path), "--arena", "corridor", "--steps", "80",
                 "--plot", str(png), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["steps"] == 80 and doc["arena"] == "corridor" and png.stat().st_size > 10_000
    assert doc["control_steps_per_s"] > 0 and doc["latency_ms_p95"] > 0
    # same run, built-in controller of the same network: same metrics
    assert main(["robot", "--controller", "spiking-braitenberg", "--arena", "corridor", "--steps", "80",
                 "--json"]) == 0
    doc2 = json.loads(capsys.readouterr().out)
    assert {k: doc2[k] for k in ("coverage", "collisions", "distance")} == \
        {k: doc[k] for k in ("coverage", "collisions", "distance")}
    assert main(["robot", "--controller", "random", "--seed", "3", "--steps", "30"]) == 0
    assert "coverage:" in capsys.readouterr().out
    assert main(["robot", "--arena", "nowhere", "--steps", "5"]) == 2
    assert "shipped arenas" in capsys.readouterr().err


def test_drive_from_a_spec_equals_the_network_on_the_reference(tmp_path) -> None:
    from spikeforge.toolchain.ir import save_network
    from spikeforge.toolchain.robot.loop import drive, make_controller

    path = tmp_path / "sb.json"
    save_network(spiking_braitenberg(), path)
    a = drive(f"spiking:{path}", arena="corridor", steps=40, seed=2)
    b = drive("spiking-braitenberg", arena="corridor", steps=40, seed=2)
    assert a.label == "sb.json on reference" and b.label == "spiking braitenberg on reference"
    np.testing.assert_array_equal(a.episode.trajectory, b.episode.trajectory)
    assert a.summary["steps"] == 40 and a.summary["arena"] == "corridor" and a.summary["latency_ms_p95"] > 0
    with pytest.raises(ValueError, match="controller 'nobody' is unknown"):
        make_controller("nobody")
    with pytest.raises(ValueError, match="backend 'emulated' runs spiking controllers; 'random' is plain Python"):
        make_controller("random", "emulated")
    with pytest.raises(ValueError, match="steps = 0"):
        drive("random", steps=0)


def test_bench_robot_prints_one_line_per_controller(capsys, monkeypatch) -> None:
    from spikeforge.toolchain.cli import main
    from spikeforge.toolchain.robot import bench

    monkeypatch.setattr(bench, "BENCH_TARGETS", ("reference", "emulated"))  # no Verilator build here
    assert main(["bench", "robot", "--steps", "15", "--population", "2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    names = [x.get("controller") if "case" not in x else x.get("target", x["case"]) for x in lines]
    assert names == ["random", "braitenberg", "spiking-braitenberg@reference", "evolved@reference",
                     "world_batch", "reference", "emulated", "task_evaluate"]
    assert all(len(x["coverage_per_arena"]) == 10 for x in lines[:4])
    assert all(x["control_steps_per_s"] > 0 and x["equals_reference"] for x in lines[5:7])
    assert lines[6]["frames_per_control_step"] >= 1
    assert lines[4]["robot_steps_per_s"] > 0 and lines[7]["evaluations_per_s"] > 0
