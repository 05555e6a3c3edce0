"""Spike and voltage metrics of the paper's protocol: ROC, AUC, TP at fixed FP, partial AUC, explained variance.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

__all__ = ["as_array", "as_binary", "check_same_shape", "closest_index", "calibration", "roc_curve",
           "auc_from_curve", "roc_auc", "tp_at_fp", "partial_auc", "d_prime", "explained_variance", "rmse",
           "mae", "zscore_calibrate"]


# ---- checks -----------------------------------------------------------------------------------------
def as_array(a, name: str) -> np.ndarray:
    """``a`` as a numeric numpy array with no NaN or inf (``TypeError`` / ``ValueError`` naming ``name``)."""
    try:
        arr = np.asarray(a)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like: {err}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype != np.bool_ and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf ({int((~np.isfinite(arr)).sum())} values)")
    return arr


def as_binary(a, name: str) -> np.ndarray:
    """``a`` as an int8 array of 0 and 1 (one spike flag per ms), or a ``ValueError`` naming ``name``."""
    arr = as_array(a, name)
    if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise ValueError(f"{name} must hold only 0 and 1 (spike or no spike per ms), found {bad.tolist()}")
    return arr.astype(np.int8, copy=False)


def check_same_shape(**arrays) -> None:
    """``ValueError`` listing the shapes unless all keyword arrays have the same shape."""
    shapes = {k: v.shape for k, v in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shapes differ: {', '.join(f'{k} {s}' for k, s in shapes.items())}")


# ---- ROC --------------------------------------------------------------------------------------------
def roc_curve(scores, labels, drop_intermediate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled ROC curve: ``(fpr, tpr, thresholds)``; a bin is called positive when ``score >= threshold``.

    Bins with equal scores move together (one point per distinct score), so ties give diagonal
    segments. The first point is ``(0, 0)`` at threshold ``+inf``. ``drop_intermediate`` removes points
    whose step from the previous point equals the step to the next one (they lie on a straight run and
    change neither the area nor the interpolation); scikit-learn's default, used by the authors.
    Raises ``ValueError`` when only one class is present.
    """
    s = as_array(scores, "scores").ravel()
    y = as_binary(labels, "labels").ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.size} values) and labels ({y.size} values) differ in size")
    if s.size == 0:
        raise ValueError("no bins to score")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise ValueError(f"only one class present ({'no' if n_pos == 0 else 'only'} spikes in "
                         f"{y.size} bins): the ROC curve is undefined")
    order = np.argsort(s, kind="stable")[::-1]  # descending score
    s_sorted = s[order].astype(np.float64, copy=False)
    cum_pos = np.cumsum(y[order], dtype=np.int64)
    # last index of each group of equal scores
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = cum_pos[ends]
    fps = ends + 1 - tps
    thresholds = s_sorted[ends]
    if drop_intermediate and tps.size > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def auc_from_curve(fpr, tpr) -> float:
    """Area under a curve by the trapezoid rule (``fpr`` non-decreasing)."""
    fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def roc_auc(scores, labels) -> float:
    """Area under the pooled ROC curve (ties count one half, as in the Mann-Whitney statistic)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return auc_from_curve(fpr, tpr)


def closest_index(fpr, x: float) -> int:
    """Index of the ROC point the authors read "TP @ x FP" at: the first point whose FPR is closest to
    ``x``, except that when it is the curve's first point (FP 0, TP 0) they take the next one."""
    i = int(np.argmin(np.abs(np.asarray(fpr) - float(x))))
    return 1 if i == 0 and np.size(fpr) > 1 else i


def tp_at_fp(fpr, tpr, x: float) -> float:
    """The TPR at the ROC point whose FPR is closest to ``x`` (:func:`closest_index`), as the paper reads
    "TP @ x FP"; no interpolation. On a thinned curve (:func:`roc_curve`'s default, the paper's) the
    nearest point can be the bottom of a vertical step some way left of ``x``, which reads a slightly
    lower TPR than the full curve would: kept for fidelity to the paper's numbers."""
    return float(np.asarray(tpr)[closest_index(fpr, x)])


