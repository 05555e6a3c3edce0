"""The paper's spike-count filter is 0-24 spikes per 6-s trial: by default the evaluation scales it to the
trials' length (a rate, not a count) and records the range it applied (issue 18)."""
import json
import warnings

import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib.scoring import EvaluationConfig


def trials(n_spikes_per_trial, duration_ms, seed=0):
    """Trials with the given true spike counts (after 500 ms), a predictor that sees them and a noisy voltage."""
    rng = np.random.default_rng(seed)
    n = len(n_spikes_per_trial)
    spikes = np.zeros((n, duration_ms), dtype=np.uint8)
    for i, k in enumerate(n_spikes_per_trial):
        spikes[i, rng.choice(np.arange(500, duration_ms), k, replace=False)] = 1
    prob = 0.5 * spikes + 0.1 * rng.random(spikes.shape)
    v = rng.normal(-70.0, 2.0, spikes.shape)
    return prob, spikes, v


def test_the_default_is_the_papers_rate_scaled_to_the_trial_length():
    config = EvaluationConfig()
    assert config.spike_count_range == (0, 24) and config.spike_count_per_ms == 6000
    # 24 spikes per 6 s is 4 Hz: the bound that keeps the same rate at every length, rounded to whole spikes
    assert [config.applied_range(ms) for ms in (6000, 2000, 1500, 3000, 12000, 1000)] == \
        [(0, 24), (0, 8), (0, 6), (0, 12), (0, 48), (0, 4)]
    assert EvaluationConfig(spike_count_per_ms=None).applied_range(2000) == (0, 24)  # the authors' absolute count


def test_the_papers_range_is_a_rate_a_range_of_your_own_a_count():
    assert EvaluationConfig(spike_count_range=(0, 24)) == EvaluationConfig()       # named or not: the paper's
    own = EvaluationConfig(spike_count_range=(1, 9))
    assert own.spike_count_per_ms is None and own.applied_range(2000) == (1, 9)   # what you see in your trials
    assert EvaluationConfig(spike_count_range=(1, 9), spike_count_per_ms=3000).applied_range(6000) == (2, 18)
    assert EvaluationConfig(spike_count_range=None).applied_range(2000) is None
    for bad in ("6000", "yes", 0, -5, 2.5, True):
        with pytest.raises(ValueError, match="spike_count_per_ms"):
            EvaluationConfig(spike_count_per_ms=bad)


def test_six_second_trials_score_exactly_as_the_authors_filter_did():
    prob, spikes, v = trials([3, 30, 10, 24, 25, 0, 7, 12], 6000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaled = nd.scoring.evaluate(prob, spikes, v, v, EvaluationConfig(n_subsets=4))
        absolute = nd.scoring.evaluate(prob, spikes, v, v, EvaluationConfig(spike_count_per_ms=None, n_subsets=4))
    assert scaled.kept_trials == absolute.kept_trials == (0, 2, 3, 5, 6, 7)    # 30 and 25 spikes dropped
    assert scaled.auc == absolute.auc and scaled.auc_std == absolute.auc_std
    assert scaled.filter_name == absolute.filter_name == "starting_at_500ms_spikes_in_[0,24]_range"


def test_short_trials_are_filtered_at_the_papers_rate_and_the_record_says_so():
    # 2-s trials: 0-8 spikes (4 Hz) pass; 12 spikes is 6 Hz, which the paper's filter would drop in a 6-s trial
    prob, spikes, v = trials([2, 12, 5, 8, 9, 0, 3, 4, 6, 1], 2000)
    with pytest.warns(UserWarning, match=r"\(0-7 spikes per 2000-ms trial\) drops 3 of 10 trials.*0-20 spikes per 6000 ms scaled"):
        nd.scoring.evaluate(prob, spikes, v, v, EvaluationConfig(n_subsets=0, spike_count_range=(0, 20),
                                                                 spike_count_per_ms=6000))
    r = nd.scoring.evaluate(prob, spikes, v, v, EvaluationConfig(n_subsets=3))
    assert r.n_trials_kept == 8 and 1 not in r.kept_trials and 4 not in r.kept_trials
    record = json.loads(json.dumps(r.to_dict()))
    assert record["filter"] == "starting_at_500ms_spikes_in_[0,8]_range"
    assert record["spike_count_range_applied"] == [0, 8]
    assert record["config"]["spike_count_range"] == [0, 24] and record["config"]["spike_count_per_ms"] == 6000
    assert "trials with 0-8 spikes, 0-24 per 6 s scaled to the trials' length, the paper's filter" in r.table()
    # the error bars filter each subset with the same scaled range
    for sub in nd.scoring.error_bar_subsets(spikes.sum(axis=1), r.config, duration_ms=2000):
        assert spikes[sub].sum(axis=1).max() <= 8
    assert any(spikes[sub].sum(axis=1).max() > 8 for sub in nd.scoring.error_bar_subsets(spikes.sum(axis=1), r.config))


def test_a_record_reads_back_into_the_config_that_made_it():
    for config in (EvaluationConfig(), EvaluationConfig(spike_count_per_ms=None, start_ms=300),
                   EvaluationConfig(spike_count_range=None, fp_rates=(0.01,))):
        assert EvaluationConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # a record written before the range scaled by default has no spike_count_per_ms: it was an absolute count
    old = {k: v for k, v in EvaluationConfig().to_dict().items() if k != "spike_count_per_ms"}
    assert EvaluationConfig.from_dict(old).spike_count_per_ms is None
    with pytest.raises(ValueError, match="unknown evaluation setting"):
        EvaluationConfig.from_dict({"spike_range": [0, 24]})


def test_the_filter_warning_says_which_side_of_the_range_drops_the_trials():
    """A low end above 0 drops silent trials: the warning must not blame a cell that fires too much."""
    rng = np.random.default_rng(0)
    n, t = 10, 2000
    spikes = np.zeros((n, t))
    for i in range(4):                      # 4 trials with spikes, 6 silent
        spikes[i, rng.choice(np.arange(600, t), 3, replace=False)] = 1
    prob = np.clip(spikes * 0.8 + rng.uniform(0, 0.1, (n, t)), 0, 1)
    v = rng.normal(-70, 1, (n, t))
    config = nd.scoring.EvaluationConfig(spike_count_range=(1, 24), n_subsets=0)
    with pytest.warns(UserWarning, match=r"drops 6 of 10 trials \(60 %; 0 above the range, 6 below\): the score "
                                         r"leaves out the quietest trials"):
        nd.scoring.protocol.evaluate(prob, spikes, v, v, config=config)


def test_kept_trials_applies_the_range_scaled_to_the_trial_length():
    config = EvaluationConfig()                           # the paper's 0-24 spikes per 6 s
    counts = [0, 24, 25, 48, 49]
    assert config.kept_trials(counts, 6000).tolist() == [0, 1]
    assert config.kept_trials(counts, 12000).tolist() == [0, 1, 2, 3]   # 0-48 spikes per 12 s
    assert EvaluationConfig(spike_count_range=None).kept_trials(counts, 6000).tolist() == [0, 1, 2, 3, 4]
