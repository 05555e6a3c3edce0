"""The house's rules (docs/architecture.md): import-linter's contracts in pyproject.toml hold, a planted
violation is caught, and importing the package stays cheap."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PLANTED = "  # planted by tests/test_architecture.py"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` on ``cwd/pyproject.toml``, finding ``neurodepth_lib`` in ``cwd`` first."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        exe = shutil.which("lint-imports")
    assert exe, "lint-imports not found: install the test extra (pip install -e '.[test]')"
    env = {**os.environ, "PYTHONPATH": str(cwd) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([str(exe), "--no-cache", "--no-logo", "pyproject.toml"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    run = lint_imports(ROOT)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    n_contracts = len(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])
    assert n_contracts >= 4 and f"Contracts: {n_contracts} kept, 0 broken." in report, report


def test_a_planted_violation_is_caught(tmp_path):
    shutil.copytree(ROOT / "neurodepth_lib", tmp_path / "neurodepth_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "x86_64", "aarch64", "arm64"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    copy = tmp_path / "neurodepth_lib"
    # a generation worker would load torch; a network would depend on the training loop above it
    with open(copy / "data" / "store.py", "a") as fh:
        fh.write(f"\nimport torch{PLANTED}\n")
    with open(copy / "nets" / "tcn.py", "a") as fh:
        fh.write(f"\nfrom ..fit import loop{PLANTED}\n")

    run = lint_imports(tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode != 0, report
    assert "2 broken" in report, report
    assert "know nothing of torch (generation workers never load it) BROKEN" in " ".join(report.split()), report
    assert "Layers in data-flow order: a lower layer never imports a higher one BROKEN" in report, report
    # the planted lines of the copy, not the installed package, were read
    assert "neurodepth_lib.data.store -> torch" in report, report
    assert "neurodepth_lib.nets.tcn -> neurodepth_lib.fit.loop" in report, report


def test_lazy_import_does_not_load_heavy_libraries():
    code = ("import sys, neurodepth_lib as nd; nd.inputs; nd.cells.iaf; nd.scales; "
            "print('torch' in sys.modules, 'neuron' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("folder", ["inputs", "cells", "data", "nets", "fit", "scoring", "studies", "viz"])
def test_tests_mirror_the_package(folder):
    """tests/<folder>/ exists for each package folder with tests, so a test is found next to its layer."""
    assert (ROOT / "neurodepth_lib" / folder).is_dir() and (ROOT / "tests" / folder / "__init__.py").exists()
    assert list((ROOT / "tests" / folder).glob("test_*.py"))
