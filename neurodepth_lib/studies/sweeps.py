"""Architecture sweeps (depth x width x receptive field x condition x seed): running them, reading their results.

Reading them is :mod:`neurodepth_lib.studies.depth` (best-so-far curves, the depth needed, ``how_deep``).

>>> from neurodepth_lib import studies
>>> grid = studies.SweepGrid(depths=(1, 2, 3, 4), widths=(16,), receptive_fields_ms=(41,), seeds=(0, 1, 2))
>>> res = studies.run_sweep("runs/sweep", {"NMDA": ("data/nmda_train", "data/nmda_test")}, grid,
...                        steps=600)                                           # doctest: +SKIP
>>> print(studies.depth_report(res.rows, "NMDA").table())                        # doctest: +SKIP

How a sweep runs
----------------
Every point of the grid is one *run*: a TCN with ``depth`` layers of ``width`` channels whose kernels add up
to the receptive field ``T`` (:func:`kernels_for`), trained with
:func:`neurodepth_lib.fit.train_on_dataset` for a fixed number of steps (the same budget for every
architecture) and scored on the held-out dataset with :func:`neurodepth_lib.scoring.evaluate_model`
(the paper's protocol). A run writes, under ``<out>/runs/<run id>/``, its model file and card
(``model.pt`` + ``model.json``) and then ``result.json`` (atomically, last): a run whose ``result.json``
exists is finished and a rerun of the sweep skips it; a run killed during training resumes from its
checkpoint. ``<out>/results.csv`` is rewritten from the result files after every finished run. The inputs
regenerated from the datasets' recipes are cached once in ``<out>/input_cache/`` before the first run starts
(:func:`fill_input_caches`: on the local process pool, or in this process when the runs go to a Dask
cluster) and shared by all runs.

Runs are independent tasks. As for :func:`neurodepth_lib.data.generate_dataset`, they run on a local
process pool (``spawn``; ``workers`` processes with ``threads_per_run`` torch threads each) by default, or on
any ``distributed.Client`` passed as ``client``; the output directory must be visible to the workers.

Reading a sweep (paper_facts 3.3)
---------------------------------
:func:`best_so_far` gives the paper's "best so far" curves: per condition and seed, the best metric over all
architectures with depth (width, T) at most x, then mean and standard error over seeds. With
``min_improvement`` the paper's plotting rule (keep a point only when it improves the curve by more than a
fraction of the metric's range) is applied too. :func:`depth_report` answers "how deep": per depth, the
mean and standard error over seeds of the best AUC at that depth; the depth needed is the smallest depth
whose mean AUC lies within ``tolerance`` of the best depth's.

How deep is my neuron?
----------------------
:func:`how_deep` does everything for any cell the library can simulate: generates a training and a test
dataset (:func:`neurodepth_lib.data.generate_dataset`), sweeps depth at a fixed width, receptive field
and training budget over several seeds, and returns a :class:`HowDeepReport` (the depth needed and the
evidence table). From the command line: ``neurodepth how-deep --cell teaching --condition NMDA --out DIR``.

Plugging in your own NEURON cell: write a class with the attributes
:func:`neurodepth_lib.cells.simulation.simulate_trial` uses (``soma``, ``nexus``, ``netcons`` in input-channel
order, ``dendritic_segments``, ``n_inputs``, ``condition``, ``set_condition``), an ``input_settings(condition)``
returning :class:`neurodepth_lib.inputs.InputSettings` (e.g. :func:`neurodepth_lib.inputs.tree_input_settings`)
and a frozen ``params`` dataclass, in an importable module (spawned workers import it); then
``register_cell(neuron_cell_model("mycell", module="mylab.cells", cell_class=..., params_class=...,
conditions=...))`` (:mod:`neurodepth_lib.cells.neuron_adapter`). ``how_deep(cell="mycell", ...)`` then works
unchanged.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import _parallel
from .._checks import non_negative_int, positive_float, positive_int
from .._io import Timer, atomic_write_json, atomic_write_text, check_output_path
from ..data.input_cache import input_cache_path, load_event_cache
from ..data.store import check_same_source
from ..data.store import open_dataset
from ..fit.loop import TrainingConfig
from ..fit.on_dataset import train_on_dataset, trials_of_run
from ..fit.spec import FitSpec
from ..fit.schedule import schedule_for_scale
from ..nets.predict import resolve_device
from ..nets.presets import make_architecture
from ..nets.tcn import macs_per_ms
from ..scales import check_scale
from ..scoring.assess import evaluate_model, record_metrics
from ..scoring.protocol import EvaluationConfig

__all__ = ["RESULT_NAME", "CSV_NAME", "INPUT_CACHE_DIR", "CSV_COLUMNS", "kernels_for", "run_id", "SweepGrid",
           "check_budget",
           "plan_runs", "fill_input_caches", "run_one", "read_results", "write_csv", "read_csv", "SweepResult",
           "run_sweep"]



RESULT_NAME = "result.json"
CSV_NAME = "results.csv"
INPUT_CACHE_DIR = "input_cache"  # regenerated inputs, shared by every run of a sweep
CSV_COLUMNS = ("run_id", "condition", "depth", "width", "receptive_field_ms", "kernels", "seed", "steps",
               "auc", "auc_std", "tp_at_0.1pct_fp", "tp_at_0.25pct_fp", "partial_auc",
               "soma_calibrated_explained_variance_pct", "soma_calibrated_rmse_mV",
               "soma_raw_explained_variance_pct", "soma_raw_rmse_mV", "n_parameters", "macs_per_ms",
               "train_time_s", "eval_trials_kept", "eval_spikes")


def kernels_for(depth: int, receptive_field_ms: int) -> tuple[int, ...]:
    """Kernel sizes of ``depth`` causal layers whose receptive field ``sum(k - 1) + 1`` is
    ``receptive_field_ms``: the ``T - 1`` ms shared as evenly as possible, the remainder to the first layer.

    >>> kernels_for(1, 41), kernels_for(2, 41), kernels_for(3, 41)
    ((41,), (21, 21), (15, 14, 14))
    """
    for name, v in (("depth", depth), ("receptive_field_ms", receptive_field_ms)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if receptive_field_ms - 1 < depth - 1:
        raise ValueError(f"receptive_field_ms={receptive_field_ms} is too short for depth {depth} "
                         f"(needs at least {depth} ms... every layer a kernel >= 1)")
    span = receptive_field_ms - 1
    base, extra = divmod(span, depth)
    return tuple(int(base + 1 + (extra if i == 0 else 0)) for i in range(depth))


def run_id(condition, depth: int, width: int, receptive_field_ms: int, seed: int) -> str:
    """``<condition>_D<depth>xW<width>xT<T>_s<seed>``, the paper's DxWxT naming plus the seed."""
    return f"{condition or 'none'}_D{depth}xW{width}xT{receptive_field_ms}_s{seed}"


