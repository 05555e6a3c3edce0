"""Tests of the evaluation protocol: ROC against scikit-learn, hand-computed values on synthetic
predictions, the paper's filters, error bars and the temporal-precision histogram."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics

import neurodepth_lib as nd


def tied_problem(n=5000, seed=0):
    """Random labels and scores rounded to 2 decimals: many ties."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    s = np.round(np.clip(0.3 * y + rng.normal(0.3, 0.2, n), 0, 1), 2)
    return s, y


# ---- ROC against scikit-learn -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_matches_sklearn_with_ties(seed, drop):
    s, y = tied_problem(seed=seed)
    fpr, tpr, thr = nd.scoring.roc_curve(s, y, drop_intermediate=drop)
    sk_fpr, sk_tpr, sk_thr = metrics.roc_curve(y, s, drop_intermediate=drop)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert thr[0] == np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_tp_at_fp_match_sklearn(seed):
    s, y = tied_problem(seed=seed)
    assert abs(nd.scoring.roc_auc(s, y) - metrics.roc_auc_score(y, s)) < 1e-12
    # continuous scores too (no ties), 2-D input pooled like the paper's trials x ms
    rng = np.random.default_rng(seed)
    y2 = (rng.random((20, 300)) < 0.02).astype(int)
    s2 = rng.normal(size=(20, 300)) + 1.5 * y2
    assert abs(nd.scoring.roc_auc(s2, y2) - metrics.roc_auc_score(y2.ravel(), s2.ravel())) < 1e-12
    for scores, labels in ((s, y), (s2.ravel(), y2.ravel())):
        fpr, tpr, _ = nd.scoring.roc_curve(scores, labels)
        sk_fpr, sk_tpr, _ = metrics.roc_curve(labels, scores)
        for x in (0.0001, 0.001, 0.0025, 0.01, 0.1, 0.5):
            i = np.argmin(np.abs(sk_fpr - x))
            expected = sk_tpr[max(i, 1)]  # the authors step past the first point (FP 0, TP 0)
            assert nd.scoring.tp_at_fp(fpr, tpr, x) == expected


def test_tp_at_fp_steps_past_the_first_point_as_the_authors_do():
    fpr, tpr = np.array([0.0, 0.01, 0.02, 1.0]), np.array([0.0, 0.5, 0.8, 1.0])
    assert nd.scoring.tp_at_fp(fpr, tpr, 0.001) == 0.5   # nearest is (0, 0): the next point is read
    assert nd.scoring.tp_at_fp(fpr, tpr, 0.012) == 0.5   # nearest is 0.01
    assert nd.scoring.tp_at_fp(fpr, tpr, 0.018) == 0.8


def test_auc_of_simple_predictors():
    y = np.array([0, 0, 1, 0, 1, 0, 0, 1])
    assert nd.scoring.roc_auc(y * 0.9 + 0.05, y) == 1.0  # perfect
    assert nd.scoring.roc_auc(1 - y, y) == 0.0  # inverted
    assert nd.scoring.roc_auc(np.full(8, 0.3), y) == 0.5  # constant: one diagonal segment
    # hand-computed: scores 0.1 < 0.4 = 0.4 < 0.8 with labels 0, 1, 0, 1
    # pairs (pos, neg): (0.4, 0.1) win, (0.4, 0.4) tie, (0.8, 0.1) win, (0.8, 0.4) win -> 3.5 / 4
    assert nd.scoring.roc_auc([0.1, 0.4, 0.4, 0.8], [0, 1, 0, 1]) == 3.5 / 4


