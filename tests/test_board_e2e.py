"""End to end: the same network through ``spikeforge simulate``, through ``spikeforge run`` on
the emulated board and through ``spikeforge run`` on the Verilator virtual board, each board
behind a real pseudo-terminal, gives identical spikes (the ``--json`` documents are equal
byte for byte)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.cli import main
from spikeforge.toolchain.ir import save_network
from spikeforge.toolchain.netgen import edge_cases, random_case

CFG = preset("tiny")


@contextlib.contextmanager
def board(kind: str) -> Iterator[str]:
    """A board of this kind on a real pty; yields its path."""
    if kind == "emulated":
        from spikeforge.sim.emuboard import serve

        with serve(CFG, port="pty") as sb:
            yield sb.path
    else:
        from spikeforge.sim.vboard import start_virtual_board

        with start_virtual_board(CFG, baud=3_000_000) as vb:
            assert vb.path is not None
            yield vb.path


def _cases(n_random: int) -> list:
    picked = {"saturation", "threshold-0", "weight-0-touch", "longest-delay", "full-fan-out",
              "reset-subtract-leak-shift3", "refractory-bias", "empty"}
    edges = [c for c in edge_cases(CFG.potential_bits, CFG.max_delay, 16) if c.name in picked]
    return [random_case(100 + k, 24, 80, steps=60, max_delay=CFG.max_delay) for k in range(n_random)] + edges


def _same_spikes_three_ways(kind: str, tmp_path, capsys, n_random: int) -> None:
    with board(kind) as path:
        for case in _cases(n_random):
            net_file = tmp_path / f"{case.name}.json"
            in_file = tmp_path / f"{case.name}.in.json"
            save_network(case.network, net_file)
            in_file.write_text(json.dumps([list(e) for e in case.inputs]))
            common = ["--inputs", str(in_file), "--steps", str(case.steps), "--json"]
            assert main(["simulate", str(net_file), *common]) == 0
            want = capsys.readouterr().out
            assert main(["run", str(net_file), "--port", path, "--timeout", "5", *common]) == 0, capsys.readouterr().err
            got = capsys.readouterr().out
            assert got == want, f"{case.name}: {kind} board differs from simulate"
            # again on the loaded image: RESET after a run must bring the board back to t = 0
            assert main(["run", str(net_file), "--no-load", "--port", path, "--timeout", "5", *common]) == 0, \
                capsys.readouterr().err
            assert capsys.readouterr().out == want, f"{case.name}: {kind} board, second run differs"
            assert len(json.loads(got)["fire_counts"]) == len(case.network.neurons)  # every neuron listed


def test_simulate_equals_run_on_the_emulated_board_over_a_pty(tmp_path, capsys):
    _same_spikes_three_ways("emulated", tmp_path, capsys, n_random=4)


@pytest.mark.slow
@pytest.mark.verilator
def test_simulate_equals_run_on_the_verilator_virtual_board_over_a_pty(tmp_path, capsys):
    _same_spikes_three_ways("verilator", tmp_path, capsys, n_random=4)
