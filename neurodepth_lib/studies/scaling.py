"""Does the depth a cell needs grow with the data? A data-scaling study of depth sweeps (issue 16).

For every training-set size of a :class:`ScalingPlan` (the first ``n`` trials of each condition's training
set, so the sizes are nested), one architecture sweep (:func:`neurodepth_lib.studies.run_sweep`) trains every
depth and width over the seeds, with a number of steps that grows with the data
(:meth:`ScalingPlan.steps_for`), keeps each run's weights with the best loss on the condition's validation
set (early stopping), and scores it on the fixed test set with the paper's protocol. Each size's sweep lives
in ``<out>/n<size>/`` and is resumable like any sweep; ``<out>/scaling.csv`` gathers every run with its size,
simulated hours of training data, settings, wall time and metrics.

:func:`depth_by_size` then answers, per condition and size, the study's question: the smallest depth within
a tolerance of the best (0.005 AUC), with an interval from the seeds' standard errors, and how many standard
errors separate the best deeper network from depth 1.

>>> from neurodepth_lib import studies
>>> plan = studies.ScalingPlan(sizes=(100, 200, 400, 800, 1600))                      # doctest: +SKIP
>>> rows = studies.run_scaling_study("runs/scaling", {"NMDA": (train, test, valid)}, plan)  # doctest: +SKIP
>>> print(studies.scaling_table(studies.depth_by_size(rows)))                       # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._checks import non_negative_float, positive_float, positive_int
from .._io import atomic_write_json, atomic_write_text, check_output_path
from ..data.store import open_dataset
from .depth import depth_report
from .sweeps import CSV_COLUMNS, CSV_NAME, SweepGrid, read_csv, run_sweep

__all__ = ["ScalingPlan", "run_scaling_study", "unfinished_runs", "write_scaling_csv", "read_scaling_csv",
           "depth_by_size", "scaling_table", "SCALING_CSV", "SCALING_COLUMNS"]

SCALING_CSV = "scaling.csv"
SCALING_COLUMNS = ("n_train_trials", "train_hours", *CSV_COLUMNS)


@dataclass(frozen=True)
class ScalingPlan:
    """What the study sweeps.

    sizes : training-set sizes in trials (nested: the first ``n`` trials of each training set).
    depths, widths, seeds : the grid of every sweep; ``receptive_field_ms`` the same for all.
    steps_per_trial, min_steps, max_steps : a sweep on ``n`` trials trains every run for
        ``clip(round(steps_per_trial * n), min_steps, max_steps)`` steps (the budget grows with the data; the
        best checkpoint on the validation set is kept, so a budget too long for small data does no harm).
    """

    sizes: tuple = (100, 200, 400, 800, 1600)
    depths: tuple = (1, 2, 3, 4, 7)
    widths: tuple = (16,)
    seeds: tuple = (0, 1)
    receptive_field_ms: int = 77
    steps_per_trial: float = 5.0
    min_steps: int = 1000
    max_steps: int = 8000

    def __post_init__(self):
        for name in ("sizes", "depths", "widths", "seeds"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not len(tuple(values)):
                raise ValueError(f"{name} must be a non-empty sequence of whole numbers, got {values!r}")
            check = positive_int if name != "seeds" else (lambda v, n: int(v) if int(v) == v and v >= 0
                                                          else _bad(n, v))
            object.__setattr__(self, name, tuple(check(v, name) for v in values))
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ValueError(f"sizes must increase, got {self.sizes}")
        positive_int(self.receptive_field_ms, "receptive_field_ms")
        positive_float(self.steps_per_trial, "steps_per_trial")
        lo, hi = positive_int(self.min_steps, "min_steps"), positive_int(self.max_steps, "max_steps")
        if lo > hi:
            raise ValueError(f"min_steps ({lo}) must not exceed max_steps ({hi})")

    def steps_for(self, n_trials: int) -> int:
        """Training steps of every run on ``n_trials`` trials."""
        return int(np.clip(round(self.steps_per_trial * n_trials), self.min_steps, self.max_steps))

    def grid(self) -> SweepGrid:
        return SweepGrid(depths=self.depths, widths=self.widths, receptive_fields_ms=(self.receptive_field_ms,),
                         seeds=self.seeds)


def _bad(name, value):
    raise ValueError(f"{name} must hold whole numbers >= 0, got {value!r}")


def run_scaling_study(out_dir, data: dict, plan: ScalingPlan | None = None, *, scale: str = "lab",
                      allow_incomplete: bool = False, workers: int | None = None,
                      threads_per_run: int | None = None, client=None, progress: bool = True,
                      finished_rows: list[dict] | None = None) -> list[dict]:
    """Run (or resume) one sweep per training-set size and return every run's row (also ``scaling.csv``).

    ``data``: ``{condition: (train_dir, test_dir, valid_dir)}``; every training set must hold at least the
    largest size (with ``allow_incomplete``, in finished trials). Everything is checked before the first run.
    ``finished_rows``: rows of an earlier run of the same plan on the same data (a shipped ``scaling.csv``
    read with :func:`read_scaling_csv`), e.g. to resume a study on a machine without its run directory: a
    run among them (same size, condition, depth, width, seed, receptive field and step budget) is taken from
    them and not trained again, so a size half done elsewhere trains only its missing runs.
    """
    plan = plan or ScalingPlan()
    if not isinstance(plan, ScalingPlan):
        raise TypeError(f"plan must be a ScalingPlan, got {type(plan).__name__}")
    if not isinstance(data, dict) or not data:
        raise ValueError("data must be a non-empty dict {condition: (train_dir, test_dir, valid_dir)}")
    for condition, sets in data.items():
        if not isinstance(sets, (tuple, list)) or len(sets) != 3:
            raise ValueError(f"data[{condition!r}] must be (train_dir, test_dir, valid_dir): the study stops "
                             f"early on a validation set, got {sets!r}")
        with open_dataset(sets[0], allow_incomplete=allow_incomplete) as train:
            if len(train) < plan.sizes[-1]:
                raise ValueError(f"data[{condition!r}]: the largest size is {plan.sizes[-1]} trials but the "
                                 f"training set {sets[0]} has {len(train)}")
    out_dir = check_output_path(out_dir, "the study directory", directory=True).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "scaling.json", {"plan": asdict(plan), "scale": scale,
                                                 "data": {c: [str(Path(p).resolve()) for p in s]
                                                          for c, s in data.items()}})
    rows = []
    for n in plan.sizes:
        earlier = _finished_runs(finished_rows or [], plan, n, list(data))
        if len(earlier) == len(data) * len(plan.grid()):   # the whole size is done: no sweep directory
            rows += earlier
        else:
            result = run_sweep(out_dir / f"n{n:05d}", data, plan.grid(), steps=plan.steps_for(n), scale=scale,
                               train_trials=n, allow_incomplete=allow_incomplete, workers=workers,
                               threads_per_run=threads_per_run, client=client, progress=progress,
                               finished_rows=earlier)
            rows += _with_size(result.rows, n, data)
        write_scaling_csv(rows, out_dir / SCALING_CSV)
    return rows


def unfinished_runs(out_dir) -> list[dict]:
    """The finished runs of sizes a study has not finished (for instance when it was stopped), with their size
    and hours, as :func:`run_scaling_study` would return them: what to keep so that a study resumed elsewhere
    (``finished_rows``) trains only the runs still missing. ``[]`` when there are none."""
    out_dir = Path(out_dir)
    made = json.loads((out_dir / "scaling.json").read_text())
    data = {c: [Path(p) for p in sets] for c, sets in made["data"].items()}
    done = {r["n_train_trials"] for r in read_scaling_csv(out_dir / SCALING_CSV)} \
        if (out_dir / SCALING_CSV).exists() else set()
    rows = []
    for n in made["plan"]["sizes"]:
        table = out_dir / f"n{n:05d}" / CSV_NAME
        if n not in done and table.exists():
            rows += _with_size(read_csv(table), n, data)
    return rows


def _finished_runs(rows: list[dict], plan: ScalingPlan, n: int, conditions: list) -> list[dict]:
    """The rows among ``rows`` of runs of ``plan`` at size ``n`` (at its step budget), one per run."""
    wanted = {(c, d, w, s) for c in conditions for d in plan.depths for w in plan.widths for s in plan.seeds}
    found = {}
    for r in rows:
        key = (r.get("condition"), r.get("depth"), r.get("width"), r.get("seed"))
        if (r.get("n_train_trials") == n and key in wanted and r.get("steps") == plan.steps_for(n)
                and r.get("receptive_field_ms") == plan.receptive_field_ms):
            found[key] = r
    return [found[k] for k in sorted(found, key=str)]


def _with_size(rows: list[dict], n: int, data: dict) -> list[dict]:
    durations = {}
    for condition, sets in data.items():
        with open_dataset(sets[0], allow_incomplete=True) as ds:
            durations[condition] = ds.duration_ms
    return [{**r, "n_train_trials": n, "train_hours": n * durations[r["condition"]] / 3.6e6}
            for r in rows]


def write_scaling_csv(rows: list[dict], path) -> Path:
    """A study's rows (:data:`SCALING_COLUMNS`, sorted by condition, size, depth, width, seed) written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(SCALING_COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: (r["condition"], r["n_train_trials"], r["depth"], r["width"], r["seed"])):
        w.writerow({**r, "kernels": "-".join(str(k) for k in r["kernels"]) if isinstance(r.get("kernels"), list)
                    else r.get("kernels")})
    return atomic_write_text(Path(path), buf.getvalue())


