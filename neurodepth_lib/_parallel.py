"""Running independent tasks: in this process, on a local spawn process pool, or on a Dask cluster.

One executor serves dataset generation and architecture sweeps (:func:`run_tasks`). Tasks are plain dicts
handed to a module-level function, so spawned processes and Dask workers can run them; results come back
as they finish, in any order.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable

__all__ = ["default_workers", "run_tasks", "dask_client"]


def default_workers() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def dask_client(address: str | None):
    """A ``distributed.Client`` connected to the scheduler at ``address`` (None: no client).

    Dask is an optional dependency (``pip install "neurodepth[dask]"``); without it this raises an
    ``ImportError`` that says how to install it. An address where no scheduler answers raises ``ValueError``.
    """
    if not address:
        return None
    try:
        from distributed import Client  # optional dependency
    except ImportError as err:
        raise ImportError("a Dask scheduler was given but dask.distributed is not installed: "
                          'pip install "neurodepth[dask]"') from err
    try:
        return Client(address)
    except OSError as err:  # nobody answers there: a wrong address is a bad argument (one line in the CLI)
        raise ValueError(f"no Dask scheduler answers at {address!r}: {err}") from err


def run_tasks(fn: Callable[[dict], dict], tasks: list[dict], *, workers: int, client,
              on_done: Callable[[dict], None], name_of: Callable[[dict], str], what: str = "task") -> str:
    """Run the picklable module-level ``fn`` over ``tasks`` and call ``on_done`` with each result as it
    finishes; return a description of the executor used.

    The executor is a Dask ``client`` when given, this process when ``workers`` is 0, and otherwise a spawn
    process pool of ``workers`` processes. A failing task raises ``RuntimeError`` naming it
    (``name_of(task)``); on an error or Ctrl-C the pool returns at once: queued tasks are dropped and tasks
    already running finish in the background (their results land atomically and the next run adopts them).
    Sweeps use the same function.
    """
    if not tasks:
        return "none"

    def failed(task, err):
        return RuntimeError(f"{what} {name_of(task)} failed: {err}")

    if client is not None:
        from distributed import as_completed  # optional dependency, present when a client is

        futures = client.map(fn, tasks, pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        try:
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except Exception as err:
                    raise failed(by_key[fut.key], err) from err
                on_done(result)
        finally:
            client.cancel([f for f in futures if not f.done()])
        return "dask"
    if workers == 0:
        for task in tasks:
            on_done(fn(task))
        return "in-process"
    n = min(workers, len(tasks))
    pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"))
    try:
        pending = {pool.submit(fn, t): t for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as err:
                    raise failed(task, err) from err
                on_done(result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return f"process pool ({n} workers, spawn)"

