"""``how_deep`` on a published model (issue 18): by the function and by the command, at tiny sizes; the answer
says "at least N" at the edge of the sweep, combines the uncertainty of seeds and test spikes, and warns about
undertrained networks and a spike-count filter that drops trials."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib import cli

SPEC = Path(__file__).parents[1] / "cells" / "fixtures" / "tiny_pyramid" / "cell.toml"
TINY = dict(n_train_trials=4, n_test_trials=6, duration_ms=2000, depths=(1, 2), width=2, receptive_field_ms=11,
            seeds=(0,), steps=5, scale="quick", workers=0)


def test_how_deep_on_a_published_model_by_the_function_and_by_the_command(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = nd.studies.how_deep(str(SPEC), tmp_path / "hd", progress=False, **TINY)
    assert report.cell == "tiny_pyramid" and report.condition == "control"
    assert report.calibration["in_range"] and report.calibration["param"] == "rate_factor"
    assert report.simulation["v_init_mV"] == -65.0 and report.simulation["dt_ms"] == 0.025  # the cell's own
    manifest = json.loads((tmp_path / "hd" / "data" / "train" / "manifest.json").read_text())
    assert manifest["plan"]["cell_params"]["rate_factor"] == report.calibration["factor"]
    row = report.sweep.rows[0]
    assert row["eval_filter"] == "starting_at_500ms_spikes_in_[0,8]_range"  # 0-24 per 6 s, for 2-s trials
    if report.depth_needed == 2:
        assert report.answer == "at least 2" and any("deepest depth tried" in w for w in report.warnings)
    assert any("seed(s) per depth" in w for w in report.warnings)
    assert "s.e.test" in report.table()
    # the command: same options, same directory, nothing left to do
    rc = cli.main(["how-deep", "--cell", str(SPEC), "--out", str(tmp_path / "hd"), "--train-trials", "4",
                   "--test-trials", "6", "--duration-ms", "2000", "--depths", "1", "2", "--width", "2", "--T", "11",
                   "--seeds", "0", "--steps", "5", "--scale", "quick", "--workers", "0", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "How deep is tiny_pyramid (control)?" in out and "inputs calibrated: rate_factor" in out


def test_a_bad_cell_or_condition_is_one_line_before_any_compute(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NEURODEPTH_DEBUG", raising=False)
    assert cli.main(["how-deep", "--cell", str(tmp_path / "none.toml"), "--out", str(tmp_path / "h")]) == 2
    assert "none.toml does not exist" in capsys.readouterr().err
    assert cli.main(["how-deep", "--cell", str(SPEC), "--condition", "NMDA", "--out", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its conditions: control, APV" in err
    assert cli.main(["how-deep", "--cell", "no_such_module:factory", "--out", str(tmp_path / "h")]) == 2
    assert "cannot load the cell factory" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def rows(aucs_by_depth, **extra):
    return [{"condition": "c", "depth": d, "seed": s, "auc": a, "eval_spikes": 400, "eval_bins": 100_000,
             "eval_trials": 10, "eval_trials_kept": 10, **extra}
            for d, aucs in aucs_by_depth.items() for s, a in enumerate(aucs)]


def test_the_needed_depth_at_the_edge_of_the_sweep_is_at_least():
    r = nd.studies.depth_report(rows({1: [0.90, 0.91, 0.90], 2: [0.95, 0.95, 0.96], 3: [0.97, 0.97, 0.98]}), "c")
    assert r.depth_needed == 3 and r.at_least and r.answer == "at least 3" and "at least 3" in r.table()
    r = nd.studies.depth_report(rows({1: [0.90, 0.91, 0.90], 2: [0.97, 0.97, 0.98], 3: [0.97, 0.97, 0.975]}), "c")
    assert r.depth_needed == 2 and not r.at_least and r.answer == "2"
    assert not any("deepest" in w for w in r.warnings)


def test_uncertainty_combines_seeds_and_test_spikes():
    r = nd.studies.depth_report(rows({1: [0.85, 0.86], 2: [0.87, 0.87]}, eval_spikes=35), "c")
    assert r.se_test[0] == pytest.approx(nd.studies.auc_standard_error(0.855, 35, 100_000))
    assert 0.03 < r.se_test[0] < 0.07  # 35 spikes at AUC 0.85: a few hundredths, far above the seeds' s.e.
    assert r.se_total[0] == pytest.approx(np.hypot(r.sem[0], r.se_test[0]))
    assert r.gap_over_depth1_in_se < 1  # not "7.5 s.e."
    assert any("only 35 test spikes" in w for w in r.warnings)
    assert any("best AUC is 0.870" in w for w in r.warnings)  # undertrained


def test_undertrained_runs_and_a_dropping_filter_are_flagged():
    sub = rows({1: [0.95, 0.95, 0.95], 2: [0.90, 0.90, 0.91]}, valid_still_falling=True, eval_trials_kept=5)
    r = nd.studies.depth_report(sub, "c")
    text = "\n".join(r.warnings)
    assert "validation loss was still falling" in text and "score below depth 1" in text
    assert "dropped up to 5 of 10 test trials" in text


def test_the_spike_count_filter_scales_with_trial_length_and_warns():
    rng = np.random.default_rng(0)
    n, t = 10, 2000
    spikes = np.zeros((n, t), dtype=np.uint8)
    for i in range(n):
        spikes[i, rng.choice(np.arange(500, t), 12 if i < 3 else 4, replace=False)] = 1
    prob = 0.5 * spikes + 0.1 * rng.random(spikes.shape)
    v = rng.normal(-70, 2, spikes.shape)
    scaled = nd.scoring.EvaluationConfig(spike_count_per_ms=6000, n_subsets=0)
    assert scaled.applied_range(6000) == (0, 24) and scaled.applied_range(2000) == (0, 8)
    with pytest.warns(UserWarning, match="drops 3 of 10 trials"):
        r = nd.scoring.evaluate(prob, spikes, v, v, scaled)
    assert r.n_trials_kept == 7 and r.filter_name == "starting_at_500ms_spikes_in_[0,8]_range"
    assert r.to_dict()["spike_count_range_applied"] == [0, 8]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the authors' absolute count keeps all ten, silently
        absolute = nd.scoring.evaluate(prob, spikes, v, v,
                                       nd.scoring.EvaluationConfig(spike_count_per_ms=None, n_subsets=0))
    assert absolute.n_trials_kept == 10 and absolute.config.to_dict()["spike_count_per_ms"] is None
