"""Generate datasets of simulated trials in parallel: resumable, byte-reproducible, local or on Dask.

>>> from neurodepth_lib import generation
>>> report = generation.generate_dataset("data/iaf_train", cell="iaf", n_trials=200, duration_ms=6000,
...                                      seed=1)                     # doctest: +SKIP
>>> ds = report.open()                                                 # doctest: +SKIP

How it works
------------
1. Everything is validated first (cell, condition, trial count, duration, rates, recordings), so a bad
   argument raises ``ValueError`` before any simulation or any file is written.
2. A *plan* (cell, condition, every parameter, seed, the input recipe) is written to ``manifest.json``;
   its hash, the plan id, goes into every shard. Trials are split into shards of ``trials_per_shard``.
3. Each shard is one task for :func:`run_shard`, a pure function of the task: it regenerates the trials'
   inputs from their seeds (or takes given events), simulates them with the cell's simulator, and writes
   the shard under a temporary name that is renamed when complete (:func:`~neurodepth_lib.datasets.write_shard`).
4. Tasks run on a local process pool (``spawn``, one process per core, with a progress bar) or on any
   ``distributed.Client`` passed as ``client`` (LocalCluster, dask-jobqueue on SLURM, ...). Workers write
   the shards themselves, so the output directory must be visible to them (a shared filesystem on a
   cluster). The same seeds give byte-identical shards and manifest on either executor.
5. As shards finish, the manifest records their sha256. A rerun of the same call skips finished shards
   (and adopts shards that were renamed just before the run died), so killing a run loses only the trials
   in flight.
6. ``provenance.jsonl`` in the directory logs how the data were made: one line per run (command, cores,
   workers, executor) and per finished shard (wall time, sha256). It is kept out of the manifest, whose
   bytes depend only on the data.

Each worker process makes its cell ready once (for the L5PC: loads the compiled mechanisms and builds the
cell) and reuses it for all its trials. Cells are looked up in a small registry (:data:`CELLS`,
:func:`register_cell`): ``"iaf"`` (the paper's integrate-and-fire neuron) and ``"l5pc"`` (the Hay L5PC via
:mod:`neurodepth_lib.simulation`).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from . import datasets as dsets
from .inputs import InputEvents, InputSettings, generate_inputs

PROVENANCE_NAME = "provenance.jsonl"

__all__ = ["CellModel", "CELLS", "register_cell", "get_cell", "GenerationReport", "generate_dataset",
           "plan_generation", "run_shard", "simulate_trial"]


# ----------------------------------------------------------------------------------------------------
# Cell registry
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CellModel:
    """How to make inputs for a cell and simulate trials of it.

    Functions must be importable module-level functions (spawned workers and Dask workers receive the
    model by reference).

    Attributes
    ----------
    name : registry key (``--cell`` on the command line).
    conditions : allowed conditions; ``(None,)`` for a cell without conditions.
    describe : ``(condition, cell_params) -> dict``: every parameter of the cell, JSON-able (goes into the
        plan); raises ``ValueError`` on bad ``cell_params``.
    input_settings : ``(condition, cell_params) -> InputSettings``: the paper's inputs for this cell.
    simulate : ``(events_list, condition, cell_params, simulation, record) -> list of dict``: outputs of
        each trial (``soma_1ms``, ``spike_times_ms`` and the recorded extras; see
        :data:`neurodepth_lib.datasets.OUTPUT_DTYPES`).
    simulation_defaults : ``(simulation) -> dict``: the integration settings, completed and validated.
    recordable : which optional outputs this cell can record (``nexus_1ms``, ``soma_0125ms``, ``dend_1ms``).
    always_recorded : optional outputs recorded by default.
    default_trials_per_shard : shard size when none is given.
    """

    name: str
    conditions: tuple
    describe: Callable
    input_settings: Callable
    simulate: Callable
    simulation_defaults: Callable
    recordable: tuple = ()
    always_recorded: tuple = ()
    default_trials_per_shard: int = 16


CELLS: dict[str, CellModel] = {}


def register_cell(model: CellModel, *, replace: bool = False) -> CellModel:
    """Add a cell to the registry (``replace=True`` to overwrite one)."""
    if not isinstance(model, CellModel):
        raise TypeError(f"model must be a CellModel, got {type(model).__name__}")
    if model.name in CELLS and not replace:
        raise ValueError(f"a cell named {model.name!r} is already registered (pass replace=True)")
    CELLS[model.name] = model
    return model


def get_cell(cell) -> CellModel:
    """The registered :class:`CellModel` for a name (or the model itself)."""
    if isinstance(cell, CellModel):
        return cell
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(sorted(CELLS))} "
                         "(or register_cell a new one)")
    return CELLS[cell]


# ---------------------------------------------------------------- the I&F neuron (paper_facts 1.8)

def _iaf_params(cell_params: dict):
    from .iaf import IAFParams

    names = {f.name for f in fields(IAFParams)}
    unknown = set(cell_params) - names
    if unknown:
        raise ValueError(f"unknown I&F parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    return IAFParams(**cell_params)


def _iaf_describe(condition, cell_params):
    p = _iaf_params(cell_params)
    w = np.asarray(p.weights)
    n_exc = int((w > 0).sum())
    if not (w[:n_exc] > 0).all() or (w[n_exc:] > 0).any():
        raise ValueError("I&F weights must list the excitatory (positive) synapses first, then the others")
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(p).items()}


def _iaf_input_settings(condition, cell_params):
    from .inputs import iaf_input_settings

    w = np.asarray(_iaf_params(cell_params).weights)
    n_exc = int((w > 0).sum())
    return iaf_input_settings(n_exc=n_exc, n_inh=len(w) - n_exc)


def _iaf_simulate(events_list, condition, cell_params, simulation, record):
    from . import iaf

    result = iaf.simulate(list(events_list), _iaf_params(cell_params))
    return [{"soma_1ms": result.v_mV[i],
             # the I&F fires on the 1-ms grid: a spike emitted at sample t has time t (ms)
             "spike_times_ms": np.flatnonzero(result.spikes[i]).astype(np.float64)}
            for i in range(len(events_list))]


def _no_simulation_params(simulation):
    if simulation:
        raise ValueError(f"the I&F neuron takes no simulation parameters, got {sorted(simulation)}")
    return {}


IAF = register_cell(CellModel(
    name="iaf", conditions=(None,), describe=_iaf_describe, input_settings=_iaf_input_settings,
    simulate=_iaf_simulate, simulation_defaults=_no_simulation_params, default_trials_per_shard=100))


# ---------------------------------------------------------------- the Hay L5PC (paper_facts 1.1-1.4)

_NEURON_LOCK = threading.Lock()  # NEURON is not thread-safe: one trial at a time per process
_WORKER_CELLS: dict = {}         # per process: the built cell, reused across tasks


def _l5pc_params(cell_params: dict):
    from .cells.l5pc import L5PCParams

    names = {f.name for f in fields(L5PCParams)}
    unknown = set(cell_params) - names
    if unknown:
        raise ValueError(f"unknown L5PC parameter(s) {sorted(unknown)}")
    return L5PCParams(**cell_params)


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _l5pc_describe(condition, cell_params):
    p = _l5pc_params(cell_params)
    out = {k: _jsonable(v) for k, v in asdict(p).items()}
    morph = Path(p.morphology)
    # the path differs between machines; the file's name and content do not
    out["morphology"] = {"name": morph.name, "sha256": dsets.file_sha256(morph)}
    return out


def _live_l5pc(params):
    """The L5PC already alive in this process (only one can be), if it has these parameters.

    Reusing it matters in a notebook: building another cell would destroy the student's ``cell``.
    """
    from .cells import l5pc

    ref = getattr(l5pc, "_current_cell", None)
    cell = ref() if ref is not None else None
    if cell is not None and getattr(cell, "_alive", False) and cell.params == params:
        return cell
    return None


def _l5pc_cell(condition, cell_params):
    """This process's L5PC with these parameters: the live one if it matches, else built (once)."""
    from .cells import L5PC

    params = _l5pc_params(cell_params)
    cell = _live_l5pc(params)
    if cell is None:
        cell = L5PC(condition, params)
    _WORKER_CELLS["l5pc"] = cell  # keep it alive between tasks
    return cell