@dataclass(frozen=True)
class SweepGrid:
    """The architectures and seeds of a sweep (every combination is one run per condition)."""

    depths: tuple = (1, 2, 3, 4)
    widths: tuple = (16,)
    receptive_fields_ms: tuple = (41,)
    seeds: tuple = (0, 1, 2)

    def __post_init__(self):
        for name in ("depths", "widths", "receptive_fields_ms", "seeds"):
            values = getattr(self, name)
            if isinstance(values, (int, np.integer)):
                values = (values,)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise ValueError(f"SweepGrid.{name} must be a sequence of whole numbers, got {values!r}")
            rule = non_negative_int if name == "seeds" else positive_int
            values = tuple(rule(v, f"SweepGrid.{name} entry") for v in values)  # 2.7 is refused, never truncated
            if not values:
                raise ValueError(f"SweepGrid.{name} must not be empty")
            object.__setattr__(self, name, tuple(dict.fromkeys(values)))
        for d in self.depths:
            for t in self.receptive_fields_ms:
                kernels_for(d, t)  # raises when T is too short for the depth

    def __len__(self) -> int:
        return len(self.depths) * len(self.widths) * len(self.receptive_fields_ms) * len(self.seeds)


def plan_runs(conditions, grid: SweepGrid) -> list[dict]:
    """One spec per (condition, depth, width, T, seed), in a stable order (seed outermost, so a sweep that
    stops early has every architecture at the first seeds)."""
    out = []
    for seed in grid.seeds:
        for condition in conditions:
            for depth in grid.depths:
                for width in grid.widths:
                    for t in grid.receptive_fields_ms:
                        out.append({"run_id": run_id(condition, depth, width, t, seed), "condition": condition,
                                    "depth": depth, "width": width, "receptive_field_ms": t,
                                    "kernels": list(kernels_for(depth, t)), "seed": seed})
    return out


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _datasets_of(task: dict) -> tuple:
    """A run's training, test and validation datasets (None: none given). A dataset still being generated is
    read as the fixed set of shards the sweep started with."""
    def open_(key):
        return open_dataset(task[key], allow_incomplete=task.get(key + "_shards") is not None,
                            shards=task.get(key + "_shards"))
    return open_("train"), open_("test"), open_("valid") if task.get("valid") else None


