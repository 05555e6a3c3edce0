"""Running independent tasks: in this process, on a local spawn process pool, or on a Dask cluster.

One executor serves dataset generation and architecture sweeps (:func:`run_tasks`). Tasks are plain dicts
handed to a module-level function, so spawned processes and Dask workers can run them; results come back
as they finish, in any order.
"""
from __future__ import annotations

import ast
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

__all__ = ["default_workers", "run_tasks", "dask_client", "die_with_parent", "process_pool", "check_spawn_safe",
           "SpawnGuardError"]

_PARENT_POLL_S = 0.5
# When this process loaded the library: a main script modified after it no longer describes the running code.
_LOADED_AT = time.time()


def _exit_if_orphaned(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(70)  # the parent is gone (killed): stop at once, nothing to hand results to
        time.sleep(_PARENT_POLL_S)


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when the process ``parent_pid`` that started it ends, however it
    ends (kill -9 included): on Linux the kernel sends SIGKILL (``PR_SET_PDEATHSIG``); everywhere a daemon
    thread checks the parent every half second and exits when it changed. A pool's worker initializer."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - an unusual libc: the thread below remains
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(70)
    threading.Thread(target=_exit_if_orphaned, args=(parent_pid,), name="neurodepth-parent-watch",
                     daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A spawn process pool of ``workers`` processes that die with this one (:func:`die_with_parent`): a
    killed run leaves no worker simulating or idling behind, so a rerun races nobody."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))


class SpawnGuardError(RuntimeError):
    """A script started a process pool from its top level without ``if __name__ == "__main__":``."""


def _guard_message(script) -> str:
    return (f"{script} runs neurodepth's process pool from its top level. The pool's workers are started with "
            "'spawn': each imports your script again, which would run this call again in every worker. Put the "
            "code that calls neurodepth under  if __name__ == \"__main__\":  (or pass workers=0 to run in this "
            "process).")


def _is_main_test(test) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides) and \
        any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides)


def check_spawn_safe(workers) -> None:
    """Refuse, with a message that says why, to start a spawn pool that would re-run the calling script.

    Spawned workers import the main script; a script that calls neurodepth at its top level (no ``if __name__
    == "__main__":``) would then call it again in every worker, and fail there with misleading errors (a
    dataset "being written by another generation", a pool "terminated abruptly"). Checked in the parent (the
    calling line is not inside such an ``if``) and in a worker (it is importing the main script). Nothing is
    checked with ``workers`` 0 or None-free runs in a notebook, an interactive session or ``python -c``, nor
    when the script was modified after the library was loaded (its source no longer matches the running code, so
    a long study whose script was edited meanwhile is not stopped by a false alarm).
    """
    if workers is not None and int(workers) == 0:
        return
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if getattr(mp.current_process(), "_inheriting", False):  # a spawned worker importing the main script
        raise SpawnGuardError(_guard_message(script or "the main script"))
    if not script or not str(script).endswith(".py"):
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals.get("__name__") == "__main__"
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return
    try:
        if Path(script).stat().st_mtime > _LOADED_AT:  # edited while running: its lines no longer match the frame's
            return
        tree = ast.parse(Path(script).read_text())
    except (OSError, SyntaxError, ValueError):
        return
    line = frame.f_lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or line):
            return
    raise SpawnGuardError(_guard_message(script))


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
    Workers die with this process (:func:`die_with_parent`): when it is killed (kill -9, SIGTERM) they stop
    too. Sweeps and the materialisation of inputs use the same function.
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
    pool = process_pool(n)
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