def read_scaling_csv(path) -> list[dict]:
    """The rows of a ``scaling.csv``, numbers parsed."""
    rows = read_csv(path)
    for r in rows:
        r["n_train_trials"] = int(r["n_train_trials"])
    return rows


def depth_by_size(rows: list[dict], tolerance: float = 0.005, metric: str = "auc") -> list[dict]:
    """Per condition and training-set size: the depth needed and the evidence.

    Each entry: ``condition``, ``n_train_trials``, ``train_hours``, ``best_depth``, ``best`` (mean over seeds
    of each seed's best ``metric`` at that depth), ``depth_needed`` (smallest depth within ``tolerance`` of
    the best, :func:`neurodepth_lib.studies.depth_report`), ``depth_needed_range`` (smallest depth within
    tolerance when every mean is moved by two standard errors in its favour, and against it: an interval
    from the seeds' spread), ``gap_deep_over_depth1`` (best deeper network minus depth 1) and
    ``gap_in_se`` (that gap over the combined standard error), ``n_seeds``; and the curves behind them,
    ``depths`` with ``mean_by_depth`` and ``sem_by_depth`` (NaN with one seed), for plotting.
    """
    tolerance = non_negative_float(tolerance, "tolerance")
    out = []
    for condition in sorted({r["condition"] for r in rows}):
        for n in sorted({r["n_train_trials"] for r in rows if r["condition"] == condition}):
            sub = [r for r in rows if r["condition"] == condition and r["n_train_trials"] == n]
            rep = depth_report(sub, condition, tolerance, metric)
            means, sems = np.asarray(rep.mean, float), np.nan_to_num(np.asarray(rep.sem, float))
            b = int(np.nanargmax(means))

            def needed(shift: float) -> int:  # shift > 0 favours shallow depths, < 0 the best one
                target = means[b] + shift * sems[b] - tolerance
                return next((d for d, m, e in zip(rep.depths, means, sems) if m + shift * e >= target),
                            rep.depths[-1])

            deep = [i for i, d in enumerate(rep.depths) if d > 1]
            gap = se = math.nan
            if deep and rep.depths[0] == 1:
                k = max(deep, key=lambda i: means[i])
                gap = float(means[k] - means[0])
                se = math.hypot(sems[k], sems[0])
            out.append({"condition": condition, "n_train_trials": n, "train_hours": sub[0].get("train_hours"),
                        "best_depth": rep.best_depth, "best": float(means[b]), "depth_needed": rep.depth_needed,
                        "depth_needed_range": (min(needed(2.0), rep.depth_needed),
                                               max(needed(-2.0), rep.depth_needed)),
                        "gap_deep_over_depth1": gap,
                        "gap_in_se": gap / se if se > 0 else (math.inf if gap > 0 else 0.0),
                        "n_seeds": min(rep.n_seeds), "tolerance": tolerance, "depths": list(rep.depths),
                        "mean_by_depth": [float(m) for m in rep.mean],
                        "sem_by_depth": [float(e) for e in rep.sem]})
    return out


def scaling_table(entries: list[dict]) -> str:
    """:func:`depth_by_size` as a plain-text table."""
    lines = [f"{'condition':<10}{'trials':>7}{'hours':>7}{'best AUC':>10}{'best d':>8}{'needed':>8}"
             f"{'range':>9}{'deep - d1':>11}{'s.e.':>7}{'seeds':>7}"]
    for e in entries:
        lo, hi = e["depth_needed_range"]
        lines.append(f"{str(e['condition']):<10}{e['n_train_trials']:>7}{e['train_hours'] or 0:>7.2f}"
                     f"{e['best']:>10.4f}{e['best_depth']:>8}{e['depth_needed']:>8}{f'{lo}-{hi}':>9}"
                     f"{e['gap_deep_over_depth1']:>11.4f}{e['gap_in_se']:>7.1f}{e['n_seeds']:>7}")
    return "\n".join(lines)
