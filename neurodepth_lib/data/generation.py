"""Generate datasets of simulated trials in parallel: resumable, byte-reproducible, local or on Dask.

>>> from neurodepth_lib.data import generate_dataset
>>> report = generate_dataset("data/iaf_train", cell="iaf", n_trials=200, duration_ms=6000,
...                           seed=1)                     # doctest: +SKIP
>>> ds = report.open()                                                 # doctest: +SKIP

How it works
------------
1. Everything is validated first (cell, condition, trial count, duration, rates, recordings), so a bad
   argument raises ``ValueError`` before any simulation or any file is written.
2. A *plan* (cell, condition, every parameter, seed, the input recipe) is written to ``manifest.json``;
   its hash, the plan id, goes into every shard. Trials are split into shards of ``trials_per_shard``.
3. Each shard is one task for :func:`run_shard`, a pure function of the task: it regenerates the trials'
   inputs from their seeds (or takes given events), simulates them with the cell's simulator, and writes
   the shard under a temporary name that is renamed when complete (:func:`~neurodepth_lib.data.shards.write_shard`).
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
cell) and reuses it for all its trials. Cells are looked up by name in :mod:`neurodepth_lib.cells.registry`; this module knows no specific cell.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from .. import _parallel
from .._checks import positive_int
from .._io import Timer, check_output_path, exclusive_lock, file_sha256
from ..cells.registry import CellModel, get_cell
from ..inputs import (
    OOD_KINDS,
    InputEvents,
    InputSettings,
    cell_ood_settings,
    generate_inputs,
    ood_settings,
)
from . import shards
from .store import TrialDataset, open_dataset

__all__ = ["PROVENANCE_NAME", "run_shard", "plan_generation", "planned_id", "ood_input_settings", "plan_ood_kinds",
           "GenerationReport", "generate_dataset", "reencode_dataset", "format_summary"]


PROVENANCE_NAME = "provenance.jsonl"


def _task_inputs(task: dict) -> tuple[list[InputEvents], list[int], list[str]]:
    if task.get("events") is not None:
        events = [InputEvents(np.asarray(c), np.asarray(t), task["n_channels"], task["duration_ms"])
                  for c, t in task["events"]]
        return events, [-1] * len(events), [e.checksum() for e in events]
    settings = InputSettings.from_dict(task["input_settings"])
    seeds = [shards.trial_seed(task["seed"], i) for i in task["trials"]]
    events = [generate_inputs(settings, task["duration_ms"], s) for s in seeds]
    return events, seeds, [e.checksum() for e in events]


def run_shard(task: dict) -> dict:
    """Simulate one shard's trials and write the shard (a pure function of ``task``).

    ``task`` holds plain data: output directory, shard name, trial numbers, the cell model, condition,
    cell parameters, simulation settings, recordings, duration, and either the input recipe (settings
    dict and dataset seed) or the events. Returns the shard's manifest entry plus timings.
    """
    model = task["model"]
    with Timer() as total:
        with Timer() as t_inputs:
            events, seeds, checksums = _task_inputs(task)
        with Timer() as t_sim:
            outputs = model.simulate(events, task["condition"], task["cell_params"], task["simulation"],
                                     tuple(task["record"]))
        entry = shards.write_shard(
            Path(task["out_dir"]) / task["name"], attrs=task["attrs"], trial_index=task["trials"],
            input_seed=seeds, input_sha256=checksums, outputs=outputs,
            events=events if task.get("events") is not None else None)
    entry["timing"] = {"inputs_s": t_inputs.wall_s, "simulate_s": t_sim.wall_s, "total_s": total.wall_s,
                       "pid": os.getpid()}
    return entry


# ----------------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------------

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
    duration_ms = positive_int(duration_ms, "duration_ms")
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
        if n_trials is not None and positive_int(n_trials, "n_trials") != len(inputs):
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
        n_trials = positive_int(n_trials if n_trials is not None else 0, "n_trials")
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
    trials_per_shard = positive_int(trials_per_shard, "trials_per_shard")

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
        # an identifier recorded in every plan since format 1 (the function's module before it moved to
        # neurodepth_lib.data): kept as it was, so that plans and their ids stay the same
        "generator": "neurodepth_lib.generation.generate_dataset",
        "cell": model.name, "condition": condition, "cell_params": description,
        "simulation": simulation, "record": list(record),
        "duration_ms": duration_ms, "n_trials": n_trials, "n_channels": int(n_channels),
        "trials_per_shard": trials_per_shard, "seed": seed,
        "inputs": "events" if inputs is not None else "recipe",
        "input_settings": settings_dict,
        "input_seed_rule": shards.TRIAL_SEED_RULE if inputs is None else None,
        "inputs_sha256": inputs_sha,
    }
    n_shards = math.ceil(n_trials / trials_per_shard)
    layout = [{"name": shards.shard_name(k), "first_trial": k * trials_per_shard,
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

    def open(self) -> TrialDataset:
        return open_dataset(self.path)


def _plan_differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _prepare_directory(out_dir: Path, plan: dict, layout: list[dict], versions_extra: dict) -> tuple[dict, list]:
    """Create or resume the manifest; return it and the layout entries still to make."""
    pid = shards.plan_id(plan)
    manifest_path = out_dir / shards.MANIFEST_NAME
    if manifest_path.exists():
        manifest = shards.read_manifest(out_dir)
        if manifest["plan_id"] != pid:
            diff = _plan_differences(manifest["plan"], plan)
            raise ValueError(f"{out_dir} already holds a different dataset (differs in: {', '.join(diff)}); "
                             "choose another output directory or delete it")
        if manifest.get("format_version") != shards.FORMAT_VERSION:
            raise ValueError(f"{out_dir} holds a dataset in format {manifest.get('format_version')}; this library "
                             f"writes format {shards.FORMAT_VERSION} and will not mix them: rewrite it with "
                             f"`neurodepth reencode {out_dir} --out NEW_DIR` "
                             "(neurodepth_lib.data.reencode_dataset) and resume there")
    else:
        existing = [p.name for p in out_dir.glob(shards.SHARD_GLOB)]
        if existing:
            raise ValueError(f"{out_dir} holds shards but no manifest; refusing to mix datasets")
        manifest = shards.new_manifest(plan, layout, versions_extra)
        shards.write_manifest(out_dir, manifest)
    # leftovers of tasks that were in flight when a previous run died
    for tmp in out_dir.glob(".shard_*.tmp"):
        tmp.unlink(missing_ok=True)
    entries = {s["name"]: s for s in manifest["shards"]}
    todo, changed = [], False
    for shard in layout:
        entry = entries[shard["name"]]
        path = out_dir / shard["name"]
        if entry.get("sha256") and path.exists() and path.stat().st_size == entry["size_bytes"] \
                and file_sha256(path) == entry["sha256"]:
            continue  # done
        if path.exists() and not entry.get("sha256"):
            # renamed into place, but the run died before the manifest recorded it: adopt if it is ours
            try:
                attrs = shards.read_shard_attrs(path)
                if attrs.get("plan_id") == pid and attrs.get("first_trial") == shard["first_trial"]:
                    entry.update(shards.shard_entry_from_file(path))
                    changed = True
                    continue
            except shards.IntegrityError:
                pass
        if path.exists():
            path.unlink()  # damaged or foreign: make it again
        if entry.get("sha256"):
            entry.update(sha256=None, size_bytes=None, n_spikes=None)
            changed = True
        todo.append(shard)
    if changed:
        shards.write_manifest(out_dir, manifest)
    return manifest, todo


def _execute(tasks: list[dict], *, workers: int, client, on_done) -> str:
    """Run ``run_shard`` over ``tasks`` on the chosen executor (see :func:`neurodepth_lib._parallel.run_tasks`)."""
    return _parallel.run_tasks(run_shard, tasks, workers=workers, client=client, on_done=on_done,
                     name_of=lambda t: t["name"], what="generating")


def _plan_of_call(*, cell, record_dendrites=False, record_soma_0125ms=False, **plan_kwargs):
    """:func:`plan_generation` for :func:`generate_dataset`'s arguments (its two recording flags)."""
    model = get_cell(cell)
    if model.name == "iaf" and (record_dendrites or record_soma_0125ms):
        raise ValueError("the I&F neuron has no dendrites and no sub-millisecond trace to record")
    record = ["dend_1ms"] * bool(record_dendrites) + ["soma_0125ms"] * bool(record_soma_0125ms)
    return plan_generation(cell=model, record=record, **plan_kwargs)


