"""``evaluate_model`` checks everything before predicting and refuses data of another condition;
``record_metrics`` appends every evaluation and lets only a full, matching one be the headline."""
import json

import pytest

import neurodepth_lib as nd
from neurodepth_lib.data.store import MismatchError

ALL = nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=0)


def test_another_condition_is_refused_before_predicting(world, no_predictions):
    with pytest.raises(MismatchError, match=r"the dataset is iaf2/AMPA \(ampa\) but the model was trained on data "
                                            r"that is iaf2/NMDA \(nmda\)"):
        nd.scoring.evaluate_model(world["model"], world["ampa"], config=ALL)


def test_an_allowed_mismatch_is_scored_recorded_and_never_the_headline(world, model):
    a = nd.scoring.evaluate_model(model, world["ampa"], config=ALL, allow_mismatch=True)
    assert a.dataset["mismatch"]["actual"]["condition"] == "AMPA"
    card = nd.scoring.record_metrics(model, a, key="test", command=["neurodepth", "evaluate"])
    assert "test" not in card["metrics"]
    entry, = card["metrics"]["history"]
    assert entry["headline"] is False and entry["mismatch"]["allowed"] and entry["condition"] == "AMPA"


@pytest.mark.parametrize("kwargs, message", [
    (dict(trials=[0, 99]), "trial 99 does not exist: there are 6 trials"),
    (dict(trials=[-1]), "trial -1 does not exist"),
    (dict(trials=[1.5]), "whole-number indices"),
    (dict(trials=[1, 1]), "more than once"),
    (dict(target_fpr=float("nan")), "target_fpr must be a finite number"),
    (dict(target_fpr=1.5), r"target_fpr must lie in \(0, 1\)"),
    (dict(batch_size=0), "batch_size must be a positive whole number"),
])
def test_bad_arguments_fail_before_predicting(world, no_predictions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        nd.scoring.evaluate_model(world["model"], world["nmda_test"], config=ALL, **kwargs)


def test_a_receptive_field_longer_than_the_trials_is_refused_and_a_long_edge_warned(world, no_predictions):
    big = nd.nets.TCN(nd.nets.make_architecture("tiny", n_inputs=100, kernel_sizes=(1601,)))
    with pytest.raises(ValueError, match=r"receptive field \(1601 ms\) is longer than the 1500-ms trials"):
        nd.scoring.evaluate_model(big, world["nmda_test"], config=ALL)
    edge = nd.nets.TCN(nd.nets.make_architecture("tiny", n_inputs=100, kernel_sizes=(700,)))
    with pytest.warns(UserWarning, match="zero-padded edge"), pytest.raises(AssertionError, match="predicted"):
        nd.scoring.evaluate_model(edge, world["nmda_test"], config=ALL)


def test_records_are_appended_and_a_subset_never_replaces_the_full_test(world, model):
    full = nd.scoring.evaluate_model(model, world["nmda_test"], config=ALL)
    card = nd.scoring.record_metrics(model, full, key="test", command=["neurodepth", "evaluate", "full"])
    assert card["metrics"]["test"]["trials"] == list(range(6))
    subset = nd.scoring.evaluate_model(model, world["nmda_test"], config=ALL, trials=range(0, 6, 2))
    card = nd.scoring.record_metrics(model, subset, key="test", command=["neurodepth", "evaluate", "subset"])
    assert card["metrics"]["test"]["trials"] == list(range(6))  # the headline stays the full test set
    history = card["metrics"]["history"]
    assert [h["command"][-1] for h in history] == ["full", "subset"]
    assert [h["headline"] for h in history] == [True, False] and history[1]["trials"] == [0, 2, 4]
    assert all(h["recorded_at"] and h["plan_id"] for h in history)
    assert json.loads(model.with_name("model.json").read_text())["metrics"] == card["metrics"]


def test_a_headline_recorded_before_the_history_is_kept(world, model):
    legacy = {"auc": 0.9, "dataset": "old_test", "plan_id": "p", "trials": [0, 1], "config": {}}
    nd.nets.update_model_card(model, metrics={"test": legacy, "valid_losses_at_best": None})
    a = nd.scoring.evaluate_model(model, world["nmda_test"], config=ALL)
    card = nd.scoring.record_metrics(model, a, key="test")
    first, second = card["metrics"]["history"]
    assert first == {"key": "test", **legacy, "recorded_before_history": True}
    assert second["headline"] and card["metrics"]["test"]["dataset"] == "nmda_test"
    with pytest.raises(ValueError, match="key must be a name"):
        nd.scoring.record_metrics(model, a, key="history")


def test_the_shipped_cards_keep_their_layout_readable():
    for card_path in sorted((nd.data.assets.data_root() / "lab" / "models").glob("*_tcn.json")):
        test = json.loads(card_path.read_text())["metrics"]["test"]
        assert {"auc", "dataset", "plan_id", "trials"} <= set(test)
