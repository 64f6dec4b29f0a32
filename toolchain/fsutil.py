"""Small file-system helpers: atomic writes (every file the project writes) and the lock the
build and simulation caches share. Bottom layer: imports nothing of the project."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "default_build_dir", "file_lock", "write_atomic"]

log = logging.getLogger(__name__)


def default_build_dir() -> Path:
    """Where Verilator builds and bitstreams are cached (``$SPIKEFORGE_BUILD_DIR`` or ./build)."""
    return Path(os.environ.get("SPIKEFORGE_BUILD_DIR", "build")).resolve()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it atomically when the block succeeds.

    A write that fails (an exception, a full disk, a killed process) leaves ``path`` as it was
    and removes the temporary file, so a run's earlier results are never half overwritten. The
    temporary file is created empty with ``O_EXCL | O_NOFOLLOW`` under a random name before the
    block runs (a symlink planted there is never followed), and it is fsync'ed before it replaces
    ``path``; the block writes it by name (a writer that replaces it, e.g. with a folder, may).

    Examples
    --------
    >>> with atomic_path("net.nir") as tmp:      # doctest: +SKIP
    ...     nir.write(str(tmp), graph)
    """
    p = Path(path)
    tmp = _create_exclusive(p)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, p)
        _fsync(p.parent)  # the rename itself survives a power cut
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_exclusive(p: Path) -> Path:
    """Create an empty, unique temporary file beside ``p`` with ``O_EXCL | O_NOFOLLOW``.

    A file or symlink already at a candidate name (planted by someone else) is never opened or
    followed: creation fails and another name is drawn.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            os.close(os.open(tmp, flags, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{p.parent}: could not create a unique temporary file beside {p.name}")


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a directory's entries) to the disk; best effort for directories."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) if path.is_file() else os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")


@contextlib.contextmanager
def file_lock(path: Path, deadline: float, on_timeout: Callable[[str], Exception]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` while another process may build the same key.

    Parameters
    ----------
    path
        Lock file (created, with its folder, if missing).
    deadline
        ``time.monotonic()`` value after which waiting gives up.
    on_timeout
        Builds the exception raised on time-out from a message.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log.info("waiting for %s (another process builds the same design)", path)
                    waited = True
                if time.monotonic() > deadline:
                    raise on_timeout(f"timed out waiting for the lock {path}, held by another "
                                     "build of the same design") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
