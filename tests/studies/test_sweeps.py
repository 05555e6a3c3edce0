"""Sweeps: kernels and run ids, resuming after a kill without redoing finished runs, the results CSV, the
"best so far" curves and the how-deep logic (on synthetic results)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import neurodepth_lib as nd


def test_kernels_and_ids():
    assert nd.studies.kernels_for(1, 41) == (41,)
    assert nd.studies.kernels_for(4, 41) == (11, 11, 11, 11)
    for d in range(1, 8):
        k = nd.studies.kernels_for(d, 53)
        assert len(k) == d and sum(x - 1 for x in k) + 1 == 53
    with pytest.raises(ValueError, match="too short"):
        nd.studies.kernels_for(5, 3)
    assert nd.studies.run_id("NMDA", 3, 16, 41, 2) == "NMDA_D3xW16xT41_s2"
    grid = nd.studies.SweepGrid(depths=(1, 2), widths=(8, 16), receptive_fields_ms=(21,), seeds=(0, 1, 2))
    assert len(grid) == 12 and len(nd.studies.plan_runs(["NMDA", "AMPA"], grid)) == 24
    with pytest.raises(ValueError, match="depths"):
        nd.studies.SweepGrid(depths=(0,))


def _rows(condition, means_by_depth, noise=0.001, seeds=(0, 1, 2)):
    rng = np.random.default_rng(0)
    return [{"condition": condition, "depth": d, "width": 16, "receptive_field_ms": 41, "seed": s,
             "auc": m + noise * rng.standard_normal()} for d, m in means_by_depth.items() for s in seeds]


def test_how_deep_logic_on_synthetic_results():
    # NMDA-like: keeps improving up to depth 3, then flat; AMPA-like: flat from depth 1
    rows = _rows("NMDA", {1: 0.90, 2: 0.95, 3: 0.97, 4: 0.969}) + _rows("AMPA", {1: 0.98, 2: 0.981, 3: 0.979, 4: 0.98})
    nmda = nd.studies.depth_report(rows, "NMDA", tolerance=0.005)
    assert nmda.depth_needed == 3 and nmda.best_depth in (3, 4)
    assert nmda.gap_over_depth1_in_se > 3
    ampa = nd.studies.depth_report(rows, "AMPA", tolerance=0.005)
    assert ampa.depth_needed == 1
    assert "depth" in nmda.table() and "<- needed" in nmda.table()
    # tolerance 0: the best depth itself
    assert nd.studies.depth_report(rows, "NMDA", tolerance=0.0).depth_needed == nmda.best_depth
    with pytest.raises(ValueError, match="no results"):
        nd.studies.depth_report(rows, "AMPA_SK")


def test_best_so_far_is_a_cumulative_max_over_seeds():
    rows = [{"condition": "c", "depth": d, "width": 8, "receptive_field_ms": 21, "seed": s, "auc": a}
            for (d, s, a) in [(1, 0, 0.8), (2, 0, 0.7), (3, 0, 0.9), (1, 1, 0.6), (2, 1, 0.8), (3, 1, 0.7)]]
    c = nd.studies.best_so_far(rows, "depth")["c"]
    assert c["x"] == [1, 2, 3]
    np.testing.assert_allclose(c["mean"], [0.7, 0.8, 0.85])
    np.testing.assert_allclose(c["sem"][0], np.std([0.8, 0.6], ddof=1) / np.sqrt(2))
    # the paper's plotting rule drops points that do not improve by more than a fraction of the range
    kept = nd.studies.best_so_far(rows, "depth", min_improvement=0.5)["c"]
    assert kept["x"] == [1, 3]
    with pytest.raises(ValueError, match="axis"):
        nd.studies.best_so_far(rows, "height")


SCRIPT = textwrap.dedent("""
    import sys
    import neurodepth_lib as nd
    if __name__ == "__main__":
        out, tr, te = sys.argv[1:4]
        grid = nd.studies.SweepGrid(depths=(1, 2), widths=(2,), receptive_fields_ms=(11,), seeds=(0, 1))
        nd.studies.run_sweep(out, {"iaf": (tr, te)}, grid, steps=5, scale="quick", workers=0, progress=False)