def _l5pc_input_settings(condition, cell_params):
    with _NEURON_LOCK:
        return _l5pc_cell(condition, cell_params).input_settings(condition)


# How the pipeline integrates the L5PC: fixed step 0.05 ms with NEURON's Crank-Nicolson scheme
# (h.secondorder = 2). Per step it costs the same as backward Euler, and it is second-order accurate: on a
# bursting trial where backward Euler at 0.05 ms (0.025 ms) moved a spike by 6.5 ms (2.4 ms) against CVODE
# at default or 10x tighter tolerances, Crank-Nicolson at 0.05 ms moved it by 1.4 ms and every other spike by
# at most 0.4 ms; at 0.025 ms every spike was within 0.25 ms. It is half the cost of 0.025 ms and, over both
# cores, several times the authors' CVODE recipe (benchmarks/bench_generation.py measures both). Override
# with simulation={"dt_ms": 0.025}, {"secondorder": 0} or {"use_cvode": True}; the plan records the choice.
L5PC_GENERATION_SIMULATION = {"dt_ms": 0.05, "secondorder": 2}


def _l5pc_simulation_defaults(simulation):
    from .simulation import SimulationParams

    simulation = {**L5PC_GENERATION_SIMULATION, **simulation}
    names = {f.name for f in fields(SimulationParams)} | {"secondorder"}
    unknown = set(simulation) - names
    if unknown:
        raise ValueError(f"unknown simulation parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    order = simulation["secondorder"]
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"secondorder must be 0 (backward Euler), 1 or 2 (Crank-Nicolson), got {order!r}")
    params = {k: v for k, v in simulation.items() if k != "secondorder"}
    return {**asdict(SimulationParams(**params)), "secondorder": int(order)}


