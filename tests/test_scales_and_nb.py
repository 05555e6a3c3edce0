import json

import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib.scales import by_scale, resolve_scale


def test_scale_precedence(monkeypatch):
    monkeypatch.delenv("NEURODEPTH_SCALE", raising=False)
    assert resolve_scale("lab") == "lab"           # the parameters cell's literal
    assert resolve_scale(None) == "lab"            # nothing given: the default
    monkeypatch.setenv("NEURODEPTH_SCALE", "quick")
    assert resolve_scale("lab") == "quick"         # the environment beats the literal
    assert resolve_scale("paper") == "paper"       # papermill's -p beats the environment
    assert resolve_scale(" QUICK ") == "quick"


def test_unknown_scale_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        resolve_scale("huge")
    monkeypatch.setenv("NEURODEPTH_SCALE", "fast")
    with pytest.raises(ValueError, match="NEURODEPTH_SCALE"):
        resolve_scale("lab")
    with pytest.raises(ValueError):
        by_scale("tiny", quick=1, lab=2, paper=3)
    assert by_scale("paper", quick=1, lab=2, paper=3) == 3


def test_setup_seeds_and_receipt(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NEURODEPTH_SCALE", raising=False)
    monkeypatch.setenv("NEURODEPTH_RECEIPT_DIR", str(tmp_path))
    ctx = nd.nb.setup("99_test", scale="quick", seed=7)
    a = np.random.rand(3)
    ctx2 = nd.nb.setup("99_test", scale="quick", seed=7, quiet=True)
    assert np.array_equal(a, np.random.rand(3))
    assert ctx.rng.random() == ctx2.rng.random()
    assert ctx.by_scale(quick=1, lab=2, paper=3) == 1
    assert ctx.check("two is two", 2 == 2) and not ctx.check("one is two", 1 == 2)
    out = capsys.readouterr().out
    assert "scale 'quick'" in out and "[PASS] two is two" in out and "[CHECK FAILED] one is two" in out
    path = ctx.write_receipt(auc=np.float64(0.99), counts=np.arange(3), bad=float("nan"))
    receipt = json.loads(path.read_text())
    assert path == tmp_path / "99_test.receipt.json"
    assert receipt["results"] == {"auc": 0.99, "counts": [0, 1, 2], "bad": None}
    assert receipt["scale"] == "quick" and receipt["seed"] == 7
    assert [c["passed"] for c in receipt["checks"]] == [True, False]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_setup_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        nd.nb.setup("x", scale="quick", seed=-1)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    nd._io.atomic_write_text(target, "old")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        nd._io.atomic_write_text(target, Boom())  # write() refuses a non-string
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_lazy_import_does_not_load_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys, neurodepth_lib as nd; nd.inputs; nd.cells.iaf; nd.scales; "
            "print('torch' in sys.modules, 'neuron' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
