"""Where a population is evaluated: in process, on a local process pool, or on a Dask cluster.

Every evaluator has ``evaluate(networks, ids, seed) -> (fitness, errors)`` and ``close()``.
The population is split into one chunk per worker (each chunk is one batched
``task.evaluate`` call, so the reference model still runs a whole chunk × the data at once).

Robustness: a chunk that raises, returns the wrong shape, NaN/inf or runs past ``timeout``
seconds is re-evaluated one individual at a time; an individual that still fails gets fitness
``-inf`` (the worst) and an error naming its id, and the run goes on. A hung worker process is
killed (the pool is restarted); a hung Dask task is cancelled (Dask cannot kill a running
thread: the worker stays busy until the task returns).

Networks travel to workers as their JSON documents (``Network.to_dict``); the task object is
sent once per worker (so it must be picklable: a module-level class or function).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikeforge.toolchain.ir import Network

__all__ = [
    "DEFAULT_TIMEOUT",
    "DaskEvaluator",
    "EvalError",
    "EvolveError",
    "PoolEvaluator",
    "SerialEvaluator",
    "local_workers",
    "make_evaluator",
]

log = logging.getLogger(__name__)


class EvolveError(ValueError):
    """Bad trainer settings, an unusable checkpoint, or a run that cannot go on (raised by the
    evaluators here and by :mod:`.evolve`, which re-exports it)."""

#: Seconds one batched evaluation call may take before it counts as hung.
DEFAULT_TIMEOUT = 600.0


@dataclass
class EvalError:
    """One individual that could not be evaluated."""

    individual: int
    message: str

    def __str__(self) -> str:
        return f"individual {self.individual}: {self.message}"


class _Timeout(Exception):
    pass


def local_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check(values: Any, n: int) -> np.ndarray:
    """The fitness array of a chunk of ``n``, or ValueError saying what is wrong with it."""
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"task returned {type(values).__name__}, not numbers: {e}") from None
    if a.shape != (n,):
        raise ValueError(f"task returned shape {a.shape} for {n} networks; expected ({n},)")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"task returned {a[bad[0]]} (not a finite number) for network #{bad[0]} of the call")
    return a


def _describe(e: BaseException) -> str:
    if isinstance(e, _Timeout):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _chunks(n: int, k: int) -> list[list[int]]:
    k = max(1, min(k, n))
    bounds = np.linspace(0, n, k + 1).astype(int)
    return [list(range(bounds[i], bounds[i + 1])) for i in range(k) if bounds[i + 1] > bounds[i]]


class _Base:
    """Chunking, checking and the one-by-one retry shared by every evaluator."""

    workers = 1

    def evaluate(self, networks: Sequence[Network], ids: Sequence[int], seed: int) -> tuple[np.ndarray, list[EvalError]]:
        """Fitness of every network (``-inf`` for failures) and the failures."""
        fit = np.full(len(networks), -math.inf)
        errors: list[EvalError] = []
        chunks = _chunks(len(networks), self.workers)
        outcomes = self._run([[networks[i] for i in c] for c in chunks], seed)
        retry = []
        for c, out in zip(chunks, outcomes, strict=True):
            if isinstance(out, BaseException):
                if len(c) == 1:
                    errors.append(EvalError(ids[c[0]], _describe(out)))
                else:
                    log.info("a chunk of %d failed (%s); evaluating its individuals one by one", len(c), _describe(out))
                    retry.extend(c)
            else:
                fit[c] = out
        # One by one, a round of `workers` at a time; if a whole first round fails, the task is
        # broken for everyone (not one bad individual): stop rather than pay a timeout each.
        done = 0
        while done < len(retry):
            part = retry[done:done + self.workers]
            outs = self._run([[networks[i]] for i in part], seed)
            for i, out in zip(part, outs, strict=True):
                if isinstance(out, BaseException):
                    errors.append(EvalError(ids[i], _describe(out)))
                else:
                    fit[i] = out[0]
            done += len(part)
            if done == len(part) and all(isinstance(o, BaseException) for o in outs) and done < len(retry):
                for i in retry[done:]:
                    errors.append(EvalError(ids[i], "not evaluated: the task failed on every individual tried "
                                                    f"(first: {errors[-len(part)].message})"))
                break
        return fit, errors

    def _run(self, chunks: list[list[Network]], seed: int) -> list[np.ndarray | BaseException]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers."""

    def __enter__(self) -> _Base:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # interrupted or failed: do not wait for running evaluations
            self.terminate()
        else:
            self.close()

    def terminate(self) -> None:
        """Stop at once (default: as :meth:`close`)."""
        self.close()