def _l5pc_simulate(events_list, condition, cell_params, simulation, record):
    from .simulation import SimulationParams, simulate_trial as neuron_trial

    from neuron import h

    simulation = dict(simulation)
    order = int(simulation.pop("secondorder", 0))
    params = SimulationParams(**simulation)
    out = []
    with _NEURON_LOCK:
        cell = _l5pc_cell(condition, cell_params)
        previous, previous_condition = h.secondorder, cell.condition
        for events in events_list:
            h.secondorder = order  # NEURON global: set for our trials only, restored below
            try:
                r = neuron_trial(cell, events, condition=condition, params=params,
                                 record_dendrites="dend_1ms" in record)
            finally:
                h.secondorder = previous
            trial = {"soma_1ms": r.v_soma_1ms, "spike_times_ms": r.spike_times_ms}
            if "nexus_1ms" in record:
                trial["nexus_1ms"] = r.v_nexus_1ms
            if "soma_0125ms" in record:
                trial["soma_0125ms"] = r.v_soma_0125ms
            if "dend_1ms" in record:
                trial["dend_1ms"] = r.v_dend_1ms
            out.append(trial)
        if previous_condition is not None:
            cell.set_condition(previous_condition)  # a reused cell is handed back as it was
    return out


L5PC_MODEL = register_cell(CellModel(
    name="l5pc", conditions=("NMDA", "AMPA", "AMPA_SK"), describe=_l5pc_describe,
    input_settings=_l5pc_input_settings, simulate=_l5pc_simulate,
    simulation_defaults=_l5pc_simulation_defaults,
    recordable=("nexus_1ms", "soma_0125ms", "dend_1ms"), always_recorded=("nexus_1ms",),
    default_trials_per_shard=8))


# ---------------------------------------------------------------- the teaching cell (cells.teaching)

