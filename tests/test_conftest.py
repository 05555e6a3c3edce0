"""The session harness in conftest.py: receipt checks run after the notebooks, skip when their notebook did
not run, fail when it ran without writing a receipt; and the timing report.

Runs pytest in a subprocess on a temporary project with our conftest.py and stand-in "notebooks": ``.ipynb``
files collected as one cell each, which write their receipt or not (no kernel, so this takes seconds).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAKE_NOTEBOOKS = '''

# ---- stand-in notebooks for tests/test_conftest.py: one cell that writes its receipt when told to
class FakeCell(pytest.Item):
    def runtest(self):
        if json.loads(self.path.read_text())["write"]:
            out = Path(os.environ["NEURODEPTH_RECEIPT_DIR"]) / f"{self.path.stem}.receipt.json"
            out.write_text(json.dumps({"notebook": self.path.stem, "elapsed_s": 1.5, "cpu_s": 1.0, "cores": 2}))


class FakeNotebook(pytest.File):
    def collect(self):
        yield FakeCell.from_parent(self, name="Cell 0")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".ipynb":
        return FakeNotebook.from_parent(parent, path=file_path)
'''

RECEIPT_TESTS = '''
import pytest


@pytest.mark.after_notebooks
@pytest.mark.parametrize("stem", ["a_writes", "b_silent", "c_not_run"])
def test_receipt(stem, notebook_session):  # the opening of tests/test_notebooks.py::test_quick_receipt
    if stem not in notebook_session.collected:
        pytest.skip(f"{stem} was not executed in this session")
    assert notebook_session.receipt(stem), f"{stem} wrote no receipt"


def test_plain():
    pass
'''


def test_receipt_checks_run_after_the_notebooks_and_skip_or_fail(tmp_path):
    project, receipts = tmp_path / "project", tmp_path / "receipts"
    project.mkdir()
    receipts.mkdir()
    (project / "conftest.py").write_text((ROOT / "conftest.py").read_text() + FAKE_NOTEBOOKS)
    (project / "test_receipts.py").write_text(RECEIPT_TESTS)
    for stem, write in [("a_writes", True), ("b_silent", False), ("c_not_run", True)]:
        (project / f"{stem}.ipynb").write_text(json.dumps({"write": write, "metadata": {
            "neurodepth": {"quick_budget_s": 60}}}))
    stale = receipts / "b_silent.receipt.json"  # left by an earlier session: must not count
    stale.write_text("{}")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    env = {**os.environ, "NEURODEPTH_RECEIPT_DIR": str(receipts)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider",
                          "test_receipts.py", "a_writes.ipynb", "b_silent.ipynb"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    order = [re.match(r"(.+?) (PASSED|FAILED|SKIPPED|ERROR)", line).group(1) for line in run.stdout.splitlines()
             if line.startswith(("test_receipts.py::", "a_writes.ipynb::", "b_silent.ipynb::"))]
    assert order == ["test_receipts.py::test_plain", "a_writes.ipynb::Cell 0", "b_silent.ipynb::Cell 0",
                     "test_receipts.py::test_receipt[a_writes]", "test_receipts.py::test_receipt[b_silent]",
                     "test_receipts.py::test_receipt[c_not_run]"], out
    assert "test_receipt[a_writes] PASSED" in out and "test_receipt[b_silent] FAILED" in out, out
    assert "test_receipt[c_not_run] SKIPPED" in out and "c_not_run was not executed in this session" in out
    assert "b_silent wrote no receipt" in out and run.returncode == 1, out

    # time is reported, not asserted: a table in the terminal and the same numbers as JSON
    assert "neurodepth timings (reported, not asserted)" in out and "slowest 4 tests" in out, out
    timings = json.loads((project / "outputs" / "test-timings.json").read_text())
    rows = {r["notebook"]: r for r in timings["notebooks"]}
    assert set(rows) == {"a_writes", "b_silent"}
    assert rows["a_writes"]["receipt_wall_s"] == 1.5 and rows["a_writes"]["quick_budget_s"] == 60
    assert rows["a_writes"]["within_budget"] is True and rows["b_silent"]["receipt_wall_s"] is None
    assert timings["session"]["wall_s"] > 0 and timings["session"]["exitstatus"] == 1
    assert {r["nodeid"] for r in timings["slowest_tests"]} == {
        "test_receipts.py::test_plain", "test_receipts.py::test_receipt[a_writes]",
        "test_receipts.py::test_receipt[b_silent]", "test_receipts.py::test_receipt[c_not_run]"}
