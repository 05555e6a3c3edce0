"""Test-session set-up shared by unit tests and notebook runs, and the session's timing report.

- Notebooks run at quick scale under pytest, and their receipts go to a temporary folder rather than next
  to the source notebooks (the nbval kernels inherit this process's environment).
- Each notebook executes once per ``make test``, under nbval. Tests marked ``@pytest.mark.after_notebooks``
  (the receipt checks in tests/test_notebooks.py) are moved to the end of the session, after every nbval
  cell, and read the receipts that nbval's run wrote (fixture ``notebook_session``).
- Time is reported, never asserted: at the end of the session a table gives each notebook's wall and CPU
  time against its quick budget (``metadata.neurodepth.quick_budget_s``), the session's wall time and the
  slowest unit tests; the same goes to ``outputs/test-timings.json``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

os.environ.setdefault("NEURODEPTH_SCALE", "quick")
os.environ.setdefault("NEURODEPTH_RECEIPT_DIR", tempfile.mkdtemp(prefix="neurodepth-receipts-"))
os.environ.setdefault("NEURODEPTH_WORK", tempfile.mkdtemp(prefix="neurodepth-work-"))  # notebooks write here, not into notebooks/
os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
os.environ.setdefault("NEURODEPTH_OFFLINE", "1")  # the checkout holds the assets; tests that download serve them on 127.0.0.1
os.environ.setdefault("MPLBACKEND", "Agg")

AFTER_NOTEBOOKS = "after_notebooks"
TIMINGS_JSON = Path("outputs") / "test-timings.json"  # relative to pytest's rootdir
N_SLOWEST = 10


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have exited (nbval kernels, pool workers)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return time.process_time()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _is_notebook_item(item) -> bool:
    return getattr(item, "path", None) is not None and item.path.suffix == ".ipynb"


class NotebookSession:
    """What this pytest session executed under nbval, and the session's timings.

    ``collected``: notebook stem -> path, for every notebook with at least one nbval cell left after
    collection and deselection (``-k``, ``--deselect``). ``receipt(stem)`` reads the receipt that run wrote.
    """

    def __init__(self, receipt_dir: str | os.PathLike):
        self.receipt_dir = Path(receipt_dir)
        self.started = time.time()            # a receipt older than this was not written by this session
        self.started_wall = time.perf_counter()
        self.started_cpu = _cpu_seconds()
        self.collected: dict[str, Path] = {}
        self.cell_seconds: dict[str, float] = defaultdict(float)     # stem -> nbval wall s (all phases)
        self.cell_cpu: dict[str, float] = defaultdict(float)         # stem -> CPU s of its kernel (reaped)
        self.failed_cells: dict[str, list[str]] = defaultdict(list)  # stem -> failing nbval node ids
        self.test_seconds: dict[str, float] = defaultdict(float)     # unit test node id -> wall s
        self._stem_of: dict[str, str] = {}                           # nbval node id -> notebook stem
        self._cpu_at_start = 0.0

    # -- read by the receipt tests

    def receipt_path(self, stem: str) -> Path:
        return self.receipt_dir / f"{stem}.receipt.json"

    def receipt(self, stem: str) -> dict | None:
        """The receipt ``stem`` wrote in this session, or ``None`` (missing, or left by an earlier run)."""
        path = self.receipt_path(stem)
        if not path.exists() or path.stat().st_mtime < self.started - 1:
            return None
        return json.loads(path.read_text())

    # -- hooks (this object is registered as a plugin in pytest_configure)

    @pytest.hookimpl(trylast=True)  # after -k / -m / --deselect have removed what will not run
    def pytest_collection_modifyitems(self, items):
        self.collected = {}
        for item in items:
            if _is_notebook_item(item):
                self.collected.setdefault(item.path.stem, item.path)
                self._stem_of[item.nodeid] = item.path.stem
        after = [item for item in items if item.get_closest_marker(AFTER_NOTEBOOKS)]
        if after:
            items[:] = [item for item in items if not item.get_closest_marker(AFTER_NOTEBOOKS)] + after

    def pytest_runtest_logstart(self, nodeid):
        self._cpu_at_start = _cpu_seconds()

    def pytest_runtest_logfinish(self, nodeid):
        # an nbval kernel (and the pool workers it reaped) counts here when it is shut down and reaped, in
        # its notebook's last tear-down; this process's own CPU while it waits on the kernel is small
        stem = self._stem_of.get(nodeid)
        if stem is not None:
            self.cell_cpu[stem] += _cpu_seconds() - self._cpu_at_start

    def pytest_runtest_logreport(self, report):
        stem = self._stem_of.get(report.nodeid)
        if stem is None:
            self.test_seconds[report.nodeid] += report.duration
            return
        self.cell_seconds[stem] += report.duration  # kernel start-up is in the first cell's set-up
        if report.failed:
            self.failed_cells[stem].append(f"{report.nodeid} ({report.when})")

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if config.option.collectonly:
            return
        report = self.timings(exitstatus)
        out = config.rootpath / TIMINGS_JSON
        try:
            from neurodepth_lib._io import atomic_write_text

            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, json.dumps(report, indent=2) + "\n")
            written = str(TIMINGS_JSON)
        except Exception as err:  # noqa: BLE001 - a report must never fail the session
            written = f"not written ({err})"
        tr = terminalreporter
        tr.write_sep("=", "neurodepth timings (reported, not asserted)")
        if report["notebooks"]:
            tr.write_line("nbval: the notebook's cells, kernel start to shut-down (CPU: kernel + its workers); "
                          "receipt: nd.nb.setup to ctx.write_receipt")
            tr.write_line(f"{'notebook':<34}{'nbval wall s':>13}{'nbval CPU s':>12}{'receipt wall s':>15}"
                          f"{'receipt CPU s':>14}{'cores':>6}{'quick budget s':>15}  within budget")
            num = lambda v, w: f"{v:>{w}.1f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"  # noqa: E731
            for row in report["notebooks"]:
                within = {True: "yes", False: "NO", None: "-"}[row["within_budget"]]
                tr.write_line(f"{row['notebook']:<34}{num(row['nbval_wall_s'], 13)}{num(row['nbval_cpu_s'], 12)}"
                              f"{num(row['receipt_wall_s'], 15)}{num(row['receipt_cpu_s'], 14)}"
                              f"{row['cores'] if row['cores'] is not None else '-':>6}"
                              f"{num(row['quick_budget_s'], 15)}  {within}")
            tr.write_line(f"receipts: {self.receipt_dir}")
        s = report["session"]
        tr.write_line(f"session: {s['wall_s']:.1f} s wall, {s['cpu_s']:.1f} s CPU (with finished child "
                      f"processes), {s['cores']} cores, load average {s['load_average']}")
        if report["slowest_tests"]:
            tr.write_line(f"slowest {len(report['slowest_tests'])} tests, notebook cells aside "
                          "(set-up + call + tear-down):")
            for row in report["slowest_tests"]:
                tr.write_line(f"  {row['wall_s']:>8.2f} s  {row['nodeid']}")
        tr.write_line(f"timings JSON: {written}")

    # -- the report

    def timings(self, exitstatus=None) -> dict:
        notebooks = []
        for stem, path in self.collected.items():
            budget = _quick_budget(path)
            receipt = self.receipt(stem) or {}
            wall, cpu = self.cell_seconds.get(stem), self.cell_cpu.get(stem)
            notebooks.append({
                "notebook": stem,
                "nbval_wall_s": round(wall, 2) if wall is not None else None,
                "nbval_cpu_s": round(cpu, 2) if cpu is not None else None,
                "receipt_wall_s": receipt.get("elapsed_s"), "receipt_cpu_s": receipt.get("cpu_s"),
                "cores": receipt.get("cores"), "quick_budget_s": budget,
                "within_budget": (wall <= budget) if wall is not None and budget is not None else None,
            })
        slowest = sorted(self.test_seconds.items(), key=lambda kv: -kv[1])[:N_SLOWEST]
        load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
        return {
            "session": {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "wall_s": round(time.perf_counter() - self.started_wall, 2),
                        "cpu_s": round(_cpu_seconds() - self.started_cpu, 2),
                        "cores": os.cpu_count(), "load_average": load,
                        "exitstatus": int(exitstatus) if exitstatus is not None else None,
                        "tests": len(self.test_seconds), "notebook_cells": len(self._stem_of)},
            "notebooks": notebooks,
            "slowest_tests": [{"nodeid": k, "wall_s": round(v, 3)} for k, v in slowest],
        }


def _quick_budget(path: Path):
    try:
        return json.loads(Path(path).read_text())["metadata"]["neurodepth"]["quick_budget_s"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


_KEY = pytest.StashKey[NotebookSession]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{AFTER_NOTEBOOKS}: runs after every notebook cell of the session (reads nbval's receipts)")
    session = NotebookSession(os.environ["NEURODEPTH_RECEIPT_DIR"])
    config.stash[_KEY] = session
    config.pluginmanager.register(session, "neurodepth-notebook-session")


@pytest.fixture(scope="session")
def notebook_session(request) -> NotebookSession:
    """Which notebooks nbval executed in this session, where their receipts are, and their cell outcomes."""
    return request.config.stash[_KEY]
