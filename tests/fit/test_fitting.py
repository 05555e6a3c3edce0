"""Fitting TCNs to dataset directories and evaluating them (chapters 04-05): training glue, model cards,
whole-trial prediction against the paper's stitched windows, the CLI round trip, shipped-asset lookup, and
a tiny network fitted to the L5PC that beats a constant predictor."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from neurodepth_lib import cli
import neurodepth_lib as nd


def short_config(steps=30, **kw):
    base = dict(schedule=nd.fit.compressed_schedule(steps, lr_scale=30.0, name="test"), device="cpu",
                progress=False, validate_every_steps=10, n_valid_batches=2, checkpoint_every_steps=5,
                restore_best=True, window_ms=200)
    base.update(kw)
    return nd.fit.TrainingConfig(**base)


@pytest.fixture(scope="module")
def iaf_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("iaf_sets")
    nd.data.generate_dataset(root / "train", cell="iaf", n_trials=16, duration_ms=1500, seed=11, workers=0,
                       progress=False)
    nd.data.generate_dataset(root / "test", cell="iaf", n_trials=6, duration_ms=1500, seed=12, workers=0,
                       progress=False)
    return root / "train", root / "test"


@pytest.fixture(scope="module")
def iaf_fit(iaf_sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("iaf_fit") / "model"
    arch = nd.nets.make_architecture("tiny", n_inputs=100, kernel_sizes=(31,), widths=4)
    fit = nd.fit.train_on_dataset(iaf_sets[0], out, architecture=arch, config=short_config(60), scale="quick",
                              progress=False)
    return fit


# ---------------------------------------------------------------- architectures

def test_make_architecture_presets_and_reshaping():
    large = nd.nets.make_architecture("large")
    assert large.name == "TCN__DxWxT_7x128x153" and large.n_inputs == 1278
    assert nd.nets.make_architecture("small").name == "FCN__DxWxT_1x128x43"
    assert nd.nets.make_architecture("fit_cnn", n_dendritic=20).n_dendritic == 20
    c = nd.nets.make_architecture("fit_cnn", depth=5, kernel_ms=11, first_kernel_ms=41, widths=16)
    assert c.kernel_sizes == (41, 11, 11, 11, 11) and c.widths == (16,) * 5
    assert c.receptive_field_ms == 41 + 4 * 10
    assert nd.nets.make_architecture("lab", kernel_sizes=(21, 11), widths=(16, 8)).widths == (16, 8)
    assert set(nd.nets.architecture_names()) >= {"large", "small", "fit_cnn", "lab", "tiny"}
    with pytest.raises(ValueError, match="unknown architecture 'huge'"):
        nd.nets.make_architecture("huge")
    with pytest.raises(ValueError, match="depth=3"):
        nd.nets.make_architecture("lab", kernel_sizes=(5, 5), depth=3)


def test_spike_log_odds():
    y = np.zeros(1000)
    y[:2] = 1
    assert nd.fit.spike_log_odds(y) == pytest.approx(np.log(0.002 / 0.998))
    assert nd.fit.spike_log_odds(np.zeros(10)) == pytest.approx(np.log(1e-4 / (1 - 1e-4)))


# ---------------------------------------------------------------- whole trials vs stitched windows

def test_whole_trial_prediction_equals_the_papers_stitched_windows(iaf_sets):
    sampler = nd.fit.WindowSampler(iaf_sets[1], trials=[0, 1, 2], window_ms=200)
    x = np.stack([sampler.full_trial(r, as_torch=False)["x"][0] for r in range(3)])  # (3, 100, 1500)
    torch.manual_seed(0)
    model = nd.nets.TCN(nd.nets.TCNConfig(n_inputs=100, kernel_sizes=(45, 19, 19), widths=6, hidden_init_std=0.1))
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(5):
            model(torch.as_tensor(x))
    t_rf = model.config.receptive_field_ms  # 81 ms
    full = nd.nets.predict_full_trace(model, x)
    stitched = nd.nets.predict_overlapping_windows(model, x, window_ms=400)  # the paper's overlap: T + 1 = 82 ms
    assert nd.nets.paper_overlap_ms(t_rf, 400) == 150
    np.testing.assert_allclose(stitched.spike_probability, full.spike_probability, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stitched.soma, full.soma, rtol=1e-5, atol=1e-5)
    # an overlap shorter than T - 1 breaks the equality right after each later window starts
    short = nd.nets.predict_overlapping_windows(model, x, window_ms=400, overlap_ms=20)
    assert not np.allclose(short.soma, full.soma, atol=1e-4)
    # the first T - 1 ms are an edge: a trace cut at 500 ms is predicted as if nothing came before it,
    # so the two predictions differ there and agree from 500 + T - 1 ms on
    cut = nd.nets.predict_full_trace(model, x[..., 500:])
    np.testing.assert_allclose(cut.soma[:, t_rf - 1:], full.soma[:, 500 + t_rf - 1:], rtol=1e-5, atol=1e-5)
    assert not np.allclose(cut.soma[:, : t_rf - 1], full.soma[:, 500:500 + t_rf - 1], atol=1e-4)


# ---------------------------------------------------------------- training on a dataset, model cards

def test_model_card_carries_dataset_hash_schedule_and_metrics(iaf_sets, iaf_fit):
    card = nd.nets.read_model_card(iaf_fit.model_path)
    manifest = iaf_sets[0] / "manifest.json"
    assert card["dataset"]["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert card["dataset"]["plan_id"] == json.loads(manifest.read_text())["plan_id"]
    train, valid = set(card["dataset"]["trials"]), set(card["valid_dataset"]["trials"])
    assert train and valid and not train & valid and train | valid == set(range(16))
    assert card["n_parameters"] == nd.nets.count_parameters(iaf_fit.model)
    assert card["training"]["config"]["schedule"]["stages"][0]["n_steps"] >= 1
    assert card["training"]["steps_done"] == 60 and card["training"]["weights"] == "best validation"
    assert card["metrics"]["valid_losses_at_best"]["spike"] == pytest.approx(iaf_fit.history.best_valid)
    assert card["targets"]["soma_bias_mV"] == pytest.approx(iaf_fit.train_sampler.transform.soma_bias_mV)
    # the data-derived spike bias (a documented deviation from the paper's -2.0 / -2.5)
    rate = iaf_fit.train_sampler.spikes[:, 500:].mean()
    assert card["config"]["spike_bias_init"] == pytest.approx(np.log(rate / (1 - rate)), abs=1e-5)
    # the saved file is the trained model
    loaded = nd.nets.load_model(iaf_fit.model_path)
    x = torch.as_tensor(iaf_fit.train_sampler.full_trial(0, as_torch=False)["x"])
    np.testing.assert_allclose(nd.nets.predict_full_trace(loaded, x).soma, nd.nets.predict_full_trace(iaf_fit.model, x).soma,
                               rtol=1e-6, atol=1e-6)
    # metrics of an evaluation are added to the card without touching the weights
    a = nd.scoring.evaluate_model(iaf_fit.model_path, iaf_sets[1],
                                  config=nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=3))
    card2 = nd.scoring.record_metrics(iaf_fit.model_path, a, key="test")
    assert card2["metrics"]["test"]["auc"] == pytest.approx(a.result.auc)
    assert card2["metrics"]["test"]["plan_id"] == a.dataset["plan_id"]
    assert card2["weights_sha256"] == card["weights_sha256"]
    nd.nets.load_model(iaf_fit.model_path)  # still loads


def test_spike_bias_rules(iaf_sets, tmp_path):
    one = short_config(5, validate_every_steps=5)
    paper = nd.fit.train_on_dataset(iaf_sets[0], None, architecture="tiny", config=one, spike_bias="paper",
                                scale="quick", progress=False)
    assert paper.model.config.spike_bias_init == -2.0
    fixed = nd.fit.train_on_dataset(iaf_sets[0], None, architecture="tiny", config=one, spike_bias=-4.5,
                                scale="quick", progress=False)
    assert fixed.model.config.spike_bias_init == -4.5
    with pytest.raises(ValueError, match="spike_bias"):
        nd.fit.train_on_dataset(iaf_sets[0], None, architecture="tiny", config=one, spike_bias="zero")
    with pytest.raises(ValueError, match="dendritic head"):
        nd.fit.train_on_dataset(iaf_sets[0], None, architecture=nd.nets.make_architecture("tiny", n_inputs=100,
                                                                                 n_dendritic=20),
                            config=one, progress=False)
    with pytest.raises(ValueError, match="n_inputs=1278"):
        nd.fit.train_on_dataset(iaf_sets[0], None, architecture=nd.nets.make_architecture("tiny"), config=one,
                            progress=False)


def test_runs_sharing_an_input_cache_regenerate_the_inputs_once(iaf_sets, tmp_path, monkeypatch):
    # the shipped models' candidates share one cache (data/lab/lab_models_common.sh: INPUTS)
    made = []
    materialise = nd.data.input_cache.materialise_inputs
    monkeypatch.setattr(nd.data.input_cache, "materialise_inputs",
                        lambda ds, trials, **kw: made.append(list(trials)) or materialise(ds, trials, **kw))
    kw = dict(architecture="tiny", config=short_config(5, validate_every_steps=5), scale="quick", progress=False,
              input_cache_dir=tmp_path / "inputs", valid_data=iaf_sets[1], trials=range(8))
    first = nd.fit.train_on_dataset(iaf_sets[0], tmp_path / "a", **kw)
    assert sorted(made) == [list(range(6)), list(range(8))]  # 8 training trials and the 6 validation trials
    second = nd.fit.train_on_dataset(iaf_sets[0], tmp_path / "b", **kw)
    assert len(made) == 2, "the second run regenerated inputs that the first had cached"
    assert len(list((tmp_path / "inputs").glob("*.h5"))) == 2
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)  # same seed, same inputs: the same network


def test_killed_training_resumes_to_the_same_weights(iaf_sets, tmp_path, monkeypatch):
    kw = dict(architecture="tiny", config=short_config(20), scale="quick", progress=False)
    whole = nd.fit.train_on_dataset(iaf_sets[0], tmp_path / "whole", **kw)

    real_sample, calls = nd.fit.WindowSampler.sample, {"n": 0}

    def killed(self, rng, batch_size, window_ms=None):
        calls["n"] += 1
        if calls["n"] == 14:
            raise KeyboardInterrupt("killed")
        return real_sample(self, rng, batch_size, window_ms)

    monkeypatch.setattr(nd.fit.WindowSampler, "sample", killed)
    with pytest.raises(KeyboardInterrupt):
        nd.fit.train_on_dataset(iaf_sets[0], tmp_path / "again", **kw)
    monkeypatch.setattr(nd.fit.WindowSampler, "sample", real_sample)
    assert (tmp_path / "again.ckpt.pt").exists() and not (tmp_path / "again.json").exists()
    again = nd.fit.train_on_dataset(iaf_sets[0], tmp_path / "again", **kw)
    assert again.history.resumed_at_steps and again.history.completed
    for (k, a), b in zip(whole.model.state_dict().items(), again.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    # a checkpoint is never continued on other data
    with pytest.raises(ValueError, match="other data"):
        nd.fit.train_on_dataset(iaf_sets[1], tmp_path / "again", **kw)
    # nor on fewer trials of the same dataset; the message says what changed and how to start over
    first = again.card["dataset"]["trials"]
    with pytest.raises(ValueError, match=rf"its dataset was {len(first)} trials of .* now 9 trials of .*resume=False"):
        nd.fit.train_on_dataset(iaf_sets[0], tmp_path / "again", trials=range(10), **kw)


# ---------------------------------------------------------------- evaluation of a model on a dataset

def test_evaluate_model_is_the_protocol_on_whole_trial_predictions(iaf_sets, iaf_fit):
    model = iaf_fit.model
    cfg = nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=4, seed=3)
    a = nd.scoring.evaluate_model(model, iaf_sets[1], config=cfg)
    # by hand: dense inputs -> one causal pass -> the protocol with the training target rules
    ds = nd.data.open_dataset(iaf_sets[1])
    x = np.stack([ds.inputs(i).to_dense() for i in range(len(ds))])
    pred = nd.nets.predict_full_trace(model, x)
    t = iaf_fit.train_sampler.transform
    spikes = np.stack([t.spike_target(ds.spike_times(i), ds.duration_ms) for i in range(len(ds))])
    v = np.minimum(ds.stack("soma_1ms"), t.soma_clip_mV)
    ref = nd.scoring.evaluate(pred.spike_probability, spikes, pred.soma.astype(np.float64) + t.soma_bias_mV, v, cfg)
    assert a.result.auc == pytest.approx(ref.auc, abs=1e-9)
    assert a.result.soma_explained_variance_pct == pytest.approx(ref.soma_explained_variance_pct, abs=1e-6)
    assert a.result.soma_rmse_mV == pytest.approx(ref.soma_rmse_mV, abs=1e-6)
    assert a.result.tp_at_fp == pytest.approx(ref.tp_at_fp)
    assert a.result.auc_std == pytest.approx(ref.auc_std)
    # the spike-count filter is a parameter
    counts = spikes.sum(axis=1)
    hi = int(np.sort(counts)[-2])  # drops the busiest trial(s)
    assert 0 < hi < counts.max()
    narrow = nd.scoring.evaluate_model(model, iaf_sets[1], config=nd.scoring.EvaluationConfig(
        spike_count_range=(0, hi), n_subsets=0))
    assert narrow.result.kept_trials == tuple(int(i) for i in np.flatnonzero(counts <= hi))
    # one call: a table and a JSON-able dict
    text = a.table()
    assert "ROC AUC" in text and model.config.name in text and "temporal precision" in text
    d = json.loads(json.dumps(a.to_dict(include_roc=True), allow_nan=False))
    assert d["evaluation"]["auc"] == pytest.approx(a.result.auc)
    assert len(d["temporal_precision"]["rate_hz"]) == 101
    assert a.dataset["plan_id"] == ds.manifest["plan_id"] and not a.dataset.get("training_overlap")
    # evaluating on training trials is flagged
    with pytest.warns(UserWarning, match="used to train"):
        leak = nd.scoring.evaluate_model(model, iaf_sets[0], config=cfg)
    assert leak.dataset["training_overlap"] == len(iaf_fit.train_trials) and "WARNING" in leak.table()


def test_predict_trials_from_a_sampler_matches_the_dataset_path(iaf_sets, iaf_fit):
    via_sampler = nd.scoring.predict_trials(iaf_fit.model, iaf_fit.valid_sampler)
    via_dataset = nd.scoring.predict_trials(iaf_fit.model, iaf_sets[0], trials=iaf_fit.valid_trials)
    np.testing.assert_array_equal(via_sampler.trials, via_dataset.trials)
    np.testing.assert_allclose(via_sampler.spike_probability, via_dataset.spike_probability, rtol=1e-6)
    np.testing.assert_array_equal(via_sampler.spike_true, via_dataset.spike_true)
    np.testing.assert_allclose(via_sampler.soma_true_mV, via_dataset.soma_true_mV)


# ---------------------------------------------------------------- the command line

def test_cli_train_and_evaluate_round_trip(iaf_sets, tmp_path, capsys):
    out = tmp_path / "runs" / "iaf"
    args = ["train", str(iaf_sets[0]), "--out", str(out), "--arch", "tiny", "--kernels", "31", "--width", "4",
            "--scale", "quick", "--steps", "30", "--lr-scale", "30", "--window-ms", "200", "--device", "cpu",
            "--no-progress"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "TCN" in printed or "FCN" in printed
    assert "30 of 30 steps" in printed and "model written" in printed
    card = nd.nets.read_model_card(out)
    assert card["config"]["kernel_sizes"] == [31] and card["config"]["widths"] == [4]
    assert card["dataset"]["plan_id"] == nd.data.open_dataset(iaf_sets[0]).manifest["plan_id"]
    assert "valid" in card["metrics"]  # the validation trials scored with the protocol

    report = tmp_path / "eval.json"
    assert cli.main(["evaluate", str(out), str(iaf_sets[1]), "--all-trials", "--subsets", "4",
                     "--json", str(report), "--record", "test"]) == 0
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed and "explained variance" in printed
    numbers = json.loads(report.read_text())
    assert 0.5 < numbers["evaluation"]["auc"] <= 1.0
    assert nd.nets.read_model_card(out)["metrics"]["test"]["auc"] == pytest.approx(numbers["evaluation"]["auc"])

    # rerunning the finished training changes nothing
    sha = card["weights_sha256"]
    assert cli.main(args) == 0
    assert nd.nets.read_model_card(out)["weights_sha256"] == sha
    capsys.readouterr()
    # errors are one line and exit code 2
    assert cli.main(["evaluate", str(out), str(tmp_path / "nowhere")]) == 2
    assert cli.main(["evaluate", str(tmp_path / "nomodel"), str(iaf_sets[1])]) == 2
    assert cli.main(["train", str(iaf_sets[0]), "--out", str(out), "--arch", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown architecture" in err

    # --train-trials: only the first N trials, split into training and validation
    first = tmp_path / "runs" / "first8"
    assert cli.main([*args[:3], str(first), *args[4:], "--train-trials", "8", "--steps", "5", "--no-evaluate"]) == 0
    card = nd.nets.read_model_card(first)
    assert sorted(card["dataset"]["trials"] + card["valid_dataset"]["trials"]) == list(range(8))
    capsys.readouterr()
    assert cli.main([*args[:3], str(tmp_path / "runs" / "too_many"), *args[4:], "--train-trials", "17"]) == 2
    assert "--train-trials must be between 1 and the 16 trials" in capsys.readouterr().err


# ---------------------------------------------------------------- shipped assets

def test_assets_are_found_only_when_complete_and_matching(tmp_path, monkeypatch):
    monkeypatch.setenv(nd.data.assets.DATA_DIR_ENV, str(tmp_path))
    # the shipped entry is pinned to the real manifest: test the rules on an unpinned one
    monkeypatch.setitem(nd.data.assets.ASSETS, "l5pc_nmda_test",
                        nd.data.assets.Asset("dataset", nd.data.assets.ASSETS["l5pc_nmda_test"].path, None))
    assert nd.data.assets.data_root() == tmp_path
    assert nd.data.assets.find("l5pc_nmda_test") is None and nd.data.assets.status("l5pc_nmda_test") == "missing"
    where = tmp_path / nd.data.assets.ASSETS["l5pc_nmda_test"].path
    where.mkdir(parents=True)
    (where / "manifest.json").write_text(json.dumps({"complete": False}))
    assert nd.data.assets.status("l5pc_nmda_test") == "incomplete" and nd.data.assets.find("l5pc_nmda_test") is None
    (where / "manifest.json").write_text(json.dumps({"complete": True}))
    assert nd.data.assets.find("l5pc_nmda_test") == where
    pinned = nd.data.assets.Asset("dataset", nd.data.assets.ASSETS["l5pc_nmda_test"].path, sha256="0" * 64)
    monkeypatch.setitem(nd.data.assets.ASSETS, "l5pc_nmda_test", pinned)
    with pytest.raises(ValueError, match="does not match"):
        nd.data.assets.find("l5pc_nmda_test")
    with pytest.raises(ValueError, match="unknown asset"):
        nd.data.assets.find("nope")
    # the fallback generates (and on a second call finds) the dataset
    path, how = nd.data.assets.dataset("l5pc_nmda_train", tmp_path / "made", cell="iaf", n_trials=2, duration_ms=600,
                               seed=1, workers=0, progress=False)
    assert how == "generated" and len(nd.data.open_dataset(path)) == 2


# ---------------------------------------------------------------- the L5PC: a tiny fit beats a constant

@pytest.mark.neuron
def test_a_tiny_tcn_fitted_to_the_l5pc_beats_a_constant_predictor(tmp_path_factory):
    root = tmp_path_factory.mktemp("l5pc_fit")
    # seeds whose short trials contain spikes (the cell is silent in many 1.5-s trials)
    nd.data.generate_dataset(root / "train", cell="l5pc", n_trials=4, duration_ms=1500, seed=11, workers=2,
                       trials_per_shard=2, progress=False)
    nd.data.generate_dataset(root / "test", cell="l5pc", n_trials=2, duration_ms=1500, seed=15, workers=2,
                       trials_per_shard=1, progress=False)
    config = nd.fit.TrainingConfig.for_scale("quick", schedule=nd.fit.schedule_for_scale("quick", total_steps=120),
                                         device="cpu", progress=False, restore_best=True)
    fit = nd.fit.train_on_dataset(root / "train", root / "model", architecture="tiny", config=config,
                              scale="quick", progress=False)
    a = nd.scoring.evaluate_model(root / "model", root / "test", config=nd.scoring.EvaluationConfig(
        spike_count_range=None, n_subsets=0))
    r = a.result
    assert r.n_spikes >= 2
    # a constant rate and a constant voltage score exactly chance and zero
    p = a.predictions
    const = nd.scoring.evaluate(np.full_like(p.spike_probability, 0.002), p.spike_true,
                                np.full_like(p.soma_pred_mV, -67.7), p.soma_true_mV,
                                nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=0))
    assert const.auc == pytest.approx(0.5) and const.soma_explained_variance_pct == pytest.approx(0.0, abs=1e-9)
    assert r.auc > 0.7, a.table()
    assert r.soma_explained_variance_pct > 0.0, a.table()
    assert fit.history.best_step is not None