@contextmanager
def _alarm(seconds: float | None):  # type: ignore[no-untyped-def]
    """Raise _Timeout in the main thread after ``seconds`` (no-op elsewhere / without SIGALRM)."""
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout(f"evaluation took longer than the timeout of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class SerialEvaluator(_Base):
    """Evaluate in this process (timeouts via SIGALRM when running in the main thread).

    Parameters
    ----------
    task
        The task.
    timeout
        Seconds per batched call (None: no limit).
    """

    def __init__(self, task: Any, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.task, self.timeout = task, timeout

    def _run(self, chunks: list[list[Network]], seed: int) -> list[np.ndarray | BaseException]:
        out: list[np.ndarray | BaseException] = []
        for c in chunks:
            try:
                with _alarm(self.timeout):
                    out.append(_check(self.task.evaluate(c, seed), len(c)))
            except Exception as e:  # any task failure is reported, never fatal
                out.append(e)
        return out


# ------------------------------------------------------------------------- process pool
_WORKER_TASK: Any = None


def _init_worker(task: Any) -> None:
    global _WORKER_TASK
    _WORKER_TASK = task
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


def _eval_docs(task: Any, docs: list[dict[str, Any]], seed: int) -> tuple[str, Any]:
    """Evaluate JSON network documents; ``("ok", list)`` or ``("error", message)``."""
    try:
        nets = [Network.from_dict(d) for d in docs]
        return "ok", _check(task.evaluate(nets, seed), len(nets)).tolist()
    except Exception as e:  # reported to the parent with the individual ids
        return "error", _describe(e)


def _ping() -> int:
    return os.getpid()


def _pool_eval(docs: list[dict[str, Any]], seed: int) -> tuple[str, Any]:
    return _eval_docs(_WORKER_TASK, docs, seed)


class _RemoteError(Exception):
    pass


class PoolEvaluator(_Base):
    """Evaluate on a pool of local worker processes (``spawn``: safe with threads, any OS).

    Parameters
    ----------
    task
        The task (sent once to each worker).
    workers
        Processes (default: every usable core).
    timeout
        Seconds per batched call; a worker past it is killed and the pool restarted.
    """

    def __init__(self, task: Any, workers: int | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.task, self.timeout = task, timeout
        self.workers = workers or local_workers()
        if self.workers < 1:
            raise EvolveError(f"--workers = {self.workers} is invalid; allowed: an integer >= 1")
        self._pool: Any = None

    def _start(self) -> Any:
        if self._pool is None:
            ctx = mp.get_context("spawn")
            try:
                self._pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(self.task,))
                # Wait until the workers run (spawning is not part of any evaluation's timeout).
                pings = [self._pool.apply_async(_ping) for _ in range(self.workers)]
                for p in pings:
                    p.get(timeout=120)
            except Exception as e:
                raise EvolveError(f"cannot start {self.workers} worker processes for task "
                                  f"{getattr(self.task, 'name', '?')!r}: {e} (the task must be picklable: a "
                                  "module-level class or function; or use --workers 1)") from None
        return self._pool

    def _run(self, chunks: list[list[Network]], seed: int) -> list[np.ndarray | BaseException]:
        # At most one call per worker at a time, so every call counts its timeout from its
        # own start and a call past it is known to be the hung one.
        out: list[np.ndarray | BaseException] = []
        for a in range(0, len(chunks), self.workers):
            pool = self._start()
            batch = chunks[a:a + self.workers]
            handles = [pool.apply_async(_pool_eval, ([n.to_dict() for n in c], seed)) for c in batch]
            deadline = None if self.timeout is None else time.monotonic() + self.timeout
            hung = False
            for h in handles:
                try:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    status, val = h.get(timeout=left)
                    out.append(np.asarray(val, dtype=float) if status == "ok" else _RemoteError(val))
                except mp.TimeoutError:
                    hung = True
                    out.append(_Timeout(f"evaluation took longer than the timeout of {self.timeout:g} s"))
                except Exception as e:  # a worker that died, an unpicklable result
                    out.append(e)
            if hung:
                log.warning("killing the worker pool after a timeout of %s s", self.timeout)
                self._kill()
        return out

    def terminate(self) -> None:
        """Kill the workers without waiting for running evaluations."""
        self._kill()

    def _kill(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None


# ------------------------------------------------------------------------- dask
def _dask_eval(task: Any, docs: list[dict[str, Any]], seed: int) -> tuple[str, Any]:
    return _eval_docs(task, docs, seed)


class DaskEvaluator(_Base):
    """Evaluate on a Dask cluster (``distributed``), one chunk per worker thread.

    Parameters
    ----------
    task
        The task (scattered once to every worker).
    address
        Scheduler address (``tcp://host:8786``) or an existing ``distributed.Client``.
    timeout
        Seconds per batched call (a late task is cancelled).
    connect_timeout
        Seconds to reach the scheduler before failing.

    Raises
    ------
    EvolveError
        When the scheduler cannot be reached within ``connect_timeout``.
    """

    def __init__(self, task: Any, address: Any, timeout: float | None = DEFAULT_TIMEOUT,
                 connect_timeout: float = 10.0) -> None:
        from distributed import Client

        self.task, self.timeout = task, timeout
        self._own = not isinstance(address, Client)
        if self._own:
            try:
                self.client = Client(address, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as e:
                raise EvolveError(f"cannot reach the Dask scheduler at {address!r} within {connect_timeout:g} s "
                                  f"({type(e).__name__}: {e}); start one ('dask scheduler' plus "
                                  "'dask worker ADDRESS') or drop --scheduler to use local cores") from None
        else:
            self.client = address
        threads = sum(self.client.nthreads().values())
        self.workers = max(1, threads)
        self._task_future = self.client.scatter(task, broadcast=True, hash=False)

    def _run(self, chunks: list[list[Network]], seed: int) -> list[np.ndarray | BaseException]:
        futs = [self.client.submit(_dask_eval, self._task_future, [n.to_dict() for n in c], seed, pure=False)
                for c in chunks]
        out: list[np.ndarray | BaseException] = []
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        for f in futs:
            try:
                left = None if deadline is None else max(0.01, deadline - time.monotonic())
                status, val = f.result(timeout=left)
                out.append(np.asarray(val, dtype=float) if status == "ok" else _RemoteError(val))
            except TimeoutError:
                f.cancel()
                out.append(_Timeout(f"evaluation took longer than the timeout of {self.timeout:g} s"))
            except Exception as e:  # a lost worker, a cancelled future
                out.append(e)
        return out

    def close(self) -> None:
        """Disconnect (an address given as a Client is left open)."""
        if self._own:
            self.client.close()


def make_evaluator(task: Any, workers: int | None = None, scheduler: str | None = None,
                   timeout: float | None = DEFAULT_TIMEOUT) -> _Base:
    """The evaluator the CLI options ask for.

    Parameters
    ----------
    task
        The task.
    workers
        Local processes (None: all usable cores; 1: in this process).
    scheduler
        A Dask scheduler address (then ``workers`` is ignored).
    timeout
        Seconds per batched evaluation call.
    """
    if scheduler:
        return DaskEvaluator(task, scheduler, timeout)
    n = workers or local_workers()
    if n == 1:
        return SerialEvaluator(task, timeout)
    return PoolEvaluator(task, n, timeout)