def _trials_of(task: dict, valid_ds) -> dict:
    """The FitSpec fields that choose a run's trials: the first ``train_trials`` (default all), validated on
    ``valid_ds`` when given (it picks the best checkpoint), else on a held-out fraction of the training trials."""
    budget = task["budget"]
    trials = None if budget.get("train_trials") is None else range(int(budget["train_trials"]))
    valid = {"valid_data": valid_ds} if valid_ds is not None else {"valid_fraction": budget["valid_fraction"]}
    return {"trials": trials, **valid}


def fill_input_caches(tasks: list[dict], *, workers: int = 0, progress: bool = False) -> int:
    """Regenerate the inputs every run of ``tasks`` reads (training, validation and test trials) into the
    sweep's shared input cache, once, on ``workers`` processes; return how many trial sets were filled.

    Without this, each worker that starts a run on a new cache regenerates the same trials at the same time,
    on one process each (about 0.6 CPU seconds a 6-s Hay trial: 20 minutes for 2,000 trials, per worker).
    Sets already cached are only checked.
    """
    filled = set()
    for task in tasks:
        train_ds, test_ds, valid_ds = sets = _datasets_of(task)
        try:
            train_idx, valid_idx = trials_of_run(FitSpec(**_trials_of(task, valid_ds)), train_ds, valid_ds)
            for ds, trials in ((train_ds, train_idx), (valid_ds if valid_ds is not None else train_ds, valid_idx),
                               (test_ds, np.arange(len(test_ds)))):
                path = input_cache_path(Path(task["out_dir"]) / INPUT_CACHE_DIR, ds, trials)
                if trials.size and path not in filled:
                    load_event_cache(ds, trials, path, progress, workers)  # builds the file, or checks it
                    filled.add(path)
        finally:
            for ds in sets:
                if ds is not None:
                    ds.close()
    return len(filled)


