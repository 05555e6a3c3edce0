"""The collection without a clone, as a Colab or pip user meets it: the wheel installed into a fresh virtual
environment (with the exact versions of constraints.txt), one asset-using notebook copied alone into an empty
folder and run with papermill. The lab assets come from a server on 127.0.0.1 standing in for the
repository's raw files (``NEURODEPTH_ASSETS_URL``). With the server up, the notebook's receipt must show the
shipped model and test set downloaded, checked and used; with it down, the notebook must fall back to
simulating and training its own (at quick scale, to keep it short), saying why in one line, with no traceback.

Costs about a minute of pip (from pip's cache after `make setup`) and two short notebook runs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import neurodepth_lib as nd
from tests.local_server import LocalServer

pytestmark = pytest.mark.noclone

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_evaluating_the_fit"
MODEL, TEST_SET = "model_l5pc_nmda_tcn", "l5pc_nmda_test"


def _run(argv, **kwargs):
    out = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    assert out.returncode == 0, f"{argv[:4]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """The wheel, built from this checkout, installed with the notebooks extra into a fresh environment."""
    where = tmp_path_factory.mktemp("no_clone")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(where / "dist"),
          str(ROOT)])
    wheel = next((where / "dist").glob("neurodepth-*.whl"))
    _run([sys.executable, "-m", "venv", str(where / "venv")])
    python = where / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), f"{wheel}[notebooks]"])
    return python


def _papermill(python: Path, folder: Path, server_url: str, **parameters) -> tuple[dict, str]:
    """Run the notebook alone in ``folder`` (lab scale unless ``SCALE`` is given); return its receipt and what
    the kernel printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURODEPTH_")}  # nothing of the test session
    env.update(NEURODEPTH_ASSETS_URL=server_url, NEURODEPTH_CACHE_DIR=str(folder / "cache"),
               NEURODEPTH_RECEIPT_DIR=str(folder), PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}")
    argv = [str(python), "-m", "papermill", f"{NOTEBOOK}.ipynb", f"{NOTEBOOK}.out.ipynb", "--log-output",
            "--no-progress-bar"]
    for name, value in {"SCALE": "lab", **parameters}.items():
        argv += ["-p", name, str(value)]
    out = _run(argv, cwd=folder, env=env)
    receipt = json.loads((folder / f"{NOTEBOOK}.receipt.json").read_text())
    return receipt, out.stdout + out.stderr


def _alone(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy2(ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", folder)
    return folder


def test_the_wheel_knows_its_repository_and_ships_no_data(venv):
    code = ("import neurodepth_lib as nd; from neurodepth_lib.data import assets; "
            "print(assets.checkout_data_root(), assets.base_url(), len(assets.read_registry()))")
    out = _run([str(venv), "-c", code], cwd=venv.parent).stdout.split()
    assert out[0] == "None"  # no checkout: nothing local, everything comes from the registry
    assert out[1] == f"https://raw.githubusercontent.com/neurodepth/neurodepth/v{nd.__version__}/data/"
    assert int(out[2]) == len(nd.data.assets.read_registry())


def test_a_notebook_alone_downloads_checks_and_uses_the_shipped_assets(venv, tmp_path):
    server = LocalServer(ROOT / "data")
    try:
        folder = _alone(tmp_path, "online")
        receipt, log = _papermill(venv, folder, server.url)
    finally:
        server.stop()
    used = receipt["assets"]
    for name in (MODEL, TEST_SET):
        assert used[name]["source"] == "downloaded", used
        assert used[name]["sha256"] == nd.data.assets.ASSETS[name].sha256
        assert used[name]["path"].startswith(str(folder / "cache"))
    asked = {path.lstrip("/") for path in server.requests}
    assert set(nd.data.assets.files_of(MODEL)) <= asked and set(nd.data.assets.files_of(TEST_SET)) <= asked
    assert receipt["results"]["model_source"].startswith("shipped")
    assert all(check["passed"] for check in receipt["checks"]), receipt["checks"]
    assert "Traceback" not in log


def test_without_the_server_the_notebook_falls_back_and_says_why(venv, tmp_path):
    server = LocalServer(tmp_path)
    server.stop()  # a URL that answers nothing: offline
    folder = _alone(tmp_path, "offline")
    # at quick scale, asked to use the shipped assets, so that its fallback (simulate and train) is seconds long
    receipt, log = _papermill(venv, folder, server.url, SCALE="quick", USE_SHIPPED=True)
    assert receipt["results"]["model_source"] == "trained in this notebook"
    assert MODEL not in receipt["assets"] and TEST_SET not in receipt["assets"]
    assert "note: could not download lab/models/l5pc_nmda_tcn.json" in log and "NEURODEPTH_ASSETS_URL" in log
    assert "Traceback" not in log
