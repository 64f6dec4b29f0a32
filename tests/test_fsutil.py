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


def test_a_symlink_planted_at_the_temporary_name_is_not_followed(tmp_path, monkeypatch):
    import os
    import secrets

    from spikeforge.toolchain import fsutil

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda n=8: next(names))
    out = tmp_path / "out.json"
    (tmp_path / f".out.json.{os.getpid()}.aaaa.tmp").symlink_to(victim)  # the attacker's guess
    fsutil.write_atomic(out, "new")
    assert victim.read_text() == "precious"
    assert out.read_text() == "new" and not out.is_symlink()


def test_the_temporary_is_fsynced_before_it_replaces(tmp_path, monkeypatch):
    import os

    from spikeforge.toolchain import fsutil

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    fsutil.write_atomic(tmp_path / "x.txt", "data")
    assert len(synced) >= 1
