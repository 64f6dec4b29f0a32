"""Small file-system helpers shared by the build and simulation caches."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["default_build_dir", "file_lock"]

log = logging.getLogger(__name__)


def default_build_dir() -> Path:
    """Where Verilator builds and bitstreams are cached (``$SPIKEFORGE_BUILD_DIR`` or ./build)."""
    return Path(os.environ.get("SPIKEFORGE_BUILD_DIR", "build")).resolve()


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
