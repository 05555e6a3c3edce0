"""The data-scaling study (issue 16): nested training sizes, a budget that grows with the data, early stopping
on a validation set, one table of every run, and the depth needed per size with its interval."""
from __future__ import annotations

import math

import pytest

import neurodepth_lib as nd
from tests import conditions, load_script


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaling")
    conditions.register()
    return {"NMDA": (conditions.make_dataset(root / "train", "NMDA", 1, n_trials=8),
                     conditions.make_dataset(root / "test", "NMDA", 2, n_trials=4),
                     conditions.make_dataset(root / "valid", "NMDA", 3, n_trials=3))}


def test_the_plan_scales_the_budget_with_the_data():
    plan = nd.studies.ScalingPlan(sizes=(10, 100, 5000), steps_per_trial=4, min_steps=100, max_steps=1000)
    assert [plan.steps_for(n) for n in plan.sizes] == [100, 400, 1000]
    for bad, message in ((dict(sizes=(200, 100)), "sizes must increase"), (dict(sizes=()), "non-empty"),
                         (dict(depths=(0,)), "depths must be a positive whole number"),
                         (dict(min_steps=10, max_steps=5), "must not exceed"), (dict(seeds=(-1,)), "seeds")):
        with pytest.raises(ValueError, match=message):
            nd.studies.ScalingPlan(**bad)


def test_a_study_runs_one_sweep_per_size_and_stops_early_on_the_validation_set(sets, tmp_path):
    plan = nd.studies.ScalingPlan(sizes=(4, 8), depths=(1, 2), widths=(2,), seeds=(0, 1), receptive_field_ms=11,
                                  steps_per_trial=1, min_steps=5, max_steps=6)
    rows = nd.studies.run_scaling_study(tmp_path / "study", sets, plan, scale="quick", workers=0, progress=False)
    assert len(rows) == 2 * 2 * 2 and {r["n_train_trials"] for r in rows} == {4, 8}
    assert {r["steps"] for r in rows if r["n_train_trials"] == 4} == {5}      # clipped to min_steps
    assert {r["steps"] for r in rows if r["n_train_trials"] == 8} == {6}      # clipped to max_steps
    assert all(r["train_hours"] == pytest.approx(r["n_train_trials"] * 1.5 / 3600) for r in rows)
    card = nd.nets.read_model_card(tmp_path / "study" / "n00004" / "runs" / rows[0]["run_id"] / "model")
    assert card["valid_dataset"]["name"] == "valid" and card["dataset"]["trials"] == [0, 1, 2, 3]
    table = nd.studies.read_scaling_csv(tmp_path / "study" / "scaling.csv")
    assert len(table) == len(rows) and set(nd.studies.SCALING_COLUMNS) <= set(table[0])
    # resumable: a second call trains nothing and gives the same rows
    again = nd.studies.run_scaling_study(tmp_path / "study", sets, plan, scale="quick", workers=0, progress=False)
    assert sorted(r["auc"] for r in again) == sorted(r["auc"] for r in rows)
    entries = nd.studies.depth_by_size(table)
    assert [(e["condition"], e["n_train_trials"]) for e in entries] == [("NMDA", 4), ("NMDA", 8)]
    for e in entries:
        lo, hi = e["depth_needed_range"]
        assert lo <= e["depth_needed"] <= hi and e["n_seeds"] == 2
    assert "needed" in nd.studies.scaling_table(entries)


def test_a_study_resumes_from_earlier_tables_and_trains_only_the_missing_runs(sets, tmp_path):
    # a study moved to a machine without its run directory (the shipped tables are all that is left)
    plan = nd.studies.ScalingPlan(sizes=(4, 8), depths=(1,), widths=(2,), seeds=(0, 1), receptive_field_ms=11,
                                  steps_per_trial=1, min_steps=5, max_steps=6)
    run_ids = {r["seed"]: r["run_id"] for r in nd.studies.plan_runs(["NMDA"], plan.grid())}

    def row(n, seed, steps, auc):
        return {"condition": "NMDA", "n_train_trials": n, "train_hours": 0.0, "run_id": run_ids[seed], "depth": 1,
                "width": 2, "receptive_field_ms": 11, "kernels": [11], "seed": seed, "steps": steps, "auc": auc}

    earlier = [row(4, 0, 5, 0.25), row(4, 1, 5, 0.5),   # size 4 complete, at the plan's budget
               row(8, 0, 6, 0.75)]                      # size 8 lacks seed 1: only that run is trained
    rows = nd.studies.run_scaling_study(tmp_path / "s", sets, plan, scale="quick", workers=0, progress=False,
                                        finished_rows=earlier)
    assert not (tmp_path / "s" / "n00004").exists()
    assert sorted(r["auc"] for r in rows if r["n_train_trials"] == 4) == [0.25, 0.5]
    size8 = {r["seed"]: r for r in rows if r["n_train_trials"] == 8}
    assert size8[0]["auc"] == 0.75 and size8[1]["auc"] != 0.75 and len(rows) == 4
    assert [p.parent.name for p in (tmp_path / "s" / "n00008").glob("runs/*/result.json")] == [run_ids[1]]
    assert {r["run_id"] for r in nd.studies.read_csv(tmp_path / "s" / "n00008" / "results.csv")} == set(run_ids.values())
    # rows at another budget are another plan's: not taken
    other = [row(4, 0, 7, 0.25), row(4, 1, 7, 0.5)]
    plan4 = nd.studies.ScalingPlan(sizes=(4,), depths=(1,), widths=(2,), seeds=(0, 1), receptive_field_ms=11,
                                   steps_per_trial=1, min_steps=5, max_steps=6)
    again = nd.studies.run_scaling_study(tmp_path / "t", sets, plan4, scale="quick", workers=0, progress=False,
                                         finished_rows=other)
    assert (tmp_path / "t" / "n00004").is_dir() and 0.25 not in [r["auc"] for r in again]