def run_one(task: dict) -> dict:
    """Train and evaluate one run (a pure function of ``task``; see :func:`run_sweep`) and write its files.

    Returns the result dict (also in ``<run dir>/result.json``). Skips the work when the result exists.
    """
    run_dir = Path(task["out_dir"]) / "runs" / task["spec"]["run_id"]
    result_path = run_dir / RESULT_NAME
    if result_path.exists():
        return json.loads(result_path.read_text())
    threads = task.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    spec, budget = task["spec"], task["budget"]
    run_dir.mkdir(parents=True, exist_ok=True)
    config = TrainingConfig.for_scale(
        budget["scale"], schedule=schedule_for_scale(budget["scale"], budget["steps"], budget["lr_scale"]),
        seed=int(spec["seed"]), restore_best=True, progress=False, device=budget.get("device", "auto"))
    arch = make_architecture("tiny", n_inputs=int(task["n_inputs"]), kernel_sizes=tuple(spec["kernels"]),
                                      widths=int(spec["width"]))
    train_timer = Timer().start()
    train_ds, test_ds, valid_ds = _datasets_of(task)
    fit = train_on_dataset(train_ds, run_dir / "model", architecture=arch, dendritic=False,
                                    config=config, scale=budget["scale"], seed=int(spec["seed"]),
                                    **_trials_of(task, valid_ds), progress=False,
                                    input_cache_dir=Path(task["out_dir"]) / INPUT_CACHE_DIR,
                                    card={"sweep": {"spec": spec, "budget": budget}})
    train_s = train_timer.elapsed_s
    evaluation = budget.get("evaluation")
    a = evaluate_model(fit.model, test_ds, input_cache_dir=Path(task["out_dir"]) / INPUT_CACHE_DIR,
                       allow_mismatch=bool(task.get("allow_mismatch", False)),
                       config=None if evaluation is None else EvaluationConfig(**evaluation))
    record_metrics(run_dir / "model", a)
    s = a.summary()
    tp = {k: v for k, v in s.items() if k.startswith("tp_at_")}
    result = {**spec, "steps": budget["steps"], "auc": s["auc"], "auc_std": s["auc_std"],
              "tp_at_0.1pct_fp": tp.get("tp_at_0.1pct_fp"), "tp_at_0.25pct_fp": tp.get("tp_at_0.25pct_fp"),
              "partial_auc": s["partial_auc"],
              **{k: s[k] for k in ("soma_calibrated_explained_variance_pct", "soma_calibrated_rmse_mV",
                                   "soma_raw_explained_variance_pct", "soma_raw_rmse_mV")},
              "n_parameters": int(sum(p.numel() for p in fit.model.parameters())),
              "macs_per_ms": int(macs_per_ms(fit.model.config)), "train_time_s": round(train_s, 2),
              "eval_trials_kept": s["n_trials_kept"], "eval_spikes": s["n_spikes"],
              "eval_trials": a.result.n_trials, "eval_bins": a.result.n_bins, "eval_filter": s["filter"],
              **_training_trend(fit.history),
              "train": str(task["train"]), "test": str(task["test"]), "budget": budget}
    result = {k: _finite(v) for k, v in result.items()}
    atomic_write_json(result_path, result)  # last: its existence marks the run finished
    return result


def _training_trend(history) -> dict:
    """Was the validation loss still falling when training stopped? ``best_step`` (the step of the best
    validation loss, whose weights were kept) and ``valid_still_falling``: the best came in the last fifth of
    the steps and the loss there is more than 1 % below its value at 60 % of the training."""
    steps = list(history.valid_step)
    losses = {"spike": history.valid_spike, "soma": history.valid_soma}.get(history.best_by, history.valid_loss)
    if history.best_step is None or len(steps) < 3 or not history.total_steps:
        return {"best_step": history.best_step, "valid_still_falling": None}
    late = history.best_step >= 0.8 * history.total_steps
    i60 = min(range(len(steps)), key=lambda i: abs(steps[i] - 0.6 * history.total_steps))
    best = min(x for x in losses if x is not None and math.isfinite(x))
    earlier = losses[i60]
    falling = bool(late and earlier is not None and math.isfinite(earlier) and best < earlier * 0.99)
    return {"best_step": int(history.best_step), "valid_still_falling": falling}


def _row_order(r: dict) -> tuple:
    return str(r["condition"]), r["depth"], r["width"], r["receptive_field_ms"], r["seed"]


def read_results(out_dir) -> list[dict]:
    """Every finished run's result under ``<out_dir>/runs``, sorted by condition, depth, width, T, seed."""
    rows = [json.loads(path.read_text()) for path in sorted(Path(out_dir).glob(f"runs/*/{RESULT_NAME}"))]
    return sorted(rows, key=_row_order)


def _earlier_runs(rows, specs: list[dict], steps: int) -> dict[str, dict]:
    """``{run_id: row}`` of the planned runs among ``rows`` (see ``finished_rows`` of :func:`run_sweep`)."""
    if rows is None:
        return {}
    planned = {s["run_id"]: s for s in specs}
    out = {}
    for r in rows:
        spec = planned.get(r.get("run_id") if isinstance(r, dict) else None)
        if spec is None:
            raise ValueError(f"finished_rows: {r.get('run_id') if isinstance(r, dict) else r!r} is not a run of "
                             "this sweep's grid")
        if r.get("steps") != steps:
            raise ValueError(f"finished_rows: run {spec['run_id']} was trained for {r.get('steps')} steps, this "
                             f"sweep's budget is {steps}")
        if any(r.get(k) != spec[k] for k in ("condition", "depth", "width", "receptive_field_ms", "seed")):
            raise ValueError(f"finished_rows: the row of run {spec['run_id']} describes another run")
        out[spec["run_id"]] = r
    return out


