"""Notebook parameters (DESIGN.md section 8): size knobs in the parameters cell, `None` meaning the scale's
default, resolved by one call (``ctx.sizes``) from one table (``nd.scales.NOTEBOOK_SIZES``); and one work
folder per notebook (``ctx.work_dir()``), ignored by git.

Static checks read the notebooks' JSON; nothing here executes a chapter.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

import neurodepth_lib as nd
from neurodepth_lib.scales import NOTEBOOK_SIZES, SCALES, Knob, l5pc_nmda_simulated, resolve_sizes

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
ALL_NONE = {stem: dict.fromkeys(knobs) for stem, knobs in NOTEBOOK_SIZES.items()}


def code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def parameters_cell(path: Path):
    cells = [c for c in code_cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    return ast.parse(cells[0].source)


def setup_cell(path: Path):
    cells = [c for c in code_cells(path) if "nd.nb.setup(" in c.source]
    assert len(cells) == 1, f"{path.name}: one setup cell"
    return cells[0].source


def sizes_call(setup_source: str):
    """The setup cell's ``A, B = ctx.sizes(A=A, B=B)``: (assigned names, keyword names, keyword values)."""
    for node in ast.walk(ast.parse(setup_source)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and ast.unparse(node.value.func) == "ctx.sizes":
            target = node.targets[0]
            names = [e.id for e in target.elts] if isinstance(target, ast.Tuple) else [target.id]
            return names, [k.arg for k in node.value.keywords], [ast.unparse(k.value) for k in node.value.keywords]
    return None


# ---------------------------------------------------------------- the resolution call

@pytest.mark.parametrize("scale", SCALES)
def test_none_takes_the_scale_default(scale):
    for stem, given in ALL_NONE.items():
        resolved = resolve_sizes(stem, scale, **given)
        assert list(resolved) == list(NOTEBOOK_SIZES[stem])
        for name, (value, how) in resolved.items():
            assert how == "default" and value == NOTEBOOK_SIZES[stem][name].at(scale), (stem, name)


def test_the_table_holds_the_chapters_sizes():
    one = ALL_NONE["01_integrate_and_fire"]
    assert [resolve_sizes("01_integrate_and_fire", s, **one)["N_TRAIN"][0] for s in SCALES] == [40, 300, 12000]
    assert resolve_sizes("04_fitting_a_tcn", "paper", **ALL_NONE["04_fitting_a_tcn"])["N_STEPS"][0] is None
    assert resolve_sizes("06_how_deep_is_a_neuron", "lab", **ALL_NONE["06_how_deep_is_a_neuron"])["DEPTHS"][0] \
        == (1, 2, 3, 4)


def test_an_explicit_value_wins():
    given = {**ALL_NONE["01_integrate_and_fire"], "N_STEPS": 5}
    for scale in SCALES:
        resolved = resolve_sizes("01_integrate_and_fire", scale, **given)
        assert resolved["N_STEPS"] == (5, "given")
        assert resolved["N_TRAIN"][1] == "default"
    six = resolve_sizes("06_how_deep_is_a_neuron", "quick",
                        **{**ALL_NONE["06_how_deep_is_a_neuron"], "DEPTHS": [1, 3], "SEEDS": [0]})
    assert six["DEPTHS"] == ((1, 3), "given") and six["SEEDS"] == ((0,), "given")   # the table's tuple type
    four = resolve_sizes("04_fitting_a_tcn", "quick",
                         **{**ALL_NONE["04_fitting_a_tcn"], "ARCH": "small", "LR_SCALE": 3, "INPUT_WORKERS": 0})
    assert four["ARCH"] == ("small", "given") and four["LR_SCALE"] == (3.0, "given")
    assert four["INPUT_WORKERS"] == (0, "given")       # worker counts may be 0 (this process)


@pytest.mark.parametrize("stem, knob, bad", [
    ("01_integrate_and_fire", "N_STEPS", 0),
    ("01_integrate_and_fire", "N_STEPS", -5),
    ("01_integrate_and_fire", "N_STEPS", 2.5),
    ("01_integrate_and_fire", "N_TRAIN", "300"),
    ("01_integrate_and_fire", "DURATION_MS", True),
    ("04_fitting_a_tcn", "LR_SCALE", 0.0),
    ("04_fitting_a_tcn", "LR_SCALE", "fast"),
    ("04_fitting_a_tcn", "ARCH", ""),
    ("04_fitting_a_tcn", "ARCH", 7),
    ("04_fitting_a_tcn", "INPUT_WORKERS", -1),
    ("03_generating_a_dataset", "WORKERS", -2),
    ("06_how_deep_is_a_neuron", "DEPTHS", []),
    ("06_how_deep_is_a_neuron", "DEPTHS", [1, 0]),
    ("06_how_deep_is_a_neuron", "DEPTHS", "1,2"),
    ("06_how_deep_is_a_neuron", "SEEDS", [-1]),
    ("08_the_surrogate_is_fast", "LENGTHS_MS", 100),
    ("10_beyond_depth", "LR_SCALE", 0.0),
    ("10_beyond_depth", "EVAL_TRIALS", 0),
])
def test_a_bad_value_is_an_error_naming_the_knob(stem, knob, bad):
    with pytest.raises(ValueError, match=rf"\b{knob}\b"):
        resolve_sizes(stem, "quick", **{**ALL_NONE[stem], knob: bad})


def test_the_parameters_cell_and_the_table_cannot_drift_apart():
    with pytest.raises(ValueError, match="N_EPOCHS"):
        resolve_sizes("01_integrate_and_fire", "lab", **ALL_NONE["01_integrate_and_fire"], N_EPOCHS=3)
    with pytest.raises(ValueError, match="N_TEST"):
        resolve_sizes("01_integrate_and_fire", "lab", N_TRAIN=None, DURATION_MS=None, N_STEPS=None)
    with pytest.raises(ValueError, match="no size table"):
        resolve_sizes("99_nowhere", "lab")
    with pytest.raises(ValueError, match="unknown scale"):
        resolve_sizes("00_welcome", "huge", DURATION_MS=None)


def test_ctx_sizes_prints_returns_in_order_and_records_for_the_receipt(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NEURODEPTH_SCALE", raising=False)
    ctx = nd.nb.setup("01_integrate_and_fire", scale="quick", seed=0, quiet=True)
    sizes = ctx.sizes(N_TEST=None, N_TRAIN=None, DURATION_MS=None, N_STEPS=7)
    assert tuple(sizes) == (10, 40, 3000, 7) and sizes.N_STEPS == 7      # the order given
    out = capsys.readouterr().out
    assert "N_STEPS" in out and "given" in out and "default" in out and "'quick'" in out
    receipt = json.loads(ctx.write_receipt(tmp_path, spike_auc=0.5).read_text())
    assert receipt["sizes"] == {"N_TEST": 10, "N_TRAIN": 40, "DURATION_MS": 3000, "N_STEPS": 7}
    assert receipt["results"] == {"spike_auc": 0.5}
    assert ctx.by_scale(quick=1, lab=2, paper=3) == 1                    # still there for other values


def test_a_default_is_a_copy():
    knob = Knob([1, 2], [3], [4])
    knob.at("quick").append(99)
    assert knob.quick == [1, 2]


# ---------------------------------------------------------------- the table exists once

def test_one_table_for_every_notebook():
    assert set(NOTEBOOK_SIZES) == set(IDS)


def test_chapters_04_and_05_share_their_knobs_and_their_data():
    four, five = NOTEBOOK_SIZES["04_fitting_a_tcn"], NOTEBOOK_SIZES["05_evaluating_the_fit"]
    for name in ("N_TRAIN_TRIALS", "N_TEST_TRIALS", "TRIAL_MS", "WORKERS", "INPUT_WORKERS", "ARCH", "N_STEPS",
                 "LR_SCALE"):
        assert four[name] is five[name], f"{name} is defined twice"
    assert NOTEBOOK_SIZES["07_what_the_network_learned"]["CELL_WIDTH"] is \
        NOTEBOOK_SIZES["06_how_deep_is_a_neuron"]["WIDTH"]
    train, test = l5pc_nmda_simulated("quick", 4, 2, 1500)
    assert train == dict(n_trials=4, duration_ms=1500, seed=11, trials_per_shard=2)
    assert test == dict(n_trials=2, duration_ms=1500, seed=15, trials_per_shard=1)
    for stem in ("04_fitting_a_tcn", "05_evaluating_the_fit"):
        code = "\n".join(c.source for c in code_cells(ROOT / "notebooks" / f"{stem}.ipynb"))
        assert "nd.scales.l5pc_nmda_simulated(" in code
        assert "quick=dict(" not in code, f"{stem}: its data selection is written out again"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_size_table_in_the_setup_cell(path):
    setup = setup_cell(path)
    assert "by_scale(" not in setup, f"{path.name}: sizes come from ctx.sizes, not ctx.by_scale"


# ---------------------------------------------------------------- static: the parameters cell and the setup cell

@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_the_parameters_cell_names_every_knob_the_setup_cell_resolves(path):
    tree = parameters_cell(path)
    values = {t.id: ast.literal_eval(node.value) for node in tree.body for t in node.targets}
    assert {"SCALE", "SEED"} <= set(values), f"{path.name}: the parameters cell names SCALE and SEED"
    call = sizes_call(setup_cell(path))
    knobs = list(NOTEBOOK_SIZES[path.stem])
    assert call is not None, f"{path.name}: the setup cell resolves its sizes with ctx.sizes(...)"
    names, keywords, passed = call
    assert keywords == names == passed, f"{path.name}: write `A, B = ctx.sizes(A=A, B=B)`, in one order"
    assert sorted(keywords) == sorted(knobs), f"{path.name}: ctx.sizes gets exactly the table's knobs"
    missing = [k for k in keywords if k not in values]
    assert not missing, f"{path.name}: knobs resolved but not in the parameters cell: {missing}"
    stray = sorted(set(values) - {"SCALE", "SEED"} - set(keywords))
    assert not stray, f"{path.name}: parameters that are neither SCALE, SEED nor a size knob: {stray}"
    assert all(values[k] is None for k in keywords), f"{path.name}: every knob defaults to None"


# ---------------------------------------------------------------- one work folder

def test_work_dir_convention(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEURODEPTH_WORK", raising=False)
    path = nd.nb.work_dir("04_fitting_a_tcn", "lab", 3)
    assert path == Path("neurodepth_work") / "04_fitting_a_tcn" / "lab_seed3" and path.is_dir()
    (path / "kept.txt").write_text("resume me")
    assert (nd.nb.work_dir("04_fitting_a_tcn", "lab", 3) / "kept.txt").exists()        # a rerun resumes
    assert not any(nd.nb.work_dir("04_fitting_a_tcn", "lab", 3, fresh=True).iterdir())  # fresh empties it
    looked = nd.nb.work_dir("06_how_deep_is_a_neuron", "lab", 0, create=False)
    assert not looked.exists()                                   # looking for another chapter's files makes none
    monkeypatch.setenv("NEURODEPTH_WORK", str(tmp_path / "elsewhere"))
    assert nd.nb.work_dir("00_welcome", "QUICK", 0) == tmp_path / "elsewhere" / "00_welcome" / "quick_seed0"


def test_ctx_work_dir_starts_quick_runs_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEURODEPTH_WORK", raising=False)
    monkeypatch.delenv("NEURODEPTH_SCALE", raising=False)
    for scale, kept in (("quick", False), ("lab", True)):
        ctx = nd.nb.setup("03_generating_a_dataset", scale=scale, seed=1, quiet=True)
        (ctx.work_dir() / "old").write_text("x")
        assert ctx.work_dir().name == f"{scale}_seed1"
        assert (ctx.work_dir() / "old").exists() is kept


def test_git_ignores_the_work_folder():
    assert "neurodepth_work/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebooks_write_only_to_their_work_folder(path):
    code = "\n".join(c.source for c in code_cells(path))
    for forbidden in ("tempfile", "gettempdir", "mkdtemp", 'Path("data")', "neurodepth_work", "NEURODEPTH_WORK"):
        assert forbidden not in code, f"{path.name}: {forbidden!r}; use ctx.work_dir()"
    # a work-folder name, not a longer one that merely contains it (chapter 11's WORKERS)
    if re.search(r"\b(WORK|DATA_DIR)\b", code):
        assert "ctx.work_dir()" in code, f"{path.name}: its work folder comes from ctx.work_dir()"
    # no chapter reaches another's files; the one exception reads chapter 06's finished lab sweep (never a
    # temporary folder), through the same helper
    allowed = {"07_what_the_network_learned": {"06_how_deep_is_a_neuron"}}.get(path.stem, set())
    others = [s for s in IDS if s != path.stem and s not in allowed and f'"{s}"' in code]
    assert not others, f"{path.name} names another notebook's files: {others}"