def test_partial_auc_and_d_prime():
    y = np.r_[np.ones(50), np.zeros(5000)]
    fpr, tpr, _ = nd.scoring.roc_curve(np.r_[np.ones(50), np.zeros(5000)] + 0.0, y)
    assert nd.scoring.partial_auc(fpr, tpr, 0.01) == 1.0
    fpr, tpr, _ = nd.scoring.roc_curve(1 - y, y)
    assert nd.scoring.partial_auc(fpr, tpr, 0.01) == 0.0
    # chance: TPR = FPR; the authors average the first 200 points of a 20,000-point grid over [0, 1], so the
    # mean TPR is (0 + 1 + ... + 199) / 200 / 19,999 = 199 / (2 * 19,999), not 0.005
    assert abs(nd.scoring.partial_auc([0, 1], [0, 1], 0.01) - 199 / (2 * 19999)) < 1e-12
    # hand-checkable on a small grid: 10 points over [0, 1] (steps of 1/9), max_fpr 0.3 -> the first 3
    assert abs(nd.scoring.partial_auc([0, 1], [0, 1], 0.3, n_grid=10) - (0 + 1 / 9 + 2 / 9) / 3) < 1e-12
    # hand-computed staircase: TPR 0.5 on [0, 0.005), 1 from 0.005 on -> mean 0.75
    staircase = nd.scoring.partial_auc([0, 0, 0.005, 0.005, 1], [0, 0.5, 0.5, 1, 1], 0.01)
    assert abs(staircase - 0.75) < 1e-3
    # against a direct interpolation of scikit-learn's curve
    rng = np.random.default_rng(3)
    labels = (rng.random(20000) < 0.05).astype(int)
    scores = rng.normal(size=20000) + 2 * labels
    fpr, tpr, _ = nd.scoring.roc_curve(scores, labels)
    sk_fpr, sk_tpr, _ = metrics.roc_curve(labels, scores)
    direct = np.mean(np.interp(np.linspace(0, 1, 20000)[:200], sk_fpr, sk_tpr))
    assert abs(nd.scoring.partial_auc(fpr, tpr, 0.01) - direct) < 1e-3
    assert nd.scoring.d_prime(0.5) == 0.0
    assert abs(nd.scoring.d_prime(norm.cdf(1 / math.sqrt(2))) - 1.0) < 1e-12
    assert nd.scoring.d_prime(1.0) == math.inf