def write_csv(rows: list[dict], path) -> Path:
    """The results table (:data:`CSV_COLUMNS`) written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "kernels": "-".join(str(k) for k in r["kernels"]) if isinstance(r.get("kernels"), list)
                    else r.get("kernels")})
    return atomic_write_text(Path(path), buf.getvalue())


# columns of results tables written before the soma metrics were labelled (issue 16): they held the raw ones
_LEGACY_COLUMNS = {"soma_explained_variance_pct": "soma_raw_explained_variance_pct",
                   "soma_rmse_mV": "soma_raw_rmse_mV"}


def read_csv(path) -> list[dict]:
    """Rows of a results CSV with numbers parsed (``kernels`` back to a list). Tables written before the
    soma metrics were labelled have their (raw) soma columns renamed ``soma_raw_*``."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            row = {}
            for k, v in r.items():
                k = _LEGACY_COLUMNS.get(k, k)
                if k in ("run_id", "condition"):
                    row[k] = v
                elif k == "kernels":
                    row[k] = [int(x) for x in str(v).split("-") if x]
                elif v in ("", None):
                    row[k] = None
                else:
                    f = float(v)
                    row[k] = int(f) if k in ("depth", "width", "receptive_field_ms", "seed", "steps",
                                             "n_parameters", "macs_per_ms", "eval_trials_kept",
                                             "eval_spikes") else f
            out.append(row)
    return out


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: ``rows`` (every finished run), runs made and skipped, wall time."""

    out_dir: Path
    rows: list
    runs_total: int
    runs_skipped: int
    runs_made: int
    wall_s: float
    executor: str

    @property
    def csv_path(self) -> Path:
        return self.out_dir / CSV_NAME


def _execute(tasks, *, workers: int, client, on_done) -> str:
    """Run :func:`run_one` over ``tasks`` with generation's executor (pool, in-process or Dask)."""
    return _parallel.run_tasks(run_one, tasks, workers=workers, client=client, on_done=on_done,
                     name_of=lambda t: t["spec"]["run_id"], what="sweep run")


def check_budget(*, steps=600, scale="lab", lr_scale=None, valid_fraction=0.1, workers=None, threads_per_run=None,
                 device="auto", train_trials=None, allow_mismatch=False) -> str:
    """Check a sweep's run settings (see :func:`run_sweep`) before any work; returns the scale's name."""
    scale = check_scale(scale)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 5:
        raise ValueError(f"steps must be an integer >= 5, got {steps!r}")
    if train_trials is not None and (isinstance(train_trials, bool) or not isinstance(train_trials, (int, np.integer))
                                     or train_trials < 2):
        raise ValueError(f"train_trials must be None or an integer >= 2, got {train_trials!r}")
    if lr_scale is not None:
        positive_float(lr_scale, "lr_scale")
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float, np.floating)) \
            or not 0.0 <= float(valid_fraction) < 1.0:
        raise ValueError(f"valid_fraction must lie in [0, 1), got {valid_fraction!r}")
    if workers is not None:
        non_negative_int(workers, "workers")
    if threads_per_run is not None:
        positive_int(threads_per_run, "threads_per_run")
    resolve_device(device)
    if not isinstance(allow_mismatch, (bool, np.bool_)):
        raise TypeError(f"allow_mismatch must be True or False, got {allow_mismatch!r}")
    return scale