def _teaching_params(cell_params: dict):
    from .cells.teaching import TeachingCellParams

    names = {f.name for f in fields(TeachingCellParams)}
    unknown = set(cell_params) - names
    if unknown:
        raise ValueError(f"unknown teaching-cell parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    return TeachingCellParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in cell_params.items()})


def _teaching_describe(condition, cell_params):
    return {k: _jsonable(v) for k, v in asdict(_teaching_params(cell_params)).items()}


def _teaching_cell(condition, cell_params):
    from .cells import teaching

    params = _teaching_params(cell_params)
    ref = teaching._current_cell
    cell = ref() if ref is not None else None
    if cell is None or not cell._alive or cell.params != params:
        cell = teaching.TeachingCell(condition, params)
    _WORKER_CELLS["teaching"] = cell
    return cell


def _teaching_input_settings(condition, cell_params):
    with _NEURON_LOCK:
        return _teaching_cell(condition, cell_params).input_settings(condition)


def _teaching_simulate(events_list, condition, cell_params, simulation, record):
    from .simulation import SimulationParams, simulate_trial as neuron_trial

    simulation = dict(simulation)
    order = int(simulation.pop("secondorder", 0))
    params = SimulationParams(**simulation, secondorder=order)  # set for each trial only, then restored
    out = []
    with _NEURON_LOCK:
        cell = _teaching_cell(condition, cell_params)
        previous_condition = cell.condition
        for events in events_list:
            r = neuron_trial(cell, events, condition=condition, params=params,
                             record_dendrites="dend_1ms" in record)
            trial = {"soma_1ms": r.v_soma_1ms, "spike_times_ms": r.spike_times_ms}
            for key, value in (("nexus_1ms", r.v_nexus_1ms), ("soma_0125ms", r.v_soma_0125ms),
                               ("dend_1ms", r.v_dend_1ms)):
                if key in record:
                    trial[key] = value
            out.append(trial)
        if previous_condition is not None:
            cell.set_condition(previous_condition)
    return out


TEACHING_MODEL = register_cell(CellModel(
    name="teaching", conditions=("NMDA", "AMPA"), describe=_teaching_describe,
    input_settings=_teaching_input_settings, simulate=_teaching_simulate,
    simulation_defaults=_l5pc_simulation_defaults,
    recordable=("nexus_1ms", "soma_0125ms", "dend_1ms"), always_recorded=("nexus_1ms",),
    default_trials_per_shard=16))


# ----------------------------------------------------------------------------------------------------
# One trial, one shard
# ----------------------------------------------------------------------------------------------------

def simulate_trial(cell, events: InputEvents, *, condition=None, cell_params: dict | None = None,
                   simulation: dict | None = None, record=()) -> dict:
    """Simulate one trial of a registered cell: ``{"soma_1ms": (T,), "spike_times_ms": (k,), ...}``."""
    model = get_cell(cell)
    sim = model.simulation_defaults(dict(simulation or {}))
    return model.simulate([events], condition, dict(cell_params or {}), sim, tuple(record))[0]


def _task_inputs(task: dict) -> tuple[list[InputEvents], list[int], list[str]]:
    if task.get("events") is not None:
        events = [InputEvents(np.asarray(c), np.asarray(t), task["n_channels"], task["duration_ms"])
                  for c, t in task["events"]]
        return events, [-1] * len(events), [e.checksum() for e in events]
    settings = InputSettings.from_dict(task["input_settings"])
    seeds = [dsets.trial_seed(task["seed"], i) for i in task["trials"]]
    events = [generate_inputs(settings, task["duration_ms"], s) for s in seeds]
    return events, seeds, [e.checksum() for e in events]


def run_shard(task: dict) -> dict:
    """Simulate one shard's trials and write the shard (a pure function of ``task``).

    ``task`` holds plain data: output directory, shard name, trial numbers, the cell model, condition,
    cell parameters, simulation settings, recordings, duration, and either the input recipe (settings
    dict and dataset seed) or the events. Returns the shard's manifest entry plus timings.
    """
    t0 = time.perf_counter()
    model = task["model"]
    events, seeds, checksums = _task_inputs(task)
    t_inputs = time.perf_counter() - t0
    outputs = model.simulate(events, task["condition"], task["cell_params"], task["simulation"],
                             tuple(task["record"]))
    t_sim = time.perf_counter() - t0 - t_inputs
    entry = dsets.write_shard(
        Path(task["out_dir"]) / task["name"], attrs=task["attrs"], trial_index=task["trials"],
        input_seed=seeds, input_sha256=checksums, outputs=outputs,
        events=events if task.get("events") is not None else None)
    entry["timing"] = {"inputs_s": t_inputs, "simulate_s": t_sim, "total_s": time.perf_counter() - t0,
                       "pid": os.getpid()}
    return entry


# ----------------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------------

def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or value != int(value) \
            or value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _check_rates(settings: InputSettings) -> None:
    for g in settings.groups:
        lo, hi = g.exc_total_per_100ms
        if lo < 0 or hi < 0:
            raise ValueError(f"input group {g.name!r}: excitatory rates must be non-negative, got {lo}..{hi}")
        if g.min_total_per_100ms < 0:
            raise ValueError(f"input group {g.name!r}: min_total_per_100ms must be >= 0")
        d_lo, d_hi = g.inh_minus_exc_per_100ms
        if hi + d_hi < 0:
            raise ValueError(f"input group {g.name!r}: inhibitory rates would always be negative "
                             f"(E up to {hi}, I - E up to {d_hi})")


def plan_generation(*, cell="iaf", condition=None, n_trials=None, duration_ms=6000, seed=0,
                    trials_per_shard=None, record=(), inputs=None, input_settings=None,
                    cell_params=None, simulation=None) -> tuple[dict, list[dict], CellModel]:
    """Validate every argument and return ``(plan, shard_layout, model)`` without simulating anything.

    See :func:`generate_dataset` for the arguments. Raises ``ValueError`` (or ``TypeError``) naming the
    bad parameter.
    """
    model = get_cell(cell)
    if condition is None and model.conditions != (None,):
        condition = model.conditions[0]
    if condition not in model.conditions:
        allowed = "no condition" if model.conditions == (None,) else ", ".join(map(str, model.conditions))
        raise ValueError(f"unknown condition {condition!r} for cell {model.name!r}; choose {allowed}")
    duration_ms = _positive_int(duration_ms, "duration_ms")
    record = tuple(sorted(set(record) | set(model.always_recorded)))
    bad = set(record) - set(model.recordable)
    if bad:
        raise ValueError(f"cell {model.name!r} cannot record {sorted(bad)}; it records "
                         f"{', '.join(model.recordable) or 'only the soma and spikes'}")
    cell_params = dict(cell_params or {})
    description = model.describe(condition, cell_params)
    simulation = model.simulation_defaults(dict(simulation or {}))

    if inputs is not None:
        inputs = list(inputs)
        if not inputs or not all(isinstance(e, InputEvents) for e in inputs):
            raise ValueError("inputs must be a non-empty list of InputEvents")
        if n_trials is not None and _positive_int(n_trials, "n_trials") != len(inputs):
            raise ValueError(f"n_trials={n_trials} but {len(inputs)} input trials were given")
        n_trials = len(inputs)
        bad_d = {e.duration_ms for e in inputs} - {duration_ms}
        if bad_d:
            raise ValueError(f"inputs last {sorted(bad_d)} ms but duration_ms={duration_ms}")
        if input_settings is not None:
            raise ValueError("pass either inputs (events) or input_settings (a recipe), not both")
        n_channels = inputs[0].n_channels
        if any(e.n_channels != n_channels for e in inputs):
            raise ValueError("all input trials must have the same number of channels")
        settings_dict = None
        h = hashlib.sha256()
        for e in inputs:
            h.update(e.checksum().encode())
        inputs_sha = h.hexdigest()
        seed = None  # the events are stored; no seed made them
    else:
        n_trials = _positive_int(n_trials if n_trials is not None else 0, "n_trials")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        seed = int(seed)
        if input_settings is None:
            settings = None  # filled below, after the cheap checks (the L5PC builds a cell for it)
        elif isinstance(input_settings, InputSettings):
            settings = input_settings
        elif isinstance(input_settings, dict):
            settings = InputSettings.from_dict(input_settings)  # validates (negative rates raise)
        else:
            raise TypeError(f"input_settings must be InputSettings or a dict, got {type(input_settings).__name__}")
        inputs_sha = None
    if trials_per_shard is None:
        trials_per_shard = min(model.default_trials_per_shard, n_trials)
    trials_per_shard = _positive_int(trials_per_shard, "trials_per_shard")

    if inputs is None:
        if settings is None:
            settings = model.input_settings(condition, cell_params)
        _check_rates(settings)
        settings_dict = settings.to_dict()
        n_channels = settings.n_channels
    expected = model.input_settings(condition, cell_params).n_channels if inputs is not None else n_channels
    if n_channels != expected:
        raise ValueError(f"inputs have {n_channels} channels but cell {model.name!r} has {expected}")

    plan = {
        "generator": "neurodepth_lib.generation.generate_dataset",
        "cell": model.name, "condition": condition, "cell_params": description,
        "simulation": simulation, "record": list(record),
        "duration_ms": duration_ms, "n_trials": n_trials, "n_channels": int(n_channels),
        "trials_per_shard": trials_per_shard, "seed": seed,
        "inputs": "events" if inputs is not None else "recipe",
        "input_settings": settings_dict,
        "input_seed_rule": dsets.TRIAL_SEED_RULE if inputs is None else None,
        "inputs_sha256": inputs_sha,
    }
    n_shards = math.ceil(n_trials / trials_per_shard)
    layout = [{"name": dsets.shard_name(k), "first_trial": k * trials_per_shard,
               "n_trials": min(trials_per_shard, n_trials - k * trials_per_shard)} for k in range(n_shards)]
    return plan, layout, model


# ----------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------

@dataclass
class GenerationReport:
    """What :func:`generate_dataset` did."""

    path: Path
    n_trials: int
    shards_total: int
    shards_skipped: int
    shards_written: int
    wall_s: float
    simulated_s: float          # simulated time of the trials made by this run
    executor: str
    timings: list = field(default_factory=list)

    @property
    def simulated_s_per_wall_s(self) -> float:
        return self.simulated_s / self.wall_s if self.wall_s > 0 else float("nan")

    def open(self) -> dsets.TrialDataset:
        return dsets.open_dataset(self.path)


def _plan_differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _prepare_directory(out_dir: Path, plan: dict, layout: list[dict], versions_extra: dict) -> tuple[dict, list]:
    """Create or resume the manifest; return it and the layout entries still to make."""
    pid = dsets.plan_id(plan)
    manifest_path = out_dir / dsets.MANIFEST_NAME
    if manifest_path.exists():
        manifest = dsets.read_manifest(out_dir)
        if manifest["plan_id"] != pid:
            diff = _plan_differences(manifest["plan"], plan)
            raise ValueError(f"{out_dir} already holds a different dataset (differs in: {', '.join(diff)}); "
                             "choose another output directory or delete it")
    else:
        existing = [p.name for p in out_dir.glob(dsets.SHARD_GLOB)]
        if existing:
            raise ValueError(f"{out_dir} holds shards but no manifest; refusing to mix datasets")
        manifest = dsets.new_manifest(plan, layout, versions_extra)
        dsets.write_manifest(out_dir, manifest)
    # leftovers of tasks that were in flight when a previous run died
    for tmp in out_dir.glob(".shard_*.tmp"):
        tmp.unlink(missing_ok=True)
    entries = {s["name"]: s for s in manifest["shards"]}
    todo, changed = [], False
    for shard in layout:
        entry = entries[shard["name"]]
        path = out_dir / shard["name"]
        if entry.get("sha256") and path.exists() and path.stat().st_size == entry["size_bytes"] \
                and dsets.file_sha256(path) == entry["sha256"]:
            continue  # done
        if path.exists() and not entry.get("sha256"):
            # renamed into place, but the run died before the manifest recorded it: adopt if it is ours
            try:
                attrs = dsets.read_shard_attrs(path)
                if attrs.get("plan_id") == pid and attrs.get("first_trial") == shard["first_trial"]:
                    entry.update(dsets.shard_entry_from_file(path))
                    changed = True
                    continue
            except dsets.IntegrityError:
                pass
        if path.exists():
            path.unlink()  # damaged or foreign: make it again
        if entry.get("sha256"):
            entry.update(sha256=None, size_bytes=None, n_spikes=None)
            changed = True
        todo.append(shard)
    if changed:
        dsets.write_manifest(out_dir, manifest)
    return manifest, todo


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def run_tasks(fn: Callable[[dict], dict], tasks: list[dict], *, workers: int, client,
              on_done: Callable[[dict], None], name_of: Callable[[dict], str], what: str = "task") -> str:
    """Run the picklable module-level ``fn`` over ``tasks`` and call ``on_done`` with each result as it
    finishes; return a description of the executor used.

    The executor is a Dask ``client`` when given, this process when ``workers`` is 0, and otherwise a spawn
    process pool of ``workers`` processes. A failing task raises ``RuntimeError`` naming it
    (``name_of(task)``); on an error or Ctrl-C the pool returns at once: queued tasks are dropped and tasks
    already running finish in the background (their results land atomically and the next run adopts them).
    Sweeps use the same function.
    """
    if not tasks:
        return "none"

    def failed(task, err):
        return RuntimeError(f"{what} {name_of(task)} failed: {err}")

    if client is not None:
        from distributed import as_completed

        futures = client.map(fn, tasks, pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        try:
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except Exception as err:
                    raise failed(by_key[fut.key], err) from err
                on_done(result)
        finally:
            client.cancel([f for f in futures if not f.done()])
        return "dask"
    if workers == 0:
        for task in tasks:
            on_done(fn(task))
        return "in-process"
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    n = min(workers, len(tasks))
    pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"))
    try:
        pending = {pool.submit(fn, t): t for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as err:
                    raise failed(task, err) from err
                on_done(result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return f"process pool ({n} workers, spawn)"


def _execute(tasks: list[dict], *, workers: int, client, on_done: Callable[[dict], None]) -> str:
    """Run ``run_shard`` over ``tasks`` on the chosen executor (see :func:`run_tasks`)."""
    return run_tasks(run_shard, tasks, workers=workers, client=client, on_done=on_done,
                     name_of=lambda t: t["name"], what="generating")


def generate_dataset(out_dir, *, cell="iaf", condition=None, n_trials=None, duration_ms=6000, seed=0,
                     trials_per_shard=None, workers=None, client=None, record_dendrites=False,
                     record_soma_0125ms=False, inputs=None, input_settings=None, cell_params=None,
                     simulation=None, progress=True) -> GenerationReport:
    """Simulate ``n_trials`` trials into the dataset directory ``out_dir``, or finish an interrupted run.

    Parameters
    ----------
    out_dir : dataset directory (created; a rerun with the same arguments resumes it).
    cell : a registered cell name (``"iaf"``, ``"l5pc"``) or a :class:`CellModel`.
    condition : for the L5PC ``"NMDA"`` (default), ``"AMPA"`` or ``"AMPA_SK"``; None for the I&F.
    n_trials : number of trials (not needed when ``inputs`` is given).
    duration_ms : trial length in ms (the paper: 6000).
    seed : dataset seed; trial ``i``'s inputs use :func:`neurodepth_lib.datasets.trial_seed` ``(seed, i)``.
    trials_per_shard : trials per shard and task (default per cell: I&F 100, L5PC 8).
    workers : local processes (default: all cores; 0 runs in this process). Ignored with ``client``.
    client : a ``distributed.Client``; tasks then run on its cluster.
    record_dendrites : also store every dendritic segment's voltage (float16, large).
    record_soma_0125ms : also store the 0.125-ms soma trace.
    inputs : a list of :class:`InputEvents` given from outside (stored as sparse events).
    input_settings : override the cell's paper inputs (an :class:`InputSettings` or its dict).
    cell_params : overrides of the cell's parameters (``IAFParams`` / ``L5PCParams`` fields).
    simulation : integration settings (``SimulationParams`` fields for NEURON cells, e.g. ``dt_ms``).
    progress : show a progress bar (trials).

    Returns
    -------
    GenerationReport (``.open()`` gives the :class:`~neurodepth_lib.datasets.TrialDataset`).
    """
    model = get_cell(cell)
    record = []
    if record_dendrites:
        record.append("dend_1ms")
    if record_soma_0125ms:
        record.append("soma_0125ms")
    if model.name == "iaf" and (record_dendrites or record_soma_0125ms):
        raise ValueError("the I&F neuron has no dendrites and no sub-millisecond trace to record")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 0):
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    plan, layout, model = plan_generation(
        cell=model, condition=condition, n_trials=n_trials, duration_ms=duration_ms, seed=seed,
        trials_per_shard=trials_per_shard, record=record, inputs=inputs, input_settings=input_settings,
        cell_params=cell_params, simulation=simulation)
    workers = _default_workers() if workers is None else int(workers)

    from filelock import FileLock, Timeout

    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out_dir / ".generate.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RuntimeError(f"another generation is writing to {out_dir} right now") from None
    t0 = time.perf_counter()
    try:
        manifest, todo = _prepare_directory(out_dir, plan, layout, {})
        pid = manifest["plan_id"]
        if todo:
            _log_provenance(out_dir, {
                "event": "run", "argv": list(sys.argv), "cores": os.cpu_count(), "workers": workers,
                "executor": "dask" if client is not None else ("pool" if workers > 0 else "in-process"),
                "platform": platform.platform(), "shards_to_make": [s["name"] for s in todo]})
        events_by_trial = list(inputs) if inputs is not None else None
        tasks = []
        for k, shard in enumerate(layout):
            if shard not in todo:
                continue
            trials = list(range(shard["first_trial"], shard["first_trial"] + shard["n_trials"]))
            attrs = {"format": dsets.FORMAT, "format_version": dsets.FORMAT_VERSION, "plan_id": pid,
                     "shard": k, "first_trial": shard["first_trial"], "n_trials": shard["n_trials"],
                     "cell": plan["cell"], "condition": plan["condition"], "duration_ms": plan["duration_ms"]}
            task = {"out_dir": str(out_dir), "name": shard["name"], "trials": trials, "model": model,
                    "condition": plan["condition"], "cell_params": dict(cell_params or {}),
                    "simulation": plan["simulation"], "record": plan["record"],
                    "duration_ms": plan["duration_ms"], "n_channels": plan["n_channels"],
                    "seed": plan["seed"], "input_settings": plan["input_settings"], "attrs": attrs,
                    "events": None}
            if events_by_trial is not None:
                task["events"] = [(events_by_trial[i].channel, events_by_trial[i].time_ms) for i in trials]
            tasks.append(task)

        bar = None
        if progress:
            from tqdm.auto import tqdm

            done_trials = plan["n_trials"] - sum(s["n_trials"] for s in todo)
            bar = tqdm(total=plan["n_trials"], initial=done_trials, unit="trial",
                       desc=f"{model.name} {plan['condition'] or ''}".strip())
        timings = []
        entries = {s["name"]: s for s in manifest["shards"]}

        def on_done(result: dict) -> None:
            timing = result.pop("timing", None)
            timings.append(dict(timing or {}, name=result["name"]))
            _log_provenance(out_dir, {"event": "shard", "name": result["name"], "sha256": result["sha256"],
                                      "n_trials": result["n_trials"],
                                      **{k: v for k, v in (timing or {}).items() if k != "pid"}})
            entries[result["name"]].update(result)
            dsets.write_manifest(out_dir, manifest)
            if bar is not None:
                bar.update(result["n_trials"])

        try:
            executor = _execute(tasks, workers=workers, client=client, on_done=on_done)
        finally:
            if bar is not None:
                bar.close()
        made = sum(s["n_trials"] for s in todo)
        return GenerationReport(path=out_dir, n_trials=plan["n_trials"], shards_total=len(layout),
                                shards_skipped=len(layout) - len(todo), shards_written=len(todo),
                                wall_s=time.perf_counter() - t0,
                                simulated_s=made * plan["duration_ms"] / 1000.0, executor=executor,
                                timings=timings)
    finally:
        lock.release()


def _log_provenance(out_dir: Path, record: dict) -> None:
    """Append one line to ``provenance.jsonl``: how the dataset was made (commands, machine, wall time
    per shard). Kept apart from the manifest, whose bytes depend only on the data."""
    record = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **record}
    with open(out_dir / PROVENANCE_NAME, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def format_summary(summary: dict, report: GenerationReport | None = None) -> str:
    """Human-readable lines for a dataset summary (used by ``neurodepth generate``)."""
    mb = summary["disk_bytes"] / 1e6
    lines = [f"dataset: {summary['path']}",
             f"  cell {summary['cell']}" + (f", condition {summary['condition']}" if summary["condition"] else "")
             + f"; {summary['trials']} trials x {summary['duration_ms']} ms in {summary['shards']} shards"
             + ("" if summary["complete"] else " (INCOMPLETE)"),
             f"  output rate {summary['rate_hz_mean']:.2f} +- {summary['rate_hz_std']:.2f} Hz "
             f"(median {summary['rate_hz_median']:.2f} Hz; {100 * summary['silent_fraction']:.0f} % of "
             f"trials silent)",
             f"  disk {mb:.2f} MB ({mb / max(summary['trials'], 1):.3f} MB per trial)"]
    if report is not None:
        lines.append(f"  this run: {report.shards_written} shards made, {report.shards_skipped} already "
                     f"there; {report.wall_s:.1f} s wall on {report.executor}"
                     + (f"; {report.simulated_s_per_wall_s:.2f} simulated s per wall s"
                        if report.shards_written else ""))
    return "\n".join(lines)
