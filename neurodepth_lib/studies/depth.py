"""Reading sweeps: best-so-far curves, how deep a condition needs to be, and :func:`how_deep` end to end.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._checks import non_negative_float, non_negative_int, positive_int
from .._io import check_output_path
from ..cells.registry import get_cell
from ..data.generation import generate_dataset, plan_generation
from .sweeps import SweepGrid, SweepResult, check_budget, run_sweep

__all__ = ["best_so_far", "DepthReport", "depth_report", "HowDeepReport", "how_deep"]


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


@dataclass
class DepthReport:
    """Per depth: mean and standard error over seeds of the best AUC at that depth (over widths and T)."""

    condition: object
    depths: list
    mean: list
    sem: list
    n_seeds: list
    tolerance: float
    best_depth: int
    depth_needed: int
    gap_over_depth1_in_se: float    # (best - depth 1) / combined standard error
    rows: list = field(repr=False, default_factory=list)

    def table(self) -> str:
        lines = [f"condition {self.condition}: best AUC per depth (mean +- s.e. over seeds)",
                 f"{'depth':>5} {'AUC':>8} {'s.e.':>8} {'seeds':>5} {'best - this':>12}"]
        best = self.mean[self.depths.index(self.best_depth)]
        for d, m, e, n in zip(self.depths, self.mean, self.sem, self.n_seeds):
            mark = " <- needed" if d == self.depth_needed else (" <- best" if d == self.best_depth else "")
            lines.append(f"{d:>5} {m:>8.4f} {e:>8.4f} {n:>5} {best - m:>12.4f}{mark}")
        lines.append(f"smallest depth within {self.tolerance:g} AUC of the best: {self.depth_needed} "
                     f"(best depth {self.best_depth}; best - depth 1 = {self.gap_over_depth1_in_se:.1f} s.e.)")
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
    m1, e1 = per_depth[depths[0]]
    eb = sems[best_i]
    se = math.sqrt((e1 if np.isfinite(e1) else 0) ** 2 + (eb if np.isfinite(eb) else 0) ** 2)
    gap = (best - m1) / se if se > 0 else (0.0 if best == m1 else float("inf"))
    return DepthReport(condition=condition, depths=depths, mean=means, sem=sems, n_seeds=ns, tolerance=float(tolerance),
                       best_depth=depths[best_i], depth_needed=needed, gap_over_depth1_in_se=float(gap), rows=sub)


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

    @property
    def depth_needed(self) -> int:
        return self.depth.depth_needed

    def table(self) -> str:
        return (f"How deep is {self.cell}" + (f" ({self.condition})" if self.condition else "") + "?\n"
                + self.depth.table() + f"\nresults: {self.sweep.csv_path}")

    def __str__(self) -> str:
        return self.table()


def how_deep(cell="teaching", out_dir="how_deep", *, condition=None, n_train_trials: int = 64,
             n_test_trials: int = 16, duration_ms: int = 6000, depths=(1, 2, 3, 4), width: int = 16,
             receptive_field_ms: int = 41, seeds=(0, 1, 2), steps: int = 600, scale: str = "lab",
             tolerance: float = 0.005, cell_params: dict | None = None, data_seed: int = 0,
             workers: int | None = None, client=None, progress: bool = True) -> HowDeepReport:
    """Generate data for ``cell``, sweep depth at a fixed width, T and training budget, and report the
    smallest depth whose AUC is within ``tolerance`` of the best (see :func:`depth_report`).

    ``cell`` is any registered cell name (:data:`neurodepth_lib.cells.CELLS`) or a ``CellModel``;
    datasets go to ``<out_dir>/data/{train,test}``, the sweep to ``<out_dir>/sweep``. Everything resumes.
    """
    model = get_cell(cell)
    if condition is None:
        condition = model.conditions[0]
    # every check before the first trial is simulated: the grid, the tolerance, the sweep's budget, both plans
    grid = SweepGrid(depths=_seq(depths, "depths"), widths=(positive_int(width, "width"),),
                     receptive_fields_ms=(positive_int(receptive_field_ms, "receptive_field_ms"),),
                     seeds=_seq(seeds, "seeds"))
    tolerance = _tolerance(tolerance)
    scale = check_budget(steps=steps, scale=scale, workers=workers)
    non_negative_int(data_seed, "data_seed")
    out_dir = check_output_path(out_dir, "the output directory", directory=True)
    train_dir, test_dir = out_dir / "data" / "train", out_dir / "data" / "test"
    sets = ((train_dir, n_train_trials, 2 * data_seed + 1), (test_dir, n_test_trials, 2 * data_seed + 2))
    for path, n, seed in sets:
        check_output_path(path, "the dataset directory", directory=True)
        plan_generation(cell=model, condition=condition, n_trials=n, duration_ms=duration_ms, seed=seed,
                        cell_params=cell_params)
    for path, n, seed in sets:
        generate_dataset(path, cell=model, condition=condition, n_trials=n, duration_ms=duration_ms, seed=seed,
                         cell_params=cell_params, workers=workers, client=client, progress=progress)
    label = condition if condition is not None else model.name
    sweep = run_sweep(out_dir / "sweep", {label: (train_dir, test_dir)}, grid, steps=steps, scale=scale,
                      workers=workers, client=client, progress=progress)
    return HowDeepReport(cell=model.name, condition=condition, depth=depth_report(sweep.rows, label, tolerance),
                         sweep=sweep, train_dir=train_dir, test_dir=test_dir)
