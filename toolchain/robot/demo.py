"""``spikeforge demo``: an evolved robot controller from training to the (virtual) FPGA.

:func:`run_demo` is the README's ``make demo`` (issue 8), stage by stage, each with its
progress and wall time (a stage that fails says which and why, and the demo exits non-zero):

1. **train** — refine the shipped evolved controller (``spikeforge/toolchain/robot/robots/evolved.json``)
   for a few seeded generations on the robot task (or evolve one from random networks with
   ``from_scratch``), then keep whichever of the refined and the shipped one covers more of 4
   validation arenas (never the benchmark's);
2. **compile** — compile it for the iCEBreaker's ``up5k`` core (the compiler's pass table);
3. **bitstream** — build the iCEBreaker board design (UART, protocol engine, core) with
   yowasp yosys/nextpnr: logic cells, EBR, SPRAM, fmax (built in the background from the
   start; cached by design hash);
4. **board** — start the Verilator virtual board of the same design (built in the
   background from the start; cached) and load the image over the serial protocol;
5. **drive** — drive the robot through an arena in closed loop on the board;
6. **reference** — run the same episode on the bit-exact reference model and compare the
   two step by step (motors, spikes, poses);
7. **plots** — the trajectory PNG and a spike raster of the first control steps.

It ends with a summary table. ``quick`` (for tests) trains one tiny generation and drives
a short episode; ``verilator=False`` uses the emulated board instead of the virtual one.

The module also keeps the earlier demo network, :func:`braitenberg`: an obstacle-avoiding
reflex for a two-wheeled robot (a Braitenberg vehicle with a brake):

* two sensor neurons (``left``, ``right``) take rate-coded distance readings: the closer an
  obstacle, the more often the sensor spikes;
* each motor neuron has a tonic bias (the robot drives forward on its own), a shift leak, a
  refractory period that caps its rate, excitation from the sensor on its own side (an
  obstacle on the left speeds up the left wheel: the robot turns right, away from it) and
  delayed inhibition from the other side;
* a ``brake`` neuron with full leak fires only when both sensors spike in the same step
  (an obstacle dead ahead) and inhibits both motors.

"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO, cast

import numpy as np

from spikeforge.firmware.boards import board
from spikeforge.firmware.build import BuildResult
from spikeforge.firmware.top import build_board
from spikeforge.sim.vboard import build_virtual_board

from ..backends import DeviceBackend, open_backend
from ..compiler import CompileResult, compile_network
from ..compiler.passes import records_table
from ..ir import Network, save_network
from ..plot import save_raster
from ..reference import InputEvent, simulate
from .arena import load_arena, random_arena
from .controllers import SpikingController, evolved_network
from .loop import Recorder
from .plot import save_trajectory
from .task import run_population
from .train import train_robot
from .world import Episode, run_episode

__all__ = ["braitenberg", "obstacle_course", "run_demo"]

#: The board the demo builds for and whose core it compiles to (the board table's entry).
DEMO_BOARD = board("icebreaker")

PHASES = (("obstacle left", 0, 40), ("clear", 40, 60), ("obstacle right", 60, 100), ("dead ahead", 100, 130))


def braitenberg() -> Network:
    """The demo's reflex controller (5 neurons, 8 synapses)."""
    net = Network(metadata={"provenance": {"source": "spikeforge.toolchain.robot.demo.braitenberg"}})
    net.add_neuron(0, threshold=1, name="left")
    net.add_neuron(1, threshold=1, name="right")
    for nid, name in ((2, "motor_left"), (3, "motor_right")):
        net.add_neuron(nid, threshold=12, bias=2, leak="shift", leak_shift=3, refractory=1, v_min=-20, name=name)
    net.add_neuron(4, threshold=2, leak="full", refractory=3, name="brake")
    net.add_synapse(0, 2, 9, 1)   # left sensor excites the left wheel: turn right, away
    net.add_synapse(1, 3, 9, 1)
    net.add_synapse(0, 3, -5, 2)  # and (later) slows the other wheel
    net.add_synapse(1, 2, -5, 2)
    net.add_synapse(0, 4, 1, 1)   # both sensors in one step: brake
    net.add_synapse(1, 4, 1, 1)
    net.add_synapse(4, 2, -30, 1)
    net.add_synapse(4, 3, -30, 1)
    net.add_input(0, "left")
    net.add_input(1, "right")
    net.add_output(2, "motor_left")
    net.add_output(3, "motor_right")
    net.add_output(4, "brake")
    return net