def run_sweep(out_dir, data: dict, grid: SweepGrid | None = None, *, steps: int = 600, scale: str = "lab",
              lr_scale: float | None = None, valid_fraction: float = 0.1, workers: int | None = None,
              threads_per_run: int | None = None, client=None, device: str = "auto",
              allow_incomplete: bool = False, train_trials: int | None = None,
              allow_mismatch: bool = False, evaluation: EvaluationConfig | None = None,
              progress: bool = True, finished_rows: list[dict] | None = None) -> SweepResult:
    """Train and evaluate every run of ``grid`` for every condition of ``data``; skip finished runs.

    Parameters
    ----------
    out_dir : sweep directory (created): ``runs/<run id>/`` per run and ``results.csv``.
    data : ``{condition: (train dataset dir, test dataset dir)}``, or ``(train, test, validation)``: the
        condition is a label (e.g. the cell's condition), used in run ids and tables; a validation set picks
        each run's best checkpoint (otherwise ``valid_fraction`` of the training trials are held out).
    grid : :class:`SweepGrid` (default depths 1-4, width 16, T 41 ms, seeds 0-2).
    steps : training steps of every run (the fixed budget); ``scale`` picks the schedule's shape and the
        learning-rate multiplier (``lr_scale`` overrides it), see :func:`neurodepth_lib.schedule_for_scale`.
    valid_fraction : training trials held out to pick the best checkpoint (ignored for a condition given a
        validation set).
    workers : local processes (default: cores // threads_per_run; 0 = in this process). Ignored with ``client``.
    threads_per_run : torch threads per run (default 1 with more than one worker, else torch's default).
    client : a ``distributed.Client``: runs become tasks on its cluster.
    allow_incomplete : accept datasets still being generated. The sweep then uses the shards finished when
        it started (recorded in ``sweep.json``), also when it is resumed later, so every run sees the same
        trials.
    train_trials : train on the first this many trials of every condition's training set (default all), e.g.
        to compare conditions on equal amounts of data; ``valid_fraction`` is held out of these.
    allow_mismatch : accept a condition label whose datasets are of another condition, or a test set of
        another cell or condition than its training set (refused by default, before any run); recorded in
        ``sweep.json`` and every run's card.
    evaluation : the :class:`~neurodepth_lib.scoring.EvaluationConfig` the runs are scored with (default the
        paper's); e.g. ``EvaluationConfig(spike_count_per_ms=6000)`` scales the spike-count filter with the trials'
        length. Recorded in the budget.
    finished_rows : rows of runs of this very sweep (same grid, budget and data) finished elsewhere, e.g. read
        back from a table shipped by another machine (:func:`read_csv`): a run whose ``run_id`` is among them
        is not trained again, and its row is returned (and written to ``results.csv``) with the others. A row
        whose ``steps`` differ from ``steps`` is another budget's and refused.

    Every argument and every dataset is checked before the first run starts.
    """
    grid = grid or SweepGrid()
    if not isinstance(grid, SweepGrid):
        raise TypeError(f"grid must be a SweepGrid, got {type(grid).__name__}")
    if not isinstance(data, dict) or not data:
        raise ValueError("data must be a non-empty dict {condition: (train_dir, test_dir)}")
    scale = check_budget(steps=steps, scale=scale, lr_scale=lr_scale, valid_fraction=valid_fraction, workers=workers,
                         threads_per_run=threads_per_run, device=device, train_trials=train_trials,
                         allow_mismatch=allow_mismatch)
    if evaluation is not None and not isinstance(evaluation, EvaluationConfig):
        raise TypeError(f"evaluation must be an EvaluationConfig, got {type(evaluation).__name__}")
    out_dir = check_output_path(out_dir, "the sweep directory", directory=True).resolve()
    plan_path = out_dir / "sweep.json"
    before = json.loads(plan_path.read_text()) if plan_path.exists() else {}
    n_inputs, shards, mismatches = {}, {}, []
    for condition, pair in data.items():
        if not isinstance(pair, (tuple, list)) or len(pair) not in (2, 3):
            raise ValueError(f"data[{condition!r}] must be (train_dir, test_dir) or (train_dir, test_dir, "
                             f"valid_dir), got {pair!r}")
        frozen = (before.get("shards") or {}).get(condition)
        sets = [open_dataset(p, allow_incomplete=allow_incomplete, shards=None if frozen is None else f)
                for p, f in zip(pair, frozen or (None,) * len(pair))]
        train, test = sets[:2]
        if not all(ds.complete for ds in sets):
            shards[condition] = frozen or [ds.shard_names for ds in sets]
        if train_trials is not None and len(train) < train_trials:
            raise ValueError(f"data[{condition!r}]: train_trials={train_trials} but the training set "
                             f"{pair[0]} has {len(train)} {'finished ' if not train.complete else ''}trials")
        if train.n_channels != test.n_channels:
            raise ValueError(f"data[{condition!r}]: train has {train.n_channels} inputs, test {test.n_channels}")
        for what, ds in zip(("training", "test", "validation"), sets):
            if ds.condition is not None and str(ds.condition).upper() != str(condition).upper():
                check_same_source({"cell": ds.cell, "condition": condition, "name": f"data[{condition!r}]"},
                                  ds.source, expected_what="its label", actual_what=f"the {what} set of "
                                  f"data[{condition!r}]", allow_mismatch=allow_mismatch)
                mismatches.append({"condition": condition, "set": what, "dataset": ds.source})
        for what, ds in zip(("test", "validation"), sets[1:]):
            m = check_same_source(train.source, ds.source, expected_what=f"the training set of data[{condition!r}]",
                                  actual_what=f"its {what} set", allow_mismatch=allow_mismatch)
            if m is not None:
                mismatches.append({"condition": condition, "set": what, "dataset": ds.source})
            if ds.n_channels != train.n_channels:
                raise ValueError(f"data[{condition!r}]: train has {train.n_channels} inputs, {what} {ds.n_channels}")
        n_inputs[condition] = train.n_channels
    cores = _parallel.default_workers()
    if workers is None:
        workers = max(1, cores // (threads_per_run or 1))
    _parallel.check_spawn_safe(workers if client is None else 0)
    if threads_per_run is None:
        threads_per_run = 1 if (workers > 1 or client is not None) else None
    specs = plan_runs(list(data), grid)
    earlier = _earlier_runs(finished_rows, specs, steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    budget = {"steps": int(steps), "scale": scale,
              "lr_scale": lr_scale if lr_scale is None else float(lr_scale),
              "valid_fraction": float(valid_fraction), "device": device,
              # only when set, so that sweeps started before this option resume with an unchanged budget
              **({"train_trials": int(train_trials)} if train_trials is not None else {}),
              **({"evaluation": evaluation.to_dict()} if evaluation is not None else {})}
    plan = {"grid": asdict(grid), "data": {c: [str(Path(p).resolve()) for p in pair] for c, pair in data.items()},
            "budget": budget, **({"shards": shards} if shards else {}),
            **({"allow_mismatch": mismatches} if mismatches else {})}
    if before:
        if before.get("budget") != budget or before.get("data") != plan["data"]:
            raise ValueError(f"{out_dir} holds a sweep with another budget or other data; choose another directory")
    atomic_write_json(plan_path, plan)
    tasks, skipped = [], 0
    for spec in specs:
        if spec["run_id"] in earlier or (out_dir / "runs" / spec["run_id"] / RESULT_NAME).exists():
            skipped += 1
            continue
        paths = data[spec["condition"]]
        tasks.append({"out_dir": str(out_dir), "spec": spec, "budget": budget, "train": str(paths[0]),
                      "test": str(paths[1]), **({"valid": str(paths[2])} if len(paths) == 3 else {}),
                      "n_inputs": n_inputs[spec["condition"]], "threads": threads_per_run,
                      **({"allow_mismatch": True} if mismatches else {})})
        for key, names in zip(("train_shards", "test_shards", "valid_shards"), shards.get(spec["condition"], ())):
            tasks[-1][key] = names
    timer = Timer().start()
    # inputs regenerated here once, on this machine's processes (a cluster's workers then read the cache)
    fill_input_caches(tasks, workers=int(workers) if client is None else 0, progress=progress)
    bar = None
    if progress and tasks:
        bar = tqdm(total=len(specs), initial=skipped, unit="run", desc="sweep")

    def all_rows():
        here = read_results(out_dir)
        made = {r["run_id"] for r in here}
        return sorted(here + [r for k, r in earlier.items() if k not in made], key=_row_order)

    def on_done(result):
        write_csv(all_rows(), out_dir / CSV_NAME)
        if bar is not None:
            bar.update(1)

    try:
        executor = _execute(tasks, workers=int(workers), client=client, on_done=on_done)
    finally:
        if bar is not None:
            bar.close()
    rows = all_rows()
    write_csv(rows, out_dir / CSV_NAME)
    return SweepResult(out_dir=out_dir, rows=rows, runs_total=len(specs), runs_skipped=skipped,
                       runs_made=len(tasks), wall_s=timer.elapsed_s, executor=executor)


