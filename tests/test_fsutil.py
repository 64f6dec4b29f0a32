"""fsutil: atomic writes keep the old file on failure and leave no temporary file behind."""

from __future__ import annotations

import pytest

from spikeforge.toolchain.fsutil import atomic_path, write_atomic


def test_write_atomic_replaces_and_leaves_nothing_behind(tmp_path):
    p = tmp_path / "a.json"
    write_atomic(p, "one")
    write_atomic(p, b"two")
    assert p.read_text() == "two"
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("precious")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(p) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("disk full")
    assert p.read_text() == "precious"
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_two_writers_get_distinct_temporaries(tmp_path):
    p = tmp_path / "a.json"
    with atomic_path(p) as t1, atomic_path(p) as t2:
        assert t1 != t2 and t1.parent == t2.parent == tmp_path
        t1.write_text("1")
        t2.write_text("2")
    assert p.read_text() == "1"  # the outer block finishes last
