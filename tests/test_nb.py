"""Notebook plumbing (neurodepth_lib/nb.py): set-up, self-checks, receipts, and papermill runs."""
import json
import os

import numpy as np
import pytest

import neurodepth_lib as nd


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


# ---------------------------------------------------------------- papermill: parameter injection
# The chapters themselves are executed once per `make test`, by nbval (tests/test_notebooks.py reads their
# receipts). What only papermill does is inject parameters (`neurodepth notebooks`, `nd.nb.run_notebook`):
# it is tested here on a two-cell synthetic notebook, so that no chapter runs twice.

def _synthetic_notebook(path, body: str):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('SCALE = "lab"\nSEED = 0\nN_STEPS = 100')
    params.metadata["tags"] = ["parameters"]
    notebook.cells = [params, nbformat.v4.new_code_cell(body)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.notebook
def test_run_notebook_injects_parameters_and_collects_the_receipt(tmp_path, monkeypatch):
    import nbformat

    src_dir, out, elsewhere = tmp_path / "src", tmp_path / "out", tmp_path / "elsewhere"
    src_dir.mkdir()
    elsewhere.mkdir()
    source = _synthetic_notebook(src_dir / "99_synthetic.ipynb", (
        "import os\n"
        "import neurodepth_lib as nd\n"
        'ctx = nd.nb.setup("99_synthetic", scale=SCALE, seed=SEED)\n'
        'ctx.check("N_STEPS is positive", N_STEPS > 0)\n'
        "ctx.write_receipt(n_steps=N_STEPS, cwd=os.getcwd())\n"))
    monkeypatch.setenv("NEURODEPTH_SCALE", "quick")
    monkeypatch.setenv("NEURODEPTH_RECEIPT_DIR", str(elsewhere))

    receipt = nd.nb.run_notebook(source, out, scale="paper", parameters={"N_STEPS": 5, "SEED": 3})

    assert receipt["scale"] == "paper"          # an injected -p SCALE beats NEURODEPTH_SCALE=quick
    assert receipt["seed"] == 3 and receipt["results"]["n_steps"] == 5   # and the cell's literals
    assert receipt["checks"] == [{"check": "N_STEPS is positive", "passed": True}]
    assert receipt["elapsed_s"] >= 0 and receipt["cpu_s"] >= 0 and receipt["cores"] >= 1
    assert (out / "99_synthetic.receipt.json").exists() and receipt["results"]["cwd"] == str(out.resolve())
    assert not list(elsewhere.iterdir()) and not list(src_dir.glob("*.receipt.json"))
    assert os.environ["NEURODEPTH_RECEIPT_DIR"] == str(elsewhere)  # restored after the run
    executed = nbformat.read(out / "99_synthetic.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "N_STEPS = 5" in injected[0].source and 'SCALE = "paper"' in injected[0].source
    assert not [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
    assert not any(c.get("outputs") for c in nbformat.read(source, as_version=4).cells)  # source untouched


@pytest.mark.notebook
def test_run_notebook_raises_on_a_failing_cell_and_leaves_no_stale_receipt(tmp_path):
    import papermill

    out = tmp_path / "out"
    out.mkdir()
    stale = out / "98_failing.receipt.json"
    stale.write_text('{"scale": "quick"}')
    source = _synthetic_notebook(tmp_path / "98_failing.ipynb", 'raise RuntimeError("cell failed on purpose")')
    with pytest.raises(papermill.PapermillExecutionError, match="cell failed on purpose"):
        nd.nb.run_notebook(source, out, scale="quick")
    assert not stale.exists()