def obstacle_course() -> tuple[list[InputEvent], int]:
    """Sensor spikes for the four phases of :data:`PHASES` and the total step count."""
    ins: list[InputEvent] = []
    for name, a, b in PHASES:
        for t in range(a, b):
            if name == "obstacle left" and t % 2 == 0:
                ins.append((0, t, 1))
            elif name == "obstacle right" and t % 2 == 0:
                ins.append((1, t, 1))
            elif name == "dead ahead" and t % 3 == 0:
                ins += [(0, t, 1), (1, t, 1)]
    return ins, PHASES[-1][2]




# ----------------------------------------------------------------------------- the robot demo
log = logging.getLogger(__name__)

#: Validation arenas of the train stage's choice (three-part seeds: neither a training pair
#: nor the benchmark's unseen arenas).
VALIDATION_KEY = (0x5E1EC7, 1)
DEMO_ARENA = "two-rooms"
RASTER_STEPS = 40


class StageFailed(RuntimeError):
    """A demo stage failed (the message names the stage and the reason)."""


class _Stages:
    """Numbered stages with their wall time; a failure names the stage."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.k = total, out, 0
        self.times: dict[str, float] = {}

    def say(self, msg: str) -> None:
        self.out.write(msg + "\n")
        self.out.flush()

    def run(self, name: str, what: str, fn: Callable[[], Any]) -> Any:
        self.k += 1
        self.say(f"[{self.k}/{self.total}] {name}: {what}")
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as e:
            dt = time.perf_counter() - t0
            self.times[name] = dt
            raise StageFailed(f"stage {self.k} '{name}' failed after {dt:.1f} s: {type(e).__name__}: {e}") from e
        dt = self.times[name] = time.perf_counter() - t0
        self.say(f"      {name} done in {dt:.1f} s")
        return result


def _train(generations: int, seed: int, from_scratch: bool, quick: bool, out_dir: Path,
           say: Callable[[str], None]) -> tuple[Network, dict[str, Any]]:
    """The train stage: refine (or evolve) and keep the better of refined and shipped."""
    shipped = evolved_network()
    opts: dict[str, Any] = {"n_arenas": 1, "steps": 60} if quick else {}
    res = train_robot(generations, seed, init=() if from_scratch else (shipped,),
                      population=8 if quick else None, workers=1, task_options=opts,
                      command=f"spikeforge demo --generations {generations} --seed {seed}"
                              + (" --from-scratch" if from_scratch else ""))
    refined = res.best
    save_network(refined, out_dir / "refined.json")
    say(f"      {'evolved' if from_scratch else 'refined'}: fitness {res.best_fitness:.4f} after "
        f"{res.generations} generation(s); {len(refined.neurons)} neurons, {len(refined.synapses)} synapses "
        f"-> {out_dir / 'refined.json'}")
    cands = [refined] if from_scratch else [refined, shipped]
    n_val, steps = (1, 60) if quick else (4, 600)
    arenas = [random_arena((*VALIDATION_KEY, k)) for k in range(n_val)]
    world = run_population(cands, arenas, steps, seeds=[100 + k for k in range(n_val)])
    cov = world.coverage.reshape(len(cands), n_val).mean(axis=1)
    col = world.collisions.reshape(len(cands), n_val).mean(axis=1)
    score = cov - 0.03 * col
    pick = int(np.argmax(score))
    names = ["evolved" if from_scratch else "refined", "shipped"]
    for k in range(len(cands)):
        say(f"      validation ({n_val} arenas x {steps} steps): {names[k]:<8} coverage {cov[k]:.4f}, "
            f"collisions {col[k]:.2f}" + ("   <- kept" if k == pick else ""))
    info = {"kept": names[pick], "fitness": res.best_fitness, "generations": res.generations,
            "validation_coverage": float(cov[pick]), "validation_collisions": float(col[pick])}
    return cands[pick], info


def _compile(net: Network, say: Callable[[str], None]) -> CompileResult:
    res = compile_network(net, DEMO_BOARD.config, verify_steps=50)
    for line in records_table(res.records).splitlines():
        say("      " + line)
    c = res.report["compiled"]
    mem = ", ".join(f"{r} {m['words']}/{m['capacity']}" for r, m in res.report["memory"][0].items())
    say(f"      compiled for 'up5k': {c['neurons']} neurons ({c['relays']} relays), {c['synapses']} synapses; "
        f"memory {mem}; verified against the reference over 50 steps x 4 stimuli")
    return res




def _wait(job: Future, what: str, say: Callable[[str], None], every: float = 30.0) -> Any:
    """The result of a background build, saying every ``every`` seconds that it still runs."""
    t0 = time.perf_counter()
    while True:
        try:
            return job.result(timeout=every)
        except TimeoutError:
            say(f"      ... {what} still running ({time.perf_counter() - t0:.0f} s)")


def _first_divergence(a: Recorder, b: Recorder, ca: SpikingController, cb: SpikingController, ep_a: Episode,
                      ep_b: Episode) -> int | None:
    """First control step where the two runs differ (motors, spikes or pose), or None."""
    w = ca.steps
    for k, (ma, mb) in enumerate(zip(a.motors, b.motors, strict=True)):
        if ma != mb:
            return k
    if len(a.motors) != len(b.motors):
        return min(len(a.motors), len(b.motors))
    for log_a, log_b in ((ca.output_log, cb.output_log), (ca.input_log, cb.input_log)):
        if log_a != log_b:
            diff = sorted(set(log_a) ^ set(log_b), key=lambda e: e[1])
            return int(diff[0][1]) // w
    if not np.array_equal(ep_a.trajectory, ep_b.trajectory):
        return int(np.flatnonzero(np.any(ep_a.trajectory != ep_b.trajectory, axis=1))[0])
    return None


def run_demo(out_dir: Path, *, bitstream: bool = True, verilator: bool = True, generations: int = 3,
             from_scratch: bool = False, steps: int = 600, seed: int = 0, quick: bool = False,
             arena: str = DEMO_ARENA, build_dir: str | Path = "build", out: TextIO | None = None) -> int:
    """Run the robot demo (module docstring), writing its files under ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (networks, plots, summary JSON).
    bitstream
        Build the iCEBreaker bitstream.
    verilator
        Drive the Verilator virtual board (False: the emulated board).
    generations
        Training generations (refinement; ``from_scratch`` wants more).
    from_scratch
        Evolve from random networks instead of refining the shipped controller.
    steps
        Control steps of the drive (0.1 s each).
    seed
        Training seed and the episode's random-input seed.
    quick
        Tiny training and validation (for tests).
    arena
        Arena of the drive: a shipped name or a JSON file.
    build_dir
        Where the bitstream and the virtual board are built and cached.
    out
        Where the stage lines and the summary go (default: standard output).

    Returns
    -------
    int
        0 when every stage passed and the board's trajectory equals the reference's.
    """
    out_dir = Path(out_dir)
    build_dir = Path(build_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if generations < 1 or steps < 1:
        raise ValueError(f"generations = {generations}, steps = {steps}; each must be an integer >= 1")
    t_start = time.perf_counter()
    st = _Stages(7 if bitstream else 6, out or sys.stdout)
    the_arena = load_arena(arena)
    board_name = "Verilator virtual board" if verilator else "emulated board"
    st.say(f"spikeforge demo: an evolved robot controller on the iCEBreaker's 'up5k' core, through the {board_name}")
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-build")
    bit_job: Future[BuildResult] | None = (pool.submit(build_board, DEMO_BOARD.name, DEMO_BOARD.config,
                                                       build_dir=build_dir / "bitstreams") if bitstream else None)
    vb_job: Future | None = pool.submit(build_virtual_board, DEMO_BOARD.config, build_dir=build_dir) if verilator else None
    if bit_job or vb_job:
        st.say("      (building " + " and ".join(x for x, j in (("the bitstream", bit_job), ("the virtual board", vb_job))
                                             if j) + " in the background: minutes the first time, cached after)")
    summary: dict[str, Any] = {"arena": the_arena.name, "steps": steps, "seed": seed, "board": board_name}
    backend = None
    ok = True
    try:
        net, tinfo = st.run("train", f"{'evolve from random networks' if from_scratch else 'refine the shipped evolved controller'} "
                            f"({generations} generation(s), seed {seed})",
                            lambda: _train(generations, seed, from_scratch, quick, out_dir, st.say))
        summary["train"] = {**tinfo, "neurons": len(net.neurons), "synapses": len(net.synapses)}
        controller_path = out_dir / "controller.json"
        save_network(net, controller_path)
        compiled = st.run("compile", "compile for the iCEBreaker preset 'up5k'", lambda: _compile(net, st.say))
        summary["compiled"] = compiled.report["compiled"]
        if bit_job is not None:
            def wait_bitstream() -> Any:
                r = _wait(bit_job, "bitstream build (yosys, nextpnr)", st.say)
                d = r.to_dict()
                fmax = ", ".join(f"{k} {v['achieved_mhz']:.1f} MHz (target {v['constraint_mhz']:.0f})"
                                 for k, v in d["fmax"].items())
                fmax += "" if r.timing_met else "; timing NOT met at the target clock"
                st.say(f"      {r.bitstream} ({'cached' if r.cached else f'built in {r.build_seconds:.0f} s'})")
                st.say(f"      logic cells {r.logic_cells}/{r.logic_cells_available}, EBR {r.ebr}/{r.ebr_available}, "
                       f"SPRAM {r.spram}/{r.spram_available}; fmax {fmax}")
                return r

            br = st.run("bitstream", "iCEBreaker board design (UART + protocol engine + 'up5k' core), "
                        "yowasp yosys + nextpnr", wait_bitstream)
            summary["bitstream"] = {"path": str(br.bitstream), "logic_cells": br.logic_cells,
                                    "logic_cells_available": br.logic_cells_available, "ebr": br.ebr,
                                    "ebr_available": br.ebr_available, "spram": br.spram,
                                    "spram_available": br.spram_available,
                                    "fmax_mhz": {k: v["achieved_mhz"] for k, v in br.to_dict()["fmax"].items()},
                                    "target_mhz": {k: v["constraint_mhz"] for k, v in br.to_dict()["fmax"].items()},
                                    "timing_met": bool(br.timing_met),
                                    "cached": br.cached}

        def open_board() -> DeviceBackend:
            if vb_job is not None:
                _wait(vb_job, "virtual board build (Verilator)", st.say)
            be = cast(DeviceBackend, open_backend("vboard" if verilator else "emulated", net, config=DEMO_BOARD.config,
                                                  build_dir=build_dir, progress=True))
            info = be.device.info
            st.say(f"      IDENTIFY: core {info.config.name!r} ({info.config.n_neurons} neurons), protocol "
                   f"v{info.version}, {info.baud} baud; {be.device.url}")
            st.say(f"      loaded {be.load_report.beats} beats in {be.load_report.frames} LOAD frames "
                   f"({be.load_report.seconds:.2f} s)")
            return be

        backend = st.run("board", f"start the {board_name} and load the image over the serial protocol", open_board)
        board_ctrl = SpikingController(net, backend, record=True)
        board_rec = Recorder(board_ctrl)
        vb = getattr(backend, "virtual_board", None)
        sim0 = vb.stats()["cycles"] if vb is not None else None

        def drive() -> Any:
            ep = run_episode(board_rec, the_arena, steps=steps, seed=seed, progress=True)
            st.say(f"      coverage {ep.coverage:.1%}, {ep.collisions} collisions, {ep.distance:.1f} m; "
                   f"{backend.frames} STEP frames")
            return ep

        ep_board = st.run("drive", f"drive the robot in '{the_arena.name}' for {steps} control steps on the board", drive)
        mean, p95 = board_rec.latency_ms()
        summary["latency_ms_mean"] = round(mean, 3)
        summary["latency_ms_p95"] = round(p95, 3)
        summary["frames_per_control_step"] = round(backend.frames / steps, 2)
        if vb is not None:
            sim_s = (vb.stats()["cycles"] - sim0) / vb.clock_hz
            summary["board_latency_ms_simulated"] = round(1e3 * sim_s / steps, 3)

        def reference() -> Any:
            ref_ctrl = SpikingController(net, record=True)
            rec = Recorder(ref_ctrl)
            ep = run_episode(rec, the_arena, steps=steps, seed=seed)
            div = _first_divergence(board_rec, rec, board_ctrl, ref_ctrl, ep_board, ep)
            st.say(f"      reference: coverage {ep.coverage:.1%}, {ep.collisions} collisions; board == reference "
                   + ("at every control step (motors, spikes, poses)" if div is None else f"NO: first differs at control step {div}"))
            return ep, div, ref_ctrl

        ep_ref, div, ref_ctrl = st.run("reference", "the same episode on the bit-exact reference model", reference)
        ok &= div is None

        def plots() -> dict[str, str]:
            traj = out_dir / "trajectory.png"
            save_trajectory(ep_board, traj, f"evolved controller on the {board_name}")
            w = min(RASTER_STEPS, steps) * board_ctrl.steps
            ins = [e for e in board_ctrl.input_log if e[1] < w]
            cnet = compiled.network  # what the board runs: dead neurons pruned, same ports and output spikes
            res = simulate(cnet, ins, w)
            raster = out_dir / "raster.png"
            save_raster(res, cnet, raster, title=f"the compiled controller ({len(cnet.neurons)} neurons), first "
                        f"{w // board_ctrl.steps} control steps ({w} timesteps)")
            st.say(f"      trajectory -> {traj}\n      raster -> {raster}")
            return {"trajectory": str(traj), "raster": str(raster)}

        summary["plots"] = st.run("plots", "trajectory and spike raster", plots)
        summary.update({
            "board_run": ep_board.summary(), "reference_run": ep_ref.summary(),
            "trajectory_equals_reference": div is None, "first_divergence": div,
        })
    except StageFailed as e:
        st.say(f"demo FAILED: {e}")
        return 1
    finally:
        if backend is not None:
            backend.close()
        pool.shutdown(wait=False, cancel_futures=True)
    summary["stage_seconds"] = {k: round(v, 1) for k, v in st.times.items()}
    summary["seconds"] = round(time.perf_counter() - t_start, 1)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    _print_summary(summary, st.say)
    st.say(f"demo {'passed' if ok else 'FAILED'} in {summary['seconds']:.0f} s; files in {out_dir}")
    return 0 if ok else 1


def _print_summary(s: dict[str, Any], say: Callable[[str], None]) -> None:
    b, r = s["board_run"], s["reference_run"]
    rows = [
        ("", s["board"], "reference model"),
        ("coverage", f"{b['coverage']:.1%}", f"{r['coverage']:.1%}"),
        ("collisions", str(b["collisions"]), str(r["collisions"])),
        ("contact steps", str(b["contact_steps"]), str(r["contact_steps"])),
        ("distance", f"{b['distance']:.2f} m", f"{r['distance']:.2f} m"),
        ("control steps", str(b["steps"]), str(r["steps"])),
        ("trajectory", "== reference at every step" if s["trajectory_equals_reference"]
         else f"DIFFERS from step {s['first_divergence']}", ""),
        ("control-step latency", f"{s['latency_ms_mean']:.1f} ms mean, {s['latency_ms_p95']:.1f} ms p95 (wall)", ""),
    ]
    if "board_latency_ms_simulated" in s:
        rows.append(("  on the board's clock", f"{s['board_latency_ms_simulated']:.2f} ms "
                     f"({s['frames_per_control_step']:g} STEP frames at 3 Mbaud)", ""))
    if "bitstream" in s:
        bs = s["bitstream"]
        rows.append(("bitstream", f"LC {bs['logic_cells']}/{bs['logic_cells_available']}, EBR {bs['ebr']}/"
                     f"{bs['ebr_available']}, SPRAM {bs['spram']}/{bs['spram_available']}", ""))
        rows.append(("  fmax", ", ".join(f"{k} {v:.1f} MHz (target {bs['target_mhz'][k]:.0f})"
                                         for k, v in bs["fmax_mhz"].items())
                     + ("" if bs["timing_met"] else ": timing not met"), ""))
    rows.append(("controller", f"{s['train']['kept']}: {s['train']['neurons']} neurons, {s['train']['synapses']} "
                 f"synapses; {s['compiled']['neurons']} / {s['compiled']['synapses']} after compiling", ""))
    rows.append(("stages", ", ".join(f"{k} {v:.0f} s" for k, v in s["stage_seconds"].items()), ""))
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows if x[2]) if any(x[2] for x in rows) else 10
    say("")
    say(f"summary: arena {s['arena']}, {s['steps']} control steps (0.1 s each), seed {s['seed']}")
    for a, bb, c in rows:
        say(f"  {a:<{w0}}  {bb:<{w1}}  {c}".rstrip())
    if "plots" in s:
        say(f"  plots: {s['plots']['trajectory']}, {s['plots']['raster']}")