""")


@pytest.fixture(scope="module")
def iaf_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_data")
    nd.data.generate_dataset(root / "train", cell="iaf", n_trials=6, duration_ms=1500, seed=1, workers=0,
                                progress=False)
    nd.data.generate_dataset(root / "test", cell="iaf", n_trials=4, duration_ms=1500, seed=2, workers=0,
                                progress=False)
    return root / "train", root / "test"


@pytest.mark.parametrize("with_valid", [False, True])
def test_inputs_are_regenerated_once_before_the_runs_which_only_read_them(tmp_path, iaf_data, monkeypatch,
                                                                         with_valid):
    # before, every worker starting a run on a new cache regenerated the same trials at the same time
    train, test = iaf_data
    made, running = [], []
    materialise, run_one = nd.data.input_cache.materialise_inputs, nd.studies.sweeps.run_one

    def counting(ds, trials, **kw):
        made.append((ds.path.name, tuple(int(i) for i in trials), bool(running)))
        return materialise(ds, trials, **kw)

    def watched(task):
        running.append(task)
        try:
            return run_one(task)
        finally:
            running.pop()

    monkeypatch.setattr(nd.data.input_cache, "materialise_inputs", counting)
    monkeypatch.setattr(nd.studies.sweeps, "run_one", watched)
    grid = nd.studies.SweepGrid(depths=(1, 2), widths=(2,), receptive_fields_ms=(11,), seeds=(0,))
    res = nd.studies.run_sweep(tmp_path / "s", {"iaf": (train, test, test) if with_valid else (train, test)}, grid,
                               steps=5, scale="quick", workers=0, progress=False, train_trials=4)
    assert res.runs_made == 2
    assert not any(during_run for *_, during_run in made), "a run regenerated inputs the sweep had cached"
    assert len(made) == len(set(made))  # each set once
    if with_valid:  # the first 4 training trials; all 4 test trials, which also validate
        assert sorted(made) == [("test", (0, 1, 2, 3), False), ("train", (0, 1, 2, 3), False)]
    else:  # the first 4 training trials split into 3 to train on and 1 to validate on; the 4 test trials
        assert sorted((name, len(trials)) for name, trials, _ in made) == [("test", 4), ("train", 1), ("train", 3)]
        assert sorted(t for name, trials, _ in made if name == "train" for t in trials) == [0, 1, 2, 3]
    assert len(list((tmp_path / "s" / nd.studies.INPUT_CACHE_DIR).glob("*.h5"))) == len(made)


def test_sweep_resumes_after_kill_without_redoing_finished_runs(tmp_path, iaf_data):
    train, test = iaf_data
    out = tmp_path / "sweep"
    script = tmp_path / "run_sweep.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(nd.studies.__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(train), str(test)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while proc.poll() is None:  # no deadline: a busy machine is slow, not wrong; the sweep ends on its own
            if len(list(out.glob("runs/*/result.json"))) >= 1:
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")}
    assert 1 <= len(finished) < 4, "the kill should land between the first and the last run"
    grid = nd.studies.SweepGrid(depths=(1, 2), widths=(2,), receptive_fields_ms=(11,), seeds=(0, 1))
    res = nd.studies.run_sweep(out, {"iaf": (train, test)}, grid, steps=5, scale="quick", workers=0, progress=False)
    assert res.runs_total == 4 and res.runs_skipped == len(finished) and res.runs_made == 4 - len(finished)
    for name, mtime in finished.items():  # finished runs were not redone
        assert (out / "runs" / name / "result.json").stat().st_mtime_ns == mtime
    # a third call does nothing
    again = nd.studies.run_sweep(out, {"iaf": (train, test)}, grid, steps=5, scale="quick", workers=0, progress=False)
    assert again.runs_made == 0 and again.runs_skipped == 4

    # the results table
    rows = nd.studies.read_csv(res.csv_path)
    assert [r["run_id"] for r in rows] == sorted(r["run_id"] for r in rows)
    assert len(rows) == 4 and set(nd.studies.CSV_COLUMNS) == set(rows[0])
    for r in rows:
        assert 0.0 <= r["auc"] <= 1.0
        assert r["steps"] == 5 and r["n_parameters"] > 0 and r["macs_per_ms"] > 0 and r["train_time_s"] > 0
        assert sum(k - 1 for k in r["kernels"]) + 1 == r["receptive_field_ms"] == 11
        assert len(r["kernels"]) == r["depth"]
        card = json.loads((out / "runs" / r["run_id"] / "model.json").read_text())
        assert card["sweep"]["spec"]["run_id"] == r["run_id"] and "test" in card["metrics"]
    # a different budget in the same directory is refused
    with pytest.raises(ValueError, match="another budget"):
        nd.studies.run_sweep(out, {"iaf": (train, test)}, grid, steps=6, scale="quick", workers=0, progress=False)


def test_how_deep_end_to_end_on_the_iaf_neuron(tmp_path):
    report = nd.studies.how_deep("iaf", tmp_path / "hd", n_train_trials=4, n_test_trials=3, duration_ms=1200,
                             depths=(1, 2), width=2, receptive_field_ms=11, seeds=(0, 1), steps=5, scale="quick",
                             workers=0, progress=False)
    assert report.cell == "iaf" and report.depth_needed in (1, 2)
    assert len(report.sweep.rows) == 4 and report.sweep.csv_path.exists()
    assert "How deep is iaf" in report.table() and "<- needed" in report.table()
    # a rerun finds everything done
    again = nd.studies.how_deep("iaf", tmp_path / "hd", n_train_trials=4, n_test_trials=3, duration_ms=1200,
                            depths=(1, 2), width=2, receptive_field_ms=11, seeds=(0, 1), steps=5, scale="quick",
                            workers=0, progress=False)
    assert again.sweep.runs_made == 0


def test_train_trials_uses_the_first_n_training_trials(tmp_path, iaf_data):
    train, test = iaf_data
    grid = nd.studies.SweepGrid(depths=(1,), widths=(2,), receptive_fields_ms=(11,), seeds=(0,))
    with pytest.raises(ValueError, match="train_trials=7 but the training set .* has 6 trials"):
        nd.studies.run_sweep(tmp_path / "too_many", {"iaf": (train, test)}, grid, steps=5, scale="quick", workers=0,
                         train_trials=7, progress=False)
    assert not (tmp_path / "too_many").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="train_trials"):
        nd.studies.run_sweep(tmp_path / "bad", {"iaf": (train, test)}, grid, steps=5, workers=0, train_trials=1.5)
    res = nd.studies.run_sweep(tmp_path / "four", {"iaf": (train, test)}, grid, steps=5, scale="quick", workers=0,
                           train_trials=4, valid_fraction=0.25, progress=False)
    card = json.loads((tmp_path / "four" / "runs" / res.rows[0]["run_id"] / "model.json").read_text())
    seen = card["dataset"]["trials"] + card["valid_dataset"]["trials"]
    assert sorted(seen) == [0, 1, 2, 3], seen  # trials 4 and 5 were neither trained nor validated on
    assert res.rows[0]["budget"]["train_trials"] == 4


# ---------------------------------------------------------------- issue 19: nothing silently wrong

@pytest.mark.parametrize("grid, message", [
    (dict(widths=(2.7,)), "widths entry must be a positive whole number, got 2.7"),
    (dict(depths=(float("nan"),)), "depths entry must be a positive whole number"),
    (dict(seeds=(-1,)), "seeds entry must be a whole number >= 0"),
    (dict(receptive_fields_ms="41"), "sequence of whole numbers"),
])
def test_a_grid_refuses_what_it_would_truncate(grid, message):
    with pytest.raises(ValueError, match=message):
        nd.studies.SweepGrid(**grid)


@pytest.fixture(scope="module")
def two_conditions(tmp_path_factory):
    from tests import conditions

    root = tmp_path_factory.mktemp("sweep_conditions")
    return {c: (conditions.make_dataset(root / f"{c}_train", c, 1, 4), conditions.make_dataset(root / f"{c}_test", c, 2, 4))
            for c in ("NMDA", "AMPA")}


@pytest.mark.parametrize("kwargs, message", [
    (dict(threads_per_run=0), "threads_per_run must be a positive whole number"),
    (dict(workers=-1), "workers must be a whole number >= 0"),
    (dict(lr_scale=float("nan")), "lr_scale must be a finite number > 0"),
    (dict(valid_fraction=1.0), r"valid_fraction must lie in \[0, 1\)"),
])
def test_run_settings_are_checked_before_anything_is_written(tmp_path, two_conditions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        nd.studies.run_sweep(tmp_path / "s", {"NMDA": two_conditions["NMDA"]}, nd.studies.SweepGrid(depths=(1,)),
                             steps=5, progress=False, **kwargs)
    assert not (tmp_path / "s").exists()


def test_a_condition_given_another_conditions_data_is_refused(tmp_path, two_conditions):
    grid = nd.studies.SweepGrid(depths=(1,), widths=(2,), receptive_fields_ms=(5,), seeds=(0,))
    with pytest.raises(nd.data.MismatchError, match="training set of data\\['NMDA'\\] is iaf2/AMPA"):
        nd.studies.run_sweep(tmp_path / "s", {"NMDA": two_conditions["AMPA"]}, grid, steps=5, workers=0, progress=False)
    mixed = (two_conditions["NMDA"][0], two_conditions["AMPA"][1])
    with pytest.raises(nd.data.MismatchError, match="test set"):
        nd.studies.run_sweep(tmp_path / "s", {"NMDA": mixed}, grid, steps=5, workers=0, progress=False)
    assert not (tmp_path / "s").exists()
    res = nd.studies.run_sweep(tmp_path / "s", {"NMDA": mixed}, grid, steps=5, scale="quick", workers=0,
                               progress=False, allow_mismatch=True)
    plan = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert plan["allow_mismatch"][0]["dataset"]["condition"] == "AMPA" and res.runs_made == 1


def test_a_sweep_directory_that_is_a_file_is_refused(tmp_path, two_conditions):
    (tmp_path / "s").write_text("")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        nd.studies.run_sweep(tmp_path / "s", {"NMDA": two_conditions["NMDA"]}, steps=5, progress=False)
