"""Walk the hostile corpus (tests/hostile_corpus.py) through every command that reads files.

Each call must end in a correct result (exit 0) or one clean line (exit 2) that names no
Python exception, within :data:`CALL_SECONDS`, in a child process limited to 1 GiB. The whole
corpus is ``slow``; the default run walks a sample of every kind.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hostile_corpus import generate  # noqa: E402

MEMORY = 1 << 30
CALL_SECONDS = 20
EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Interrupt)\b:|Traceback")

#: The child: runs main() for each argument vector with an alarm, prints one JSON line each.
CHILD = r"""
import io, json, signal, sys, time, contextlib
from spikeforge.toolchain.cli import main
def alarm(*_):
    raise TimeoutError("call took too long")
signal.signal(signal.SIGALRM, alarm)
for argv in json.loads(sys.stdin.read()):
    err, out = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    signal.alarm(int(sys.argv[1]))
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
    except BaseException as e:
        rc, err = -1, io.StringIO(f"escaped: {type(e).__name__}: {e}")
    finally:
        signal.alarm(0)
    sys.stdout.write(json.dumps({"argv": argv, "rc": rc, "err": err.getvalue()[-2000:],
                                 "seconds": time.monotonic() - t0}) + "\n")
    sys.stdout.flush()
"""


def _limit() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _commands(d: Path, kinds: dict[str, list[str]], every: int) -> list[list[str]]:
    out = str(d / "out")
    valid = str(d / "valid-net.json")
    per_kind = {
        "network": lambda f: [["simulate", f, "--steps", "20"], ["compile", f, "--target", "tiny", "-o", out],
                              ["image", f, "--target", "tiny", "-o", out], ["export", "tennlab", f, "-o", out],
                              ["export", "nir", f, "-o", out]],
        "inputs": lambda f: [["simulate", valid, "--inputs", f, "--steps", "20"],
                             ["compile", valid, "--target", "tiny", "--inputs", f, "--verify-steps", "5", "-o", out]],
        "image": lambda f: [["image", "--check", f, "--target", "tiny"]],
        "tennlab": lambda f: [["simulate", f, "--steps", "20"], ["compile", f, "--target", "tiny", "-o", out],
                              ["import", "tennlab", f, "-o", out]],
        "nir": lambda f: [["import", "nir", f, "-o", out, "--dt", "1"]],
    }
    cmds = []
    for kind, names in kinds.items():
        for k, name in enumerate(names):
            if k % every == 0:
                cmds += per_kind[kind](str(d / name))
    return cmds


def walk(tmp_path: Path, every: int) -> list[dict]:
    kinds = generate(tmp_path)
    cmds = _commands(tmp_path, kinds, every)
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(CALL_SECONDS)], input=json.dumps(cmds), capture_output=True, text=True,
                       timeout=CALL_SECONDS * len(cmds) + 60, preexec_fn=_limit, env=env, cwd=tmp_path)
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(cmds), r.stderr[-3000:]
    return results


def check(results: list[dict]) -> None:
    bad = []
    for res in results:
        err = res["err"].strip()
        line = err.splitlines()[-1] if err else ""
        clean_refusal = res["rc"] == 2 and line.startswith("spikeforge: error:") and not EXCEPTION_NAME.search(err)
        if not (res["rc"] == 0 or clean_refusal) or res["seconds"] > CALL_SECONDS:
            bad.append(f"{' '.join(res['argv'])}: rc {res['rc']}: {err[-300:]}")
    assert not bad, f"{len(bad)} of {len(results)} calls were not clean:\n" + "\n".join(bad[:30])


def test_corpus_has_at_least_200_files(tmp_path):
    kinds = generate(tmp_path)
    assert sum(map(len, kinds.values())) >= 200
    assert all(kinds[k] for k in ("network", "inputs", "image", "tennlab", "nir"))


def test_hostile_sample_is_refused_cleanly(tmp_path):
    check(walk(tmp_path, every=12))


@pytest.mark.slow
def test_whole_hostile_corpus_is_refused_cleanly(tmp_path):
    check(walk(tmp_path, every=1))
