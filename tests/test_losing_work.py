"""Nothing lost: an existing run is not overwritten by forgetting --resume, and a plug-in task
never shadows an installed module with a file of the working directory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spikeforge.hdl.config import preset
from spikeforge.toolchain.train.evolve import EvolveConfig, EvolveError, evolve, load_checkpoint
from spikeforge.toolchain.train.tasks import XorTask


def test_evolve_refuses_to_overwrite_a_run_without_resume_or_overwrite(tmp_path):
    cfg, task, core = EvolveConfig(population=8), XorTask(steps=6), preset("tiny")
    run = tmp_path / "run"
    evolve(task, core, cfg, generations=3, run_dir=run, progress=False)
    assert load_checkpoint(run)["generation"] == 2
    with pytest.raises(EvolveError, match=r"already holds a run .*--resume .*--overwrite"):
        evolve(task, core, cfg, generations=1, run_dir=run, progress=False)
    assert load_checkpoint(run)["generation"] == 2  # untouched
    evolve(task, core, cfg, generations=1, run_dir=run, progress=False, overwrite=True)
    assert load_checkpoint(run)["generation"] == 0


def test_cli_evolve_twice_is_refused(tmp_path, capsys):
    from spikeforge.toolchain.cli import main

    out = tmp_path / "x.json"
    args = ["train", "evolve", "--task", "xor", "-o", str(out), "--generations", "2", "--population", "8",
            "--no-progress", "--target", "tiny"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert load_checkpoint(f"{out}.run")["generation"] == 1


def _shadow_check(tmp_path, body: str) -> None:
    """Run ``body`` in a child whose working directory holds a hostile ``tqdm.py`` (and no ''
    on sys.path); after it, ``import tqdm`` must still find the installed one."""
    (tmp_path / "tqdm.py").write_text("raise SystemExit('the local tqdm.py ran')\n")
    code = ("import sys; sys.path = [p for p in sys.path if p not in ('', '.')]\n" + body +
            "\nimport tqdm; print('ok', tqdm.__file__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1000:]
    assert "ok" in r.stdout and str(tmp_path) not in r.stdout


def test_plugin_does_not_put_the_working_directory_first(tmp_path):
    (tmp_path / "myplug.py").write_text("from spikeforge.toolchain.train.tasks import XorTask\n"
                                        "def make(**kw):\n    return XorTask(steps=4)\n")
    _shadow_check(tmp_path, "from spikeforge.toolchain.train.tasks import load_task\nt = load_task('myplug:make')")


def test_reservoir_plugin_searches_the_working_directory_last(tmp_path):
    _shadow_check(tmp_path, "from spikeforge.toolchain.train.reservoir.tasks import load_series_task, SeriesTaskError\n"
                            "try:\n    load_series_task('nosuchmodule_xyz:make')\nexcept SeriesTaskError:\n    pass\n"
                            "assert sys.path[0] != '', sys.path[:3]")