def test_the_runs_of_an_unfinished_size_are_kept_for_the_next_start(sets, tmp_path):
    plan = nd.studies.ScalingPlan(sizes=(4, 8), depths=(1,), widths=(2,), seeds=(0, 1), receptive_field_ms=11,
                                  steps_per_trial=1, min_steps=5, max_steps=6)
    study = tmp_path / "study"
    nd.studies.run_scaling_study(study, sets, plan, scale="quick", workers=0, progress=False)
    assert nd.studies.unfinished_runs(study) == []             # every size finished: nothing left over
    # a stop in the middle of size 8: one of its runs finished, scaling.csv holds size 4 only
    for result in (study / "n00008" / "runs").glob("*_s1/result.json"):
        result.unlink()
    nd.studies.write_scaling_csv([r for r in nd.studies.read_scaling_csv(study / "scaling.csv")
                                  if r["n_train_trials"] == 4], study / "scaling.csv")
    nd.studies.write_csv(nd.studies.read_results(study / "n00008"), study / "n00008" / "results.csv")
    left = nd.studies.unfinished_runs(study)
    assert [(r["n_train_trials"], r["seed"]) for r in left] == [(8, 0)]
    assert left[0]["train_hours"] == pytest.approx(8 * 1.5 / 3600)


def test_a_sweep_refuses_finished_rows_of_another_budget_or_grid(sets, tmp_path):
    grid = nd.studies.SweepGrid(depths=(1,), widths=(2,), receptive_fields_ms=(11,), seeds=(0,))
    spec = nd.studies.plan_runs(["NMDA"], grid)[0]
    row = {**spec, "steps": 5, "auc": 0.5}
    for bad, message in (({**row, "steps": 6}, "trained for 6 steps"), ({**row, "run_id": "other"}, "not a run"),
                         ({**row, "width": 3}, "another run")):
        with pytest.raises(ValueError, match=message):
            nd.studies.run_sweep(tmp_path / "sweep", sets, grid, steps=5, scale="quick", workers=0, progress=False,
                                 finished_rows=[bad])
    assert not (tmp_path / "sweep").exists()                   # refused before any run or directory
    result = nd.studies.run_sweep(tmp_path / "sweep", sets, grid, steps=5, scale="quick", workers=0,
                                  progress=False, finished_rows=[row])
    assert result.runs_made == 0 and result.rows == [row]


def test_a_study_refuses_a_training_set_smaller_than_its_largest_size(sets, tmp_path):
    with pytest.raises(ValueError, match="largest size is 9 trials but the training set"):
        nd.studies.run_scaling_study(tmp_path / "s", sets, nd.studies.ScalingPlan(sizes=(4, 9)), progress=False)
    with pytest.raises(ValueError, match="stops early on a validation set"):
        nd.studies.run_scaling_study(tmp_path / "s", {"NMDA": sets["NMDA"][:2]}, progress=False)
    assert not (tmp_path / "s").exists()


def test_depth_by_size_reads_the_evidence_by_hand():
    def row(n, depth, seed, auc):
        return {"condition": "NMDA", "n_train_trials": n, "train_hours": n / 600, "depth": depth, "width": 16,
                "receptive_field_ms": 77, "seed": seed, "auc": auc}

    rows = [row(100, 1, 0, 0.90), row(100, 1, 1, 0.90), row(100, 2, 0, 0.95), row(100, 2, 1, 0.95),
            row(100, 4, 0, 0.951), row(100, 4, 1, 0.953)]
    (e,) = nd.studies.depth_by_size(rows)
    assert e["best_depth"] == 4 and e["best"] == pytest.approx(0.952) and e["depth_needed"] == 2
    assert e["gap_deep_over_depth1"] == pytest.approx(0.052)
    assert math.isinf(e["gap_in_se"]) is False and e["gap_in_se"] == pytest.approx(0.052 / 0.001)
    # the curves behind the answer: per depth, the mean over seeds and its standard error
    assert e["depths"] == [1, 2, 4]
    assert e["mean_by_depth"] == pytest.approx([0.90, 0.95, 0.952])
    assert e["sem_by_depth"] == pytest.approx([0.0, 0.0, 0.001])


def test_the_lab_study_script_records_the_command_that_remakes_it(tmp_path):
    """data/lab/scaling_study.py ships each table with the command that makes it from scratch: the plain study
    as before, the fixed-budget control (--steps, --depths) with its flags, so that its table is not mistaken
    for the main one."""
    import json
    from dataclasses import asdict

    script = load_script("data/lab/scaling_study.py")
    for plan, flags in ((nd.studies.ScalingPlan(sizes=(100, 200)), []),
                        (nd.studies.ScalingPlan(sizes=(800,), depths=(2, 7), min_steps=8000, max_steps=8000),
                         ["--depths", "2", "7", "--steps", "8000"])):
        study = tmp_path / f"study{len(flags)}"
        study.mkdir()
        (study / "scaling.json").write_text(json.dumps({"plan": asdict(plan), "data": {"NMDA": []}}))
        sizes = list(plan.sizes)
        assert script.made_by(study, sizes) == ["python", "data/lab/scaling_study.py", "NMDA", "--sizes",
                                                *map(str, sizes), *flags]
    assert script.shipped_paths("scaling_nmda_steps8000")[0].name == "hay_scaling_nmda_steps8000.csv"
    with pytest.raises(SystemExit):
        script.main(["AMPA", "--sizes", "1000", "--steps", "0"])   # refused before any work
