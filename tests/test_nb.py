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
    ctx.record(threshold=12, auc=0.5)      # kept where computed (a solution cell); the receipt's own value wins
    path = ctx.write_receipt(auc=np.float64(0.99), counts=np.arange(3), bad=float("nan"))
    receipt = json.loads(path.read_text())
    assert path == tmp_path / "99_test.receipt.json"
    assert receipt["results"] == {"threshold": 12, "auc": 0.99, "counts": [0, 1, 2], "bad": None}
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


# ---------------------------------------------------------------- prose rendered from results

def test_fmt_formats_and_marks_missing_values():
    assert nd.nb.fmt(0.93217, ".3f") == "0.932"
    assert nd.nb.fmt(np.float32(2.5), ".1f") == "2.5"
    assert nd.nb.fmt(None) == "n/a" and nd.nb.fmt(float("nan"), ".2f") == "n/a"
    assert nd.nb.fmt(np.float64("inf"), missing="-") == "-"
    assert nd.nb.fmt(7, "d") == "7"


def test_markdown_table_renders_dicts_and_sequences():
    rows = [{"depth": 1, "auc": 0.91234, "note": "a|b"}, {"depth": 2, "auc": None, "note": "line\nbreak"}]
    text = nd.nb.markdown_table(rows, ["depth", "auc", "note"], formats={"auc": ".3f"},
                                header={"auc": "AUC"}, bold=lambda r: r["depth"] == 1)
    lines = text.splitlines()
    assert lines[0] == "| depth | AUC | note |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| **1** | **0.912** | **a\\|b** |"          # a pipe in a cell cannot break the table
    assert lines[3] == "| 2 | n/a | line break |"
    assert len(lines) == 4
    # sequences in column order, and a function as a format
    seq = nd.nb.markdown_table([(3, 0.5)], ["n", "x"], formats={"x": lambda v: f"{100 * v:.0f} %"})
    assert seq.splitlines()[2] == "| 3 | 50 % |"
    with pytest.raises(ValueError, match="column"):
        nd.nb.markdown_table([], [])


def test_depth_reports_markdown_renders_the_reports_numbers():
    rows = [{"condition": c, "depth": d, "seed": s, "auc": a}
            for c, table in {"NMDA": {1: (0.90, 0.92), 2: (0.95, 0.951), 3: (0.952, 0.954)},
                             "AMPA": {1: (0.990, 0.991), 2: (0.9905, 0.9915), 3: (0.989, 0.990)}}.items()
            for d, aucs in table.items() for s, a in enumerate(aucs)]
    reports = {c: nd.studies.depth_report(rows, c, tolerance=0.005) for c in ("NMDA", "AMPA")}
    text = nd.nb.depth_reports_markdown(reports, digits=3)
    lines = text.splitlines()
    assert lines[0] == "| depth | NMDA AUC (mean ± s.e.) | AMPA AUC (mean ± s.e.) |"
    nmda, ampa = reports["NMDA"], reports["AMPA"]
    assert (nmda.best_depth, nmda.depth_needed, ampa.best_depth, ampa.depth_needed) == (3, 2, 2, 1)
    def cell(rep, i):
        return f"{rep.mean[i]:.3f} ± {rep.sem[i]:.3f}"

    # the report's own numbers, the best depth in bold and the depth needed marked
    assert lines[2] == f"| 1 | {cell(nmda, 0)} | {cell(ampa, 0)} † |"
    assert lines[3] == f"| 2 | {cell(nmda, 1)} † | **{cell(ampa, 1)}** |"
    assert lines[4] == f"| 3 | **{cell(nmda, 2)}** | {cell(ampa, 2)} |"
    assert cell(nmda, 0) == "0.910 ± 0.010"
    assert "within 0.005 AUC" in text
    with pytest.raises(ValueError):
        nd.nb.depth_reports_markdown({})


def test_show_markdown_prints_outside_a_kernel(capsys):
    assert nd.nb.show_markdown("**verdict**: holds") is None     # a cell ending in it echoes nothing
    assert capsys.readouterr().out == "**verdict**: holds\n"


def _markdown_text(path) -> str:
    """A notebook's Markdown, with block-quote markers and line breaks folded into single spaces."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    text = "\n".join(line.lstrip("> ").rstrip() if line.startswith(">") else line for line in text.splitlines())
    return " ".join(text.replace("*", "").split())


def test_chapters_give_the_one_explanation_of_the_gap_to_the_paper():
    """Chapters 04, 05 and 06 explain why our Hay-cell results differ from the paper's in the same words."""
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    sentence = " ".join(nd.nb.PAPER_GAP_EXPLANATION.split())
    for stem in ("04_fitting_a_tcn", "05_evaluating_the_fit", "06_how_deep_is_a_neuron"):
        assert sentence in _markdown_text(notebooks / f"{stem}.ipynb"), stem


# ---------------------------------------------------------------- exercises: the solution never overwrites work

def _stub(x):
    "the exercise as committed"
    raise NotImplementedError("Exercise: write it")


def test_is_stub_tells_a_stub_from_an_answer():
    def answer(x):
        return 2 * x

    assert nd.nb.is_stub(_stub) and not nd.nb.is_stub(answer)
    with pytest.raises(TypeError, match="exercise's function"):
        nd.nb.is_stub(42)


def test_solves_uses_the_solution_only_while_the_exercise_is_a_stub(capsys):
    def solution(x):
        return 3 * x

    solution.__name__ = _stub.__name__
    chosen = nd.nb.solves(_stub)(solution)
    assert chosen is solution and chosen(2) == 6
    assert "still the stub" in capsys.readouterr().out

    def _student(x):
        return 3 * x + 0  # the student's own answer

    _student.__name__ = _stub.__name__
    kept = nd.nb.solves(_student)(solution)
    assert kept is _student and kept.solution is solution     # the student's work stays; the solution is at hand
    assert "using your version" in capsys.readouterr().out


def test_solves_refuses_a_mismatched_name_or_a_missing_exercise():
    def other(x):
        return x

    with pytest.raises(ValueError, match="does not solve '_stub'"):
        nd.nb.solves(_stub)(other)
    with pytest.raises(TypeError, match="run the exercise cell above first"):
        nd.nb.solves(None)


def test_a_cell_ending_in_a_check_or_a_receipt_echoes_nothing(tmp_path, monkeypatch):
    """The PASS line is the output; the returned value must not add a stray `True` or path under it."""
    monkeypatch.setenv("NEURODEPTH_RECEIPT_DIR", str(tmp_path))
    ctx = nd.nb.setup("99_test", scale="quick", seed=0, quiet=True)
    passed, failed = ctx.check("yes", True), ctx.check("no", False)
    assert passed and not failed and repr(failed) == "CheckResult(passed=False)"
    path = ctx.write_receipt()
    assert path == tmp_path / "99_test.receipt.json" and path.read_text()
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()  # what IPython shows of a cell's value (no shell made: it would outlive the test)
    assert formatter.format(True) == ({"text/plain": "True"}, {})     # what a plain bool would show
    for value in (passed, path):
        assert formatter.format(value) == ({}, {})                    # what these show: nothing