def planned_id(**generate_kwargs) -> str:
    """The plan id (:func:`neurodepth_lib.data.shards.plan_id`) of the dataset that :func:`generate_dataset`
    would make with these arguments (``workers``, ``client`` and ``progress`` aside): a dataset whose manifest
    has this id holds exactly those trials. Simulates nothing."""
    for ignored in ("workers", "client", "progress"):
        generate_kwargs.pop(ignored, None)
    return shards.plan_id(_plan_of_call(**generate_kwargs)[0])


def ood_input_settings(cell, condition=None, kinds=(), cell_params=None) -> InputSettings:
    """The input recipe of a dataset of ``cell`` with the named out-of-distribution changes ``kinds`` (one name
    or several of :data:`neurodepth_lib.inputs.OOD_KINDS`; what each does: :class:`neurodepth_lib.inputs.OODOptions`)
    at their documented defaults, as ``neurodepth generate --ood`` makes it: the cell's training inputs changed
    by :func:`neurodepth_lib.inputs.ood_settings`, and for ``"clustered"`` by
    :func:`neurodepth_lib.inputs.cell_ood_settings` (64 K-means clusters of the segments' 3-D centres, seed 0),
    which needs a NEURON cell with a morphology. Pass the result as ``input_settings`` to
    :func:`generate_dataset`. Raises ``ValueError`` for an unknown or repeated name before building anything."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in OOD_KINDS]
    if not kinds or bad or len(set(kinds)) != len(kinds):
        raise ValueError(f"OOD settings must be distinct names from {', '.join(OOD_KINDS)}, got "
                         f"{','.join(map(str, kinds)) or 'none'}")
    model = get_cell(cell)
    if condition is None and model.conditions != (None,):
        condition = model.conditions[0]
    if "clustered" not in kinds:
        return ood_settings(model.input_settings(condition, dict(cell_params or {})), kinds)
    from ..cells.neuron_adapter import built_cell

    try:
        built = built_cell(model, condition, cell_params)
    except ValueError as err:
        raise ValueError(f"OOD setting 'clustered' groups a cell's segments by their 3-D positions: {err}") from None
    return cell_ood_settings(built, kinds, condition)


def plan_ood_kinds(plan: dict) -> tuple[str, ...]:
    """The names of the out-of-distribution changes a dataset plan's input recipe holds (empty for the
    training distribution or given input events)."""
    ood = (plan.get("input_settings") or {}).get("ood") or {}
    return tuple(ood.get("kinds") or ())


def generate_dataset(out_dir, *, cell="iaf", condition=None, n_trials=None, duration_ms=6000, seed=0,
                     trials_per_shard=None, workers=None, client=None, record_dendrites=False,
                     record_soma_0125ms=False, inputs=None, input_settings=None, cell_params=None,
                     simulation=None, progress=True) -> GenerationReport:
    """Simulate ``n_trials`` trials into the dataset directory ``out_dir``, or finish an interrupted run.

    Parameters
    ----------
    out_dir : dataset directory (created; a rerun with the same arguments resumes it).
    cell : a registered cell name (``"iaf"``, ``"l5pc"``, ``"teaching"``, a published model's name) or a
        :class:`CellModel` (:mod:`neurodepth_lib.cells.contract` says what a cell must offer).
    condition : for the L5PC ``"NMDA"`` (default), ``"AMPA"`` or ``"AMPA_SK"``; None for the I&F.
    n_trials : number of trials (not needed when ``inputs`` is given).
    duration_ms : trial length in ms (the paper: 6000).
    seed : dataset seed; trial ``i``'s inputs use :func:`neurodepth_lib.data.trial_seed` ``(seed, i)``.
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
    GenerationReport (``.open()`` gives the :class:`~neurodepth_lib.data.TrialDataset`).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 0):
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    plan, layout, model = _plan_of_call(
        cell=cell, condition=condition, n_trials=n_trials, duration_ms=duration_ms, seed=seed,
        trials_per_shard=trials_per_shard, record_dendrites=record_dendrites,
        record_soma_0125ms=record_soma_0125ms, inputs=inputs, input_settings=input_settings,
        cell_params=cell_params, simulation=simulation)
    workers = _parallel.default_workers() if workers is None else int(workers)
    _parallel.check_spawn_safe(workers if client is None else 0)

    out_dir = check_output_path(out_dir, "the dataset directory", directory=True).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir / ".generate.lock", f"the dataset {out_dir}"):
        return _generate_locked(out_dir, plan, layout, model, workers=workers, client=client, inputs=inputs,
                                cell_params=cell_params, progress=progress)


