"""The paper's evaluation protocol (paper_facts 3.1), in numpy.

Given, for held-out trials, the predicted spike probability and somatic voltage and the simulated truth
(all ``(n_trials, time)`` at 1 ms), :func:`evaluate`

1. keeps the trials whose number of true spikes lies in ``spike_count_range`` (0-24 in the paper),
   counting spikes over the *whole* trial, warm-up included, as the authors' code does. The paper's filter
   is 0-24 spikes per 6-s trial, a rate: it is scaled to the trials' length (0-8 spikes for 2-s trials,
   exactly 0-24 for 6-s ones) and the range applied is recorded with the result; a range of your own is an
   absolute count per trial unless ``spike_count_per_ms`` says otherwise;
2. drops the warm-up, ``t < start_ms`` (500 ms);
3. pools every remaining (trial, ms) bin and scores the spike prediction: ROC AUC, the true-positive
   rate at given false-positive rates (the ROC point whose FPR is closest, stepping past the curve's
   first point (FP 0, TP 0) as the authors do), the partial AUC "at 1 % FP" (the mean TPR over the first
   200 points of a 20,000-point FPR grid over [0, 1], as the authors compute it) and
   D' = sqrt(2) Phi^-1(AUC);
4. scores the somatic voltage twice: after the paper's post-hoc z-score calibration (the prediction
   rescaled to the truth's mean and standard deviation; like the authors, the statistics are taken over
   every trial and ms passed in, before the filters), the headline numbers as in the paper, and as
   predicted ("raw"): explained variance (%; 1 - Var(residual) / Var(truth), scikit-learn's
   ``explained_variance_score``), RMSE and MAE (mV);
5. puts error bars on AUC and explained variance: the standard deviation over ``n_subsets`` random
   subsets of ``int(subset_fraction x N)`` of all ``N`` trials, the spike filter applied inside each
   subset, as the authors' code draws them (12 x 67 % in the paper; a fixed seed).

The metrics live in :mod:`neurodepth_lib.scoring.metrics` (the ROC curve, :func:`roc_curve`, with ties
handled like scikit-learn, including its ``drop_intermediate`` thinning, which the authors' code used;
tests check it against scikit-learn).
:func:`temporal_precision_histogram` makes the paper's temporal-precision plot.

No torch here: predictions come from :func:`neurodepth_lib.nets.predict_full_trace` as numpy arrays.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import NamedTuple

import numpy as np

from .._checks import positive_int
from .metrics import (as_array, as_binary, auc_from_curve, calibration, check_same_shape, closest_index, d_prime,
                      explained_variance, mae, partial_auc, rmse, roc_auc, roc_curve)

__all__ = ["EvaluationConfig", "EvaluationResult", "evaluate", "error_bar_subsets", "TemporalPrecision",
           "temporal_precision_histogram"]


# ---- configuration ----------------------------------------------------------------------------------
PAPER_SPIKE_COUNT_RANGE = (0, 24)  # spikes per trial the paper's evaluation keeps ...
PAPER_TRIAL_MS = 6000              # ... in its trials of this length


@dataclass(frozen=True)
class EvaluationConfig:
    """The paper's evaluation settings.

    Parameters
    ----------
    start_ms : bins before this time are excluded (warm-up; paper 500 ms).
    spike_count_range : keep trials whose total number of true spikes lies in this inclusive range
        (paper (0, 24)); None keeps every trial.
    spike_count_per_ms : a number of ms: the range is stated per this many ms of trial and is scaled to the
        trials' length (bounds rounded to whole spikes): ``6000`` with (0, 24) keeps 0-8 spikes in 2-s trials
        and exactly 0-24 in 6-s trials, so a trial is kept for the same *rate* whatever its length (an absolute
        0-24 would keep every short trial and drop most long ones). None: the range is an absolute count per
        trial, whatever its length. ``"auto"`` (default): ``6000`` for the paper's range (0, 24), the paper's
        0-24 spikes per 6-s trial (all the authors' trials lasted 6 s, where both readings agree), and None
        for a range of your own. The range applied is recorded in the result (``spike_count_range_applied``)
        and the resolved value in ``to_dict()``.
    fp_rates : false-positive rates at which the true-positive rate is reported (paper 0.1 % and 0.25 %).
    partial_auc_max_fpr : upper FPR of the partial AUC (paper 1 %).
    n_subsets, subset_fraction : error bars from this many random subsets of ``int(subset_fraction * N)``
        of all ``N`` test trials, the spike-count filter then applied inside each subset, as the authors'
        code does (paper 12 x 0.67); ``n_subsets = 0`` skips them (:func:`error_bar_subsets`).
    seed : seeds the subset draws (a fixed seed, so error bars are reproducible).
    """

    start_ms: int = 500
    spike_count_range: tuple[int, int] | None = (0, 24)
    spike_count_per_ms: int | str | None = "auto"
    fp_rates: tuple[float, ...] = (0.001, 0.0025)
    partial_auc_max_fpr: float = 0.01
    n_subsets: int = 12
    subset_fraction: float = 0.67
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.start_ms, bool) or int(self.start_ms) != self.start_ms or self.start_ms < 0:
            raise ValueError(f"start_ms must be an integer >= 0, got {self.start_ms!r}")
        object.__setattr__(self, "start_ms", int(self.start_ms))
        if self.spike_count_range is not None:
            try:
                lo, hi = self.spike_count_range
            except (TypeError, ValueError):
                raise ValueError(f"spike_count_range must be (low, high) or None, got {self.spike_count_range!r}") \
                    from None
            if int(lo) != lo or int(hi) != hi or lo < 0 or hi < lo:
                raise ValueError(f"spike_count_range must be two integers 0 <= low <= high, got {self.spike_count_range!r}")
            object.__setattr__(self, "spike_count_range", (int(lo), int(hi)))
        per = self.spike_count_per_ms
        if isinstance(per, str) and per == "auto":  # the paper's 0-24 is per 6 s; a range of your own per trial
            per = PAPER_TRIAL_MS if self.spike_count_range == PAPER_SPIKE_COUNT_RANGE else None
            object.__setattr__(self, "spike_count_per_ms", per)
        if per is not None:
            if isinstance(per, (bool, str)) or not isinstance(per, (int, float)) or int(per) != per or per < 1:
                raise ValueError(f"spike_count_per_ms must be 'auto', None or a whole number of ms >= 1, got {per!r}")
            object.__setattr__(self, "spike_count_per_ms", int(per))
        rates = tuple(float(x) for x in self.fp_rates)
        if not all(0.0 <= x <= 1.0 for x in rates):
            raise ValueError(f"fp_rates must lie in [0, 1], got {self.fp_rates!r}")
        object.__setattr__(self, "fp_rates", rates)
        if not 0.0 < float(self.partial_auc_max_fpr) <= 1.0:
            raise ValueError(f"partial_auc_max_fpr must lie in (0, 1], got {self.partial_auc_max_fpr!r}")
        object.__setattr__(self, "partial_auc_max_fpr", float(self.partial_auc_max_fpr))
        if isinstance(self.n_subsets, bool) or int(self.n_subsets) != self.n_subsets or self.n_subsets < 0:
            raise ValueError(f"n_subsets must be an integer >= 0, got {self.n_subsets!r}")
        object.__setattr__(self, "n_subsets", int(self.n_subsets))
        if not 0.0 < float(self.subset_fraction) <= 1.0:
            raise ValueError(f"subset_fraction must lie in (0, 1], got {self.subset_fraction!r}")
        object.__setattr__(self, "subset_fraction", float(self.subset_fraction))

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict (always with ``spike_count_per_ms``; None: an absolute count)."""
        d = asdict(self)
        d["spike_count_range"] = None if self.spike_count_range is None else list(self.spike_count_range)
        d["fp_rates"] = list(self.fp_rates)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluationConfig":
        """The config a record's ``to_dict()`` describes. Records written before the range scaled by default
        have no ``spike_count_per_ms`` (or left it out when it was None): their range was an absolute count
        per trial, so a missing key reads as None."""
        d = dict(d)
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown evaluation setting(s) {sorted(unknown)}")
        d.setdefault("spike_count_per_ms", None)
        for key in ("spike_count_range", "fp_rates"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def applied_range(self, duration_ms: int) -> tuple[int, int] | None:
        """The spike-count range applied to trials of ``duration_ms`` (see ``spike_count_per_ms``)."""
        if self.spike_count_range is None or self.spike_count_per_ms is None:
            return self.spike_count_range
        f = duration_ms / self.spike_count_per_ms
        lo, hi = self.spike_count_range
        return int(math.floor(lo * f + 0.5)), max(int(math.floor(lo * f + 0.5)), int(math.floor(hi * f + 0.5)))

    def kept_trials(self, spike_counts, duration_ms: int) -> np.ndarray:
        """Indices of the trials of ``duration_ms`` whose whole-trial spike counts the filter keeps
        (:meth:`applied_range`; every trial when there is no range)."""
        return np.flatnonzero(_passes_filter(np.asarray(spike_counts), self.applied_range(duration_ms)))

    @property
    def filter_name(self) -> str:
        """The authors' key for this filter, e.g. ``starting_at_500ms_spikes_in_[0,24]_range``."""
        return self._filter_name(self.spike_count_range)

    def _filter_name(self, spike_range) -> str:
        if spike_range is None:
            return f"starting_at_{self.start_ms}ms_all_simulations"
        lo, hi = spike_range
        return f"starting_at_{self.start_ms}ms_spikes_in_[{lo},{hi}]_range"


# ---- the protocol -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """What :func:`evaluate` measured. Fractions are in [0, 1] except the explained variances (%);
    voltages are in mV. ``*_std`` are the subset error bars (None without subsets). ``roc_fpr``,
    ``roc_tpr``, ``roc_thresholds`` hold the (thinned) pooled ROC curve for plotting."""

    config: EvaluationConfig
    n_trials: int
    n_trials_kept: int
    kept_trials: tuple[int, ...] = field(repr=False)
    n_bins: int
    n_spikes: int
    auc: float
    auc_std: float | None
    d_prime: float
    tp_at_fp: dict
    fp_at_fp: dict
    partial_auc: float
    soma_explained_variance_pct: float
    soma_explained_variance_pct_std: float | None
    soma_rmse_mV: float
    soma_mae_mV: float
    soma_calibrated_explained_variance_pct: float
    soma_calibrated_explained_variance_pct_std: float | None
    soma_calibrated_rmse_mV: float
    soma_calibrated_mae_mV: float
    calibration_scale: float
    calibration_offset_mV: float
    roc_fpr: np.ndarray = field(repr=False)
    roc_tpr: np.ndarray = field(repr=False)
    roc_thresholds: np.ndarray = field(repr=False)
    spike_count_range_applied: tuple | None = None  # the range applied to these trials (config.applied_range)

    @property
    def filter_name(self) -> str:
        return self.config._filter_name(self.spike_count_range_applied)

    def to_dict(self, include_roc: bool | int = False) -> dict:
        """A JSON-able dict (``tp_at_fp`` keyed by the FP rate as a string; inf D' becomes None).

        ``include_roc``: True adds the whole ROC curve (one point per distinct score: megabytes for a test
        set); an integer ``n`` adds at most about ``n`` of its points, log-spaced in the false-positive
        rate (where the paper's operating points lie) plus both ends."""
        d = {
            "filter": self.filter_name, "config": self.config.to_dict(),
            "n_trials": self.n_trials, "n_trials_kept": self.n_trials_kept,
            "kept_trials": list(self.kept_trials), "n_bins": self.n_bins, "n_spikes": self.n_spikes,
            "spike_count_range_applied": None if self.spike_count_range_applied is None
            else list(self.spike_count_range_applied),
            "auc": self.auc, "auc_std": self.auc_std,
            "d_prime": self.d_prime if math.isfinite(self.d_prime) else None,
            "tp_at_fp": {f"{k:g}": v for k, v in self.tp_at_fp.items()},
            "fp_at_fp": {f"{k:g}": v for k, v in self.fp_at_fp.items()},
            "partial_auc": self.partial_auc,
            "partial_auc_max_fpr": self.config.partial_auc_max_fpr,
        }
        for name in ("soma_explained_variance_pct", "soma_explained_variance_pct_std", "soma_rmse_mV",
                     "soma_mae_mV", "soma_calibrated_explained_variance_pct",
                     "soma_calibrated_explained_variance_pct_std", "soma_calibrated_rmse_mV",
                     "soma_calibrated_mae_mV", "calibration_scale", "calibration_offset_mV"):
            d[name] = getattr(self, name)
        if include_roc:
            keep = np.arange(self.roc_fpr.size)
            if not isinstance(include_roc, bool) and 2 <= int(include_roc) < keep.size:
                positive = self.roc_fpr[self.roc_fpr > 0]
                low = positive.min() if positive.size else 1e-6
                grid = np.geomspace(low, 1.0, int(include_roc) - 2)
                keep = np.unique(np.concatenate([[0, keep.size - 1], np.searchsorted(self.roc_fpr, grid)]))
                keep = keep[keep < self.roc_fpr.size]
            d["roc"] = {"fpr": self.roc_fpr[keep].tolist(), "tpr": self.roc_tpr[keep].tolist(),
                        "thresholds": [None if not math.isfinite(x) else float(x)
                                       for x in self.roc_thresholds[keep]]}
        return d

    def table(self) -> str:
        """The results as a plain text table."""

        def pm(value, std, fmt):
            return format(value, fmt) + ("" if std is None else " +- " + format(std, fmt))

        c = self.config
        applied = self.spike_count_range_applied
        rng = "all trials" if applied is None else f"trials with {applied[0]}-{applied[1]} spikes" + (
            "" if c.spike_count_per_ms is None else f", {c.spike_count_range[0]}-{c.spike_count_range[1]} "
            f"per {c.spike_count_per_ms / 1000:g} s scaled to the trials' length" + (
                ", the paper's filter" if (c.spike_count_range, c.spike_count_per_ms)
                == (PAPER_SPIKE_COUNT_RANGE, PAPER_TRIAL_MS) else ""))
        lines = [
            f"evaluation ({self.filter_name})",
            f"  {self.n_trials_kept} of {self.n_trials} trials kept ({rng}), t >= {c.start_ms} ms: "
            f"{self.n_bins:,} bins, {self.n_spikes:,} spikes",
            f"  error bars: std over {c.n_subsets} random {100 * c.subset_fraction:.0f} % subsets of trials"
            if c.n_subsets else "  no error bars (n_subsets = 0)",
            "spikes",
            f"  {'ROC AUC':<34}{pm(self.auc, self.auc_std, '.4f')}",
            f"  {'D prime':<34}{self.d_prime:.3f}",
        ]
        for x, tpr in self.tp_at_fp.items():
            lines.append(f"  {f'TP @ {100 * x:g} % FP':<34}{tpr:.4f}  (at FP {100 * self.fp_at_fp[x]:.3g} %)")
        lines.append(f"  {f'AUC @ {100 * c.partial_auc_max_fpr:g} % FP (mean TPR)':<34}{self.partial_auc:.4f}")
        lines += [
            f"soma{'':<32}{'calibrated (headline)':<24}raw",
            f"  {'explained variance (%)':<34}"
            f"{pm(self.soma_calibrated_explained_variance_pct, self.soma_calibrated_explained_variance_pct_std, '.2f'):<24}"
            f"{pm(self.soma_explained_variance_pct, self.soma_explained_variance_pct_std, '.2f')}",
            f"  {'RMSE (mV)':<34}{self.soma_calibrated_rmse_mV:<24.3f}{self.soma_rmse_mV:.3f}",
            f"  {'MAE (mV)':<34}{self.soma_calibrated_mae_mV:<24.3f}{self.soma_mae_mV:.3f}",
            "  calibrated: the prediction z-scored and mapped to the truth's mean and standard deviation, as the",
            "  paper's headline numbers are; raw: as the network predicts it",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _trial_arrays(spike_probability, spike_true, soma_pred, soma_true) -> tuple[np.ndarray, ...]:
    p = as_array(spike_probability, "spike_probability")
    y = as_binary(spike_true, "spike_true")
    vp = as_array(soma_pred, "soma_pred")
    vt = as_array(soma_true, "soma_true")
    check_same_shape(spike_probability=p, spike_true=y, soma_pred=vp, soma_true=vt)
    if p.ndim != 2:
        raise ValueError(f"arrays must have shape (n_trials, time), got {p.shape} "
                         f"(add a trial axis with x[None] for a single trial)")
    if p.size and not (np.all(np.isfinite(p)) and p.min() >= 0.0 and p.max() <= 1.0):
        bad = p[~(np.isfinite(p) & (p >= 0) & (p <= 1))]
        raise ValueError(f"spike_probability must hold probabilities in [0, 1] (no NaN), got values such as "
                         f"{bad.flat[0]!r}: pass sigmoid(logits), not the logits")
    return p, y, vp.astype(np.float64), vt.astype(np.float64)


def evaluate(spike_probability, spike_true, soma_pred, soma_true,
             config: EvaluationConfig | None = None) -> EvaluationResult:
    """Score predictions with the paper's protocol (see the module docstring).

    Parameters
    ----------
    spike_probability : (n_trials, time) predicted spike probability per ms, in [0, 1] (only its order
        matters, but a value outside [0, 1] or NaN is refused: it is a logit or a bug, not a probability).
    spike_true : (n_trials, time) 0/1 true spikes per ms.
    soma_pred, soma_true : (n_trials, time) predicted and true somatic voltage, mV (the clipped target;
        a constant shift common to both, like the training bias, changes nothing).
    config : :class:`EvaluationConfig`; default the paper's.
    """
    config = EvaluationConfig() if config is None else config
    if not isinstance(config, EvaluationConfig):
        raise TypeError(f"config must be an EvaluationConfig, got {type(config).__name__}")
    p, y, vp, vt = _trial_arrays(spike_probability, spike_true, soma_pred, soma_true)
    n_trials, n_time = p.shape
    if config.start_ms >= n_time:
        raise ValueError(f"start_ms={config.start_ms} leaves nothing of {n_time}-ms trials to evaluate")

    counts = y.sum(axis=1)  # over the whole trial, warm-up included (the authors' filter)
    spike_range = config.applied_range(n_time)
    kept = config.kept_trials(counts, n_time)
    if kept.size == 0:
        raise ValueError(f"no trial has a spike count in {spike_range} (counts range "
                         f"{int(counts.min())}-{int(counts.max())}); widen spike_count_range or pass None")
    if kept.size < 0.8 * n_trials:
        n_above = int((counts > spike_range[1]).sum())
        n_below = n_trials - kept.size - n_above
        why = ("the score describes the quieter trials only; the cell fires more than the paper's "
               "(calibrate its inputs, or pass spike_count_range=None to score every trial)") if n_above >= n_below else (
              "the score leaves out the quietest trials (fewer spikes than the range's low end)")
        warnings.warn(f"the spike-count filter ({spike_range[0]}-{spike_range[1]} spikes per {n_time}-ms trial) "
                      f"drops {n_trials - kept.size} of {n_trials} trials ({100 * (1 - kept.size / n_trials):.0f} %; "
                      f"{n_above} above the range, {n_below} below): " + why
                      + ("" if config.spike_count_per_ms is None else
                         f"; the range is {config.spike_count_range[0]}-{config.spike_count_range[1]} spikes "
                         f"per {config.spike_count_per_ms} ms scaled to the trials' length"), stacklevel=2)

    # the calibration uses every trial and ms given, as the authors did (before the filters)
    scale, offset = calibration(vp.ravel(), vt.ravel())
    vc = scale * vp + offset

    s = config.start_ms
    p_k, y_k = p[kept, s:], y[kept, s:]
    n_pos = int(y_k.sum())
    if n_pos == 0 or n_pos == y_k.size:
        raise ValueError(f"only one class present after filtering: {n_pos} spikes in {y_k.size} bins of "
                         f"{kept.size} trials (t >= {s} ms); AUC is undefined")
    # the paper reads its operating points on scikit-learn's thinned curve; so do we. Where the curve has
    # a long horizontal run the nearest point can sit at an FPR some way from the requested one (reported
    # as fp_at_fp); the AUC and the partial AUC are unaffected by the thinning
    fpr, tpr, thr = roc_curve(p_k, y_k)
    auc = auc_from_curve(fpr, tpr)
    closest = {x: closest_index(fpr, x) for x in config.fp_rates}
    tps = {x: float(tpr[i]) for x, i in closest.items()}
    fps = {x: float(fpr[i]) for x, i in closest.items()}
    p_auc = partial_auc(fpr, tpr, config.partial_auc_max_fpr)

    def soma_metrics(pred):
        a, b = pred[kept, s:], vt[kept, s:]
        return 100.0 * explained_variance(a, b), rmse(a, b), mae(a, b)

    ev_raw, rmse_raw, mae_raw = soma_metrics(vp)
    ev_cal, rmse_cal, mae_cal = soma_metrics(vc)

    auc_std = ev_raw_std = ev_cal_std = None
    if config.n_subsets > 0:
        aucs, evs_raw, evs_cal = [], [], []
        for sub in _subsets(counts, config, spike_range):
            if sub.size == 0:
                continue
            ys = y[sub, s:]
            n = int(ys.sum())
            aucs.append(roc_auc(p[sub, s:], ys) if 0 < n < ys.size else np.nan)
            truth = vt[sub, s:]
            if np.var(truth) > 0:
                evs_raw.append(100.0 * explained_variance(vp[sub, s:], truth))
                evs_cal.append(100.0 * explained_variance(vc[sub, s:], truth))
        aucs = np.asarray(aucs)
        auc_std = float(np.std(aucs[np.isfinite(aucs)])) if np.isfinite(aucs).any() else None
        ev_raw_std = float(np.std(evs_raw)) if evs_raw else None
        ev_cal_std = float(np.std(evs_cal)) if evs_cal else None

    return EvaluationResult(
        config=config, n_trials=int(n_trials), n_trials_kept=int(kept.size),
        kept_trials=tuple(int(i) for i in kept), n_bins=int(y_k.size), n_spikes=n_pos,
        auc=auc, auc_std=auc_std, d_prime=d_prime(auc), tp_at_fp=tps, fp_at_fp=fps,
        partial_auc=p_auc,
        soma_explained_variance_pct=ev_raw, soma_explained_variance_pct_std=ev_raw_std,
        soma_rmse_mV=rmse_raw, soma_mae_mV=mae_raw,
        soma_calibrated_explained_variance_pct=ev_cal, soma_calibrated_explained_variance_pct_std=ev_cal_std,
        soma_calibrated_rmse_mV=rmse_cal, soma_calibrated_mae_mV=mae_cal,
        calibration_scale=scale, calibration_offset_mV=offset,
        roc_fpr=fpr, roc_tpr=tpr, roc_thresholds=thr, spike_count_range_applied=spike_range,
    )


def _passes_filter(counts: np.ndarray, spike_range) -> np.ndarray:
    if isinstance(spike_range, EvaluationConfig):
        spike_range = spike_range.spike_count_range
    if spike_range is None:
        return np.ones(len(counts), dtype=bool)
    lo, hi = spike_range
    return (counts >= lo) & (counts <= hi)


def error_bar_subsets(spike_counts, config: EvaluationConfig | None = None,
                      duration_ms: int | None = None) -> list[np.ndarray]:
    """The trial subsets the error bars are computed on, drawn as the authors' code draws them.

    ``config.n_subsets`` times, ``int(subset_fraction * N)`` of all ``N`` trials are drawn without
    replacement (``numpy.random.default_rng(config.seed)``, so the bars are reproducible); the spike-count
    filter is then applied inside each subset. ``spike_counts`` are the true spikes per trial (whole trial);
    ``duration_ms`` the trials' length, to which the range is scaled as :func:`evaluate` does
    (:meth:`EvaluationConfig.applied_range`; None: the range as stated, i.e. for trials of
    ``spike_count_per_ms`` ms). Returns the kept trial indices of each subset, sorted.
    """
    config = EvaluationConfig() if config is None else config
    if duration_ms is None:
        spike_range = config.spike_count_range
    else:
        spike_range = config.applied_range(positive_int(duration_ms, "duration_ms"))
    return _subsets(np.asarray(spike_counts), config, spike_range)


def _subsets(counts: np.ndarray, config: EvaluationConfig, spike_range) -> list[np.ndarray]:
    rng = np.random.default_rng(config.seed)
    size = int(config.subset_fraction * counts.size)
    out = []
    for _ in range(config.n_subsets):
        sub = np.sort(rng.choice(counts.size, size=size, replace=False))
        out.append(sub[_passes_filter(counts[sub], spike_range)])
    return out


# ---- temporal precision -----------------------------------------------------------------------------
class TemporalPrecision(NamedTuple):
    """:func:`temporal_precision_histogram`'s result. ``fraction``: the paper's curve, the histogram of
    predicted spikes at each lag from a true spike divided by its sum and smoothed; ``rate_hz``: the same
    histogram as a rate of predicted spikes per true spike (Hz), smoothed the same way; ``rate_hz_raw``
    before smoothing; ``threshold`` the spike-probability threshold and ``fpr``/``tpr`` its ROC point."""

    lags_ms: np.ndarray
    fraction: np.ndarray
    rate_hz: np.ndarray
    rate_hz_raw: np.ndarray
    threshold: float
    fpr: float
    tpr: float
    n_true_spikes: int


def temporal_precision_histogram(spike_probability, spike_true, target_fpr: float = 0.002,
                                 half_window_ms: int = 50, start_ms: int = 500) -> TemporalPrecision:
    """The paper's temporal-precision plot (paper_facts 3.1).

    As the authors' code does it: the spike probability is thresholded at the pooled ROC point (bins
    ``t >= start_ms``) whose FPR is closest to ``target_fpr`` (:func:`~.metrics.closest_index`); every bin
    whose score lies strictly above the threshold is a predicted spike. For each true spike at
    ``t >= start_ms`` the predicted spikes at ``t + lag``, ``|lag| <= half_window_ms``, are counted. The
    paper's curve (``fraction``) is that histogram divided by its sum, smoothed as
    ``0.75 r[i] + 0.25 r[i - 1]`` (the first bin is kept). ``rate_hz`` is the histogram per true spike and
    per 1-ms bin, times 1000 (lags falling outside the trial are left out of that lag's average), smoothed
    the same way.

    Parameters
    ----------
    spike_probability, spike_true : (n_trials, time) arrays (filter trials beforehand if you wish).
    """
    p = as_array(spike_probability, "spike_probability")
    y = as_binary(spike_true, "spike_true")
    check_same_shape(spike_probability=p, spike_true=y)
    if p.ndim != 2:
        raise ValueError(f"arrays must have shape (n_trials, time), got {p.shape}")
    if isinstance(half_window_ms, bool) or int(half_window_ms) != half_window_ms or half_window_ms < 0:
        raise ValueError(f"half_window_ms must be an integer >= 0, got {half_window_ms!r}")
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError(f"target_fpr must lie in [0, 1], got {target_fpr!r}")
    if isinstance(start_ms, bool) or int(start_ms) != start_ms or not 0 <= start_ms < p.shape[1]:
        raise ValueError(f"start_ms must be an integer in [0, {p.shape[1]}), got {start_ms!r}")
    fpr, tpr, thr = roc_curve(p[:, start_ms:], y[:, start_ms:])
    i = closest_index(fpr, target_fpr)
    threshold = float(thr[i])
    predicted = p > threshold
    trial_idx, time_idx = np.nonzero(y[:, start_ms:])
    time_idx = time_idx + start_ms
    h = int(half_window_ms)
    lags = np.arange(-h, h + 1)
    raw, counts = np.zeros(lags.size), np.zeros(lags.size)
    n_time = p.shape[1]
    for j, lag in enumerate(lags):
        t = time_idx + lag
        ok = (t >= 0) & (t < n_time)
        if ok.any():
            hits = predicted[trial_idx[ok], t[ok]]
            counts[j] = hits.sum()
            raw[j] = 1000.0 * hits.mean()
    fraction = counts / counts.sum() if counts.sum() > 0 else counts
    return TemporalPrecision(lags, _smooth(fraction), _smooth(raw), raw, threshold, float(fpr[i]), float(tpr[i]),
                             int(time_idx.size))


def _smooth(r: np.ndarray) -> np.ndarray:
    """The authors' smoothing of the temporal-precision histogram: ``0.75 r[i] + 0.25 r[i - 1]``."""
    out = np.asarray(r, dtype=np.float64).copy()
    out[1:] = 0.75 * out[1:] + 0.25 * out[:-1]
    return out