def test_one_class_and_bad_labels_raise():
    with pytest.raises(ValueError, match="only one class"):
        nd.scoring.roc_curve([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="only 0 and 1"):
        nd.scoring.roc_curve([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        nd.scoring.roc_curve([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="differ in size"):
        nd.scoring.roc_curve([0.1, 0.2, 0.3], [0, 1])


# ---- soma metrics -----------------------------------------------------------------------------------
def test_soma_metrics_hand_computed():
    t = np.array([-70.0, -68.0, -66.0, -64.0])
    assert nd.scoring.explained_variance(t, t) == 1.0
    assert nd.scoring.explained_variance(np.full(4, t.mean()), t) == 0.0
    assert nd.scoring.explained_variance(t + 3.0, t) == 1.0  # an offset is not penalised by EV ...
    assert nd.scoring.rmse(t + 3.0, t) == 3.0 and nd.scoring.mae(t + 3.0, t) == 3.0  # ... but is by RMSE / MAE
    assert nd.scoring.rmse([0.0, 0.0], [3.0, 4.0]) == math.sqrt(12.5) and nd.scoring.mae([0.0, 0.0], [3.0, -4.0]) == 3.5
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(size=500)
    assert abs(nd.scoring.explained_variance(a, b) - metrics.explained_variance_score(b, a)) < 1e-12
    # calibration: a prediction that is an affine map of the truth becomes exact
    pred = 0.5 * t + 10
    cal = nd.scoring.zscore_calibrate(pred, t)
    np.testing.assert_allclose(cal, t)
    assert nd.scoring.explained_variance(pred, t) < 1.0 - 0.2  # raw: halved amplitude
    assert nd.scoring.explained_variance(cal, t) == pytest.approx(1.0)
    noisy = t + rng.normal(size=4)
    cal = nd.scoring.zscore_calibrate(noisy, t)
    assert cal.mean() == pytest.approx(t.mean()) and cal.std() == pytest.approx(t.std())
    np.testing.assert_allclose(nd.scoring.zscore_calibrate(np.ones(4), t), t.mean())
    with pytest.raises(ValueError, match="constant"):
        nd.scoring.explained_variance(t, np.ones(4))


# ---- the protocol -----------------------------------------------------------------------------------
def synthetic_trials(n_trials=30, duration_ms=1500, rate=0.01, noise=0.1, seed=0):
    """True spikes, a good spike predictor, and soma traces (mV) with a prediction of known quality."""
    rng = np.random.default_rng(seed)
    spikes = (rng.random((n_trials, duration_ms)) < rate).astype(np.int8)
    prob = np.clip(0.7 * spikes + noise * rng.random((n_trials, duration_ms)), 0, 1)
    soma = -67 + 3 * np.sin(np.arange(duration_ms) / 40.0)[None, :] + rng.normal(size=(n_trials, duration_ms))
    soma_pred = soma + 0.5 * rng.normal(size=soma.shape)
    return prob, spikes, soma_pred, soma


def test_evaluate_on_an_easy_problem_with_error_bars():
    prob, spikes, vp, vt = synthetic_trials(n_trials=60, noise=0.8)
    r = nd.scoring.evaluate(prob, spikes, vp, vt, nd.scoring.EvaluationConfig(spike_count_range=None))
    assert r.n_trials == r.n_trials_kept == 60 and r.n_bins == 60 * 1000
    assert r.n_spikes == int(spikes[:, 500:].sum())
    assert r.auc == pytest.approx(metrics.roc_auc_score(spikes[:, 500:].ravel(), prob[:, 500:].ravel()))
    assert 0.85 < r.auc < 1.0
    # the error bars exist, are finite and small for 60 trials x 1000 ms
    assert r.auc_std is not None and 0 < r.auc_std < 0.01
    assert 0 < r.soma_calibrated_explained_variance_pct_std < 2.0
    # soma: Var(truth) = 4.5 + 1 ... EV = 1 - 0.25 / Var(truth)
    expected_ev = 100 * (1 - 0.25 / vt[:, 500:].var())
    assert r.soma_explained_variance_pct == pytest.approx(expected_ev, abs=0.5)
    assert r.soma_rmse_mV == pytest.approx(0.5, abs=0.01)
    assert r.soma_mae_mV == pytest.approx(0.5 * math.sqrt(2 / math.pi), abs=0.01)
    assert set(r.tp_at_fp) == {0.001, 0.0025}
    # the operating points are scikit-learn's (thinned) curve read the paper's way
    sk_fpr, sk_tpr, _ = metrics.roc_curve(spikes[:, 500:].ravel(), prob[:, 500:].ravel())
    for x in r.tp_at_fp:
        assert r.tp_at_fp[x] == sk_tpr[np.argmin(np.abs(sk_fpr - x))]
        assert r.fp_at_fp[x] == sk_fpr[np.argmin(np.abs(sk_fpr - x))]
    assert r.d_prime == pytest.approx(math.sqrt(2) * norm.ppf(r.auc))
    d = json.loads(json.dumps(r.to_dict(include_roc=True)))
    assert d["filter"] == "starting_at_500ms_all_simulations" and d["roc"]["thresholds"][0] is None
    # a thinned curve: a subset of the full one, both ends kept, points spread over the log FP axis
    thin = r.to_dict(include_roc=60)["roc"]
    assert len(d["roc"]["fpr"]) > 100 and 10 <= len(thin["fpr"]) <= 60
    full = {(f, t) for f, t in zip(d["roc"]["fpr"], d["roc"]["tpr"])}
    assert all((f, t) in full for f, t in zip(thin["fpr"], thin["tpr"]))
    assert thin["fpr"][0] == d["roc"]["fpr"][0] and thin["fpr"][-1] == d["roc"]["fpr"][-1]
    # between two kept points, the full curve's points all lie within one log-grid step (1.15x) of the first
    fpr_full = np.asarray(d["roc"]["fpr"])
    for a, b in zip(thin["fpr"][1:-1], thin["fpr"][2:]):
        between = fpr_full[(fpr_full > a) & (fpr_full < b)]
        assert a == 0 or np.all(between < 1.15 * a)
    table = r.table()
    for text in ("ROC AUC", "TP @ 0.1 % FP", "TP @ 0.25 % FP", "AUC @ 1 % FP", "explained variance",
                 "RMSE (mV)", "calibrated (headline)", "raw"):
        assert text in table


def test_calibration_is_reported_separately():
    prob, spikes, _, vt = synthetic_trials()
    vp = 0.5 * (vt - vt.mean()) + vt.mean() + 4.0  # right shape, half the amplitude, 4 mV off
    r = nd.scoring.evaluate(prob, spikes, vp, vt, nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=0))
    assert r.auc_std is None and r.soma_explained_variance_pct_std is None
    assert r.soma_calibrated_explained_variance_pct == pytest.approx(100.0)
    assert r.soma_calibrated_rmse_mV == pytest.approx(0.0, abs=1e-9)
    assert r.soma_explained_variance_pct < 80 and r.soma_rmse_mV > 3.5
    assert r.calibration_scale == pytest.approx(2.0)


def test_warm_up_and_spike_count_filter():
    prob, spikes, vp, vt = synthetic_trials(n_trials=10, noise=0.1)
    spikes[:, :500] = 0
    spikes[:, 500:] = 0
    rng = np.random.default_rng(5)
    for i in range(10):
        spikes[i, rng.choice(np.arange(500, 1500), 10, replace=False)] = 1
    prob = 0.7 * spikes + 0.1 * rng.random(spikes.shape)  # perfect after the warm-up ...
    prob[:, :500] = 1.0  # ... and nonsense during it
    spikes[:, :500] = 0
    # the authors' filter: an absolute count per trial (the default scales 0-24 per 6 s to these 1.5-s trials)
    cfg = nd.scoring.EvaluationConfig(n_subsets=0, spike_count_per_ms=None)
    assert nd.scoring.evaluate(prob, spikes, vp, vt, cfg).auc == 1.0  # the warm-up is excluded
    assert nd.scoring.evaluate(prob, spikes, vp, vt, nd.scoring.EvaluationConfig(
        start_ms=0, n_subsets=0, spike_count_per_ms=None)).auc < 0.8
    # trial 3 gets 30 spikes, 20 of them during the warm-up: the filter counts the whole trial
    spikes[3, rng.choice(500, 20, replace=False)] = 1
    prob[3, 500:] = 1 - prob[3, 500:]  # and a badly predicted trial
    r = nd.scoring.evaluate(prob, spikes, vp, vt, cfg)
    assert r.n_trials_kept == 9 and 3 not in r.kept_trials and r.auc == 1.0
    r_all = nd.scoring.evaluate(prob, spikes, vp, vt, nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=0))
    assert r_all.n_trials_kept == 10 and r_all.auc < 1.0
    assert r.filter_name == "starting_at_500ms_spikes_in_[0,24]_range"


def test_evaluate_errors():
    prob, spikes, vp, vt = synthetic_trials(n_trials=4, duration_ms=800)
    with pytest.raises(ValueError, match="shapes differ"):
        nd.scoring.evaluate(prob[:, :700], spikes, vp, vt)
    with pytest.raises(ValueError, match="only 0 and 1"):
        nd.scoring.evaluate(prob, spikes * 2, vp, vt)
    bad = vp.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="soma_pred contains NaN"):
        nd.scoring.evaluate(prob, spikes, bad, vt)
    with pytest.raises(ValueError, match="no trial has a spike count"):
        nd.scoring.evaluate(prob, spikes, vp, vt, nd.scoring.EvaluationConfig(spike_count_range=(100, 200)))
    with pytest.raises(ValueError, match="only one class"):
        nd.scoring.evaluate(prob, np.zeros_like(spikes), vp, vt)
    with pytest.raises(ValueError, match="leaves nothing"):
        nd.scoring.evaluate(prob, spikes, vp, vt, nd.scoring.EvaluationConfig(start_ms=800))
    with pytest.raises(ValueError, match=r"\(n_trials, time\)"):
        nd.scoring.evaluate(prob[0], spikes[0], vp[0], vt[0])
    with pytest.raises(ValueError, match="spike_count_range"):
        nd.scoring.EvaluationConfig(spike_count_range=(5, 2))
    with pytest.raises(ValueError, match="subset_fraction"):
        nd.scoring.EvaluationConfig(subset_fraction=0)


# ---- temporal precision -----------------------------------------------------------------------------
def test_temporal_precision_histogram_finds_the_lag():
    rng = np.random.default_rng(0)
    spikes = np.zeros((20, 4000), dtype=np.int8)
    for i in range(20):
        spikes[i, rng.choice(np.arange(600, 3900, 10), 4, replace=False)] = 1
    # the predictor fires 3 ms after every true spike (80 negative bins, FPR 0.0011), with score 0.95 after
    # the first 40 and 0.9 after the other 40, above a noise floor that is chance for the true spikes; the
    # nearest point of the thinned ROC to FPR 0.002 is then the corner after those 80 bins (the next corner
    # lies far to the right), whose threshold is 0.9
    prob = 0.3 * rng.random(spikes.shape)
    prob[:, 3:][spikes[:, :-3] == 1] = np.repeat([0.95, 0.9], 40)
    tp = nd.scoring.temporal_precision_histogram(prob, spikes, target_fpr=0.002, half_window_ms=50)
    assert tp.lags_ms[0] == -50 and tp.lags_ms[-1] == 50 and tp.lags_ms.size == 101
    assert tp.n_true_spikes == 80
    assert tp.threshold == 0.9 and tp.fpr == pytest.approx(80 / (20 * 3500 - 80))
    assert tp.tpr == 0.0
    assert tp.lags_ms[np.argmax(tp.rate_hz_raw)] == 3
    # the authors count scores strictly above the threshold: the 40 bins at exactly 0.9 are not predicted
    # spikes, so only 40 of the 80 true spikes have their predicted spike at +3 ms
    i3 = int(np.flatnonzero(tp.lags_ms == 3)[0])
    assert tp.rate_hz_raw[i3] == pytest.approx(1000.0 * 40 / 80)
    # smoothed as 0.75 r[i] + 0.25 r[i - 1] (the first bin kept)
    assert tp.rate_hz[i3] == pytest.approx(0.75 * tp.rate_hz_raw[i3] + 0.25 * tp.rate_hz_raw[i3 - 1])
    assert tp.rate_hz[i3 + 1] == pytest.approx(0.75 * tp.rate_hz_raw[i3 + 1] + 0.25 * tp.rate_hz_raw[i3])
    assert tp.rate_hz[0] == tp.rate_hz_raw[0]
    # the paper's curve: the same histogram divided by its sum, then smoothed the same way
    counts = tp.rate_hz_raw / 1000.0 * 80  # no lag falls outside these trials: every lag sees 80 spikes
    fraction = counts / counts.sum()
    assert np.allclose(tp.fraction[1:], 0.75 * fraction[1:] + 0.25 * fraction[:-1])
    assert tp.fraction[i3] == pytest.approx(0.75 * 40 / counts.sum() + 0.25 * fraction[i3 - 1])
    # away from the peak: the background false positives, (0.002 - 0.0011) per ms, i.e. about 1 Hz
    assert np.mean(tp.rate_hz_raw[np.abs(tp.lags_ms) > 10]) < 5.0


def test_error_bars_use_subsets_of_all_trials_filtered_inside_each():
    counts = np.array([0, 3, 30, 5, 25, 1, 0, 2, 40, 7])  # trials 2, 4 and 8 fall outside 0-24 spikes
    config = nd.scoring.EvaluationConfig(n_subsets=3, subset_fraction=0.67, seed=5)
    subsets = nd.scoring.error_bar_subsets(counts, config)
    rng = np.random.default_rng(5)
    assert len(subsets) == 3
    for sub in subsets:
        drawn = np.sort(rng.choice(10, size=int(0.67 * 10), replace=False))  # int(6.7) = 6 of all 10
        assert np.array_equal(sub, drawn[(counts[drawn] >= 0) & (counts[drawn] <= 24)])


def test_evaluation_does_not_import_torch():
    code = ("import sys, neurodepth_lib.scoring.protocol as e; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
