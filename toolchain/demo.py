"""``spikeforge demo``: the whole path on one small, real network, in about a minute.

The network is an obstacle-avoiding reflex for a two-wheeled robot (a Braitenberg vehicle
with a brake), the kind of controller the TENNLab FPGA robots evolve:

* two sensor neurons (``left``, ``right``) take rate-coded distance readings: the closer an
  obstacle, the more often the sensor spikes;
* each motor neuron has a tonic bias (the robot drives forward on its own), a shift leak, a
  refractory period that caps its rate, excitation from the sensor on its own side (an
  obstacle on the left speeds up the left wheel: the robot turns right, away from it) and
  delayed inhibition from the other side;
* a ``brake`` neuron with full leak fires only when both sensors spike in the same step
  (an obstacle dead ahead) and inhibits both motors.

The demo builds it, simulates it on the reference model, writes a raster plot, lowers it to a
core image, checks the image model and the Verilator RTL spike for spike, and (unless
``--no-bitstream``) builds the iCEBreaker bitstream of the core it runs on.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from .ir import Network, save_network
from .reference import InputEvent, simulate

__all__ = ["braitenberg", "obstacle_course", "run_demo"]

PHASES = (("obstacle left", 0, 40), ("clear", 40, 60), ("obstacle right", 60, 100), ("dead ahead", 100, 130))


def braitenberg() -> Network:
    """The demo's reflex controller (5 neurons, 8 synapses)."""
    net = Network(metadata={"provenance": {"source": "spikeforge.toolchain.demo.braitenberg"}})
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


def run_demo(out_dir: Path, *, bitstream: bool = True, verilator: bool = True, out: TextIO = sys.stdout) -> int:
    """Run the demo, writing its files under ``out_dir``; return 0 when every check passed."""
    from .plot import save_raster

    def say(msg: str) -> None:
        out.write(msg + "\n")
        out.flush()

    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    net = braitenberg()
    ins, steps = obstacle_course()
    save_network(net, out_dir / "braitenberg.json")
    (out_dir / "obstacle_course.json").write_text(json.dumps([list(e) for e in ins]))
    say(f"1. network: {len(net.neurons)} neurons, {len(net.synapses)} synapses "
        f"-> {out_dir / 'braitenberg.json'}")

    res = simulate(net, ins, steps)
    ids = {p.name: p.neuron for p in net.outputs}
    say(f"2. reference model, {steps} steps ({len(res.spike_times)} spikes):")
    say(f"   {'phase':<16}{'left wheel':>11}{'right wheel':>12}{'brake':>7}   robot")
    spikes = res.spikes
    for name, a, b in PHASES:
        c = {k: sum(1 for nid, t in spikes if nid == v and a <= t < b) for k, v in ids.items()}
        ml, mr, br = c["motor_left"], c["motor_right"], c["brake"]
        move = "brakes" if br > 0 and br * 4 >= (b - a) / 3 else "turns right" if ml > mr + 2 else \
            "turns left" if mr > ml + 2 else "drives straight"
        say(f"   {name:<16}{ml:>11}{mr:>12}{br:>7}   {move}")
    save_raster(res, net, out_dir / "raster.png", title="Braitenberg reflex on the obstacle course")
    say(f"   raster plot -> {out_dir / 'raster.png'}")

    ok = True
    from spikeforge.hdl.config import PRESETS
    from spikeforge.hdl.image import lower, run_image

    image = lower(net, PRESETS["up5k"])
    (out_dir / "braitenberg.up5k.image.json").write_text(image.to_json())
    same = run_image(image, ins, steps) == res
    ok &= same
    say(f"3. core image for 'up5k' ({len(image.writes())} config writes, crc32 {image.checksum():08x}) "
        f"-> {out_dir / 'braitenberg.up5k.image.json'}; image model {'matches' if same else 'DIFFERS'}")

    if verilator:
        from spikeforge.sim.verify import verify_cases
        from spikeforge.toolchain.netgen import Case, edge_cases

        from .cli_hw import default_build_dir

        cfg = PRESETS["tiny"]
        cases = [Case("braitenberg", net, ins, steps)] + edge_cases(cfg.potential_bits, cfg.max_delay, 32)
        say(f"4. Verilator RTL of core '{cfg.name}' vs reference, {len(cases)} cases (first run compiles, ~15 s)...")
        rep = verify_cases(cases, cfg, build_dir=default_build_dir() / "verify", garbage=16)
        ok &= rep.ok
        say("   " + rep.summary().replace("\n", "\n   "))

    if bitstream:
        from .cli_hw import build_core_bitstream

        say("5. iCEBreaker (iCE40UP5K) bitstream of the 'up5k' core (about a minute the first time; cached after)...")
        result = build_core_bitstream("icebreaker", PRESETS["up5k"])
        ok &= result.bitstream.exists()
        d = result.to_dict()
        fmax = ", ".join(f"{k}: {v['achieved_mhz']:.1f} MHz" for k, v in d["fmax"].items())
        say(f"   {result.bitstream} ({'cached' if result.cached else f'{result.build_seconds:.0f} s'})")
        say(f"   logic cells {result.logic_cells}/{result.logic_cells_available}, EBR {result.ebr}/{result.ebr_available}, "
            f"SPRAM {result.spram}/{result.spram_available}, DSP {result.dsp}; fmax {fmax}")

    say(f"demo {'passed' if ok else 'FAILED'} in {time.perf_counter() - t_start:.0f} s; files in {out_dir}")
    return 0 if ok else 1