def partial_auc(fpr, tpr, max_fpr: float = 0.01, n_grid: int = 20000) -> float:
    """The paper's "AUC @ 1 % FP", computed as the authors' code does: the ROC curve is interpolated on a
    grid of ``n_grid`` evenly spaced FPR values over the whole of ``[0, 1]`` (steps of ``1 / (n_grid - 1)``)
    and the TPR is averaged over the first ``round(max_fpr * n_grid)`` grid points (200 of 20,000 for 1 %,
    which end at FPR 199/19,999, just short of 0.01). 1 for a perfect predictor; for chance
    ``(k - 1) / (2 (n_grid - 1))`` with ``k`` points, 0.004975 at 1 %. Between two curve points the curve is
    the straight segment joining them; where it is vertical (several TPRs at one FPR) the highest TPR is
    used at exactly that FPR."""
    fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    if not 0 < max_fpr <= 1:
        raise ValueError(f"max_fpr must lie in (0, 1], got {max_fpr!r}")
    if fpr.shape != tpr.shape or fpr.ndim != 1 or fpr.size == 0 or np.any(np.diff(fpr) < 0):
        raise ValueError("fpr and tpr must be 1-D curves of equal length with fpr non-decreasing")
    n_points = int(round(max_fpr * int(n_grid)))
    if n_points < 1:
        raise ValueError(f"max_fpr={max_fpr} covers no point of a {n_grid}-point grid")
    grid = np.linspace(0.0, 1.0, int(n_grid))[:n_points]
    # the last curve point at or left of each grid value (the top of a vertical run), and the next one,
    # which then lies strictly to the right: no division by zero
    j = np.searchsorted(fpr, grid, side="right") - 1
    j = np.clip(j, 0, fpr.size - 1)
    k = np.minimum(j + 1, fpr.size - 1)
    dx = fpr[k] - fpr[j]
    frac = np.where(dx > 0, (grid - fpr[j]) / np.where(dx > 0, dx, 1.0), 0.0)
    return float(np.mean(tpr[j] + frac * (tpr[k] - tpr[j])))


def d_prime(auc: float) -> float:
    """Discriminability ``D' = sqrt(2) * Phi^-1(AUC)`` (equal-variance Gaussian model); inf for AUC 1."""
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"auc must lie in [0, 1], got {auc!r}")
    return float(math.sqrt(2.0) * norm.ppf(auc))


# ---- soma metrics -----------------------------------------------------------------------------------
def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    p = as_array(pred, "prediction").astype(np.float64).ravel()
    t = as_array(true, "truth").astype(np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"prediction ({p.size} values) and truth ({t.size} values) differ in size")
    if p.size == 0:
        raise ValueError("no samples to score")
    return p, t


def explained_variance(pred, true) -> float:
    """``1 - Var(true - pred) / Var(true)`` (a fraction; 1 = perfect, 0 = as good as a constant). A
    constant offset of the prediction is not penalised (it is by :func:`rmse`)."""
    p, t = _pair(pred, true)
    var_t = np.var(t)
    if var_t == 0:
        raise ValueError("the truth is constant: explained variance is undefined")
    return float(1.0 - np.var(t - p) / var_t)


def rmse(pred, true) -> float:
    """Root mean squared error, in the units of the inputs (mV for voltages)."""
    p, t = _pair(pred, true)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(pred, true) -> float:
    """Mean absolute error, in the units of the inputs."""
    p, t = _pair(pred, true)
    return float(np.mean(np.abs(p - t)))


def calibration(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """``(scale, offset)`` with ``scale * pred + offset`` having the truth's mean and std."""
    sd_p = float(np.std(pred))
    scale = float(np.std(true)) / sd_p if sd_p > 0 else 0.0
    return scale, float(np.mean(true)) - scale * float(np.mean(pred))


def zscore_calibrate(pred, true) -> np.ndarray:
    """The paper's post-hoc calibration: z-score the prediction and rescale it to the truth's mean and
    standard deviation (over all samples given). A constant prediction becomes the truth's mean.
    Returns an array shaped like ``pred``."""
    p, t = _pair(pred, true)
    scale, offset = calibration(p, t)
    return (scale * p + offset).reshape(np.shape(pred))