def _generate_locked(out_dir: Path, plan: dict, layout: list, model, *, workers: int, client, inputs,
                     cell_params, progress: bool) -> GenerationReport:
    """:func:`generate_dataset` once its arguments are checked and it holds the directory's lock."""
    timer = Timer().start()
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
        attrs = _shard_attrs(plan, pid, k, shard)
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
        shards.write_manifest(out_dir, manifest)
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
                            wall_s=timer.elapsed_s,
                            simulated_s=made * plan["duration_ms"] / 1000.0, executor=executor,
                            timings=timings)


def _shard_attrs(plan: dict, pid: str, k: int, shard: dict) -> dict:
    """The HDF5 attributes of shard ``k`` (generation and re-encoding write the same)."""
    return {"format": shards.FORMAT, "format_version": shards.FORMAT_VERSION, "plan_id": pid, "shard": k,
            "first_trial": shard["first_trial"], "n_trials": shard["n_trials"], "cell": plan["cell"],
            "condition": plan["condition"], "duration_ms": plan["duration_ms"]}


def reencode_dataset(src, out_dir, *, progress: bool = True) -> Path:
    """Rewrite the dataset ``src`` (format 1 or 2) into ``out_dir`` in the current format; same plan, same
    trials, voltages rounded to 0.01 mV (see :mod:`neurodepth_lib.data.shards`).

    Every finished shard of ``src`` is checked first (its sha256 against the manifest, each trial's outputs
    against their recorded hash), so damaged data is never carried over. The result is what
    :func:`generate_dataset` with the same plan writes, byte for byte: a shard remade later from its recipe
    matches it. Shards still missing in ``src`` stay missing (resume the generation in ``out_dir``).
    Resumable: shards already rewritten are kept. ``provenance.jsonl`` is carried over (lines not yet in
    ``out_dir``'s log are appended), with one line for this step. Returns ``out_dir``.
    """
    src, out_dir = Path(src).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if src == out_dir:
        raise ValueError("reencode_dataset writes a new directory: out_dir must differ from src")
    old = shards.read_manifest(src)
    plan = old["plan"]
    pid = shards.plan_id(plan)
    layout = [{k: s[k] for k in ("name", "first_trial", "n_trials")} for s in old["shards"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest, todo = _prepare_directory(out_dir, plan, layout, {})
    entries = {s["name"]: s for s in manifest["shards"]}
    done = [s for s in old["shards"] if s.get("sha256") and {"name": s["name"], "first_trial": s["first_trial"],
                                                              "n_trials": s["n_trials"]} in todo]
    bar = tqdm(total=len(done), unit="shard", desc="re-encoding") if progress else None
    for k, entry in enumerate(old["shards"]):
        if entry not in done:
            continue
        path = src / entry["name"]
        if not path.exists() or file_sha256(path) != entry["sha256"]:
            raise shards.IntegrityError(f"{path} does not match its sha256 in {src / shards.MANIFEST_NAME}")
        with h5py.File(path, "r") as f:
            names = [n for n in shards.OUTPUT_DTYPES if n in f and n != "spike_times_ms"]
            offsets, recorded = f["spike_offsets"][()], f["output_sha256"][()]
            outputs = []
            for j in range(len(recorded)):
                stored = {n: f[n][j] for n in names}
                stored["spike_times_ms"] = f["spike_times_ms"][offsets[j]:offsets[j + 1]]
                if shards.trial_output_sha256(stored) != recorded[j].decode():
                    raise shards.IntegrityError(f"{path}: row {j}'s outputs do not match their recorded hash")
                outputs.append({n: shards.read_stored_output(f, n, j) for n in names}
                               | {"spike_times_ms": stored["spike_times_ms"]})
            events = None
            if "event_offsets" in f:
                eo = f["event_offsets"][()]
                events = [InputEvents(f["event_channel"][eo[j]:eo[j + 1]], f["event_time_ms"][eo[j]:eo[j + 1]],
                                      plan["n_channels"], plan["duration_ms"]) for j in range(len(recorded))]
            written = shards.write_shard(
                out_dir / entry["name"], attrs=_shard_attrs(plan, pid, k, entry), trial_index=f["trial_index"][()],
                input_seed=f["input_seed"][()], input_sha256=[x.decode() for x in f["input_sha256"][()]],
                outputs=outputs, events=events)
        entries[entry["name"]].update(written)
        shards.write_manifest(out_dir, manifest)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    # carry the source's log over: every line of it not already here (a resumed re-encoding adds the new ones)
    log, here = src / PROVENANCE_NAME, out_dir / PROVENANCE_NAME
    if log.exists():
        have = set(here.read_text().splitlines()) if here.exists() else set()
        new = [line for line in log.read_text().splitlines() if line and line not in have]
        if new:
            with open(here, "a") as fh:
                fh.write("".join(line + "\n" for line in new))
    _log_provenance(out_dir, {"event": "reencode", "from": str(src), "from_format": old.get("format_version"),
                              "to_format": shards.FORMAT_VERSION, "argv": list(sys.argv),
                              "shards_rewritten": [e["name"] for e in done]})
    return out_dir


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
