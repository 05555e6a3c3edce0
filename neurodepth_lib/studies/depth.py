"""Reading sweeps: best-so-far curves, how deep a condition needs to be, and :func:`how_deep` end to end.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import _parallel
from .._checks import non_negative_float, non_negative_int, positive_int
from .._io import atomic_write_json, check_output_path
from ..cells.calibration import DEFAULT_TARGET_HZ, calibrate_inputs
from ..cells.registry import resolve_cell
from ..data.generation import generate_dataset, plan_generation
from ..data.store import open_dataset
from ..scoring.protocol import EvaluationConfig
from .sweeps import SweepGrid, SweepResult, check_budget, run_sweep

__all__ = ["best_so_far", "DepthReport", "depth_report", "auc_standard_error", "HowDeepReport", "how_deep"]


# ----------------------------------------------------------------------------------------------------
# Reading a sweep
# ----------------------------------------------------------------------------------------------------

_AXES = {"depth": "depth", "width": "width", "T": "receptive_field_ms", "receptive_field_ms": "receptive_field_ms"}


def _mean_sem(values) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), sem, int(v.size)


def best_so_far(rows: list[dict], axis: str = "depth", metric: str = "auc", condition=None,
                min_improvement: float = 0.0) -> dict:
    """The paper's "best so far" curve of ``metric`` against ``axis`` (``depth``, ``width`` or ``T``).

    Per condition and seed: the best ``metric`` over every architecture whose ``axis`` value is at most x
    (the cumulative maximum); then the mean and standard error over seeds at each x. With
    ``min_improvement`` > 0 (the paper: 0.01 for depth, 0.05 width, 0.03 T, as fractions of the metric's range
    over the sweep) a point is kept only when the mean improves on the last kept point by more than that.

    Returns ``{condition: {"x": [...], "mean": [...], "sem": [...], "n": [...]}}``.
    """
    key = _AXES.get(axis)
    if key is None:
        raise ValueError(f"axis must be one of {sorted(_AXES)}, got {axis!r}")
    conditions = sorted({r["condition"] for r in rows}) if condition is None else [condition]
    out = {}
    for c in conditions:
        sub = [r for r in rows if r["condition"] == c and r.get(metric) is not None]
        if not sub:
            continue
        xs = sorted({r[key] for r in sub})
        per_seed = {}
        for s in sorted({r["seed"] for r in sub}):
            best, curve = -np.inf, []
            for x in xs:
                vals = [r[metric] for r in sub if r["seed"] == s and r[key] == x]
                if vals:
                    best = max(best, max(vals))
                curve.append(best if np.isfinite(best) else np.nan)
            per_seed[s] = curve
        arr = np.array(list(per_seed.values()), dtype=float)
        stats = [_mean_sem(arr[:, i]) for i in range(len(xs))]
        curve = {"x": xs, "mean": [m for m, _, _ in stats], "sem": [e for _, e, _ in stats],
                 "n": [n for _, _, n in stats]}
        if min_improvement > 0:
            lo = np.nanmin(arr)
            hi = np.nanmax(arr)
            step = min_improvement * (hi - lo)
            keep, last = [], -np.inf
            for i, m in enumerate(curve["mean"]):
                if i == 0 or m > last + step:
                    keep.append(i)
                    last = m
            curve = {k: [v[i] for i in keep] for k, v in curve.items()}
        out[c] = curve
    return out


def auc_standard_error(auc: float, n_spikes, n_bins=None) -> float:
    """The sampling error of an AUC measured on ``n_spikes`` positive bins among ``n_bins`` (Hanley & McNeil
    1982); with ``n_bins`` unknown, the limit of many negatives (the 1-ms bins without a spike far outnumber
    the spikes, so the spikes set the error: 35 test spikes at AUC 0.85 give about 0.04)."""
    if auc is None or not n_spikes or not np.isfinite(auc):
        return float("nan")
    a, n1 = float(auc), float(n_spikes)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    if n_bins is None or n_bins <= n_spikes:
        return float(math.sqrt(max(q2 - a * a, 0.0) / n1))
    n2 = float(n_bins - n_spikes)
    return float(math.sqrt(max(a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a), 0.0) / (n1 * n2)))


@dataclass
class DepthReport:
    """Per depth: mean over seeds of the best AUC at that depth (over widths and T), with two uncertainties,
    the standard error over seeds (``sem``, NaN with one seed) and the AUC's sampling error from the test
    set's spikes (``se_test``, :func:`auc_standard_error`), and both together (``se_total``).

    ``at_least`` is true when the depth needed is the deepest depth tried: deeper networks were not tried,
    so the answer is "at least" that depth. ``warnings`` say what makes the answer weak (undertrained
    networks, few seeds or test spikes, trials dropped by the spike-count filter).
    """

    condition: object
    depths: list
    mean: list
    sem: list
    n_seeds: list
    tolerance: float
    best_depth: int
    depth_needed: int
    gap_over_depth1_in_se: float    # (best - depth 1) / combined standard error (seeds and test spikes)
    se_test: list = field(default_factory=list)
    se_total: list = field(default_factory=list)
    test_spikes: int | None = None
    at_least: bool = False
    warnings: list = field(default_factory=list)
    rows: list = field(repr=False, default_factory=list)

    @property
    def answer(self) -> str:
        """``"3"`` or ``"at least 4"``."""
        return f"at least {self.depth_needed}" if self.at_least else str(self.depth_needed)

    def table(self) -> str:
        lines = [f"condition {self.condition}: best AUC per depth (mean over seeds; s.e. from seeds, from the "
                 f"{self.test_spikes if self.test_spikes is not None else '?'} test spikes, and both)",
                 f"{'depth':>5} {'AUC':>8} {'s.e.seeds':>9} {'s.e.test':>8} {'s.e.':>8} {'seeds':>5} "
                 f"{'best - this':>12}"]
        best = self.mean[self.depths.index(self.best_depth)]
        se_test = self.se_test or [float("nan")] * len(self.depths)
        se_total = self.se_total or self.sem
        for d, m, e, t, a, n in zip(self.depths, self.mean, self.sem, se_test, se_total, self.n_seeds):
            mark = " <- needed" if d == self.depth_needed else (" <- best" if d == self.best_depth else "")
            lines.append(f"{d:>5} {m:>8.4f} {e:>9.4f} {t:>8.4f} {a:>8.4f} {n:>5} {best - m:>12.4f}{mark}")
        lines.append(f"smallest depth within {self.tolerance:g} AUC of the best: {self.answer} "
                     f"(best depth {self.best_depth}; best - depth {self.depths[0]} = {self.gap_over_depth1_in_se:.1f} "
                     "s.e.)")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("rows")
        return d


def _tolerance(tolerance) -> float:
    try:
        return non_negative_float(tolerance, "tolerance")
    except ValueError:
        raise ValueError(f"tolerance must be a finite number >= 0 (an AUC difference), got {tolerance!r}") from None


def _seq(values, name: str) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a sequence of whole numbers, got {values!r}")
    return tuple(values)


def depth_report(rows: list[dict], condition, tolerance: float = 0.005, metric: str = "auc") -> DepthReport:
    """How deep: the smallest depth whose mean ``metric`` (over seeds; each seed's best over widths and T at
    that depth) is within ``tolerance`` of the best depth's mean.

    Also reports how many standard errors separate the best depth from depth 1 (the done-when test of
    chapter 06: more than 3 for NMDA, within noise for AMPA).
    """
    tolerance = _tolerance(tolerance)
    sub = [r for r in rows if r["condition"] == condition and r.get(metric) is not None]
    if not sub:
        raise ValueError(f"no results for condition {condition!r}")
    depths = sorted({r["depth"] for r in sub})
    means, sems, ns, per_depth = [], [], [], {}
    for d in depths:
        per_seed = {}
        for r in sub:
            if r["depth"] == d:
                per_seed[r["seed"]] = max(per_seed.get(r["seed"], -np.inf), r[metric])
        m, e, n = _mean_sem(per_seed.values())
        means.append(m)
        sems.append(e)
        ns.append(n)
        per_depth[d] = (m, e)
    best_i = int(np.nanargmax(means))
    best = means[best_i]
    needed = next(d for d, m in zip(depths, means) if best - m <= tolerance)
    spikes = [r.get("eval_spikes") for r in sub if r.get("eval_spikes")]
    bins = [r.get("eval_bins") for r in sub if r.get("eval_bins")]
    n_spikes = int(np.median(spikes)) if spikes else None
    n_bins = int(np.median(bins)) if bins else None
    se_test = [auc_standard_error(m, n_spikes, n_bins) if metric == "auc" else float("nan") for m in means]
    se_total = [math.sqrt(sum(x * x for x in (e, t) if np.isfinite(x))) if (np.isfinite(e) or np.isfinite(t))
                else float("nan") for e, t in zip(sems, se_test)]
    m1 = means[0]
    se = math.sqrt(sum(x * x for x in (se_total[0], se_total[best_i]) if np.isfinite(x)))
    gap = (best - m1) / se if se > 0 else (0.0 if best == m1 else float("inf"))
    at_least = needed == depths[-1]
    warnings = []
    if at_least:
        warnings.append(f"the depth needed is the deepest depth tried ({needed}): deeper networks may do better still; "
                        f"the answer is at least {needed} (add deeper depths to know)")
    falling = [r for r in sub if r.get("valid_still_falling")]
    if falling:
        warnings.append(f"{len(falling)} of {len(sub)} runs stopped while their validation loss was still falling "
                        f"(depths {sorted({r['depth'] for r in falling})}): undertrained; give them more steps")
    worse = [d for d, m, t in zip(depths[1:], means[1:], se_total[1:])
             if np.isfinite(m) and m1 - m > max(tolerance, math.sqrt(se_total[0] ** 2 + t ** 2)
                                                if np.isfinite(t) and np.isfinite(se_total[0]) else tolerance)]
    if worse:
        warnings.append(f"depth(s) {worse} score below depth {depths[0]}, which they could imitate: undertrained for "
                        "this budget (more steps or data), so the comparison says little")
    if metric == "auc" and np.isfinite(best) and best < 0.9:
        warnings.append(f"the best AUC is {best:.3f}: far below what a network that has learned the cell reaches "
                        "(the paper's shallow baselines exceed 0.9 on the Hay cell); the networks look undertrained "
                        "or the training set too small")
    if min(ns) < 3:
        warnings.append(f"only {min(ns)} seed(s) per depth: the s.e. over seeds is itself very uncertain")
    if n_spikes is not None and n_spikes < 200:
        warnings.append(f"only {n_spikes} test spikes: the AUC's sampling error (+-{se_test[best_i]:.3f}) is larger "
                        "than most differences between depths; use more test trials")
    dropped = [(r.get("eval_trials") or 0) - (r.get("eval_trials_kept") or 0) for r in sub if r.get("eval_trials")]
    if dropped and max(dropped) > 0.2 * max(r["eval_trials"] for r in sub if r.get("eval_trials")):
        warnings.append(f"the spike-count filter ({sub[0].get('eval_filter')}) dropped up to {max(dropped)} of "
                        f"{max(r['eval_trials'] for r in sub if r.get('eval_trials'))} test trials: the cell fires "
                        "more than the paper's; calibrate its inputs")
    return DepthReport(condition=condition, depths=depths, mean=means, sem=sems, n_seeds=ns, tolerance=float(tolerance),
                       best_depth=depths[best_i], depth_needed=needed, gap_over_depth1_in_se=float(gap),
                       se_test=se_test, se_total=se_total, test_spikes=n_spikes, at_least=at_least,
                       warnings=warnings, rows=sub)


# ----------------------------------------------------------------------------------------------------
# How deep is my neuron?
# ----------------------------------------------------------------------------------------------------

@dataclass
class HowDeepReport:
    """The answer of :func:`how_deep`: the depth needed, the per-depth evidence and where things are."""

    cell: str
    condition: object
    depth: DepthReport
    sweep: SweepResult
    train_dir: Path
    test_dir: Path
    calibration: dict | None = None
    simulation: dict | None = None

    @property
    def depth_needed(self) -> int:
        return self.depth.depth_needed

    @property
    def answer(self) -> str:
        """``"3"``, or ``"at least 4"`` when the deepest depth tried was needed."""
        return self.depth.answer

    @property
    def warnings(self) -> list:
        return self.depth.warnings

    def table(self) -> str:
        cal = ""
        if self.calibration:
            c = self.calibration
            cal = (f"inputs calibrated: {c['param']} = {c['factor']:.4g} gives {c['rate_hz']:.2f} Hz (target "
                   f"{c['target_hz'][0]:g}-{c['target_hz'][1]:g} Hz{'' if c['in_range'] else ', NOT reached'})\n")
        return (f"How deep is {self.cell}" + (f" ({self.condition})" if self.condition else "") + "? "
                + f"{self.answer}\n" + cal + self.depth.table() + f"\nresults: {self.sweep.csv_path}")

    def __str__(self) -> str:
        return self.table()


def how_deep(cell="teaching", out_dir="how_deep", *, condition=None, n_train_trials: int = 64,
             n_test_trials: int = 16, duration_ms: int = 6000, depths=(1, 2, 3, 4), width: int = 16,
             receptive_field_ms: int = 41, seeds=(0, 1, 2), steps: int = 600, scale: str = "lab",
             tolerance: float = 0.005, cell_params: dict | None = None, simulation: dict | None = None,
             calibrate: bool | None = None, target_hz=DEFAULT_TARGET_HZ, data_seed: int = 0,
             workers: int | None = None, client=None, progress: bool = True) -> HowDeepReport:
    """Generate data for ``cell``, sweep depth at a fixed width, T and training budget, and report the
    smallest depth whose AUC is within ``tolerance`` of the best (see :func:`depth_report`).

    ``cell``: a registered name, a ``CellModel``, the path of a published model's TOML spec or
    ``"package.module:factory"`` (:func:`neurodepth_lib.cells.resolve_cell`). ``condition``: one of the cell's
    own condition names (default its first). ``simulation``: integration settings (``dt_ms``, ``v_init_mV``,
    ``secondorder``, ``use_cvode``; default the cell's). ``calibrate``: first fit the input rate factor so that
    the cell fires in ``target_hz`` (:func:`neurodepth_lib.cells.calibration.calibrate_inputs`; default: only
    for a cell whose rates are uncalibrated, e.g. a published model without ``rate_factor``); the factor is
    recorded in ``<out_dir>/calibration.json`` and reused on a rerun. Test trials are scored with the paper's
    spike-count filter scaled to their length (0-24 spikes per 6 s). Datasets go to
    ``<out_dir>/data/{train,test}``, the sweep to ``<out_dir>/sweep``. Everything resumes.
    """
    model = resolve_cell(cell)
    if condition is None:
        condition = model.conditions[0]
    if condition not in model.conditions:
        allowed = "no condition" if model.conditions == (None,) else ", ".join(map(str, model.conditions))
        raise ValueError(f"unknown condition {condition!r} for cell {model.name!r}; its conditions: {allowed}")
    # every check before the first trial is simulated: the grid, the tolerance, the sweep's budget, both plans
    grid = SweepGrid(depths=_seq(depths, "depths"), widths=(positive_int(width, "width"),),
                     receptive_fields_ms=(positive_int(receptive_field_ms, "receptive_field_ms"),),
                     seeds=_seq(seeds, "seeds"))
    tolerance = _tolerance(tolerance)
    scale = check_budget(steps=steps, scale=scale, workers=workers)
    non_negative_int(data_seed, "data_seed")
    if simulation is not None and not isinstance(simulation, dict):
        raise ValueError(f"simulation must be a dict of integration settings, got {simulation!r}")
    if calibrate is None:
        calibrate = not model.calibrated
    if calibrate and model.rate_param is None:
        raise ValueError(f"calibrate: cell {model.name!r} has no input-rate parameter to calibrate")
    cell_params = dict(cell_params or {})
    out_dir = check_output_path(out_dir, "the output directory", directory=True)
    _parallel.check_spawn_safe(workers if client is None else 0)
    train_dir, test_dir = out_dir / "data" / "train", out_dir / "data" / "test"
    sets = ((train_dir, n_train_trials, 2 * data_seed + 1), (test_dir, n_test_trials, 2 * data_seed + 2))
    for path, n, seed in sets:
        check_output_path(path, "the dataset directory", directory=True)
        plan_generation(cell=model, condition=condition, n_trials=n, duration_ms=duration_ms, seed=seed,
                        cell_params=cell_params, simulation=simulation)
    calibration = None
    if calibrate:
        calibration = _calibration(model, condition, out_dir, cell_params, simulation, target_hz, progress)
        cell_params = {**cell_params, calibration["param"]: calibration["factor"]}
    for path, n, seed in sets:
        generate_dataset(path, cell=model, condition=condition, n_trials=n, duration_ms=duration_ms, seed=seed,
                         cell_params=cell_params, simulation=simulation, workers=workers, client=client,
                         progress=progress)
    label = condition if condition is not None else model.name
    evaluation = EvaluationConfig(spike_count_per_ms=6000)
    _check_scoreable(test_dir, evaluation)  # before any training: an unscoreable test set is known now
    sweep = run_sweep(out_dir / "sweep", {label: (train_dir, test_dir)}, grid, steps=steps, scale=scale,
                      workers=workers, client=client, progress=progress, evaluation=evaluation)
    return HowDeepReport(cell=model.name, condition=condition, depth=depth_report(sweep.rows, label, tolerance),
                         sweep=sweep, train_dir=train_dir, test_dir=test_dir, calibration=calibration,
                         simulation=model.simulation_defaults(dict(simulation or {})))


def _check_scoreable(test_dir: Path, evaluation: EvaluationConfig) -> None:
    """Raise ``ValueError`` when the test set cannot give an AUC under ``evaluation`` (no output spike after
    its warm-up in the trials its spike-count filter keeps), saying what to change."""
    data = open_dataset(test_dir)
    spike_range = evaluation.applied_range(int(data.duration_ms))
    counts = data.spike_counts()
    kept = evaluation.kept_trials(counts, int(data.duration_ms))
    scored = sum(int(np.count_nonzero(data.trial(int(i)).spike_times_ms >= evaluation.start_ms)) for i in kept)
    if scored == 0:
        raise ValueError(
            f"the test set cannot be scored: {len(kept)} of its {len(counts)} trials pass the spike-count filter "
            f"({spike_range} spikes per {data.duration_ms:g}-ms trial) and they hold no output spike after the "
            f"first {evaluation.start_ms} ms, so the AUC is undefined; use more or longer test trials "
            f"(n_test_trials, duration_ms) or inputs that make the cell fire (calibrate=True, a larger rate factor)")


def _calibration(model, condition, out_dir: Path, cell_params: dict, simulation, target_hz, progress) -> dict:
    """The calibration recorded in ``out_dir`` for this cell, condition and target, else a new one (recorded)."""
    path = out_dir / "calibration.json"
    key = {"cell": model.name, "condition": condition, "cell_params": model.describe(condition, cell_params),
           "simulation": model.simulation_defaults(dict(simulation or {})), "target_hz": [float(x) for x in target_hz]}
    key = json.loads(json.dumps(key))  # as it reads back from the file
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("key") == key:
            return old["calibration"]
    cal = calibrate_inputs(model, condition, target_hz=target_hz, cell_params=cell_params, simulation=simulation,
                           log=print if progress else None)
    if progress:
        print(cal.summary())
    out_dir.mkdir(parents=True, exist_ok=True)
    record = cal.to_dict()
    record["target_hz"] = list(record["target_hz"])
    atomic_write_json(path, {"key": key, "calibration": record})
    return record
