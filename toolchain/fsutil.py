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
    temporary name is unique per call, so two writers of one file never share it.

    Examples
    --------
    >>> with atomic_path("net.nir") as tmp:      # doctest: +SKIP
    ...     nir.write(str(tmp), graph)
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
